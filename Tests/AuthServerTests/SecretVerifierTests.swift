import AuthCore
import Foundation
import LedgerCore
import NIOPosix
import Synchronization
import Testing

@testable import AuthServer

/// A hasher whose verifications wait for the test to let them through, then delegate to real Argon2id.
final class GatedHasher: SecretHasher {
    private let gate = DispatchSemaphore(value: 0)
    private let started = Mutex(0)
    private let real = Argon2idHasher.minimal

    var entered: Int { started.withLock { $0 } }

    func hash(_ secret: String) -> String { real.hash(secret) }

    func verify(_ secret: String, against hash: String) -> Bool {
        started.withLock { $0 += 1 }
        gate.wait()
        return real.verify(secret, against: hash)
    }

    func release(_ count: Int = 1) {
        for _ in 0..<count { gate.signal() }
    }

    /// Waits (up to 10 s) until `count` verifications have started.
    func waitUntilEntered(_ count: Int) async throws {
        for _ in 0..<1000 where entered < count { try await Task.sleep(for: .milliseconds(10)) }
        #expect(entered >= count, "only \(entered) of \(count) checks started")
    }
}

@Suite("SecretVerifier: Argon2id off the request threads, with a bound")
struct SecretVerifierTests {
    @Test("beyond its capacity a check is refused at once; when a slot frees, checks are admitted again")
    func bounded() async throws {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let hasher = GatedHasher()
        let verifier = SecretVerifier(hasher: hasher, capacity: 2, pool: pool)
        let hash = hasher.hash("right")
        async let first = verifier.verify("right", against: hash)
        async let second = verifier.verify("wrong", against: hash)
        try await hasher.waitUntilEntered(2)
        await #expect(throws: SecretVerifier.Overloaded.self) { try await verifier.verify("right", against: hash) }
        hasher.release(2)
        #expect(try await first)
        #expect(try await !second)
        hasher.release()
        #expect(try await verifier.verify("right", against: hash), "admitted again once the slots were free")
        try await pool.shutdownGracefully()
    }

    @Test("a client secret that verified once is answered from the cache, without a pool slot; a wrong one never is")
    func clientSecretCache() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let hasher = GatedHasher()
        let verifier = SecretVerifier(hasher: hasher, capacity: 1, pool: pool)
        let hash = hasher.hash("s3cret")
        hasher.release()
        #expect(try await verifier.verifyClientSecret("s3cret", against: hash))
        #expect(hasher.entered == 1)
        #expect(try await verifier.verifyClientSecret("s3cret", against: hash))
        #expect(hasher.entered == 1, "the second check came from the cache")
        hasher.release()
        #expect(try await !verifier.verifyClientSecret("s3cre", against: hash))
        #expect(hasher.entered == 2)
        try await pool.shutdownGracefully()
    }

    @Test("many concurrent checks of one client secret share one Argon2id run and one slot")
    func concurrentChecksShareOneRun() async throws {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let hasher = GatedHasher()
        let verifier = SecretVerifier(hasher: hasher, capacity: 1, pool: pool)
        let hash = hasher.hash("s3cret")
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<16 { group.addTask { try await verifier.verifyClientSecret("s3cret", against: hash) } }
            try await hasher.waitUntilEntered(1)
            try await Task.sleep(for: .milliseconds(50))
            hasher.release()
            var results: [Bool] = []
            for try await matched in group { results.append(matched) }
            #expect(results == Array(repeating: true, count: 16), "none refused as overloaded")
        }
        #expect(hasher.entered == 1, "one Argon2id run for all sixteen")
        try await pool.shutdownGracefully()
    }

    /// A server whose password and secret checks go through a gated hasher, with room for one check.
    static func serverWithOneSlot() async throws -> (ServerHarness, GatedHasher) {
        let hasher = GatedHasher()
        let harness = try await ServerHarness { settings in
            settings.hasher = hasher
            settings.secretCheckCapacity = 1
        }
        return (harness, hasher)
    }

    /// Takes the server's only slot with a check that waits at the hasher's gate (the test client has one
    /// connection, so it cannot be a second request in flight); releasing the gate frees the slot.
    static func holdOnlySlot(of harness: ServerHarness, _ hasher: GatedHasher) async throws -> Task<Bool, any Error> {
        let held = Task { try await harness.server.secrets.verify("x", against: hasher.hash("x")) }
        try await hasher.waitUntilEntered(1)
        return held
    }

    @Test("logins beyond the capacity get a 503 page at once, and nothing is recorded for them")
    func loginOverload() async throws {
        let (harness, hasher) = try await Self.serverWithOneSlot()
        try await harness.run { browser in
            let held = try await Self.holdOnlySlot(of: harness, hasher)
            let refused = try await LoginThrottleTests.attempt(browser, "bob@example.com", "hunter2 hunter2")
            #expect(refused.status == .serviceUnavailable)
            hasher.release()
            #expect(try await held.value)
            hasher.release()
            let admitted = try await LoginThrottleTests.attempt(browser, "alice@example.com", "correct horse battery staple")
            #expect(admitted.status == .found, "once the slot is free the login goes through")
        }
        let logins = try harness.events().filter { if case .loginSucceeded = $0.1 { true } else { false } }
        let failures = try harness.events().filter { if case .loginFailed = $0.1 { true } else { false } }
        #expect(logins.count == 1)
        #expect(failures.isEmpty, "a refused check is not a failed login")
    }
}

extension SecretVerifierTests {
    @Test("client authentication beyond the capacity: 503 temporarily_unavailable at once, and nothing recorded for it")
    func tokenEndpointOverload() async throws {
        let (harness, hasher) = try await Self.serverWithOneSlot()
        try await harness.run { browser in
            let held = try await Self.holdOnlySlot(of: harness, hasher)
            let refused = try await TokenEndpointTests.exchange(browser, code: "some-code")
            #expect(refused.status == .serviceUnavailable)
            #expect(jsonObject(refused)["error"] as? String == "temporarily_unavailable")
            hasher.release()
            #expect(try await held.value)
        }
        let rejections = try harness.events().filter { if case .tokenRejected = $0.1 { true } else { false } }
        #expect(rejections.isEmpty, "an overloaded check is not a rejection")
    }
}

@Suite("DPoPProofCache: each /userinfo proof works once, in bounded memory")
struct DPoPProofCacheTests {
    static let start = LedgerTimestamp(microsecondsSinceEpoch: 1_800_000_000_000_000)

    @Test("a proof is accepted once and refused while it could still be valid; other keys' ids are separate")
    func once() {
        let cache = DPoPProofCache()
        #expect(cache.firstUse(thumbprint: "k1", proofID: "p", now: Self.start))
        #expect(!cache.firstUse(thumbprint: "k1", proofID: "p", now: Self.start.adding(seconds: 1)))
        #expect(cache.firstUse(thumbprint: "k2", proofID: "p", now: Self.start.adding(seconds: 1)))
        // Remembered for at least two windows (a proof is accepted up to one window either side of its iat)…
        for later in [60, 119, 121, 200, 239] {
            #expect(!cache.firstUse(thumbprint: "k1", proofID: "p", now: Self.start.adding(seconds: later)), "\(later) s later")
        }
        // …then forgotten, when the verifier refuses it for its age anyway.
        #expect(cache.firstUse(thumbprint: "k1", proofID: "p", now: Self.start.adding(seconds: 481)))
    }

    @Test("beyond its capacity new proofs are refused, not remembered at the cost of older ones")
    func capacity() {
        let cache = DPoPProofCache(capacity: 2)
        #expect(cache.firstUse(thumbprint: "k", proofID: "1", now: Self.start))
        #expect(cache.firstUse(thumbprint: "k", proofID: "2", now: Self.start))
        #expect(!cache.firstUse(thumbprint: "k", proofID: "3", now: Self.start))
        #expect(!cache.firstUse(thumbprint: "k", proofID: "1", now: Self.start))
        #expect(cache.firstUse(thumbprint: "k", proofID: "3", now: Self.start.adding(seconds: 121)), "a new generation has room")
    }
}
