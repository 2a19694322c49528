/// The `error_description` a client receives, in the character set RFC 6749 §4.1.2.1 and §5.2 allow:
/// `%x20-21 / %x23-5B / %x5D-7E` — printable ASCII without `"` and `\` — and bounded in length.
///
/// The descriptions the server writes name no request value (a client's error page must not show an
/// attacker's wording); this is the last guard at every endpoint that sends one, so that no quote,
/// newline, bidi control or megabyte of text can reach a client even if a description someday does.
public enum OAuthErrorDescription {
    /// The longest description sent, in bytes.
    public static let maximumLength = 200

    /// `text` with every character outside the allowed set removed, cut to ``maximumLength``.
    public static func sanitized(_ text: String) -> String {
        var allowed = String.UnicodeScalarView()
        for scalar in text.unicodeScalars where isAllowed(scalar) {
            guard allowed.count < maximumLength else { break }
            allowed.append(scalar)
        }
        return String(allowed)
    }

    /// Whether `scalar` may appear in an `error_description` (RFC 6749 §4.1.2.1).
    public static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x20...0x21, 0x23...0x5B, 0x5D...0x7E: true
        default: false
        }
    }
}
