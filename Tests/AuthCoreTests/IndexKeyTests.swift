import LedgerCore
import Testing

@testable import AuthCore

@Suite("Index keys: a digest of the value and the sequence, in digits that sort as the bytes do")
struct IndexKeyTests {
    /// Random bytes from a fixed seed, so that a failure repeats.
    struct SeededBytes {
        var state: UInt64

        mutating func next(_ count: Int) -> [UInt8] {
            (0..<count).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 56)
            }
        }
    }

    @Test("bytes of every length come back from their digits, which use only the 64 characters from 0 to o")
    func roundTrip() {
        var random = SeededBytes(state: 17)
        for count in 0...40 {
            for _ in 0..<20 {
                let bytes = random.next(count)
                let digits = IndexKeyDigits.encode(bytes)
                #expect(digits.utf8.count == IndexKeyDigits.count(forBytes: count))
                #expect(digits.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x6F })
                #expect(IndexKeyDigits.decode(digits.utf8, bytes: count) == bytes)
            }
        }
        #expect(IndexKeyDigits.encode([0, 0]) == "000")
        #expect(IndexKeyDigits.encode([0xFF, 0xFF, 0xFF]) == "oooo")
    }

    @Test("digits of equally long byte strings sort as the bytes do")
    func orderPreserved() {
        var random = SeededBytes(state: 4242)
        for count in [1, 2, 3, 8, 16] {
            for _ in 0..<500 {
                var left = random.next(count)
                let right = random.next(count)
                // Often equal up to the last byte, where an off-by-one in the unused bits would show.
                if count > 1 && random.next(1)[0] < 128 { left = Array(right.dropLast()) + random.next(1) }
                let byBytes = left.lexicographicallyPrecedes(right)
                let byDigits = IndexKeyDigits.encode(left).utf8.lexicographicallyPrecedes(IndexKeyDigits.encode(right).utf8)
                #expect(byBytes == byDigits, "\(left) \(right)")
            }
        }
    }

    @Test("digits of another length, outside the alphabet, or with unused bits set are refused")
    func refusals() {
        let eight = IndexKeyDigits.encode(UInt64(0x0123_4567_89AB_CDEF).bigEndianBytes)
        #expect(IndexKeyDigits.decode(eight.utf8, bytes: 8) == UInt64(0x0123_4567_89AB_CDEF).bigEndianBytes)
        #expect(IndexKeyDigits.decode(eight.utf8.dropLast(), bytes: 8) == nil)
        #expect(IndexKeyDigits.decode(Array(eight.utf8) + [0x30], bytes: 8) == nil)
        #expect(IndexKeyDigits.decode(Array(eight.utf8.dropLast()) + [0x70], bytes: 8) == nil, "p is outside the alphabet")
        #expect(IndexKeyDigits.decode(Array(eight.utf8.dropLast()) + [0x2F], bytes: 8) == nil, "/ is below it")
        // 11 digits hold 66 bits: the last digit's two low bits are unused and must be zero.
        #expect(IndexKeyDigits.decode(Array(eight.utf8.dropLast()) + [eight.utf8.last! | 1], bytes: 8) == nil)
    }

    @Test("an index key is 33 bytes: the kind, the value's digest, the bucket; one value's keys share the prefix and sort by bucket")
    func keys() throws {
        let sequences: [UInt64] = [1, 2, 15, 16, 255, 256, 257, 65_535, 1 << 32, UInt64.max - 1, UInt64.max]
        for kind in IndexKind.allCases {
            let keys = sequences.map { kind.key("auth0|alice", sequence: $0) }
            #expect(keys.allSatisfy { $0.utf8.count == 33 && $0.hasPrefix(kind.prefix("auth0|alice")) })
            for (key, sequence) in zip(keys, sequences) {
                #expect(IndexBucket.sequences(inKey: key.utf8, value: IndexBucket.entry(sequence)) == [sequence])
                // The prefix, then the bucket's number: the sequence number without its low byte, in seven bytes.
                #expect(key == kind.prefix("auth0|alice") + IndexKeyDigits.encode((sequence >> 8).bigEndianBytes.dropFirst()))
            }
            #expect(keys == keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }, "in the order of the events")
        }
        // One bucket per 256 sequence numbers.
        #expect(IndexKind.user.key("auth0|alice", sequence: 256) == IndexKind.user.key("auth0|alice", sequence: 511))
        #expect(IndexKind.user.key("auth0|alice", sequence: 255) != IndexKind.user.key("auth0|alice", sequence: 256))
        #expect(IndexKind.user.prefix("auth0|alice") != IndexKind.user.prefix("auth0|alicf"))
        #expect(IndexKind.user.prefix("auth0|alice") != IndexKind.client.prefix("auth0|alice"))
        // A value of any length is indexed under a key of the same length.
        #expect(IndexKind.client.key(String(repeating: "x", count: 10_000), sequence: 7).utf8.count == 33)
        #expect(IndexKind.user.prefix("auth0|alice") == "u" + IndexKeyDigits.encode(SHA256Digest.hash(Array("auth0|alice".utf8)).bytes.prefix(16)))
    }

    @Test("a bucket's value is the last byte of each sequence number, increasing; an empty or unordered one, or a key without a bucket number, is refused")
    func buckets() {
        let key = IndexKind.session.key("s", sequence: 0x1234_5600)
        #expect(IndexBucket.sequences(inKey: key.utf8, value: [0x00, 0x07, 0xFF]) == [0x1234_5600, 0x1234_5607, 0x1234_56FF])
        #expect(IndexBucket.sequences(inKey: key.utf8, value: []) == nil)
        #expect(IndexBucket.sequences(inKey: key.utf8, value: [0x07, 0x07]) == nil)
        #expect(IndexBucket.sequences(inKey: key.utf8, value: [0x08, 0x07]) == nil)
        #expect(IndexBucket.sequences(inKey: "u".utf8, value: [1]) == nil)
        #expect(IndexBucket.sequences(inKey: Array(key.utf8.dropLast()) + [0x70], value: [1]) == nil, "p is outside the digits")
    }

    @Test("codes and access tokens are keyed by 128 bits of their hash or id, in 22 characters; other text as it is")
    func recordKeys() {
        let hash = OpaqueToken.hash("code-1")
        #expect(CodeRecord.key(hash) == IndexKeyDigits.encode(Hex.decode(hash)!.prefix(16)))
        #expect(CodeRecord.key(hash).utf8.count == 22)
        #expect(CodeRecord.key(OpaqueToken.hash("code-2")) != CodeRecord.key(hash))
        #expect(CodeRecord.key("not a hash") == "not a hash")
        #expect(CodeRecord.key(String(hash.dropLast()) + "g") == String(hash.dropLast()) + "g", "not hexadecimal")
        let earlierJTI = OpaqueToken.generate()
        #expect(TokenRecord.key(earlierJTI) == IndexKeyDigits.encode(Base64URL.decode(earlierJTI)!.prefix(16)))
        #expect(TokenRecord.key(earlierJTI).utf8.count == 22)
        let jti = TokenIdentifier.generate()
        #expect(Base64URL.decode(jti)?.count == 16)
        #expect(TokenRecord.key(jti) == jti)
        #expect(TokenRecord.key(jti).utf8.count == 22)
        #expect(TokenIdentifier.generate() != jti)
        #expect(TokenRecord.key("jti-1") == "jti-1")
    }
}
