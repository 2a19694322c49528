import LedgerCore

/// What went wrong opening, writing or reading a journal.
public enum JournalError: Error, CustomStringConvertible {
    /// The store failed (disk full, I/O error, database unreachable, ...). Nothing from the failed batch
    /// was written — unless the connection to a database was lost after its commit was sent, when the
    /// outcome is unknown (what was recorded stays consistent either way; the caller just does not know).
    case storage(any Error)
    /// The journal directory could not be created or opened.
    case directory(path: String, reason: String)
    /// The signing key file is missing, unreadable or malformed.
    case keyFile(path: String, reason: String)
    /// The key file's key is not among the keys that sign the journal.
    case signingKeyMismatch(keyFile: KeyID, journal: KeyID)
    /// The journal was written by an incompatible format version.
    case unsupportedFormat(String)
    /// The stored journal state is inconsistent (its head does not match its events).
    case corrupt(String)
    /// A projection table was used that the journal was not opened with.
    case unknownProjection(String)
    /// An event could not be encoded.
    case invalidEvent(String)
    /// The journal is closed.
    case closed
    /// Another process (or another `Journal` in this one) has the journal open for writing.
    case lockedByAnotherWriter(path: String)
    /// The journal is read-only.
    case readOnly
    /// Another process created the journal in the shared store first (opening it again opens theirs).
    case createdConcurrently
    /// The shared store no longer holds an event that this process appended or saw there: it lost
    /// commits (a failover to a replica that lagged behind, a restore from an older backup). The writer
    /// appends nothing more, rather than chain new events over the gap, until it is restarted.
    case lostCommits(sequence: UInt64, reason: String)

    public var description: String {
        switch self {
        case .storage(let error): "journal storage failed: \(error)"
        case .directory(let path, let reason): "journal directory \(path) \(reason)"
        case .keyFile(let path, let reason): "signing key file \(path) \(reason)"
        case .signingKeyMismatch(let file, let journal):
            "signing key file holds key \(file), which does not sign this journal (its signers include \(journal)); add it with `authledger keys add`, or use a signer's key file"
        case .unsupportedFormat(let version): "journal format \(version) is not supported"
        case .corrupt(let reason): "journal is inconsistent: \(reason)"
        case .unknownProjection(let name): "projection \(name) was not declared when the journal was opened"
        case .invalidEvent(let reason): "invalid event: \(reason)"
        case .closed: "journal is closed"
        case .lockedByAnotherWriter(let path):
            "journal is already open for writing by another process (lock \(path) is held); stop it first"
        case .readOnly: "journal is open read-only"
        case .createdConcurrently: "another process created the journal at the same time"
        case .lostCommits(let sequence, let reason):
            "the shared store lost commits: event #\(sequence), which this process appended or saw, \(reason); appending has stopped (restart once the store is restored, or to continue from what it holds)"
        }
    }
}
