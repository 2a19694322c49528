import ArgumentParser
import AuthCore
import AuthJournal
import Foundation
import LedgerCommandSupport
import LedgerJournal

/// `authledger-replay rebuild [--check]`: every projection rebuilt from the events alone.
struct RebuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Rebuild every projection from the events alone; with --check, compare with the live projections.",
        discussion: "Reads the journal in one read-only snapshot; a running server is not disturbed. Exits 1 when --check finds a difference.")

    @OptionGroup var journalOptions: JournalOptions
    @Flag(help: "Compare with the live projections and report every difference.") var check = false
    @Option(help: "Output format.") var format: OutputFormat = .text

    func run() async throws {
        let reader = try openReader(journalOptions, projections: AuthLedger.projections)
        defer { reader.close() }
        let rebuilt: ProjectionRebuild.Rebuilt
        let live: ProjectionRebuild.Tables
        let liveVersion: Int?
        do {
            let progress = ProgressLine("rebuilding from")
            if check {
                // One snapshot for the version, the fold and the live tables: a running server cannot make them differ.
                (rebuilt, live, liveVersion) = try ProjectionRebuild.rebuiltAndLive(from: reader, progress: progress.update)
            } else {
                (rebuilt, live, liveVersion) = (try ProjectionRebuild.rebuild(from: reader, progress: progress.update), [:], nil)
            }
            progress.finish()
        } catch {
            throw CommandExit.badInput("cannot read the journal: \(error)")
        }
        // Bytes of keys and values: what the projections hold, without the store's own overhead (with
        // --check, of the live ones too, which an earlier release may have written in another encoding).
        func size(_ entries: [String: [UInt8]]?) -> Int { entries?.reduce(0) { $0 + $1.key.utf8.count + $1.value.count } ?? 0 }
        for table in AuthTable.allCases {
            let count = rebuilt.count(of: table)
            let bytes = rebuilt.bytes(of: table)
            switch format {
            case .text:
                let live = check ? " (live: \(size(live[table])) bytes)" : ""
                printText("\(table.rawValue): \(count) entries, \(bytes) bytes\(live)")
            case .jsonl:
                var line: [String: Any] = ["table": table.rawValue, "entries": count, "bytes": bytes]
                if check { line["live_bytes"] = size(live[table]) }
                printJSONLine(line)
            }
        }
        guard check else { return }
        // Always compared, whatever the version says: a tampered projection must not hide behind a missing version.
        let differences = ProjectionRebuild.compare(rebuilt: rebuilt, live: live)
        for difference in differences {
            switch format {
            case .text: printText("difference: \(difference)")
            case .jsonl: printJSONLine(["table": difference.table.rawValue, "key": difference.key, "difference": difference.description])
            }
        }
        guard liveVersion == ProjectionVersion.current else {
            throw CommandExit.checkFailed(
                "\(differences.count) projection entries differ, and the live projections are "
                    + "\(liveVersion.map { "version \($0)" } ?? "of no recorded version (from before versions, or a rebuild that did not finish)"); "
                    + "this tool folds version \(ProjectionVersion.current). A server of this version rebuilds them when it next opens the journal; "
                    + "differences beyond what the version change explains are worth investigating first")
        }
        if differences.isEmpty {
            if format == .text { printText("live projections match the events") }
        } else {
            throw CommandExit.checkFailed("\(differences.count) projection entries differ from what the events give")
        }
    }
}
