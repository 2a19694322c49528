/// Notices when the wall clock falls behind the server's clock (it was set back: ``SteadyClock`` does not
/// follow it) and when it has caught up again — what the server logs, once each.
///
/// Pure: the lag goes in, a notice comes out; ``AuthorizationServer/watchClockPeriodically()`` reads the
/// clock and logs.
struct ClockWatch: Sendable, Equatable {
    /// A lag under a second is a correction, not a jump worth a log line (NTP steps small errors).
    static let threshold: Int64 = 1_000_000

    enum Notice: Sendable, Equatable {
        /// The wall clock is this many microseconds behind: event times and expiry go on at the real rate.
        case fellBehind(microseconds: Int64)
        /// The wall clock is followed again.
        case caughtUp
    }

    /// Whether the last lag observed was a jump back not yet caught up with.
    private(set) var behind = false

    /// What changed with `lag` (``SteadyClock/wallClockLag``, microseconds), if anything.
    mutating func observe(lag: Int64) -> Notice? {
        if !behind, lag >= Self.threshold {
            behind = true
            return .fellBehind(microseconds: lag)
        }
        if behind, lag == 0 {
            behind = false
            return .caughtUp
        }
        return nil
    }
}
