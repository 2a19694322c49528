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
    /// admitted, the attempt is pending until ``settle(_:)`` is called with the same keys.
    func admit(_ keys: [String], failures: [[LedgerTimestamp]], throttle: LoginThrottle, now: LedgerTimestamp) -> Bool {
        counts.withLock { counts in
            guard !throttle.isThrottled(failures: failures, pending: keys.map { counts[$0, default: 0] }, now: now) else { return false }
            for key in keys { counts[key, default: 0] += 1 }
            return true
        }
    }

    /// Ends an admitted attempt (its outcome is recorded, or it failed before it could be).
    func settle(_ keys: [String]) {
        counts.withLock { counts in
            for key in keys {
                let remaining = counts[key, default: 1] - 1
                counts[key] = remaining > 0 ? remaining : nil
            }
        }
    }
}
