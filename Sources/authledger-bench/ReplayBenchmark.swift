import ArgumentParser
import AuthCore
import AuthJournal
import CSodium
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerJournal
import LedgerLMDB

/// `authledger-bench replay`: full verification and projection rebuild over a journal of authorization
/// events, beside the raw libsodium verify rate of all cores measured in the same run.
struct ReplayBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay", abstract: "verify and rebuild throughput over a generated journal, beside the raw verify rate.")

    @Option(help: ArgumentHelp("Scratch directory (removed afterwards).", valueName: "dir"))
    var scratch: String = NSTemporaryDirectory() + "authledger-replay-bench-\(getpid())"
    @Option(help: "Events in the generated journal.") var events: Int = 1_000_000
    @Option(help: "Seconds for the raw verify baseline.") var seconds: Double = 3
    @Option(help: ArgumentHelp(
        "Measure this journal, generating it there first (and keeping it) when the directory holds none, so that runs compare on one journal.",
        valueName: "dir")) var journal: String?

    func run() async throws {
        let directory = journal ?? scratch + "/journal"
        defer { if journal == nil { try? FileManager.default.removeItem(atPath: scratch) } }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let rawVerify = try Baselines.verifyRate(threads: cores, seconds: seconds)

        var generationRate: Double?
        if !FileManager.default.fileExists(atPath: directory + "/data.mdb") {
            // A journal of login failures (indexed by user and address, their addresses sealed), written
            // through the authorization server's own recording path, many events per commit.
            let configuration = Journal.Configuration(keyBeside: directory)
            let ledger = try await AuthLedger.open(configuration, storage: try LMDBStorage(
                writingTo: directory, for: AuthLedger.withProjections(configuration), initialMapSize: 4 << 30))
            ledger.dataKey = DataKey.generate()  // the failures' addresses are sealed, as the server seals them
            let generation = Date()
            try await LoginFailureLoad.append(to: ledger, events: events, perCommit: 200, writers: 16)
            generationRate = Double(ledger.journal.head.sequence) / Date().timeIntervalSince(generation)
            await ledger.journal.close()
        }

        let reader = try JournalReader(directory: directory, projections: AuthLedger.projections)
        let written = Int(try reader.read { try $0.head.sequence })
        var start = Date()
        guard case .success = try reader.verify(trust: .genesisKey) else { throw BenchError("the journal does not verify") }
        let verifyRate = Double(written) / Date().timeIntervalSince(start)
        start = Date()
        _ = try ProjectionRebuild.rebuild(from: reader)
        let rebuildRate = Double(written) / Date().timeIntervalSince(start)
        reader.close()

        print("Replay benchmark: \(cores) cores, \(written) events")
        print("")
        print("| measurement | events/s | vs raw verify, all cores |")
        print("|---|---:|---:|")
        print("| raw Ed25519 verify, all cores | \(Int(rawVerify)) | 1.00 |")
        print("| authledger-replay verify (signatures, chain, Merkle, checkpoints) | \(Int(verifyRate)) | \(String(format: "%.2f", verifyRate / rawVerify)) |")
        print("| authledger-replay rebuild (every projection, no signature checks) | \(Int(rebuildRate)) | – |")
        if let generationRate {
            print("| (generating the journal through the server's recording path) | \(Int(generationRate)) | – |")
        }
    }
}

extension Baselines {
    /// Ed25519 verifications per second over a 256-byte message, on `threads` threads.
    static func verifyRate(threads: Int, seconds: Double) throws -> Double {
        _ = sodium_init()
        var publicKey = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var secretKey = [UInt8](repeating: 0, count: Int(crypto_sign_SECRETKEYBYTES))
        crypto_sign_keypair(&publicKey, &secretKey)
        let message = [UInt8](repeating: 7, count: 256)
        var signature = [UInt8](repeating: 0, count: Int(crypto_sign_BYTES))
        crypto_sign_detached(&signature, nil, message, UInt64(message.count), secretKey)
        let (key, signed) = (publicKey, signature)
        return try rate(threads: threads, seconds: seconds, batch: 64) { _ in
            { _ = crypto_sign_verify_detached(signed, message, UInt64(message.count), key) }
        }
    }
}
