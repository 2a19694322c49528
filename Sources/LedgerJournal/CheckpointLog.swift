import Foundation
import LedgerCore

/// Somewhere outside the journal that keeps every signed checkpoint, so that truncating or rolling
/// back the journal cannot go unnoticed.
public protocol CheckpointWitness: Sendable {
    /// Records a checkpoint durably. Called after the checkpoint is committed to the journal.
    func witness(_ checkpoint: SignedCheckpoint) throws

    /// The largest tree size the witness already holds, so that a reopened journal neither sends it again
    /// nor restarts its interval. `nil` when unknown.
    func latestWitnessedTreeSize() -> UInt64?
}

extension CheckpointWitness {
    public func latestWitnessedTreeSize() -> UInt64? { nil }
}

/// A witness that appends checkpoints to a text file, each as a signed note followed by a blank line,
/// and fsyncs after every append (`authledger serve --checkpoint-log FILE`).
public struct CheckpointLogFile: CheckpointWitness {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public func witness(_ checkpoint: SignedCheckpoint) throws {
        let bytes = Array((checkpoint.text + "\n").utf8)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw JournalError.directory(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            throw JournalError.directory(path: path, reason: "checkpoint could not be appended")
        }
    }

    public func latestWitnessedTreeSize() -> UInt64? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return (try? read())?.map(\.checkpoint.treeSize).max()
    }

    /// Reads every checkpoint in the file. A torn final note (a crash mid-append) is ignored; any other
    /// malformed note is an error.
    public func read() throws -> [SignedCheckpoint] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try Self.parse(text)
    }

    /// Parses the text of a checkpoint log.
    public static func parse(_ text: String) throws -> [SignedCheckpoint] {
        // Each note is "body\n\nsignatures\n" and notes are separated by "\n", so splitting at blank
        // lines yields body and signature block in turns.
        let chunks = text.components(separatedBy: "\n\n")
        var checkpoints: [SignedCheckpoint] = []
        var index = 0
        while index + 1 < chunks.count {
            let isLast = index + 2 >= chunks.count
            let signatures = chunks[index + 1] + (isLast ? "" : "\n")
            do {
                checkpoints.append(try SignedCheckpoint(text: chunks[index] + "\n\n" + signatures))
            } catch {
                if isLast { break }
                throw error
            }
            index += 2
        }
        return checkpoints
    }
}
