import AuthCore
import LedgerCore
import Synchronization

/// Login attempts between their throttle check and the recording of their outcome, per throttle key.
///
/// The throttle counts failures recorded in the journal; a password check takes tens of milliseconds,
/// so without this, parallel guesses for one account would all pass the check before any of them is
/// recorded. An admitted attempt counts as a failure until it settles. In memory only: after a restart
/// nothing is in progress.
final class PendingLoginAttempts: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    /// Admits an attempt for `keys` unless `throttle` refuses it, counting what is in progress; when
    /// admitted, the attempt is pending until ``settle(_:)`` is called with the same keys. The recorded
    /// failures are read (`failures`, a few projection lookups) under the same lock, so that an attempt
    /// that records its failure and settles meanwhile is counted one way or the other.
    func admit(
        _ keys: [LoginThrottle.Key], throttle: LoginThrottle, now: LedgerTimestamp, failures readFailures: () throws -> [[LedgerTimestamp]]
    ) throws -> Bool {
        try counts.withLock { counts in
            let failures = try readFailures()
            let pending = keys.map { counts[$0.name, default: 0] }
            guard !throttle.isThrottled(keys, failures: failures, pending: pending, now: now) else { return false }
            for key in keys { counts[key.name, default: 0] += 1 }
            return true
        }
    }

    /// Ends an admitted attempt (its outcome is recorded, or it failed before it could be).
    func settle(_ keys: [LoginThrottle.Key]) {
        counts.withLock { counts in
            for key in keys {
                let remaining = counts[key.name, default: 1] - 1
                counts[key.name] = remaining > 0 ? remaining : nil
            }
        }
    }
}
