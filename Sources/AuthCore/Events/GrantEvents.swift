import LedgerCore

/// `auth.client_credentials.decided`: a client credentials request (RFC 6749 §4.4) of an authenticated
/// client, what it was decided against, and the decision. A granted one is followed, in the same commit, by
/// the `auth.token.issued` of its access token.
public struct ClientCredentialsDecided: Codable, Sendable, Equatable {
    public var configurationVersion: UInt64
    public var input: ClientCredentialsInput
    public var decision: ClientCredentialsDecision
    public var clientIP: String?
    /// A keyed pseudonym of the client address (set when the event is sealed), for the timeline's index.
    public var clientIPKey: String?

    public init(configurationVersion: UInt64, input: ClientCredentialsInput, decision: ClientCredentialsDecision, clientIP: String?) {
        self.configurationVersion = configurationVersion
        self.input = input
        self.decision = decision
        self.clientIP = clientIP
    }

    enum CodingKeys: String, CodingKey {
        case configurationVersion = "configuration_version", input, decision
        case clientIP = "client_ip", clientIPKey = "client_ip_key"
    }
}

/// `auth.client_assertion.used`: a client authenticated with a signed assertion (`private_key_jwt`,
/// RFC 7523). Its `jti` is kept (hashed with the client id) until the assertion expires, and an assertion
/// presented again in that time is refused.
public struct ClientAssertionUsed: Codable, Sendable, Equatable {
    public var clientID: String
    /// SHA-256 of `client_id ␟ jti`, hex.
    public var assertion: String
    public var expiresAt: LedgerTimestamp

    public init(clientID: String, assertion: String, expiresAt: LedgerTimestamp) {
        self.clientID = clientID
        self.assertion = assertion
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case clientID = "client_id", assertion
        case expiresAt = "expires_at"
    }

    /// The key of an assertion: its client and `jti`, hashed (a `jti` is the client's text).
    public static func key(clientID: String, jti: String) -> String {
        SHA256Digest.hash(Array((clientID + "\u{1F}" + jti).utf8)).hex
    }
}

/// `auth.par.pushed`: a pushed authorization request (RFC 9126) and how it was decided: its parameters, the
/// rule-set version and time it was checked at, and — when accepted — the hash of the `request_uri` it is known
/// by, the client it is bound to and when it expires. An authorization request that uses it records its
/// decision with ``AuthorizeParameters/pushedRequest``, which spends it. `replay` checks it again.
public struct PushedRequest: Codable, Sendable, Equatable {
    /// SHA-256 of the `request_uri`, hex (the URI itself is a bearer reference, never recorded).
    public var requestURIHash: String
    public var clientID: String
    public var parameters: AuthorizeParameters
    public var expiresAt: LedgerTimestamp
    public var clientIP: String?
    /// Whether an authorization request used it (projection only).
    public var used: Bool?
    /// A keyed pseudonym of the client address (set when the event is sealed), for the timeline's index.
    public var clientIPKey: String?
    /// When it was checked, by which rule-set version, against which configuration.
    public var decidedAt: LedgerTimestamp?
    public var policy: Int?
    public var configurationVersion: UInt64?
    /// Why it was refused (no `request_uri` was handed out); `nil` when accepted.
    public var refusal: PushRefusal?

    public init(
        requestURIHash: String, clientID: String, parameters: AuthorizeParameters, expiresAt: LedgerTimestamp, clientIP: String?,
        decidedAt: LedgerTimestamp? = nil, policy: Int? = nil, configurationVersion: UInt64? = nil, refusal: PushRefusal? = nil
    ) {
        self.requestURIHash = requestURIHash
        self.clientID = clientID
        self.parameters = parameters
        self.expiresAt = expiresAt
        self.clientIP = clientIP
        self.decidedAt = decidedAt
        self.policy = policy
        self.configurationVersion = configurationVersion
        self.refusal = refusal
    }

    enum CodingKeys: String, CodingKey {
        case requestURIHash = "request_uri_hash", clientID = "client_id", parameters
        case expiresAt = "expires_at", clientIP = "client_ip", used
        case clientIPKey = "client_ip_key"
        case decidedAt = "decided_at", policy
        case configurationVersion = "configuration_version"
        case refusal
    }

    /// The prefix of every `request_uri` the server hands out (RFC 9126 §2.2).
    public static let uriPrefix = "urn:ietf:params:oauth:request_uri:"

    /// The decision input it was checked with: its parameters, before anyone logged in.
    public var input: AuthorizationInput? {
        guard let decidedAt else { return nil }
        return AuthorizationInput(parameters: parameters, now: decidedAt, policy: policy ?? AuthorizationPolicy.currentVersion)
    }
}

/// Why a pushed request was refused: the rule and the error it answered with (RFC 6749 §5.2).
public struct PushRefusal: Codable, Sendable, Equatable {
    public var rule: String
    public var error: String
    public var description: String

    public init(rule: String, error: String, description: String) {
        self.rule = rule
        self.error = error
        self.description = description
    }
}

extension AuthorizationPolicy {
    /// A pushed request's check (RFC 9126 §2.1): the authorization rules run on its parameters before anyone
    /// has logged in. An error of a rule that looks at the request refuses it; what depends on the user (login,
    /// consent, membership) is left to the authorization that uses it. `nil`: accepted.
    public static func pushRefusal(_ input: AuthorizationInput, configuration: ConfigurationState) -> PushRefusal? {
        let decision = decide(input, configuration: configuration)
        let userRules: Set<String> = ["session.authenticated", "organization.membership", "consent"]
        switch decision.outcome {
        case .errorPage(let error, let description):
            return PushRefusal(rule: decision.rule, error: error.rawValue, description: description)
        case .errorRedirect(let error, let description, _):
            let userErrors: Set<OAuthErrorCode> = [.loginRequired, .consentRequired, .interactionRequired, .accessDenied]
            if userRules.contains(decision.rule) && userErrors.contains(error) { return nil }
            return PushRefusal(rule: decision.rule, error: error.rawValue, description: description)
        case .login, .consent, .chooseOrganization, .issueCode, .issueTokens:
            return nil
        }
    }
}

/// `auth.token.introspected`: a resource server asked about a token (RFC 7662), what the question was checked
/// against — the token's `jti`, `sub`, `client_id` and `exp` as its verified signature gave them, or the hash of an
/// opaque one — and what it was told. `replay` asks the projections as they stood then, with
/// ``IntrospectionPolicy``, and compares.
public struct TokenIntrospected: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case accessToken = "access_token", refreshToken = "refresh_token", unknown
    }

    /// The client that asked.
    public var clientID: String
    public var kind: Kind
    /// The access token's `jti`, or the refresh token's hash; `nil` for a token the server never issued.
    public var token: String?
    public var active: Bool
    /// Why it is not active (`revoked`, `expired`, `rotated`, `family_revoked`, `unknown`).
    public var reason: String?
    /// An access token's claims the answer depends on (absent for other kinds).
    public var subject: String?
    public var tokenClientID: String?
    public var expiresAt: Int64?
    /// When it was asked (the time the answer was decided at).
    public var decidedAt: LedgerTimestamp?

    public init(
        clientID: String, kind: Kind, token: String?, active: Bool, reason: String?, subject: String? = nil, tokenClientID: String? = nil,
        expiresAt: Int64? = nil, decidedAt: LedgerTimestamp? = nil
    ) {
        self.clientID = clientID
        self.kind = kind
        self.token = token
        self.active = active
        self.reason = reason
        self.subject = subject
        self.tokenClientID = tokenClientID
        self.expiresAt = expiresAt
        self.decidedAt = decidedAt
    }

    enum CodingKeys: String, CodingKey {
        case clientID = "client_id", kind, token, active, reason
        case subject = "sub", tokenClientID = "token_client_id", expiresAt = "exp", decidedAt = "decided_at"
    }

    /// The answer the projections in `store` give to the same question (`nil` when it was recorded without
    /// its inputs).
    public func answer(in store: some ProjectionStore) throws -> IntrospectionAnswer? {
        guard let decidedAt else { return nil }
        switch kind {
        case .accessToken:
            guard let token, let subject, let tokenClientID, let expiresAt else { return nil }
            return try IntrospectionPolicy.accessToken(
                id: token, subject: subject, clientID: tokenClientID, expiresAt: expiresAt, in: store, now: decidedAt)
        case .refreshToken, .unknown:
            guard let token else { return IntrospectionAnswer(active: false, reason: "unknown") }
            return try IntrospectionPolicy.refreshToken(hash: token, in: store, now: decidedAt).0
        }
    }
}
