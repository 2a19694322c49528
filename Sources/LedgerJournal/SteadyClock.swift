import Foundation
import LedgerCore

/// The time a process stamps events and judges expiry by: the wall clock, except that it never goes
/// backwards and never runs slower than real time.
///
/// Between readings it advances by the monotonic clock (`CLOCK_MONOTONIC`, which no one sets). When the
/// wall clock is ahead of that — it was set forward, or a correction caught up — the wall clock's time is
/// taken. When the wall clock is behind — it was set back, say by a bad NTP step or an operator — it is not
/// followed: the time goes on from where it was at the real rate, ahead of the wall clock by the jump
/// (``wallClockLag`` says how far), until the wall clock catches up or the process restarts.
///
/// So a code issued with a 60-second lifetime expires 60 real seconds later whatever the wall clock does
/// backwards, an expired code or token never becomes valid again, and the journal's times (which the
/// writer also keeps at or after the last event's) stay in order. A forward jump is taken as it is: codes
/// and tokens issued before it expire early — the safe side. Docs: README, Guarantees ("clock skew").
public final class SteadyClock: @unchecked Sendable {
    /// The process's clock over the system's wall and monotonic clocks.
    public static let system = SteadyClock(wall: SteadyClock.wallClock, monotonic: SteadyClock.monotonicClock)

    /// The system's wall clock (`CLOCK_REALTIME`), in microseconds.
    public static let wallClock: @Sendable () -> LedgerTimestamp = {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return LedgerTimestamp(microsecondsSinceEpoch: Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000)
    }

    /// The system's monotonic clock (`CLOCK_MONOTONIC`), in microseconds since an arbitrary start.
    public static let monotonicClock: @Sendable () -> Int64 = {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
    }

    private let wall: @Sendable () -> LedgerTimestamp
    private let monotonic: @Sendable () -> Int64
    // NSLock (a pthread mutex): ThreadSanitizer sees its synchronization (tools/sanitizers).
    private let lock = NSLock()
    private var anchorTime: Int64
    private var anchorMonotonic: Int64
    private var last: Int64
    private var lag: Int64 = 0

    /// A clock over `wall` and `monotonic` (tests pass clocks they move).
    public init(wall: @escaping @Sendable () -> LedgerTimestamp, monotonic: @escaping @Sendable () -> Int64) {
        self.wall = wall
        self.monotonic = monotonic
        anchorTime = wall().microseconds
        anchorMonotonic = monotonic()
        last = anchorTime
    }

    /// The time now.
    public func now() -> LedgerTimestamp {
        let wallNow = wall().microseconds
        let monotonicNow = monotonic()
        lock.lock()
        defer { lock.unlock() }
        let projected = anchorTime &+ max(0, monotonicNow &- anchorMonotonic)
        if wallNow >= projected {
            // Following the wall clock (or catching up with a jump forward).
            anchorTime = wallNow
            anchorMonotonic = monotonicNow
        }
        let time = max(wallNow, projected, last)
        last = time
        lag = time - wallNow
        return LedgerTimestamp(microsecondsSinceEpoch: time)
    }

    /// ``now()`` as a function, for what takes a clock (``Journal/Configuration/clock``).
    public var read: @Sendable () -> LedgerTimestamp { { [self] in now() } }

    /// How far the wall clock was behind this clock at the last reading, in microseconds: 0 unless it was
    /// set back.
    public var wallClockLag: Int64 {
        lock.lock()
        defer { lock.unlock() }
        return lag
    }
}
