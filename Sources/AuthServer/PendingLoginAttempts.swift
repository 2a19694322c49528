import AuthCore
import LedgerCore
import Synchronization

/// Login attempts between their throttle check and the recording of their outcome, per throttle key.
///
/// The throttle counts failures recorded in the journal; a password check takes tens of milliseconds,
/// so without this, parallel guesses for one account would all pass the check before any of them is
/// recorded. An admitted attempt counts as a failure until it settles. In memory only: after a restart
/// nothing is in progress.
///
/// The recorded failures are read outside the lock (on a shared store that read is a database round
/// trip, and a process-wide lock held across it would queue every login of the node behind it). An
/// attempt that settles while another's read is under way may or may not be in what that read saw, so
/// the other counts it once more: a race can only make the throttle stricter, never let an attempt by.
final class PendingLoginAttempts: Sendable {
    private struct KeyState {
        /// Admitted attempts not settled yet.
        var pending = 0
        /// Attempts settled since the entry was made (only differences of it mean anything).
        var settled = 0
        /// Admissions between their first look and their decision: while there are any, the entry is
        /// kept, so that ``settled`` keeps counting for them.
        var observers = 0

        var isIdle: Bool { pending == 0 && observers == 0 }
    }

    private let states = Mutex<[String: KeyState]>([:])

    /// Admits an attempt for `keys` unless `throttle` refuses it, counting what is in progress; when
    /// admitted, the attempt is pending until ``settle(_:)`` is called with the same keys. `readFailures`
    /// (a few projection lookups, each key's recorded failures) runs without any lock held.
    func admit(
        _ keys: [LoginThrottle.Key], throttle: LoginThrottle, now: LedgerTimestamp,
        failures readFailures: () async throws -> [[LedgerTimestamp]]
    ) async throws -> Bool {
        let settledBefore = observe(keys)
        let failures: [[LedgerTimestamp]]
        do {
            failures = try await readFailures()
        } catch {
            decide(keys, settledBefore: settledBefore) { _ in false }
            throw error
        }
        return decide(keys, settledBefore: settledBefore) { pending in
            !throttle.isThrottled(keys, failures: failures, pending: pending, now: now)
        }
    }

    /// Ends an admitted attempt (its outcome is recorded, or it failed before it could be).
    func settle(_ keys: [LoginThrottle.Key]) {
        states.withLock { states in
            for key in keys {
                Self.change(&states, key) { state in
                    state.pending = max(0, state.pending - 1)
                    state.settled += 1
                }
            }
        }
    }

    /// How many keys have an attempt pending or an admission under way (an entry each); tests check that
    /// nothing is left behind.
    var trackedKeys: Int { states.withLock { $0.count } }

    /// Registers an admission about to read the recorded failures; returns each key's settled count.
    private func observe(_ keys: [LoginThrottle.Key]) -> [Int] {
        states.withLock { states in
            keys.map { key in Self.change(&states, key) { state in
                state.observers += 1
                return state.settled
            } }
        }
    }

    /// Ends an observation: `admits`, given each key's attempts in progress — pending, plus those settled
    /// since the observation began — decides; when it does, the attempt becomes pending on every key.
    @discardableResult
    private func decide(_ keys: [LoginThrottle.Key], settledBefore: [Int], admits: ([Int]) -> Bool) -> Bool {
        states.withLock { states in
            let inProgress = keys.indices.map { index in
                let state = states[keys[index].name, default: KeyState()]
                return state.pending + (state.settled - settledBefore[index])
            }
            let admitted = admits(inProgress)
            for key in keys {
                Self.change(&states, key) { state in
                    state.observers -= 1
                    if admitted { state.pending += 1 }
                }
            }
            return admitted
        }
    }

    /// Changes the entry of `key` (a new one if it has none), and removes it once it is idle.
    private static func change<R>(_ states: inout [String: KeyState], _ key: LoginThrottle.Key, _ body: (inout KeyState) -> R) -> R {
        var state = states[key.name, default: KeyState()]
        let result = body(&state)
        states[key.name] = state.isIdle ? nil : state
        return result
    }
}
