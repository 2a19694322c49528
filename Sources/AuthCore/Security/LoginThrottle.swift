import LedgerCore

/// Password guessing limits: after `limit` failed logins for one username, or from one address, within
/// `window`, further attempts are refused without checking the password until the window has passed.
/// Pure: the failure times come from the `login_failures` projection, the time is an input.
public struct LoginThrottle: Sendable, Equatable {
    public var limit: Int
    public var windowSeconds: Int

    public init(limit: Int = 10, windowSeconds: Int = 900) {
        self.limit = limit
        self.windowSeconds = windowSeconds
    }

    /// The failures kept per key (more than any limit needs).
    static let kept = 50

    /// The projection keys for an attempt: the account (the user it named, or a hash of the name typed,
    /// case-insensitively, so any alias of one account shares its budget and keys stay short) and the address.
    public static func keys(userID: String?, username: String, address: String?) -> [String] {
        let account = userID.map { "u\u{1F}" + $0 } ?? "n\u{1F}" + SHA256Digest.hash(Array(username.lowercased().utf8)).hex
        return [account] + (address.map { ["i\u{1F}" + String($0.prefix(64))] } ?? [])
    }

    /// `recent` with `time` added, oldest dropped beyond ``kept``.
    public static func remember(_ time: LedgerTimestamp, in recent: [LedgerTimestamp]) -> [LedgerTimestamp] {
        Array((recent + [time]).suffix(kept))
    }

    /// Whether attempts must be refused now, given the recorded failures of each key and, for each key,
    /// the attempts still in progress (checked but not yet recorded), which count as failures.
    public func isThrottled(failures: [[LedgerTimestamp]], pending: [Int] = [], now: LedgerTimestamp) -> Bool {
        let since = now.adding(seconds: -windowSeconds)
        return failures.indices.contains { index in
            failures[index].filter { $0 > since }.count + (index < pending.count ? pending[index] : 0) >= limit
        }
    }
}
