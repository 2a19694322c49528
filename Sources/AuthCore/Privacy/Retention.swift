import LedgerCore

/// The tenant file's `retention:` section: how long personal data of no known user is kept.
public struct RetentionSettings: Codable, Sendable, Equatable {
    /// Days after which the personal data of anonymous subjects (the addresses and user agents of
    /// requests without a session, of failed logins for unknown names, of refused token requests) is
    /// forgotten: their day's key is destroyed.
    public var personalDataDays: Int?
    /// Days after which events may be archived (kept as configuration for `journal archive`).
    public var eventsDays: Int?

    public init(personalDataDays: Int? = nil, eventsDays: Int? = nil) {
        self.personalDataDays = personalDataDays
        self.eventsDays = eventsDays
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case personalDataDays = "personal_data_days", eventsDays = "events_days"
    }

    /// The anonymous subjects whose personal data is past `personalDataDays` at `now`, among `subjects`:
    /// those of the days before `now` minus that many days (UTC). None without a period.
    public func expiredAnonymousSubjects(_ subjects: [String], now: LedgerTimestamp) -> (before: String, subjects: [String])? {
        guard let days = personalDataDays else { return nil }
        let before = String(now.adding(seconds: -days * 86_400).rfc3339.prefix(10))
        let expired = subjects.filter { $0.hasPrefix("a:") && $0.dropFirst(2) < before }
        return (before, expired)
    }
}

/// `privacy.retention.applied`: the keys of anonymous subjects past the retention period were destroyed:
/// what they sealed is forgotten. Counted, not named (the subjects are days: `before` says which).
public struct RetentionApplied: Codable, Sendable, Equatable {
    /// The period in force.
    public var personalDataDays: Int
    /// Anonymous subjects of days before this one (UTC, `YYYY-MM-DD`) were forgotten.
    public var before: String
    /// How many subject keys were destroyed.
    public var subjectsForgotten: Int

    public init(personalDataDays: Int, before: String, subjectsForgotten: Int) {
        self.personalDataDays = personalDataDays
        self.before = before
        self.subjectsForgotten = subjectsForgotten
    }

    enum CodingKeys: String, CodingKey {
        case before
        case personalDataDays = "personal_data_days", subjectsForgotten = "subjects_forgotten"
    }
}
