import Foundation
import LedgerCore
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
        let harness = try await ServerHarness { $0.clock = steady.read }
        try await harness.run { browser in
            let page = try await browser.authorize(webAppParameters())
            let code = try #require(page.redirectParameters["code"])
            wall.advance(seconds: -3600)
            monotonic.pass(seconds: 61)
            let late = try await TokenEndpointTests.exchange(browser, code: code)
            #expect(late.status == .badRequest)
            #expect(jsonObject(late)["error"] as? String == "invalid_grant", "60 real seconds are over, whatever the wall clock says")
            let fresh = try #require(try await browser.authorize(webAppParameters()).redirectParameters["code"])
            #expect(try await TokenEndpointTests.exchange(browser, code: fresh).status == .ok)
        }
        #expect(steady.wallClockLag >= 3_600_000_000 - 61_000_000)
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
