import ArgumentParser
import AuthJournal
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerJournal
import LedgerLMDB
import LedgerPostgres

/// `authledger journal`: whole-journal operations.
struct JournalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal", abstract: "Move a journal between stores; rebuild a shared journal's projections.",
        subcommands: [Copy.self, RebuildProjections.self])

    struct RebuildProjections: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rebuild-projections",
            abstract: "Rebuild every projection from the events (a shared journal after an upgrade). Stop every server on it first.",
            discussion: """
                A server opening an LMDB journal rebuilds projections of another version itself. On a --store \
                journal it refuses, because servers still running would keep writing into projections being \
                rebuilt: stop them all, run this once, and start them with the new release.
                """)
        @OptionGroup var journalOptions: JournalOptions
        @OptionGroup var writerOptions: JournalWriterOptions

        func run() async throws {
            let rebuilt = try await writerOptions.withJournal(journalOptions, projections: AuthLedger.projections, failing: "rebuild") {
                try await ProjectionVersion.upgrade($0, allowOnSharedStorage: true)
            }
            printText(rebuilt ? "projections rebuilt from the events: version \(ProjectionVersion.current)" : "projections already at version \(ProjectionVersion.current)")
        }
    }

    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a journal, byte for byte, from one store to another (a directory or postgres://...).",
            discussion: """
                The source is verified first, and the copy after: every record, signature, checkpoint and \
                key-history entry is carried over exactly, so the copy verifies as the source does and \
                proofs made from either agree. The projections are copied too (authledger-replay rebuild \
                --check confirms them). The destination must hold no journal yet. The key files are not \
                part of a journal: copy <journal>.key and <journal>.tokenkeys yourself (mode 0600).
                """)

        @Option(help: ArgumentHelp("The journal to copy: a directory or postgres://USER@HOST:PORT/DATABASE.", valueName: "dir|url"))
        var from: String
        @Option(help: ArgumentHelp("Where to copy it: an empty (or missing) directory or database.", valueName: "dir|url"))
        var to: String

        func run() throws {
            let projections = AuthLedger.projections
            let source = try openReader(try Self.options(from), projections: projections)
            defer { source.close() }
            let before = try Self.verified(source, label: "source \(try Self.options(from).location)")
            let destination: any JournalStorage
            do {
                var configuration = Journal.Configuration(directory: try Self.options(to).journal)
                configuration.projections = projections
                destination = try Self.options(to).openStorage(writing: configuration)
            } catch {
                throw CommandExit.badInput("\(error)")
            }
            let report: JournalReader.CopyReport
            do {
                report = try source.copy(to: destination, projections: projections)
            } catch {
                destination.close()
                throw CommandExit.badInput("copy failed, nothing written: \(error)")
            }
            destination.close()
            let copy = try openReader(try Self.options(to), projections: projections)
            defer { copy.close() }
            let after = try Self.verified(copy, label: "copy \(try Self.options(to).location)")
            // The source may have grown since it was verified (a live journal): compare at the copied size.
            let sourceRoot = try source.read { try $0.rootHash(treeSize: report.head) }
            guard report.head >= before.eventCount, after.eventCount == report.head, after.rootHash == sourceRoot else {
                throw CommandExit.checkFailed("the copy differs from the source: \(after.eventCount) events, root \(after.rootHash.base64)")
            }
            printText("copied \(report.entries) entries: journal \(before.origin ?? "?") at #\(report.head), Merkle root \(after.rootHash.base64); the copy verifies")
        }

        private static func options(_ place: String) throws -> JournalOptions {
            try JournalOptions.parse(PostgresAddress.isURL(place) ? ["--store", place] : ["--journal", place])
        }

        private static func verified(_ reader: JournalReader, label: String) throws -> VerificationReport {
            switch try reader.verify(trust: .genesisKey) {
            case .success(let report): return report
            case .failure(let failure): throw CommandExit.checkFailed("\(label) does not verify: \(failure)")
            }
        }
    }
}
