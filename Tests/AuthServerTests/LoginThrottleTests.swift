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
    @Test("with two failures recorded and a limit of three, one attempt is admitted at a time per key")
    func inProgressCounts() throws {
        let now = LedgerTimestamp(microsecondsSinceEpoch: 1_800_000_000_000_000)
        let throttle = LoginThrottle(limit: 3, addressLimit: 3, accountLimit: 30, windowSeconds: 900)
        let pending = PendingLoginAttempts()
        func admit(_ keys: [LoginThrottle.Key], _ failures: [[LedgerTimestamp]]) throws -> Bool {
            try pending.admit(keys, throttle: throttle, now: now) { failures }
        }
        let bob = throttle.keys(userID: "auth0|bob", username: "bob", address: "198.51.100.1")
        let failures: [[LedgerTimestamp]] = [[now, now], [now, now], [now, now]]
        #expect(try admit(bob, failures))
        #expect(try !admit(bob, failures), "the first is still in progress")
        let carol = throttle.keys(userID: "auth0|carol", username: "carol", address: "198.51.100.1")
        #expect(try admit(carol, [[], [], []]), "another account from that address")
        #expect(try !admit(bob, failures), "carol's attempt counts for the address")
        pending.settle(bob)
        pending.settle(carol)
        #expect(try admit(bob, failures), "admitted again once both settled")
        #expect(try !admit(bob, [[], [now, now, now], []]), "recorded failures alone")
    }
}
