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
        let reader = try openReader(journalOptions)
        defer { reader.close() }
        guard let range = try JournalPoint.range(from: nil, to: at, in: reader) else {
            let first = try reader.read { try $0.firstSequence }
            if first > 1 {
                throw CommandExit.badInput("that moment is before #\(first), in the journal's archive: run consent on the archive (--journal ARCHIVE)")
            }
            if format == .text { printText("\(user): no consents (the journal is empty at that moment)") }
            return
        }
        var consents: [String: (scopes: [String], since: UInt64)] = [:]
        var archivedThrough: UInt64 = 0
        do {
            try reader.read { snapshot in
                // After archival, the consents start as the archived events left them.
                archivedThrough = try snapshot.firstSequence - 1
                if range.upperBound > archivedThrough {
                    for (key, scopes) in try ArchivedState.consents(of: user, in: snapshot) { consents[key] = (scopes, archivedThrough) }
                }
                try snapshot.forEachEvent { envelope in
                    guard envelope.sequence <= range.upperBound else { return false }
                    guard let event = try AuthEvent(type: envelope.type, payload: envelope.payload, sequence: envelope.sequence) else { return true }
                    switch event {
                    case .consentGranted(let answer) where answer.userID == user:
                        let key = ConsentKey.make(clientID: answer.clientID, audience: answer.audience)
                        var scopes = consents[key]?.scopes ?? []
                        for scope in answer.scopes where !scopes.contains(scope) { scopes.append(scope) }
                        consents[key] = (scopes, envelope.sequence)
                    case .consentRevoked(let revoked) where revoked.userID == user:
                        for key in revoked.revokedKeys { consents[String(key.dropFirst(user.count + 1))] = nil }
                    default:
                        break
                    }
                    return true
                }
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
