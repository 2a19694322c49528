import ArgumentParser
import AuthCore
import AuthJournal
import Foundation
import LedgerCore
import LedgerJournal
import LedgerLMDB
import LedgerPostgres

/// `authledger-bench archive-growth`: the size of a journal under steady appends, without archiving and
/// with an archive after every round — LMDB reuses the pages archival frees, so the second stops growing
/// once a round's events fill the space the previous round's left. With `--store`, the same on
/// PostgreSQL: two scratch databases on that server, their size (`pg_total_relation_size`) after a plain
/// `VACUUM` each round (what autovacuum does), read with `psql`.
struct ArchiveGrowthBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive-growth", abstract: "data.mdb size under steady appends, without and with a regular archive.")

    @Option(help: ArgumentHelp("Scratch directory (removed afterwards).", valueName: "dir"))
    var scratch: String = NSTemporaryDirectory() + "authledger-archive-bench-\(getpid())"
    @Option(help: "Rounds of appends.") var rounds: Int = 8
    @Option(help: "Events appended per round (login failures through the server's recording path, addresses sealed).")
    var events: Int = 20_000
    @Option(help: ArgumentHelp("A PostgreSQL server (postgres://USER@HOST:PORT/DB) to measure on instead of LMDB.", valueName: "url"))
    var store: String?

    /// Runs `sql` with psql against `url`; its output, trimmed.
    private func psql(_ url: String, _ sql: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", url, "-tAqc", sql]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("psql failed: \(sql)") }
        return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A journal's storage and a way to measure its size: the data file, or the database's table.
    private func journal(_ directory: String, archiving: Bool) throws -> (any JournalStorage, () throws -> Int64) {
        var configuration = Journal.Configuration(keyBeside: directory + "/journal")
        configuration.projections = AuthLedger.projections
        guard let store else {
            let storage = try LMDBStorage(writingTo: directory + "/journal", for: configuration, initialMapSize: 1 << 30)
            return (storage, {
                let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/journal/data.mdb")
                return (attributes[.size] as? NSNumber)?.int64Value ?? 0
            })
        }
        var address = try PostgresAddress(url: store)
        address.database = "authledger_growth_\(archiving ? "archived" : "plain")_\(getpid())"
        _ = try psql(store, "CREATE DATABASE \(address.database)")
        let url = "postgres://\(address.user)@\(address.host):\(address.port)/\(address.database)"
        return (try PostgresStorage(address: address), {
            _ = try psql(url, "VACUUM authledger_entries")
            return Int64(try psql(url, "SELECT pg_total_relation_size('authledger_entries')")) ?? 0
        })
    }

    func run() async throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var sizes: [Bool: [(UInt64, Int64)]] = [:]
        var archiveSeconds: [Double] = []
        for archiving in [false, true] {
            let directory = scratch + (archiving ? "/archiving" : "/growing")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let (storage, size) = try journal(directory, archiving: archiving)
            let configuration = Journal.Configuration(keyBeside: directory + "/journal")
            let ledger = try await AuthLedger.open(configuration, storage: storage)
            ledger.dataKey = DataKey.generate()
            for round in 1...max(1, rounds) {
                try await LoginFailureLoad.append(to: ledger, events: events, perCommit: 200, writers: 16)
                if archiving {
                    // Everything but the newest commit goes; the archive itself is deleted here (it would be
                    // moved to cold storage).
                    let archive = directory + "/archive-\(round)"
                    let start = Date()
                    _ = try await ledger.archive(before: ledger.journal.head.sequence, to: try LMDBStorage(writingTo: archive, for: Journal.Configuration(keyBeside: archive)))
                    archiveSeconds.append(Date().timeIntervalSince(start))
                    try FileManager.default.removeItem(atPath: archive)
                }
                sizes[archiving, default: []].append((ledger.journal.head.sequence, try size()))
            }
            await ledger.journal.close()
        }
        let megabytes = { (bytes: Int64) in String(format: "%.1f MB", Double(bytes) / 1_048_576) }
        let what = store == nil ? "data.mdb" : "PostgreSQL table"
        print("Archive growth benchmark (\(store == nil ? "LMDB" : "PostgreSQL")): \(rounds) rounds of \(events) events (sealed login failures, 200 per commit)")
        print("")
        print("| after round | events appended | \(what), never archived | \(what), archived after every round |")
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
