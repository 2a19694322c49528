import HTTPTypes

/// The header names the server sets or reads that `HTTPField.Name` has no constant for, made once: a name
/// made from a string is checked and lower-cased, which every response would otherwise repeat for each.
extension HTTPField.Name {
    static let pragma = HTTPField.Name("Pragma")!
    static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
    /// RFC 9449's proof header.
    static let dpop = HTTPField.Name("DPoP")!
}
