import LedgerCore
import Synchronization

/// The DPoP proofs presented at `/userinfo`, remembered while they could still be accepted, so that each
/// works once (RFC 9449 §11.1).
///
/// In memory, not in the journal: `/userinfo` changes nothing and records nothing, and a proof is only
/// accepted within ``window`` seconds either side of its `iat`. (At the token endpoint, where proofs
/// issue tokens, their `jti`s are recorded in the journal instead.) After a restart a proof captured in
/// the last two minutes could be presented once more; it still needs the access token and yields only
/// its claims.
///
/// Two generations of proof ids, each covering `2 × window` seconds: the older is dropped whole when a
/// newer one starts, so every check is O(1) and nothing is scanned. At most ``capacity`` ids are held
/// per generation; beyond that a proof is refused rather than forgotten, which only a flood by someone
/// holding a DPoP-bound token and its key can cause.
final class DPoPProofCache: Sendable {
    /// Seconds either side of a proof's `iat` within which it is accepted.
    static let window: Int64 = 60

    private struct Generations {
        var current: Set<String> = []
        var previous: Set<String> = []
        var currentStarted: Int64 = .min
    }

    private let generations = Mutex(Generations())
    let capacity: Int

    init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    /// Whether this is the first time the proof `proofID` by the key `thumbprint` is presented (and
    /// remembers it if so). `false` also when the cache is full.
    func firstUse(thumbprint: String, proofID: String, now: LedgerTimestamp) -> Bool {
        let id = thumbprint + " " + proofID
        let seconds = now.secondsSinceEpoch
        return generations.withLock { state in
            if seconds.subtractingReportingOverflow(state.currentStarted).partialValue >= 2 * Self.window
                || state.currentStarted == .min
            {
                state.previous = state.current
                state.current = []
                state.currentStarted = seconds
            }
            guard !state.current.contains(id), !state.previous.contains(id), state.current.count < capacity else { return false }
            state.current.insert(id)
            return true
        }
    }
}
