/// Appends big-endian integers and length-prefixed fields to a byte buffer.
///
/// Hand-written because the envelope format is a fixed, documented byte layout
/// (docs/journal-format.md) that no general serialisation library guarantees.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func write(_ value: UInt8) { bytes.append(value) }
    mutating func write(_ value: UInt16) { writeBigEndian(UInt64(value), width: 2) }
    mutating func write(_ value: UInt32) { writeBigEndian(UInt64(value), width: 4) }
    mutating func write(_ value: UInt64) { writeBigEndian(value, width: 8) }
    mutating func write(_ value: Int64) { writeBigEndian(UInt64(bitPattern: value), width: 8) }
    mutating func write(_ raw: [UInt8]) { bytes.append(contentsOf: raw) }
    mutating func write(_ text: String.UTF8View) { bytes.append(contentsOf: text) }

    private mutating func writeBigEndian(_ value: UInt64, width: Int) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0.suffix(width)) }
    }
}

/// Reads what ``ByteWriter`` writes, failing rather than trapping on short input.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset: Int = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func read(count: Int) -> [UInt8]? {
        range(count: count).map { Array(bytes[$0]) }
    }

    /// Where the next `count` bytes lie, and past them: a field passed over or read in place, not copied.
    mutating func range(count: Int) -> Range<Int>? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return offset..<offset + count
    }

    mutating func readUInt8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }
    mutating func readUInt16() -> UInt16? { readBigEndian(width: 2).map { UInt16($0) } }
    mutating func readUInt32() -> UInt32? { readBigEndian(width: 4).map { UInt32($0) } }
    mutating func readUInt64() -> UInt64? { readBigEndian(width: 8) }
    mutating func readInt64() -> Int64? { readBigEndian(width: 8).map { Int64(bitPattern: $0) } }

    /// Read in place: an array per integer was a few percent of reading every record.
    private mutating func readBigEndian(width: Int) -> UInt64? {
        guard remaining >= width else { return nil }
        var value: UInt64 = 0
        for index in offset..<offset + width { value = value << 8 | UInt64(bytes[index]) }
        offset += width
        return value
    }
}

extension UInt64 {
    /// The 8 big-endian bytes of the value: the key order LMDB sorts numerically.
    public var bigEndianBytes: [UInt8] {
        withUnsafeBytes(of: bigEndian) { Array($0) }
    }

    /// Reads 8 big-endian bytes; `nil` for any other length.
    public init?(bigEndianBytes bytes: some Collection<UInt8>) {
        guard bytes.count == 8 else { return nil }
        self = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Reads 8 big-endian bytes; `nil` for any other length. (The generic form, called from another module
    /// for every stored key a journal walk reads, went through the generic `reduce` unspecialised.)
    public init?(bigEndianBytes bytes: [UInt8]) {
        guard bytes.count == 8 else { return nil }
        var value: UInt64 = 0
        for byte in bytes { value = value << 8 | UInt64(byte) }
        self = value
    }
}
