import Foundation

/// A line of human-readable output in which every interpolated value is escaped: control characters
/// (a newline, an ANSI escape sequence), format characters (bidi overrides, zero-width characters), line and
/// paragraph separators, unusual spaces, private-use and unassigned code points are written as `\u{…}`,
/// and a backslash as `\\`.
///
/// What the journal records came, much of it, from unauthenticated requests: a `client_id` holding
/// `"x\n#9 … auth.consent.revoked FORGED"` must print as one line that shows the `\u{A}`, not as a forged
/// event line, and an escape sequence must not reach the investigator's terminal. Building output as a
/// `TerminalText` makes that hold by construction: the literal parts (the program's own words, newlines
/// included) are kept, every interpolation is escaped, and a `TerminalText` interpolated into another is
/// kept as it is (escaped once).
public struct TerminalText: Sendable, Equatable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The text, safe to write to a terminal.
    public private(set) var description: String

    public init(stringLiteral literal: String) {
        description = literal
    }

    public init(stringInterpolation: Interpolation) {
        description = stringInterpolation.text
    }

    /// Joins lines of text with `separator` (a literal, kept as it is).
    public static func joined(_ parts: [TerminalText], separator: String) -> TerminalText {
        var joined = TerminalText(stringLiteral: "")
        joined.description = parts.map(\.description).joined(separator: separator)
        return joined
    }

    public struct Interpolation: StringInterpolationProtocol {
        var text = ""

        public init(literalCapacity: Int, interpolationCount: Int) {
            text.reserveCapacity(literalCapacity + 16 * interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            text += literal
        }

        /// Text that is already safe: kept as it is.
        public mutating func appendInterpolation(_ value: TerminalText) {
            text += value.description
        }

        /// Any other value: its description, escaped.
        public mutating func appendInterpolation<Value>(_ value: Value) {
            text += TerminalText.escape(String(describing: value))
        }
    }

    /// `value` with every character that does not print as itself written as `\u{hex}`, and `\` as `\\`.
    public static func escape(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: { $0 == "\\" || !prints($0) }) else { return value }
        var escaped = ""
        escaped.reserveCapacity(value.utf8.count + 8)
        for scalar in value.unicodeScalars {
            if scalar == "\\" {
                escaped += "\\\\"
            } else if prints(scalar) {
                escaped.unicodeScalars.append(scalar)
            } else {
                escaped += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            }
        }
        return escaped
    }

    /// Whether `scalar` shows as itself on a terminal: not a control, format, separator (but the plain
    /// space), private-use, surrogate or unassigned code point.
    public static func prints(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value >= 0x20 && scalar.value < 0x7F { return true }
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .spaceSeparator, .privateUse, .surrogate, .unassigned:
            return false
        default:
            return true
        }
    }
}

/// Writes `text` and a newline to standard output (or the ``CommandOutput/capture``).
public func printText(_ text: TerminalText) {
    CommandOutput.write(line: text.description)
}
