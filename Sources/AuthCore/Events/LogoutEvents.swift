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
