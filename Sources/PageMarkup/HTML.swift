/// HTML text with every interpolated value escaped.
///
/// Hand-written because AuthLedger's pages (the login, consent and callback pages, the incident
/// report) are few and small and must not pull in a template engine or any third-party asset. Every
/// value goes through ``escape(_:)`` (`& < > " '`), so reflected input is inert in text and in
/// quoted attribute values alike.
public struct HTML: Sendable {
    /// The markup built so far.
    public private(set) var text: String

    /// Starts from trusted markup.
    public init(_ literal: String = "") { text = literal }

    /// `value` with `& < > " '` replaced by character references.
    public static func escape(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for character in value.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    /// Appends trusted markup.
    public mutating func raw(_ markup: String) { text += markup }

    /// Appends an escaped value.
    public mutating func value(_ value: String) { text += Self.escape(value) }

    /// A whole page: the document frame (language, charset, viewport, `title`, the inline `style`) around
    /// `body` in a `<main>`. No script and no external asset come from the frame.
    public static func document(title: String, style: String, body: HTML) -> String {
        var html = HTML("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        html.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>")
        html.value(title)
        html.raw("</title>\n<style>\(style)</style>\n</head>\n<body>\n<main>\n")
        html.raw(body.text)
        html.raw("</main>\n</body>\n</html>\n")
        return html.text
    }

    /// `<input type="hidden" name=… value=…>`.
    public mutating func hidden(_ name: String, _ value: String) {
        raw("<input type=\"hidden\" name=\"\(Self.escape(name))\" value=\"\(Self.escape(value))\">\n")
    }
}
