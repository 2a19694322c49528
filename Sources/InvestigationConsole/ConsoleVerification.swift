import Foundation
import LedgerCore

/// How the journal verified, as `authledger-replay verify --format jsonl` answered: shown at the top of
/// every page of the console.
public struct ConsoleVerification: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// Every signature, the chain, the Merkle tree and the checkpoints held for `events` events.
        case verified(events: UInt64, pinned: Bool, keys: [String], checkpoints: Int)
        /// It did not: the first bad sequence number, and why.
        case failed(sequence: UInt64?, reason: String)
        /// The journal (or the pinned key file) could not be read.
        case unreadable(String)
    }

    public var state: State
    /// When the console asked (RFC 3339).
    public var checkedAt: String

    public init(state: State, checkedAt: String) {
        self.state = state
        self.checkedAt = checkedAt
    }

    /// From the answer of `verify --format jsonl`: its output lines and its error lines.
    public init(jsonl lines: [String], errors: [String], checkedAt: String) {
        self.checkedAt = checkedAt
        let objects = lines.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
        if let report = objects.last(where: { $0["ok"] as? Bool == true }) {
            state = .verified(
                events: (report["events"] as? NSNumber)?.uint64Value ?? 0, pinned: report["pinned"] as? Bool ?? false,
                keys: report["keys"] as? [String] ?? [], checkpoints: (report["checkpoints_verified"] as? NSNumber)?.intValue ?? 0)
        } else if let failure = objects.last(where: { $0["ok"] as? Bool == false }) {
            state = .failed(sequence: (failure["first_bad_sequence"] as? NSNumber)?.uint64Value, reason: failure["reason"] as? String ?? "")
        } else {
            state = .unreadable(errors.last ?? "verify gave no answer")
        }
    }

    /// Whether the journal verified (pinned or not).
    public var verified: Bool {
        if case .verified = state { true } else { false }
    }
}
