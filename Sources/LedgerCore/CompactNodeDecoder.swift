/// A `Decoder` over a decoded compact value (``CompactCoding/decode(_:from:)``).
///
/// Numbers decode into any numeric type that holds them exactly; a time stored as such decodes into a
/// ``LedgerTimestamp`` without going through its text, and into a `String` as its RFC 3339 text.
struct CompactNodeDecoder: Decoder {
    let node: CompactNode
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// Coding paths are built only when they are read (an error, or a type that asks): an array per
    /// member decoded was a good part of the decoding's time.
    static func decode<T: Decodable>(_ type: T.Type, from node: CompactNode, codingPath: @autoclosure () -> [any CodingKey]) throws -> T {
        // The common leaves without a decoder (metatype comparisons: cheaper than dynamic casts).
        if T.self == String.self { return unsafeBitCast(try string(node, codingPath()), to: T.self) }
        if T.self == LedgerTimestamp.self, case .time(let time) = node { return unsafeBitCast(time, to: T.self) }
        if T.self == UInt64.self { return unsafeBitCast(try integer(UInt64.self, node, codingPath()), to: T.self) }
        if T.self == Bool.self { return unsafeBitCast(try bool(node, codingPath()), to: T.self) }
        return try T(from: CompactNodeDecoder(node: node, codingPath: codingPath()))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = node else { throw Self.mismatch([String: Int].self, node, codingPath) }
        return KeyedDecodingContainer(CompactKeyedContainer<Key>(members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = node else { throw Self.mismatch([Int].self, node, codingPath) }
        return CompactUnkeyedContainer(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        CompactSingleValueContainer(node: node, codingPath: codingPath)
    }

    static func mismatch(_ type: Any.Type, _ node: CompactNode, _ codingPath: @autoclosure () -> [any CodingKey]) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath(), debugDescription: "expected \(type), found \(node.kind)"))
    }

    static func string(_ node: CompactNode, _ codingPath: @autoclosure () -> [any CodingKey]) throws -> String {
        switch node {
        case .string(let value): value
        case .time(let time): time.rfc3339
        default: throw mismatch(String.self, node, codingPath())
        }
    }

    static func bool(_ node: CompactNode, _ codingPath: @autoclosure () -> [any CodingKey]) throws -> Bool {
        guard case .bool(let value) = node else { throw mismatch(Bool.self, node, codingPath()) }
        return value
    }

    static func integer<T: FixedWidthInteger>(_ type: T.Type, _ node: CompactNode, _ codingPath: @autoclosure () -> [any CodingKey]) throws -> T {
        let exact: T? =
            switch node {
            case .unsigned(let value): T(exactly: value)
            case .negative(let value): T(exactly: value)
            case .double(let value): T(exactly: value)
            default: throw mismatch(type, node, codingPath())
            }
        guard let exact else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath(), debugDescription: "the number does not fit \(type)"))
        }
        return exact
    }

    static func double(_ node: CompactNode, _ codingPath: @autoclosure () -> [any CodingKey]) throws -> Double {
        switch node {
        case .unsigned(let value): Double(value)
        case .negative(let value): Double(value)
        case .double(let value): value
        default: throw mismatch(Double.self, node, codingPath())
        }
    }
}

struct CompactSingleValueContainer: SingleValueDecodingContainer {
    let node: CompactNode
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool {
        if case .null = node { return true }
        return false
    }

    func decode(_ type: Bool.Type) throws -> Bool { try CompactNodeDecoder.bool(node, codingPath) }
    func decode(_ type: String.Type) throws -> String { try CompactNodeDecoder.string(node, codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try CompactNodeDecoder.double(node, codingPath) }
    func decode(_ type: Float.Type) throws -> Float { Float(try CompactNodeDecoder.double(node, codingPath)) }
    func decode(_ type: Int.Type) throws -> Int { try CompactNodeDecoder.integer(type, node, codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try CompactNodeDecoder.integer(type, node, codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try CompactNodeDecoder.integer(type, node, codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try CompactNodeDecoder.integer(type, node, codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try CompactNodeDecoder.integer(type, node, codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try CompactNodeDecoder.integer(type, node, codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try CompactNodeDecoder.integer(type, node, codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try CompactNodeDecoder.integer(type, node, codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try CompactNodeDecoder.integer(type, node, codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try CompactNodeDecoder.integer(type, node, codingPath) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try CompactNodeDecoder.decode(type, from: node, codingPath: codingPath) }
}

struct CompactKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    /// Sorted by the names' bytes (the reader checked it), so that a member is found by binary search.
    let members: [(key: String, value: CompactNode)]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { members.compactMap { Key(stringValue: $0.key) } }

    private func member(_ key: Key) -> CompactNode? {
        let name = key.stringValue
        var low = 0
        var high = members.count
        while low < high {
            let middle = (low + high) / 2
            let candidate = members[middle].key
            if candidate == name { return members[middle].value }
            if candidate.utf8.lexicographicallyPrecedes(name.utf8) { low = middle + 1 } else { high = middle }
        }
        return nil
    }

    private func required(_ key: Key) throws -> CompactNode {
        guard let node = member(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no member \"\(key.stringValue)\""))
        }
        return node
    }

    func contains(_ key: Key) -> Bool { member(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        if case .null = try required(key) { return true }
        return false
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try CompactNodeDecoder.bool(required(key), codingPath + [key]) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try CompactNodeDecoder.string(required(key), codingPath + [key]) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try CompactNodeDecoder.double(required(key), codingPath + [key]) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try CompactNodeDecoder.double(required(key), codingPath + [key])) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try CompactNodeDecoder.integer(type, required(key), codingPath + [key]) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try CompactNodeDecoder.integer(type, required(key), codingPath + [key]) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try CompactNodeDecoder.integer(type, required(key), codingPath + [key]) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try CompactNodeDecoder.integer(type, required(key), codingPath + [key]) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try CompactNodeDecoder.integer(type, required(key), codingPath + [key]) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try CompactNodeDecoder.integer(type, required(key), codingPath + [key]) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try CompactNodeDecoder.integer(type, required(key), codingPath + [key]) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try CompactNodeDecoder.integer(type, required(key), codingPath + [key]) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try CompactNodeDecoder.integer(type, required(key), codingPath + [key]) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try CompactNodeDecoder.integer(type, required(key), codingPath + [key]) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try CompactNodeDecoder.decode(type, from: required(key), codingPath: codingPath + [key])
    }

    // One lookup instead of the three of the default implementation (contains, decodeNil, decode).
    private func present(_ key: Key) -> CompactNode? {
        guard let node = member(key) else { return nil }
        if case .null = node { return nil }
        return node
    }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        try present(key).map { try CompactNodeDecoder.string($0, codingPath + [key]) }
    }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        try present(key).map { try CompactNodeDecoder.bool($0, codingPath + [key]) }
    }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        try present(key).map { try CompactNodeDecoder.integer(type, $0, codingPath + [key]) }
    }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? {
        try present(key).map { try CompactNodeDecoder.integer(type, $0, codingPath + [key]) }
    }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? {
        try present(key).map { try CompactNodeDecoder.integer(type, $0, codingPath + [key]) }
    }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try present(key).map { try CompactNodeDecoder.decode(type, from: $0, codingPath: codingPath + [key]) }
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try CompactNodeDecoder(node: required(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try CompactNodeDecoder(node: required(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        CompactNodeDecoder(node: member(Key(stringValue: "super")!) ?? .null, codingPath: codingPath)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        CompactNodeDecoder(node: member(key) ?? .null, codingPath: codingPath + [key])
    }
}

struct CompactUnkeyedContainer: UnkeyedDecodingContainer {
    let items: [CompactNode]
    let codingPath: [any CodingKey]
    private(set) var currentIndex = 0

    init(items: [CompactNode], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next(_ type: Any.Type) throws -> CompactNode {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath, debugDescription: "the array has no more items"))
        }
        defer { currentIndex += 1 }
        return items[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, case .null = items[currentIndex] else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try CompactNodeDecoder.bool(next(type), codingPath) }
    mutating func decode(_ type: String.Type) throws -> String { try CompactNodeDecoder.string(next(type), codingPath) }
    mutating func decode(_ type: Double.Type) throws -> Double { try CompactNodeDecoder.double(next(type), codingPath) }
    mutating func decode(_ type: Float.Type) throws -> Float { Float(try CompactNodeDecoder.double(next(type), codingPath)) }
    mutating func decode(_ type: Int.Type) throws -> Int { try CompactNodeDecoder.integer(type, next(type), codingPath) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try CompactNodeDecoder.integer(type, next(type), codingPath) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try CompactNodeDecoder.integer(type, next(type), codingPath) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try CompactNodeDecoder.integer(type, next(type), codingPath) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try CompactNodeDecoder.integer(type, next(type), codingPath) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try CompactNodeDecoder.integer(type, next(type), codingPath) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try CompactNodeDecoder.integer(type, next(type), codingPath) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try CompactNodeDecoder.integer(type, next(type), codingPath) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try CompactNodeDecoder.integer(type, next(type), codingPath) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try CompactNodeDecoder.integer(type, next(type), codingPath) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try CompactNodeDecoder.decode(type, from: next(type), codingPath: codingPath)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try CompactNodeDecoder(node: next([String: Int].self), codingPath: codingPath).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try CompactNodeDecoder(node: next([Int].self), codingPath: codingPath).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        CompactNodeDecoder(node: try next(Any.self), codingPath: codingPath)
    }
}
