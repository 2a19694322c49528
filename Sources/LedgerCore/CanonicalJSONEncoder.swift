/// Encodes `Encodable` values as compact canonical JSON: no whitespace, object members sorted by the
/// UTF-8 bytes of their names, members whose value is `nil` left out (as `encodeIfPresent` does),
/// slashes unescaped, strings escaped only where JSON requires it (`"`, `\` and control characters).
///
/// It is what every payload and projection value is written with (``PayloadCoding/encode(_:)``).
/// Hand-written because Foundation's `JSONEncoder` with `.sortedKeys` compares member names through
/// ICU on Linux and builds a boxed value tree per call: it was about 17% of the server's CPU per
/// `/authorize` (three events and their projection values). The output is plain JSON that any decoder
/// reads; only the order of members can differ from what `JSONEncoder` wrote in earlier releases, which
/// is why comparisons of stored values go through ``PayloadCoding/canonical(_:)``.
///
/// Supported: the standard library's scalars, strings, arrays, dictionaries, optionals and any
/// `Codable` type built from them. Floating-point values are written in Swift's shortest round-trip
/// form, whole ones without a fraction (`3`, not `3.0`). `Date`, `Data` and `URL` are not special-cased
/// (no payload holds them); non-finite numbers are refused. Coding paths are not tracked (each would be an
/// allocation per member, and no payload type reads them).
public struct CanonicalJSONEncoder {
    public init() {}

    /// The JSON text of `value`.
    public func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        let node = try Self.node(of: value, codingPath: [])
        try node.write(to: &output)
        return output
    }

    static func node<T: Encodable>(of value: T, codingPath: [any CodingKey]) throws -> JSONNode {
        // The common leaves without an encoder (metatype comparisons: cheaper than dynamic casts).
        if T.self == String.self { return .string(unsafeBitCast(value, to: String.self)) }
        if T.self == Bool.self { return .bool(unsafeBitCast(value, to: Bool.self)) }
        if T.self == Int.self { return .integer(Int64(unsafeBitCast(value, to: Int.self))) }
        if T.self == Int64.self { return .integer(unsafeBitCast(value, to: Int64.self)) }
        if T.self == UInt64.self { return .unsigned(unsafeBitCast(value, to: UInt64.self)) }
        let encoder = NodeEncoder(codingPath: codingPath)
        try value.encode(to: encoder)
        // A value that encoded nothing is an empty object, as with Foundation.
        return encoder.root?.node ?? .object(ObjectBox())
    }
}

/// A JSON value under construction. Containers are boxes, because a container handed out by an encoder
/// keeps being filled after it was attached to its parent.
enum JSONNode {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case double(Double)
    case string(String)
    case array(ArrayBox)
    case object(ObjectBox)

    func write(to output: inout [UInt8]) throws {
        switch self {
        case .null: output.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
        case .bool(let value): output.append(contentsOf: value ? Array("true".utf8) : Array("false".utf8))
        case .integer(let value): output.append(contentsOf: String(value).utf8)
        case .unsigned(let value): output.append(contentsOf: String(value).utf8)
        case .double(let value):
            guard value.isFinite else { throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "not a finite number")) }
            if Self.isWrittenAsInteger(value) {
                output.append(contentsOf: String(Int64(value)).utf8)
            } else {
                output.append(contentsOf: value.description.utf8)
            }
        case .string(let value): Self.writeString(value, to: &output)
        case .array(let box):
            output.append(UInt8(ascii: "["))
            for (index, item) in box.items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                try item.write(to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let box):
            output.append(UInt8(ascii: "{"))
            for (index, member) in inNameOrder(box.members).enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                Self.writeString(member.key, to: &output)
                output.append(UInt8(ascii: ":"))
                try member.value.write(to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Whether a number is written as an integer: whole, and below 2^53 in magnitude (where every integer
    /// is exact). Payload JSON and compact values (journal format §1, §16) follow the same rule.
    static func isWrittenAsInteger(_ value: Double) -> Bool {
        value == value.rounded() && abs(value) < 9_007_199_254_740_992
    }

    static func writeString(_ string: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): output.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: output.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: output.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                output.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}

/// `members` in the order of their names' UTF-8 bytes, each name once with the value given last (as a
/// dictionary would keep it): how the JSON and the compact writer order an object, and how the JSON parser
/// orders one for the decoder's binary search. Members already in order (canonical JSON) are returned as
/// they are.
func inNameOrder<Value>(_ members: [(key: String, value: Value)]) -> [(key: String, value: Value)] {
    var inOrder = true
    for position in members.indices.dropFirst() where !members[position - 1].key.utf8.lexicographicallyPrecedes(members[position].key.utf8) {
        inOrder = false
        break
    }
    if inOrder { return members }
    // Stable by construction: of a repeated name, the value given last comes last, and stays.
    let ordered = members.indices.sorted { left, right in
        if members[left].key == members[right].key { return left < right }
        return members[left].key.utf8.lexicographicallyPrecedes(members[right].key.utf8)
    }
    var unique: [(key: String, value: Value)] = []
    unique.reserveCapacity(ordered.count)
    for (position, member) in ordered.enumerated() where position + 1 == ordered.count || members[ordered[position + 1]].key != members[member].key {
        unique.append(members[member])
    }
    return unique
}

final class ArrayBox {
    var items: [JSONNode] = []
}

/// An object's members in the order they were encoded (put in order when written, ``inNameOrder(_:)``: a
/// dictionary here cost more in hashing than the sort does).
final class ObjectBox {
    var members: [(key: String, value: JSONNode)] = []
}

/// Where an encoder's single top-level value or container goes.
final class NodeSlot {
    var node: JSONNode
    init(_ node: JSONNode) { self.node = node }
}

final class NodeEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var root: NodeSlot?

    init(codingPath: [any CodingKey]) {
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object(let box)? = root?.node {
            return KeyedEncodingContainer(KeyedNodeContainer(box: box, codingPath: codingPath))
        }
        let box = ObjectBox()
        root = NodeSlot(.object(box))
        return KeyedEncodingContainer(KeyedNodeContainer(box: box, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array(let box)? = root?.node {
            return UnkeyedNodeContainer(box: box, codingPath: codingPath)
        }
        let box = ArrayBox()
        root = NodeSlot(.array(box))
        return UnkeyedNodeContainer(box: box, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleNodeContainer(encoder: self)
    }
}

struct SingleNodeContainer: SingleValueEncodingContainer {
    let encoder: NodeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func set(_ node: JSONNode) { encoder.root = NodeSlot(node) }

    mutating func encodeNil() throws { set(.null) }
    mutating func encode(_ value: Bool) throws { set(.bool(value)) }
    mutating func encode(_ value: String) throws { set(.string(value)) }
    mutating func encode(_ value: Double) throws { set(.double(value)) }
    mutating func encode(_ value: Float) throws { set(.double(Double(value))) }
    mutating func encode(_ value: Int) throws { set(.integer(Int64(value))) }
    mutating func encode(_ value: Int8) throws { set(.integer(Int64(value))) }
    mutating func encode(_ value: Int16) throws { set(.integer(Int64(value))) }
    mutating func encode(_ value: Int32) throws { set(.integer(Int64(value))) }
    mutating func encode(_ value: Int64) throws { set(.integer(value)) }
    mutating func encode(_ value: UInt) throws { set(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt8) throws { set(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt16) throws { set(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt32) throws { set(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt64) throws { set(.unsigned(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        set(try CanonicalJSONEncoder.node(of: value, codingPath: codingPath))
    }
}

struct KeyedNodeContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: ObjectBox
    let codingPath: [any CodingKey]

    private func set(_ node: JSONNode, _ key: Key) { box.members.append((key.stringValue, node)) }

    mutating func encodeNil(forKey key: Key) throws { set(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { set(.bool(value), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { set(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { set(.double(value), key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { set(.double(Double(value)), key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { set(.integer(value), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { set(.unsigned(UInt64(value)), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { set(.unsigned(UInt64(value)), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { set(.unsigned(UInt64(value)), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { set(.unsigned(UInt64(value)), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { set(.unsigned(value), key) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        set(try CanonicalJSONEncoder.node(of: value, codingPath: codingPath), key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let nested = ObjectBox()
        set(.object(nested), key)
        return KeyedEncodingContainer(KeyedNodeContainer<NestedKey>(box: nested, codingPath: codingPath))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = ArrayBox()
        set(.array(nested), key)
        return UnkeyedNodeContainer(box: nested, codingPath: codingPath)
    }

    mutating func superEncoder() -> any Encoder { superEncoder(forKey: Key(stringValue: "super")!) }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        ReferencingEncoder(codingPath: codingPath) { [box] node in box.members.append((key.stringValue, node)) }
    }
}

struct UnkeyedNodeContainer: UnkeyedEncodingContainer {
    let box: ArrayBox
    let codingPath: [any CodingKey]
    var count: Int { box.items.count }

    private func add(_ node: JSONNode) { box.items.append(node) }

    mutating func encodeNil() throws { add(.null) }
    mutating func encode(_ value: Bool) throws { add(.bool(value)) }
    mutating func encode(_ value: String) throws { add(.string(value)) }
    mutating func encode(_ value: Double) throws { add(.double(value)) }
    mutating func encode(_ value: Float) throws { add(.double(Double(value))) }
    mutating func encode(_ value: Int) throws { add(.integer(Int64(value))) }
    mutating func encode(_ value: Int8) throws { add(.integer(Int64(value))) }
    mutating func encode(_ value: Int16) throws { add(.integer(Int64(value))) }
    mutating func encode(_ value: Int32) throws { add(.integer(Int64(value))) }
    mutating func encode(_ value: Int64) throws { add(.integer(value)) }
    mutating func encode(_ value: UInt) throws { add(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt8) throws { add(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt16) throws { add(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt32) throws { add(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt64) throws { add(.unsigned(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        add(try CanonicalJSONEncoder.node(of: value, codingPath: codingPath))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let nested = ObjectBox()
        let path = codingPath
        add(.object(nested))
        return KeyedEncodingContainer(KeyedNodeContainer<NestedKey>(box: nested, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = ArrayBox()
        let path = codingPath
        add(.array(nested))
        return UnkeyedNodeContainer(box: nested, codingPath: path)
    }

    mutating func superEncoder() -> any Encoder {
        let index = box.items.count
        add(.null)
        return ReferencingEncoder(codingPath: codingPath) { [box] node in box.items[index] = node }
    }
}

/// An encoder whose value is put in place in its parent when it is complete (`superEncoder`).
final class ReferencingEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    private let inner: NodeEncoder
    private let store: (JSONNode) -> Void

    init(codingPath: [any CodingKey], store: @escaping (JSONNode) -> Void) {
        self.codingPath = codingPath
        self.inner = NodeEncoder(codingPath: codingPath)
        self.store = store
    }

    deinit { store(inner.root?.node ?? .object(ObjectBox())) }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> { inner.container(keyedBy: type) }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { inner.unkeyedContainer() }
    func singleValueContainer() -> any SingleValueEncodingContainer { inner.singleValueContainer() }
}
