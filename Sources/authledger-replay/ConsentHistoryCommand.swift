import ArgumentParser
import AuthCore
import AuthJournal
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerJournal

/// `authledger-replay consent --user ID [--at T]`: a user's consents as they stood at any moment.
struct ConsentHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consent", abstract: "A user's consent state at any past moment (by default: now).")

    @OptionGroup var journalOptions: JournalOptions
    @Option(help: "The user id.") var user: String
    @Option(help: "The moment: RFC 3339 or #sequence.") var at: String?
    @Option(help: "Output format.") var format: OutputFormat = .text

    func run() async throws {
        let reader = try openReader(journalOptions, projections: AuthLedger.projections)
        defer { reader.close() }
        guard let range = try JournalPoint.range(from: nil, to: at, in: reader) else {
            let first = try reader.read { try $0.firstSequence }
            if first > 1 {
                throw CommandExit.badInput("that moment is before #\(first), in the journal's archive: run consent on the archive (--journal ARCHIVE)")
            }
            if format == .text { printText("\(user): no consents (the journal is empty at that moment)") }
            return
        }
        // The user's consent events, found through the index and folded by the server's own projection code
        // (``JournalHistory``), from the archived state on.
        let consents: [String: ConsentAtMoment]
        let archivedThrough: UInt64
        do {
            (consents, archivedThrough) = try reader.read { snapshot in
                let history = try JournalHistory(snapshot: snapshot, dataKey: nil)
                return (try history.consents(of: user, through: range.upperBound), try snapshot.firstSequence - 1)
            }
        } catch {
            throw CommandExit.badInput("cannot read the journal: \(error)")
        }
        let moment = at ?? "now"
        if consents.isEmpty, format == .text { printText("\(user): no consents at \(moment)") }
        for (key, value) in consents.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
            let (client, audience) = (parts[0], parts.count > 1 ? parts[1] : "")
            switch format {
            case .text:
                let since: TerminalText = value.since == archivedThrough && archivedThrough > 0 ? "by #\(value.since), archived" : "since #\(value.since)"
                printText("\(user) → \(client)\(audience.isEmpty ? "" : " for \(audience)"): \(value.scopes.joined(separator: " ")) (\(since))")
            case .jsonl:
                printJSONLine(["user_id": user, "client_id": client, "audience": audience, "scopes": value.scopes, "since_sequence": value.since, "at": moment])
            }
        }
    }
}
