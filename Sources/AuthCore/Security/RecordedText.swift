/// Bounds on the request text an event may hold. Events are signed and kept for years; an unauthenticated
/// request must not be able to make one large (a 70 KB User-Agent once grew the journal by 7.6 MB in under
/// a second from 100 requests).
public enum RecordedText {
    /// The most bytes of a User-Agent kept in an event.
    public static let userAgentBytes = 512
    /// The most bytes of a client id, grant type or address taken from a request that named no valid one.
    public static let identifierBytes = 256

    /// `text` cut to at most `bytes` UTF-8 bytes, at a Unicode scalar boundary (never a broken character).
    public static func bounded(_ text: String, bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var kept = String.UnicodeScalarView()
        var count = 0
        for scalar in text.unicodeScalars {
            let size = UTF8.width(scalar)
            guard count + size <= bytes else { break }
            kept.append(scalar)
            count += size
        }
        return String(kept)
    }
}
