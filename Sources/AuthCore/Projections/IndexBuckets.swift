import LedgerCore

/// The key of an index bucket (``IndexBucket``) as three words instead of its 33 characters: the kind's
/// letter with the bucket's number, and the 16 bytes of the value's digest that the key keeps.
///
/// The stored key (``IndexKind/key(_:sequence:)``) spells out exactly these, so each gives the other
/// (``init(kind:value:sequence:)`` and ``storedKey``).
public struct IndexBucketKey: Hashable, Sendable {
    /// The kind's letter in the top byte; the bucket's number (a sequence number without its low byte)
    /// in the seven below.
    let kindAndBucket: UInt64
    /// The first eight bytes of the value's digest, big-endian.
    let digestHigh: UInt64
    /// The next eight bytes of the value's digest, big-endian.
    let digestLow: UInt64

    /// The key of the bucket that holds `value`'s entry for the event at `sequence`.
    public init(kind: IndexKind, value: String, sequence: UInt64) {
        let words = IndexKind.withDigest(of: value) { digest in
            (high: UInt64(bigEndian: digest.loadUnaligned(as: UInt64.self)), low: UInt64(bigEndian: digest.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
        self.init(letter: kind.letter, bucket: sequence >> IndexBucket.entryBits, digestHigh: words.high, digestLow: words.low)
    }

    /// The key that `key`, as stored, spells; `nil` when it is not an index bucket's key.
    public init?(storedKey key: some Collection<UInt8>) {
        let digestDigits = IndexKeyDigits.count(forBytes: IndexKind.digestBytes)
        guard key.count == 1 + digestDigits + IndexBucket.numberDigits, let letter = key.first,
            IndexKind.allCases.contains(where: { $0.letter == letter }),
            let digest = IndexKeyDigits.decode(key.dropFirst().prefix(digestDigits), bytes: IndexKind.digestBytes),
            let bucket = IndexBucket.number(inKey: key),
            let high = UInt64(bigEndianBytes: digest.prefix(8)), let low = UInt64(bigEndianBytes: digest.suffix(8))
        else { return nil }
        self.init(letter: letter, bucket: bucket, digestHigh: high, digestLow: low)
    }

    private init(letter: UInt8, bucket: UInt64, digestHigh: UInt64, digestLow: UInt64) {
        self.kindAndBucket = UInt64(letter) << 56 | bucket & (1 << 56 - 1)
        self.digestHigh = digestHigh
        self.digestLow = digestLow
    }

    /// The key as the index stores it: the kind's letter, the digest's 16 bytes and the bucket's number,
    /// the last two in ``IndexKeyDigits``.
    public var storedKey: String {
        var characters: [UInt8] = []
        characters.reserveCapacity(Self.storedLength)
        characters.append(UInt8(truncatingIfNeeded: kindAndBucket >> 56))
        IndexKeyDigits.append(digestHigh.bigEndianBytes + digestLow.bigEndianBytes, to: &characters)
        IndexBucket.appendDigits(of: kindAndBucket << IndexBucket.entryBits, to: &characters)
        return String(decoding: characters, as: UTF8.self)
    }

    /// The length of every stored key, in bytes.
    public static let storedLength = 1 + IndexKeyDigits.count(forBytes: IndexKind.digestBytes) + IndexBucket.numberDigits
}

extension IndexKind {
    /// The kind's letter, the first byte of its keys.
    var letter: UInt8 { rawValue.utf8.first! }
}

/// The timeline's index held in memory by bucket: what a rebuild folds the index into.
///
/// Keyed by ``IndexBucketKey``, with up to 16 entries of a bucket kept beside its key, the table holds no
/// string and no array for most buckets: a rebuild makes about two buckets an event, and held as stored
/// (a 33-character key and an array of entries), each bucket was two allocations to make, a key to hash
/// character by character, and two to free at the end, which alone took a sixth of a rebuild of a
/// million events. ``stored`` spells the index out as stored, for comparing with the live one.
public struct IndexBuckets: Sendable {
    private var buckets: [IndexBucketKey: Entries] = [:]
    /// The entries of buckets that outgrew their place, by the slot their ``Entries`` names.
    private var spilled: [[UInt8]] = []

    /// An empty index.
    public init() {}

    /// A bucket's entries: up to ``inlineCapacity`` in place, or the slot in ``spilled`` of them all.
    private struct Entries {
        static let inlineCapacity = 16
        var count = 0
        var inline: (UInt64, UInt64) = (0, 0)

        /// Appends `byte`: in place while there is room, or says what to do in ``spilled``.
        mutating func append(_ byte: UInt8, nextSlot: Int) -> Spill {
            defer { count += 1 }
            if count < Self.inlineCapacity {
                let at = count
                withUnsafeMutableBytes(of: &inline) { $0[at] = byte }
                return .inPlace
            }
            if count == Self.inlineCapacity {
                let moved = withUnsafeBytes(of: inline) { Array($0) } + [byte]
                inline = (UInt64(nextSlot), 0)
                return .new(moved)
            }
            return .existing(Int(inline.0))
        }

        enum Spill {
            case inPlace
            case new([UInt8])
            case existing(Int)
        }

        /// The slot in ``spilled`` of a bucket that outgrew its place; `nil` for one that did not.
        var spilledSlot: Int? { count > Self.inlineCapacity ? Int(inline.0) : nil }

        func bytes(spilled: [[UInt8]]) -> [UInt8] {
            if count > Self.inlineCapacity { return spilled[Int(inline.0)] }
            return withUnsafeBytes(of: inline) { Array($0.prefix(count)) }
        }
    }

    /// Makes room for `count` buckets.
    public mutating func reserveCapacity(_ count: Int) { buckets.reserveCapacity(count) }

    /// How many buckets the index holds.
    public var count: Int { buckets.count }

    /// How many entries the buckets hold together: the bytes of their values.
    public var entryCount: Int { buckets.values.reduce(0) { $0 + $1.count } }

    /// Adds the entry of the event at `sequence` to the bucket `key`, which must be `sequence`'s
    /// (``IndexBucket/entry(_:)``).
    public mutating func append(entryOf sequence: UInt64, under key: IndexBucketKey) {
        assert(key.kindAndBucket & (1 << 56 - 1) == sequence >> IndexBucket.entryBits, "sequence #\(sequence) is not in the bucket")
        append(UInt8(truncatingIfNeeded: sequence), under: key)
    }

    /// Appends `bytes` to the bucket `key`'s value, as ``ProjectionStore/extend(_:_:with:)`` does (a
    /// bucket with no value yet is made, even for no bytes).
    public mutating func append(contentsOf bytes: [UInt8], under key: IndexBucketKey) {
        if bytes.isEmpty, buckets[key] == nil { buckets[key] = Entries() }
        for byte in bytes { append(byte, under: key) }
    }

    private mutating func append(_ byte: UInt8, under key: IndexBucketKey) {
        let nextSlot = spilled.count
        switch buckets[key, default: Entries()].append(byte, nextSlot: nextSlot) {
        case .inPlace: break
        case .new(let bytes): spilled.append(bytes)
        case .existing(let slot): spilled[slot].append(byte)
        }
    }

    /// The value of the bucket `key`; `nil` when it has none.
    public func entries(under key: IndexBucketKey) -> [UInt8]? {
        buckets[key]?.bytes(spilled: spilled)
    }

    /// Replaces the value of the bucket `key` with `entries`, or removes the bucket for `nil`.
    public mutating func set(_ entries: [UInt8]?, under key: IndexBucketKey) {
        // The entries it spilled, if any, are let go of (their slot stays, empty).
        if let slot = buckets.removeValue(forKey: key)?.spilledSlot { spilled[slot] = [] }
        guard let entries else { return }
        append(contentsOf: entries, under: key)
    }

    /// The index as stored: key → value.
    public var stored: [String: [UInt8]] {
        var stored: [String: [UInt8]] = [:]
        stored.reserveCapacity(buckets.count)
        for (key, entries) in buckets { stored[key.storedKey] = entries.bytes(spilled: spilled) }
        return stored
    }
}
