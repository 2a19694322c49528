import LedgerCore
import Testing

@testable import AuthCore

@Suite("The index in memory: bucket keys as words, entries in place, spelled out as stored")
struct IndexBucketsTests {
    static let sequences: [UInt64] = [0, 1, 255, 256, 257, 65_535, 1 << 32, 1 << 56 - 1, 1 << 56, UInt64.max - 1, UInt64.max]
    static let values = ["auth0|alice", "", "é — ✓", String(repeating: "long value ", count: 40), IndexKind.tenant]

    @Test("a typed key spells the stored key of its kind, value and sequence, and the stored key gives it back")
    func keysAgree() throws {
        for kind in IndexKind.allCases {
            for value in Self.values {
                for sequence in Self.sequences {
                    let key = IndexBucketKey(kind: kind, value: value, sequence: sequence)
                    let stored = kind.key(value, sequence: sequence)
                    #expect(key.storedKey == stored)
                    #expect(IndexBucketKey(storedKey: stored.utf8) == key)
                    #expect(stored.utf8.count == IndexBucketKey.storedLength)
                }
            }
        }
        // Equal exactly when the stored keys are: one bucket per 256 sequence numbers, per kind and value.
        #expect(IndexBucketKey(kind: .user, value: "a", sequence: 256) == IndexBucketKey(kind: .user, value: "a", sequence: 511))
        #expect(IndexBucketKey(kind: .user, value: "a", sequence: 255) != IndexBucketKey(kind: .user, value: "a", sequence: 256))
        #expect(IndexBucketKey(kind: .user, value: "a", sequence: 1) != IndexBucketKey(kind: .client, value: "a", sequence: 1))
        #expect(IndexBucketKey(kind: .user, value: "a", sequence: 1) != IndexBucketKey(kind: .user, value: "b", sequence: 1))
    }

    @Test("what is not an index bucket's key gives no typed key")
    func storedKeyRefusals() {
        let stored = Array(IndexKind.user.key("auth0|alice", sequence: 300).utf8)
        #expect(IndexBucketKey(storedKey: stored) != nil)
        #expect(IndexBucketKey(storedKey: stored.dropLast()) == nil, "too short")
        #expect(IndexBucketKey(storedKey: stored + [0x30]) == nil, "too long")
        #expect(IndexBucketKey(storedKey: [UInt8(ascii: "z")] + stored.dropFirst()) == nil, "no kind has the letter z")
        #expect(IndexBucketKey(storedKey: stored.prefix(5) + [0x70] + stored.dropFirst(6)) == nil, "p is outside the digits")
        #expect(IndexBucketKey(storedKey: "consents-key".utf8) == nil)
    }

    @Test("entries come back in the order appended, in place and beyond 16, as extending the stored value gives them")
    func entries() throws {
        var index = IndexBuckets()
        var expected: [String: [UInt8]] = [:]
        // Buckets of 1, 15, 16, 17 and 256 entries: either side of the 16 kept in place.
        for (number, size) in [1, 15, 16, 17, 256].enumerated() {
            let value = "value \(number)"
            let base = UInt64(number + 1) << 8
            for sequence in base..<base + UInt64(size) {
                index.append(entryOf: sequence, under: IndexBucketKey(kind: .client, value: value, sequence: sequence))
                expected[IndexKind.client.key(value, sequence: sequence), default: []] += IndexBucket.entry(sequence)
            }
        }
        #expect(index.count == 5)
        #expect(index.entryCount == 1 + 15 + 16 + 17 + 256)
        #expect(index.stored == expected)
        for (stored, entries) in expected {
            #expect(index.entries(under: try #require(IndexBucketKey(storedKey: stored.utf8))) == entries)
        }
        #expect(index.entries(under: IndexBucketKey(kind: .client, value: "value 9", sequence: 1)) == nil)
    }

    @Test("buckets that outgrow their place while others do, appended by turns, each keep their own entries")
    func interleavedSpills() {
        var index = IndexBuckets()
        let values = ["a", "b", "c"]
        for sequence in UInt64(1024)..<1024 + 40 {
            for value in values { index.append(entryOf: sequence, under: IndexBucketKey(kind: .user, value: value, sequence: sequence)) }
        }
        for value in values {
            #expect(index.entries(under: IndexBucketKey(kind: .user, value: value, sequence: 1024)) == Array(0..<40))
        }
        #expect(index.count == 3 && index.entryCount == 120)
    }

    @Test("an empty value is kept, as a store keeps it")
    func emptyValue() {
        var index = IndexBuckets()
        let key = IndexBucketKey(kind: .code, value: "k", sequence: 7)
        index.append(contentsOf: [], under: key)
        #expect(index.entries(under: key) == [])
        index.set([], under: IndexBucketKey(kind: .code, value: "l", sequence: 7))
        #expect(index.count == 2 && index.stored.values.allSatisfy(\.isEmpty))
    }

    @Test("a bucket's value can be replaced and removed, in place or spilled, and appending after goes on from there")
    func replaceAndRemove() {
        var index = IndexBuckets()
        let key = IndexBucketKey(kind: .session, value: "s", sequence: 512)
        for sequence in UInt64(512)..<532 { index.append(entryOf: sequence, under: key) }
        #expect(index.entries(under: key) == Array(0..<20))
        index.set([1, 2, 3], under: key)
        #expect(index.entries(under: key) == [1, 2, 3])
        index.append(contentsOf: Array(4..<30), under: key)
        #expect(index.entries(under: key) == Array(1..<30))
        index.set(nil, under: key)
        #expect(index.entries(under: key) == nil)
        #expect(index.count == 0 && index.entryCount == 0 && index.stored.isEmpty)
    }
}
