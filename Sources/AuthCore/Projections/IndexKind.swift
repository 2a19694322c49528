import LedgerCore

/// What the timeline index is keyed by.
///
/// The first five are what `timeline` selects on (``EventSubjects``). The last three let the forensics
/// tools answer about one decision or one moment without reading the journal from its start
/// (``AuthProjection/historyEntries(_:)``).
///
/// A value's entries are kept in buckets of 256 consecutive sequence numbers (``IndexBucket``): one key per
/// value and bucket — the kind's letter, a digest of the value and the bucket's number, written in
/// ``IndexKeyDigits`` (33 bytes) — whose value holds the last byte of each of its events' sequence numbers,
/// in order. All keys of one value share the first 23 bytes, in the order of their buckets. The value
/// itself is not kept: the index finds events, which hold it.
public enum IndexKind: String, CaseIterable, Sendable {
    case user = "u", client = "c", code = "k", session = "s", address = "i"
    /// The events that change the configuration (value ``IndexKind/tenant``): a decision's configuration
    /// version is rebuilt from them alone.
    case configuration = "g"
    /// A user's consent grants and revocations: the user's consents at any moment are folded from them alone.
    case consent = "n"
    /// A refresh token family's rotations and revocation.
    case refreshFamily = "f"
    /// The events recorded by one traced request, by its trace id (``RequestTrace``).
    case trace = "t"

    /// The one value ``IndexKind/configuration`` entries are kept under: there is one configuration.
    public static let tenant = "tenant"

    /// How many bytes of the value's SHA-256 the key keeps: 128 bits, so that no value can be chosen to
    /// share another's entries (a second preimage), and no two values share them by chance.
    static let digestBytes = 16

    /// The index key prefix of `value`: the kind's letter, then the first 16 bytes of the value's SHA-256.
    public func prefix(_ value: String) -> String {
        String(decoding: prefixCharacters(value, reserving: 0), as: UTF8.self)
    }

    /// The index key of the bucket that holds `value`'s entry for the event at `sequence`: its prefix, then
    /// the bucket's number.
    public func key(_ value: String, sequence: UInt64) -> String {
        // Built in one buffer: a rebuild makes a few for every event, and joining strings cost a tenth of it.
        var characters = prefixCharacters(value, reserving: IndexBucket.numberDigits)
        IndexBucket.appendDigits(of: sequence, to: &characters)
        return String(decoding: characters, as: UTF8.self)
    }

    private func prefixCharacters(_ value: String, reserving extra: Int) -> [UInt8] {
        var characters: [UInt8] = []
        characters.reserveCapacity(rawValue.utf8.count + IndexKeyDigits.count(forBytes: Self.digestBytes) + extra)
        characters += rawValue.utf8
        Self.withDigest(of: value) { IndexKeyDigits.append($0.prefix(Self.digestBytes), to: &characters) }
        return characters
    }

    /// Calls `body` with the SHA-256 of `value`'s UTF-8, whose first ``digestBytes`` bytes its keys keep.
    static func withDigest<R>(of value: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        value.utf8.withContiguousStorageIfAvailable { SHA256Digest.withHash(of: UnsafeRawBufferPointer($0), body) }
            ?? SHA256Digest.withHash(of: Array(value.utf8), body)
    }
}

/// Index entries kept by the bucket: one key per value and run of 256 sequence numbers, whose value lists
/// the last byte of each sequence number of the value's events in that run, increasing.
///
/// An entry per event under a key of its own cost a key (34 bytes), and LMDB's node around it, for each
/// event a value concerns; most values (a client, a user, a session, an address) concern several events
/// in a row, so a bucket keeps them for a byte each. Writing one is a blind append to the bucket's value
/// (``ProjectionStore/addIndexEntry(_:_:sequence:)``, which stores do with
/// ``ProjectionStore/extend(_:_:with:)``: PostgreSQL without reading the value first).
public enum IndexBucket {
    /// How many low bits of a sequence number its bucket leaves to the entry: 8, one byte per entry.
    static let entryBits: UInt64 = 8
    /// The length of a key's last part, the bucket's number (seven bytes: sequence numbers have 64 bits).
    static let numberDigits = IndexKeyDigits.count(forBytes: 7)

    /// Appends the bucket number of `sequence`, in ``IndexKeyDigits``, to `characters`.
    static func appendDigits(of sequence: UInt64, to characters: inout [UInt8]) {
        IndexKeyDigits.append((sequence >> entryBits).bigEndianBytes.dropFirst(), to: &characters)
    }

    /// The bucket's number that `key` ends in (a sequence number without its low byte); `nil` when it
    /// does not end in one.
    static func number(inKey key: some Collection<UInt8>) -> UInt64? {
        guard key.count >= numberDigits, let number = IndexKeyDigits.decode(key.suffix(numberDigits), bytes: 7) else { return nil }
        return UInt64(bigEndianBytes: [0] + number)
    }

    /// What `sequence`'s entry adds to its bucket's value.
    public static func entry(_ sequence: UInt64) -> [UInt8] { [UInt8(truncatingIfNeeded: sequence)] }

    /// The sequence numbers of the bucket stored under `key` with `value`; `nil` when the key does not end
    /// in a bucket number, or the value is empty or not increasing.
    public static func sequences(inKey key: some BidirectionalCollection<UInt8>, value: [UInt8]) -> [UInt64]? {
        guard !value.isEmpty, let bucket = number(inKey: key) else { return nil }
        let base = bucket << entryBits
        var sequences: [UInt64] = []
        sequences.reserveCapacity(value.count)
        for byte in value {
            let sequence = base | UInt64(byte)
            if let last = sequences.last, sequence <= last { return nil }
            sequences.append(sequence)
        }
        return sequences
    }
}

/// Bytes written as text whose bytewise order is the order of the bytes: six bits per character, from the
/// 64 consecutive ASCII characters `0` (0x30) to `o` (0x6F), the last character's unused bits zero.
///
/// The projections' keys are text (``ProjectionStore``), and hexadecimal would take a third more bytes;
/// base64's alphabet is not in ASCII order, so its keys would not sort as their numbers do.
public enum IndexKeyDigits {
    static let first: UInt8 = 0x30

    /// How many characters `count` bytes take.
    public static func count(forBytes count: Int) -> Int { (count * 8 + 5) / 6 }

    /// The characters of `bytes`.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var characters: [UInt8] = []
        characters.reserveCapacity(count(forBytes: bytes.count))
        append(bytes, to: &characters)
        return String(decoding: characters, as: UTF8.self)
    }

    /// Appends the characters of `bytes` to `characters`.
    static func append(_ bytes: some Collection<UInt8>, to characters: inout [UInt8]) {
        var bits: UInt32 = 0
        var held = 0
        for byte in bytes {
            bits = bits << 8 | UInt32(byte)
            held += 8
            while held >= 6 {
                held -= 6
                characters.append(first + UInt8(bits >> UInt32(held) & 0x3F))
            }
        }
        if held > 0 { characters.append(first + UInt8(bits << UInt32(6 - held) & 0x3F)) }
    }

    /// The `count` bytes that `characters` encode; `nil` for any other length, a character outside the
    /// alphabet, or unused bits that are not zero.
    public static func decode(_ characters: some Collection<UInt8>, bytes count: Int) -> [UInt8]? {
        guard characters.count == Self.count(forBytes: count) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        var bits: UInt32 = 0
        var held = 0
        for character in characters {
            guard character >= first, character < first + 64 else { return nil }
            bits = bits << 6 | UInt32(character - first)
            held += 6
            if held >= 8 {
                held -= 8
                bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(held)))
            }
        }
        guard bits & (1 << UInt32(held) - 1) == 0 else { return nil }
        return bytes
    }
}
