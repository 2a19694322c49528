import AuthCore
import AuthJournal
import Foundation
import Synchronization

/// Generated authorization events — login failures (JSON payloads, indexed by user and address) — appended
/// through the authorization server's own recording path (``AuthLedger/record(_:)``), `perCommit` events
/// per record call from `writers` concurrent tasks, so that the journal's group commit puts many of them
/// in each LMDB transaction.
///
/// The failures carry no time (`at`), so they feed no login throttle: the journal grows, the projections
/// the server reads do not.
enum LoginFailureLoad {
    /// Appends `events` events (in record calls of `perCommit`, the last one shorter); `progress` is called
    /// with the number of events appended so far after every record call.
    static func append(
        to ledger: AuthLedger, events: Int, perCommit: Int = 200, writers: Int = 16, progress: (@Sendable (Int) -> Void)? = nil
    ) async throws {
        let perCommit = max(1, perCommit)
        let commits = max(1, (events + perCommit - 1) / perCommit)
        let appended = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<max(1, writers) {
                group.addTask {
                    for commit in stride(from: writer, to: commits, by: max(1, writers)) {
                        let count = max(0, min(perCommit, events - commit * perCommit))
                        if count == 0 { continue }
                        try await ledger.record { recorder in
                            for index in 0..<count {
                                let n = commit * perCommit + index
                                try recorder.append(
                                    .loginFailed(LoginFailed(
                                        username: "user\(n % 5000)@example.com", connection: "Username-Password-Authentication",
                                        reason: .wrongPassword, interaction: nil, clientIP: "10.0.\(n % 250).\(n % 200)")))
                            }
                        }
                        let total = appended.add(count)
                        progress?(total)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private final class Counter: Sendable {
        private let value = Atomic<Int>(0)
        func add(_ count: Int) -> Int { value.add(count, ordering: .relaxed).newValue }
    }
}
