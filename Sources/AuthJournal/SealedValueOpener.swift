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
        guard let dataKey else { return .unavailable }
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

    /// ``open(_:context:)`` as a ``PersonalData/Opener``.
    public var opener: PersonalData.Opener { { [self] sealed, context in open(sealed, context: context) } }

    /// Decodes the event in `envelope`, its personal values opened as far as they can be.
    public func event(_ envelope: EventEnvelope) throws -> AuthEvent? {
        try AuthEvent(type: envelope.type, payload: envelope.payload, opener: opener)
    }
}
