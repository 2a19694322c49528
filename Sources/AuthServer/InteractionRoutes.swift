import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import Hummingbird
import LedgerCore
import PageMarkup

extension AuthorizationServer {
    // MARK: Login

    /// `GET /login?state=…`.
    func loginPage(_ request: Request, _ context: AuthRequestContext) async throws(JournalUnavailable) -> Response {
        switch try await loadInteraction(request, id: queryValue(request, "state"), csrf: nil) {
        case .rejected(let response): return response
        case .found(let interaction):
            guard case .login(let connection, let hint) = interaction.record.pending else {
                return redirect(to: "/authorize/resume?state=\(FormEncoding.encode(interaction.id))")
            }
            return page(
                Pages.login(
                    interaction: interaction.id, csrf: validBinding(request)!, clientName: clientName(interaction), connection: connection,
                    loginHint: hint?.value, error: nil))
        }
    }

    /// `POST /login`: checks the password (Argon2id), records the attempt, starts a new session.
    func login(_ request: Request, _ context: AuthRequestContext) async throws(JournalUnavailable) -> Response {
        let form: [String: String]
        let interaction: ResumedInteraction
        switch try await postedInteraction(request, context) {
        case .rejected(let response): return response
        case .posted(let fields, let loaded): (form, interaction) = (fields, loaded)
        }
        guard case .login(let connection, _) = interaction.record.pending, interaction.record.progress.authenticatedAt == nil else {
            // Already logged in for this interaction (a re-posted form): no second session.
            return redirect(to: "/authorize/resume?state=\(FormEncoding.encode(interaction.id))")
        }
        let username = form["username"] ?? ""
        let password = form["password"] ?? ""
        guard username.utf8.count <= 256, password.utf8.count <= 1024 else {
            return page(
                Pages.login(
                    interaction: interaction.id, csrf: form["csrf"] ?? "", clientName: clientName(interaction), connection: connection,
                    loginHint: nil, error: "The email or password is too long."),
                status: .badRequest)
        }
        let now = settings.clock()
        let user = ledger.configuration.user(named: username, in: connection)
        // What a failure records as the username: the name typed when it named an account; otherwise a keyed
        // pseudonym under the journal's data key (an unknown "username" is often a password typed in the wrong
        // field: an unsalted hash of it would fall to a word list in seconds, this one cannot be checked at all
        // without the key). Equal names, in any case, still count against one throttle budget.
        let recordedUsername = user == nil ? dataKey.pseudonym(username.lowercased(), domain: "login-name") : username

        // Password guessing: refuse, without checking the password, once the recent failures for this
        // account from this address, for this address, or for this account from everywhere — with the
        // attempts still in progress — reach their limits (the refusal is recorded too).
        // Counted as the projection counts the recorded failures: the address by the keyed pseudonym of its network.
        let throttleKeys = settings.loginThrottle.keys(
            userID: user?.userID, username: recordedUsername,
            network: clientAddress(request, context).map { PersonalData.networkKey($0, dataKey: dataKey) })
        let admitted = try await journaled("reading the recent failed logins") {
            try pendingLogins.admit(throttleKeys, throttle: settings.loginThrottle, now: now) {
                try ledger.read { store in
                    try throttleKeys.map { key in try store.value([LedgerTimestamp].self, .loginFailures, key.name) ?? [] }
                }
            }
        }
        defer { if admitted { pendingLogins.settle(throttleKeys) } }
        if !admitted {
            let refusal = LoginFailed(
                username: recordedUsername, connection: connection, reason: .throttled, interaction: interaction.hash, clientIP: clientAddress(request, context),
                userID: user?.userID, at: now)
            try await journaled("recording a refused login") { try await record { try $0.append(.loginFailed(refusal)) } }
            metrics.login(succeeded: false)
            return page(
                Pages.login(
                    interaction: interaction.id, csrf: form["csrf"] ?? "", clientName: clientName(interaction), connection: connection,
                    loginHint: username, error: "Too many failed attempts. Wait a few minutes and try again."),
                status: .tooManyRequests)
        }
        // The same Argon2id work whether or not the user exists, so timing does not reveal accounts.
        let passwordMatches: Bool
        do {
            passwordMatches = try await secrets.verify(password, against: user?.passwordHash ?? decoyPasswordHash) && user != nil
        } catch {
            return unavailablePage()
        }

        guard let user, passwordMatches else {
            let failure = LoginFailed(
                username: recordedUsername, connection: connection, reason: user == nil ? .unknownUser : .wrongPassword,
                interaction: interaction.hash, clientIP: clientAddress(request, context), userID: user?.userID, at: now)
            try await journaled("recording a failed login") { try await record { try $0.append(.loginFailed(failure)) } }
            metrics.login(succeeded: false)
            logger.notice("login failed", metadata: ["connection": "\(connection)", "reason": "\(failure.reason.rawValue)"])
            return page(
                Pages.login(
                    interaction: interaction.id, csrf: form["csrf"] ?? "", clientName: clientName(interaction), connection: connection,
                    loginHint: username, error: "Wrong email or password."),
                status: .unauthorized)
        }

        // A new session id at every login (no session fixation); only its hash is stored.
        let sessionID = OpaqueToken.generate()
        let ttl = ledger.configuration.settings?.sessionTTLSeconds ?? 86_400
        let session = SessionSnapshot(
            sessionHash: OpaqueToken.hash(sessionID), userID: user.userID, connection: connection, authTime: now,
            expiresAt: now.adding(seconds: ttl))
        let success = LoginSucceeded(
            userID: user.userID, connection: connection, session: session, interaction: interaction.hash, clientIP: clientAddress(request, context))
        try await journaled("recording a login") { try await record { try $0.append(.loginSucceeded(success)) } }
        metrics.login(succeeded: true)
        var response = redirect(to: "/authorize/resume?state=\(FormEncoding.encode(interaction.id))")
        setCookie(&response, name: Self.sessionCookie, value: sessionID, maxAge: ttl)
        return response
    }

    // MARK: Consent

    /// `GET /consent?state=…`.
    func consentPage(_ request: Request, _ context: AuthRequestContext) async throws(JournalUnavailable) -> Response {
        switch try await loadInteraction(request, id: queryValue(request, "state"), csrf: nil) {
        case .rejected(let response): return response
        case .found(let interaction):
            let (consent, session): (ConsentRequest, SessionSnapshot)
            switch try await pendingConsent(request, interaction) {
            case .rejected(let response): return response
            case .pending(let pending, let current): (consent, session) = (pending, current)
            }
            let configuration = ledger.configuration
            let user = configuration.users[session.userID]?.email.value ?? session.userID
            let api = consent.audience.flatMap { configuration.apis[$0] }
            return page(
                Pages.consent(
                    interaction: interaction.id, csrf: validBinding(request)!, clientName: clientName(interaction), user: user,
                    audience: api?.name ?? consent.audience, scopes: consent.scopes,
                    describe: { api?.describe($0) ?? StandardClaims.scopeDescriptions[$0] }))
        }
    }

    /// `POST /consent` with `action=accept|deny`.
    func consent(_ request: Request, _ context: AuthRequestContext) async throws(JournalUnavailable) -> Response {
        let form: [String: String]
        let interaction: ResumedInteraction
        switch try await postedInteraction(request, context) {
        case .rejected(let response): return response
        case .posted(let fields, let loaded): (form, interaction) = (fields, loaded)
        }
        let (consent, session): (ConsentRequest, SessionSnapshot)
        switch try await pendingConsent(request, interaction) {
        case .rejected(let response): return response
        case .pending(let pending, let current): (consent, session) = (pending, current)
        }
        let answer = ConsentAnswered(
            userID: session.userID, clientID: consent.clientID, audience: consent.audience, scopes: consent.scopes,
            interaction: interaction.hash)
        let event: AuthEvent
        switch form["action"] {
        case "accept": event = .consentGranted(answer)
        case "deny": event = .consentDenied(answer)
        default: return errorPage(.invalidRequest, "The consent form must be answered with Accept or Deny.")
        }
        try await journaled("recording a consent answer") { try await record { try $0.append(event) } }
        return redirect(to: "/authorize/resume?state=\(FormEncoding.encode(interaction.id))")
    }

    // MARK: Organizations

    /// `GET /organization?state=…`: the organization picker.
    func organizationPage(_ request: Request, _ context: AuthRequestContext) async throws(JournalUnavailable) -> Response {
        switch try await loadInteraction(request, id: queryValue(request, "state"), csrf: nil) {
        case .rejected(let response): return response
        case .found(let interaction):
            guard case .chooseOrganization(let ids) = interaction.record.pending else {
                return redirect(to: "/authorize/resume?state=\(FormEncoding.encode(interaction.id))")
            }
            let configuration = ledger.configuration
            return page(
                Pages.organizations(
                    interaction: interaction.id, csrf: validBinding(request)!, clientName: clientName(interaction),
                    choices: ids.compactMap { configuration.organizations[$0] }))
        }
    }

    /// `POST /organization` with the chosen `organization`.
    func chooseOrganization(_ request: Request, _ context: AuthRequestContext) async throws(JournalUnavailable) -> Response {
        let form: [String: String]
        let interaction: ResumedInteraction
        switch try await postedInteraction(request, context) {
        case .rejected(let response): return response
        case .posted(let fields, let loaded): (form, interaction) = (fields, loaded)
        }
        guard case .chooseOrganization(let ids) = interaction.record.pending, let chosen = form["organization"], ids.contains(chosen) else {
            return errorPage(.invalidRequest, "Choose one of the organizations offered.")
        }
        try await journaled("recording an organization chosen") {
            try await record { try $0.append(.organizationChosen(OrganizationChosen(interaction: interaction.hash, organizationID: chosen))) }
        }
        return redirect(to: "/authorize/resume?state=\(FormEncoding.encode(interaction.id))")
    }

    /// A page's form post: its fields and the interaction it belongs to, checked (binding cookie and CSRF
    /// field), or the response to send instead.
    func postedInteraction(_ request: Request, _ context: AuthRequestContext) async throws(JournalUnavailable) -> PostedInteraction {
        let form: [String: String]
        switch await formFields(request, context) {
        case .success(let fields): form = fields
        case .failure(.unreadable):
            return .rejected(errorPage(.invalidRequest, "The form could not be read (at most 64 KiB).", status: .contentTooLarge))
        case .failure(let refusal):
            return .rejected(errorPage(.invalidRequest, refusal.description))
        }
        switch try await loadInteraction(request, id: form["state"], csrf: form["csrf"], requireCSRF: true) {
        case .rejected(let response): return .rejected(response)
        case .found(let interaction): return .posted(form, interaction)
        }
    }

    // MARK: Other endpoints

    /// `GET /callback`: the demo client's redirect URI.
    func callback(_ request: Request, _ context: AuthRequestContext) -> Response {
        // Only while the demo client is configured: otherwise this origin would show any text a link carries.
        guard ledger.configuration.clients[DemoTenant.clientID] != nil else {
            return errorPage(.invalidRequest, "There is no demo client on this server.", status: .notFound)
        }
        return page(Pages.callback(parameters: FormEncoding.parse(request.uri.query ?? "").map { ($0.name, $0.value) }, issuer: issuer))
    }

    /// `GET /healthz`: 200 when the journal can be read, 503 when it cannot.
    func health() -> Response {
        // A node that stopped appending must leave the load balancer's pool, though its reads still work.
        if let stopped = ledger.journal.appendingStopped {
            return json(["status": "unavailable", "reason": "\(stopped)"], status: .serviceUnavailable)
        }
        do {
            let head = try ledger.journal.read { try $0.head }
            return json(["status": "ok", "journal_sequence": head.sequence])
        } catch {
            return json(["status": "unavailable", "reason": "the journal cannot be read"], status: .serviceUnavailable)
        }
    }

    /// `GET /.well-known/openid-configuration`: what this server really supports today.
    func discovery() -> Response {
        let base = issuer
        let allowPlain = ledger.configuration.settings?.allowPlainPKCE ?? false
        // Every member of OIDC Discovery §3 whose default would claim more (or less) than the server does.
        return json([
            "issuer": base,
            "authorization_endpoint": base + "authorize",
            "jwks_uri": base + ".well-known/jwks.json",
            "token_endpoint": base + "oauth/token",
            "userinfo_endpoint": base + "userinfo",
            "revocation_endpoint": base + "oauth/revoke",
            "introspection_endpoint": base + "oauth/introspect",
            "pushed_authorization_request_endpoint": base + "oauth/par",
            "require_pushed_authorization_requests": false,
            "end_session_endpoint": base + "oidc/logout",
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": false,
            "response_types_supported": ["code", "token", "id_token", "id_token token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "grant_types_supported": ["authorization_code", "refresh_token", "implicit", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": ClientAssertionVerifier.algorithms,
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "dpop_signing_alg_values_supported": DPoPVerifier.algorithms,
            "subject_types_supported": ["public"],
            // ID tokens are always RS256 (OIDC Core §15.1); EdDSA signs access tokens for APIs that ask for it.
            "id_token_signing_alg_values_supported": ["RS256"],
            "userinfo_signing_alg_values_supported": [String](),
            "scopes_supported": ["openid", "profile", "email", "address", "phone", "offline_access"],
            "claims_supported": StandardClaims.supported,
            "claim_types_supported": ["normal"],
            "claims_parameter_supported": true,
            "code_challenge_methods_supported": allowPlain ? ["S256", "plain"] : ["S256"],
            "prompt_values_supported": ["none", "login", "consent"],
            "display_values_supported": ["page"],
            "authorization_response_iss_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "require_request_uri_registration": false,
            "frontchannel_logout_supported": false,
        ])
    }

    /// `GET /.well-known/jwks.json`: the public token signing keys.
    func jwks() async -> Response {
        // Every node's keys: this one's, and those the other nodes of a cluster published in the journal.
        try? await clusterKeys.refresh(ledger: ledger, own: tokenKeys)
        return json(["keys": tokenKeys.jwks + clusterKeys.peers.jwks])
    }

    /// The consent `interaction` waits for and the signed-in session answering it; otherwise the
    /// response to send instead (no session or no pending consent: back to `/authorize/resume`).
    func pendingConsent(_ request: Request, _ interaction: ResumedInteraction) async throws(JournalUnavailable) -> PendingConsent {
        let session = try await journaled("reading the session") { try await currentSession(request, now: settings.clock()) }
        guard case .consent(let consent) = interaction.record.pending, let session else {
            return .rejected(redirect(to: "/authorize/resume?state=\(FormEncoding.encode(interaction.id))"))
        }
        return .pending(consent, session)
    }

    func clientName(_ interaction: ResumedInteraction) -> String {
        interaction.record.parameters["client_id"].flatMap { ledger.configuration.clients[$0]?.name } ?? "the application"
    }
}

/// See ``AuthorizationServer/postedInteraction(_:_:)``.
enum PostedInteraction {
    case posted([String: String], ResumedInteraction)
    case rejected(Response)
}

/// See ``AuthorizationServer/pendingConsent(_:_:)``.
enum PendingConsent {
    case pending(ConsentRequest, SessionSnapshot)
    case rejected(Response)
}
