import LedgerCore

/// `auth.authorize.requested`: an `/authorize` request as received (or resumed after a page).
public struct AuthorizeRequested: Codable, Sendable, Equatable {
    public var parameters: AuthorizeParameters
    public var clientIP: String?
    public var userAgent: String?
    /// Hash of the interaction this request resumes, if it comes back from the login or consent page.
    public var interaction: String?
    /// The user of the SSO session the request came with: the data subject of its personal values.
    public var userID: String?
    /// A keyed pseudonym of the client address (set when the event is sealed), for the timeline's index.
    public var clientIPKey: String?

    public init(parameters: AuthorizeParameters, clientIP: String?, userAgent: String?, interaction: String?) {
        self.parameters = parameters
        self.clientIP = clientIP
        self.userAgent = userAgent
        self.interaction = interaction
    }

    enum CodingKeys: String, CodingKey {
        case parameters, interaction
        case clientIP = "client_ip", userAgent = "user_agent", userID = "user_id", clientIPKey = "client_ip_key"
    }
}

/// A reference from one event to an earlier one: by its sequence number (as recorded before schema
/// versions with offsets), or by how many events before the referring one it is in the same commit.
extension KeyedDecodingContainer {
    func decodeReference(sequence: Key, offset: Key) throws -> (sequence: UInt64, offset: UInt64?) {
        if let offset = try decodeIfPresent(UInt64.self, forKey: offset) {
            return (try decodeIfPresent(UInt64.self, forKey: sequence) ?? 0, offset)
        }
        return (try decode(UInt64.self, forKey: sequence), nil)
    }
}

extension KeyedEncodingContainer {
    /// Records the offset when there is one, else the sequence number.
    mutating func encodeReference(_ sequence: UInt64, offset: UInt64?, sequenceKey: Key, offsetKey: Key) throws {
        if let offset {
            try encode(offset, forKey: offsetKey)
        } else {
            try encode(sequence, forKey: sequenceKey)
        }
    }
}

/// `auth.authorize.decided`: the decision, with every input the decision function needs besides the
/// configuration, which is named by its version (the sequence number of its last event).
public struct AuthorizeDecided: Codable, Sendable, Equatable {
    /// The `auth.authorize.requested` event decided on.
    public var requestSequence: UInt64
    /// How many events before this one the request is, in the same commit (schema version 3 on): what the
    /// payload records instead of ``requestSequence``, because it is known before the journal's writer
    /// numbers the events, so that the caller can encode and sign them. Reading the event at its sequence
    /// number resolves ``requestSequence`` (``AuthEvent/resolved(at:)``).
    public var requestOffset: UInt64?
    public var configurationVersion: UInt64
    public var input: AuthorizationInput
    public var decision: AuthorizationDecision
    /// Hash of the interaction that continues on a page (login, consent, organization), if any.
    public var interaction: String?
    /// Whether the input's parameters are the request's (schema version 4): then the payload leaves them
    /// out, and they are read from the request it refers to (``AuthEvent/completed(from:)``), so that a
    /// request's parameters are written once. Only a decision that refers to its request by offset (in
    /// the same commit) leaves them out.
    public var parametersOfRequest = false
    /// Whether the decision's outcome issues, and its grant and delivery leave out the client, user,
    /// redirect URI, authentication time and state that its input holds (schema version 5,
    /// ``AuthorizationDecision/holdsValues(of:)``): a reader takes them from the input, once it has its
    /// parameters (``AuthEvent/completed(from:)`` when they are its request's). Set when a decision is
    /// made from its parts, by whether its outcome holds those values; change the decision or the input
    /// afterwards, and set it again.
    public var outcomeOfInput = false

    public init(
        requestSequence: UInt64, configurationVersion: UInt64, input: AuthorizationInput, decision: AuthorizationDecision,
        interaction: String?
    ) {
        self.requestSequence = requestSequence
        self.configurationVersion = configurationVersion
        self.input = input
        self.decision = decision
        self.interaction = interaction
        self.outcomeOfInput = decision.holdsValues(of: input)
    }

    /// A decision on the request `requestOffset` events before it in the same commit; with
    /// `parametersOfRequest`, its input's parameters are that request's and are written once, in the request.
    public init(
        requestOffset: UInt64, configurationVersion: UInt64, input: AuthorizationInput, decision: AuthorizationDecision,
        interaction: String?, parametersOfRequest: Bool = false
    ) {
        self.init(requestSequence: 0, configurationVersion: configurationVersion, input: input, decision: decision, interaction: interaction)
        self.requestOffset = requestOffset
        self.parametersOfRequest = parametersOfRequest
    }

    enum CodingKeys: String, CodingKey {
        case requestSequence = "request_sequence", requestOffset = "request_offset", configurationVersion = "configuration_version"
        case input, decision, interaction
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        (requestSequence, requestOffset) = try container.decodeReference(sequence: .requestSequence, offset: .requestOffset)
        configurationVersion = try container.decode(UInt64.self, forKey: .configurationVersion)
        let inputMembers = try container.nestedContainer(keyedBy: AuthorizationInput.CodingKeys.self, forKey: .input)
        parametersOfRequest = !inputMembers.contains(.parameters)
        guard !parametersOfRequest || requestOffset != nil else {
            throw DecodingError.keyNotFound(
                AuthorizationInput.CodingKeys.parameters,
                .init(codingPath: inputMembers.codingPath, debugDescription: "only a decision on a request of its own commit (request_offset) leaves out its parameters"))
        }
        input = try container.decode(AuthorizationInput.self, forKey: .input)
        let decisionMembers = try container.nestedContainer(keyedBy: DecisionLeavingInputValues.Keys.self, forKey: .decision)
        if let leaving = try DecisionLeavingInputValues.decodeIfLeaving(decisionMembers) {
            outcomeOfInput = true
            guard input.session != nil else {
                throw DecodingError.dataCorruptedError(
                    forKey: .decision, in: container, debugDescription: "the outcome leaves its user to an input without a session")
            }
            if parametersOfRequest {
                decision = leaving  // completed with the request's parameters (AuthEvent.completed(from:))
            } else {
                guard let completed = leaving.completed(from: input) else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .decision, in: container, debugDescription: "the outcome leaves to the input values that the input does not hold")
                }
                decision = completed
            }
        } else {
            decision = try container.decode(AuthorizationDecision.self, forKey: .decision)
        }
        interaction = try container.decodeIfPresent(String.self, forKey: .interaction)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeReference(requestSequence, offset: requestOffset, sequenceKey: .requestSequence, offsetKey: .requestOffset)
        try container.encode(configurationVersion, forKey: .configurationVersion)
        if parametersOfRequest && requestOffset != nil {
            try container.encode(InputLeavingParameters(input: input), forKey: .input)
        } else {
            try container.encode(input, forKey: .input)
        }
        if outcomeOfInput {
            // Only what the input holds is left out: a decision that does not hold it (one read but not
            // completed) would lose it.
            guard decision.holdsValues(of: input) else {
                throw EncodingError.invalidValue(
                    decision, .init(codingPath: container.codingPath + [CodingKeys.decision], debugDescription: "the outcome does not hold the input's values it leaves to it"))
            }
            try container.encode(DecisionLeavingInputValues(decision: decision), forKey: .decision)
        } else {
            try container.encode(decision, forKey: .decision)
        }
        try container.encodeIfPresent(interaction, forKey: .interaction)
    }
}

/// A decision's input without its parameters, which its request holds.
private struct InputLeavingParameters: Encodable {
    let input: AuthorizationInput

    func encode(to encoder: any Encoder) throws {
        try input.encode(to: encoder, withParameters: false)
    }
}

/// An event leaves values to an earlier event of its commit (``AuthEvent/valuesFrom``), and the event found
/// there is not one that holds them.
public struct EventReferenceError: Error, CustomStringConvertible {
    /// The event whose values are missing.
    public var event: AuthEvent
    /// What was found where they should be; `nil` for nothing.
    public var found: AuthEvent?

    public var description: String {
        let wanted = event.valuesFrom.map { "#\($0)" } ?? "an earlier event"
        return "\(event.eventType.name) takes values from \(wanted), which is \(found.map { "\($0.eventType.name), not the event that holds them" } ?? "missing")"
    }
}

/// `auth.code.issued`: a code, by hash, and everything it is bound to.
public struct CodeIssued: Codable, Sendable, Equatable {
    public var codeHash: String
    public var grant: CodeGrant
    /// The `auth.authorize.decided` event that issued it.
    public var decisionSequence: UInt64
    /// How many events before this one the decision is, in the same commit (schema version 2 on; see
    /// ``AuthorizeDecided/requestOffset``).
    public var decisionOffset: UInt64?
    /// Whether the grant is the one the decision's outcome holds (schema version 3): then the payload
    /// leaves it out, and it is read from the decision it refers to (``AuthEvent/completed(from:)``), so
    /// that a grant is written once. Only a code that refers to its decision by offset leaves it out.
    public var grantOfDecision = false

    public init(codeHash: String, grant: CodeGrant, decisionSequence: UInt64) {
        self.codeHash = codeHash
        self.grant = grant
        self.decisionSequence = decisionSequence
    }

    /// A code issued by the decision `decisionOffset` events before it in the same commit; with
    /// `grantOfDecision`, its grant is the decision's and is written once, in the decision.
    public init(codeHash: String, grant: CodeGrant, decisionOffset: UInt64, grantOfDecision: Bool = false) {
        self.init(codeHash: codeHash, grant: grant, decisionSequence: 0)
        self.decisionOffset = decisionOffset
        self.grantOfDecision = grantOfDecision
    }

    enum CodingKeys: String, CodingKey {
        case codeHash = "code_hash", grant
        case decisionSequence = "decision_sequence", decisionOffset = "decision_offset"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        codeHash = try container.decode(String.self, forKey: .codeHash)
        (decisionSequence, decisionOffset) = try container.decodeReference(sequence: .decisionSequence, offset: .decisionOffset)
        if container.contains(.grant) {
            grant = try container.decode(CodeGrant.self, forKey: .grant)
        } else {
            guard decisionOffset != nil else {
                throw DecodingError.keyNotFound(
                    CodingKeys.grant, .init(codingPath: container.codingPath, debugDescription: "only a code of its decision's commit (decision_offset) leaves out its grant"))
            }
            // Read from the decision (AuthEvent.completed(from:)).
            grant = CodeGrant(
                clientID: "", redirectURI: "", userID: "", scopes: [], authTime: LedgerTimestamp(microsecondsSinceEpoch: 0),
                expiresAt: LedgerTimestamp(microsecondsSinceEpoch: 0))
            grantOfDecision = true
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(codeHash, forKey: .codeHash)
        if !(grantOfDecision && decisionOffset != nil) { try container.encode(grant, forKey: .grant) }
        try container.encodeReference(decisionSequence, offset: decisionOffset, sequenceKey: .decisionSequence, offsetKey: .decisionOffset)
    }
}

/// `auth.login.succeeded`: a user logged in; a new SSO session starts (its id only as a hash).
public struct LoginSucceeded: Codable, Sendable, Equatable {
    public var userID: String
    public var connection: String
    public var session: SessionSnapshot
    public var interaction: String?
    public var clientIP: String?
    /// A keyed pseudonym of the client address (set when the event is sealed), for the timeline's index.
    public var clientIPKey: String?

    public init(userID: String, connection: String, session: SessionSnapshot, interaction: String?, clientIP: String?) {
        self.userID = userID
        self.connection = connection
        self.session = session
        self.interaction = interaction
        self.clientIP = clientIP
    }

    enum CodingKeys: String, CodingKey {
        case userID = "user_id", connection, session, interaction
        case clientIP = "client_ip", clientIPKey = "client_ip_key"
    }
}

/// `auth.login.failed`: a failed login (brute force must be visible to an investigator).
public struct LoginFailed: Codable, Sendable, Equatable {
    public enum Reason: String, Codable, Sendable {
        case unknownUser = "unknown_user"
        case wrongPassword = "wrong_password"
        /// Refused without checking the password: too many recent failures for this username or address.
        case throttled
    }

    public var username: String
    public var connection: String
    public var reason: Reason
    public var interaction: String?
    public var clientIP: String?
    /// The user the username named, when it named one (so a brute force shows on that user's timeline).
    public var userID: String?
    /// When it happened (the decision time), for the throttle's window.
    public var at: LedgerTimestamp?
    /// A keyed pseudonym of the client address (set when the event is sealed), for the timeline's index.
    public var clientIPKey: String?
    /// A keyed pseudonym of the address's network (``LoginThrottle/network(of:)``), what the throttle
    /// counts once the address itself is sealed.
    public var clientNetwork: String?

    public init(
        username: String, connection: String, reason: Reason, interaction: String?, clientIP: String?, userID: String? = nil,
        at: LedgerTimestamp? = nil
    ) {
        self.userID = userID
        self.at = at
        self.username = username
        self.connection = connection
        self.reason = reason
        self.interaction = interaction
        self.clientIP = clientIP
    }

    enum CodingKeys: String, CodingKey {
        case username, connection, reason, interaction
        case clientIP = "client_ip"
        case userID = "user_id"
        case at
        case clientIPKey = "client_ip_key", clientNetwork = "client_network"
    }
}

/// `auth.consent.granted` / `auth.consent.denied`.
public struct ConsentAnswered: Codable, Sendable, Equatable {
    public var userID: String
    public var clientID: String
    public var audience: String?
    public var scopes: [String]
    public var interaction: String?

    public init(userID: String, clientID: String, audience: String?, scopes: [String], interaction: String?) {
        self.userID = userID
        self.clientID = clientID
        self.audience = audience
        self.scopes = scopes
        self.interaction = interaction
    }

    enum CodingKeys: String, CodingKey {
        case userID = "user_id", clientID = "client_id", audience, scopes, interaction
    }
}

/// `auth.organization.chosen`: the user picked an organization on the picker page.
public struct OrganizationChosen: Codable, Sendable, Equatable {
    public var interaction: String
    public var organizationID: String

    public init(interaction: String, organizationID: String) {
        self.interaction = interaction
        self.organizationID = organizationID
    }

    enum CodingKeys: String, CodingKey {
        case interaction
        case organizationID = "organization_id"
    }
}

/// `auth.invitation.accepted`: an invitation was spent and its user became a member.
public struct InvitationAccepted: Codable, Sendable, Equatable {
    public var ticket: String
    public var organizationID: String
    public var userID: String

    public init(ticket: String, organizationID: String, userID: String) {
        self.ticket = ticket
        self.organizationID = organizationID
        self.userID = userID
    }

    enum CodingKeys: String, CodingKey {
        case ticket
        case organizationID = "organization_id"
        case userID = "user_id"
    }
}

/// `auth.logout`: a browser ended its SSO session.
public struct LoggedOut: Codable, Sendable, Equatable {
    public var sessionHash: String
    public var userID: String
    public var clientIP: String?
    /// A keyed pseudonym of the client address (set when the event is sealed), for the timeline's index.
    public var clientIPKey: String?
    /// RP-Initiated Logout: the client that asked, the rule that let the session end, and where the browser
    /// was sent afterwards (absent for a logout from the server's own page).
    public var clientID: String?
    public var rule: String?
    public var postLogoutRedirectURI: String?
    /// The clients whose back-channel logout endpoints are told (OIDC Back-Channel Logout 1.0).
    public var notifiedClients: [String]?

    public init(
        sessionHash: String, userID: String, clientIP: String?, clientID: String? = nil, rule: String? = nil,
        postLogoutRedirectURI: String? = nil, notifiedClients: [String]? = nil
    ) {
        self.sessionHash = sessionHash
        self.userID = userID
        self.clientIP = clientIP
        self.clientID = clientID
        self.rule = rule
        self.postLogoutRedirectURI = postLogoutRedirectURI
        self.notifiedClients = notifiedClients
    }

    enum CodingKeys: String, CodingKey {
        case sessionHash = "session_hash", userID = "user_id", clientIP = "client_ip", clientIPKey = "client_ip_key"
        case clientID = "client_id", rule
        case postLogoutRedirectURI = "post_logout_redirect_uri"
        case notifiedClients = "notified_clients"
    }
}

/// `auth.token.issued`: tokens were issued (only their ids are recorded, never the tokens).
public struct TokenIssued: Codable, Sendable, Equatable {
    public var grantType: String
    public var clientID: String
    public var userID: String
    public var codeHash: String?
    /// The decision that issued the tokens (implicit flow, client credentials), if any.
    public var decisionSequence: UInt64?
    /// How many events before this one that decision is, in the same commit (schema version 3 on; see
    /// ``AuthorizeDecided/requestOffset``); `decision_sequence` is then not recorded.
    public var decisionOffset: UInt64?
    public var accessTokenID: String?
    public var idTokenID: String?
    public var scopes: [String]
    public var audience: String?
    public var organizationID: String?
    public var expiresAt: LedgerTimestamp
    public var clientIP: String?
    /// The refresh token family the grant belongs to, if `offline_access` was granted.
    public var refreshFamily: String?
    /// The DPoP key thumbprint the tokens are bound to (RFC 9449), and the proof's `jti`.
    public var dpopJKT: String?
    public var dpopProofID: String?
    /// A keyed pseudonym of the client address (set when the event is sealed), for the timeline's index.
    public var clientIPKey: String?
    /// Claims the UserInfo endpoint returns for the access token besides its scopes' (the `claims` parameter).
    public var userinfoClaims: [String]?

    public init(
        grantType: String, clientID: String, userID: String, codeHash: String?, decisionSequence: UInt64?, accessTokenID: String?,
        idTokenID: String?, scopes: [String], audience: String?, organizationID: String?, expiresAt: LedgerTimestamp, clientIP: String?,
        refreshFamily: String? = nil, dpopJKT: String? = nil, dpopProofID: String? = nil, userinfoClaims: [String]? = nil
    ) {
        self.userinfoClaims = userinfoClaims
        self.refreshFamily = refreshFamily
        self.dpopJKT = dpopJKT
        self.dpopProofID = dpopProofID
        self.grantType = grantType
        self.clientID = clientID
        self.userID = userID
        self.codeHash = codeHash
        self.decisionSequence = decisionSequence
        self.accessTokenID = accessTokenID
        self.idTokenID = idTokenID
        self.scopes = scopes
        self.audience = audience
        self.organizationID = organizationID
        self.expiresAt = expiresAt
        self.clientIP = clientIP
    }

    enum CodingKeys: String, CodingKey {
        case grantType = "grant_type", clientID = "client_id", userID = "user_id", codeHash = "code_hash"
        case decisionSequence = "decision_sequence", decisionOffset = "decision_offset"
        case accessTokenID = "access_token_id", idTokenID = "id_token_id"
        case scopes, audience, organizationID = "organization_id", expiresAt = "expires_at", clientIP = "client_ip"
        case refreshFamily = "refresh_family", dpopJKT = "dpop_jkt", dpopProofID = "dpop_proof_id"
        case clientIPKey = "client_ip_key"
        case userinfoClaims = "userinfo_claims"
    }
}

/// `auth.token.rejected`: a token request that was refused, and why.
public struct TokenRejected: Codable, Sendable, Equatable {
    public var grantType: String?
    public var clientID: String?
    public var error: TokenError
    public var codeHash: String?
    public var clientIP: String?
    /// A keyed pseudonym of the client address (set when the event is sealed), for the timeline's index.
    public var clientIPKey: String?

    public init(grantType: String?, clientID: String?, error: TokenError, codeHash: String?, clientIP: String?) {
        self.grantType = grantType
        self.clientID = clientID
        self.error = error
        self.codeHash = codeHash
        self.clientIP = clientIP
    }

    enum CodingKeys: String, CodingKey {
        case grantType = "grant_type", clientID = "client_id", error, codeHash = "code_hash", clientIP = "client_ip"
        case clientIPKey = "client_ip_key"
    }
}

/// `auth.code.replayed`: a redeemed code was presented again; the tokens it issued are revoked.
public struct CodeReplayed: Codable, Sendable, Equatable {
    public var codeHash: String
    public var clientID: String?
    public var revokedTokenIDs: [String]

    public init(codeHash: String, clientID: String?, revokedTokenIDs: [String]) {
        self.codeHash = codeHash
        self.clientID = clientID
        self.revokedTokenIDs = revokedTokenIDs
    }

    enum CodingKeys: String, CodingKey {
        case codeHash = "code_hash", clientID = "client_id", revokedTokenIDs = "revoked_token_ids"
    }
}

/// `auth.token.revoked`: a client revoked one of its tokens (RFC 7009).
public struct TokenRevoked: Codable, Sendable, Equatable {
    public var tokenID: String
    public var clientID: String
    public var clientIP: String?
    /// A keyed pseudonym of the client address (set when the event is sealed), for the timeline's index.
    public var clientIPKey: String?

    public init(tokenID: String, clientID: String, clientIP: String?) {
        self.tokenID = tokenID
        self.clientID = clientID
        self.clientIP = clientIP
    }

    enum CodingKeys: String, CodingKey {
        case tokenID = "token_id", clientID = "client_id", clientIP = "client_ip", clientIPKey = "client_ip_key"
    }
}

/// `auth.refresh.issued`: a refresh token (by hash) joined a family — the first one of a grant, or the
/// rotation of `parentHash`, which stops working.
public struct RefreshIssued: Codable, Sendable, Equatable {
    public var tokenHash: String
    public var family: String
    public var parentHash: String?
    public var clientID: String
    public var userID: String
    public var scopes: [String]
    public var audience: String?
    public var organizationID: String?
    public var authTime: LedgerTimestamp
    public var expiresAt: LedgerTimestamp
    /// The DPoP key the family is bound to (RFC 9449 §5): refreshing needs a proof by the same key.
    public var dpopJKT: String?
    /// Claims asked for one by one (the `claims` parameter), which the family's tokens keep carrying.
    public var claims: RequestedClaims?

    public init(
        tokenHash: String, family: String, parentHash: String?, clientID: String, userID: String, scopes: [String], audience: String?,
        organizationID: String?, authTime: LedgerTimestamp, expiresAt: LedgerTimestamp, dpopJKT: String? = nil, claims: RequestedClaims? = nil
    ) {
        self.claims = claims
        self.dpopJKT = dpopJKT
        self.tokenHash = tokenHash
        self.family = family
        self.parentHash = parentHash
        self.clientID = clientID
        self.userID = userID
        self.scopes = scopes
        self.audience = audience
        self.organizationID = organizationID
        self.authTime = authTime
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case tokenHash = "token_hash", family, parentHash = "parent_hash", clientID = "client_id", userID = "user_id", scopes, audience
        case organizationID = "organization_id", authTime = "auth_time", expiresAt = "expires_at", dpopJKT = "dpop_jkt"
        case claims
    }
}

/// `auth.refresh.family.revoked`: a refresh token family is revoked — its refresh tokens and the access
/// tokens issued from it — because a rotated token was reused, the code it came from was replayed, or the
/// client revoked it.
public struct RefreshFamilyRevoked: Codable, Sendable, Equatable {
    public enum Reason: String, Codable, Sendable {
        case reuse, codeReplay = "code_replay", revocation
    }

    public var family: String
    public var reason: Reason
    public var presentedHash: String?
    public var clientID: String?

    public init(family: String, reason: Reason, presentedHash: String?, clientID: String?) {
        self.family = family
        self.reason = reason
        self.presentedHash = presentedHash
        self.clientID = clientID
    }

    enum CodingKeys: String, CodingKey {
        case family, reason, presentedHash = "presented_hash", clientID = "client_id"
    }
}

/// `auth.token_keys.published`: public token signing keys of one server node (its JWKS: active keys and
/// retired ones whose tokens may still be valid), so that every node of a cluster lists them and accepts
/// the tokens they sign; and the keys that node no longer has, which every node stops listing.
public struct TokenKeysPublished: Codable, Sendable, Equatable {
    /// The node that published them (the id of the journal key it signs with), for the record.
    public var node: String
    /// Its public JWKs, as its JWKS serves them.
    public var keys: [[String: String]]
    /// The `kid`s of keys it dropped (retired longer ago than any token they signed can live).
    public var dropped: [String]?

    public init(node: String, keys: [[String: String]], dropped: [String]? = nil) {
        self.node = node
        self.keys = keys
        self.dropped = dropped
    }
}

/// `auth.token_keys.rotated`: new token signing keys took over; the retired ones stay in the JWKS until
/// their tokens expire.
public struct TokenKeysRotated: Codable, Sendable, Equatable {
    public var activeKeyIDs: [String]
    public var retiredKeyIDs: [String]

    public init(activeKeyIDs: [String], retiredKeyIDs: [String]) {
        self.activeKeyIDs = activeKeyIDs
        self.retiredKeyIDs = retiredKeyIDs
    }

    enum CodingKeys: String, CodingKey {
        case activeKeyIDs = "active_key_ids", retiredKeyIDs = "retired_key_ids"
    }
}

/// `auth.consent.revoked`: an administrator withdrew a user's consent for a client (one audience, or all).
public struct ConsentRevoked: Codable, Sendable, Equatable {
    public var userID: String
    public var clientID: String
    /// `nil`: every audience.
    public var audience: String?
    public var revokedKeys: [String]

    public init(userID: String, clientID: String, audience: String?, revokedKeys: [String]) {
        self.userID = userID
        self.clientID = clientID
        self.audience = audience
        self.revokedKeys = revokedKeys
    }

    enum CodingKeys: String, CodingKey {
        case userID = "user_id", clientID = "client_id", audience, revokedKeys = "revoked_keys"
    }
}

/// A pending interaction: an authorization request waiting for a page (login, consent, organization).
/// Kept by hash of its id; bound to the browser that started it (CSRF protection).
public struct InteractionRecord: Codable, Sendable, Equatable {
    public var parameters: AuthorizeParameters
    public var progress: InteractionProgress
    /// Hash of the browser-binding token (cookie and hidden form field).
    public var bindingHash: String
    public var expiresAt: LedgerTimestamp
    /// What the page must show: the last decision's outcome.
    public var pending: AuthorizationOutcome

    enum CodingKeys: String, CodingKey {
        case parameters, progress, pending
        case bindingHash = "binding_hash", expiresAt = "expires_at"
    }

    public init(
        parameters: AuthorizeParameters, progress: InteractionProgress, bindingHash: String, expiresAt: LedgerTimestamp,
        pending: AuthorizationOutcome
    ) {
        self.parameters = parameters
        self.progress = progress
        self.bindingHash = bindingHash
        self.expiresAt = expiresAt
        self.pending = pending
    }
}

/// `auth.interaction.opened`: a decision sent the browser to a page; the interaction remembers the
/// request so the flow can resume.
public struct InteractionOpened: Codable, Sendable, Equatable {
    public var interaction: String
    public var record: InteractionRecord
    /// The `auth.authorize.decided` event that opened it.
    public var decisionSequence: UInt64
    /// How many events before this one the decision is, in the same commit (schema version 3 on; see
    /// ``AuthorizeDecided/requestOffset``).
    public var decisionOffset: UInt64?

    enum CodingKeys: String, CodingKey {
        case interaction, record
        case decisionSequence = "decision_sequence", decisionOffset = "decision_offset"
    }

    public init(interaction: String, record: InteractionRecord, decisionSequence: UInt64) {
        self.interaction = interaction
        self.record = record
        self.decisionSequence = decisionSequence
    }

    /// An interaction opened by the decision `decisionOffset` events before it in the same commit.
    public init(interaction: String, record: InteractionRecord, decisionOffset: UInt64) {
        self.init(interaction: interaction, record: record, decisionSequence: 0)
        self.decisionOffset = decisionOffset
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        interaction = try container.decode(String.self, forKey: .interaction)
        record = try container.decode(InteractionRecord.self, forKey: .record)
        (decisionSequence, decisionOffset) = try container.decodeReference(sequence: .decisionSequence, offset: .decisionOffset)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(interaction, forKey: .interaction)
        try container.encode(record, forKey: .record)
        try container.encodeReference(decisionSequence, offset: decisionOffset, sequenceKey: .decisionSequence, offsetKey: .decisionOffset)
    }
}

/// Every event the authorization server appends, typed.
public enum AuthEvent: Sendable, Equatable {
    case configuration(ConfigurationEvent)
    case authorizeRequested(AuthorizeRequested)
    case authorizeDecided(AuthorizeDecided)
    case interactionOpened(InteractionOpened)
    case codeIssued(CodeIssued)
    case loginSucceeded(LoginSucceeded)
    case loginFailed(LoginFailed)
    case consentGranted(ConsentAnswered)
    case consentDenied(ConsentAnswered)
    case organizationChosen(OrganizationChosen)
    case invitationAccepted(InvitationAccepted)
    case loggedOut(LoggedOut)
    case tokenIssued(TokenIssued)
    case tokenRejected(TokenRejected)
    case codeReplayed(CodeReplayed)
    case tokenRevoked(TokenRevoked)
    case refreshIssued(RefreshIssued)
    case refreshFamilyRevoked(RefreshFamilyRevoked)
    case tokenKeysRotated(TokenKeysRotated)
    case tokenKeysPublished(TokenKeysPublished)
    case consentRevoked(ConsentRevoked)
    case projectionsPruned(ProjectionsPruned)
    case subjectErased(SubjectErased)
    case retentionApplied(RetentionApplied)
    case clientCredentialsDecided(ClientCredentialsDecided)
    case clientAssertionUsed(ClientAssertionUsed)
    case pushedRequest(PushedRequest)
    case tokenIntrospected(TokenIntrospected)
    case backchannelLogout(BackchannelLogoutDelivery)
    case logoutDecided(LogoutDecided)

    public static let authorizeRequestedType: EventType = "auth.authorize.requested"
    public static let authorizeDecidedType: EventType = "auth.authorize.decided"
    public static let interactionOpenedType: EventType = "auth.interaction.opened"
    public static let codeIssuedType: EventType = "auth.code.issued"
    public static let loginSucceededType: EventType = "auth.login.succeeded"
    public static let loginFailedType: EventType = "auth.login.failed"
    public static let consentGrantedType: EventType = "auth.consent.granted"
    public static let consentDeniedType: EventType = "auth.consent.denied"
    public static let organizationChosenType: EventType = "auth.organization.chosen"
    public static let invitationAcceptedType: EventType = "auth.invitation.accepted"
    public static let loggedOutType: EventType = "auth.logout"
    public static let tokenIssuedType: EventType = "auth.token.issued"
    public static let tokenRejectedType: EventType = "auth.token.rejected"
    public static let codeReplayedType: EventType = "auth.code.replayed"
    public static let tokenRevokedType: EventType = "auth.token.revoked"
    public static let refreshIssuedType: EventType = "auth.refresh.issued"
    public static let refreshFamilyRevokedType: EventType = "auth.refresh.family.revoked"
    public static let tokenKeysRotatedType: EventType = "auth.token_keys.rotated"
    public static let tokenKeysPublishedType: EventType = "auth.token_keys.published"
    public static let consentRevokedType: EventType = "auth.consent.revoked"
    public static let projectionsPrunedType: EventType = "auth.projections.pruned"
    public static let subjectErasedType: EventType = "privacy.subject.erased"
    public static let retentionAppliedType: EventType = "privacy.retention.applied"
    public static let clientCredentialsDecidedType: EventType = "auth.client_credentials.decided"
    public static let clientAssertionUsedType: EventType = "auth.client_assertion.used"
    public static let pushedRequestType: EventType = "auth.par.pushed"
    public static let tokenIntrospectedType: EventType = "auth.token.introspected"
    public static let backchannelLogoutType: EventType = "auth.logout.backchannel"
    public static let logoutDecidedType: EventType = "auth.logout.decided"

    public var eventType: EventType {
        switch self {
        case .configuration(let event): event.eventType
        case .authorizeRequested: Self.authorizeRequestedType
        case .authorizeDecided: Self.authorizeDecidedType
        case .interactionOpened: Self.interactionOpenedType
        case .codeIssued: Self.codeIssuedType
        case .loginSucceeded: Self.loginSucceededType
        case .loginFailed: Self.loginFailedType
        case .consentGranted: Self.consentGrantedType
        case .consentDenied: Self.consentDeniedType
        case .organizationChosen: Self.organizationChosenType
        case .invitationAccepted: Self.invitationAcceptedType
        case .loggedOut: Self.loggedOutType
        case .tokenIssued: Self.tokenIssuedType
        case .tokenRejected: Self.tokenRejectedType
        case .codeReplayed: Self.codeReplayedType
        case .tokenRevoked: Self.tokenRevokedType
        case .refreshIssued: Self.refreshIssuedType
        case .refreshFamilyRevoked: Self.refreshFamilyRevokedType
        case .tokenKeysRotated: Self.tokenKeysRotatedType
        case .tokenKeysPublished: Self.tokenKeysPublishedType
        case .consentRevoked: Self.consentRevokedType
        case .projectionsPruned: Self.projectionsPrunedType
        case .subjectErased: Self.subjectErasedType
        case .retentionApplied: Self.retentionAppliedType
        case .clientCredentialsDecided: Self.clientCredentialsDecidedType
        case .clientAssertionUsed: Self.clientAssertionUsedType
        case .pushedRequest: Self.pushedRequestType
        case .tokenIntrospected: Self.tokenIntrospectedType
        case .backchannelLogout: Self.backchannelLogoutType
        case .logoutDecided: Self.logoutDecidedType
        }
    }

    /// The payload in `encoding` (in the schema version ``schemaVersion(of:)`` gives for its type), with
    /// `members` added to it (``PayloadEncoding/encode(_:adding:)``): JSON unless asked.
    public func payload(_ encoding: PayloadEncoding = .json, adding members: [(name: String, value: any Encodable)] = []) throws -> [UInt8] {
        switch self {
        case .configuration(let event): try event.payload(encoding, adding: members)
        case .authorizeRequested(let value): try encoding.encode(value, adding: members)
        case .authorizeDecided(let value): try encoding.encode(value, adding: members)
        case .interactionOpened(let value): try encoding.encode(value, adding: members)
        case .codeIssued(let value): try encoding.encode(value, adding: members)
        case .loginSucceeded(let value): try encoding.encode(value, adding: members)
        case .loginFailed(let value): try encoding.encode(value, adding: members)
        case .consentGranted(let value), .consentDenied(let value): try encoding.encode(value, adding: members)
        case .organizationChosen(let value): try encoding.encode(value, adding: members)
        case .invitationAccepted(let value): try encoding.encode(value, adding: members)
        case .loggedOut(let value): try encoding.encode(value, adding: members)
        case .tokenIssued(let value): try encoding.encode(value, adding: members)
        case .tokenRejected(let value): try encoding.encode(value, adding: members)
        case .codeReplayed(let value): try encoding.encode(value, adding: members)
        case .tokenRevoked(let value): try encoding.encode(value, adding: members)
        case .refreshIssued(let value): try encoding.encode(value, adding: members)
        case .refreshFamilyRevoked(let value): try encoding.encode(value, adding: members)
        case .tokenKeysRotated(let value): try encoding.encode(value, adding: members)
        case .tokenKeysPublished(let value): try encoding.encode(value, adding: members)
        case .consentRevoked(let value): try encoding.encode(value, adding: members)
        case .projectionsPruned(let value): try encoding.encode(value, adding: members)
        case .subjectErased(let value): try encoding.encode(value, adding: members)
        case .retentionApplied(let value): try encoding.encode(value, adding: members)
        case .clientCredentialsDecided(let value): try encoding.encode(value, adding: members)
        case .clientAssertionUsed(let value): try encoding.encode(value, adding: members)
        case .pushedRequest(let value): try encoding.encode(value, adding: members)
        case .tokenIntrospected(let value): try encoding.encode(value, adding: members)
        case .backchannelLogout(let value): try encoding.encode(value, adding: members)
        case .logoutDecided(let value): try encoding.encode(value, adding: members)
        }
    }

    /// The encoding this release writes authorization events' payloads in (journal format §17).
    public static let payloadEncoding: PayloadEncoding = .compact

    /// The schema version this release writes events of `type` in: the version of its members
    /// (``memberSchemaVersion(of:)``) in ``payloadEncoding``.
    public static func schemaVersion(of type: EventType) -> UInt16 {
        payloadEncoding.schemaVersion(memberSchemaVersion(of: type))
    }

    /// The version of the members this release writes in payloads of `type`, whatever their encoding.
    public static func memberSchemaVersion(of type: EventType) -> UInt16 {
        switch type {
        // References within the commit by offset (`request_offset`, `decision_offset`).
        case interactionOpenedType, tokenIssuedType: 3
        // And the request's parameters, the decision's grant, left to the event they are written in;
        // and the values of a decision's outcome, to its input.
        case authorizeDecidedType: 5
        case codeIssuedType: 3
        default: PersonalData.schemaVersion(of: type) ?? 1
        }
    }

    /// The event with its references by offset to earlier events of its commit turned into sequence
    /// numbers, now that its own is known (`sequence`). Events without such references are unchanged.
    public func resolved(at sequence: UInt64) -> AuthEvent {
        func back(_ offset: UInt64) -> UInt64 { offset <= sequence ? sequence - offset : 0 }
        switch self {
        case .authorizeDecided(var decided):
            guard let offset = decided.requestOffset else { return self }
            decided.requestSequence = back(offset)
            return .authorizeDecided(decided)
        case .codeIssued(var issued):
            guard let offset = issued.decisionOffset else { return self }
            issued.decisionSequence = back(offset)
            return .codeIssued(issued)
        case .interactionOpened(var opened):
            guard let offset = opened.decisionOffset else { return self }
            opened.decisionSequence = back(offset)
            return .interactionOpened(opened)
        case .tokenIssued(var issued):
            guard let offset = issued.decisionOffset else { return self }
            issued.decisionSequence = back(offset)
            return .tokenIssued(issued)
        default:
            return self
        }
    }

    /// The sequence number of the earlier event whose values this one leaves to it (a decision's
    /// parameters, its request's; a code's grant, its decision's), when it does: read that event and
    /// complete this one with it (``completed(from:)``). Resolve references first (``resolved(at:)``).
    public var valuesFrom: UInt64? {
        switch self {
        case .authorizeDecided(let decided) where decided.parametersOfRequest: decided.requestSequence
        case .codeIssued(let issued) where issued.grantOfDecision: issued.decisionSequence
        default: nil
        }
    }

    /// This event with the values it leaves to `earlier` — the event at ``valuesFrom`` — read from it.
    /// - Throws: ``EventReferenceError`` when `earlier` is not the event the values are in.
    public func completed(from earlier: AuthEvent) throws(EventReferenceError) -> AuthEvent {
        switch (self, earlier) {
        case (.authorizeDecided(var decided), .authorizeRequested(let request)) where decided.parametersOfRequest:
            decided.input.parameters = request.parameters
            if decided.outcomeOfInput {
                guard let completed = decided.decision.completed(from: decided.input) else { throw EventReferenceError(event: self, found: earlier) }
                decided.decision = completed
            }
            return .authorizeDecided(decided)
        case (.codeIssued(var issued), .authorizeDecided(let decided)) where issued.grantOfDecision:
            // A decision read without the values it leaves to its request has no client yet.
            guard case .issueCode(let grant, _) = decided.decision.outcome, !grant.clientID.isEmpty else {
                throw EventReferenceError(event: self, found: earlier)
            }
            issued.grant = grant
            return .codeIssued(issued)
        case _ where valuesFrom == nil:
            return self
        default:
            throw EventReferenceError(event: self, found: earlier)
        }
    }

    /// This event, decoded from the payload `original` was encoded to, with the values the payload leaves
    /// to an earlier event taken from `original`, which holds them (they are equal to the earlier event's:
    /// they are left out only then). What records an event folds it so, without reading the earlier one.
    public func completed(like original: AuthEvent) -> AuthEvent {
        switch (self, original) {
        case (.authorizeDecided(var decided), .authorizeDecided(let known)) where decided.parametersOfRequest:
            decided.input.parameters = known.input.parameters
            if decided.outcomeOfInput { decided.decision = known.decision }
            return .authorizeDecided(decided)
        case (.codeIssued(var issued), .codeIssued(let known)) where issued.grantOfDecision:
            issued.grant = known.grant
            return .codeIssued(issued)
        default:
            return self
        }
    }

    /// Decodes the journal event at `sequence`, its references within its commit resolved
    /// (``resolved(at:)``) and the values it leaves to an earlier event read from there (``completed(from:)``)
    /// with `earlier`, which gives the event at a sequence number, decoded as this one is; `nil` for event
    /// types that are not the authorization server's.
    public init?(
        type: EventType, payload stored: [UInt8], sequence: UInt64, opener: PersonalData.Opener? = nil,
        earlier: (UInt64) throws -> AuthEvent?
    ) throws {
        guard let event = try AuthEvent(type: type, payload: stored, sequence: sequence, opener: opener) else { return nil }
        guard let source = event.valuesFrom else {
            self = event
            return
        }
        guard source < sequence, let found = try earlier(source) else { throw EventReferenceError(event: event, found: nil) }
        self = try event.completed(from: found)
    }

    /// Decodes the journal event in `envelope` as ``init(type:payload:sequence:opener:earlier:)`` does, the
    /// earlier events it takes values from read with `event` and completed the same way in turn (a code takes
    /// its decision's outcome, which takes values from its request; requests take none, so this reads at most
    /// two more events).
    public init?(_ envelope: EventEnvelope, opener: PersonalData.Opener? = nil, reading event: (UInt64) throws -> EventEnvelope?) throws {
        func earlier(_ sequence: UInt64) throws -> AuthEvent? {
            guard let found = try event(sequence) else { return nil }
            return try AuthEvent(type: found.type, payload: found.payload, sequence: sequence, opener: opener, earlier: earlier)
        }
        try self.init(type: envelope.type, payload: envelope.payload, sequence: envelope.sequence, opener: opener, earlier: earlier)
    }

    /// Decodes the journal event at `sequence`, its references within its commit resolved
    /// (``resolved(at:)``), but not completed with the values it leaves to an earlier event (see
    /// ``init(type:payload:sequence:opener:earlier:)``); `nil` for event types that are not the
    /// authorization server's.
    public init?(type: EventType, payload stored: [UInt8], sequence: UInt64, opener: PersonalData.Opener? = nil) throws {
        guard let event = try AuthEvent(type: type, payload: stored, opener: opener) else { return nil }
        self = event.resolved(at: sequence)
    }

    /// Decodes a journal event; `nil` for event types that are not the authorization server's. Sealed
    /// personal values are opened with `opener`, or shown as ``PersonalData/sealed`` without one (see
    /// ``PersonalData``). References by offset stay unresolved: read events with
    /// ``init(type:payload:sequence:opener:)``.
    public init?(type: EventType, payload stored: [UInt8], opener: PersonalData.Opener? = nil) throws {
        // A compact payload read without an opener (every rebuild): its sealed personal values are read as
        // the marker while it is decoded, without a pass over the bytes of their own.
        let markingSealed = opener == nil && PayloadCoding.isCompact(stored) ? PersonalData.fieldSets[type] : nil
        let payload = markingSealed == nil ? try PersonalData.open(stored, type: type, opener: opener) : stored
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            guard let markingSealed else { return try PayloadCoding.decode(type, from: payload) }
            return try PayloadCoding.decode(type, from: payload, markingSealed: markingSealed, as: PersonalData.sealed)
        }
        if let configuration = try ConfigurationEvent(type: type, payload: payload) {
            self = .configuration(configuration)
            return
        }
        switch type {
        case Self.authorizeRequestedType: self = .authorizeRequested(try decode(AuthorizeRequested.self))
        case Self.authorizeDecidedType: self = .authorizeDecided(try decode(AuthorizeDecided.self))
        case Self.interactionOpenedType: self = .interactionOpened(try decode(InteractionOpened.self))
        case Self.codeIssuedType: self = .codeIssued(try decode(CodeIssued.self))
        case Self.loginSucceededType: self = .loginSucceeded(try decode(LoginSucceeded.self))
        case Self.loginFailedType: self = .loginFailed(try decode(LoginFailed.self))
        case Self.consentGrantedType: self = .consentGranted(try decode(ConsentAnswered.self))
        case Self.consentDeniedType: self = .consentDenied(try decode(ConsentAnswered.self))
        case Self.organizationChosenType: self = .organizationChosen(try decode(OrganizationChosen.self))
        case Self.invitationAcceptedType: self = .invitationAccepted(try decode(InvitationAccepted.self))
        case Self.loggedOutType: self = .loggedOut(try decode(LoggedOut.self))
        case Self.tokenIssuedType: self = .tokenIssued(try decode(TokenIssued.self))
        case Self.tokenRejectedType: self = .tokenRejected(try decode(TokenRejected.self))
        case Self.codeReplayedType: self = .codeReplayed(try decode(CodeReplayed.self))
        case Self.tokenRevokedType: self = .tokenRevoked(try decode(TokenRevoked.self))
        case Self.refreshIssuedType: self = .refreshIssued(try decode(RefreshIssued.self))
        case Self.consentRevokedType: self = .consentRevoked(try decode(ConsentRevoked.self))
        case Self.projectionsPrunedType: self = .projectionsPruned(try decode(ProjectionsPruned.self))
        case Self.subjectErasedType: self = .subjectErased(try decode(SubjectErased.self))
        case Self.retentionAppliedType: self = .retentionApplied(try decode(RetentionApplied.self))
        case Self.tokenKeysRotatedType: self = .tokenKeysRotated(try decode(TokenKeysRotated.self))
        case Self.tokenKeysPublishedType: self = .tokenKeysPublished(try decode(TokenKeysPublished.self))
        case Self.clientCredentialsDecidedType:
            self = .clientCredentialsDecided(try decode(ClientCredentialsDecided.self))
        case Self.clientAssertionUsedType: self = .clientAssertionUsed(try decode(ClientAssertionUsed.self))
        case Self.pushedRequestType: self = .pushedRequest(try decode(PushedRequest.self))
        case Self.tokenIntrospectedType: self = .tokenIntrospected(try decode(TokenIntrospected.self))
        case Self.backchannelLogoutType: self = .backchannelLogout(try decode(BackchannelLogoutDelivery.self))
        case Self.logoutDecidedType: self = .logoutDecided(try decode(LogoutDecided.self))
        case Self.refreshFamilyRevokedType:
            self = .refreshFamilyRevoked(try decode(RefreshFamilyRevoked.self))
        default: return nil
        }
    }
}
