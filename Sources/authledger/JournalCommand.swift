import ArgumentParser
import AuthCore
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
        commandName: "journal",
        abstract: "Move a journal between stores; archive its oldest events; rebuild a shared journal's projections; prune expired entries.",
        subcommands: [Copy.self, Archive.self, RebuildProjections.self, Prune.self, Retention.self])

    struct Archive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move the events before a time or #N into a verifiable archive, and remove them from the journal.",
            discussion: """
                The archive (an empty or missing directory) is a journal of its own holding the events up to the last \
                signed checkpoint before --before, with their checkpoints, Merkle nodes and key history; it is written \
                and verified first. The journal then records the cut (ledger.archived) and keeps what verification \
                needs to go on from it: the verified state there, the signed checkpoint at the cut, the Merkle frontier, \
                the key history, and the projections as the archived events left them. Its projections are untouched \
                (consent given before the cut is still consent); a server may keep running. authledger-replay verify \
                --archive DIR verifies archive and journal as one history. The archive holds personal data sealed, as \
                the journal did; the subjects' keys stay in the journal, so erasure still reaches it.
                """)
        @OptionGroup var journalOptions: JournalOptions
        @OptionGroup var writerOptions: JournalWriterOptions
        @Option(help: ArgumentHelp("Archive the events before this time (RFC 3339) or #sequence.", valueName: "T")) var before: String
        @Option(help: ArgumentHelp("The archive to write: an empty or missing directory.", valueName: "dir")) var out: String
        @Option(help: "Output format.") var format: OutputFormat = .text

        func run() async throws {
            guard let point = JournalPoint(before) else { throw CommandExit.badInput("--before \(before) is neither RFC 3339 nor #N") }
            if let entries = try? FileManager.default.contentsOfDirectory(atPath: out), !entries.isEmpty {
                throw CommandExit.badInput("\(out) is not empty: write an archive into an empty or missing directory")
            }
            let summary = try await writerOptions.withAuthLedger(journalOptions, failing: "archival") { ledger in
                let sequence: UInt64 =
                    switch point {
                    case .sequence(let sequence): sequence
                    case .time(let time): try ledger.journal.read { try $0.firstSequence(atOrAfter: time) }
                    }
                return try await ledger.archive(before: sequence, to: try LMDBStorage(writingTo: out, for: Journal.Configuration(keyBeside: out)))
            }
            switch format {
            case .text:
                printText("archived events #\(summary.first)…#\(summary.through) to \(out) (verified); the journal records the cut at #\(summary.recordedAt) and verifies from it")
                printText("\(summary.removed) entries removed from the journal; LMDB reuses their pages")
            case .jsonl:
                printJSONLine([
                    "first": summary.first, "through": summary.through, "recorded_at": summary.recordedAt, "removed": summary.removed, "archive": out,
                ])
            }
        }
    }

    struct Retention: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the tenant's retention period to personal data.", subcommands: [Apply.self])

        struct Apply: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Forget the personal data of anonymous subjects older than retention.personal_data_days.",
                discussion: """
                    Destroys the keys of the anonymous subjects (one per day: the addresses and user agents of requests \
                    without a session, of failed logins for unknown names, of refused token requests) of the days past the \
                    period, and records privacy.retention.applied with how many, in one commit. On LMDB the journal is then \
                    compacted (stop the server first). A running server does this by itself every hour, without compacting.
                    """)
            @OptionGroup var journalOptions: JournalOptions
            @OptionGroup var writerOptions: JournalWriterOptions
            @Flag(name: .customLong("dry-run"), help: "Only say what would be forgotten.") var dryRun = false
            @Option(help: "Output format.") var format: OutputFormat = .text

            func run() async throws {
                let report = try await writerOptions.withAuthLedger(journalOptions, failing: "retention (nothing forgotten)") {
                    try await $0.applyRetention(now: Journal.systemClock(), dryRun: dryRun)
                }
                if !dryRun, !report.subjects.isEmpty {
                    _ = try journalOptions.compactAfterForgetting("the keys are destroyed and recorded")
                }
                switch format {
                case .text:
                    guard let before = report.before else {
                        printText("no retention period is set (tenant file: retention.personal_data_days)")
                        return
                    }
                    printText("\(report.subjects.count) anonymous subjects before \(before) \(dryRun ? "would be" : "were") forgotten")
                case .jsonl:
                    printJSONLine(["dry_run": dryRun, "before": report.before ?? "", "subjects_forgotten": report.subjects.count])
                }
            }
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove expired entries from the projections (codes, sessions, interactions, tokens, refresh tokens, DPoP proofs, failed logins).",
            discussion: """
                Each commit removes at most 1,000 entries of one table and is recorded as one \
                auth.projections.pruned event naming the table, the key range and the time, so that a rebuild \
                removes the same entries. A running server does this every hour by itself; this command is for a \
                journal without one, or to see what would go (--dry-run). Safe beside running servers.
                """)
        @OptionGroup var journalOptions: JournalOptions
        @OptionGroup var writerOptions: JournalWriterOptions
        @Flag(name: .customLong("dry-run"), help: "Only count the expired entries; change nothing.") var dryRun = false
        @Option(help: "Output format.") var format: OutputFormat = .text

        func run() async throws {
            let report = try await writerOptions.withAuthLedger(journalOptions, failing: "pruning") {
                try await $0.pruneProjections(now: Journal.systemClock(), dryRun: dryRun)
            }
            let counts = ProjectionPruning.tables.map { ($0.rawValue, report.removed[$0] ?? 0) }
            switch format {
            case .text:
                for (table, count) in counts where count > 0 { printText("\(table): \(count) expired entries") }
                printText(dryRun ? "\(report.total) expired entries would be pruned" : "\(report.total) expired entries pruned in \(report.events) commits")
            case .jsonl:
                printJSONLine(["dry_run": dryRun, "events": report.events, "removed": Dictionary(uniqueKeysWithValues: counts)])
            }
        }
    }

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
                part of a journal: copy <journal>.key, <journal>.tokenkeys and <journal>.datakey yourself (mode 0600; \
                without the data key, the sealed personal data of the copy cannot be read, and its server will not start).
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
                var configuration = Journal.Configuration(keyBeside: try Self.options(to).journal)
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
