import LedgerCore

/// One step of the authorization decision: it either lets the request through, filling in what it
/// validated, or decides. Rules run in RFC 6749 / OIDC order, and the first to decide names the outcome.
///
/// The decision runs in phases, each with a draft that holds what the phases before it established, as
/// values that are there, not optionals that rule order alone keeps filled: the client and where the answer
/// goes (``AuthorizationDraft``), then the connection (``ConnectedDraft``), then the user
/// (``AuthenticatedDraft``). The rules that establish one of them are the steps between the phases.
public protocol AuthorizationRule<Draft>: Sendable {
    associatedtype Draft
    /// A stable name recorded in decision events, e.g. `redirect_uri.exact_match`.
    var name: String { get }
    func evaluate(_ draft: inout Draft) -> AuthorizationOutcome?
}

/// What a rule that establishes something gives: the thing, or the outcome that decides instead.
enum RuleResult<Value> {
    case established(Value)
    case decided(AuthorizationOutcome)
}

/// The request's parameters as every rule reads them, parsed once.
public struct ParsedAuthorizeRequest: Sendable {
    /// `max_age` as sent.
    public enum MaxAge: Sendable, Equatable {
        case absent
        case seconds(Int)
        /// Not a number of seconds from 0 to ten years (`session.authenticated` refuses it).
        case invalid
    }

    public let parameters: AuthorizeParameters
    /// The values of `prompt`.
    public let prompts: Set<String>
    /// The values of `scope` in the order sent, repeats kept.
    public let scopes: [String]
    public let maxAge: MaxAge

    /// The longest `max_age` accepted: ten years.
    static let maximumMaxAge = 315_360_000

    public init(_ parameters: AuthorizeParameters) {
        self.parameters = parameters
        prompts = Set((parameters["prompt"] ?? "").split(separator: " ").map(String.init))
        scopes = (parameters["scope"] ?? "").split(separator: " ").map(String.init)
        maxAge =
            switch parameters["max_age"] {
            case nil: .absent
            case let text?: Int(text).flatMap { (0...Self.maximumMaxAge).contains($0) ? .seconds($0) : nil } ?? .invalid
            }
    }
}

/// What the rules know of a request before its client and redirect URI are: errors are pages.
struct RequestDraft {
    let input: AuthorizationInput
    let configuration: ConfigurationState
    let settings: TenantSettings
    let request: ParsedAuthorizeRequest

    var parameters: AuthorizeParameters { input.parameters }
}

/// What the rules have established about a request once its client is registered and its redirect URI is
/// the client's: from here on, errors go back to the client.
public struct AuthorizationDraft: Sendable {
    public let input: AuthorizationInput
    public let configuration: ConfigurationState
    public let settings: TenantSettings
    public let request: ParsedAuthorizeRequest

    public let client: RegisteredClient
    public let redirectURI: String
    public var delivery: ResponseDelivery
    public var responseTypes: Set<String> = []
    public var scopes: [String] = []
    public var audience: String?
    public var api: APIDefinition?
    /// Claims asked for with the `claims` parameter.
    public var requestedClaims: RequestedClaims?
    public var organization: OrganizationRecord?
    public var invitation: InvitationRecord?

    var parameters: AuthorizeParameters { input.parameters }

    /// An error for the client's redirect URI.
    func redirectError(_ error: OAuthErrorCode, _ description: String) -> AuthorizationOutcome {
        .errorRedirect(error: error, description: description, delivery: delivery)
    }
}

/// An ``AuthorizationDraft`` with the connection the user logs in with.
@dynamicMemberLookup
public struct ConnectedDraft: Sendable {
    public var draft: AuthorizationDraft
    public let connection: String

    public subscript<T>(dynamicMember keyPath: WritableKeyPath<AuthorizationDraft, T>) -> T {
        get { draft[keyPath: keyPath] }
        set { draft[keyPath: keyPath] = newValue }
    }

    public subscript<T>(dynamicMember keyPath: KeyPath<AuthorizationDraft, T>) -> T { draft[keyPath: keyPath] }

    func redirectError(_ error: OAuthErrorCode, _ description: String) -> AuthorizationOutcome {
        draft.redirectError(error, description)
    }
}

/// A ``ConnectedDraft`` with the user the request is for, and when they authenticated.
@dynamicMemberLookup
public struct AuthenticatedDraft: Sendable {
    public var connected: ConnectedDraft
    public let user: RegisteredUser
    public let authTime: LedgerTimestamp

    public subscript<T>(dynamicMember keyPath: KeyPath<AuthorizationDraft, T>) -> T { connected.draft[keyPath: keyPath] }

    func redirectError(_ error: OAuthErrorCode, _ description: String) -> AuthorizationOutcome {
        connected.redirectError(error, description)
    }
}

/// The authorization decision: a pure function of the request, the state it meets, the configuration
/// and the time. The server and `authledger-replay` run exactly this code.
public enum AuthorizationPolicy {
    /// The version of the rule set this release decides with, recorded in every decision's input
    /// (``AuthorizationInput/policy``). A rule that changes what an earlier version decided asks the
    /// version; a replay then re-decides every recorded decision by the rules it was made under.
    ///
    /// - 1: the first release.
    /// - 2: `address` and `phone` are scopes; for an OpenID request without an API, scopes the server does
    ///   not define are ignored rather than refused (OIDC Core §3.1.2.1).
    public static let currentVersion = 2

    /// The rules, in the order they run: ``ClientRule``, ``PushedRequestRule`` and ``RedirectURIRule``
    /// first (their errors are pages), then these on the ``AuthorizationDraft``, then ``ConnectionRule``,
    /// then these on the ``ConnectedDraft``, then ``AuthenticationRule``, then these on the
    /// ``AuthenticatedDraft``.
    static let requestRules: [any AuthorizationRule<AuthorizationDraft>] = [
        RepeatedParameterRule(), PushedRequestRequiredRule(), RequestObjectRule(), ResponseTypeRule(), NonceRule(), PKCERule(),
        FAPI2Rule(), DPoPThumbprintRule(), AudienceRule(), ScopeRule(), ClaimsRule(),
    ]
    static let connectedRules: [any AuthorizationRule<ConnectedDraft>] = [OrganizationRule(), InvitationRule()]
    static let authenticatedRules: [any AuthorizationRule<AuthenticatedDraft>] = [MembershipRule(), ConsentRule()]

    public static func decide(_ input: AuthorizationInput, configuration: ConfigurationState) -> AuthorizationDecision {
        guard let settings = configuration.settings else {
            return AuthorizationDecision(
                outcome: .errorPage(error: .serverError, description: "The tenant is not configured."), rule: "tenant.configured")
        }
        let request = RequestDraft(input: input, configuration: configuration, settings: settings, request: ParsedAuthorizeRequest(input.parameters))

        // Who asks, and where the answer may go.
        let client: RegisteredClient
        switch ClientRule().resolve(request) {
        case .decided(let outcome): return AuthorizationDecision(outcome: outcome, rule: ClientRule.name)
        case .established(let found): client = found
        }
        if let outcome = PushedRequestRule().evaluate(request) { return AuthorizationDecision(outcome: outcome, rule: PushedRequestRule.name) }
        let target: (redirectURI: String, delivery: ResponseDelivery)
        switch RedirectURIRule().resolve(request, client: client) {
        case .decided(let outcome): return AuthorizationDecision(outcome: outcome, rule: RedirectURIRule.name)
        case .established(let found): target = found
        }

        // What is asked for.
        var draft = AuthorizationDraft(
            input: input, configuration: configuration, settings: settings, request: request.request, client: client,
            redirectURI: target.redirectURI, delivery: target.delivery)
        for rule in requestRules {
            if let outcome = rule.evaluate(&draft) { return AuthorizationDecision(outcome: outcome, rule: rule.name) }
        }
        var connected: ConnectedDraft
        switch ConnectionRule().resolve(draft) {
        case .decided(let outcome): return AuthorizationDecision(outcome: outcome, rule: ConnectionRule.name)
        case .established(let connection): connected = ConnectedDraft(draft: draft, connection: connection)
        }
        for rule in connectedRules {
            if let outcome = rule.evaluate(&connected) { return AuthorizationDecision(outcome: outcome, rule: rule.name) }
        }

        // Who is asking, and what they agreed to.
        var authenticated: AuthenticatedDraft
        switch AuthenticationRule().resolve(connected) {
        case .decided(let outcome): return AuthorizationDecision(outcome: outcome, rule: AuthenticationRule.name)
        case .established(let found): authenticated = AuthenticatedDraft(connected: connected, user: found.user, authTime: found.authTime)
        }
        for rule in authenticatedRules {
            if let outcome = rule.evaluate(&authenticated) { return AuthorizationDecision(outcome: outcome, rule: rule.name) }
        }

        let parameters = input.parameters
        let final = authenticated.connected.draft
        let grant = CodeGrant(
            clientID: client.clientID, redirectURI: target.redirectURI, userID: authenticated.user.userID, scopes: final.scopes,
            audience: final.audience, organizationID: final.organization?.id, nonce: parameters["nonce"],
            codeChallenge: parameters["code_challenge"],
            codeChallengeMethod: parameters["code_challenge"] == nil ? nil : (parameters["code_challenge_method"] ?? "plain"),
            dpopJKT: parameters["dpop_jkt"], authTime: authenticated.authTime,
            expiresAt: input.now.adding(seconds: settings.codeTTLSeconds), invitation: final.invitation?.ticket,
            redirectURIGiven: parameters["redirect_uri"] != nil, claims: final.requestedClaims)
        if final.responseTypes != ["code"] {
            return AuthorizationDecision(
                outcome: .issueTokens(grant, responseTypes: final.responseTypes.sorted(), delivery: final.delivery), rule: "authorized")
        }
        return AuthorizationDecision(outcome: .issueCode(grant, delivery: final.delivery), rule: "authorized")
    }
}

// MARK: - Client and redirect URI: errors here are pages, never redirects.

struct ClientRule {
    static let name = "client.registered"

    func resolve(_ draft: RequestDraft) -> RuleResult<RegisteredClient> {
        if draft.parameters.repeated.contains("client_id") {
            return .decided(.errorPage(error: .invalidRequest, description: "The client_id parameter is repeated."))
        }
        guard let clientID = draft.parameters["client_id"] else {
            return .decided(.errorPage(error: .invalidRequest, description: "Missing required parameter: client_id."))
        }
        guard let client = draft.configuration.clients[clientID] else {
            return .decided(.errorPage(error: .invalidRequest, description: "Unknown client."))
        }
        return .established(client)
    }
}

struct PushedRequestRule {
    static let name = "pushed_request.valid"

    /// RFC 9126 §4: a `request_uri` the server cannot use is an error page (the redirect URI is in the pushed
    /// request, so it is not known to be the client's).
    func evaluate(_ draft: RequestDraft) -> AuthorizationOutcome? {
        guard let refused = draft.parameters.pushedRequest?.refused else { return nil }
        let description: String =
            switch refused {
            case .unknown: "The request_uri is not one this server issued."
            case .expired: "The request_uri has expired: push the request again."
            case .used: "The request_uri was already used: push the request again."
            case .otherClient: "The request_uri was pushed by another client."
            }
        return .errorPage(error: .invalidRequestURI, description: description)
    }
}

struct RedirectURIRule {
    static let name = "redirect_uri.exact_match"

    /// The redirect URI (exactly one of `client`'s), and how the answer goes there until the response type
    /// is known: in the query, with the state.
    func resolve(_ draft: RequestDraft, client: RegisteredClient) -> RuleResult<(redirectURI: String, delivery: ResponseDelivery)> {
        if draft.parameters.repeated.contains("redirect_uri") {
            return .decided(.errorPage(error: .invalidRequest, description: "The redirect_uri parameter is repeated."))
        }
        let registered = client.redirectURIs
        let redirectURI: String
        if let requested = draft.parameters["redirect_uri"] {
            guard RedirectURI.matches(requested, registered) else {
                return .decided(
                    .errorPage(
                        error: .invalidRequest,
                        description: "The redirect_uri is not registered for this client (it must match a registered URI exactly)."))
            }
            redirectURI = requested
        } else if registered.count == 1 && !draft.request.scopes.contains("openid") {
            // RFC 6749 §3.1.2.3 lets a client with one registered URI omit it; OIDC Core §3.1.2.1 does not.
            redirectURI = registered[0]
        } else {
            return .decided(.errorPage(error: .invalidRequest, description: "Missing required parameter: redirect_uri."))
        }
        let implicitDefault = (draft.parameters["response_type"] ?? "code") != "code"
        let mode = ResponseDelivery.Mode(rawValue: draft.parameters["response_mode"] ?? "") ?? (implicitDefault ? .fragment : .query)
        return .established((redirectURI, ResponseDelivery(redirectURI: redirectURI, mode: mode, state: draft.parameters.values["state"])))
    }
}

struct RepeatedParameterRule: AuthorizationRule {
    let name = "parameters.not_repeated"

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        guard let first = draft.parameters.repeated.first else { return nil }
        return draft.redirectError(.invalidRequest, "The \(first) parameter is repeated.")
    }
}

struct PushedRequestRequiredRule: AuthorizationRule {
    let name = "pushed_request.required"

    /// RFC 9126 §6: a client registered with `require_pushed_authorization_requests` sends its requests only
    /// by reference.
    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        guard draft.client.requiresPushedRequests, draft.parameters.pushedRequest == nil else { return nil }
        return draft.redirectError(.invalidRequest, "This client must push its authorization requests (/oauth/par) and send the request_uri.")
    }
}

struct RequestObjectRule: AuthorizationRule {
    let name = "request_object.unsupported"

    /// OIDC Core §6: request objects by value or by reference are not supported (discovery says so), and
    /// are refused rather than ignored — a client that signed its request expects it to count. A
    /// `request_uri` of a pushed request (RFC 9126) is resolved by the server before the decision.
    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        if draft.parameters["request"] != nil {
            return draft.redirectError(.requestNotSupported, "Request objects (the request parameter) are not supported.")
        }
        if draft.parameters["request_uri"] != nil {
            return draft.redirectError(.requestURINotSupported, "request_uri is supported only for pushed authorization requests (/oauth/par).")
        }
        return nil
    }
}

// MARK: - What is asked for.

struct ResponseTypeRule: AuthorizationRule {
    let name = "response_type.supported"
    static let supported: Set<Set<String>> = [["code"], ["token"], ["id_token"], ["id_token", "token"]]

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        guard let raw = draft.parameters["response_type"] else {
            return draft.redirectError(.invalidRequest, "Missing required parameter: response_type.")
        }
        let types = Set(raw.split(separator: " ").map(String.init))
        guard Self.supported.contains(types) else {
            return draft.redirectError(.unsupportedResponseType, "Unsupported response_type.")
        }
        if let mode = draft.parameters["response_mode"], ResponseDelivery.Mode(rawValue: mode) == nil {
            return draft.redirectError(.invalidRequest, "Unsupported response_mode.")
        }
        draft.responseTypes = types
        if types != ["code"] {
            guard draft.client.allowsImplicit else {
                return draft.redirectError(.unauthorizedClient, "The client is not allowed the implicit grant.")
            }
            if draft.parameters["response_mode"] == "query" {
                return draft.redirectError(.invalidRequest, "Tokens must not be returned in the query (response_mode=query).")
            }
        }
        return nil
    }
}

struct NonceRule: AuthorizationRule {
    let name = "nonce.required_for_id_token"

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        if draft.responseTypes.contains("id_token") && draft.parameters["nonce"] == nil {
            return draft.redirectError(.invalidRequest, "The nonce parameter is required when response_type includes id_token.")
        }
        if draft.responseTypes.contains("id_token") && !draft.request.scopes.contains("openid") {
            return draft.redirectError(.invalidRequest, "response_type id_token requires the openid scope.")
        }
        return nil
    }
}

struct PKCERule: AuthorizationRule {
    let name = "pkce"

    /// RFC 7636 §4.2: 43–128 characters from the unreserved set.
    static func isValidChallenge(_ value: String) -> Bool {
        (43...128).contains(value.utf8.count)
            && value.utf8.allSatisfy { byte in
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || "-._~".utf8.contains(byte)
            }
    }

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        let challenge = draft.parameters["code_challenge"]
        let method = draft.parameters["code_challenge_method"]
        guard let challenge else {
            if method != nil {
                return draft.redirectError(.invalidRequest, "code_challenge_method was given without code_challenge.")
            }
            if draft.client.isPublic && draft.responseTypes == ["code"] {
                return draft.redirectError(.invalidRequest, "Public clients must use PKCE: code_challenge is required.")
            }
            return nil
        }
        let resolved = method ?? "plain"
        guard resolved == "S256" || resolved == "plain" else {
            return draft.redirectError(.invalidRequest, "Unsupported code_challenge_method (use S256).")
        }
        if resolved == "plain" && !draft.settings.allowPlainPKCE {
            return draft.redirectError(.invalidRequest, "code_challenge_method plain is not allowed on this tenant; use S256.")
        }
        guard Self.isValidChallenge(challenge) else {
            return draft.redirectError(.invalidRequest, "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~].")
        }
        if resolved == "S256" && Base64URL.decode(challenge)?.count != 32 {
            return draft.redirectError(.invalidRequest, "An S256 code_challenge is the base64url SHA-256 of the verifier (43 characters).")
        }
        return nil
    }
}

struct FAPI2Rule: AuthorizationRule {
    let name = "profile.fapi2"

    /// FAPI 2.0 Security Profile §5.3.1.2 for a client registered with `profile: fapi2` (pushed requests are
    /// required by `pushed_request.required`): the code flow only, PKCE with S256, the redirect URI named.
    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        guard draft.client.isFAPI2 else { return nil }
        guard draft.responseTypes == ["code"] else {
            return draft.redirectError(.unsupportedResponseType, "FAPI 2.0 clients use response_type code only.")
        }
        guard draft.parameters["code_challenge"] != nil, draft.parameters["code_challenge_method"] == "S256" else {
            return draft.redirectError(.invalidRequest, "FAPI 2.0 requires PKCE with code_challenge_method S256.")
        }
        guard draft.parameters["redirect_uri"] != nil else {
            return draft.redirectError(.invalidRequest, "FAPI 2.0 requires the redirect_uri parameter.")
        }
        return nil
    }
}

struct DPoPThumbprintRule: AuthorizationRule {
    let name = "dpop_jkt.format"

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        guard let jkt = draft.parameters["dpop_jkt"] else { return nil }
        guard jkt.utf8.count == 43, Base64URL.decode(jkt)?.count == 32 else {
            return draft.redirectError(.invalidRequest, "dpop_jkt must be a base64url SHA-256 JWK thumbprint (RFC 9449 section 10).")
        }
        return nil
    }
}

struct AudienceRule: AuthorizationRule {
    let name = "audience.known"

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        var audience = draft.parameters["audience"]
        if draft.settings.resourceParameterProfile == .compatibility, let resource = draft.parameters["resource"] {
            if let audience, audience != resource {
                return draft.redirectError(.invalidRequest, "audience and resource name different APIs.")
            }
            audience = resource
        }
        audience = audience ?? draft.settings.defaultAudience
        if let audience {
            guard let api = draft.configuration.apis[audience] else {
                return draft.redirectError(.accessDenied, "Service not found.")
            }
            draft.api = api
        }
        draft.audience = audience
        return nil
    }
}

struct ScopeRule: AuthorizationRule {
    let name = "scope.defined"
    /// The scopes every request may ask for, by rule-set version.
    static let standardV1: Set<String> = ["openid", "profile", "email", "offline_access"]
    static let standard: Set<String> = ["openid", "profile", "email", "address", "phone", "offline_access"]

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        let version = draft.input.policy
        var requested = draft.request.scopes
        let defined = (version >= 2 ? Self.standard : Self.standardV1).union(draft.api?.scopes ?? [])
        if requested.contains(where: { !defined.contains($0) }) {
            // OIDC Core §3.1.2.1: scope values an OpenID request uses that the server does not understand
            // SHOULD be ignored. With an API, the scopes are the API's: an unknown one is still an error.
            if version >= 2 && draft.api == nil && requested.contains("openid") {
                requested.removeAll { !defined.contains($0) }
            } else {
                return draft.redirectError(
                    .invalidScope, draft.api == nil ? "A requested scope is not defined." : "A requested scope is not defined by the API.")
            }
        }
        var scopes: [String] = []
        for scope in requested where !scopes.contains(scope) {
            // offline_access is dropped, like Auth0 does, when the API does not allow refresh tokens.
            if scope == "offline_access" && !(draft.api?.allowOfflineAccess ?? false) { continue }
            scopes.append(scope)
        }
        draft.scopes = scopes
        return nil
    }
}

struct ClaimsRule: AuthorizationRule {
    let name = "claims.valid"

    /// OIDC Core §5.5: the `claims` parameter names claims for the ID token and the UserInfo response.
    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        guard let text = draft.parameters["claims"] else { return nil }
        let requested: RequestedClaims
        do {
            requested = try RequestedClaims.parse(text)
        } catch {
            return draft.redirectError(
                .invalidRequest, "The claims parameter must be a JSON object of id_token and userinfo members (OIDC Core section 5.5).")
        }
        if !requested.userinfo.isEmpty && !draft.scopes.contains("openid") {
            return draft.redirectError(.invalidRequest, "Claims for the UserInfo endpoint require the openid scope.")
        }
        draft.requestedClaims = requested.isEmpty ? nil : requested
        return nil
    }
}

struct ConnectionRule {
    static let name = "connection.enabled"

    func resolve(_ draft: AuthorizationDraft) -> RuleResult<String> {
        if let requested = draft.parameters["connection"] {
            guard draft.client.connections.contains(requested), draft.configuration.connections[requested] != nil else {
                return .decided(draft.redirectError(.invalidRequest, "The requested connection is not enabled for this client."))
            }
            return .established(requested)
        } else if let first = draft.client.connections.first(where: { draft.configuration.connections[$0] != nil }) {
            return .established(first)
        } else {
            return .decided(draft.redirectError(.invalidRequest, "The client has no enabled connection."))
        }
    }
}

struct OrganizationRule: AuthorizationRule {
    let name = "organization.allowed"

    func evaluate(_ draft: inout ConnectedDraft) -> AuthorizationOutcome? {
        let requested = draft.parameters["organization"] ?? draft.input.progress.organizationID
        guard let requested else { return nil }
        if draft.client.organizationUsage == .deny {
            return draft.redirectError(.invalidRequest, "The client does not use organizations (organization_usage deny).")
        }
        guard let organization = draft.configuration.organization(idOrName: requested) else {
            return draft.redirectError(.invalidRequest, "Organization not found.")
        }
        if !organization.connections.isEmpty && !organization.connections.contains(draft.connection) {
            return draft.redirectError(.invalidRequest, "The connection \(draft.connection) is not enabled for organization \(organization.name).")
        }
        draft.organization = organization
        return nil
    }
}

struct InvitationRule: AuthorizationRule {
    let name = "invitation.valid"

    func evaluate(_ draft: inout ConnectedDraft) -> AuthorizationOutcome? {
        guard let ticket = draft.parameters["invitation"] else { return nil }
        guard let organization = draft.organization else {
            return draft.redirectError(.invalidRequest, "An invitation requires the organization parameter.")
        }
        guard draft.responseTypes == ["code"] else {
            return draft.redirectError(.invalidRequest, "Invitations are accepted in the authorization code flow only.")
        }
        guard let invitation = draft.configuration.invitations[ticket], invitation.organizationID == organization.id,
            invitation.clientID == draft.client.clientID
        else {
            return draft.redirectError(.invalidRequest, "The invitation is not valid for this organization and client.")
        }
        guard !draft.configuration.spentInvitations.contains(ticket) else {
            return draft.redirectError(.invalidRequest, "The invitation has already been used.")
        }
        guard let expires = LedgerTimestamp(rfc3339: invitation.expiresAt), draft.input.now < expires else {
            return draft.redirectError(.invalidRequest, "The invitation has expired.")
        }
        draft.invitation = invitation
        return nil
    }
}

// MARK: - Who is asking, and what they agreed to.

struct AuthenticationRule {
    static let name = "session.authenticated"

    /// The user the request is for (their session, usable for it) and when they authenticated; or a login
    /// to ask for, or an error.
    func resolve(_ draft: ConnectedDraft) -> RuleResult<(user: RegisteredUser, authTime: LedgerTimestamp)> {
        let input = draft.input
        let prompts = draft.request.prompts
        let loginHint = draft.parameters.loginHint.flatMap { $0.value?.isEmpty == true ? nil : $0 }
        let fresh = input.progress.authenticatedAt != nil
        var usable: SessionSnapshot?
        if let session = input.session, session.expiresAt > input.now, session.connection == draft.connection,
            draft.configuration.users[session.userID] != nil
        {
            usable = session
        }
        if prompts.contains("none") && prompts.count > 1 {
            return .decided(draft.redirectError(.invalidRequest, "prompt=none cannot be combined with other prompt values."))
        }
        var needsLogin = usable == nil
        // OIDC Core §3.1.2.1: an id_token_hint names the user the client expects. Another user's session
        // does not answer for them: with prompt=none that is login_required; otherwise they log in.
        switch draft.parameters.idTokenHint {
        case .invalid:
            return .decided(draft.redirectError(.invalidRequest, "id_token_hint is not an ID token issued by this server."))
        case .subject(let subject):
            if let session = usable, session.userID != subject, !fresh { needsLogin = true }
        case nil:
            break
        }
        if prompts.contains("login") && !fresh { needsLogin = true }
        switch draft.request.maxAge {
        case .absent:
            break
        case .invalid:
            return .decided(
                draft.redirectError(
                    .invalidRequest, "max_age must be a number of seconds from 0 to \(ParsedAuthorizeRequest.maximumMaxAge) (ten years)."))
        case .seconds(let maxAge):
            if let session = usable, session.authTime.adding(seconds: maxAge) < input.now, !fresh { needsLogin = true }
        }
        guard !needsLogin, let session = usable, let user = draft.configuration.users[session.userID] else {
            if prompts.contains("none") {
                return .decided(draft.redirectError(.loginRequired, "The user is not logged in (prompt=none)."))
            }
            return .decided(.login(connection: draft.connection, loginHint: loginHint))
        }
        return .established((user, session.authTime))
    }
}

struct MembershipRule: AuthorizationRule {
    let name = "organization.membership"

    func evaluate(_ draft: inout AuthenticatedDraft) -> AuthorizationOutcome? {
        let user = draft.user
        let prompts = draft.request.prompts
        guard let organization = draft.organization else {
            guard draft.client.organizationUsage == .require else { return nil }
            if prompts.contains("none") {
                return draft.redirectError(.interactionRequired, "The client requires an organization (prompt=none).")
            }
            let choices = draft.configuration.organizations.values
                .filter { draft.configuration.members[$0.id]?.contains(user.userID) ?? false }
                .map(\.id).sorted()
            guard !choices.isEmpty else {
                return draft.redirectError(.accessDenied, "The user is not a member of any organization this client requires.")
            }
            return .chooseOrganization(choices)
        }
        if let invitation = draft.invitation {
            guard invitation.email.matchesIgnoringCase(user.email) else {
                return draft.redirectError(.accessDenied, "The invitation was issued to another email address.")
            }
            return nil
        }
        guard draft.configuration.members[organization.id]?.contains(user.userID) ?? false else {
            return draft.redirectError(.accessDenied, "The user is not a member of organization \(organization.name).")
        }
        return nil
    }
}

struct ConsentRule: AuthorizationRule {
    let name = "consent"

    func evaluate(_ draft: inout AuthenticatedDraft) -> AuthorizationOutcome? {
        let input = draft.input
        let prompts = draft.request.prompts
        switch input.progress.consent {
        case .denied:
            return draft.redirectError(.accessDenied, "The user denied consent.")
        case .granted:
            return nil
        case nil:
            break
        }
        let skippable = draft.client.firstParty && (draft.api?.skipConsentForFirstParty ?? true)
        if skippable && !prompts.contains("consent") { return nil }
        // A stored consent (even one for no scopes) that covers every requested scope answers the question.
        if let stored = input.consents[ConsentKey.make(clientID: draft.client.clientID, audience: draft.audience)],
            !prompts.contains("consent"), Set(draft.scopes).isSubset(of: Set(stored))
        {
            return nil
        }
        if prompts.contains("none") {
            return draft.redirectError(.consentRequired, "The user has not consented to the requested scopes (prompt=none).")
        }
        return .consent(ConsentRequest(clientID: draft.client.clientID, audience: draft.audience, scopes: draft.scopes))
    }
}
