/// The parameters of one `/authorize` request, as received: the first value of each name, and which
/// names were repeated (RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once").
public struct AuthorizeParameters: Sendable, Equatable, Codable {
    /// Every parameter the server understands, as in Auth0's Authentication API and SPEC.md.
    public static let known: Set<String> = [
        "response_type", "client_id", "redirect_uri", "scope", "state", "audience", "resource", "connection", "prompt",
        "organization", "invitation", "dpop_jkt", "code_challenge", "code_challenge_method", "nonce", "response_mode",
        "max_age", "login_hint",
    ]

    /// First value of each known parameter, except `login_hint`.
    public var values: [String: String]
    /// Known parameters that appeared more than once, sorted.
    public var repeated: [String]
    /// `login_hint`: personal data (an email address, usually), so it is kept apart from the other values
    /// and sealed in the journal (``PersonalText``).
    public var loginHint: PersonalText?

    public init(values: [String: String], repeated: [String] = []) {
        var values = values
        loginHint = values.removeValue(forKey: Self.loginHintName).map(PersonalText.clear)
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

    private static let loginHintName = "login_hint"

    /// The value of parameter `name`, if it was given and is not empty (`login_hint` only when known in clear).
    public subscript(_ name: String) -> String? {
        guard let value = name == Self.loginHintName ? loginHint?.value : values[name], !value.isEmpty else { return nil }
        return value
    }

    /// The parameters as a query string (sorted, for stable events and tests; `login_hint` when known).
    public var query: String {
        var all = values
        all[Self.loginHintName] = loginHint?.value
        return FormEncoding.encode(all.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    enum CodingKeys: String, CodingKey {
        case values, repeated
        case loginHint = "login_hint"
    }

    /// Reads both layouts: `login_hint` beside `values` (sealed or not), and, in events recorded before
    /// it was sealed (`auth.authorize.requested` schema 1 and 2), among them.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var values = try container.decode([String: String].self, forKey: .values)
        repeated = try container.decode([String].self, forKey: .repeated)
        loginHint = try container.decodeIfPresent(PersonalText.self, forKey: .loginHint)
            ?? values.removeValue(forKey: Self.loginHintName).map(PersonalText.clear)
        self.values = values
    }
}
