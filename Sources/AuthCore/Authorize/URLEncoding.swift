/// `application/x-www-form-urlencoded` and URL query handling.
///
/// Hand-written because Foundation's `URLComponents` merges repeated parameters silently and rejects
/// some inputs the server must answer with a precise error instead; the rules here are the WHATWG
/// urlencoded parser's (split on `&`, first `=`, `+` is a space, percent-decoding, invalid UTF-8 replaced).
public enum FormEncoding {
    /// The name–value pairs of a query string or form body, in order, repeats kept.
    public static func parse(_ text: Substring) -> [(name: String, value: String)] {
        text.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            if let equals = pair.firstIndex(of: "=") {
                return (decode(pair[..<equals]), decode(pair[pair.index(after: equals)...]))
            }
            return (decode(pair), "")
        }
    }

    public static func parse(_ text: String) -> [(name: String, value: String)] { parse(text[...]) }

    /// Percent-decodes, with `+` as a space. Malformed escapes are kept literally.
    public static func decode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                if iterator.count >= 2, let high = hexValue(iterator[iterator.startIndex]),
                    let low = hexValue(iterator[iterator.startIndex + 1])
                {
                    bytes.append(high << 4 | low)
                    iterator = iterator.dropFirst(2)
                } else {
                    bytes.append(byte)
                }
            default:
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters.
    public static func encode(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xf, radix: 16, uppercase: true)
            }
        }
        return out
    }

    /// `name=value&...` with every part encoded.
    public static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(encode($0.0))=\(encode($0.1))" }.joined(separator: "&")
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Redirect URIs: what may be registered, and how a request's is matched (exactly, RFC 9700 §4.1.3).
public enum RedirectURI {
    /// Schemes that would run code or read local data in the browser (RFC 9700 §4.1.3 advises against them).
    static let forbiddenSchemes: Set<String> = ["javascript", "data", "vbscript", "file", "blob"]

    /// An absolute URI with a scheme and no fragment (RFC 6749 §3.1.2), not a script or data scheme.
    public static func isRegistrable(_ uri: String) -> Bool {
        guard !uri.contains("#"), let colon = uri.firstIndex(of: ":"), colon != uri.startIndex else { return false }
        let scheme = uri[..<colon]
        guard !forbiddenSchemes.contains(scheme.lowercased()) else { return false }
        guard scheme.first!.isLetter, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) else { return false }
        return !uri.contains(where: { $0.isWhitespace })
    }

    /// Exact comparison of the UTF-8 bytes: no normalisation of case, slashes, ports, encoding — or of
    /// Unicode, which Swift's `==` would apply (a KELVIN SIGN equals a `K` to `==`, but not in a URL).
    public static func matches(_ requested: String, _ registered: [String]) -> Bool {
        registered.contains { sameBytes($0, requested) }
    }

    /// Whether two strings are the same UTF-8 bytes (Swift's `==` compares canonical equivalence).
    public static func sameBytes(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }

    /// `uri` with `parameters` added to its query or, for `fragment`, as its fragment.
    public static func appending(_ parameters: [(String, String)], to uri: String, inFragment: Bool) -> String {
        let encoded = FormEncoding.encode(parameters)
        if inFragment { return uri + "#" + encoded }
        return uri + (uri.contains("?") ? "&" : "?") + encoded
    }
}
