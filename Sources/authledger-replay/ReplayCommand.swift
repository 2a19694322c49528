import ArgumentParser
import LedgerCommandSupport

@main
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authledger-replay",
        abstract: "Forensics over an AuthLedger journal: verify it, and reconstruct what it records.",
        subcommands: [
            VerifyCommand.self, RebuildCommand.self, ExplainCommand.self, ReplayDecisionsCommand.self, ExportCommand.self,
            ConsentHistoryCommand.self, TimelineCommand.self, TailCommand.self, ReportCommand.self, ConsoleCommand.self,
        ]
    )

    /// Usage errors exit 2 with a one-line reason (SPEC.md), not swift-argument-parser's 64.
    static func main() async { await mainWithUsageErrorsAsTwo() }
}
