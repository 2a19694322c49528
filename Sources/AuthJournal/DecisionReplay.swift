import AuthCore
import LedgerCore
import LedgerJournal

/// A recorded authorization decision, with what it was decided against.
public struct RecordedDecision: Sendable {
    public var sequence: UInt64
    public var timestamp: LedgerTimestamp
    public var decided: AuthorizeDecided
    /// The configuration in force when it was decided (as of `decided.configurationVersion`); `nil` when
    /// the journal does not hold that version (``ConfigurationUnavailable``): the decision cannot be
    /// re-derived, and nothing stands in for it.
    public var configuration: ConfigurationState?
}

/// Why a recorded decision cannot be re-derived: the journal does not hold the configuration version it
/// was decided against — the events that made it were archived and a later version was in force at the
/// cut, or the version is not one this journal ever had. Replaying it against another configuration (the
/// newest, say) could report a difference that is not one, or hide one that is.
public struct ConfigurationUnavailable: Error, Sendable, Equatable, CustomStringConvertible {
    /// The version the decision names (the sequence number of the configuration event that made it).
    public var version: UInt64

    public init(version: UInt64) { self.version = version }

    public var description: String {
        "the configuration version #\(version) it was decided against is not in this journal (its events were archived, or it never existed): it cannot be re-derived"
    }
}

/// A recorded client credentials decision, with the configuration it was decided against.
public struct RecordedClientCredentialsDecision: Sendable {
    public var sequence: UInt64
    public var timestamp: LedgerTimestamp
    public var decided: ClientCredentialsDecided
    /// `nil` when the journal does not hold the version it was decided against (``ConfigurationUnavailable``).
    public var configuration: ConfigurationState?

    /// The decision the same rules give today, from the recorded input and configuration; `nil` when that
    /// configuration is not in the journal.
    public var recomputed: ClientCredentialsDecision? {
        configuration.map { ClientCredentialsPolicy.decide(decided.input, configuration: $0) }
    }
}

/// A recorded pushed authorization request, with the configuration it was checked against.
public struct RecordedPushDecision: Sendable {
    public var sequence: UInt64
    public var timestamp: LedgerTimestamp
    public var pushed: PushedRequest
    /// `nil` when the journal does not hold the version it was checked against (``ConfigurationUnavailable``),
    /// or the push was recorded before its configuration version was.
    public var configuration: ConfigurationState?

    /// Whether the same rules accept or refuse it today as they did (`nil` for a push recorded before its
    /// inputs were, or whose configuration the journal does not hold, which cannot be checked again).
    public func recheck(against configuration: ConfigurationState? = nil) -> (agrees: Bool, recomputed: PushRefusal?)? {
        guard let input = pushed.input, let configuration = configuration ?? self.configuration else { return nil }
        let recomputed = AuthorizationPolicy.pushRefusal(input, configuration: configuration)
        return (recomputed?.rule == pushed.refusal?.rule && recomputed?.error == pushed.refusal?.error, recomputed)
    }
}

/// A recorded logout decision, with the configuration it was decided against.
public struct RecordedLogoutDecision: Sendable {
    public var sequence: UInt64
    public var timestamp: LedgerTimestamp
    public var decided: LogoutDecided
    /// `nil` when the journal does not hold the version it was decided against (``ConfigurationUnavailable``).
    public var configuration: ConfigurationState?

    /// The decision the same rules give (against `configuration`, or the one it was decided against); `nil`
    /// when neither is at hand.
    public func recomputed(against configuration: ConfigurationState? = nil) -> LogoutDecision? {
        guard let configuration = configuration ?? self.configuration else { return nil }
        return LogoutPolicy.decision(decided.request, session: decided.session, configuration: configuration)
    }
}

/// Walks the journal in order, keeping the configuration as it was at every point, and hands each
/// recorded decision to the caller together with the configuration it was decided against.
///
/// Configuration changes are rare and small, so every version is kept: a decision names the version it
/// saw, which may be older than the newest by the time the decision was committed. A version the journal
/// does not hold is never replaced by another: the decision comes with no configuration
/// (``ConfigurationUnavailable``).
public enum DecisionHistory {
    /// Calls `body` for every `auth.authorize.decided` event with sequence in `range`, in order.
    ///
    /// Personal values — in the decision's input and in the configuration — are opened with `dataKey` as far
    /// as their subjects' keys allow, and otherwise read as ``PersonalText/erased`` or
    /// ``PersonalText/unavailable`` (see ``AuthorizationInput/withheldPersonalValues(in:)``).
    /// `clientCredentials`, `pushes` and `logouts`, when given, are called for every
    /// `auth.client_credentials.decided`, `auth.par.pushed` and `auth.logout.decided` in `range` too.
    public static func forEachDecision(
        in reader: JournalReader, range: ClosedRange<UInt64> = 1...UInt64.max, dataKey: DataKey? = nil,
        clientCredentials: ((RecordedClientCredentialsDecision) throws -> Void)? = nil,
        pushes: ((RecordedPushDecision) throws -> Void)? = nil,
        logouts: ((RecordedLogoutDecision) throws -> Void)? = nil,
        _ body: (RecordedDecision, ConfigurationState) throws -> Void
    ) throws {
        try reader.read { snapshot in
            let opener = SealedValueOpener(snapshot: snapshot, dataKey: dataKey)
            // After archived events, the configuration starts as they left it.
            var current = try ArchivedState.configuration(in: snapshot, opener: opener.opener)
            var versions: [UInt64: ConfigurationState] = [0: ConfigurationState()]
            versions[current.version] = current
            try snapshot.forEachEvent { envelope in
                guard envelope.sequence <= range.upperBound else { return false }
                guard let event = try opener.event(envelope) else { return true }
                switch event {
                case .configuration, .invitationAccepted:
                    AuthProjection.applyConfiguration(event, sequence: envelope.sequence, to: &current)
                    versions[envelope.sequence] = current
                case .authorizeDecided(let decided) where range.contains(envelope.sequence):
                    let configuration = versions[decided.configurationVersion]
                    try body(
                        RecordedDecision(
                            sequence: envelope.sequence, timestamp: envelope.timestamp, decided: decided, configuration: configuration),
                        current)
                case .logoutDecided(let decided) where range.contains(envelope.sequence):
                    try logouts?(
                        RecordedLogoutDecision(
                            sequence: envelope.sequence, timestamp: envelope.timestamp, decided: decided,
                            configuration: versions[decided.configurationVersion]))
                case .pushedRequest(let pushed) where range.contains(envelope.sequence):
                    try pushes?(
                        RecordedPushDecision(
                            sequence: envelope.sequence, timestamp: envelope.timestamp, pushed: pushed,
                            configuration: pushed.configurationVersion.flatMap { versions[$0] }))
                case .clientCredentialsDecided(let decided) where range.contains(envelope.sequence):
                    try clientCredentials?(
                        RecordedClientCredentialsDecision(
                            sequence: envelope.sequence, timestamp: envelope.timestamp, decided: decided,
                            configuration: versions[decided.configurationVersion]))
                default:
                    break
                }
                return true
            }
        }
    }

    /// Calls `body` for every `auth.token.introspected` in `range` with the answer the projections as they stood
    /// then give (``TokenIntrospected/answer(in:)``; `nil` for one recorded without its inputs). The projections
    /// are folded from the events as the walk goes, from the archived state on.
    public static func forEachIntrospection(
        in reader: JournalReader, range: ClosedRange<UInt64> = 1...UInt64.max,
        _ body: (UInt64, LedgerTimestamp, TokenIntrospected, IntrospectionAnswer?) throws -> Void
    ) throws {
        try reader.read { snapshot in
            // Folding the projections costs what a rebuild does: only when there is a question to re-ask.
            var asked = false
            try snapshot.forEachEvent(from: range.lowerBound) { envelope in
                guard envelope.sequence <= range.upperBound else { return false }
                asked = envelope.type == AuthEvent.tokenIntrospectedType
                return !asked
            }
            guard asked else { return }
            let store = ProjectionRebuild.MemoryStore()
            store.tables = try ArchivedState.start(in: snapshot)
            var reader = AuthEventReader(snapshot: snapshot)
            try snapshot.forEachEvent { envelope in
                guard envelope.sequence <= range.upperBound else { return false }
                guard let event = try reader.event(envelope) else { return true }
                if case .tokenIntrospected(let introspected) = event, range.contains(envelope.sequence) {
                    try body(envelope.sequence, envelope.timestamp, introspected, try introspected.answer(in: store))
                }
                try AuthProjection.apply(event, sequence: envelope.sequence, to: store)
                return true
            }
        }
    }
}
