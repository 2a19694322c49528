import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import Hummingbird
import LedgerCore
import Tracing

/// A page interaction the request continues: its handle (from the URL) and stored record.
/// Why a recorded authorization lost a race with another request.
/// What an authorization whose commit condition failed tells the user.
enum AuthorizationConflict: CustomStringConvertible {
    case interactionCompleted
    case invitationSpent
    case sessionEnded
    case pushedRequestUsed

    /// The conflict a failed commit condition of an authorization means.
    init(_ condition: CommitCondition) {
        switch condition {
        case .interactionOpen: self = .interactionCompleted
        case .invitationUnspent: self = .invitationSpent
        case .sessionActive: self = .sessionEnded
        case .pushedRequestUnused: self = .pushedRequestUsed
        case .codeUnredeemed, .refreshTokenActive, .accessTokenActive, .dpopProofUnused, .clientAssertionUnused:
            // Not conditions of an authorization: the token endpoints check them.
            assertionFailure("\(condition) is not an authorization's condition")
            self = .interactionCompleted
        }
    }

    var description: String {
        switch self {
        case .interactionCompleted: "This authorization has already been completed. Return to the application and start again."
        case .invitationSpent: "The invitation has already been used."
        case .sessionEnded: "The session ended while this request was decided. Return to the application and log in again."
        case .pushedRequestUsed: "The request_uri was already used. Return to the application and start again."
        }
    }
}

/// The result of looking up the interaction a page request belongs to.
enum InteractionLookup {
    case found(ResumedInteraction)
    /// The response to send instead (expired, foreign browser, failed CSRF check).
    case rejected(Response)
}

struct ResumedInteraction {
    let id: String
    let record: InteractionRecord
    var hash: String { OpaqueToken.hash(id) }
}

extension AuthorizationServer {
    /// The authorization endpoint (RFC 6749 §3.1), and where the interaction pages send the browser back.
    var authorizeRoutes: RouteCollection<AuthRequestContext> {
        let routes = RouteCollection(context: AuthRequestContext.self)
        routes.get("/authorize") { request, context in try await self.authorize(request, context) }
        routes.post("/authorize") { request, context in try await self.authorize(request, context) }
        routes.get("/authorize/resume") { request, context in try await self.resume(request, context) }
        return routes
    }

    /// The longest `/authorize` query accepted, and the most parameters in it.
    static let maximumQueryLength = 8 * 1024
    static let maximumParameterCount = 64

    /// `GET /authorize`, and `POST /authorize` with the same parameters in a form body (OIDC Core §3.1.2.1).
    func authorize(_ request: Request, _ context: AuthRequestContext) async throws(JournalUnavailable) -> Response {
        let text: String
        if request.method == .post {
            guard request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else {
                return errorPage(
                    .invalidRequest, "POST /authorize takes its parameters as a form (application/x-www-form-urlencoded).",
                    status: .unsupportedMediaType)
            }
            var request = request
            guard let body = try? await request.collectBody(upTo: Self.maximumQueryLength) else {
                return errorPage(
                    .invalidRequest, "The request is too long (at most \(Self.maximumQueryLength) bytes of parameters).", status: .contentTooLarge)
            }
            text = String(buffer: body)
        } else {
            text = request.uri.query ?? ""
        }
        // Oversized requests are refused before anything is parsed or recorded.
        guard text.utf8.count <= Self.maximumQueryLength else {
            return errorPage(.invalidRequest, "The request is too long (at most \(Self.maximumQueryLength) bytes of parameters).", status: .uriTooLong)
        }
        guard text.utf8.lazy.filter({ $0 == UInt8(ascii: "&") }).count < Self.maximumParameterCount else {
            return errorPage(.invalidRequest, "The request has too many parameters (at most \(Self.maximumParameterCount)).")
        }
        let pairs = FormEncoding.parse(text)
        var parameters = AuthorizeParameters(pairs: pairs)
        if let hint = pairs.first(where: { $0.name == AuthorizeParameters.idTokenHintName })?.value, !hint.isEmpty {
            parameters.idTokenHint = await verifiedIDTokenHint(hint)
        }
        let given = parameters
        parameters = try await journaled("reading the pushed request") { try await resolvingPushedRequest(given, now: settings.clock()) }
        return try await runAuthorization(parameters, resuming: nil, request, context)
    }

    /// What an `id_token_hint` is: the subject of an ID token this issuer signed (its own keys or a cluster
    /// peer's; expired is fine, OIDC Core §3.1.2.1), or not one.
    func verifiedIDTokenHint(_ hint: String) async -> IDTokenHint {
        guard let claims = await verifiedIDToken(hint) else { return .invalid }
        return .subject(claims.sub)
    }

    /// The claims of `text` when it is an ID token this server signed (its own keys or a cluster peer's) for
    /// this issuer, expired or not: what `/authorize` and logout take an `id_token_hint` for.
    func verifiedIDToken(_ text: String) async -> IDTokenClaims? {
        guard text.utf8.count <= 8 * 1024, let claims = try? await verifyToken(text, as: IDTokenClaims.self), claims.iss == issuer else {
            return nil
        }
        return claims
    }

    /// `GET /authorize/resume?state=…`: where the login, consent and organization pages send the browser back.
    func resume(_ request: Request, _ context: AuthRequestContext) async throws(JournalUnavailable) -> Response {
        switch try await loadInteraction(request, id: queryValue(request, "state"), csrf: nil) {
        case .rejected(let response): return response
        case .found(let interaction): return try await runAuthorization(interaction.record.parameters, resuming: interaction, request, context)
        }
    }

    /// Decides, records the request, the decision and what follows from it in one durable commit, then answers.
    func runAuthorization(
        _ parameters: AuthorizeParameters, resuming interaction: ResumedInteraction?, _ request: Request, _ context: AuthRequestContext
    ) async throws(JournalUnavailable) -> Response {
        let now = settings.clock()
        let configuration = ledger.configuration
        let clientID = parameters["client_id"]
        let ledger = self.ledger
        // The user's consents, and the key their personal values are sealed under, from the session's snapshot.
        let found = try await journaled("reading the session") {
            try await currentSession(request, now: now) { store, session in
                (consents: try clientID.map { try store.consents(userID: session.userID, clientID: $0) } ?? [:],
                 keys: try ledger.readAhead(subjects: [PersonalData.userSubject(session.userID)], in: store))
            }
        }
        let session = found?.session
        let consents = found?.extra.consents ?? [:]
        let readAhead = found?.extra.keys
        let input = AuthorizationInput(
            parameters: parameters, session: session, consents: consents, progress: interaction?.record.progress ?? .fresh, now: now)
        let decision = withSpan("authorize.decide") { span in
            let decision = AuthorizationPolicy.decide(input, configuration: configuration)
            span.attributes["authledger.decision.rule"] = decision.rule
            span.attributes["authledger.decision.outcome"] = decision.outcome.name
            return decision
        }

        // What the outcome needs that the pure decision cannot make: fresh randomness.
        var interactionID = interaction?.id
        var newBinding: String?
        var opened: InteractionRecord?
        var code: String?
        switch decision.outcome {
        case .login, .consent, .chooseOrganization:
            interactionID = interactionID ?? OpaqueToken.generate()
            let (binding, isNew) = browserBinding(request)
            if isNew { newBinding = binding }
            opened = InteractionRecord(
                parameters: parameters, progress: input.progress, bindingHash: OpaqueToken.hash(binding),
                expiresAt: now.adding(seconds: settings.interactionTTLSeconds), pending: decision.outcome)
        case .issueCode:
            code = OpaqueToken.generate()
        case .issueTokens, .errorPage, .errorRedirect:
            break
        }
        // Implicit flow: sign the tokens now, outside the journal's writer; they are only sent once recorded.
        var implicitTokens: MintedTokens?
        if case .issueTokens(let grant, let types, _) = decision.outcome {
            do {
                implicitTokens = try await minter.mint(
                    TokenRequestGrant(
                        clientID: grant.clientID, userID: grant.userID, user: configuration.users[grant.userID], scopes: grant.scopes,
                        audience: grant.audience, organizationID: grant.organizationID, nonce: grant.nonce, authTime: grant.authTime,
                        requestedClaims: grant.claims),
                    api: grant.audience.flatMap { configuration.apis[$0] }, now: now, includeAccessToken: types.contains("token"),
                    includeIDToken: types.contains("id_token"))
            } catch {
                logger.error("token minting failed", metadata: ["error": "\(error)"])
                return errorPage(.serverError, "Tokens could not be signed.", status: .internalServerError)
            }
        }
        let implicitIssued = implicitTokens
        let clientIP = clientAddress(request, context)
        let interactionHash = interactionID.map(OpaqueToken.hash)
        var requestEvent = AuthorizeRequested(
            parameters: parameters, clientIP: clientIP,
            userAgent: request.headers[.userAgent].map { RecordedText.bounded($0, bytes: RecordedText.userAgentBytes) }, interaction: interaction?.hash)
        requestEvent.userID = session?.userID  // whose personal data the request's address and user agent are
        let requested = requestEvent
        let codeHash = code.map(OpaqueToken.hash)
        let version = configuration.version
        let openedRecord = opened
        let resumedHash = interaction?.hash
        // The request, its decision and what follows, in one commit; the decision refers to the request,
        // and what follows to the decision, by offset, so that all of them are encoded, sealed and signed
        // here, before the journal's writer.
        var events: [AuthEvent] = [
            .authorizeRequested(requested),
            .authorizeDecided(
                AuthorizeDecided(
                    requestOffset: 1, configurationVersion: version, input: input, decision: decision, interaction: interactionHash,
                    parametersOfRequest: input.parameters == requested.parameters)),
        ]
        let decisionIndex = 1
        if let openedRecord, let interactionHash {
            events.append(
                .interactionOpened(InteractionOpened(interaction: interactionHash, record: openedRecord, decisionOffset: UInt64(events.count - decisionIndex))))
        }
        if case .issueTokens(let grant, let types, _) = decision.outcome, let tokens = implicitIssued {
            var issued = TokenIssued(
                grantType: "implicit", clientID: grant.clientID, userID: grant.userID, codeHash: nil, decisionSequence: nil,
                accessTokenID: types.contains("token") ? tokens.accessTokenID : nil, idTokenID: tokens.idTokenID, scopes: grant.scopes,
                audience: grant.audience, organizationID: grant.organizationID, expiresAt: tokens.expiresAt, clientIP: clientIP,
                userinfoClaims: grant.claims?.userinfoNames)
            issued.decisionOffset = UInt64(events.count - decisionIndex)
            events.append(.tokenIssued(issued))
        }
        var codeIndex: Int?
        if case .issueCode(let grant, _) = decision.outcome, let codeHash {
            // The grant is the decision's outcome's: written there, once.
            codeIndex = events.count
            events.append(.codeIssued(CodeIssued(codeHash: codeHash, grant: grant, decisionOffset: UInt64(events.count - decisionIndex), grantOfDecision: true)))
            if let ticket = grant.invitation, let organization = grant.organizationID {
                events.append(.invitationAccepted(InvitationAccepted(ticket: ticket, organizationID: organization, userID: grant.userID)))
            }
        }
        // Single use, checked in the commit, where concurrent requests cannot both pass: the interaction must
        // still be open, a pushed request unused, the session not logged out since it was read, an invitation
        // not spent by a concurrent request.
        var conditions: [CommitCondition] = []
        if let resumedHash { conditions.append(.interactionOpen(resumedHash)) }
        if resumedHash == nil, let pushed = parameters.pushedRequest, pushed.refused == nil {
            conditions.append(.pushedRequestUnused(pushed.hash))
        }
        if let sessionSeen = input.session, decision.outcome.issues { conditions.append(.sessionActive(sessionSeen.sessionHash)) }
        if case .issueCode(let grant, _) = decision.outcome, let ticket = grant.invitation { conditions.append(.invitationUnspent(ticket)) }
        let sequences: [UInt64]
        do {
            sequences = try await record(events, readAhead: readAhead, requiring: conditions)
        } catch let failed as CommitConditionFailed {
            return errorPage(.invalidRequest, AuthorizationConflict(failed.condition).description)
        } catch {
            logger.error("journal append failed; nothing issued", metadata: ["error": "\(error)"])
            if case .errorRedirect(_, _, let delivery) = decision.outcome {
                return deliver(
                    [("error", OAuthErrorCode.temporarilyUnavailable.rawValue), ("error_description", "The server cannot record requests right now.")],
                    via: delivery)
            }
            if case .issueCode(_, let delivery) = decision.outcome {
                return deliver(
                    [("error", OAuthErrorCode.temporarilyUnavailable.rawValue), ("error_description", "The server cannot record requests right now.")],
                    via: delivery)
            }
            if case .issueTokens(_, _, let delivery) = decision.outcome {
                return deliver(
                    [("error", OAuthErrorCode.temporarilyUnavailable.rawValue), ("error_description", "The server cannot record requests right now.")],
                    via: delivery)
            }
            throw JournalUnavailable(doing: "recording an authorization", cause: error)
        }
        metrics.decided(decision.outcome)
        if case .issueCode(let grant, _) = decision.outcome, let codeHash, let codeIndex {
            // Its redemption will read the code and its user's key: kept now, so that on PostgreSQL it reads
            // nothing when it comes to this node (the commit checks that the code is still unredeemed).
            ledger.expectRedemption(ofCode: codeHash, grant: grant, issuedAt: sequences[codeIndex], readAhead: readAhead, now: now)
        }
        // At debug: the journal records every decision, and /metrics counts them; a line per request at
        // info would cost every authorization a formatted, escaped write for what an operator rarely reads.
        logger.debug(
            "authorize decided",
            metadata: ["client_id": "\(parameters["client_id"] ?? "-")", "outcome": "\(decision.outcome.name)", "rule": "\(decision.rule)"])

        var response: Response
        switch decision.outcome {
        case .errorPage(let error, let description):
            response = errorPage(error, description)
        case .errorRedirect(let error, let description, let delivery):
            response = deliver([("error", error.rawValue), ("error_description", description)], via: delivery)
        case .login:
            response = redirect(to: "/login?state=\(FormEncoding.encode(interactionID!))")
        case .consent:
            response = redirect(to: "/consent?state=\(FormEncoding.encode(interactionID!))")
        case .chooseOrganization:
            response = redirect(to: "/organization?state=\(FormEncoding.encode(interactionID!))")
        case .issueCode(_, let delivery):
            response = deliver([("code", code!)], via: delivery)
        case .issueTokens(_, let types, let delivery):
            let tokens = implicitIssued!
            var fields: [(String, String)] = []
            if types.contains("token") {
                fields += [("access_token", tokens.accessToken), ("token_type", tokens.tokenType), ("expires_in", String(tokens.expiresIn))]
            }
            if let idToken = tokens.idToken { fields.append(("id_token", idToken)) }
            response = deliver(fields, via: delivery)
        }
        if let newBinding {
            setCookie(&response, name: Self.bindingCookie, value: newBinding, maxAge: nil)
        }
        return response
    }

    /// Sends parameters back to the client as its response mode asks, with `state` and `iss` (RFC 9207).
    func deliver(_ parameters: [(String, String)], via delivery: ResponseDelivery) -> Response {
        var all = parameters.map { name, value in (name, name == "error_description" ? OAuthErrorDescription.sanitized(value) : value) }
        if let state = delivery.state { all.append(("state", state)) }
        all.append(("iss", issuer))
        switch delivery.mode {
        case .query, .fragment:
            return redirect(to: RedirectURI.appending(all, to: delivery.redirectURI, inFragment: delivery.mode == .fragment))
        case .formPost:
            return page(Pages.formPost(action: delivery.redirectURI, fields: all))
        }
    }

    /// The browser's binding token: its cookie's, or a new one (`isNew`: the response must set the cookie).
    func browserBinding(_ request: Request) -> (value: String, isNew: Bool) {
        validBinding(request).map { ($0, false) } ?? (OpaqueToken.generate(), true)
    }

    /// Whether a form's `csrf` field is this browser's binding token (compared in constant time).
    func isCSRFToken(_ csrf: String?, of binding: String) -> Bool {
        guard let csrf else { return false }
        return constantTimeEquals(Array(csrf.utf8), Array(binding.utf8))
    }

    /// The browser-binding token from its cookie, if it looks like one we issue.
    func validBinding(_ request: Request) -> String? {
        guard let value = cookie(request, Self.bindingCookie), value.utf8.count == 43, Base64URL.decode(value)?.count == 32 else {
            return nil
        }
        return value
    }

    /// Loads the interaction named by `id` and checks that this browser started it: the binding cookie must
    /// match the interaction, and, for form posts, the `csrf` field must equal the cookie.
    func loadInteraction(
        _ request: Request, id: String?, csrf: String?, requireCSRF: Bool = false
    ) async throws(JournalUnavailable) -> InteractionLookup {
        let expired = errorPage(.invalidRequest, "This login page has expired or is not valid. Return to the application and start again.")
        guard let id, !id.isEmpty, id.utf8.count <= 64 else { return .rejected(expired) }
        let dataKey = ledger.dataKey
        let stored = try await journaled("reading the interaction") {
            try await ledger.query { try $0.interaction(OpaqueToken.hash(id), dataKey: dataKey) }
        }
        guard let record = stored, record.expiresAt > settings.clock() else {
            return .rejected(expired)
        }
        guard let binding = validBinding(request),
            constantTimeEquals(Array(OpaqueToken.hash(binding).utf8), Array(record.bindingHash.utf8))
        else {
            return .rejected(errorPage(.accessDenied, "This page was opened in another browser. Start again from the application.", status: .forbidden))
        }
        if requireCSRF {
            guard isCSRFToken(csrf, of: binding) else {
                return .rejected(errorPage(.accessDenied, "The form could not be verified (CSRF check failed).", status: .forbidden))
            }
        }
        return .found(ResumedInteraction(id: id, record: record))
    }
}
