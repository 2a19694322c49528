import LedgerCore

/// `auth.logout.backchannel`: the outcome of telling one client that a session it took part in ended
/// (OIDC Back-Channel Logout 1.0): the logout token's `jti` (the token itself is not kept), how many
/// attempts it took, and the last answer.
public struct BackchannelLogoutDelivery: Codable, Sendable, Equatable {
    public var clientID: String
    public var userID: String
    public var sessionHash: String
    public var logoutTokenID: String
    public var delivered: Bool
    public var attempts: Int
    /// The HTTP status of the last attempt, when there was an answer.
    public var status: Int?
    /// Why the last attempt failed, when it did.
    public var error: String?

    public init(
        clientID: String, userID: String, sessionHash: String, logoutTokenID: String, delivered: Bool, attempts: Int, status: Int?, error: String?
    ) {
        self.clientID = clientID
        self.userID = userID
        self.sessionHash = sessionHash
        self.logoutTokenID = logoutTokenID
        self.delivered = delivered
        self.attempts = attempts
        self.status = status
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case clientID = "client_id", userID = "user_id", sessionHash = "session_hash", logoutTokenID = "logout_token_id"
        case delivered, attempts, status, error
    }
}

/// `auth.logout.decided`: an RP-Initiated Logout request (OIDC RP-Initiated Logout 1.0), what it was decided
/// against — the verified hint, the session the browser presented, the configuration — and the decision.
/// A decision that ends the session is followed in the same commit by its `auth.logout`. `replay` re-decides it.
public struct LogoutDecided: Codable, Sendable, Equatable {
    public var request: LogoutRequest
    public var session: SessionSnapshot?
    public var configurationVersion: UInt64
    public var decision: LogoutDecision
    /// The session's user (whose personal data the address is), when there is a session.
    public var userID: String?
    public var clientIP: String?
    /// A keyed pseudonym of the client address (set when the event is sealed), for the timeline's index.
    public var clientIPKey: String?

    public init(
        request: LogoutRequest, session: SessionSnapshot?, configurationVersion: UInt64, decision: LogoutDecision, clientIP: String?
    ) {
        self.request = request
        self.session = session
        self.configurationVersion = configurationVersion
        self.decision = decision
        self.userID = session?.userID
        self.clientIP = clientIP
    }

    enum CodingKeys: String, CodingKey {
        case request, session, decision
        case configurationVersion = "configuration_version"
        case userID = "user_id", clientIP = "client_ip", clientIPKey = "client_ip_key"
    }
}
