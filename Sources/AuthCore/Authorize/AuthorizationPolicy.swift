import LedgerCore

/// One step of the authorization decision: it either lets the request through, filling in what it
/// validated, or decides. Rules run in RFC 6749 / OIDC order, and the first to decide names the outcome.
public protocol AuthorizationRule: Sendable {
    /// A stable name recorded in decision events, e.g. `redirect_uri.exact_match`.
    var name: String { get }
    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome?
}

/// What the rules have established so far about a request.
public struct AuthorizationDraft: Sendable {
    public let input: AuthorizationInput
    public let configuration: ConfigurationState
    public var settings: TenantSettings

    public var client: RegisteredClient!
    public var redirectURI: String!
    public var responseTypes: Set<String> = []
    public var delivery: ResponseDelivery!
    public var scopes: [String] = []
    public var audience: String?
    public var api: APIDefinition?
    public var connection: String!
    public var organization: OrganizationRecord?
    public var invitation: InvitationRecord?
    public var user: RegisteredUser?
    public var authTime: LedgerTimestamp?
    /// Claims asked for with the `claims` parameter.
    public var requestedClaims: RequestedClaims?

    var parameters: AuthorizeParameters { input.parameters }

    /// An error for the client's redirect URI (only once client and redirect URI are known to be valid).
    func redirectError(_ error: OAuthErrorCode, _ description: String) -> AuthorizationOutcome {
        .errorRedirect(error: error, description: description, delivery: delivery)
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

    /// The rules, in the order they run.
    public static let rules: [any AuthorizationRule] = [
        ClientRule(), PushedRequestRule(), RedirectURIRule(), RepeatedParameterRule(), PushedRequestRequiredRule(), RequestObjectRule(),
        ResponseTypeRule(), NonceRule(), PKCERule(), FAPI2Rule(),
        DPoPThumbprintRule(), AudienceRule(), ScopeRule(), ClaimsRule(), ConnectionRule(), OrganizationRule(), InvitationRule(),
        AuthenticationRule(), MembershipRule(), ConsentRule(),
    ]

    public static func decide(_ input: AuthorizationInput, configuration: ConfigurationState) -> AuthorizationDecision {
        guard let settings = configuration.settings else {
            return AuthorizationDecision(
                outcome: .errorPage(error: .serverError, description: "The tenant is not configured."), rule: "tenant.configured")
        }
        var draft = AuthorizationDraft(input: input, configuration: configuration, settings: settings)
        for rule in rules {
            if let outcome = rule.evaluate(&draft) {
                return AuthorizationDecision(outcome: outcome, rule: rule.name)
            }
        }
        let grant = CodeGrant(
            clientID: draft.client.clientID, redirectURI: draft.redirectURI, userID: draft.user!.userID, scopes: draft.scopes,
            audience: draft.audience, organizationID: draft.organization?.id, nonce: draft.parameters["nonce"],
            codeChallenge: draft.parameters["code_challenge"],
            codeChallengeMethod: draft.parameters["code_challenge"] == nil ? nil : (draft.parameters["code_challenge_method"] ?? "plain"),
            dpopJKT: draft.parameters["dpop_jkt"], authTime: draft.authTime!,
            expiresAt: input.now.adding(seconds: settings.codeTTLSeconds), invitation: draft.invitation?.ticket,
            redirectURIGiven: input.parameters["redirect_uri"] != nil, claims: draft.requestedClaims)
        if draft.responseTypes != ["code"] {
            return AuthorizationDecision(
                outcome: .issueTokens(grant, responseTypes: draft.responseTypes.sorted(), delivery: draft.delivery), rule: "authorized")
        }
        return AuthorizationDecision(outcome: .issueCode(grant, delivery: draft.delivery), rule: "authorized")
    }
}

// MARK: - Client and redirect URI: errors here are pages, never redirects.

struct ClientRule: AuthorizationRule {
    let name = "client.registered"

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        if draft.parameters.repeated.contains("client_id") {
            return .errorPage(error: .invalidRequest, description: "The client_id parameter is repeated.")
        }
        guard let clientID = draft.parameters["client_id"] else {
            return .errorPage(error: .invalidRequest, description: "Missing required parameter: client_id.")
        }
        guard let client = draft.configuration.clients[clientID] else {
            return .errorPage(error: .invalidRequest, description: "Unknown client.")
        }
        draft.client = client
        return nil
    }
}

struct PushedRequestRule: AuthorizationRule {
    let name = "pushed_request.valid"

    /// RFC 9126 §4: a `request_uri` the server cannot use is an error page (the redirect URI is in the pushed
    /// request, so it is not known to be the client's).
    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
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

struct RedirectURIRule: AuthorizationRule {
    let name = "redirect_uri.exact_match"

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        if draft.parameters.repeated.contains("redirect_uri") {
            return .errorPage(error: .invalidRequest, description: "The redirect_uri parameter is repeated.")
        }
        let registered = draft.client.redirectURIs
        let redirectURI: String
        if let requested = draft.parameters["redirect_uri"] {
            guard RedirectURI.matches(requested, registered) else {
                return .errorPage(
                    error: .invalidRequest,
                    description: "The redirect_uri is not registered for this client (it must match a registered URI exactly).")
            }
            redirectURI = requested
        } else if registered.count == 1 && !(draft.parameters["scope"] ?? "").split(separator: " ").contains("openid") {
            // RFC 6749 §3.1.2.3 lets a client with one registered URI omit it; OIDC Core §3.1.2.1 does not.
            redirectURI = registered[0]
        } else {
            return .errorPage(error: .invalidRequest, description: "Missing required parameter: redirect_uri.")
        }
        draft.redirectURI = redirectURI
        // Until the response type is known, errors go back in the query, with the state.
        let implicitDefault = (draft.parameters["response_type"] ?? "code") != "code"
        let mode = ResponseDelivery.Mode(rawValue: draft.parameters["response_mode"] ?? "") ?? (implicitDefault ? .fragment : .query)
        draft.delivery = ResponseDelivery(redirectURI: redirectURI, mode: mode, state: draft.parameters.values["state"])
        return nil
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
        let scopes = (draft.parameters["scope"] ?? "").split(separator: " ")
        if draft.responseTypes.contains("id_token") && !scopes.contains("openid") {
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
        var requested = (draft.parameters["scope"] ?? "").split(separator: " ").map(String.init)
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

struct ConnectionRule: AuthorizationRule {
    let name = "connection.enabled"

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        if let requested = draft.parameters["connection"] {
            guard draft.client.connections.contains(requested), draft.configuration.connections[requested] != nil else {
                return draft.redirectError(.invalidRequest, "The requested connection is not enabled for this client.")
            }
            draft.connection = requested
        } else if let first = draft.client.connections.first(where: { draft.configuration.connections[$0] != nil }) {
            draft.connection = first
        } else {
            return draft.redirectError(.invalidRequest, "The client has no enabled connection.")
        }
        return nil
    }
}

struct OrganizationRule: AuthorizationRule {
    let name = "organization.allowed"

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        let requested = draft.parameters["organization"] ?? draft.input.progress.organizationID
        guard let requested else { return nil }
        if draft.client.organizationUsage == .deny {
            return draft.redirectError(.invalidRequest, "The client does not use organizations (organization_usage deny).")
        }
        guard let organization = draft.configuration.organization(idOrName: requested) else {
            return draft.redirectError(.invalidRequest, "Organization not found.")
        }
        if !organization.connections.isEmpty && !organization.connections.contains(draft.connection) {
            return draft.redirectError(.invalidRequest, "The connection \(draft.connection!) is not enabled for organization \(organization.name).")
        }
        draft.organization = organization
        return nil
    }
}

struct InvitationRule: AuthorizationRule {
    let name = "invitation.valid"

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
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

struct AuthenticationRule: AuthorizationRule {
    let name = "session.authenticated"

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        let input = draft.input
        let prompts = Set((draft.parameters["prompt"] ?? "").split(separator: " ").map(String.init))
        let loginHint = draft.parameters.loginHint.flatMap { $0.value?.isEmpty == true ? nil : $0 }
        let fresh = input.progress.authenticatedAt != nil
        var usable: SessionSnapshot?
        if let session = input.session, session.expiresAt > input.now, session.connection == draft.connection,
            draft.configuration.users[session.userID] != nil
        {
            usable = session
        }
        if prompts.contains("none") && prompts.count > 1 {
            return draft.redirectError(.invalidRequest, "prompt=none cannot be combined with other prompt values.")
        }
        var needsLogin = usable == nil
        // OIDC Core §3.1.2.1: an id_token_hint names the user the client expects. Another user's session
        // does not answer for them: with prompt=none that is login_required; otherwise they log in.
        switch draft.parameters.idTokenHint {
        case .invalid:
            return draft.redirectError(.invalidRequest, "id_token_hint is not an ID token issued by this server.")
        case .subject(let subject):
            if let session = usable, session.userID != subject, !fresh { needsLogin = true }
        case nil:
            break
        }
        if prompts.contains("login") && !fresh { needsLogin = true }
        if let maxAgeText = draft.parameters["max_age"] {
            guard let maxAge = Int(maxAgeText), (0...315_360_000).contains(maxAge) else {
                return draft.redirectError(.invalidRequest, "max_age must be a number of seconds from 0 to 315360000 (ten years).")
            }
            if let session = usable, session.authTime.adding(seconds: maxAge) < input.now, !fresh { needsLogin = true }
        }
        if needsLogin {
            if prompts.contains("none") {
                return draft.redirectError(.loginRequired, "The user is not logged in (prompt=none).")
            }
            return .login(connection: draft.connection, loginHint: loginHint)
        }
        draft.user = draft.configuration.users[usable!.userID]
        draft.authTime = usable!.authTime
        return nil
    }
}

struct MembershipRule: AuthorizationRule {
    let name = "organization.membership"

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        let user = draft.user!
        let prompts = (draft.parameters["prompt"] ?? "").split(separator: " ")
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

    func evaluate(_ draft: inout AuthorizationDraft) -> AuthorizationOutcome? {
        let input = draft.input
        let prompts = (draft.parameters["prompt"] ?? "").split(separator: " ")
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
