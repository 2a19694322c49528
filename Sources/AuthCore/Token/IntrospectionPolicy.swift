import LedgerCore

/// What an introspection (RFC 7662) answers about a token: active or not, and why not.
public struct IntrospectionAnswer: Codable, Sendable, Equatable {
    public var active: Bool
    /// `revoked`, `family_revoked`, `expired`, `rotated` or `unknown` when not active.
    public var reason: String?

    public init(active: Bool, reason: String?) {
        self.active = active
        self.reason = reason
    }

    public static let activeAnswer = IntrospectionAnswer(active: true, reason: nil)
    static func inactive(_ reason: String) -> IntrospectionAnswer { IntrospectionAnswer(active: false, reason: reason) }
}

/// Whether a token is active, from the projections alone — the journal's record is the truth, whatever a
/// signature says. Pure over a ``ProjectionStore``: the server asks its live projections, `replay` asks the
/// projections as they stood when the question was recorded.
public enum IntrospectionPolicy {
    /// An access token whose signature verified, by its `jti`, `sub`, `client_id` and `exp`.
    public static func accessToken(
        id: String, subject: String, clientID: String, expiresAt: Int64, in store: some ProjectionStore, now: LedgerTimestamp
    ) throws -> IntrospectionAnswer {
        guard let record = try store.value(TokenRecord.self, .tokens, TokenRecord.key(id)), record.userID == subject, record.clientID == clientID else {
            return .inactive("unknown")
        }
        if record.status == .revoked { return .inactive("revoked") }
        // A family that is gone (pruned at the end of its life) counts as revoked: fail closed.
        if let family = record.refreshFamily, try store.value(RefreshFamilyRecord.self, .refreshFamilies, family)?.revoked ?? true {
            return .inactive("family_revoked")
        }
        guard now < record.expiresAt, expiresAt <= record.expiresAt.secondsSinceEpoch, expiresAt > now.secondsSinceEpoch else {
            return .inactive("expired")
        }
        return .activeAnswer
    }

    /// An opaque token, by its hash: a refresh token is active while it is the current one of an unrevoked
    /// family and unexpired. Also gives its record, for the answer's members.
    public static func refreshToken(hash: String, in store: some ProjectionStore, now: LedgerTimestamp) throws -> (IntrospectionAnswer, RefreshIssued?) {
        guard let record = try store.value(RefreshRecord.self, .refreshTokens, hash),
            let family = try store.value(RefreshFamilyRecord.self, .refreshFamilies, record.issued.family)
        else { return (.inactive("unknown"), nil) }
        if family.revoked { return (.inactive("family_revoked"), nil) }
        if record.status == .rotated { return (.inactive("rotated"), nil) }
        guard now < record.issued.expiresAt else { return (.inactive("expired"), nil) }
        return (.activeAnswer, record.issued)
    }
}
