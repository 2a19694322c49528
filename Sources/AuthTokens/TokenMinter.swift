import AuthCore
import Crypto
import Foundation
import JWTKit
import LedgerCore

/// Claims of an access token in the RFC 9068 JWT profile (`typ: at+jwt`).
public struct AccessTokenClaims: JWTPayload, Equatable {
    public var iss: String
    public var sub: String
    public var aud: String
    public var exp: Int64
    public var iat: Int64
    public var jti: String
    public var clientID: String
    public var scope: String
    public var orgID: String?
    /// RFC 9449 confirmation: the DPoP key thumbprint the token is bound to.
    public var cnf: Confirmation?

    public struct Confirmation: Codable, Sendable, Equatable {
        public var jkt: String
    }

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, iat, jti, scope, cnf
        case clientID = "client_id"
        case orgID = "org_id"
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Claims of an OpenID Connect ID token (OIDC Core §2).
public struct IDTokenClaims: JWTPayload, Equatable {
    public var iss: String
    public var sub: String
    public var aud: String
    public var exp: Int64
    public var iat: Int64
    public var authTime: Int64
    public var nonce: String?
    public var atHash: String?
    public var azp: String
    public var orgID: String?
    public var email: String?

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, iat, nonce, azp, email
        case authTime = "auth_time"
        case atHash = "at_hash"
        case orgID = "org_id"
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// What tokens are minted for: the authorization a code or an implicit decision carries.
public struct TokenRequestGrant: Sendable, Equatable {
    public var clientID: String
    public var userID: String
    public var email: String?
    public var scopes: [String]
    public var audience: String?
    public var organizationID: String?
    public var nonce: String?
    public var authTime: LedgerTimestamp
    public var dpopJKT: String?

    public init(
        clientID: String, userID: String, email: String?, scopes: [String], audience: String?, organizationID: String?, nonce: String?,
        authTime: LedgerTimestamp, dpopJKT: String? = nil
    ) {
        self.clientID = clientID
        self.userID = userID
        self.email = email
        self.scopes = scopes
        self.audience = audience
        self.organizationID = organizationID
        self.nonce = nonce
        self.authTime = authTime
        self.dpopJKT = dpopJKT
    }
}

/// Tokens minted for one grant; the journal records only their ids (`jti`), never the tokens.
public struct MintedTokens: Sendable {
    public var accessToken: String
    public var accessTokenID: String
    public var idToken: String?
    public var idTokenID: String?
    public var expiresIn: Int
    public var expiresAt: LedgerTimestamp
    public var tokenType: String
}

/// Mints access and ID tokens. Given its inputs (keys, issuer, time, ids) it is deterministic up to the
/// signature randomness of RSA-PKCS#1 v1.5 (none) — RS256 and EdDSA signatures are deterministic.
public struct TokenMinter: Sendable {
    public let keys: TokenKeyRing
    public let issuer: String

    public init(keys: TokenKeyRing, issuer: String) {
        self.keys = keys
        self.issuer = issuer
    }

    /// Mints an access token for `grant` (and an ID token when `openid` was granted and `includeIDToken`).
    public func mint(
        _ grant: TokenRequestGrant, api: APIDefinition?, now: LedgerTimestamp, includeAccessToken: Bool = true,
        includeIDToken: Bool
    ) async throws -> MintedTokens {
        let ttl = api?.tokenTTLSeconds ?? 86_400
        let iat = now.secondsSinceEpoch
        let accessAlgorithm = TokenAlgorithm(rawValue: api?.signingAlgorithm ?? "RS256") ?? .rs256
        let accessID = OpaqueToken.generate()
        let access = AccessTokenClaims(
            iss: issuer, sub: grant.userID, aud: grant.audience ?? issuer + "userinfo", exp: iat + Int64(ttl), iat: iat, jti: accessID,
            clientID: grant.clientID, scope: grant.scopes.joined(separator: " "), orgID: grant.organizationID,
            cnf: grant.dpopJKT.map { AccessTokenClaims.Confirmation(jkt: $0) })
        let accessToken = includeAccessToken ? try await keys.sign(access, algorithm: accessAlgorithm, type: "at+jwt") : ""
        var idToken: String?
        var idTokenID: String?
        if includeIDToken && grant.scopes.contains("openid") {
            let claims = IDTokenClaims(
                iss: issuer, sub: grant.userID, aud: grant.clientID, exp: iat + 36_000, iat: iat, authTime: grant.authTime.secondsSinceEpoch,
                nonce: grant.nonce, atHash: includeAccessToken ? Self.atHash(accessToken, algorithm: .rs256) : nil, azp: grant.clientID,
                orgID: grant.organizationID, email: grant.scopes.contains("email") ? grant.email : nil)
            idToken = try await keys.sign(claims, algorithm: .rs256, type: "JWT")
            idTokenID = Base64URL.encode(SHA256Digest.hash(Array(idToken!.utf8)).bytes)
        }
        return MintedTokens(
            accessToken: accessToken, accessTokenID: accessID, idToken: idToken, idTokenID: idTokenID, expiresIn: ttl,
            expiresAt: now.adding(seconds: ttl), tokenType: grant.dpopJKT == nil ? "Bearer" : "DPoP")
    }

    /// OIDC Core §3.1.3.6: the left half of the hash of the access token (SHA-256 for RS256, SHA-512 for EdDSA).
    public static func atHash(_ accessToken: String, algorithm: TokenAlgorithm) -> String {
        let bytes: [UInt8]
        switch algorithm {
        case .rs256: bytes = Array(SHA256.hash(data: Data(accessToken.utf8)))
        case .edDSA: bytes = Array(SHA512.hash(data: Data(accessToken.utf8)))
        }
        return Base64URL.encode(Array(bytes.prefix(bytes.count / 2)))
    }
}
