import ArgumentParser
import AuthCore
import AuthJournal
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerLMDB

/// `authledger subject`: data subjects' rights over the journal.
struct SubjectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subject", abstract: "Data subjects: erase a user's personal data.", subcommands: [Erase.self])

    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Erase a user's personal data: destroy the key it is sealed under, and record privacy.subject.erased.",
            discussion: """
                Every personal value sealed under the user's key (addresses, user agents, login names typed for the \
                account) is unreadable from then on: tools show [erased]. Every event still verifies, rebuilds and \
                replays. On LMDB the journal is then compacted, so that no freed page of data.mdb still holds the key \
                (stop the server first: a journal has one writer at a time). Backups and filesystem snapshots taken \
                before still hold it. Erasing twice is harmless. Email addresses in the configuration events are not \
                sealed yet, and so not erased by this.
                """)

        @OptionGroup var journalOptions: JournalOptions
        @OptionGroup var writerOptions: JournalWriterOptions
        @Option(help: "The user id (e.g. auth0|alice).") var user: String
        @Option(help: "Why (recorded in the event; no personal data here).") var reason: String?
        @Option(help: "Output format.") var format: OutputFormat = .text

        func run() async throws {
            guard !user.isEmpty, user.utf8.count <= 200 else { throw CommandExit.badInput("--user must be a user id of at most 200 bytes") }
            let erased = try await writerOptions.withAuthLedger(journalOptions, failing: "erasure (nothing changed)") {
                try await $0.eraseSubject(userID: user, reason: reason)
            }
            let compacted = try journalOptions.compactAfterForgetting("the key is destroyed and the erasure recorded")
            switch format {
            case .text:
                printText("erased \(erased.subject): \(erased.keysDestroyed) key destroyed; privacy.subject.erased recorded")
                if let compacted { printText("data.mdb compacted: \(compacted.bytesBefore) -> \(compacted.bytesAfter) bytes") }
            case .jsonl:
                printJSONLine([
                    "subject": erased.subject, "user_id": erased.userID, "keys_destroyed": erased.keysDestroyed,
                    "compacted": compacted != nil,
                ])
            }
        }
    }
}
