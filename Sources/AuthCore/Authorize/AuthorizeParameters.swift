/// The parameters of one `/authorize` request, as received: the first value of each name, and which
/// names were repeated (RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once").
public struct AuthorizeParameters: Sendable, Equatable, Codable {
    /// Every parameter the server understands, as in Auth0's Authentication API and SPEC.md.
    public static let known: Set<String> = [
        "response_type", "client_id", "redirect_uri", "scope", "state", "audience", "resource", "connection", "prompt",
        "organization", "invitation", "dpop_jkt", "code_challenge", "code_challenge_method", "nonce", "response_mode",
        "max_age", "login_hint",
    ]

    /// First value of each known parameter.
    public var values: [String: String]
    /// Known parameters that appeared more than once, sorted.
    public var repeated: [String]

    public init(values: [String: String], repeated: [String] = []) {
        self.values = values
        self.repeated = repeated
    }

    /// Parses a raw query string. Unknown parameters are ignored, as OAuth requires.
    public init(query: String) {
        var values: [String: String] = [:]
        var repeated: Set<String> = []
        for (name, value) in FormEncoding.parse(query) where Self.known.contains(name) {
            if values[name] != nil { repeated.insert(name) } else { values[name] = value }
        }
        self.init(values: values, repeated: repeated.sorted())
    }

    public subscript(_ name: String) -> String? {
        guard let value = values[name], !value.isEmpty else { return nil }
        return value
    }

    /// The parameters as a query string (sorted, for stable events and tests).
    public var query: String {
        FormEncoding.encode(values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }
}
