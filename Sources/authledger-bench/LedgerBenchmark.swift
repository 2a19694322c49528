import ArgumentParser
import Foundation
import LedgerCommandSupport
import LedgerJournal
import LedgerLMDB

/// `authledger-bench ledger`: durable group-committed append throughput beside the raw baselines.
struct LedgerBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Durable append throughput with 1, 8 and 64 appenders, beside raw signing and one-fsync-per-event LMDB rates.")

    @Option(help: ArgumentHelp("Scratch directory (removed afterwards).", valueName: "dir"))
    var scratch: String = NSTemporaryDirectory() + "authledger-bench-\(getpid())"
    @Option(help: "Seconds per measurement.") var seconds: Double = 3
    @Option(help: "Comma-separated appender counts.") var appenders: String = "1,8,64"
    @Option(help: ArgumentHelp(
        "Measure the most appenders again with the writer at this nice value (Journal.Configuration.writerNiceValue; the process must be allowed to take it). 0: no such row.",
        valueName: "nice")) var writerNice: Int32 = -20
    @Option(help: "Payload bytes per event.") var payloadSize: Int = 200
    @Option(help: "Output format.") var format: OutputFormat = .text
    @Flag(inversion: .prefixedNo, help: "Measure the raw baselines (turn off only to profile the journal alone).")
    var baselines = true

    func run() async throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)

        let signAll = baselines ? try Baselines.signingRate(threads: cores, seconds: seconds) : .nan
        let signOne = baselines ? try Baselines.signingRate(threads: 1, seconds: seconds) : .nan
        let fsyncRate = baselines ? try Baselines.oneFsyncPerEventRate(directory: scratch + "/baseline", seconds: seconds) : .nan

        var rows: [(String, Double, Double)] = []
        var runs = appenders.split(separator: ",").compactMap { Int($0) }.map { (appenders: $0, nice: Int32(0)) }
        if writerNice != 0, let most = runs.map(\.appenders).max() { runs.append((most, writerNice)) }
        for (count, nice) in runs {
            let rate = try await measureAppends(appenders: count, writerNice: nice, directory: scratch + "/journal-\(count)-\(nice)")
            rows.append(("\(count) appenders" + (nice == 0 ? "" : ", writer at nice \(nice)"), rate.rate, rate.meanBatch))
            if format == .jsonl {
                printJSONLine([
                    "measure": "durable_appends", "appenders": count, "writer_nice": Int(nice), "events_per_second": rate.rate,
                    "ratio_to_signing_all_cores": rate.rate / signAll, "ratio_to_one_fsync_per_event": rate.rate / fsyncRate,
                    "mean_batch": rate.meanBatch,
                ])
            }
        }
        switch format {
        case .jsonl:
            printJSONLine([
                "measure": "baselines", "cores": cores, "sign_all_cores_per_second": signAll,
                "sign_one_core_per_second": signOne, "lmdb_one_fsync_per_event_per_second": fsyncRate,
            ])
        case .text:
            print("Ledger benchmark: \(cores) cores, \(seconds) s per measurement, \(payloadSize)-byte payloads")
            print("")
            print("| measurement | rate (/s) | vs raw signing, all cores | vs one fsync per event | events per commit |")
            print("|---|---:|---:|---:|---:|")
            if baselines {
                print(row("raw Ed25519 signing, 1 core", signOne, signAll, fsyncRate))
                print(row("raw Ed25519 signing, all cores", signAll, signAll, fsyncRate))
                print(row("raw LMDB, one fsync per event", fsyncRate, signAll, fsyncRate, batch: 1))
            }
            for (name, rate, batch) in rows {
                print(row("journal, durable appends, \(name)", rate, signAll, fsyncRate, batch: batch))
            }
        }
    }

    private func row(_ name: String, _ rate: Double, _ signAll: Double, _ fsyncRate: Double, batch: Double? = nil) -> String {
        func ratio(_ value: Double, _ digits: Int) -> String { value.isFinite ? String(format: "%.\(digits)f", value) : "–" }
        return "| \(name) | \(Int(rate.rounded())) | \(ratio(rate / signAll, 2)) | \(ratio(rate / fsyncRate, 1)) | \(batch.map { ratio($0, 1) } ?? "") |"
    }

    private func measureAppends(appenders: Int, writerNice: Int32, directory: String) async throws -> (rate: Double, meanBatch: Double) {
        var configuration = Journal.Configuration(keyBeside: directory)
        configuration.writerNiceValue = writerNice
        let journal = try Journal.open(directory: directory, configuration, initialMapSize: 1 << 30)
        let payload = Array(repeating: UInt8(ascii: "x"), count: payloadSize)
        let draft = EventDraft(type: "bench.event", payload: payload)
        let before = journal.statistics
        let start = Date()
        let deadline = start.addingTimeInterval(seconds)
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<appenders {
                group.addTask {
                    var done = 0
                    while Date() < deadline {
                        try await journal.append(draft)
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = Date().timeIntervalSince(start)
        let after = journal.statistics
        await journal.close()
        let batches = max(1, after.batchesCommitted - before.batchesCommitted)
        return (Double(total) / elapsed, Double(after.requestsCommitted - before.requestsCommitted) / Double(batches))
    }
}
