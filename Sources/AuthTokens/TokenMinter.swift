import AuthCore
import Crypto
import Foundation
import Tracing
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

/// Claims of an OpenID Connect ID token (OIDC Core §2), and the user's claims it carries (§5.4, §5.5).
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
    /// The user's claims (`email`, `name`, `address`, …) by name.
    public var userClaims: [String: JSONValue]

    public init(
        iss: String, sub: String, aud: String, exp: Int64, iat: Int64, authTime: Int64, nonce: String?, atHash: String?, azp: String,
        orgID: String?, userClaims: [String: JSONValue] = [:]
    ) {
        self.iss = iss
        self.sub = sub
        self.aud = aud
        self.exp = exp
        self.iat = iat
        self.authTime = authTime
        self.nonce = nonce
        self.atHash = atHash
        self.azp = azp
        self.orgID = orgID
        self.userClaims = userClaims
    }

    /// The email address, when the token carries it.
    public var email: String? { userClaims["email"]?.string }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case iss, sub, aud, exp, iat, nonce, azp
        case authTime = "auth_time"
        case atHash = "at_hash"
        case orgID = "org_id"
    }

    /// Any member name: the user's claims are not known in advance.
    struct ClaimName: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        iss = try container.decode(String.self, forKey: .iss)
        sub = try container.decode(String.self, forKey: .sub)
        aud = try container.decode(String.self, forKey: .aud)
        exp = try container.decode(Int64.self, forKey: .exp)
        iat = try container.decode(Int64.self, forKey: .iat)
        authTime = try container.decode(Int64.self, forKey: .authTime)
        nonce = try container.decodeIfPresent(String.self, forKey: .nonce)
        atHash = try container.decodeIfPresent(String.self, forKey: .atHash)
        azp = try container.decode(String.self, forKey: .azp)
        orgID = try container.decodeIfPresent(String.self, forKey: .orgID)
        let all = try decoder.container(keyedBy: ClaimName.self)
        let standard = Set(CodingKeys.allCases.map(\.stringValue))
        var userClaims: [String: JSONValue] = [:]
        for key in all.allKeys where !standard.contains(key.stringValue) {
            userClaims[key.stringValue] = try all.decode(JSONValue.self, forKey: key)
        }
        self.userClaims = userClaims
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(iss, forKey: .iss)
        try container.encode(sub, forKey: .sub)
        try container.encode(aud, forKey: .aud)
        try container.encode(exp, forKey: .exp)
        try container.encode(iat, forKey: .iat)
        try container.encode(authTime, forKey: .authTime)
        try container.encodeIfPresent(nonce, forKey: .nonce)
        try container.encodeIfPresent(atHash, forKey: .atHash)
        try container.encode(azp, forKey: .azp)
        try container.encodeIfPresent(orgID, forKey: .orgID)
        var all = encoder.container(keyedBy: ClaimName.self)
        let standard = Set(CodingKeys.allCases.map(\.stringValue))
        for (name, value) in userClaims where !standard.contains(name) {
            try all.encode(value, forKey: ClaimName(stringValue: name))
        }
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// What tokens are minted for: the authorization a code or an implicit decision carries.
public struct TokenRequestGrant: Sendable, Equatable {
    public var clientID: String
    public var userID: String
    /// The user's record (for the claims of the ID token); `nil` for a client's own token.
    public var user: RegisteredUser?
    public var scopes: [String]
    public var audience: String?
    public var organizationID: String?
    public var nonce: String?
    public var authTime: LedgerTimestamp
    public var dpopJKT: String?
    /// Claims asked for one by one (the `claims` parameter).
    public var requestedClaims: RequestedClaims?

    public init(
        clientID: String, userID: String, user: RegisteredUser?, scopes: [String], audience: String?, organizationID: String?, nonce: String?,
        authTime: LedgerTimestamp, dpopJKT: String? = nil, requestedClaims: RequestedClaims? = nil
    ) {
        self.clientID = clientID
        self.userID = userID
        self.user = user
        self.scopes = scopes
        self.audience = audience
        self.organizationID = organizationID
        self.nonce = nonce
        self.authTime = authTime
        self.dpopJKT = dpopJKT
        self.requestedClaims = requestedClaims
    }

    /// The user's claims for the ID token: those the scopes release (as Auth0 does, in the ID token too,
    /// so that a client needs no UserInfo call) and those asked for by name for the ID token.
    public var idTokenUserClaims: [String: JSONValue] {
        guard let user else { return [:] }
        return StandardClaims.values(of: user, names: StandardClaims.names(scopes: scopes, requested: requestedClaims?.idToken ?? []))
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

    /// Mints an access token for `grant` (and an ID token when `openid` was granted and `includeIDToken`);
    /// a span (`tokens.sign`) in a traced request.
    public func mint(
        _ grant: TokenRequestGrant, api: APIDefinition?, now: LedgerTimestamp, includeAccessToken: Bool = true,
        includeIDToken: Bool
    ) async throws -> MintedTokens {
        try await withSpan("tokens.sign") { span in
            span.attributes["authledger.token.client_id"] = grant.clientID
            return try await mintUntraced(grant, api: api, now: now, includeAccessToken: includeAccessToken, includeIDToken: includeIDToken)
        }
    }

    private func mintUntraced(
        _ grant: TokenRequestGrant, api: APIDefinition?, now: LedgerTimestamp, includeAccessToken: Bool, includeIDToken: Bool
    ) async throws -> MintedTokens {
        let ttl = api?.tokenTTLSeconds ?? 86_400
        let iat = now.secondsSinceEpoch
        let accessAlgorithm = TokenAlgorithm(rawValue: api?.signingAlgorithm ?? "RS256") ?? .rs256
        let accessID = TokenIdentifier.generate()
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
                orgID: grant.organizationID, userClaims: grant.idTokenUserClaims)
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
