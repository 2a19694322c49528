import AuthCore
import LedgerCore
import LedgerJournal

/// Opens the sealed personal values of events read from a journal snapshot (``PersonalData``): with the
/// journal's data key, what the subject keys still open; ``PersonalData/erased`` where a subject's key was
/// destroyed; ``PersonalData/sealed`` without the data key.
public final class SealedValueOpener {
    private let snapshot: JournalSnapshot
    private let dataKey: DataKey?
    private var keys: [String: SubjectKey?] = [:]

    public init(snapshot: JournalSnapshot, dataKey: DataKey?) {
        self.snapshot = snapshot
        self.dataKey = dataKey
    }

    /// What `sealed` holds, or why it cannot be read.
    public func open(_ sealed: SealedValue, context: String) -> PersonalData.Opened {
        // Without the data key, or in an archive (its subjects' keys are kept in the journal): unreadable here.
        guard let dataKey, snapshot.holdsSubjectKeys else { return .unavailable }
        let key: SubjectKey?
        if let cached = keys[sealed.subject] {
            key = cached
        } else {
            do {
                key = try snapshot.subjectKey(sealed.subject, dataKey: dataKey)
            } catch {
                return .unavailable  // another journal's data key
            }
            keys[sealed.subject] = key
        }
        guard let key else { return .erased }
        do {
            return .value(String(decoding: try key.open(sealed, context: context), as: UTF8.self))
        } catch .otherKey {
            return .erased
        } catch {
            return .unavailable
        }
    }

    /// The index keys under which sealed events of `address` are found: its pseudonym under the key of every
    /// subject that still has one (none without the data key; none for an erased subject).
    public func addressKeys(_ address: String) throws -> [String] {
        guard let dataKey else { return [] }
        return try snapshot.subjects(withPrefix: "").compactMap { subject in
            try? snapshot.subjectKey(subject, dataKey: dataKey)?.pseudonym(address, domain: "address")
        }
    }

    /// ``open(_:context:)`` as a ``PersonalData/Opener``.
    public var opener: PersonalData.Opener { { [self] sealed, context in open(sealed, context: context) } }

    /// Decodes the event in `envelope`, its personal values opened as far as they can be, with the values
    /// it leaves to an earlier event of its commit read from there (``AuthEvent/valuesFrom``).
    public func event(_ envelope: EventEnvelope) throws -> AuthEvent? {
        try reader.event(envelope)
    }

    /// Reads the events; its opener is unowned: the reader is this opener's own, and must not keep it alive.
    private lazy var reader = AuthEventReader(snapshot: snapshot, opener: { [unowned self] sealed, context in open(sealed, context: context) })
}

extension AuthLedger {
    /// Erases the personal data of user `userID`: destroys the key of their subject (`u:<user id>`) and
    /// appends `privacy.subject.erased`, in one commit — a crash leaves either both or neither. Every value
    /// sealed under the key reads as ``PersonalData/erased`` from then on; every event still verifies.
    /// Erasing again destroys nothing more and is recorded again.
    ///
    /// The old key's bytes may remain in space the store freed (see `LMDBStorage.compact`).
    /// - Returns: the event recorded.
    @discardableResult
    public func eraseSubject(userID: String, reason: String?) async throws -> SubjectErased {
        let erased = try await record { recorder in
            let destroyed = try recorder.destroySubjectKey(PersonalData.userSubject(userID))
            let erased = SubjectErased(userID: userID, keysDestroyed: destroyed ? 1 : 0, reason: reason)
            try recorder.append(.subjectErased(erased))
            return erased
        }
        // Codes kept for their redemption hold their users' keys: read again from now on, this one's
        // destroyed (erasure is rare; which codes are this user's does not matter).
        forgetKeptCodes()
        return erased
    }
}

extension AuthRecorder {
    /// Destroys the key of data subject `subject` in this transaction (see ``AuthLedger/eraseSubject(userID:reason:)``).
    mutating func destroySubjectKey(_ subject: String) throws -> Bool {
        try transaction.destroySubjectKey(subject)
    }
}

/// What ``AuthLedger/applyRetention(now:dryRun:)`` forgot (or, dry, would forget).
public struct RetentionReport: Sendable, Equatable {
    /// The days before which anonymous subjects are past the period (`nil`: no period set).
    public var before: String?
    /// The subjects whose keys were (or would be) destroyed.
    public var subjects: [String]
}

extension AuthLedger {
    /// Forgets the personal data of anonymous subjects past the tenant's `retention.personal_data_days`:
    /// destroys their keys and appends `privacy.retention.applied` (counted, not named), in one commit.
    /// Nothing when no period is set or nothing is past it.
    /// - Parameter dryRun: only say what would be forgotten.
    @discardableResult
    public func applyRetention(now: LedgerTimestamp, dryRun: Bool = false) async throws -> RetentionReport {
        guard let retention = configuration.retention, let days = retention.personalDataDays else {
            return RetentionReport(before: nil, subjects: [])
        }
        let candidates = try await query { store in try store.snapshot.subjects(withPrefix: "a:") }
        guard let (before, expired) = retention.expiredAnonymousSubjects(candidates, now: now) else {
            return RetentionReport(before: nil, subjects: [])
        }
        guard !dryRun, !expired.isEmpty else { return RetentionReport(before: before, subjects: expired) }
        let destroyed = try await record { recorder in
            var destroyed: [String] = []
            for subject in expired where try recorder.destroySubjectKey(subject) { destroyed.append(subject) }
            if !destroyed.isEmpty {
                try recorder.append(.retentionApplied(RetentionApplied(personalDataDays: days, before: before, subjectsForgotten: destroyed.count)))
            }
            return destroyed
        }
        return RetentionReport(before: before, subjects: destroyed)
    }
}
