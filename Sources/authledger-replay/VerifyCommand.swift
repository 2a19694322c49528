import ArgumentParser
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerJournal
import LedgerLMDB

/// `authledger-replay verify`: every signature, the hash chain, the Merkle tree and every checkpoint.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every signature, the hash chain, the Merkle tree and the signed checkpoints.",
        discussion: """
            Exits 0 when the journal verifies, 1 naming the first bad sequence number when it does not, \
            2 when the journal or an input file cannot be read. Without --public-key the journal's own \
            genesis key is trusted (trust on first use); with it, the journal's key chain must contain a \
            pinned key.
            """)

    @OptionGroup var journalOptions: JournalOptions

    @OptionGroup var pinnedKeys: PinnedKeyOptions

    @Option(help: ArgumentHelp("A checkpoint log witnessed outside the journal (`serve --checkpoint-log`).", valueName: "file"))
    var checkpoints: String?

    @Option(help: "Output format.") var format: OutputFormat = .text

    func run() async throws {
        let trust = try pinnedKeys.trust()
        var witnessed: [(SignedCheckpoint, String)] = []
        if let checkpoints {
            do {
                witnessed = try CheckpointLogFile(path: checkpoints).read().map { ($0, checkpoints) }
            } catch {
                throw CommandExit.badInput("cannot read checkpoint log \(checkpoints): \(error)")
            }
        }
        let reader = try openReader(journalOptions)
        defer { reader.close() }
        let result: Result<VerificationReport, VerificationFailure>
        do {
            let progress = ProgressLine("verifying")
            result = try reader.verify(trust: trust, witnessed: witnessed, progress: progress.update)
            progress.finish()
        } catch {
            throw CommandExit.badInput("cannot read journal: \(error)")
        }
        switch result {
        case .success(let report):
            switch format {
            case .text:
                printText("verified \(report.eventCount) events: signatures, hash chain, Merkle root \(report.rootHash.base64)")
                printText("checkpoints verified: \(report.checkpointsVerified) (\(witnessed.count) witnessed outside the journal)")
                printText("keys: \(report.keyIDs.map(\.hex).joined(separator: ", ")) (\(report.pinned ? "pinned" : "trusted on first use; pass --public-key to pin"))")
            case .jsonl:
                printJSONLine([
                    "ok": true, "events": report.eventCount, "root": report.rootHash.base64,
                    "checkpoints_verified": report.checkpointsVerified, "witnessed": witnessed.count,
                    "keys": report.keyIDs.map(\.hex), "pinned": report.pinned,
                ])
            }
        case .failure(let failure):
            if format == .jsonl {
                printJSONLine(["ok": false, "first_bad_sequence": failure.sequence, "reason": failure.description])
            }
            throw CommandExit.checkFailed("verification failed at \(failure)")
        }
    }
}
