import ArgumentParser
import AuthJournal
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerJournal

/// `authledger-replay verify`: every signature, the hash chain, the Merkle tree and every checkpoint.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every signature, the hash chain, the Merkle tree and the signed checkpoints.",
        discussion: """
            Exits 0 when the journal verifies, 1 naming the first bad sequence number when it does not, \
            2 when the journal or an input file cannot be read. Without --public-key the journal's own \
            genesis key is trusted (trust on first use); with it, the journal's key chain must contain a \
            pinned key. With --archive (oldest first, repeatable), each archive written by `authledger journal \
            archive` is verified too, and archives and journal must be one history: each one continues exactly \
            where the one before it ends, and the projections the journal kept at the cut are the ones the \
            archived events give.
            """)

    @OptionGroup var journalOptions: JournalOptions

    @OptionGroup var pinnedKeys: PinnedKeyOptions

    @Option(help: ArgumentHelp("A checkpoint log witnessed outside the journal (`serve --checkpoint-log`).", valueName: "file"))
    var checkpoints: String?

    @Option(
        name: .customLong("archive"),
        help: ArgumentHelp("An archive of this journal's oldest events (`authledger journal archive`); repeat, oldest first.", valueName: "dir"))
    var archives: [String] = []

    @Option(help: "Output format.") var format: OutputFormat = .text

    /// Verifies the archives in order, each continuing the one before; returns the state the last one ends
    /// in (`nil` without archives) and the projections it leaves.
    private func verifyArchives(trust: JournalVerifier.Trust) throws -> (VerifiedPrefix, ArchivedProjections.Tables)? {
        var previous: (VerifiedPrefix, ArchivedProjections.Tables)?
        for directory in archives {
            let reader = try openReader(try JournalOptions.parse(["--journal", directory]), projections: [])
            defer { reader.close() }
            let starts = try reader.read { try $0.archivedPrefix }
            guard starts == previous?.0 else {
                let after = starts?.size ?? 0
                throw CommandExit.checkFailed(
                    previous == nil
                        ? "archive \(directory) starts after #\(after): give the archives before it too, oldest first"
                        : "archive \(directory) does not continue the archive before it (\(VerificationFailure(sequence: after + 1, problem: .archiveMismatch)))")
            }
            switch try reader.verify(trust: trust, continued: true) {
            case .success(let report):
                guard let prefix = report.prefix else { throw CommandExit.checkFailed("archive \(directory) holds no events") }
                previous = (prefix, try ArchivedState.projections(after: reader))
                printText("archive \(directory): verified events #\(report.archivedBefore)…#\(report.eventCount)")
            case .failure(let failure):
                throw CommandExit.checkFailed("archive \(directory): verification failed at \(failure)")
            }
        }
        return previous
    }

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
        let archived = try verifyArchives(trust: trust)
        let reader = try openReader(journalOptions)
        defer { reader.close() }
        let prefix = try reader.read { try $0.archivedPrefix }
        if let archived {
            guard prefix == archived.0 else {
                throw CommandExit.checkFailed(
                    "the journal does not continue its archives: \(VerificationFailure(sequence: (prefix?.size ?? 0) + 1, problem: .archiveMismatch))")
            }
            // Compared as values: the journal kept them as the release that archived wrote them.
            let kept = ArchivedProjections.canonical(try ArchivedState.stored(in: reader))
            guard ArchivedProjections.digest(kept) == ArchivedProjections.digest(ArchivedProjections.canonical(archived.1)) else {
                throw CommandExit.checkFailed("the projections the journal kept at the cut #\(archived.0.size) are not the ones its archived events give")
            }
        }
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
                if report.archivedBefore > 1 {
                    let how = archives.isEmpty ? "archived (verify them with --archive)" : "in the archives, verified above as one history with it"
                    printText("events #1…#\(report.archivedBefore - 1) are \(how); verifying from the signed checkpoint at #\(report.archivedBefore - 1)")
                }
                let events: TerminalText = report.archivedBefore > 1 ? "events #\(report.archivedBefore)…#\(report.eventCount)" : "\(report.eventCount) events"
                printText("verified \(events): signatures, hash chain, Merkle root \(report.rootHash.base64)")
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
