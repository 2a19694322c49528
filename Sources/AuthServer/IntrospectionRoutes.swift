import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import Hummingbird
import LedgerCore

extension AuthorizationServer {
    /// `POST /oauth/introspect` (RFC 7662): a resource server — any confidential client, authenticated as it
    /// is registered — asks whether a token is active. The journal's record is the truth: a revoked token, one
    /// issued from a replayed code, a rotated or revoked refresh token is inactive whatever its signature
    /// says. Every question and its answer is recorded (`auth.token.introspected`).
    func introspect(_ request: Request, _ context: AuthRequestContext) async -> Response {
        let form: [String: String]
        switch await formFields(request, context) {
        case .success(let fields): form = fields
        case .failure(let refusal): return tokenError(TokenError(.invalidRequest, refusal.description))
        }
        let client: RegisteredClient
        switch await authenticateClient(request, form, endpoint: "oauth/introspect") {
        case .failure(let error): return tokenError(error, basicChallenge: error.code == .invalidClient && request.headers[.authorization] != nil)
        case .success(let authenticated): client = authenticated
        }
        // RFC 7662 §2.1: the caller must be authorized; a public client proves nothing about itself.
        guard client.tokenEndpointAuthMethod != .none else {
            return tokenError(TokenError(.invalidClient, "Introspection is for authenticated (confidential) clients."))
        }
        guard let token = form["token"], !token.isEmpty else {
            return tokenError(TokenError(.invalidRequest, "Missing token."))
        }
        guard token.utf8.count <= 16 * 1024 else {
            return tokenError(TokenError(.invalidRequest, "The token is longer than any this server issues (16 KiB)."))
        }
        let now = settings.clock()
        var answer = Introspection.inactive(.unknown, token: nil, reason: "unknown")
        do {
            if let claims = try? await verifyAccessToken(token), claims.iss == issuer {
                answer = try await ledger.query { try Introspection.accessToken(claims, in: $0, now: now) }
            } else {
                let hash = OpaqueToken.hash(token)
                answer = try await ledger.query { try Introspection.refreshToken(hash, in: $0, now: now) }
            }
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot read its journal right now."))
        }
        let event = TokenIntrospected(clientID: client.clientID, kind: answer.kind, token: answer.token, active: answer.active, reason: answer.reason)
        do {
            try await record { try $0.append(.tokenIntrospected(event)) }
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot record requests right now."))
        }
        metrics.introspected(active: answer.active)
        return json(value: JSONValue.object(answer.body))
    }
}

/// The answer to one introspection: what the journal says of the token, as RFC 7662 §2.2 members.
struct Introspection {
    var kind: TokenIntrospected.Kind
    /// The access token's `jti` or the refresh token's hash.
    var token: String?
    var active: Bool
    var reason: String?
    var body: [String: JSONValue]

    static func inactive(_ kind: TokenIntrospected.Kind, token: String?, reason: String) -> Introspection {
        Introspection(kind: kind, token: token, active: false, reason: reason, body: ["active": .bool(false)])
    }

    /// An access token whose signature verified: active while its record is, and not past its expiry.
    static func accessToken(_ claims: AccessTokenClaims, in store: SnapshotStore, now: LedgerTimestamp) throws -> Introspection {
        guard let record = try store.token(claims.jti), record.userID == claims.sub, record.clientID == claims.clientID else {
            return inactive(.accessToken, token: claims.jti, reason: "unknown")
        }
        if record.status == .revoked { return inactive(.accessToken, token: claims.jti, reason: "revoked") }
        if let family = record.refreshFamily, try store.isFamilyRevoked(family) {
            return inactive(.accessToken, token: claims.jti, reason: "family_revoked")
        }
        guard now < record.expiresAt, claims.exp <= record.expiresAt.secondsSinceEpoch, claims.exp > now.secondsSinceEpoch else {
            return inactive(.accessToken, token: claims.jti, reason: "expired")
        }
        var body: [String: JSONValue] = [
            "active": .bool(true), "scope": .string(claims.scope), "client_id": .string(claims.clientID), "sub": .string(claims.sub),
            "aud": .string(claims.aud), "iss": .string(claims.iss), "exp": .integer(claims.exp), "iat": .integer(claims.iat),
            "jti": .string(claims.jti), "token_type": .string(claims.cnf == nil ? "Bearer" : "DPoP"),
        ]
        if let jkt = claims.cnf?.jkt { body["cnf"] = .object(["jkt": .string(jkt)]) }
        if let organization = claims.orgID { body["org_id"] = .string(organization) }
        return Introspection(kind: .accessToken, token: claims.jti, active: true, reason: nil, body: body)
    }

    /// An opaque token: a refresh token by its hash, active while it is the current one of an unrevoked family.
    static func refreshToken(_ hash: String, in store: SnapshotStore, now: LedgerTimestamp) throws -> Introspection {
        guard let (record, family) = try store.refresh(hash) else { return inactive(.unknown, token: nil, reason: "unknown") }
        if family.revoked { return inactive(.refreshToken, token: hash, reason: "family_revoked") }
        if record.status == .rotated { return inactive(.refreshToken, token: hash, reason: "rotated") }
        guard now < record.issued.expiresAt else { return inactive(.refreshToken, token: hash, reason: "expired") }
        let issued = record.issued
        var body: [String: JSONValue] = [
            "active": .bool(true), "scope": .string(issued.scopes.joined(separator: " ")), "client_id": .string(issued.clientID),
            "sub": .string(issued.userID), "exp": .integer(issued.expiresAt.secondsSinceEpoch), "token_type": .string("refresh_token"),
        ]
        if let audience = issued.audience { body["aud"] = .string(audience) }
        return Introspection(kind: .refreshToken, token: hash, active: true, reason: nil, body: body)
    }
}
