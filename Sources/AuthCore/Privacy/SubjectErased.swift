/// `privacy.subject.erased`: the key of a data subject was destroyed on request (GDPR Art. 17, CCPA
/// deletion): every personal value sealed under it is unreadable for good, while every event that held one
/// still verifies. It names the subject by its pseudonymous id only, and carries no personal data.
public struct SubjectErased: Codable, Sendable, Equatable {
    /// The subject, `u:<user id>`.
    public var subject: String
    /// The user the subject is.
    public var userID: String
    /// Subject keys destroyed by this request: 1, or 0 when there was none (erased before, or nothing
    /// personal of the user's was ever sealed).
    public var keysDestroyed: Int
    /// Why, as the operator gave it (bounded; the operator must not put personal data here).
    public var reason: String?

    public init(userID: String, keysDestroyed: Int, reason: String?) {
        self.subject = PersonalData.userSubject(userID)
        self.userID = userID
        self.keysDestroyed = keysDestroyed
        self.reason = reason.map { RecordedText.bounded($0, bytes: 256) }
    }

    enum CodingKeys: String, CodingKey {
        case subject, reason
        case userID = "user_id", keysDestroyed = "keys_destroyed"
    }
}
