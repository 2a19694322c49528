import ArgumentParser
import AuthJournal
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerJournal
import LedgerLMDB

/// `authledger-bench fill`: appends generated authorization events to an existing journal, through the
/// server's own recording path and many events per commit, to make a large journal quickly — for the
/// open-time benchmark (`tools/bench open`), which then times `authledger serve` on it.
///
/// The journal must already hold a tenant (start `authledger serve` on it once, or `authledger tenant
/// apply`), and no server may be running on it (a journal has one writer).
struct FillJournal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fill",
        abstract: "Append generated events (login failures) to a journal through the server's recording path, many per commit.",
        discussion: "Disk use: about 650 bytes per event (10,000,000 events: about 6.3 GB); have 1 KB per event free. Stop the server first.")

    @Option(help: ArgumentHelp("The journal directory (holding a tenant already).", valueName: "dir")) var journal: String
    @Option(help: "Events to append.") var events: Int = 10_000_000
    @Option(help: "Events per record call (one transaction; concurrent calls share a commit).") var perCommit: Int = 200
    @Option(help: "Concurrent recording tasks.") var writers: Int = 16
    @Option(help: "Output format (jsonl: one JSON object at the end).") var format: OutputFormat = .text

    func run() async throws {
        let dataFile = journal + "/data.mdb"
        guard FileManager.default.fileExists(atPath: dataFile) else {
            throw BenchError("\(journal) holds no journal: start `authledger serve --journal \(journal)` on it once first")
        }
        let configuration = Journal.Configuration(keyBeside: journal)
        // Room for the whole run at once (it doubles when full anyway); LMDB only reserves address space.
        let ledger = try await AuthLedger.open(configuration, storage: try LMDBStorage(
            writingTo: journal, for: AuthLedger.withProjections(configuration), initialMapSize: max(1 << 30, events &* 2048)))
        // The failures' addresses are sealed with the journal's data key, as the server seals them.
        ledger.dataKey = try JournalDataKeyFile(journal: journal).loadOrCreate()
        guard ledger.configuration.settings != nil else {
            await ledger.journal.close()
            throw BenchError("\(journal) holds no tenant: start `authledger serve --journal \(journal)` on it once first")
        }
        let before = ledger.journal.head.sequence
        let start = Date()
        let step = max(events / 20, 1)
        let progress: @Sendable (Int) -> Void = { done in
            // Roughly every 5%: the count crosses a multiple of `step` on one call only.
            if done / step != (done - min(done, perCommit)) / step {
                let elapsed = Date().timeIntervalSince(start)
                FileHandle.standardError.write(
                    Data(String(format: "fill: %d of %d events, %.0f s, %.0f events/s\n", done, events, elapsed, Double(done) / elapsed).utf8))
            }
        }
        do {
            try await LoginFailureLoad.append(to: ledger, events: events, perCommit: perCommit, writers: writers, progress: progress)
        } catch {
            await ledger.journal.close()
            throw error
        }
        let after = ledger.journal.head.sequence
        let statistics = ledger.journal.statistics
        await ledger.journal.close()
        let elapsed = Date().timeIntervalSince(start)
        let appended = Int(after - before)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: dataFile)[.size] as? Int) ?? 0
        let perBatch = Double(statistics.requestsCommitted) / Double(max(1, statistics.batchesCommitted))
        switch format {
        case .jsonl:
            printJSONLine([
                "measure": "fill", "journal": journal, "appended": appended, "head": Int(after), "seconds": elapsed,
                "events_per_second": Double(appended) / elapsed, "data_bytes": bytes, "record_calls_per_commit": perBatch,
            ])
        case .text:
            print(String(format: "appended %d events in %.1f s (%.0f events/s, %.1f record calls per commit); journal at #%d, data.mdb %d bytes",
                         appended, elapsed, Double(appended) / elapsed, perBatch, after, bytes))
        }
    }
}
