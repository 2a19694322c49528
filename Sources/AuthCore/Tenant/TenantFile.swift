import Foundation
import Yams

/// Reads tenant files: YAML (`.yaml`, `.yml`) or JSON (`.json`), by extension.
///
/// Unknown keys are an error that names them and where they are, so that a typo such as
/// `redirect_uri:` for `redirect_uris:` cannot silently leave a setting at its default.
public enum TenantFile {
    /// Reads and validates the tenant file at `path`.
    public static func load(path: String) throws(TenantFileError) -> TenantConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable(path) }
        let lower = path.lowercased()
        if lower.hasSuffix(".json") {
            return try parse(json: data)
        } else if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") {
            return try parse(yaml: String(decoding: data, as: UTF8.self))
        }
        throw .unsupportedExtension(path)
    }

    /// Parses a YAML tenant file.
    public static func parse(yaml: String) throws(TenantFileError) -> TenantConfiguration {
        if YAMLExpansion.count(yaml, limit: maximumYAMLValues) == .overLimit {
            throw .invalid("the file stands for more than \(maximumYAMLValues) values once its YAML aliases are expanded (an alias repeats all that its anchor names)")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch {
            throw .syntax("\(error)")
        }
        guard let node else { throw .syntax("the file is empty") }
        return try decode(try plainValue(node))
    }

    /// The most values (scalars, sequences and mappings) a YAML tenant file may stand for once its aliases
    /// are expanded; a file over it is refused before it is composed. An alias (`*name`) repeats the node its
    /// anchor (`&name`) names, so a few hundred bytes of aliases of aliases ("billion laughs") stand for
    /// billions of values, all of which composing (Yams hashes every mapping key, expanded) and reading
    /// would walk. A tenant of tens of thousands of users holds a few hundred
    /// thousand values.
    public static let maximumYAMLValues = 1_000_000

    /// Parses a JSON tenant file.
    public static func parse(json: Data) throws(TenantFileError) -> TenantConfiguration {
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: json)
        } catch {
            throw .syntax("\(error.localizedDescription)")
        }
        return try decode(value)
    }

    private static func decode(_ value: Any) throws(TenantFileError) -> TenantConfiguration {
        guard value is [String: Any] else { throw .invalid("the top level must be a mapping with tenant, apis, clients, ...") }
        try TenantSchema.check(value)
        do {
            let data = try JSONSerialization.data(withJSONObject: value)
            return try JSONDecoder().decode(TenantConfiguration.self, from: data)
        } catch let error as DecodingError {
            throw .invalid(Self.describe(error))
        } catch {
            throw .invalid("\(error)")
        }
    }

    /// YAML as plain JSON-compatible values. Scalars keep the type YAML's core schema gives them, except
    /// timestamps, which stay strings (they are parsed as RFC 3339 where they are used).
    private static func plainValue(_ node: Node) throws(TenantFileError) -> Any {
        switch node {
        case .scalar(let scalar):
            switch node.tag.description {
            case "tag:yaml.org,2002:int": return integer(scalar.string) ?? scalar.string
            case "tag:yaml.org,2002:bool": return node.bool ?? scalar.string
            case "tag:yaml.org,2002:float": return node.float ?? scalar.string
            case "tag:yaml.org,2002:null": return NSNull()
            default: return scalar.string
            }
        case .mapping(let mapping):
            var object: [String: Any] = [:]
            for (key, value) in mapping {
                guard let name = key.string else { throw .invalid("a mapping key is not a string") }
                object[name] = try plainValue(value)
            }
            return object
        case .sequence(let sequence):
            var array: [Any] = []
            for element in sequence { array.append(try plainValue(element)) }
            return array
        case .alias:
            // Yams' composer replaces every alias with the node its anchor names: none is left to read.
            throw .invalid("a YAML alias that names no anchor")
        }
    }

    /// An integer scalar's value: decimal, `0x` hexadecimal, `0o` or leading-zero octal, `_` separators allowed; `nil`
    /// for one out of range or in another form (YAML 1.1's base 60, `1:30`), which then stays a string and
    /// is refused where a number is wanted. Not Yams' `Node.int`: its base-60 arithmetic traps on overflow,
    /// so one hostile line crashed every command that reads the file (found by `tools/fuzz`, target `tenant`).
    static func integer(_ text: String) -> Int? {
        var digits = text.replacingOccurrences(of: "_", with: "")
        var sign = ""
        if let first = digits.first, first == "-" || first == "+" {
            sign = first == "-" ? "-" : ""
            digits.removeFirst()
        }
        if digits.hasPrefix("0x") { return Int(sign + digits.dropFirst(2), radix: 16) }
        if digits.hasPrefix("0o") { return Int(sign + digits.dropFirst(2), radix: 8) }
        // YAML 1.1 (which Yams resolves by): a leading zero is octal, `017` is 15.
        if digits.count > 1, digits.hasPrefix("0") { return Int(sign + digits.dropFirst(), radix: 8) }
        return Int(sign + digits)
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: ["."])
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing key '\(key.stringValue)' at \(path(context.codingPath).isEmpty ? "top level" : path(context.codingPath))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "invalid value at \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// The keys each object of a tenant file may have.
enum TenantSchema {
    indirect enum Shape: Sendable {
        case object([String: Shape])
        case array(Shape)
        case value
    }

    static func keys<K: CodingKey & CaseIterable>(_ type: K.Type, _ nested: [String: Shape] = [:]) -> Shape {
        .object(Dictionary(uniqueKeysWithValues: K.allCases.map { ($0.stringValue, nested[$0.stringValue] ?? .value) }))
    }

    static let tenantFile: Shape = keys(
        TenantConfiguration.CodingKeys.self,
        [
            "tenant": keys(TenantSettings.CodingKeys.self),
            "retention": keys(RetentionSettings.CodingKeys.self),
            "apis": .array(keys(APIDefinition.CodingKeys.self)),
            "clients": .array(keys(ClientDefinition.CodingKeys.self)),  // `jwks` is a JWK Set, checked where it is used
            "client_grants": .array(keys(ClientGrantDefinition.CodingKeys.self)),
            "connections": .array(keys(ConnectionDefinition.CodingKeys.self, ["users": .array(keys(UserDefinition.CodingKeys.self, ["address": keys(AddressDefinition.CodingKeys.self)]))])),
            "organizations": .array(
                keys(OrganizationDefinition.CodingKeys.self, ["invitations": .array(keys(InvitationDefinition.CodingKeys.self))])),
        ])

    /// Throws naming every unknown key and where it is.
    static func check(_ value: Any) throws(TenantFileError) {
        var unknown: [String] = []
        walk(value, tenantFile, path: "", unknown: &unknown)
        if !unknown.isEmpty { throw .unknownKeys(unknown) }
    }

    private static func walk(_ value: Any, _ shape: Shape, path: String, unknown: inout [String]) {
        switch shape {
        case .object(let fields):
            guard let object = value as? [String: Any] else { return }  // type errors are reported by decoding
            for key in object.keys.sorted() {
                let here = path.isEmpty ? key : "\(path).\(key)"
                if let field = fields[key] {
                    walk(object[key]!, field, path: here, unknown: &unknown)
                } else {
                    unknown.append(here)
                }
            }
        case .array(let element):
            guard let array = value as? [Any] else { return }
            for (index, item) in array.enumerated() { walk(item, element, path: "\(path)[\(index)]", unknown: &unknown) }
        case .value:
            break
        }
    }
}

/// Why a tenant file was refused.
public enum TenantFileError: Error, Equatable, CustomStringConvertible {
    case unreadable(String)
    case unsupportedExtension(String)
    case syntax(String)
    case unknownKeys([String])
    case invalid(String)

    public var description: String {
        switch self {
        case .unreadable(let path): "tenant file \(path) cannot be read"
        case .unsupportedExtension(let path): "tenant file \(path) must end in .yaml, .yml or .json"
        case .syntax(let reason): "tenant file is not valid YAML/JSON: \(reason)"
        case .unknownKeys(let keys): "tenant file has unknown keys: \(keys.joined(separator: ", "))"
        case .invalid(let reason): "tenant file is invalid: \(reason)"
        }
    }
}
