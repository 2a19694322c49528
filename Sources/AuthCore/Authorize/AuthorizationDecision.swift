import LedgerCore

/// OAuth 2.0 / OpenID Connect error codes used by `/authorize` (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6).
public enum OAuthErrorCode: String, Codable, Sendable {
    case invalidRequest = "invalid_request"
    case unauthorizedClient = "unauthorized_client"
    case accessDenied = "access_denied"
    case unsupportedResponseType = "unsupported_response_type"
    case invalidScope = "invalid_scope"
    case serverError = "server_error"
    case temporarilyUnavailable = "temporarily_unavailable"
    case interactionRequired = "interaction_required"
    case loginRequired = "login_required"
    case consentRequired = "consent_required"
    /// OIDC Core §3.1.2.6: request objects are not supported.
    case requestNotSupported = "request_not_supported"
    case requestURINotSupported = "request_uri_not_supported"
    /// RFC 9126 §4: a pushed request's `request_uri` that is unknown, expired, used or another client's.
    case invalidRequestURI = "invalid_request_uri"
}

/// How the response goes back to the client: where, in which mode, with which `state`.
public struct ResponseDelivery: Codable, Sendable, Equatable {
    public enum Mode: String, Codable, Sendable {
        case query, fragment
        case formPost = "form_post"
    }

    public var redirectURI: String
    public var mode: Mode
    public var state: String?
}

/// The SSO session the browser presented, as the decision saw it.
public struct SessionSnapshot: Codable, Sendable, Equatable {
    /// Hash of the session id (the id itself is only in the cookie).
    public var sessionHash: String
    public var userID: String
    public var connection: String
    public var authTime: LedgerTimestamp
    public var expiresAt: LedgerTimestamp

    public init(sessionHash: String, userID: String, connection: String, authTime: LedgerTimestamp, expiresAt: LedgerTimestamp) {
        self.sessionHash = sessionHash
        self.userID = userID
        self.connection = connection
        self.authTime = authTime
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case sessionHash = "session_hash", userID = "user_id", connection
        case authTime = "auth_time", expiresAt = "expires_at"
    }
}

/// What has happened so far in this authorization interaction (login page, consent page, organization picker).
public struct InteractionProgress: Codable, Sendable, Equatable {
    public enum ConsentAnswer: String, Codable, Sendable {
        case granted, denied
    }

    /// When the user logged in during this interaction.
    public var authenticatedAt: LedgerTimestamp?
    public var consent: ConsentAnswer?
    public var organizationID: String?

    public init(authenticatedAt: LedgerTimestamp? = nil, consent: ConsentAnswer? = nil, organizationID: String? = nil) {
        self.authenticatedAt = authenticatedAt
        self.consent = consent
        self.organizationID = organizationID
    }

    enum CodingKeys: String, CodingKey {
        case authenticatedAt = "authenticated_at", consent
        case organizationID = "organization_id"
    }

    public static let fresh = InteractionProgress()
}

/// Everything the decision depends on besides the configuration — exactly what the decision event records,
/// so that replay can run ``AuthorizationPolicy/decide(_:configuration:)`` again.
public struct AuthorizationInput: Codable, Sendable, Equatable {
    public var parameters: AuthorizeParameters
    public var session: SessionSnapshot?
    /// Scopes the session's user has granted, by ``ConsentKey``.
    public var consents: [String: [String]]
    public var progress: InteractionProgress
    public var now: LedgerTimestamp
    /// The version of the rule set that decided (``AuthorizationPolicy/currentVersion`` when recorded now;
    /// 1 in decisions recorded before versions were recorded). Replay re-decides with the same version, so
    /// a release that changes a rule still re-decides every earlier decision as it was made.
    public var policy: Int

    public init(
        parameters: AuthorizeParameters, session: SessionSnapshot? = nil, consents: [String: [String]] = [:],
        progress: InteractionProgress = .fresh, now: LedgerTimestamp, policy: Int = AuthorizationPolicy.currentVersion
    ) {
        self.parameters = parameters
        self.session = session
        self.consents = consents
        self.progress = progress
        self.now = now
        self.policy = policy
    }

    enum CodingKeys: String, CodingKey {
        case parameters, session, consents, progress, now, policy
    }

    /// Decodes an input; its `parameters` may be absent only in a decision that leaves them to its
    /// request (``AuthorizeDecided/parametersOfRequest``), which reads them from there: they are empty
    /// until then.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        parameters = try container.decodeIfPresent(AuthorizeParameters.self, forKey: .parameters) ?? AuthorizeParameters(values: [:])
        session = try container.decodeIfPresent(SessionSnapshot.self, forKey: .session)
        consents = try container.decode([String: [String]].self, forKey: .consents)
        progress = try container.decode(InteractionProgress.self, forKey: .progress)
        now = try container.decode(LedgerTimestamp.self, forKey: .now)
        policy = try container.decodeIfPresent(Int.self, forKey: .policy) ?? 1
    }

    public func encode(to encoder: any Encoder) throws {
        try encode(to: encoder, withParameters: true)
    }

    /// Encodes the input, its `parameters` only when `withParameters` (a decision that leaves them to its
    /// request leaves them out).
    func encode(to encoder: any Encoder, withParameters: Bool) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if withParameters { try container.encode(parameters, forKey: .parameters) }
        try container.encodeIfPresent(session, forKey: .session)
        try container.encode(consents, forKey: .consents)
        try container.encode(progress, forKey: .progress)
        try container.encode(now, forKey: .now)
        try container.encode(policy, forKey: .policy)
    }
}

/// The key under which a user's consent for a client and audience is kept.
public enum ConsentKey {
    public static func make(clientID: String, audience: String?) -> String {
        "\(clientID)\u{1F}\(audience ?? "")"
    }
}

/// A consent the user is asked for.
public struct ConsentRequest: Codable, Sendable, Equatable {
    public var clientID: String
    public var audience: String?
    public var scopes: [String]
}

/// What a code is bound to (RFC 6749 §4.1.3, RFC 7636, RFC 9449 §10, OIDC Core §3.1.3.3).
public struct CodeGrant: Codable, Sendable, Equatable {
    public var clientID: String
    public var redirectURI: String
    public var userID: String
    public var scopes: [String]
    public var audience: String?
    public var organizationID: String?
    public var nonce: String?
    public var codeChallenge: String?
    public var codeChallengeMethod: String?
    public var dpopJKT: String?
    public var authTime: LedgerTimestamp
    public var expiresAt: LedgerTimestamp
    /// Invitation spent by this authorization, if any.
    public var invitation: String?
    /// Whether the request named the redirect URI (then the token request must name the same one;
    /// RFC 6749 §4.1.3). `nil` in grants recorded before this field existed means it did.
    public var redirectURIGiven: Bool?
    /// Claims asked for one by one with the `claims` parameter (OIDC Core §5.5), besides those of the scopes.
    public var claims: RequestedClaims?

    enum CodingKeys: String, CodingKey {
        case clientID = "client_id", redirectURI = "redirect_uri", userID = "user_id", scopes, audience
        case organizationID = "organization_id", nonce
        case codeChallenge = "code_challenge", codeChallengeMethod = "code_challenge_method"
        case dpopJKT = "dpop_jkt", authTime = "auth_time", expiresAt = "expires_at", invitation
        case redirectURIGiven = "redirect_uri_given"
        case claims
    }
}

/// The outcome of one authorization decision.
public enum AuthorizationOutcome: Codable, Sendable, Equatable {
    /// An error shown as a page, never redirected (unknown client, unregistered redirect URI).
    case errorPage(error: OAuthErrorCode, description: String)
    /// An error returned to the client's redirect URI.
    case errorRedirect(error: OAuthErrorCode, description: String, delivery: ResponseDelivery)
    /// The user must log in with `connection`.
    case login(connection: String, loginHint: PersonalText?)
    /// The user must answer a consent request.
    case consent(ConsentRequest)
    /// The user must choose one of these organizations.
    case chooseOrganization([String])
    /// Authorized: issue a code bound to the grant and return it.
    case issueCode(CodeGrant, delivery: ResponseDelivery)
    /// Authorized, implicit flow: mint the tokens the response types ask for and return them in the fragment.
    case issueTokens(CodeGrant, responseTypes: [String], delivery: ResponseDelivery)

    /// Whether the outcome hands out a code or tokens.
    public var issues: Bool {
        switch self {
        case .issueCode, .issueTokens: true
        default: false
        }
    }

    /// A short name for metrics and timelines.
    public var name: String {
        switch self {
        case .errorPage(let error, _): "error_page:\(error.rawValue)"
        case .errorRedirect(let error, _, _): "error:\(error.rawValue)"
        case .login: "login"
        case .consent: "consent"
        case .chooseOrganization: "choose_organization"
        case .issueCode: "code_issued"
        case .issueTokens: "tokens_issued"
        }
    }
}

/// A decision: its outcome and the rule that reached it.
public struct AuthorizationDecision: Codable, Sendable, Equatable {
    public var outcome: AuthorizationOutcome
    /// The name of the rule that decided, e.g. `redirect_uri.exact_match`.
    public var rule: String

    public init(outcome: AuthorizationOutcome, rule: String) {
        self.outcome = outcome
        self.rule = rule
    }
}

extension AuthorizationDecision {
    /// Whether `other` is the same decision: the same rule and the same outcome — error code, delivery, grant,
    /// pages — with the wording of error descriptions set aside. Wording is presentation, which a release may
    /// change (descriptions stopped echoing request values, for one), so a journal recorded by an earlier
    /// release still replays without differences; what was decided must match exactly.
    public func isSameDecision(as other: AuthorizationDecision) -> Bool {
        rule == other.rule && outcome.withoutWording == other.outcome.withoutWording
    }
}

extension AuthorizationOutcome {
    /// The outcome with error descriptions emptied (see ``AuthorizationDecision/isSameDecision(as:)``).
    var withoutWording: AuthorizationOutcome {
        switch self {
        case .errorPage(let error, _): .errorPage(error: error, description: "")
        case .errorRedirect(let error, _, let delivery): .errorRedirect(error: error, description: "", delivery: delivery)
        default: self
        }
    }
}

/// Personal values a decision can read that are not known in clear where it is re-decided.
public enum WithheldInputs: Sendable, Equatable {
    /// At least one was erased (its subject's key destroyed).
    case erased
    /// At least one is sealed and was read without the journal's data key (and none erased).
    case sealed
}

extension AuthorizationInput {
    /// Whether a personal value this decision can read is withheld: the `login_hint`, the session user's
    /// email address, the invitation's email address (compared with each other). A decision re-decided
    /// without them may come out differently without anything being wrong: it is "not re-decidable: inputs
    /// erased", never a difference. `nil` when every such value is known.
    public func withheldPersonalValues(in configuration: ConfigurationState) -> WithheldInputs? {
        var values: [PersonalText] = []
        if let hint = parameters.loginHint { values.append(hint) }
        if let userID = session?.userID, let user = configuration.users[userID] { values.append(user.email) }
        if let ticket = parameters["invitation"], let invitation = configuration.invitations[ticket] { values.append(invitation.email) }
        if values.contains(.erased) { return .erased }
        return values.contains(where: \.isWithheld) ? .sealed : nil
    }
}
