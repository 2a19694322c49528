/// The parameters of one `/authorize` request, as received: the first value of each name, and which
/// names were repeated (RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once").
public struct AuthorizeParameters: Sendable, Equatable, Codable {
    /// Every parameter the server understands, as in Auth0's Authentication API and SPEC.md.
    public static let known: Set<String> = [
        "response_type", "client_id", "redirect_uri", "scope", "state", "audience", "resource", "connection", "prompt",
        "organization", "invitation", "dpop_jkt", "code_challenge", "code_challenge_method", "nonce", "response_mode",
        "max_age", "login_hint",
        // OIDC Core §3.1.2.1: accepted and recorded; `request` and `request_uri` are answered by a rule.
        "display", "ui_locales", "claims_locales", "acr_values", "claims", "request", "request_uri",
    ]

    /// `id_token_hint` is not among ``known``: the raw ID token (which may carry personal claims) is never
    /// recorded. The server verifies it and records only what it found (``idTokenHint``).
    public static let idTokenHintName = "id_token_hint"

    /// First value of each known parameter, except `login_hint`.
    public var values: [String: String]
    /// Known parameters that appeared more than once, sorted.
    public var repeated: [String]
    /// `login_hint`: personal data (an email address, usually), so it is kept apart from the other values
    /// and sealed in the journal (``PersonalText``).
    public var loginHint: PersonalText?
    /// What the server found the request's `id_token_hint` to be, if it had one (see ``IDTokenHint``).
    public var idTokenHint: IDTokenHint?
    /// The pushed request (RFC 9126) these parameters came from, when the request named one by `request_uri`.
    public var pushedRequest: PushedRequestReference?

    public init(values: [String: String], repeated: [String] = [], idTokenHint: IDTokenHint? = nil) {
        var values = values
        loginHint = values.removeValue(forKey: Self.loginHintName).map(PersonalText.clear)
        self.values = values
        self.repeated = repeated
        self.idTokenHint = idTokenHint
    }

    /// Parses a raw query string. Unknown parameters are ignored, as OAuth requires.
    public init(query: String) {
        self.init(pairs: FormEncoding.parse(query))
    }

    /// The parameters among `pairs` (a query string's or a form body's, in order). Unknown ones are ignored.
    public init(pairs: [(name: String, value: String)]) {
        var values: [String: String] = [:]
        var repeated: Set<String> = []
        for (name, value) in pairs where Self.known.contains(name) || name == Self.idTokenHintName {
            if values[name] != nil { repeated.insert(name) } else { values[name] = value }
        }
        // The hint itself is never kept: the server replaces it by what it verified (``IDTokenHint``).
        values.removeValue(forKey: Self.idTokenHintName)
        // Neither is a request object (a JWT that may carry personal claims), nor the values a `claims`
        // request may hold: what the rules read of them is kept, and decides the same on replay.
        if values["request"] != nil { values["request"] = Self.withheldRequestObject }
        if let claims = values["claims"] { values["claims"] = RequestedClaims.recordedForm(of: claims) }
        self.init(values: values, repeated: repeated.sorted())
    }

    private static let loginHintName = "login_hint"
    /// What stands for a request object in the recorded parameters (its presence is all the rules read).
    public static let withheldRequestObject = "[request object]"

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
        case idTokenHint = "id_token_hint"
        case pushedRequest = "pushed_request"
    }

    /// Reads both layouts: `login_hint` beside `values` (sealed or not), and, in events recorded before
    /// it was sealed (`auth.authorize.requested` schema 1 and 2), among them.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var values = try container.decode([String: String].self, forKey: .values)
        repeated = try container.decode([String].self, forKey: .repeated)
        loginHint = try container.decodeIfPresent(PersonalText.self, forKey: .loginHint)
            ?? values.removeValue(forKey: Self.loginHintName).map(PersonalText.clear)
        idTokenHint = try container.decodeIfPresent(IDTokenHint.self, forKey: .idTokenHint)
        pushedRequest = try container.decodeIfPresent(PushedRequestReference.self, forKey: .pushedRequest)
        self.values = values
    }
}

/// An `id_token_hint` (OIDC Core §3.1.2.1) as the server verified it, before the decision: the subject of an
/// ID token this issuer signed (expired or not), or a hint that is not one. The decision compares the subject
/// with the session's user; the token itself is never recorded.
public enum IDTokenHint: Sendable, Equatable, Codable {
    /// A valid ID token of this issuer, for this subject.
    case subject(String)
    /// Not an ID token this issuer signed (bad signature, another issuer, not a JWT).
    case invalid

    enum CodingKeys: String, CodingKey {
        case subject = "sub", valid
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let subject = try container.decodeIfPresent(String.self, forKey: .subject) {
            self = .subject(subject)
        } else {
            self = .invalid
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .subject(let subject): try container.encode(subject, forKey: .subject)
        case .invalid: try container.encode(false, forKey: .valid)
        }
    }
}

/// A `request_uri` of a pushed authorization request (RFC 9126 §4) as the server resolved it before the
/// decision: the hash of the URI, and — when it could not be used — why. A usable one's parameters are the
/// request's; the decision that uses it spends it.
public struct PushedRequestReference: Codable, Sendable, Equatable {
    public enum Refusal: String, Codable, Sendable {
        /// Never pushed here (or pruned long ago).
        case unknown
        case expired
        /// An authorization request used it already.
        case used
        /// Pushed by another client than the request's `client_id`.
        case otherClient = "other_client"
    }

    /// SHA-256 of the `request_uri`, hex.
    public var hash: String
    public var refused: Refusal?

    public init(hash: String, refused: Refusal? = nil) {
        self.hash = hash
        self.refused = refused
    }
}
