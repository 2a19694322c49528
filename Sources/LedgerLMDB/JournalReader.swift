import Foundation
import LedgerCore

/// Read-only access to a journal: consistent snapshots, proofs, checkpoints. Needs no signing key and
/// never blocks a writer, so it can run against a live journal, or a copy of one.
public final class JournalReader: Sendable {
    let environment: LMDBEnvironment
    let layout: JournalLayout
    /// The journal directory.
    public let directory: String

    /// Opens the journal in `directory` for reading.
    /// - Parameters:
    ///   - directory: the journal directory (the one holding `data.mdb`).
    ///   - projections: projection tables to make readable; ones the journal lacks are skipped.
    public convenience init(directory: String, projections: [String] = []) throws(JournalError) {
        guard FileManager.default.fileExists(atPath: directory + "/data.mdb") else {
            throw .directory(path: directory, reason: "holds no journal (no data.mdb)")
        }
        let environment: LMDBEnvironment
        let layout: JournalLayout
        do {
            var options = LMDBEnvironment.Options()
            options.maxDatabases = UInt32(8 + projections.count)
            if access(directory, W_OK) != 0 {
                // A copy on read-only media: no writer can be running, and no lock file can be written.
                options.readOnly = true
                options.noLock = true
            }
            environment = try LMDBEnvironment(path: directory, options: options)
            if !options.noLock { try environment.clearStaleReaders() }
            layout = try environment.openDatabasesForReading { transaction in
                var base = try JournalLayout.open(in: environment, transaction: transaction, projections: [], create: false)
                try base.checkFormat(in: transaction)
                var tables: [String: LMDBDatabase] = [:]
                for name in projections {
                    if let table = try? environment.openDatabase("p.\(name)", in: transaction, create: false) {
                        tables[name] = table
                    }
                }
                base = JournalLayout(
                    events: base.events, merkle: base.merkle, checkpoints: base.checkpoints, meta: base.meta,
                    projections: tables)
                return base
            }
        } catch let error as LMDBError {
            throw .storage(error)
        } catch let error as JournalError {
            throw error
        } catch {
            throw .corrupt("\(error)")
        }
        self.init(environment: environment, layout: layout, directory: directory)
    }

    init(environment: LMDBEnvironment, layout: JournalLayout, directory: String) {
        self.environment = environment
        self.layout = layout
        self.directory = directory
    }

    /// Closes the journal's files; later reads fail with ``JournalError/closed``.
    public func close() {
        environment.close()
    }

    /// Runs `body` against a consistent snapshot of the journal.
    public func read<R>(_ body: (JournalSnapshot) throws -> R) throws -> R {
        try environment.withReadTransaction { transaction in
            try body(JournalSnapshot(transaction: transaction, layout: layout))
        }
    }
}
