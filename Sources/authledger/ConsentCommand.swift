import ArgumentParser
import AuthCore
import AuthJournal
import LedgerCommandSupport
import LedgerCore

struct ConsentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consent", abstract: "Manage users' consents.", subcommands: [Revoke.self])

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Withdraw a user's consent for a client (for one audience, or all); the next authorization asks again.",
            discussion: "The server must be stopped: a journal has one writer at a time.")

        @OptionGroup var journalOptions: JournalOptions
        @OptionGroup var writerOptions: JournalWriterOptions
        @Option(help: "The user id.") var user: String
        @Option(help: "The client id.") var client: String
        @Option(help: "Only this audience (default: every audience).") var audience: String?

        func run() async throws {
            let ledger = try await writerOptions.openAuthLedger(journalOptions)
            let prefix = "\(user)\u{1F}\(client)\u{1F}"
            let keys: [String]
            let families: [String]
            do {
                (keys, families) = try ledger.read { store in
                    let keys = try store.entries(.consents, prefix: prefix).map(\.0).filter { key in
                        audience.map { key == AuthProjection.consentKey(userID: user, clientID: client, audience: $0) } ?? true
                    }
                    // Refresh tokens granted under that consent stop working too.
                    var families: Set<String> = []
                    for (_, value) in try store.entries(.refreshTokens, prefix: "") {
                        let record = try ProjectionCoding.decode(RefreshRecord.self, from: value)
                        let issued = record.issued
                        guard issued.userID == user, issued.clientID == client, audience == nil || issued.audience == audience,
                            try !store.isFamilyRevoked(issued.family)
                        else { continue }
                        families.insert(issued.family)
                    }
                    return (keys, families.sorted())
                }
            } catch {
                await ledger.journal.close()
                throw CommandExit.badInput("cannot read consents: \(error)")
            }
            guard !keys.isEmpty else {
                await ledger.journal.close()
                throw CommandExit.badInput("user \(user) has no consent for client \(client)\(audience.map { " and audience \($0)" } ?? "")")
            }
            let event = ConsentRevoked(userID: user, clientID: client, audience: audience, revokedKeys: keys)
            let clientID = client
            do {
                try await ledger.record { recorder in
                    try recorder.append(.consentRevoked(event))
                    for family in families {
                        try recorder.append(
                            .refreshFamilyRevoked(RefreshFamilyRevoked(family: family, reason: .revocation, presentedHash: nil, clientID: clientID)))
                    }
                }
            } catch {
                await ledger.journal.close()
                throw CommandExit.badInput("cannot record the revocation: \(error)")
            }
            await ledger.journal.close()
            printText("revoked \(keys.count) consent\(keys.count == 1 ? "" : "s") of \(user) for \(client), and \(families.count) refresh token famil\(families.count == 1 ? "y" : "ies")")
        }
    }
}
