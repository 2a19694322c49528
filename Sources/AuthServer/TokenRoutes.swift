import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore

extension AuthorizationServer {
    /// `POST /oauth/token` (RFC 6749 §4.1.3, RFC 7636): the authorization code grant.
    ///
    /// Every issuance and every rejection is recorded. A code is redeemed at most once: its status is read
    /// again inside the journal transaction that records the issuance, so of concurrent redemptions exactly
    /// one wins; presenting a redeemed code again revokes the tokens it issued.
    func token(_ request: Request, _ context: AuthRequestContext) async -> Response {
        guard let form = await formFields(request, context) else {
            return tokenError(TokenError(.invalidRequest, "The request body is not a form of at most 64 KiB."))
        }
        let grantType = form["grant_type"]
        let clientIP = context.clientIP

        // Client authentication (RFC 6749 §2.3.1).
        let client: RegisteredClient
        switch authenticateClient(request, form) {
        case .success(let authenticated): client = authenticated
        case .failure(let error):
            return await rejectToken(
                error, grantType: grantType, clientID: form["client_id"], codeHash: nil, clientIP: clientIP,
                basic: request.headers[.authorization] != nil)
        }
        let configuration = ledger.configuration

        guard let grantType else {
            return await rejectToken(TokenError(.invalidRequest, "Missing grant_type."), grantType: nil, clientID: client.clientID, codeHash: nil, clientIP: clientIP)
        }
        guard grantType == "authorization_code" else {
            return await rejectToken(TokenError(.unsupportedGrantType, "Unsupported grant_type: \(grantType)."), grantType: grantType,
                                     clientID: client.clientID, codeHash: nil, clientIP: clientIP)
        }
        guard client.grantTypes.contains("authorization_code") else {
            return await rejectToken(TokenError(.unauthorizedClient, "The client may not use the authorization_code grant."), grantType: grantType,
                                     clientID: client.clientID, codeHash: nil, clientIP: clientIP)
        }
        guard let code = form["code"], !code.isEmpty else {
            return await rejectToken(TokenError(.invalidRequest, "Missing code."), grantType: grantType, clientID: client.clientID, codeHash: nil, clientIP: clientIP)
        }
        let codeHash = OpaqueToken.hash(code)
        let now = settings.clock()
        let codeRecord = try? ledger.read { try $0.code(codeHash) }
        let redemption = TokenPolicy.checkRedemption(
            record: codeRecord, clientID: client.clientID, redirectURI: form["redirect_uri"], codeVerifier: form["code_verifier"], now: now)
        let grant: CodeGrant
        switch redemption {
        case .rejected(let error):
            return await rejectToken(error, grantType: grantType, clientID: client.clientID, codeHash: codeHash, clientIP: clientIP)
        case .replayed(let error):
            return await replayed(codeHash: codeHash, error: error, clientID: client.clientID, clientIP: clientIP)
        case .valid(let valid):
            grant = valid
        }

        // Sign first (outside the writer); the tokens leave only if the redemption is recorded.
        let minted: MintedTokens
        do {
            minted = try await minter.mint(
                TokenRequestGrant(
                    clientID: grant.clientID, userID: grant.userID, email: configuration.users[grant.userID]?.email, scopes: grant.scopes,
                    audience: grant.audience, organizationID: grant.organizationID, nonce: grant.nonce, authTime: grant.authTime,
                    dpopJKT: nil),
                api: grant.audience.flatMap { configuration.apis[$0] }, now: now, includeIDToken: true)
        } catch {
            return tokenError(TokenError(.serverError, "Tokens could not be signed."))
        }
        let issued = TokenIssued(
            grantType: grantType, clientID: client.clientID, userID: grant.userID, codeHash: codeHash, decisionSequence: nil,
            accessTokenID: minted.accessTokenID, idTokenID: minted.idTokenID, scopes: grant.scopes, audience: grant.audience,
            organizationID: grant.organizationID, expiresAt: minted.expiresAt, clientIP: clientIP)
        let won: Bool
        do {
            won = try await record { recorder in
                // Read the code again inside the transaction: another redemption may have won meanwhile.
                let current = try recorder.store.get(.codes, codeHash).map { try PayloadCoding.decode(CodeRecord.self, from: $0) }
                guard current?.status == .issued else {
                    let replay = CodeReplayed(codeHash: codeHash, clientID: client.clientID, revokedTokenIDs: current?.tokenIDs ?? [])
                    try recorder.append(.codeReplayed(replay))
                    try recorder.append(
                        .tokenRejected(
                            TokenRejected(grantType: grantType, clientID: client.clientID,
                                          error: TokenError(.invalidGrant, "The authorization code has already been used."),
                                          codeHash: codeHash, clientIP: clientIP)))
                    return false
                }
                try recorder.append(.tokenIssued(issued))
                return true
            }
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot record requests right now; nothing was issued."))
        }
        guard won else {
            return tokenError(TokenError(.invalidGrant, "The authorization code has already been used; tokens issued from it are revoked."))
        }
        var body: [String: Any] = [
            "access_token": minted.accessToken, "token_type": minted.tokenType, "expires_in": minted.expiresIn,
            "scope": grant.scopes.joined(separator: " "),
        ]
        if let idToken = minted.idToken { body["id_token"] = idToken }
        return json(body)
    }

    /// Authenticates the client as it is registered: the method must be its registered one, and a secret
    /// must verify against its Argon2id hash.
    func authenticateClient(_ request: Request, _ form: [String: String]) -> Result<RegisteredClient, TokenError> {
        let credentials: ClientCredentials
        switch clientCredentials(request, form) {
        case .success(let found): credentials = found
        case .failure(let error): return .failure(error)
        }
        let registered = ledger.configuration.clients[credentials.clientID]
        if let error = TokenPolicy.checkAuthenticationMethod(credentials, client: registered) { return .failure(error) }
        let client = registered!
        if let hash = client.secretHash {
            guard let secret = credentials.secret, settings.hasher.verify(secret, against: hash) else {
                return .failure(TokenError(.invalidClient, "Client authentication failed."))
            }
        }
        return .success(client)
    }

    /// Client credentials from HTTP Basic (form-urlencoded parts, RFC 6749 §2.3.1) or from the form.
    func clientCredentials(_ request: Request, _ form: [String: String]) -> Result<ClientCredentials, TokenError> {
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
        let rejected = TokenRejected(grantType: grantType, clientID: clientID, error: error, codeHash: codeHash, clientIP: clientIP)
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
                let current = try recorder.store.get(.codes, codeHash).map { try PayloadCoding.decode(CodeRecord.self, from: $0) }
                try recorder.append(.codeReplayed(CodeReplayed(codeHash: codeHash, clientID: clientID, revokedTokenIDs: current?.tokenIDs ?? [])))
                try recorder.append(
                    .tokenRejected(TokenRejected(grantType: "authorization_code", clientID: clientID, error: error, codeHash: codeHash, clientIP: clientIP)))
            }
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot record requests right now."))
        }
        return tokenError(error)
    }

    /// RFC 6749 §5.2: JSON, `no-store` (set for every response by the middleware), 401 with a Basic
    /// challenge for failed Basic authentication.
    func tokenError(_ error: TokenError, basicChallenge: Bool = false) -> Response {
        var response = json(["error": error.code.rawValue, "error_description": error.description],
                            status: HTTPResponse.Status(code: error.httpStatus))
        if basicChallenge {
            response.headers[.wwwAuthenticate] = "Basic realm=\"token\", charset=\"UTF-8\""
        }
        return response
    }
}
