import ArgumentParser
import AuthJournal
import LedgerCommandSupport
import LedgerJournal
import LedgerLMDB

extension JournalWriterOptions {
    /// Opens the journal with the authorization server's projections (rebuilt first when they are of
    /// another version), turning failure into exit 2.
    func openAuthLedger(_ options: JournalOptions) async throws -> AuthLedger {
        let configuration = configuration(options, projections: AuthLedger.projections)
        do {
            return try await AuthLedger.open(configuration, storage: try options.openStorage(writing: configuration))
        } catch {
            throw CommandExit.badInput("\(error)")
        }
    }
}

/// Where the token signing keys live: `<journal>.tokenkeys`, beside the journal.
func tokenKeyPath(_ journal: String) -> String {
    (journal.hasSuffix("/") ? String(journal.dropLast()) : journal) + ".tokenkeys"
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
