import ArgumentParser
import AuthCore
import AuthJournal
import LedgerCommandSupport

struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant", abstract: "Apply tenant files.", subcommands: [Apply.self])

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append the configuration changes a tenant file makes (none if it is already in force).",
            discussion: "Passwords and client secrets are hashed with Argon2id before they reach an event. The server must be stopped.")

        @OptionGroup var journalOptions: JournalOptions
        @OptionGroup var writerOptions: JournalWriterOptions
        @OptionGroup var dataKeyOptions: DataKeyOptions
        @Argument(help: ArgumentHelp("Tenant file, YAML (.yaml, .yml) or JSON (.json).", valueName: "file")) var file: String
        @Option(help: "Output format.") var format: OutputFormat = .text

        func run() async throws {
            let configuration: TenantConfiguration
            do {
                configuration = try TenantFile.load(path: file)
            } catch {
                throw CommandExit.badInput("\(error)")
            }
            let ledger = try await writerOptions.openAuthLedger(journalOptions)
            let events: [ConfigurationEvent]
            do {
                // Email addresses are sealed with the journal's data key (made here for a new journal).
                ledger.dataKey = try dataKeyOptions.journalDataKey(
                    for: ledger, journalOptions, joiningSharedJournal: journalOptions.isShared && ledger.configuration.settings != nil)
                events = try await ledger.applyTenant(configuration, hasher: Argon2idHasher.interactive)
            } catch {
                await ledger.journal.close()
                throw CommandExit.badInput("\(error)")
            }
            await ledger.journal.close()
            switch format {
            case .text:
                printText("\(events.count) configuration changes appended")
                for event in events { printText("  \(event.eventType)") }
            case .jsonl:
                for event in events { printJSONLine(["event": event.eventType.name]) }
                printJSONLine(["changes": events.count])
            }
        }
    }
}
