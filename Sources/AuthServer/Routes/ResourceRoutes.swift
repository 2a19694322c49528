import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore

extension AuthorizationServer {
    /// What an access token opens at the server itself: the UserInfo endpoint.
    var resourceRoutes: RouteCollection<AuthRequestContext> {
        let routes = RouteCollection(context: AuthRequestContext.self)
        routes.get("/userinfo") { request, context in await self.userinfo(request, context) }
        routes.post("/userinfo") { request, context in await self.userinfo(request, context) }
        return routes
    }

    /// `GET /userinfo` and `POST /userinfo` (OIDC Core §5.3): the claims of the user a valid, unrevoked
    /// access token names. The token comes in the `Authorization` header, or (POST only) as `access_token`
    /// in a form body (RFC 6750 §2.2) — never both.
    func userinfo(_ request: Request, _ context: AuthRequestContext) async -> Response {
        var bodyToken: String?
        let isForm = request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") ?? false
        if request.method == .post && isForm {
            switch await formFields(request, context) {
            case .success(let form): bodyToken = form["access_token"]
            case .failure(let refusal): return bearerError("invalid_request", refusal.description, status: .badRequest)
            }
        }
        let authorization = request.headers[.authorization]
        if authorization != nil && bodyToken != nil {
            return bearerError("invalid_request", "Send the access token one way: in the Authorization header or in the form.", status: .badRequest)
        }
        let token: String
        let isDPoP: Bool
        if let bodyToken {
            guard !bodyToken.isEmpty else { return bearerError("invalid_request", "The access_token field is empty.", status: .badRequest) }
            (token, isDPoP) = (bodyToken, false)
        } else {
            guard let authorization else {
                return bearerError(nil, "An access token is required (Authorization: Bearer or DPoP).")
            }
            let lowered = authorization.lowercased()
            isDPoP = lowered.hasPrefix("dpop ")
            guard isDPoP || lowered.hasPrefix("bearer ") else {
                return bearerError("invalid_request", "Use the Bearer or DPoP authorization scheme.", status: .badRequest)
            }
            token = String(authorization.dropFirst(isDPoP ? 5 : 7)).trimmingCharacters(in: .whitespaces)
        }
        let claims: AccessTokenClaims
        do {
            claims = try await verifyAccessToken(token)
        } catch {
            return bearerError("invalid_token", "The access token is not valid.")
        }
        let now = settings.clock()
        // RFC 9449 §7: a DPoP-bound token only with the DPoP scheme and a proof by its key, for this request.
        if let jkt = claims.cnf?.jkt {
            let proofs = request.headers[values: .dpop]
            guard isDPoP, proofs.count == 1 else {
                return bearerError("invalid_token", "This access token is bound to a DPoP key: present it with a DPoP proof.", scheme: .dpop)
            }
            do {
                let proof = try await DPoPVerifier.verify(
                    proofs[0], method: request.method.rawValue, url: issuer + "userinfo", now: now, windowSeconds: DPoPProofCache.window)
                let expectedHash = Base64URL.encode(SHA256Digest.hash(Array(token.utf8)).bytes)
                guard proof.thumbprint == jkt, proof.accessTokenHash == expectedHash else {
                    return bearerError("invalid_token", "The DPoP proof is not by the token's key, or not for this token.", scheme: .dpop)
                }
                guard userinfoProofs.firstUse(thumbprint: proof.thumbprint, proofID: proof.proofID, now: now) else {
                    return bearerError("invalid_dpop_proof", "This DPoP proof was already used.", scheme: .dpop)
                }
            } catch {
                return bearerError("invalid_dpop_proof", error.description, scheme: .dpop)
            }
        } else if isDPoP {
            return bearerError("invalid_token", "This access token is not DPoP-bound: use the Bearer scheme.")
        }
        guard claims.iss == issuer, claims.exp > now.secondsSinceEpoch else {
            return bearerError("invalid_token", "The access token has expired or was issued by another server.")
        }
        let stored: TokenRecord?
        do {
            stored = try await ledger.query { store in
                // The signature says a signing key vouches for the token; the journal says what was issued.
                // Both must agree, so that a key alone (a retired one, another node's) cannot mint more than
                // the journal recorded: same user, same client, no longer life.
                guard let record = try store.token(claims.jti), record.status == .active, record.userID == claims.sub,
                    record.clientID == claims.clientID, claims.exp <= record.expiresAt.secondsSinceEpoch, now < record.expiresAt
                else { return nil }
                return try (record.refreshFamily.map(store.isFamilyRevoked) ?? false) ? nil : record
            }
        } catch {
            return json(
                ["error": "temporarily_unavailable", "error_description": "The server cannot read its journal right now."],
                status: .serviceUnavailable)
        }
        guard let record = stored else {
            return bearerError("invalid_token", "The access token has been revoked.")
        }
        let scopes = claims.scope.split(separator: " ").map(String.init)
        guard scopes.contains("openid") else {
            return bearerError("insufficient_scope", "The access token was not issued with the openid scope.", status: .forbidden)
        }
        var body: [String: JSONValue] = [:]
        if let user = ledger.configuration.users[claims.sub] {
            body = StandardClaims.values(of: user, names: StandardClaims.names(scopes: scopes, requested: record.userinfoClaims ?? []))
        }
        body["sub"] = .string(claims.sub)
        if let organization = claims.orgID { body["org_id"] = .string(organization) }
        return json(value: JSONValue.object(body))
    }

    /// `POST /oauth/revoke` (RFC 7009): a client revokes one of its access tokens. Always 200 for a
    /// token that is unknown or not the client's (so nothing is revealed), after client authentication.
    func revoke(_ request: Request, _ context: AuthRequestContext) async -> Response {
        let form: [String: String]
        switch await formFields(request, context) {
        case .success(let fields): form = fields
        case .failure(let refusal): return tokenError(TokenError(.invalidRequest, refusal.description))
        }
        let client: RegisteredClient
        switch await authenticateClient(request, form, endpoint: "oauth/revoke") {
        case .failure(let error): return tokenError(error, basicChallenge: error.code == .invalidClient && request.headers[.authorization] != nil)
        case .success(let authenticated): client = authenticated
        }
        guard let token = form["token"], !token.isEmpty else {
            return tokenError(TokenError(.invalidRequest, "Missing token."))
        }
        // token_type_hint is only a hint (RFC 7009 §2.1): both kinds are looked up whatever it says, and an
        // unknown hint is no error.
        // A refresh token revokes its whole family (RFC 7009 §2.1 lets it take the access tokens along).
        let storedRefresh: (RefreshRecord, RefreshFamilyRecord)?
        do {
            storedRefresh = try await ledger.query { try $0.refresh(OpaqueToken.hash(token)) }
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot read its journal right now."))
        }
        if let (refresh, family) = storedRefresh {
            guard refresh.issued.clientID == client.clientID, !family.revoked else { return json([String: String]()) }
            let revocation = RefreshFamilyRevoked(
                family: refresh.issued.family, reason: .revocation, presentedHash: OpaqueToken.hash(token), clientID: client.clientID)
            do {
                try await record { try $0.append(.refreshFamilyRevoked(revocation)) }
            } catch {
                return tokenError(TokenError(.temporarilyUnavailable, "The server cannot record requests right now."))
            }
            return json([String: String]())
        }
        guard let claims = try? await verifyAccessToken(token), claims.clientID == client.clientID else {
            return json([String: String]())
        }
        let revoked = TokenRevoked(tokenID: claims.jti, clientID: client.clientID, clientIP: clientAddress(request, context))
        do {
            try await record(checking: [.accessTokenActive(claims.jti)]) { recorder, failed in
                guard failed == nil else { return }  // revoked or expired already: nothing to record
                try recorder.append(.tokenRevoked(revoked))
            }
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot record requests right now."))
        }
        return json([String: String]())
    }

    /// The authentication scheme a resource error challenges with.
    enum ChallengeScheme: String {
        /// RFC 6750 §3.
        case bearer = "Bearer"
        /// RFC 9449 §7.1, for DPoP-bound tokens; it names the proof algorithms accepted.
        case dpop = "DPoP"
    }

    /// An RFC 6750 §3 (or RFC 9449 §7.1) error, with its `WWW-Authenticate` challenge.
    func bearerError(
        _ code: String?, _ description: String, status: HTTPResponse.Status = .unauthorized, scheme: ChallengeScheme = .bearer
    ) -> Response {
        let description = OAuthErrorDescription.sanitized(description)
        var response = json(code.map { ["error": $0, "error_description": description] } ?? [:], status: status)
        var challenge = "\(scheme.rawValue) realm=\"authledger\""
        if scheme == .dpop { challenge += ", algs=\"\(DPoPVerifier.algorithms.joined(separator: " "))\"" }
        // Sanitized, it holds no quote or backslash, so it fits a quoted-string (RFC 9110 §5.6.4) as it is.
        if let code { challenge += ", error=\"\(code)\", error_description=\"\(description)\"" }
        response.headers[.wwwAuthenticate] = challenge
        return response
    }
}
