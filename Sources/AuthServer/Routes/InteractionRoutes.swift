import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import Hummingbird
import LedgerCore
import PageMarkup

extension AuthorizationServer {
    /// The pages of an interaction: login, consent, the organization picker.
    var interactionRoutes: RouteCollection<AuthRequestContext> {
        let routes = RouteCollection(context: AuthRequestContext.self)
        routes.get("/login") { request, context in try await self.loginPage(request, context) }
        routes.post("/login") { request, context in try await self.login(request, context) }
        routes.get("/consent") { request, context in try await self.consentPage(request, context) }
        routes.post("/consent") { request, context in try await self.consent(request, context) }
        routes.get("/organization") { request, context in try await self.organizationPage(request, context) }
        routes.post("/organization") { request, context in try await self.chooseOrganization(request, context) }
        return routes
    }

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
            try await pendingLogins.admit(throttleKeys, throttle: settings.loginThrottle, now: now) {
                let names = throttleKeys.map(\.name)
                return try await ledger.query { store in try names.map { try store.recentLoginFailures($0) } }
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
