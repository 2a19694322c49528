import Foundation
import LedgerCommandSupport
import LedgerCore
import Logging
import LedgerJournal
import Synchronization
import Testing

@testable import AuthServer

/// A server whose wall clock jumps (faked), judging expiry with the process clock (``SteadyClock``).
@Suite("Clock skew: a wall clock set back or forward never makes an expired code valid, nor a valid one outlive its lifetime")
struct ClockSkewTests {
    /// The monotonic clock a test moves.
    final class Monotonic: Sendable {
        let microseconds = Mutex<Int64>(1_000_000)
        func pass(seconds: Int64) { microseconds.withLock { $0 += seconds * 1_000_000 } }
    }

    @Test("the wall clock set back an hour, then 61 s pass: the code issued before is expired (invalid_grant); a new one is exchanged")
    func setBack() async throws {
        let wall = TestClock()
        let monotonic = Monotonic()
        let steady = SteadyClock(wall: wall.read, monotonic: { monotonic.microseconds.withLock { $0 } })
        let logged = Mutex<[String]>([])
        let handler = TextLogHandler(label: "authledger") { line in logged.withLock { $0.append(line) } }
        var logger = Logger(label: "authledger", factory: { _ in handler })
        logger.logLevel = .info
        let harness = try await ServerHarness(logger: logger) { $0.useClock(steady) }
        try await harness.run { browser in
            var watch = ClockWatch()
            #expect(try await Self.wallClockLag(browser) == 0)
            let page = try await browser.authorize(webAppParameters())
            let code = try #require(page.redirectParameters["code"])
            wall.advance(seconds: -3600)
            monotonic.pass(seconds: 61)
            let late = try await TokenEndpointTests.exchange(browser, code: code)
            #expect(late.status == .badRequest)
            #expect(jsonObject(late)["error"] as? String == "invalid_grant", "60 real seconds are over, whatever the wall clock says")
            let fresh = try #require(try await browser.authorize(webAppParameters()).redirectParameters["code"])
            #expect(try await TokenEndpointTests.exchange(browser, code: fresh).status == .ok)
            // What an operator sees: the lag in /metrics, and one warning when it is first noticed.
            let lag = try #require(try await Self.wallClockLag(browser))
            #expect(lag >= 3600 && lag <= 3662, "/metrics: \(lag) s behind (set back an hour, 61 s passed since)")
            harness.server.noteClock(&watch)
            harness.server.noteClock(&watch)
            #expect(logged.withLock { $0 }.filter { $0.contains("the wall clock was set back") }.count == 1, "\(logged.withLock { $0 })")
            // The wall clock catches up (set forward past the server's time): followed again.
            wall.advance(seconds: 3700)
            _ = steady.now()
            #expect(try await Self.wallClockLag(browser) == 0)
            harness.server.noteClock(&watch)
            #expect(logged.withLock { $0 }.contains { $0.contains("the wall clock has caught up") })
        }
        #expect(steady.wallClockLag == 0)
    }

    @Test("the clock watch notices a jump back of a second or more once, and the catch-up once")
    func clockWatch() {
        var watch = ClockWatch()
        #expect(watch.observe(lag: 0) == nil)
        #expect(watch.observe(lag: 999_999) == nil, "under a second: a correction, not a jump")
        #expect(watch.observe(lag: 5_000_000) == .fellBehind(microseconds: 5_000_000))
        #expect(watch.observe(lag: 4_000_000) == nil, "said once")
        #expect(watch.observe(lag: 0) == .caughtUp)
        #expect(watch.observe(lag: 0) == nil)
        #expect(watch.observe(lag: 2_000_000) == .fellBehind(microseconds: 2_000_000), "a second jump is noticed again")
    }

    /// `authledger_process_wall_clock_lag_seconds` from `/metrics`.
    static func wallClockLag(_ browser: Browser) async throws -> Double? {
        try await browser.metric("authledger_process_wall_clock_lag_seconds")
    }

    @Test("the wall clock set forward an hour: the code issued before is expired at once (the safe side), and times follow the wall clock")
    func setForward() async throws {
        let wall = TestClock()
        let monotonic = Monotonic()
        let steady = SteadyClock(wall: wall.read, monotonic: { monotonic.microseconds.withLock { $0 } })
        let harness = try await ServerHarness { $0.clock = steady.read }
        try await harness.run { browser in
            let code = try #require(try await browser.authorize(webAppParameters()).redirectParameters["code"])
            wall.advance(seconds: 3600)
            monotonic.pass(seconds: 1)
            let late = try await TokenEndpointTests.exchange(browser, code: code)
            #expect(jsonObject(late)["error"] as? String == "invalid_grant")
            #expect(steady.now() >= wall.read())
        }
    }
}
