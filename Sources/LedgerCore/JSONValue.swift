/// Any JSON value, decoded and encoded with the same coders as every payload (``PayloadCoding``): what
/// `PersonalData` walks to find, seal and open the personal values of a
/// payload whose Swift type it does not know.
///
/// Written here rather than using Foundation's `JSONSerialization`, whose writer on Linux sorts keys with
/// ICU collation: it took about 70% of the time sealing a flow's events took. Integers keep their exact
/// value (sequence numbers, microsecond times); payloads hold no other numbers.
public enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public var string: String? {
        if case .string(let value) = self { value } else { nil }
    }

    public var object: [String: JSONValue]? {
        if case .object(let value) = self { value } else { nil }
    }

    /// Whether this is a sealed value: an object with `"sealed": 1`.
    public var isSealedValue: Bool {
        guard case .object(let members) = self else { return false }
        return members["sealed"] == .integer(1) || members["sealed"] == .unsigned(1)
    }

    /// Tries the kinds in the order they are most common in payloads (strings, then objects), because a
    /// failed attempt throws, and throwing is what decoding costs most.
    public init(from decoder: any Decoder) throws {
        let value = try decoder.singleValueContainer()
        if value.decodeNil() {
            self = .null
        } else if let string = try? value.decode(String.self) {
            self = .string(string)
        } else if let object = try? decoder.container(keyedBy: AnyKey.self) {
            var members: [String: JSONValue] = [:]
            for key in object.allKeys { members[key.stringValue] = try object.decode(JSONValue.self, forKey: key) }
            self = .object(members)
        } else if var array = try? decoder.unkeyedContainer() {
            var values: [JSONValue] = []
            while !array.isAtEnd { values.append(try array.decode(JSONValue.self)) }
            self = .array(values)
        } else if let integer = try? value.decode(Int64.self) {
            self = .integer(integer)
        } else if let bool = try? value.decode(Bool.self) {
            self = .bool(bool)
        } else if let unsigned = try? value.decode(UInt64.self) {
            self = .unsigned(unsigned)
        } else {
            self = .number(try value.decode(Double.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var value = encoder.singleValueContainer()
            try value.encodeNil()
        case .bool(let bool):
            var value = encoder.singleValueContainer()
            try value.encode(bool)
        case .integer(let integer):
            var value = encoder.singleValueContainer()
            try value.encode(integer)
        case .unsigned(let unsigned):
            var value = encoder.singleValueContainer()
            try value.encode(unsigned)
        case .number(let number):
            var value = encoder.singleValueContainer()
            try value.encode(number)
        case .string(let string):
            var value = encoder.singleValueContainer()
            try value.encode(string)
        case .array(let values):
            var array = encoder.unkeyedContainer()
            for element in values { try array.encode(element) }
        case .object(let members):
            var object = encoder.container(keyedBy: AnyKey.self)
            for (name, member) in members { try object.encode(member, forKey: AnyKey(name)) }
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
