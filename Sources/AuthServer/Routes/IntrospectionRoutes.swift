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
        var answer = Introspection.unknown(clientID: client.clientID, now: now)
        do {
            if let claims = try? await verifyAccessToken(token), claims.iss == issuer {
                answer = try await ledger.query { try Introspection.accessToken(claims, asker: client.clientID, in: $0, now: now) }
            } else {
                let hash = OpaqueToken.hash(token)
                answer = try await ledger.query { try Introspection.refreshToken(hash, asker: client.clientID, in: $0, now: now) }
            }
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot read its journal right now."))
        }
        let event = answer.event
        do {
            try await record { try $0.append(.tokenIntrospected(event)) }
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot record requests right now."))
        }
        metrics.introspected(active: event.active)
        return json(value: JSONValue.object(answer.body))
    }
}

/// The answer to one introspection: the recorded question and answer (``IntrospectionPolicy``), and the
/// RFC 7662 §2.2 members sent.
struct Introspection {
    var event: TokenIntrospected
    var body: [String: JSONValue]

    static func unknown(clientID: String, now: LedgerTimestamp) -> Introspection {
        Introspection(
            event: TokenIntrospected(clientID: clientID, kind: .unknown, token: nil, active: false, reason: "unknown", decidedAt: now),
            body: ["active": .bool(false)])
    }

    /// An access token whose signature verified.
    static func accessToken(_ claims: AccessTokenClaims, asker: String, in store: SnapshotStore, now: LedgerTimestamp) throws -> Introspection {
        let answer = try IntrospectionPolicy.accessToken(
            id: claims.jti, subject: claims.sub, clientID: claims.clientID, expiresAt: claims.exp, in: store, now: now)
        let event = TokenIntrospected(
            clientID: asker, kind: .accessToken, token: claims.jti, active: answer.active, reason: answer.reason, subject: claims.sub,
            tokenClientID: claims.clientID, expiresAt: claims.exp, decidedAt: now)
        guard answer.active else { return Introspection(event: event, body: ["active": .bool(false)]) }
        var body: [String: JSONValue] = [
            "active": .bool(true), "scope": .string(claims.scope), "client_id": .string(claims.clientID), "sub": .string(claims.sub),
            "aud": .string(claims.aud), "iss": .string(claims.iss), "exp": .integer(claims.exp), "iat": .integer(claims.iat),
            "jti": .string(claims.jti), "token_type": .string(claims.cnf == nil ? "Bearer" : "DPoP"),
        ]
        if let jkt = claims.cnf?.jkt { body["cnf"] = .object(["jkt": .string(jkt)]) }
        if let organization = claims.orgID { body["org_id"] = .string(organization) }
        return Introspection(event: event, body: body)
    }

    /// An opaque token: a refresh token, by its hash.
    static func refreshToken(_ hash: String, asker: String, in store: SnapshotStore, now: LedgerTimestamp) throws -> Introspection {
        let (answer, issued) = try IntrospectionPolicy.refreshToken(hash: hash, in: store, now: now)
        let known = answer.reason != "unknown"
        let event = TokenIntrospected(
            clientID: asker, kind: known ? .refreshToken : .unknown, token: known ? hash : nil, active: answer.active, reason: answer.reason,
            decidedAt: now)
        guard let issued, answer.active else { return Introspection(event: event, body: ["active": .bool(false)]) }
        var body: [String: JSONValue] = [
            "active": .bool(true), "scope": .string(issued.scopes.joined(separator: " ")), "client_id": .string(issued.clientID),
            "sub": .string(issued.userID), "exp": .integer(issued.expiresAt.secondsSinceEpoch), "token_type": .string("refresh_token"),
        ]
        if let audience = issued.audience { body["aud"] = .string(audience) }
        return Introspection(event: event, body: body)
    }
}
