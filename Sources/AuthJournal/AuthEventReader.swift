import AuthCore
import LedgerCore
import LedgerJournal

/// Decodes the authorization server's events from a journal snapshot, each with its references resolved
/// and the values it leaves to an earlier event of its commit read from there (``AuthEvent/valuesFrom``:
/// a decision's parameters from its request, a code's grant from its decision).
///
/// Read in order, the event a value comes from is one of the last few read: the reader keeps them, so
/// that a walk over the journal decodes each event once; otherwise it reads the earlier event from the
/// snapshot.
public struct AuthEventReader {
    private let snapshot: JournalSnapshot
    private let opener: PersonalData.Opener?
    private var recent: [(sequence: UInt64, event: AuthEvent)] = []

    /// A reader of `snapshot`'s events, their sealed personal values opened with `opener` (or read as
    /// ``PersonalData/sealed`` without one).
    public init(snapshot: JournalSnapshot, opener: PersonalData.Opener? = nil) {
        self.snapshot = snapshot
        self.opener = opener
    }

    /// The event in `envelope`; `nil` for events that are not the authorization server's.
    /// - Throws: what decoding the payload throws, and ``EventReferenceError`` when the event it takes
    ///   values from is missing or another kind.
    public mutating func event(_ envelope: EventEnvelope) throws -> AuthEvent? {
        let recent = self.recent
        let event = try AuthEvent(type: envelope.type, payload: envelope.payload, sequence: envelope.sequence, opener: opener) { sequence in
            if let hit = recent.last(where: { $0.sequence == sequence }) { return hit.event }
            return try earlierEvent(sequence)
        }
        if let event, Self.givesValues(event) {
            self.recent.append((envelope.sequence, event))
            if self.recent.count > 4 { self.recent.removeFirst() }
        }
        return event
    }

    /// Whether later events may take values from `event` (requests and decisions).
    static func givesValues(_ event: AuthEvent) -> Bool {
        switch event {
        case .authorizeRequested, .authorizeDecided: true
        default: false
        }
    }

    /// The event at `sequence`, read from the snapshot with the values it takes from the events before it.
    private func earlierEvent(_ sequence: UInt64) throws -> AuthEvent? {
        guard let envelope = try snapshot.event(sequence) else { return nil }
        return try AuthEvent(envelope, opener: opener, reading: snapshot.event)
    }
}
