import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import Hummingbird
import LedgerCore

extension AuthorizationServer {
    /// Logout: OIDC RP-Initiated Logout, and Auth0's `/logout`.
    var logoutRoutes: RouteCollection<AuthRequestContext> {
        let routes = RouteCollection(context: AuthRequestContext.self)
        routes.get("/logout") { request, context in try await self.logoutRequest(request, context) }
        routes.post("/logout") { request, context in try await self.logoutRequest(request, context) }
        routes.get("/oidc/logout") { request, context in try await self.logoutRequest(request, context) }
        routes.post("/oidc/logout") { request, context in try await self.logoutRequest(request, context) }
        return routes
    }

    /// `GET /oidc/logout` and `GET /logout` (OIDC RP-Initiated Logout 1.0; the second is Auth0's path): ends the
    /// browser's session and sends it to the client's `post_logout_redirect_uri` (with `state`) when that is
    /// one of the client's `allowed_logout_urls` exactly — never anywhere else. The session ends at once only
    /// for an `id_token_hint` of this very session (expired is fine); otherwise the user confirms with a
    /// CSRF-bound form, so that a link from another site cannot log anyone out. `POST` with the same
    /// parameters in a form is the same request (§2); a `POST` carrying `csrf` is the confirmation.
    func logoutRequest(_ request: Request, _ context: AuthRequestContext) async throws(JournalUnavailable) -> Response {
        var parameters = Dictionary(FormEncoding.parse(request.uri.query ?? "").map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        if request.method == .post {
            switch await formFields(request, context) {
            case .success(let form):
                if form["csrf"] != nil { return try await confirmLogout(form, request, context) }
                parameters = form
            case .failure(let refusal):
                return errorPage(.invalidRequest, refusal.description)
            }
        }
        let logout = await verifiedLogoutRequest(parameters)
        let configuration = ledger.configuration
        let session = try await journaled("reading the session") { try await currentSession(request, now: settings.clock()) }
        // Decided by the pure rules, recorded whatever the outcome (replay decides it again).
        let decision = LogoutPolicy.decision(logout, session: session, configuration: configuration)
        let decided = LogoutDecided(
            request: logout, session: session, configurationVersion: configuration.version, decision: decision,
            clientIP: clientAddress(request, context))
        let state = parameters["state"]
        let clientID = logout.hint?.clientID ?? logout.clientID
        switch decision.outcome {
        case .endSession:
            return try await endSession(session!, request, context, clientID: clientID, rule: decision.rule, redirect: decision.redirect, state: state, decided: decided)
        case .refused, .noSession, .confirm:
            try await journaled("recording a logout decision") { try await record { try $0.append(.logoutDecided(decided)) } }
        }
        switch decision.outcome {
        case .refused:
            if case .failure(let refusal) = LogoutPolicy.destination(logout, configuration: configuration).result {
                return errorPage(.invalidRequest, refusal.description)
            }
            return errorPage(.invalidRequest, "The logout request is not valid.")
        case .noSession, .endSession:
            return afterLogout(redirect: decision.redirect, state: state, wasLoggedIn: false)
        case .confirm:
            let (binding, isNew) = browserBinding(request)
            var carried: [(String, String)] = []
            if let clientID { carried.append(("client_id", clientID)) }
            if let redirect = decision.redirect { carried.append(("post_logout_redirect_uri", redirect)) }
            if let state { carried.append(("state", state)) }
            var response = page(Pages.logoutConfirmation(csrf: binding, carried: carried))
            if isNew { setCookie(&response, name: Self.bindingCookie, value: binding, maxAge: nil) }
            return response
        }
    }

    /// The confirmation form's `POST`: the `csrf` field must equal this browser's binding cookie; the
    /// destination it carries is checked again.
    func confirmLogout(_ form: [String: String], _ request: Request, _ context: AuthRequestContext) async throws(JournalUnavailable) -> Response {
        guard let binding = validBinding(request), isCSRFToken(form["csrf"], of: binding) else {
            return errorPage(.accessDenied, "The form could not be verified (CSRF check failed). Nothing was changed.", status: .forbidden)
        }
        let logout = LogoutRequest(hint: nil, clientID: form["client_id"], postLogoutRedirectURI: form["post_logout_redirect_uri"])
        let target: (client: RegisteredClient?, redirect: String?)
        switch LogoutPolicy.destination(logout, configuration: ledger.configuration).result {
        case .failure(let refusal): return errorPage(.invalidRequest, refusal.description)
        case .success(let found): target = found
        }
        let current = try await journaled("reading the session") { try await currentSession(request, now: settings.clock()) }
        guard let session = current else { return afterLogout(redirect: target.redirect, state: form["state"], wasLoggedIn: false) }
        return try await endSession(
            session, request, context, clientID: target.client?.clientID, rule: "logout.confirmed", redirect: target.redirect, state: form["state"])
    }

    /// The request's `id_token_hint` verified (an ID token this server signed, expired or not), with its
    /// `client_id` and `post_logout_redirect_uri`.
    func verifiedLogoutRequest(_ parameters: [String: String]) async -> LogoutRequest {
        var hint: LogoutRequest.Hint?
        var invalid = false
        if let text = parameters["id_token_hint"], !text.isEmpty {
            if let claims = await verifiedIDToken(text) {
                hint = LogoutRequest.Hint(subject: claims.sub, clientID: claims.aud, authTime: claims.authTime)
            } else {
                invalid = true
            }
        }
        return LogoutRequest(
            hint: hint, invalidHint: invalid, clientID: parameters["client_id"].flatMap { $0.isEmpty ? nil : $0 },
            postLogoutRedirectURI: parameters["post_logout_redirect_uri"].flatMap { $0.isEmpty ? nil : $0 })
    }

    /// Ends `session` (recorded, so that it stops working everywhere it was presented), clears its cookie,
    /// tells the clients that took part in it over their back channels, and sends the browser on.
    func endSession(
        _ session: SessionSnapshot, _ request: Request, _ context: AuthRequestContext, clientID: String? = nil, rule: String? = nil,
        redirect: String? = nil, state: String? = nil, decided: LogoutDecided? = nil
    ) async throws(JournalUnavailable) -> Response {
        let configuration = ledger.configuration
        let notified = try await journaled("reading the session's clients") {
            try await ledger.query { store in
                try store.entries(.sessionClients, prefix: AuthProjection.sessionClientKey(session.sessionHash, "")).compactMap { key, _ in
                    let client = String(key.split(separator: "\u{1F}", maxSplits: 1).last ?? "")
                    return configuration.clients[client]?.backchannelLogoutURI == nil ? nil : client
                }
            }
        }
        let event = LoggedOut(
            sessionHash: session.sessionHash, userID: session.userID, clientIP: clientAddress(request, context), clientID: clientID, rule: rule,
            postLogoutRedirectURI: redirect, notifiedClients: notified.isEmpty ? nil : notified)
        try await journaled("recording a logout") {
            try await record { recorder in
                if let decided { try recorder.append(.logoutDecided(decided)) }
                try recorder.append(.loggedOut(event))
            }
        }
        metrics.loggedOut(rule: rule)
        if !notified.isEmpty {
            // Never on the browser's time: the deliveries run on, with retries, and record how they went.
            Task { await self.notifyBackchannel(session: session, clients: notified) }
        }
        var response = afterLogout(redirect: redirect, state: state, wasLoggedIn: true)
        setCookie(&response, name: Self.sessionCookie, value: "", maxAge: 0)
        return response
    }

    /// To the client's logout URL with `state`, or the logged-out page.
    func afterLogout(redirect: String?, state: String?, wasLoggedIn: Bool) -> Response {
        guard let redirect else { return page(Pages.loggedOut(wasLoggedIn: wasLoggedIn)) }
        guard let state else { return self.redirect(to: redirect) }
        return self.redirect(to: RedirectURI.appending([("state", state)], to: redirect, inFragment: false))
    }
}
