import ArgumentParser
import Dispatch
import Foundation
import LedgerCommandSupport
import LedgerLMDB
import Synchronization

/// `authledger serve`: opens the journal and runs until interrupted.
///
/// The HTTP endpoints (`/authorize`, `/oauth/token`, ...) are not built yet; for now the command opens
/// (or creates) the journal with its signing key and checkpoint witness, and closes it cleanly, with a
/// final checkpoint, on SIGINT or SIGTERM.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Open the journal and serve (HTTP endpoints are not implemented yet).")

    @OptionGroup var journalOptions: JournalOptions

    @Option(help: "Address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "Port to listen on.") var port: Int = 8080
    @Option(help: ArgumentHelp("Tenant file to apply at start (not implemented yet).", valueName: "file"))
    var tenant: String?
    @Option(help: ArgumentHelp("Issuer URL.", valueName: "url")) var issuer: String?
    @OptionGroup var writerOptions: JournalWriterOptions

    func run() async throws {
        if tenant != nil {
            throw CommandExit.badInput("--tenant is not implemented yet (tenant files arrive with the /authorize issue)")
        }
        let journal = try writerOptions.openJournal(journalOptions.journal)
        let checkpoint = try await journal.checkpoint()
        print("authledger: journal \(journalOptions.journal) open at #\(journal.head.sequence), key \(journal.activeKeyID)")
        print("authledger: checkpoint \(checkpoint.checkpoint.treeSize) root \(checkpoint.checkpoint.rootHash.base64)")
        print("authledger: HTTP endpoints are not implemented yet; press Ctrl-C to stop")
        await waitForTerminationSignal()
        await journal.close()
        print("authledger: journal closed at #\(journal.head.sequence)")
    }

    /// Suspends until SIGINT or SIGTERM arrives.
    private func waitForTerminationSignal() async {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumed = Mutex(false)
            let sources = [SIGINT, SIGTERM].map { DispatchSource.makeSignalSource(signal: $0, queue: .global()) }
            for source in sources {
                source.setEventHandler {
                    let first = resumed.withLock { done in
                        defer { done = true }
                        return !done
                    }
                    if first { continuation.resume() }
                }
                source.resume()
            }
            activeSignalSources = sources
        }
    }
}

/// Signal sources must outlive the call that installs them.
nonisolated(unsafe) private var activeSignalSources: [any DispatchSourceSignal] = []
