import AuthCore
import AuthJournal
import Foundation
import LedgerCore
import Synchronization
import Testing

/// The projections stop growing: expired codes, sessions, interactions, tokens, refresh tokens and families,
/// DPoP proofs and failed logins are pruned, beside a running server, and a rebuild agrees.
@Suite("Pruning expired projection entries")
struct PruningTests {
    /// How many entries each prunable table holds.
    static func sizes(_ ledger: AuthLedger) throws -> [AuthTable: Int] {
        try ledger.read { store in
            var sizes: [AuthTable: Int] = [:]
            for table in ProjectionPruning.tables {
                var count = 0
                try store.forEach(table, from: "") { _, _ in
                    count += 1
                    return true
                }
                sizes[table] = count
            }
            return sizes
        }
    }

    @Test("after everything expired, a run empties the tables in bounded commits (one event each); live entries stay; a rebuild agrees")
    func pruneBesideServer() async throws {
        let harness = try await ServerHarness()
        let pruningEvents = try await harnessRun(harness)
        #expect(pruningEvents >= 4)
        // harness.run has checked that a rebuild from the events gives exactly the live projections.
        let events = try harness.events().compactMap { if case .projectionsPruned(let value) = $0.1 { value } else { nil } }
        #expect(events.count == pruningEvents)
        #expect(events.allSatisfy { $0.removed <= 2 }, "bounded commits")
        #expect(Set(events.map(\.table)).isSuperset(of: ["sessions", "codes", "tokens", "refresh", "refresh_families", "login_failures"]))
        let timeline = try RebuildCommandTests.replay(["timeline", "--journal", harness.directory + "/journal"])
        #expect(timeline.1.contains("auth.projections.pruned"))
    }

    /// Flows, a month and more later a new login, then pruning with commits of two entries; returns how many
    /// pruning events the run appended.
    private func harnessRun(_ harness: ServerHarness) async throws -> Int {
        let appended = Mutex(0)
        try await harness.run { browser in
            // Codes (one redeemed with offline_access: tokens, a refresh family), a session, failed logins, an open interaction.
            let tokens = try await RefreshTokenTests.offlineTokens(browser)
            #expect(tokens["refresh_token"] != nil)
            for _ in 0..<3 { _ = try await TokenEndpointTests.code(browser) }
            _ = try await LoginThrottleTests.attempt(browser, "nobody@example.com", "wrong")
            // A browser without a session: a login page, its interaction left open.
            _ = try await Browser(client: browser.client).get("/authorize?" + FormEncoding.encode(webAppParameters()))
            let before = try Self.sizes(harness.ledger)
            #expect(before[.codes] == 4)
            #expect(before[.sessions] == 1)
            #expect(before[.interactions] == 2, "the failed login's and the new browser's")
            #expect((before[.loginFailures] ?? 0) >= 2)

            // Nothing has expired yet that may go: a dry run finds only what is past its time.
            let early = try await harness.ledger.pruneProjections(now: harness.clock.read(), dryRun: true)
            #expect(early.removed[.codes] == nil && early.removed[.sessions] == nil && early.events == 0)

            harness.clock.advance(seconds: TokenPolicy.refreshLifetimeSeconds + 86_400 * 2)
            let browserLater = Browser(client: browser.client)
            let fresh = try await browserLater.authorize(webAppParameters())
            #expect(fresh.redirectParameters["code"] != nil)

            let beforeDry = try Self.sizes(harness.ledger)
            let dry = try await harness.ledger.pruneProjections(now: harness.clock.read(), dryRun: true)
            #expect(dry.events == 0)
            #expect(try Self.sizes(harness.ledger) == beforeDry, "a dry run changes nothing")
            let report = try await harness.ledger.pruneProjections(now: harness.clock.read(), batchSize: 2)
            #expect(report.removed == dry.removed)
            appended.withLock { $0 = report.events }
            let after = try Self.sizes(harness.ledger)
            #expect(after[.codes] == 1, "only the fresh code is left")
            #expect(after[.sessions] == 1, "only the fresh session is left")
            #expect(after[.interactions] == 0)
            #expect(after[.tokens] == 0 && after[.refreshTokens] == 0 && after[.refreshFamilies] == 0 && after[.loginFailures] == 0)
            // The fresh session still works; an old code is simply unknown now.
            #expect(try await browserLater.get("/authorize?" + FormEncoding.encode(webAppParameters([("prompt", "none")]))).redirectParameters["code"] != nil)
            // A family that is gone counts as revoked: an access token of it cannot outlive a revocation.
            #expect(try harness.ledger.read { try $0.isFamilyRevoked("pruned-or-never-recorded") })
            // A second run finds nothing more.
            #expect(try await harness.ledger.pruneProjections(now: harness.clock.read()).events == 0)
        }
        return appended.withLock { $0 }
    }
}
