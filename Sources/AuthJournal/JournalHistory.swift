import AuthCore
import LedgerCore
import LedgerJournal

/// A recorded decision of any kind, found by its sequence number.
public enum RecordedDecisionKind: Sendable {
    case authorization(RecordedDecision)
    case clientCredentials(RecordedClientCredentialsDecision)
    case push(RecordedPushDecision)
    case logout(RecordedLogoutDecision)
}

/// A user's consent to one client (and audience) at a moment of the journal: the scopes, and the event
/// that last added to them.
public struct ConsentAtMoment: Sendable, Equatable {
    /// The scopes consented to, in the order they were first granted.
    public var scopes: [String]
    /// The sequence of the last grant that added to them (the last archived event's, when they come from
    /// the archived state).
    public var since: UInt64
}

/// Answers about one decision, user or moment of a journal from the events that answer depends on,
/// found through the journal's indexes — not by reading the journal from its start — so that an
/// investigator's question costs the same on a journal of ten events and of ten million.
///
/// The indexes are a projection (``IndexKind``): they are complete only when the journal's projections
/// are of the current ``ProjectionVersion``. Otherwise (a journal written by an older release and not
/// opened by a server of this one since), every answer comes from walking the events instead — the same
/// answer, more slowly (``indexed`` says which). Either way the answers are folded by the server's own
/// code (``AuthProjection``), so that they cannot drift from what the server saw.
public struct JournalHistory {
    /// The snapshot every answer is read from.
    public let snapshot: JournalSnapshot
    /// Whether answers come from the indexes (`false`: from walking the events).
    public let indexed: Bool
    let opener: SealedValueOpener
    let store: SnapshotStore

    /// - Parameters:
    ///   - snapshot: a snapshot of a journal opened with ``AuthLedger/projections`` (without them, the
    ///     indexes are not at hand and every answer walks the events).
    ///   - dataKey: opens sealed personal values in decisions and configurations, as far as subjects' keys allow.
    ///   - useIndexes: `false` to walk the events even when the indexes are complete (to check one against the other).
    public init(snapshot: JournalSnapshot, dataKey: DataKey?, useIndexes: Bool = true) throws {
        self.snapshot = snapshot
        self.opener = SealedValueOpener(snapshot: snapshot, dataKey: dataKey)
        self.store = SnapshotStore(snapshot: snapshot)
        let stored = try ProjectionVersion.stored(in: snapshot)
        self.indexed = useIndexes && stored == ProjectionVersion.current
    }

    /// The sequences the index holds for `value` of `kind` within `range`, in order; archived events
    /// (whose entries may not be removed yet) left out.
    private func indexed(_ kind: IndexKind, _ value: String, in range: ClosedRange<UInt64>) throws -> [UInt64] {
        let first = try snapshot.firstSequence
        return try store.sequences(kind, value).filter { range.contains($0) && $0 >= first }
    }

    // MARK: Configuration

    /// The configuration as of `version` (the sequence of the configuration event that made it), its
    /// personal values opened as far as they can be; `nil` when the journal does not hold that version
    /// (``ConfigurationUnavailable``): archived before it, or never written.
    public func configuration(version: UInt64) throws -> ConfigurationState? {
        let archived = try ArchivedState.configuration(in: snapshot, opener: opener.opener)
        if version == archived.version { return archived }
        if version == 0 { return ConfigurationState() }
        guard version > archived.version, version >= (try snapshot.firstSequence) else { return nil }
        var state = archived
        var found = false
        let fold: (EventEnvelope) throws -> Void = { envelope in
            guard let event = try opener.event(envelope), AuthProjection.changesConfiguration(event) else { return }
            AuthProjection.applyConfiguration(event, sequence: envelope.sequence, to: &state)
            found = envelope.sequence == version
        }
        if indexed {
            for sequence in try indexed(.configuration, IndexKind.tenant, in: 1...version) {
                if let envelope = try snapshot.event(sequence) { try fold(envelope) }
            }
        } else {
            try snapshot.forEachEvent { envelope in
                guard envelope.sequence <= version else { return false }
                if envelope.type == AuthEvent.invitationAcceptedType || envelope.type.name.hasPrefix(ConfigurationEvent.typePrefix) {
                    try fold(envelope)
                }
                return true
            }
        }
        return found ? state : nil
    }

    // MARK: Decisions

    /// The decision recorded at `sequence` with the configuration it was decided against — or, for an
    /// `auth.authorize.requested`, the decision that follows it in its commit; `nil` when that event is
    /// not a decision (or not in the journal).
    public func decision(at sequence: UInt64) throws -> RecordedDecisionKind? {
        guard sequence >= (try snapshot.firstSequence), let envelope = try snapshot.event(sequence), let event = try opener.event(envelope) else {
            return nil
        }
        switch event {
        case .authorizeRequested:
            // A request's decision is the next event of the same commit.
            guard sequence < .max, let next = try snapshot.event(sequence + 1), case .authorizeDecided(let decided)? = try opener.event(next),
                decided.requestSequence == sequence
            else { return nil }
            return .authorization(
                RecordedDecision(
                    sequence: next.sequence, timestamp: next.timestamp, decided: decided,
                    configuration: try configuration(version: decided.configurationVersion)))
        case .authorizeDecided(let decided):
            return .authorization(
                RecordedDecision(
                    sequence: sequence, timestamp: envelope.timestamp, decided: decided, configuration: try configuration(version: decided.configurationVersion)))
        case .clientCredentialsDecided(let decided):
            return .clientCredentials(
                RecordedClientCredentialsDecision(
                    sequence: sequence, timestamp: envelope.timestamp, decided: decided, configuration: try configuration(version: decided.configurationVersion)))
        case .pushedRequest(let pushed):
            return .push(
                RecordedPushDecision(
                    sequence: sequence, timestamp: envelope.timestamp, pushed: pushed,
                    configuration: try pushed.configurationVersion.flatMap { try configuration(version: $0) }))
        case .logoutDecided(let decided):
            return .logout(
                RecordedLogoutDecision(
                    sequence: sequence, timestamp: envelope.timestamp, decided: decided, configuration: try configuration(version: decided.configurationVersion)))
        default:
            return nil
        }
    }

    /// The events after `decision` that concern what it issued: what its commit opened or issued, the
    /// code's redemption, rejections and replay, the tokens of its refresh families and their revocation.
    ///
    /// From the indexes: what a decision opens or issues is written in its own commit, right after it (an
    /// authorization's events are recorded together, ``AuthorizeDecided``, ``CodeIssued``); the rest is
    /// found by the code's hash and by refresh family.
    public func consequences(of decision: RecordedDecision) throws -> [(UInt64, AuthEvent)] {
        guard indexed else { return try walkedConsequences(of: decision) }
        var related: [UInt64: AuthEvent] = [:]
        var codeHash: String?
        var families: Set<String> = []
        var reader = AuthEventReader(snapshot: snapshot)
        func event(_ sequence: UInt64) throws -> AuthEvent? {
            guard let envelope = try snapshot.event(sequence) else { return nil }
            return try reader.event(envelope)
        }
        // The decision's own commit.
        var next = decision.sequence
        commit: while next < .max, let following = try event(next + 1) {
            next += 1
            switch following {
            case .codeIssued(let issued) where issued.decisionSequence == decision.sequence:
                codeHash = issued.codeHash
            case .interactionOpened(let opened) where opened.decisionSequence == decision.sequence:
                break
            case .tokenIssued(let issued) where issued.decisionSequence == decision.sequence:
                if let family = issued.refreshFamily { families.insert(family) }
            case .invitationAccepted:
                continue commit  // the configuration change an accepted invitation makes: not a consequence shown
            default:
                break commit
            }
            related[next] = following
        }
        // The code's redemption, its rejections and its replay.
        if let codeHash {
            for sequence in try indexed(.code, codeHash, in: (decision.sequence + 1)...UInt64.max) {
                switch try event(sequence) {
                case .tokenIssued(let issued)? where issued.codeHash == codeHash:
                    if let family = issued.refreshFamily { families.insert(family) }
                    related[sequence] = .tokenIssued(issued)
                case .tokenRejected(let rejected)? where rejected.codeHash == codeHash:
                    related[sequence] = .tokenRejected(rejected)
                case .codeReplayed(let replay)? where replay.codeHash == codeHash:
                    related[sequence] = .codeReplayed(replay)
                default:
                    break
                }
            }
        }
        // The refresh families it started: their rotations and revocation.
        for family in families {
            for sequence in try indexed(.refreshFamily, family, in: (decision.sequence + 1)...UInt64.max) {
                switch try event(sequence) {
                case .tokenIssued(let issued)? where issued.refreshFamily == family:
                    related[sequence] = .tokenIssued(issued)
                case .refreshFamilyRevoked(let revoked)? where revoked.family == family:
                    related[sequence] = .refreshFamilyRevoked(revoked)
                default:
                    break
                }
            }
        }
        return related.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// ``consequences(of:)`` by walking every event after the decision.
    func walkedConsequences(of decision: RecordedDecision) throws -> [(UInt64, AuthEvent)] {
        var codeHash: String?
        var related: [(UInt64, AuthEvent)] = []
        var families: Set<String> = []
        var reader = AuthEventReader(snapshot: snapshot)
        try snapshot.forEachEvent(from: decision.sequence + 1) { envelope in
            guard let event = try reader.event(envelope) else { return true }
            switch event {
            case .codeIssued(let issued) where issued.decisionSequence == decision.sequence:
                codeHash = issued.codeHash
                related.append((envelope.sequence, event))
            case .tokenIssued(let issued) where (issued.codeHash != nil && issued.codeHash == codeHash)
                || issued.decisionSequence == decision.sequence || (issued.refreshFamily.map(families.contains) ?? false):
                if let family = issued.refreshFamily { families.insert(family) }
                related.append((envelope.sequence, event))
            case .tokenRejected(let rejected) where rejected.codeHash != nil && rejected.codeHash == codeHash:
                related.append((envelope.sequence, event))
            case .codeReplayed(let replay) where replay.codeHash == codeHash:
                related.append((envelope.sequence, event))
            case .refreshFamilyRevoked(let revoked) where families.contains(revoked.family):
                related.append((envelope.sequence, event))
            case .interactionOpened(let opened) where opened.decisionSequence == decision.sequence:
                related.append((envelope.sequence, event))
            default:
                break
            }
            return true
        }
        return related
    }

    // MARK: Consents

    /// The consents of `userID` as they stood after event `sequence` (keyed as ``AuthorizationInput/consents``
    /// keys them: client and audience), folded by the server's own projection code from the archived state
    /// and the user's consent events.
    public func consents(of userID: String, through sequence: UInt64) throws -> [String: ConsentAtMoment] {
        let archivedThrough = try snapshot.firstSequence - 1
        let fold = ProjectionRebuild.MemoryStore()
        // The projection keys a consent `user ␟ client ␟ audience` (``AuthProjection/consentKey(userID:clientID:audience:)``).
        let prefix = userID + "\u{1F}"
        var since: [String: UInt64] = [:]
        if sequence > archivedThrough {
            for (key, scopes) in try ArchivedState.consents(of: userID, in: snapshot) {
                fold.tables[.consents, default: [:]][prefix + key] = try ProjectionCoding.encode(scopes)
                since[key] = archivedThrough
            }
        }
        var reader = AuthEventReader(snapshot: snapshot)
        let apply: (EventEnvelope) throws -> Void = { envelope in
            guard let event = try reader.event(envelope) else { return }
            switch event {
            case .consentGranted(let answer) where answer.userID == userID:
                since[ConsentKey.make(clientID: answer.clientID, audience: answer.audience)] = envelope.sequence
            case .consentRevoked(let revoked) where revoked.userID == userID:
                break
            default:
                return
            }
            try AuthProjection.apply(event, sequence: envelope.sequence, to: fold)
        }
        if indexed {
            for event in try indexed(.consent, userID, in: 1...sequence) {
                if let envelope = try snapshot.event(event) { try apply(envelope) }
            }
        } else {
            try snapshot.forEachEvent { envelope in
                guard envelope.sequence <= sequence else { return false }
                if envelope.type == AuthEvent.consentGrantedType || envelope.type == AuthEvent.consentRevokedType { try apply(envelope) }
                return true
            }
        }
        var consents: [String: ConsentAtMoment] = [:]
        for (key, value) in fold.tables[.consents] ?? [:] where key.hasPrefix(prefix) {
            let consentKey = String(key.dropFirst(prefix.count))
            consents[consentKey] = ConsentAtMoment(scopes: try ProjectionCoding.decode([String].self, from: value), since: since[consentKey] ?? archivedThrough)
        }
        return consents
    }
}
