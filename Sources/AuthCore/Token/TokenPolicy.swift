import LedgerCore

/// RFC 6749 §5.2 token endpoint errors.
public struct TokenError: Error, Sendable, Equatable, Codable {
    public enum Code: String, Sendable, Codable {
        case invalidRequest = "invalid_request"
        case invalidClient = "invalid_client"
        case invalidGrant = "invalid_grant"
        case unauthorizedClient = "unauthorized_client"
        case unsupportedGrantType = "unsupported_grant_type"
        case invalidScope = "invalid_scope"
        case serverError = "server_error"
        case temporarilyUnavailable = "temporarily_unavailable"
        case invalidDPoPProof = "invalid_dpop_proof"
        /// RFC 8707 §2: the requested resource (audience) is unknown.
        case invalidTarget = "invalid_target"
        /// The client is not granted the API (as Auth0 answers a client credentials request without a client grant).
        case accessDenied = "access_denied"
    }

    public var code: Code
    public var description: String

    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }

    /// 401 for client authentication failures, 503 when the journal is unavailable, else 400.
    public var httpStatus: Int {
        switch code {
        case .invalidClient: 401
        case .accessDenied: 403
        case .temporarilyUnavailable: 503
        case .serverError: 500
        default: 400
        }
    }
}

/// How a client authenticated at the token endpoint (RFC 6749 §2.3).
public struct ClientCredentials: Sendable, Equatable {
    public enum Method: String, Sendable {
        case clientSecretBasic = "client_secret_basic"
        case clientSecretPost = "client_secret_post"
        case none
        case privateKeyJWT = "private_key_jwt"
    }

    public var clientID: String
    /// The client secret (`client_secret_basic`, `client_secret_post`) or the signed assertion (`private_key_jwt`).
    public var secret: String?
    public var method: Method

    public init(clientID: String, secret: String?, method: Method) {
        self.clientID = clientID
        self.secret = secret
        self.method = method
    }
}

/// The token endpoint's decisions, pure: given the request, the client, the code's record and the time,
/// the answer. The server runs secret verification (Argon2id) and minting around it.
public enum TokenPolicy {
    /// Checks that `credentials` are how `client` must authenticate (the secret itself is checked by the caller).
    public static func checkAuthenticationMethod(_ credentials: ClientCredentials, client: RegisteredClient?) -> TokenError? {
        guard let client else { return TokenError(.invalidClient, "Unknown client.") }
        let expected = client.tokenEndpointAuthMethod.rawValue
        guard credentials.method.rawValue == expected else {
            return TokenError(.invalidClient, "The client must authenticate with \(expected).")
        }
        return nil
    }

    /// RFC 7636 §4.6, with RFC 9700 §2.1.1 downgrade protection: a verifier is required exactly when the
    /// authorization request carried a challenge.
    public static func checkPKCE(verifier: String?, challenge: String?, method: String?) -> TokenError? {
        switch (challenge, verifier) {
        case (nil, nil):
            return nil
        case (nil, _?):
            return TokenError(.invalidGrant, "code_verifier was sent but the authorization request had no code_challenge.")
        case (_?, nil):
            return TokenError(.invalidGrant, "code_verifier is required: the authorization request used PKCE.")
        case (let challenge?, let verifier?):
            guard PKCERule.isValidChallenge(verifier) else {
                return TokenError(.invalidGrant, "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~].")
            }
            let computed = method == "S256" ? Base64URL.encode(SHA256Digest.hash(Array(verifier.utf8)).bytes) : verifier
            guard constantTimeEquals(Array(computed.utf8), Array(challenge.utf8)) else {
                return TokenError(.invalidGrant, "code_verifier does not match the code_challenge.")
            }
            return nil
        }
    }

    /// Whether an authorization code may be redeemed: it exists, was issued to this client, names this
    /// redirect URI, PKCE holds, the DPoP key is the one it is bound to, it was not redeemed, and it has not
    /// expired. A code that was already redeemed is a replay only when the request shows everything a
    /// redemption of it must show: its own client, its redirect URI, its PKCE verifier and its DPoP key.
    ///
    /// The client binding and the proofs come first (RFC 6749 §4.1.3): a code presented by a client it was
    /// not issued to — or, for a public client, whose `client_id` anyone can send, without the verifier —
    /// is refused and changes nothing. Were the replay check first, anyone holding a leaked, used code
    /// could revoke the real client's tokens and refresh family.
    public static func checkRedemption(
        record: CodeRecord?, clientID: String, redirectURI: String?, codeVerifier: String?, dpopThumbprint: String? = nil,
        now: LedgerTimestamp
    ) -> CodeRedemption {
        guard let record else { return .rejected(TokenError(.invalidGrant, "Unknown authorization code.")) }
        let grant = record.grant
        guard grant.clientID == clientID else {
            return .rejected(TokenError(.invalidGrant, "The authorization code was issued to another client."))
        }
        let mustMatch = grant.redirectURIGiven ?? true
        guard redirectURI.map({ RedirectURI.sameBytes($0, grant.redirectURI) }) ?? !mustMatch else {
            return .rejected(TokenError(.invalidGrant, "redirect_uri does not match the authorization request."))
        }
        if let error = checkPKCE(verifier: codeVerifier, challenge: grant.codeChallenge, method: grant.codeChallengeMethod) {
            return .rejected(error)
        }
        // A code bound with dpop_jkt is redeemed only with a proof by that key (RFC 9449 §10).
        if let bound = grant.dpopJKT, dpopThumbprint != bound {
            let reason = dpopThumbprint == nil ? "The code is bound to a DPoP key: send a DPoP proof." : "The DPoP proof's key is not the one the code is bound to."
            return .rejected(TokenError(.invalidGrant, reason))
        }
        switch record.status {
        case .redeemed, .revoked:
            return .replayed(TokenError(.invalidGrant, "The authorization code has already been used; tokens issued from it are revoked."))
        case .issued:
            break
        }
        guard grant.expiresAt > now else { return .rejected(TokenError(.invalidGrant, "The authorization code has expired.")) }
        return .valid(grant)
    }
}

/// The answer to a code redemption.
public enum CodeRedemption: Sendable, Equatable {
    case valid(CodeGrant)
    case rejected(TokenError)
    /// The code was used before: reject, and revoke what it issued (RFC 6749 §4.1.2, RFC 9700 §4.5).
    case replayed(TokenError)
}

extension TokenPolicy {
    /// How long a refresh token family lives from its first token (an absolute lifetime, as Auth0's).
    public static let refreshLifetimeSeconds = 30 * 86_400

    /// Whether a refresh token may be used: known, issued to this client, its family not revoked, not
    /// expired, and not already rotated — a rotated token presented again is a reuse, and the whole
    /// family must be revoked (RFC 9700 §4.14.2).
    public static func checkRefresh(
        record: RefreshRecord?, family: RefreshFamilyRecord?, clientID: String, requestedScope: String?, now: LedgerTimestamp
    ) -> RefreshRedemption {
        guard let record, let family else { return .rejected(TokenError(.invalidGrant, "Unknown refresh token.")) }
        guard record.issued.clientID == clientID else {
            return .rejected(TokenError(.invalidGrant, "The refresh token was issued to another client."))
        }
        guard !family.revoked else { return .rejected(TokenError(.invalidGrant, "The refresh token has been revoked.")) }
        guard record.status == .active else {
            return .reused(TokenError(.invalidGrant, "The refresh token was already used; its family is revoked."))
        }
        guard record.issued.expiresAt > now else { return .rejected(TokenError(.invalidGrant, "The refresh token has expired.")) }
        var scopes = record.issued.scopes
        if let requestedScope {
            let requested = requestedScope.split(separator: " ").map(String.init)
            guard Set(requested).isSubset(of: Set(scopes)) else {
                return .rejected(TokenError(.invalidScope, "A refresh can only narrow the granted scopes."))
            }
            scopes = scopes.filter { requested.contains($0) }
        }
        return .valid(record.issued, scopes: scopes)
    }
}

/// The answer to a refresh token request.
public enum RefreshRedemption: Sendable, Equatable {
    case valid(RefreshIssued, scopes: [String])
    case rejected(TokenError)
    /// A rotated refresh token was presented again: revoke its family.
    case reused(TokenError)
}
