import AuthCore
import Foundation
import JWTKit
import LedgerCore

/// Claims of a client assertion (RFC 7523 §3, OIDC Core §9 `private_key_jwt`).
public struct ClientAssertionClaims: JWTPayload, Equatable {
    public var iss: String
    public var sub: String
    /// The audience: one value or several (jwt-kit's claim takes both forms).
    public var aud: AudienceClaim
    public var exp: Int64
    public var iat: Int64?
    public var nbf: Int64?
    public var jti: String

    public init(iss: String, sub: String, aud: [String], exp: Int64, iat: Int64?, nbf: Int64? = nil, jti: String) {
        self.iss = iss
        self.sub = sub
        self.aud = AudienceClaim(value: aud)
        self.exp = exp
        self.iat = iat
        self.nbf = nbf
        self.jti = jti
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// A verified client assertion: whose, its `jti` (to be used once) and when it expires.
public struct ClientAssertion: Sendable, Equatable {
    public var clientID: String
    public var jti: String
    public var expiresAt: LedgerTimestamp
}

/// Why a client assertion was refused (`invalid_client`).
public struct ClientAssertionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Verifies `private_key_jwt` client assertions: the signature by a key of the client's registered JWK Set
/// (with jwt-kit), the algorithm (asymmetric only), `iss` = `sub` = the client, `aud` the issuer or the
/// endpoint's URL, `exp` in the future and not far off, `nbf`/`iat` not in the future. Whether the `jti` was
/// used before is for the journal to answer.
public enum ClientAssertionVerifier {
    /// RFC 7523 §2.2's `client_assertion_type`.
    public static let assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    /// The signing algorithms accepted (advertised as `token_endpoint_auth_signing_alg_values_supported`).
    public static let algorithms: [String] = ["RS256", "PS256", "ES256", "ES384", "EdDSA"]
    /// The longest an assertion may live from now: a short-lived credential, so that the journal need keep
    /// its `jti` only briefly (RFC 7523 §3 rule 7). An hour, as FAPI 2.0 allows and Authlib's default uses.
    public static let maximumLifetimeSeconds: Int64 = 3600
    /// Clock skew tolerated on `nbf` and `iat`.
    static let skewSeconds: Int64 = 60

    /// The client an assertion claims to come from (`sub`, unverified), to find its keys.
    public static func claimedClient(_ assertion: String) -> String? {
        let parts = assertion.split(separator: ".", omittingEmptySubsequences: false)
        guard assertion.utf8.count <= 16 * 1024, parts.count == 3, let bytes = Base64URL.decode(String(parts[1])),
            let claims = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        else { return nil }
        return claims["sub"] as? String
    }

    /// Verifies `assertion` as one of `clientID`, signed by a key of `jwks` (a JWK Set object) and addressed
    /// to one of `audiences`.
    public static func verify(
        _ assertion: String, clientID: String, jwks: JSONValue?, audiences: Set<String>, now: LedgerTimestamp
    ) async throws(ClientAssertionError) -> ClientAssertion {
        let parts = assertion.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(String(parts[0])),
            let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any]
        else { throw ClientAssertionError("The client assertion is not a JWS.") }
        // An algorithm chosen by the sender is checked before any key is used: never `none`, never HMAC.
        guard let alg = header["alg"] as? String, algorithms.contains(alg) else {
            throw ClientAssertionError("The client assertion must be signed with one of \(algorithms.joined(separator: ", ")).")
        }
        let keys = JWTKeyCollection()
        do {
            guard let jwks else { throw ClientAssertionError("The client has no registered keys.") }
            try await keys.add(jwks: JSONDecoder().decode(JWKS.self, from: Data(PayloadCoding.encode(jwks))))
        } catch let error as ClientAssertionError {
            throw error
        } catch {
            throw ClientAssertionError("The client's registered keys cannot be read.")
        }
        let claims: ClientAssertionClaims
        do {
            claims = try await keys.verify(assertion, as: ClientAssertionClaims.self)
        } catch {
            throw ClientAssertionError("The client assertion's signature does not verify with the client's keys.")
        }
        guard claims.iss == clientID, claims.sub == clientID else {
            throw ClientAssertionError("The client assertion's iss and sub must both be the client_id.")
        }
        guard claims.aud.value.contains(where: audiences.contains) else {
            throw ClientAssertionError("The client assertion's aud must be this server's issuer identifier.")
        }
        let current = now.secondsSinceEpoch
        guard claims.exp > current else { throw ClientAssertionError("The client assertion has expired.") }
        guard claims.exp - current <= maximumLifetimeSeconds else {
            throw ClientAssertionError("The client assertion lives too long (exp at most \(maximumLifetimeSeconds) seconds ahead).")
        }
        if let nbf = claims.nbf, nbf > current + skewSeconds { throw ClientAssertionError("The client assertion is not valid yet (nbf).") }
        if let iat = claims.iat, iat > current + skewSeconds { throw ClientAssertionError("The client assertion was issued in the future (iat).") }
        guard !claims.jti.isEmpty, claims.jti.utf8.count <= 256 else { throw ClientAssertionError("The client assertion needs a jti.") }
        return ClientAssertion(clientID: clientID, jti: claims.jti, expiresAt: LedgerTimestamp(microsecondsSinceEpoch: claims.exp * 1_000_000))
    }
}
