import LedgerCore

/// An RP-Initiated Logout request (OIDC RP-Initiated Logout 1.0 §2) as the server verified it: what its
/// `id_token_hint` names, the `client_id` it gives, and where it asks the browser to go afterwards.
public struct LogoutRequest: Sendable, Equatable {
    /// The verified hint: its subject, its audience (the client), and its `auth_time`; `nil` without one.
    public struct Hint: Sendable, Equatable {
        public var subject: String
        public var clientID: String
        public var authTime: Int64

        public init(subject: String, clientID: String, authTime: Int64) {
            self.subject = subject
            self.clientID = clientID
            self.authTime = authTime
        }
    }

    public var hint: Hint?
    /// Whether an `id_token_hint` was given that is not an ID token of this issuer.
    public var invalidHint: Bool
    public var clientID: String?
    public var postLogoutRedirectURI: String?

    public init(hint: Hint?, invalidHint: Bool = false, clientID: String?, postLogoutRedirectURI: String?) {
        self.hint = hint
        self.invalidHint = invalidHint
        self.clientID = clientID
        self.postLogoutRedirectURI = postLogoutRedirectURI
    }
}

/// What a logout request leads to.
public enum LogoutOutcome: Sendable, Equatable {
    /// End the session at once (the hint proves the client speaks for this very session).
    case endSession
    /// Ask the user first, with a CSRF-bound form: nothing proves that the user wants to log out.
    case confirm
    /// Nothing to end (no session); the browser goes on.
    case noSession
}

/// The logout decision, pure: the request, the session the browser presents, the configuration.
public enum LogoutPolicy {
    /// The client the request is for, and where to send the browser afterwards (`nil`: show a page), or why
    /// the request is refused. `post_logout_redirect_uri` must be one of the client's `allowed_logout_urls`,
    /// exactly (RP-Initiated Logout §3 and the same rule as redirect URIs, RFC 9700 §4.1).
    public static func destination(
        _ request: LogoutRequest, configuration: ConfigurationState
    ) -> (rule: String, result: Result<(client: RegisteredClient?, redirect: String?), LogoutRefusal>) {
        if request.invalidHint {
            return ("logout.id_token_hint", .failure(LogoutRefusal("id_token_hint is not an ID token issued by this server.")))
        }
        if let hint = request.hint, let clientID = request.clientID, hint.clientID != clientID {
            return ("logout.client", .failure(LogoutRefusal("client_id is not the audience of id_token_hint.")))
        }
        let clientID = request.hint?.clientID ?? request.clientID
        let client = clientID.flatMap { configuration.clients[$0] }
        if clientID != nil && client == nil {
            return ("logout.client", .failure(LogoutRefusal("Unknown client.")))
        }
        guard let redirect = request.postLogoutRedirectURI else { return ("logout.client", .success((client, nil))) }
        guard let client else {
            return ("logout.redirect_uri", .failure(LogoutRefusal("post_logout_redirect_uri needs id_token_hint or client_id to name the client.")))
        }
        guard RedirectURI.matches(redirect, client.allowedLogoutURLs ?? []) else {
            return ("logout.redirect_uri", .failure(LogoutRefusal("post_logout_redirect_uri is not one of the client's allowed logout URLs (exact match).")))
        }
        return ("logout.redirect_uri", .success((client, redirect)))
    }

    /// Whether the session ends at once, is confirmed first, or there is none.
    public static func decide(_ request: LogoutRequest, session: SessionSnapshot?) -> LogoutOutcome {
        guard let session else { return .noSession }
        // Only an ID token of this very session's login proves the request comes from a client of it: an
        // older one of the same user would let any client that ever had one end every later session.
        if let hint = request.hint, hint.subject == session.userID, hint.authTime == session.authTime.secondsSinceEpoch {
            return .endSession
        }
        return .confirm
    }
}

/// Why a logout request is refused (shown on a page).
public struct LogoutRefusal: Error, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension LogoutRequest: Codable {
    enum CodingKeys: String, CodingKey {
        case hint
        case invalidHint = "invalid_hint"
        case clientID = "client_id"
        case postLogoutRedirectURI = "post_logout_redirect_uri"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        hint = try container.decodeIfPresent(Hint.self, forKey: .hint)
        invalidHint = try container.decodeIfPresent(Bool.self, forKey: .invalidHint) ?? false
        clientID = try container.decodeIfPresent(String.self, forKey: .clientID)
        postLogoutRedirectURI = try container.decodeIfPresent(String.self, forKey: .postLogoutRedirectURI)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(hint, forKey: .hint)
        if invalidHint { try container.encode(true, forKey: .invalidHint) }
        try container.encodeIfPresent(clientID, forKey: .clientID)
        try container.encodeIfPresent(postLogoutRedirectURI, forKey: .postLogoutRedirectURI)
    }
}

extension LogoutRequest.Hint: Codable {
    enum CodingKeys: String, CodingKey {
        case subject = "sub", clientID = "aud", authTime = "auth_time"
    }
}

/// A logout decision as recorded: the rule that decided and the outcome, with where the browser was sent.
public struct LogoutDecision: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable {
        case endSession = "end_session", confirm, noSession = "no_session", refused
    }

    public var rule: String
    public var outcome: Outcome
    /// Where the browser goes afterwards (a registered logout URL), if anywhere.
    public var redirect: String?

    public init(rule: String, outcome: Outcome, redirect: String?) {
        self.rule = rule
        self.outcome = outcome
        self.redirect = redirect
    }
}

extension LogoutPolicy {
    /// The whole decision on a logout request: where it may go (``destination(_:configuration:)``), then whether
    /// the session ends, is confirmed first, or there is none. What the server records and replay re-decides.
    public static func decision(_ request: LogoutRequest, session: SessionSnapshot?, configuration: ConfigurationState) -> LogoutDecision {
        let (rule, destination) = self.destination(request, configuration: configuration)
        switch destination {
        case .failure:
            return LogoutDecision(rule: rule, outcome: .refused, redirect: nil)
        case .success(let target):
            switch decide(request, session: session) {
            case .endSession: return LogoutDecision(rule: "logout.id_token_hint", outcome: .endSession, redirect: target.redirect)
            case .confirm: return LogoutDecision(rule: "logout.confirm", outcome: .confirm, redirect: target.redirect)
            case .noSession: return LogoutDecision(rule: "logout.session", outcome: .noSession, redirect: target.redirect)
            }
        }
    }
}
