import Foundation
import LedgerCore
import Synchronization

/// Read-only access to a journal: consistent snapshots, proofs, checkpoints. Needs no signing key and
/// never blocks a writer, so it can run against a live journal, or a copy of one.
public final class JournalReader: Sendable {
    let storage: any JournalStorage
    let layout: JournalLayout
    /// What awaited reads given a hint read last time (``read(awaiting:hint:otherwise:)``).
    public let hints = AwaitedReadHints()
    /// What awaited reads have cost so far (``awaitedReadStatistics``).
    let awaitedCounts = Mutex(AwaitedReadStatistics())

    /// Where the journal is (a directory, or a database address without its password).
    public var location: String { storage.location }

    /// Reads the journal in `storage`, which the reader owns from then on (``close()`` closes it, and so
    /// does a failure here).
    /// - Parameters:
    ///   - storage: the store holding the journal.
    ///   - projections: projection tables to make readable; ones the journal lacks are skipped.
    public convenience init(storage: any JournalStorage, projections: [String] = []) throws {
        let layout: JournalLayout
        do {
            layout = try JournalLayout.open(in: storage, projections: projections, create: false)
            try storage.read { try layout.checkFormat(in: $0) }
        } catch {
            storage.close()
            throw error
        }
        self.init(storage: storage, layout: layout)
    }

    init(storage: any JournalStorage, layout: JournalLayout) {
        self.storage = storage
        self.layout = layout
    }

    /// Closes the journal's files or connections; later reads fail with ``JournalError/closed``.
    public func close() {
        storage.close()
    }

    /// Runs `body` against a consistent snapshot of the journal.
    public func read<R>(_ body: (JournalSnapshot) throws -> R) throws -> R {
        try storage.read { transaction in
            try body(JournalSnapshot(transaction: transaction, layout: layout))
        }
    }
}
