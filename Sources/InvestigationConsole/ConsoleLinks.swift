/// The console's URLs: each page answers one `authledger-replay` command, its query parameters the
/// command's options (without the dashes).
public enum ConsoleLink {
    public static let home = "/"
    public static let verify = "/verify"

    public static func explain(_ sequence: UInt64) -> String { "/explain/\(sequence)" }
    public static func event(_ sequence: UInt64) -> String { "/event/\(sequence)" }

    /// `timeline` with `filters` (`("user", "auth0|bob")`, `("from", "#12")`…).
    public static func timeline(_ filters: [(String, String)]) -> String { path("/timeline", filters) }

    /// `timeline` for command-line arguments of the form `--name=value` (as the incident report names them).
    public static func timeline(arguments: [String]) -> String {
        timeline(
            arguments.compactMap { argument in
                guard argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") else { return nil }
                return (String(argument[argument.index(argument.startIndex, offsetBy: 2)..<equals]), String(argument[argument.index(after: equals)...]))
            })
    }

    public static func consent(user: String, at moment: String? = nil) -> String {
        path("/consent", [("user", user)] + (moment.map { [("at", $0)] } ?? []))
    }

    public static func report(from: String? = nil, to: String? = nil) -> String {
        path("/report", [from.map { ("from", $0) }, to.map { ("to", $0) }].compactMap { $0 })
    }

    static func path(_ path: String, _ items: [(String, String)]) -> String {
        guard !items.isEmpty else { return path }
        return path + "?" + items.map { "\(encode($0.0))=\(encode($0.1))" }.joined(separator: "&")
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters.
    static func encode(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                encoded += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]], as: UTF8.self)
            }
        }
        return encoded
    }
}
