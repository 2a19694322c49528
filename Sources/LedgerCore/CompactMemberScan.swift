extension CompactCoding {
    /// Whether an object anywhere in the compact value `bytes` has a member named one of `names`, found by
    /// walking the encoding without building anything: for a reader that decides from it whether to decode
    /// at all (sealing a payload's personal values, which most payloads do not hold).
    ///
    /// Searching for the name's bytes, as a JSON reader may, does not do here: in the named form a name of
    /// ``memberNames`` is a one- or two-byte position, which hashes, times and lengths hold by chance — a
    /// search for `login_hint` (one byte, 0x7F) found it in every authorization decision of a session
    /// whose hash held that byte, one session in eight.
    ///
    /// The walk checks only what it needs to find its way (tags, counts within the bytes, depth); it is not
    /// a validation, and a value it accepts may still be refused by ``decode(_:from:)``.
    /// - Returns: `nil` when the bytes are not a compact value as far as the walk goes (an unknown tag, a
    ///   count beyond the bytes, nesting deeper than a decoder accepts); a caller then decodes, and learns why.
    public static func containsMember(namedAnyOf names: [String], in bytes: [UInt8]) -> Bool? {
        let wanted = WantedNames(names)
        return bytes.withUnsafeBufferPointer { buffer -> Bool? in
            var scan = CompactMemberScan(bytes: buffer, wanted: wanted)
            do {
                if try scan.value(depth: 0) { return true }
                return scan.offset == buffer.count ? false : nil
            } catch {
                return nil
            }
        }
    }

    /// The names a scan looks for, as each form of object writes them.
    struct WantedNames {
        /// Their positions in ``CompactCoding/memberNames`` (the named form writes those as positions).
        var positions: [UInt64] = []
        /// Their UTF-8 (the plain form writes every name so, the named form the names not in the table).
        var texts: [[UInt8]] = []

        init(_ names: [String]) {
            for name in names {
                if let position = CompactCoding.memberNamePositions[name] { positions.append(UInt64(position)) }
                texts.append(Array(name.utf8))
            }
        }
    }
}

/// The walk of ``CompactCoding/containsMember(namedAnyOf:in:)``: the value's structure, skipped over in
/// place, stopping at the first wanted member's name.
private struct CompactMemberScan {
    struct Malformed: Error {}

    let bytes: UnsafeBufferPointer<UInt8>
    let wanted: CompactCoding.WantedNames
    var offset = 0

    /// Whether the value starting here, or anything in it, has a wanted member.
    mutating func value(depth: Int) throws(Malformed) -> Bool {
        guard depth <= CompactReader.maximumDepth, let tag = CompactCoding.Tag(rawValue: try byte()) else { throw Malformed() }
        switch tag {
        case .null, .false, .true:
            return false
        case .unsigned, .negative, .time:
            _ = try varint()
            return false
        case .double:
            try skip(8)
            return false
        case .pseudonym:
            try skip(32)
            return false
        case .string, .hex, .base64, .base64URL:
            try skip(try count())
            return false
        case .array:
            for _ in 0..<(try count()) {
                if try value(depth: depth + 1) { return true }
            }
            return false
        case .object, .namedObject:
            let named = tag == .namedObject
            for _ in 0..<(try count()) {
                if try memberName(named: named) { return true }
                if try value(depth: depth + 1) { return true }
            }
            return false
        }
    }

    /// Reads a member's name: whether it is a wanted one.
    private mutating func memberName(named: Bool) throws(Malformed) -> Bool {
        let length: Int
        if named {
            let reference = try varint()
            if reference & 1 == 1 { return wanted.positions.contains(reference >> 1) }
            guard reference >> 1 <= UInt64(bytes.count - offset) else { throw Malformed() }
            length = Int(reference >> 1)
        } else {
            length = try count()
        }
        let name = UnsafeBufferPointer(rebasing: bytes[offset..<offset + length])
        offset += length
        return wanted.texts.contains { $0.elementsEqual(name) }
    }

    private mutating func byte() throws(Malformed) -> UInt8 {
        guard offset < bytes.count else { throw Malformed() }
        defer { offset += 1 }
        return bytes[offset]
    }

    private mutating func varint() throws(Malformed) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 64 else { throw Malformed() }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { return value }
            shift += 7
        }
    }

    /// A count of items or bytes, each at least one byte: never more than the bytes left.
    private mutating func count() throws(Malformed) -> Int {
        let value = try varint()
        guard value <= UInt64(bytes.count - offset) else { throw Malformed() }
        return Int(value)
    }

    private mutating func skip(_ count: Int) throws(Malformed) {
        guard count <= bytes.count - offset else { throw Malformed() }
        offset += count
    }
}
