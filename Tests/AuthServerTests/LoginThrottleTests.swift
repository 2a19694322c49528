import AuthCore
import Foundation
import HTTPTypes
import LedgerCore
import Testing

@testable import AuthServer

@Suite("Login brute force is throttled, and every refusal is recorded")
struct LoginThrottleTests {
    /// Posts one login for `username` from a fresh interaction; returns the response.
    static func attempt(_ browser: Browser, _ username: String, _ password: String, from address: String? = nil) async throws -> Page {
        let fresh = Browser(client: browser.client)
        if let address { fresh.defaultHeaders[HTTPField.Name("X-Forwarded-For")!] = address }
        let start = try await fresh.get("/authorize?" + FormEncoding.encode(webAppParameters()))
        let form = try await fresh.get(try #require(start.location))
        return try await fresh.post(
            "/login", form: [("state", form.hidden("state") ?? ""), ("csrf", form.hidden("csrf") ?? ""), ("username", username), ("password", password)])
    }

    @Test("after 10 failures for an account from one address, even the right password is refused there (429) until the window has passed")
    func accountThrottle() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            for attempt in 0..<10 {
                #expect(try await Self.attempt(browser, "bob@example.com", "guess-\(attempt)").status == .unauthorized)
            }
            let refused = try await Self.attempt(browser, "bob@example.com", "hunter2 hunter2")
            #expect(refused.status == .tooManyRequests)
            #expect(refused.body.contains("Too many failed attempts"))
            #expect(refused.headers[.setCookie] == nil, "no session")
            harness.clock.advance(seconds: 901)
            let later = try await Self.attempt(browser, "bob@example.com", "hunter2 hunter2")
            #expect(later.status == .found)
            #expect(later.location?.hasPrefix("/authorize/resume") == true)
        }
        let failures = try harness.events().compactMap { if case .loginFailed(let value) = $0.1 { value } else { nil } }
        #expect(failures.map(\.reason).filter { $0 == .wrongPassword }.count == 10)
        #expect(failures.map(\.reason).filter { $0 == .throttled }.count == 1)
        #expect(failures.allSatisfy { $0.userID == "auth0|bob" })
    }

    @Test("30 guesses for one account sent at once: no more than the limit's 10 are checked, the others refused (429), all recorded")
    func parallelGuesses() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for attempt in 0..<30 {
                    group.addTask { try await Self.attempt(browser, "bob@example.com", "guess-\(attempt)").status }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            // An attempt settling while another reads the recorded failures is counted by it once more (fail
            // closed), so a race may stop the checks one or two short of the limit, never past it.
            let checked = statuses.filter { $0 == .unauthorized }.count
            #expect((1...10).contains(checked))
            #expect(statuses.filter { $0 == .tooManyRequests }.count == 30 - checked)
        }
        let failures = try harness.events().compactMap { if case .loginFailed(let value) = $0.1 { value } else { nil } }
        let checked = failures.map(\.reason).filter { $0 == .wrongPassword }.count
        #expect((1...10).contains(checked))
        #expect(failures.map(\.reason).filter { $0 == .throttled }.count == 30 - checked)
    }

    @Test("failures from one address throttle that address for other usernames too (at its address limit)")
    func addressThrottle() async throws {
        let harness = try await ServerHarness { $0.loginThrottle = LoginThrottle(limit: 10, addressLimit: 10) }
        try await harness.run { browser in
            for attempt in 0..<10 {
                _ = try await Self.attempt(browser, "nobody-\(attempt)@example.com", "x")
            }
            #expect(try await Self.attempt(browser, "alice@example.com", "correct horse battery staple").status == .tooManyRequests)
        }
    }

    @Test("an oversized or over-long /authorize is refused with a page, recorded nowhere")
    func oversizedRequests() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let long = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters([("state", String(repeating: "x", count: 9000))])))
            #expect(long.status == .uriTooLong)
            #expect(long.location == nil)
            let many = (0..<80).map { ("p\($0)", "v") }
            let crowded = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters(many)))
            #expect(crowded.status == .badRequest)
            #expect(crowded.location == nil)
        }
        #expect(try harness.events().allSatisfy { if case .authorizeRequested = $0.1 { false } else { true } })
    }

    @Test("behind a trusted proxy, X-Forwarded-For is the address: one client's burst does not lock out the others")
    func trustedProxy() async throws {
        let harness = try await ServerHarness {
            $0.trustedProxies = ["127.0.0.1"]
            $0.loginThrottle = LoginThrottle(limit: 10, addressLimit: 10)
        }
        try await harness.run { browser in
            for attempt in 0..<10 {
                _ = try await Self.attempt(browser, "nobody-\(attempt)@example.com", "x", from: "203.0.113.7")
            }
            #expect(try await Self.attempt(browser, "alice@example.com", "correct horse battery staple", from: "203.0.113.7").status == .tooManyRequests)
            #expect(try await Self.attempt(browser, "alice@example.com", "correct horse battery staple", from: "198.51.100.2").status == .found)
        }
        let addresses = Set(try harness.events().compactMap { if case .loginFailed(let value) = $0.1 { value.clientIP } else { nil } })
        #expect(addresses == ["203.0.113.7"])
    }

    @Test("no account lockout: ten wrong passwords for bob from one address do not keep bob out from his own")
    func noAccountLockout() async throws {
        let harness = try await ServerHarness { $0.trustedProxies = ["127.0.0.1"] }
        try await harness.run { browser in
            for attempt in 0..<10 {
                let failed = try await Self.attempt(browser, "bob@example.com", "guess-\(attempt)", from: "203.0.113.7")
                #expect(failed.status == .unauthorized)
            }
            let guesser = try await Self.attempt(browser, "bob@example.com", "hunter2 hunter2", from: "203.0.113.7")
            #expect(guesser.status == .tooManyRequests, "the guessing address is refused even the right password")
            let owner = try await Self.attempt(browser, "bob@example.com", "hunter2 hunter2", from: "198.51.100.2")
            #expect(owner.status == .found, "bob from his own address logs in")
        }
    }

    @Test("an unknown name is throttled exactly like a real account, so the limits reveal no accounts")
    func unknownNamesThrottledAlike() async throws {
        let harness = try await ServerHarness {
            $0.trustedProxies = ["127.0.0.1"]
            $0.loginThrottle = LoginThrottle(limit: 10, addressLimit: 100, accountLimit: 5)
        }
        try await harness.run { browser in
            for name in ["bob@example.com", "ghost@example.com"] {
                for attempt in 0..<5 {
                    let failed = try await Self.attempt(browser, name, "guess-\(attempt)", from: "203.0.113.\(attempt + 1)")
                    #expect(failed.status == .unauthorized)
                }
                let sixth = try await Self.attempt(browser, name, "guess", from: "198.51.100.9")
                #expect(sixth.status == .tooManyRequests, "\(name): the account limit, from a new address")
            }
        }
    }

    @Test("X-Forwarded-For from an untrusted peer is ignored")
    func untrustedProxy() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await Self.attempt(browser, "bob@example.com", "wrong", from: "203.0.113.9")
        }
        let failure = try #require(harness.events().compactMap { if case .loginFailed(let value) = $0.1 { value } else { nil } }.first)
        #expect(failure.clientIP == "127.0.0.1")
    }
}

@Suite("PendingLoginAttempts: attempts in progress count against the throttle")
struct PendingLoginAttemptsTests {
    /// A moment, a throttle allowing `limit` failures per account and address, no attempt in progress, and
    /// bob's keys from one address.
    static func bobsAttempts(limit: Int) -> (LedgerTimestamp, LoginThrottle, PendingLoginAttempts, [LoginThrottle.Key]) {
        let throttle = LoginThrottle(limit: limit, addressLimit: 30, accountLimit: 30, windowSeconds: 900)
        return (
            LedgerTimestamp(microsecondsSinceEpoch: 1_800_000_000_000_000), throttle, PendingLoginAttempts(),
            throttle.keys(userID: "auth0|bob", username: "bob", address: "198.51.100.1")
        )
    }

    @Test("with two failures recorded and a limit of three, one attempt is admitted at a time per key")
    func inProgressCounts() async throws {
        let now = LedgerTimestamp(microsecondsSinceEpoch: 1_800_000_000_000_000)
        let throttle = LoginThrottle(limit: 3, addressLimit: 3, accountLimit: 30, windowSeconds: 900)
        let pending = PendingLoginAttempts()
        func admit(_ keys: [LoginThrottle.Key], _ failures: [[LedgerTimestamp]]) async throws -> Bool {
            try await pending.admit(keys, throttle: throttle, now: now) { failures }
        }
        let bob = throttle.keys(userID: "auth0|bob", username: "bob", address: "198.51.100.1")
        let failures: [[LedgerTimestamp]] = [[now, now], [now, now], [now, now]]
        #expect(try await admit(bob, failures))
        #expect(try await !admit(bob, failures), "the first is still in progress")
        let carol = throttle.keys(userID: "auth0|carol", username: "carol", address: "198.51.100.1")
        #expect(try await admit(carol, [[], [], []]), "another account from that address")
        #expect(try await !admit(bob, failures), "carol's attempt counts for the address")
        pending.settle(bob)
        pending.settle(carol)
        #expect(try await admit(bob, failures), "admitted again once both settled")
        #expect(try await !admit(bob, [[], [now, now, now], []]), "recorded failures alone")
    }

    @Test("an attempt that settles while another reads the recorded failures counts for it once more (the read may predate its failure)")
    func settledDuringTheReadCounts() async throws {
        let (now, throttle, pending, bob) = Self.bobsAttempts(limit: 3)
        let twoFailures: [[LedgerTimestamp]] = [[now, now], [now, now], [now, now]]
        #expect(try await pending.admit(bob, throttle: throttle, now: now) { twoFailures })
        // The second attempt reads two failures while the first settles (its failure recorded after the read).
        let admitted = try await pending.admit(bob, throttle: throttle, now: now) {
            pending.settle(bob)
            return twoFailures
        }
        #expect(!admitted, "two recorded + one settled during the read reach the limit of three")
        // Once no read is under way, a settled attempt is only what the journal records.
        #expect(try await pending.admit(bob, throttle: throttle, now: now) { [[now], [now], [now]] })
        pending.settle(bob)
    }

    @Test("a failed read of the recorded failures admits nothing and leaves nothing pending")
    func failedReadLeavesNothing() async throws {
        struct ReadFailed: Error {}
        let (now, throttle, pending, bob) = Self.bobsAttempts(limit: 1)
        await #expect(throws: ReadFailed.self) {
            try await pending.admit(bob, throttle: throttle, now: now) { throw ReadFailed() }
        }
        #expect(pending.trackedKeys == 0, "the failed admission left no entry behind")
        #expect(try await pending.admit(bob, throttle: throttle, now: now) { [[], [], []] }, "no attempt left in progress")
        pending.settle(bob)
        #expect(pending.trackedKeys == 0, "settled: nothing kept")
    }

    @Test("an attempt that settled before another looked is counted only as the journal records it (not once more)")
    func settledBeforeTheReadCountsOnce() async throws {
        let (now, throttle, pending, bob) = Self.bobsAttempts(limit: 3)
        #expect(try await pending.admit(bob, throttle: throttle, now: now) { [[], [], []] }, "x: stays pending, keeping the entry")
        #expect(try await pending.admit(bob, throttle: throttle, now: now) { [[], [], []] }, "y")
        pending.settle(bob)  // y's failure is recorded: the next read sees it
        // z: one pending (x) + one recorded (y) = 2 < 3.
        #expect(try await pending.admit(bob, throttle: throttle, now: now) { [[now], [now], [now]] })
        pending.settle(bob)
        pending.settle(bob)
        #expect(pending.trackedKeys == 0)
    }
}
