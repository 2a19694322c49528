import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import Tracing

extension AuthorizationServer {
    /// The endpoints clients authenticate at: token, revocation, introspection, pushed requests.
    var tokenRoutes: RouteCollection<AuthRequestContext> {
        let routes = RouteCollection(context: AuthRequestContext.self)
        routes.post("/oauth/token") { request, context in await self.token(request, context) }
        routes.post("/oauth/revoke") { request, context in await self.revoke(request, context) }
        routes.post("/oauth/introspect") { request, context in await self.introspect(request, context) }
        routes.post("/oauth/par") { request, context in await self.pushAuthorizationRequest(request, context) }
        return routes
    }

    /// `POST /oauth/token`: the authorization code grant (RFC 6749 §4.1.3, RFC 7636) and the refresh token
    /// grant (RFC 6749 §6, rotating).
    ///
    /// Every issuance and every rejection is recorded. Tokens are signed first and sent only once their
    /// issuance is durable; codes and refresh tokens are checked again inside the recording transaction,
    /// so that of concurrent uses exactly one wins, and a second use revokes what the first issued.
    func token(_ request: Request, _ context: AuthRequestContext) async -> Response {
        let form: [String: String]
        switch await formFields(request, context) {
        case .success(let fields): form = fields
        case .failure(let refusal): return tokenError(TokenError(.invalidRequest, refusal.description))
        }
        let grantType = form["grant_type"]
        let clientIP = clientAddress(request, context)
        let client: RegisteredClient
        switch await authenticateClient(request, form, endpoint: "oauth/token") {
        case .success(let authenticated): client = authenticated
        case .failure(let error) where error.code == .temporarilyUnavailable:
            // Overloaded, not refused: nothing to record (recording every one would turn a flood into commits).
            return tokenError(error)
        case .failure(let error):
            return await rejectToken(
                error, grantType: grantType, clientID: form["client_id"], codeHash: nil, clientIP: clientIP,
                basic: request.headers[.authorization] != nil)
        }
        // DPoP (RFC 9449): at most one proof, checked before anything is redeemed.
        var proof: DPoPProof?
        let proofs = request.headers[values: .dpop]
        if proofs.count > 1 {
            return await rejectToken(TokenError(.invalidDPoPProof, "Send one DPoP proof."), grantType: grantType, clientID: client.clientID, codeHash: nil, clientIP: clientIP)
        }
        if let presented = proofs.first {
            do {
                proof = try await DPoPVerifier.verify(presented, method: "POST", url: issuer + "oauth/token", now: settings.clock())
            } catch {
                return await rejectToken(TokenError(.invalidDPoPProof, error.description), grantType: grantType, clientID: client.clientID, codeHash: nil, clientIP: clientIP)
            }
        }
        // FAPI 2.0 §5.3.2.1: sender-constrained tokens — here, bound to a DPoP key.
        if client.isFAPI2 && proof == nil && grantType != nil {
            return await rejectToken(TokenError(.invalidRequest, "FAPI 2.0 clients must send a DPoP proof: their tokens are DPoP-bound."),
                                     grantType: grantType, clientID: client.clientID, codeHash: nil, clientIP: clientIP)
        }
        switch grantType {
        case nil:
            return await rejectToken(TokenError(.invalidRequest, "Missing grant_type."), grantType: nil, clientID: client.clientID, codeHash: nil, clientIP: clientIP)
        case "authorization_code", "refresh_token":
            guard client.grantTypes.contains(grantType!) else {
                return await rejectToken(TokenError(.unauthorizedClient, "The client may not use the \(grantType!) grant."), grantType: grantType,
                                         clientID: client.clientID, codeHash: nil, clientIP: clientIP)
            }
            return grantType == "authorization_code"
                ? await redeemCode(form, client: client, proof: proof, clientIP: clientIP)
                : await redeemRefreshToken(form, client: client, proof: proof, clientIP: clientIP)
        case "client_credentials":
            return await grantClientCredentials(form, client: client, proof: proof, clientIP: clientIP)
        case let other?:
            return await rejectToken(TokenError(.unsupportedGrantType, "Unsupported grant_type."), grantType: other,
                                     clientID: client.clientID, codeHash: nil, clientIP: clientIP)
        }
    }

    /// `grant_type=authorization_code`.
    private func redeemCode(_ form: [String: String], client: RegisteredClient, proof: DPoPProof?, clientIP: String?) async -> Response {
        let grantType = "authorization_code"
        guard let code = form["code"], !code.isEmpty else {
            return await rejectToken(TokenError(.invalidRequest, "Missing code."), grantType: grantType, clientID: client.clientID, codeHash: nil, clientIP: clientIP)
        }
        let codeHash = OpaqueToken.hash(code)
        let now = settings.clock()
        let codeRecord: CodeRecord?
        let readAhead: SubjectKeysReadAhead?
        do {
            // With the code, the key its user's personal values are sealed under (one read for both).
            (codeRecord, readAhead) = try await ledger.redeemableCode(codeHash, now: now)
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot read its journal right now."))
        }
        let grant: CodeGrant
        switch TokenPolicy.checkRedemption(
            record: codeRecord, clientID: client.clientID, redirectURI: form["redirect_uri"], codeVerifier: form["code_verifier"],
            dpopThumbprint: proof?.thumbprint, now: now)
        {
        case .rejected(let error):
            return await rejectToken(error, grantType: grantType, clientID: client.clientID, codeHash: codeHash, clientIP: clientIP)
        case .replayed(let error):
            return await replayed(codeHash: codeHash, error: error, clientID: client.clientID, clientIP: clientIP)
        case .valid(let valid):
            grant = valid
        }
        let configuration = ledger.configuration
        let tokenGrant = TokenRequestGrant(
            clientID: grant.clientID, userID: grant.userID, user: configuration.users[grant.userID], scopes: grant.scopes,
            audience: grant.audience, organizationID: grant.organizationID, nonce: grant.nonce, authTime: grant.authTime,
            dpopJKT: proof?.thumbprint, requestedClaims: grant.claims)
        // offline_access survives the scope rule only where the API allows refresh tokens.
        let refresh = grant.scopes.contains("offline_access") ? OpaqueToken.generate() : nil
        let refreshHash = refresh.map(OpaqueToken.hash)
        return await issue(
            tokenGrant, grantType: grantType, client: client, codeHash: codeHash, refresh: refresh,
            refreshIssued: refreshHash.map {
                RefreshIssued(
                    tokenHash: $0, family: $0, parentHash: nil, clientID: client.clientID, userID: grant.userID, scopes: grant.scopes,
                    audience: grant.audience, organizationID: grant.organizationID, authTime: grant.authTime,
                    expiresAt: now.adding(seconds: TokenPolicy.refreshLifetimeSeconds), dpopJKT: proof?.thumbprint, claims: grant.claims)
            }, proof: proof, now: now, clientIP: clientIP, readAhead: readAhead,
            // Another redemption may have won meanwhile.
            stillValid: [.codeUnredeemed(codeHash)]
        ) { recorder in
            try self.recordReplay(&recorder, codeHash: codeHash, clientID: client.clientID, clientIP: clientIP,
                                  error: TokenError(.invalidGrant, "The authorization code has already been used."))
        }
    }

    /// `grant_type=client_credentials` (RFC 6749 §4.4): decided by ``ClientCredentialsPolicy`` against the
    /// client's grants; the decision and the token it grants are recorded in one commit.
    private func grantClientCredentials(_ form: [String: String], client: RegisteredClient, proof: DPoPProof?, clientIP: String?) async -> Response {
        let now = settings.clock()
        let configuration = ledger.configuration
        let input = ClientCredentialsInput(
            clientID: client.clientID, audience: form["audience"], resource: form["resource"], scope: form["scope"], now: now)
        let decision = withSpan("client_credentials.decide") { _ in ClientCredentialsPolicy.decide(input, configuration: configuration) }
        let decided = ClientCredentialsDecided(configurationVersion: configuration.version, input: input, decision: decision, clientIP: clientIP)
        guard case .issue(let grant) = decision.outcome else {
            do {
                try await record { try $0.append(.clientCredentialsDecided(decided)) }
            } catch {
                return tokenError(TokenError(.temporarilyUnavailable, "The server cannot record requests right now."))
            }
            metrics.clientCredentialsDecided(decision.outcome)
            if case .refuse(let error) = decision.outcome { return tokenError(error) }
            return tokenError(TokenError(.serverError, "No decision."))
        }
        let minted: MintedTokens
        do {
            minted = try await minter.mint(
                TokenRequestGrant(
                    clientID: client.clientID, userID: grant.subject, user: nil, scopes: grant.scopes, audience: grant.audience,
                    organizationID: nil, nonce: nil, authTime: now, dpopJKT: proof?.thumbprint),
                api: configuration.apis[grant.audience], now: now, includeIDToken: false)
        } catch {
            return tokenError(TokenError(.serverError, "Tokens could not be signed."))
        }
        var issued = TokenIssued(
            grantType: "client_credentials", clientID: client.clientID, userID: grant.subject, codeHash: nil, decisionSequence: nil,
            accessTokenID: minted.accessTokenID, idTokenID: nil, scopes: grant.scopes, audience: grant.audience, organizationID: nil,
            // The address is in the decision, sealed under the day's subject; here it would be sealed under the
            // client's (its "user"), which no retention period reaches.
            expiresAt: minted.expiresAt, clientIP: nil, dpopJKT: proof?.thumbprint, dpopProofID: proof?.proofID)
        issued.decisionOffset = 1  // the decision just before it, in the same commit
        do {
            try await record(
                [.clientCredentialsDecided(decided), .tokenIssued(issued)], requiring: proof.map { [.dpopProofUnused($0.proofID)] } ?? [])
        } catch is CommitConditionFailed {
            return await rejectToken(TokenError(.invalidDPoPProof, "The DPoP proof was used before."), grantType: "client_credentials",
                                     clientID: client.clientID, codeHash: nil, clientIP: clientIP)
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot record requests right now; nothing was issued."))
        }
        metrics.clientCredentialsDecided(decision.outcome)
        let body: [String: Any] = [
            "access_token": minted.accessToken, "token_type": minted.tokenType, "expires_in": minted.expiresIn,
            "scope": grant.scopes.joined(separator: " "),
        ]
        return json(body)
    }

    /// `grant_type=refresh_token`: rotates the refresh token; a rotated one presented again revokes its family.
    private func redeemRefreshToken(_ form: [String: String], client: RegisteredClient, proof: DPoPProof?, clientIP: String?) async -> Response {
        let grantType = "refresh_token"
        guard let presented = form["refresh_token"], !presented.isEmpty else {
            return await rejectToken(TokenError(.invalidRequest, "Missing refresh_token."), grantType: grantType, clientID: client.clientID, codeHash: nil, clientIP: clientIP)
        }
        let presentedHash = OpaqueToken.hash(presented)
        let now = settings.clock()
        let stored: (RefreshRecord, RefreshFamilyRecord)?
        do {
            stored = try await ledger.query { try $0.refresh(presentedHash) }
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot read its journal right now."))
        }
        let previous: RefreshIssued
        let scopes: [String]
        switch TokenPolicy.checkRefresh(record: stored?.0, family: stored?.1, clientID: client.clientID, requestedScope: form["scope"], now: now) {
        case .rejected(let error):
            return await rejectToken(error, grantType: grantType, clientID: client.clientID, codeHash: nil, clientIP: clientIP)
        case .reused(let error):
            let family = stored!.0.issued.family
            do {
                try await record { recorder in
                    try recorder.append(.refreshFamilyRevoked(RefreshFamilyRevoked(family: family, reason: .reuse, presentedHash: presentedHash, clientID: client.clientID)))
                    try recorder.append(.tokenRejected(TokenRejected(grantType: grantType, clientID: client.clientID, error: error, codeHash: nil, clientIP: clientIP)))
                }
            } catch {
                return tokenError(TokenError(.temporarilyUnavailable, "The server cannot record requests right now."))
            }
            return tokenError(error)
        case .valid(let issued, let narrowed):
            previous = issued
            scopes = narrowed
        }
        // A family bound to a DPoP key is refreshed only with a proof by that key (RFC 9449 §5).
        if let bound = previous.dpopJKT, proof?.thumbprint != bound {
            return await rejectToken(TokenError(.invalidGrant, "The refresh token is bound to a DPoP key: send a proof by that key."),
                                     grantType: grantType, clientID: client.clientID, codeHash: nil, clientIP: clientIP)
        }
        let configuration = ledger.configuration
        let tokenGrant = TokenRequestGrant(
            clientID: previous.clientID, userID: previous.userID, user: configuration.users[previous.userID], scopes: scopes,
            audience: previous.audience, organizationID: previous.organizationID, nonce: nil, authTime: previous.authTime,
            dpopJKT: proof?.thumbprint, requestedClaims: previous.claims)
        let next = OpaqueToken.generate()
        var rotated = previous
        rotated.tokenHash = OpaqueToken.hash(next)
        rotated.parentHash = presentedHash
        rotated.dpopJKT = previous.dpopJKT ?? proof?.thumbprint
        return await issue(
            tokenGrant, grantType: grantType, client: client, codeHash: nil, refresh: next, refreshIssued: rotated, proof: proof, now: now,
            clientIP: clientIP, stillValid: [.refreshTokenActive(tokenHash: presentedHash, family: previous.family)]
        ) { recorder in
            // A concurrent use rotated it first: this is a reuse.
            try recorder.append(.refreshFamilyRevoked(RefreshFamilyRevoked(family: previous.family, reason: .reuse, presentedHash: presentedHash, clientID: client.clientID)))
            try recorder.append(.tokenRejected(TokenRejected(grantType: grantType, clientID: client.clientID,
                                                             error: TokenError(.invalidGrant, "The refresh token was already used."), codeHash: nil, clientIP: clientIP)))
        }
    }

    /// What must hold in the commit that issues tokens: the DPoP proof unused — first, so that a replayed
    /// proof is refused as such (RFC 9449 §11.1) and does not spend or revoke the grant — then the grant.
    static func issuanceConditions(proofID: String?, grantStillValid: [CommitCondition]) -> [CommitCondition] {
        (proofID.map { [.dpopProofUnused($0)] } ?? []) + grantStillValid
    }

    /// Mints the tokens, then records their issuance if the grant is `stillValid` in the commit (else
    /// records what `lost` appends and refuses), and answers.
    private func issue(
        _ grant: TokenRequestGrant, grantType: String, client: RegisteredClient, codeHash: String?, refresh: String?,
        refreshIssued: RefreshIssued?, proof: DPoPProof?, now: LedgerTimestamp, clientIP: String?, readAhead: SubjectKeysReadAhead? = nil,
        stillValid: [CommitCondition],
        lost: @escaping @Sendable (inout AuthRecorder) throws -> Void
    ) async -> Response {
        let configuration = ledger.configuration
        let minted: MintedTokens
        do {
            minted = try await minter.mint(grant, api: grant.audience.flatMap { configuration.apis[$0] }, now: now, includeIDToken: true)
        } catch {
            return tokenError(TokenError(.serverError, "Tokens could not be signed."))
        }
        let issued = TokenIssued(
            grantType: grantType, clientID: client.clientID, userID: grant.userID, codeHash: codeHash, decisionSequence: nil,
            accessTokenID: minted.accessTokenID, idTokenID: minted.idTokenID, scopes: grant.scopes, audience: grant.audience,
            organizationID: grant.organizationID, expiresAt: minted.expiresAt, clientIP: clientIP, refreshFamily: refreshIssued?.family,
            dpopJKT: proof?.thumbprint, dpopProofID: proof?.proofID, userinfoClaims: grant.requestedClaims?.userinfoNames)
        let events: [AuthEvent] = [.tokenIssued(issued)] + (refreshIssued.map { [.refreshIssued($0)] } ?? [])
        // Encoded, sealed and signed here, before the journal's writer (or there, if a subject has no key yet).
        let prepared = try? await ledger.prepare(events, readAhead: readAhead)
        let won: Bool
        do {
            won = try await record(checking: Self.issuanceConditions(proofID: proof?.proofID, grantStillValid: stillValid)) { recorder, failed in
                switch failed {
                case .dpopProofUnused?:
                    // A replayed proof neither spends nor revokes a grant that still holds; a grant spent
                    // already is presented again whatever the proof, as when the read found it spent (a
                    // node that kept the code it issued reads nothing that would tell it).
                    if try CommitCondition.firstFailing(stillValid, in: recorder.store) != nil {
                        try lost(&recorder)
                        return false
                    }
                    throw DPoPReplay()
                case .some:
                    try lost(&recorder)
                    return false
                case nil:
                    try recorder.append(events, preparedAs: prepared)
                    return true
                }
            }
        } catch is DPoPReplay {
            return await rejectToken(TokenError(.invalidDPoPProof, "The DPoP proof was used before."), grantType: grantType,
                                     clientID: client.clientID, codeHash: codeHash, clientIP: clientIP)
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot record requests right now; nothing was issued."))
        }
        guard won else {
            return tokenError(TokenError(.invalidGrant, "The grant has already been used; what it issued is revoked."))
        }
        var body: [String: Any] = [
            "access_token": minted.accessToken, "token_type": minted.tokenType, "expires_in": minted.expiresIn,
            "scope": grant.scopes.joined(separator: " "),
        ]
        if let idToken = minted.idToken { body["id_token"] = idToken }
        if let refresh { body["refresh_token"] = refresh }
        return json(body)
    }

    /// Authenticates the client as it is registered: the method must be its registered one, a secret must
    /// verify against its Argon2id hash, and an assertion (`private_key_jwt`) must verify against its keys and
    /// be used once — its use is recorded before the request goes on.
    func authenticateClient(_ request: Request, _ form: [String: String], endpoint: String) async -> Result<RegisteredClient, TokenError> {
        let credentials: ClientCredentials
        switch clientCredentials(request, form) {
        case .success(let found): credentials = found
        case .failure(let error): return .failure(error)
        }
        let registered = ledger.configuration.clients[credentials.clientID]
        if let error = TokenPolicy.checkAuthenticationMethod(credentials, client: registered) { return .failure(error) }
        let client = registered!
        if credentials.method == .privateKeyJWT {
            return await checkAssertion(credentials.secret ?? "", of: client, endpoint: endpoint).map { client }
        }
        if let hash = client.secretHash {
            let failed = TokenError(.invalidClient, "Client authentication failed.")
            guard let secret = credentials.secret else { return .failure(failed) }
            do {
                guard try await secrets.verifyClientSecret(secret, against: hash) else { return .failure(failed) }
            } catch {
                return .failure(TokenError(.temporarilyUnavailable, "Too many credential checks are in progress; try again shortly."))
            }
        }
        return .success(client)
    }

    /// Verifies a `private_key_jwt` assertion (RFC 7523 §3) and records its use, refusing one used before.
    /// Its `aud` may be the issuer identifier (RFC 7523bis), the token endpoint, or the endpoint called.
    private func checkAssertion(_ assertion: String, of client: RegisteredClient, endpoint: String) async -> Result<Void, TokenError> {
        // FAPI 2.0 §5.3.2.1: its clients' assertions name the issuer identifier alone.
        let audiences: Set<String> =
            client.isFAPI2 ? [issuer] : [issuer, String(issuer.dropLast()), issuer + "oauth/token", issuer + endpoint]
        let verified: ClientAssertion
        do {
            verified = try await ClientAssertionVerifier.verify(
                assertion, clientID: client.clientID, jwks: client.jwks, audiences: audiences, now: settings.clock())
        } catch {
            return .failure(TokenError(.invalidClient, error.description))
        }
        let used = ClientAssertionUsed(
            clientID: client.clientID, assertion: ClientAssertionUsed.key(clientID: client.clientID, jti: verified.jti),
            expiresAt: verified.expiresAt)
        do {
            // Single use (RFC 7523 §3 rule 7), checked in the commit, where concurrent uses cannot both pass.
            try await record([.clientAssertionUsed(used)], requiring: [.clientAssertionUnused(used.assertion)])
        } catch is CommitConditionFailed {
            return .failure(TokenError(.invalidClient, "The client assertion was used before (its jti must be new)."))
        } catch {
            return .failure(TokenError(.temporarilyUnavailable, "The server cannot record requests right now."))
        }
        return .success(())
    }

    /// Client credentials from HTTP Basic (form-urlencoded parts, RFC 6749 §2.3.1), from a client assertion
    /// (RFC 7523 §2.2), or from the form.
    func clientCredentials(_ request: Request, _ form: [String: String]) -> Result<ClientCredentials, TokenError> {
        if form["client_assertion_type"] != nil || form["client_assertion"] != nil {
            guard form["client_assertion_type"] == ClientAssertionVerifier.assertionType else {
                return .failure(TokenError(.invalidClient, "client_assertion_type must be \(ClientAssertionVerifier.assertionType)."))
            }
            guard let assertion = form["client_assertion"], !assertion.isEmpty else {
                return .failure(TokenError(.invalidClient, "Missing client_assertion."))
            }
            if request.headers[.authorization] != nil || form["client_secret"] != nil {
                return .failure(TokenError(.invalidRequest, "Use one client authentication method, not two."))
            }
            guard let claimed = ClientAssertionVerifier.claimedClient(assertion), !claimed.isEmpty else {
                return .failure(TokenError(.invalidClient, "The client assertion names no client (sub)."))
            }
            if let formID = form["client_id"], formID != claimed {
                return .failure(TokenError(.invalidRequest, "client_id in the form differs from the client assertion's."))
            }
            return .success(ClientCredentials(clientID: claimed, secret: assertion, method: .privateKeyJWT))
        }
        if let authorization = request.headers[.authorization] {
            guard authorization.lowercased().hasPrefix("basic "),
                let decoded = Base64.decode(String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
                let text = String(bytes: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
            else { return .failure(TokenError(.invalidClient, "Malformed Basic authorization header.")) }
            let id = FormEncoding.decode(text[..<colon])
            let secret = FormEncoding.decode(text[text.index(after: colon)...])
            if let formID = form["client_id"], formID != id {
                return .failure(TokenError(.invalidRequest, "client_id in the form differs from the authenticated client."))
            }
            if form["client_secret"] != nil {
                return .failure(TokenError(.invalidRequest, "Use one client authentication method, not two."))
            }
            return .success(ClientCredentials(clientID: id, secret: secret, method: .clientSecretBasic))
        }
        guard let id = form["client_id"], !id.isEmpty else {
            return .failure(TokenError(.invalidClient, "Client authentication is required."))
        }
        if let secret = form["client_secret"] {
            return .success(ClientCredentials(clientID: id, secret: secret, method: .clientSecretPost))
        }
        return .success(ClientCredentials(clientID: id, secret: nil, method: .none))
    }

    /// Records the rejection, then answers with the error.
    func rejectToken(
        _ error: TokenError, grantType: String?, clientID: String?, codeHash: String?, clientIP: String?, basic: Bool = false
    ) async -> Response {
        // Request fields are recorded only up to a length: the journal is not a place to store an attacker's megabytes.
        let rejected = TokenRejected(
            grantType: grantType.map { RecordedText.bounded($0, bytes: 64) }, clientID: clientID.map { RecordedText.bounded($0, bytes: RecordedText.identifierBytes) },
            error: error,
            codeHash: codeHash, clientIP: clientIP)
        do {
            try await record { try $0.append(.tokenRejected(rejected)) }
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot record requests right now."))
        }
        return tokenError(error, basicChallenge: basic && error.code == .invalidClient)
    }

    /// A redeemed code presented again: record the replay, revoke what it issued, refuse.
    func replayed(codeHash: String, error: TokenError, clientID: String, clientIP: String?) async -> Response {
        do {
            try await record { recorder in
                try self.recordReplay(&recorder, codeHash: codeHash, clientID: clientID, clientIP: clientIP, error: error)
            }
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot record requests right now."))
        }
        return tokenError(error)
    }

    /// The events of a code replay: the code and its access tokens revoked, its refresh family revoked.
    func recordReplay(_ recorder: inout AuthRecorder, codeHash: String, clientID: String, clientIP: String?, error: TokenError) throws {
        let current = try recorder.store.code(codeHash)
        try recorder.append(.codeReplayed(CodeReplayed(codeHash: codeHash, clientID: clientID, revokedTokenIDs: current?.tokenIDs ?? [])))
        if let family = current?.refreshFamily {
            try recorder.append(.refreshFamilyRevoked(RefreshFamilyRevoked(family: family, reason: .codeReplay, presentedHash: nil, clientID: clientID)))
        }
        try recorder.append(
            .tokenRejected(TokenRejected(grantType: "authorization_code", clientID: clientID, error: error, codeHash: codeHash, clientIP: clientIP)))
    }

    /// RFC 6749 §5.2: JSON, `no-store` (set for every response by the middleware), 401 with a Basic
    /// challenge for failed Basic authentication.
    func tokenError(_ error: TokenError, basicChallenge: Bool = false) -> Response {
        var response = json(["error": error.code.rawValue, "error_description": OAuthErrorDescription.sanitized(error.description)],
                            status: HTTPResponse.Status(code: error.httpStatus))
        if basicChallenge {
            response.headers[.wwwAuthenticate] = "Basic realm=\"token\", charset=\"UTF-8\""
        }
        return response
    }
}

/// A DPoP proof `jti` that was already used.
struct DPoPReplay: Error {}
