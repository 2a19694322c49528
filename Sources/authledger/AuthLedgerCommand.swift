import ArgumentParser
import LedgerCommandSupport

@main
struct AuthLedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authledger",
        abstract: "AuthLedger: an OAuth 2.0 / OpenID Connect server whose every decision is a signed journal event.",
        subcommands: [ServeCommand.self, TenantCommand.self, KeysCommand.self, ConsentCommand.self, SubjectCommand.self, JournalCommand.self]
    )

    /// Usage errors exit 2 with a one-line reason (SPEC.md), not swift-argument-parser's 64.
    static func main() async { await mainWithUsageErrorsAsTwo() }
}
