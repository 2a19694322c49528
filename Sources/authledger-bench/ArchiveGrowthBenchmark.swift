import ArgumentParser
import AuthCore
import AuthJournal
import Foundation
import LedgerCore
import LedgerJournal
import LedgerLMDB

/// `authledger-bench archive-growth`: the size of an LMDB journal under steady appends, without archiving
/// and with an archive after every round — LMDB reuses the pages archival frees, so the second stops
/// growing once a round's events fill the space the previous round's left.
struct ArchiveGrowthBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive-growth", abstract: "data.mdb size under steady appends, without and with a regular archive.")

    @Option(help: ArgumentHelp("Scratch directory (removed afterwards).", valueName: "dir"))
    var scratch: String = NSTemporaryDirectory() + "authledger-archive-bench-\(getpid())"
    @Option(help: "Rounds of appends.") var rounds: Int = 8
    @Option(help: "Events appended per round (login failures through the server's recording path, addresses sealed).")
    var events: Int = 20_000

    func run() async throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var sizes: [Bool: [(UInt64, Int64)]] = [:]
        var archiveSeconds: [Double] = []
        for archiving in [false, true] {
            let directory = scratch + (archiving ? "/archiving" : "/growing")
            var configuration = Journal.Configuration(directory: directory + "/journal")
            configuration.initialMapSize = 1 << 30
            let ledger = try await AuthLedger.open(configuration)
            ledger.dataKey = DataKey.generate()
            for round in 1...max(1, rounds) {
                try await LoginFailureLoad.append(to: ledger, events: events, perCommit: 200, writers: 16)
                if archiving {
                    // Everything but the newest commit goes; the archive itself is deleted here (it would be
                    // moved to cold storage).
                    let archive = directory + "/archive-\(round)"
                    let start = Date()
                    _ = try await ledger.archive(before: ledger.journal.head.sequence, to: try LMDBStorage(writing: Journal.Configuration(directory: archive)))
                    archiveSeconds.append(Date().timeIntervalSince(start))
                    try FileManager.default.removeItem(atPath: archive)
                }
                let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/journal/data.mdb")
                sizes[archiving, default: []].append((ledger.journal.head.sequence, (attributes[.size] as? NSNumber)?.int64Value ?? 0))
            }
            await ledger.journal.close()
        }
        let megabytes = { (bytes: Int64) in String(format: "%.1f MB", Double(bytes) / 1_048_576) }
        print("Archive growth benchmark: \(rounds) rounds of \(events) events (sealed login failures, 200 per commit)")
        print("")
        print("| after round | events appended | data.mdb, never archived | data.mdb, archived after every round |")
        print("|---:|---:|---:|---:|")
        for index in 0..<max(1, rounds) {
            let (sequence, growing) = sizes[false]![index]
            let archived = sizes[true]![index].1
            print("| \(index + 1) | \(sequence) | \(megabytes(growing)) | \(megabytes(archived)) |")
        }
        let mean = archiveSeconds.reduce(0, +) / Double(max(1, archiveSeconds.count))
        print("")
        print(String(format: "Each archival (write and verify the archive, record the cut, remove %d events' bodies) took %.2f s on average.", events, mean))
    }
}
