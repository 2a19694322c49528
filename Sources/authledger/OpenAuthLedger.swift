import ArgumentParser
import AuthJournal
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerJournal
import LedgerLMDB
import Logging

extension JournalWriterOptions {
    /// Opens the journal with the authorization server's projections (rebuilt first when they are of
    /// another version), turning failure into exit 2.
    /// - Parameter storeLogger: where a PostgreSQL store logs (the server's logger, in its format).
    func openAuthLedger(_ options: JournalOptions, storeLogger: Logger? = nil) async throws -> AuthLedger {
        let configuration = configuration(options, projections: AuthLedger.projections)
        do {
            return try await AuthLedger.open(configuration, storage: try options.openStorage(writing: configuration, logger: storeLogger))
        } catch {
            throw CommandExit.badInput("\(error)")
        }
    }

    /// Opens the authorization server's journal, runs `change` on it and closes it; a failure of `change`
    /// closes it too and is exit 2, saying that `what` failed.
    func withAuthLedger<R>(_ options: JournalOptions, failing what: String, _ change: (AuthLedger) async throws -> R) async throws -> R {
        let ledger = try await openAuthLedger(options)
        do {
            let result = try await change(ledger)
            await ledger.journal.close()
            return result
        } catch {
            await ledger.journal.close()
            throw CommandExit.badInput("\(what) failed: \(error)")
        }
    }
}

extension DataKeyOptions {
    /// The journal's data key: read, or made when the journal has none yet. Refused when it is missing for a
    /// node joining a shared journal (every node needs the same one; `createOnSharedJournal` makes it there,
    /// once), or for a journal that already sealed data under it, and when it does not open the journal's
    /// subject keys: a new or foreign key would make every existing subject key unreadable (and every
    /// append for their subjects fail).
    func journalDataKey(
        for ledger: AuthLedger, _ options: JournalOptions, joiningSharedJournal: Bool, createOnSharedJournal: Bool = false
    ) throws -> DataKey {
        let file = file(options)
        let subjects = try ledger.journal.read { try $0.subjects(withPrefix: "") }
        if !FileManager.default.fileExists(atPath: file.path) {
            if joiningSharedJournal && !createOnSharedJournal {
                throw CommandExit.badInput(
                    "the journal's data key \(file.path) is missing: every server of a shared journal needs the same one; "
                        + "copy it from the server that created the journal (or, if none has one yet, start one server with --create-data-key)")
            }
            if !subjects.isEmpty {
                throw CommandExit.badInput("the journal's data key \(file.path) is missing, and the journal holds data sealed under it: restore the file")
            }
        }
        let dataKey = try loadOrCreate(options)
        if let subject = subjects.first, (try? ledger.journal.read { try $0.subjectKey(subject, dataKey: dataKey) }) == nil {
            throw CommandExit.badInput("the data key \(file.path) does not open this journal's subject keys (another journal's data key?)")
        }
        return dataKey
    }
}

/// Where the token signing keys live: `<journal>.tokenkeys`, beside the journal.
func tokenKeyPath(_ journal: String) -> String {
    JournalSideFile.path(beside: journal, suffix: ".tokenkeys")
}

/// `--token-keys FILE`: the token signing key file of this node.
struct TokenKeyOptions: ParsableArguments {
    @Option(
        name: .customLong("token-keys"),
        help: ArgumentHelp("Token signing key file (default: <journal>.tokenkeys). Each node of a cluster may have its own.", valueName: "file"))
    var tokenKeys: String?

    /// The key file: `--token-keys`, else `<journal>.tokenkeys`.
    func path(_ options: JournalOptions) -> String { tokenKeys ?? tokenKeyPath(options.journal) }
}

extension JournalOptions {
    /// After keys were destroyed and recorded: an LMDB journal is compacted, so that no freed page of its
    /// file still holds them (`nil` for a PostgreSQL one, which this does not rewrite). A failure is exit 2,
    /// saying that what `done` says was done stands and the command may simply be run again.
    func compactAfterForgetting(_ done: String) throws -> LMDBStorage.Compaction? {
        guard !isShared else { return nil }
        do {
            return try LMDBStorage.compact(directory: journal)
        } catch {
            throw CommandExit.badInput("\(done), but compaction failed (run the command again): \(error)")
        }
    }
}
