import AuthCore
import AuthJournal
import Foundation
import LedgerCore
import LedgerJournal
import LedgerLMDB
import Testing

/// The forensics tools answer about one decision, user or moment from the journal's indexes
/// (``JournalHistory``). These tests hold those answers to the ones a walk of every event gives — the
/// way the tools answered before, and still answer on journals whose indexes are incomplete.
@Suite("JournalHistory: answers from the indexes equal answers from walking every event")
struct JournalHistoryTests {
    /// Compares, on the journal in `directory`, the indexed and the walked answers for every event: the
    /// decision it is (with its configuration), what followed each authorization decision, and the consents
    /// of each of `users` after it. Returns how many decisions were compared.
    @discardableResult
    static func compare(directory: String, users: [String]) throws -> Int {
        let reader = try JournalReader(directory: directory, projections: AuthLedger.projections)
        defer { reader.close() }
        let dataKey = try? JournalDataKeyFile(journal: directory).load()
        var decisions = 0
        try reader.read { snapshot in
            let indexed = try JournalHistory(snapshot: snapshot, dataKey: dataKey)
            let walked = try JournalHistory(snapshot: snapshot, dataKey: dataKey, useIndexes: false)
            let (fromIndexes, fromWalk) = (indexed.indexed, walked.indexed)
            #expect(fromIndexes, "a journal with current projections is answered from its indexes")
            #expect(!fromWalk)
            // The configurations the replay's own walk (DecisionHistory) gives each decision.
            var replayed: [UInt64: ConfigurationState?] = [:]
            try DecisionHistory.forEachDecision(in: reader, dataKey: dataKey) { decision, _ in
                replayed[decision.sequence] = decision.configuration
            }
            let head = try snapshot.head.sequence
            for sequence in try snapshot.firstSequence...head {
                let fast = try indexed.decision(at: sequence)
                let slow = try walked.decision(at: sequence)
                switch (fast, slow) {
                case (.authorization(let a)?, .authorization(let b)?):
                    decisions += 1
                    #expect(a.sequence == b.sequence && a.decided == b.decided)
                    #expect(a.configuration == b.configuration, "the configuration of #\(a.sequence)")
                    if let replay = replayed[a.sequence] { #expect(a.configuration == replay, "as replay folds it, for #\(a.sequence)") }
                    let fastFollowing = try indexed.consequences(of: a).map { "\($0.0) \($0.1.eventType.name)" }
                    let slowFollowing = try walked.consequences(of: b).map { "\($0.0) \($0.1.eventType.name)" }
                    #expect(fastFollowing == slowFollowing, "what followed #\(a.sequence)")
                case (.clientCredentials(let a)?, .clientCredentials(let b)?):
                    decisions += 1
                    #expect(a.decided == b.decided && a.configuration == b.configuration)
                case (.push(let a)?, .push(let b)?):
                    decisions += 1
                    #expect(a.pushed == b.pushed && a.configuration == b.configuration)
                case (.logout(let a)?, .logout(let b)?):
                    decisions += 1
                    #expect(a.decided == b.decided && a.configuration == b.configuration)
                case (nil, nil):
                    break
                default:
                    Issue.record("#\(sequence): \(String(describing: fast)) from the indexes, \(String(describing: slow)) walked")
                }
                for user in users {
                    #expect(try indexed.consents(of: user, through: sequence) == walked.consents(of: user, through: sequence), "\(user) at #\(sequence)")
                }
            }
        }
        return decisions
    }

    /// Writes into the journal in `directory` the projections this release folds from its events, as a
    /// server of this release does when it opens a journal whose projections are of an earlier version
    /// (``ProjectionVersion``) — but without the journal's signing key, which a fixture does not keep.
    static func upgradeProjections(_ directory: String) throws {
        let reader = try JournalReader(directory: directory, projections: AuthLedger.projections)
        let tables = try ProjectionRebuild.rebuild(from: reader).stored
        reader.close()
        let storage = try LMDBStorage(writingTo: directory, initialMapSize: 64 << 20, tables: 64)
        defer { storage.close() }
        let names = AuthTable.allCases.map { "p.auth.\($0.rawValue)" } + ["p.\(ProjectionVersion.table)"]
        let opened = try storage.openTables(names, create: true)
        let transaction = try storage.beginWrite()
        for table in AuthTable.allCases {
            let stored = try #require(opened["p.auth.\(table.rawValue)"])
            try transaction.removeAll(in: stored)
            for (key, value) in tables[table] ?? [:] { try transaction.put(value, for: Array(key.utf8), in: stored, append: false) }
        }
        try transaction.put(
            Array(String(ProjectionVersion.current).utf8), for: Array("version".utf8), in: try #require(opened["p.\(ProjectionVersion.table)"]),
            append: false)
        try transaction.commit()
    }

    @Test(
        "on the committed fixture journal (compact payloads) and the last with JSON payloads (its projections brought to this release): every decision, its configuration, what followed, and consents at every moment",
        arguments: ["fixture-incident", "fixture-incident-v4"])
    func fixture(name: String) throws {
        let fixture = try FixtureJournalTests.fixtureCopy(name)
        defer { fixture.cleanup() }
        if name != "fixture-incident" { try Self.upgradeProjections(fixture.journal) }
        #expect(try RebuildCommandTests.replay(["rebuild", "--check", "--journal", fixture.journal]).0 == 0, "as a server of this release writes them")
        // 17 decisions, each found from its own sequence and from its request's.
        #expect(try Self.compare(directory: fixture.journal, users: ["auth0|alice", "auth0|bob"]) == 34)
    }

    @Test(
        "on the journals of earlier releases, whose indexes are incomplete until a server of this release opens them, explain and consent walk the events and answer the same",
        arguments: ["fixture-incident-v1", "fixture-incident-v2", "fixture-incident-v3", "fixture-incident-v4", "fixture-incident-v5"])
    func earlierRelease(name: String) throws {
        let fixture = try FixtureJournalTests.fixtureCopy(name)
        defer { fixture.cleanup() }
        let reader = try JournalReader(directory: fixture.journal, projections: AuthLedger.projections)
        let indexed = try reader.read { try JournalHistory(snapshot: $0, dataKey: nil).indexed }
        reader.close()
        #expect(!indexed, "projections of an earlier version: their indexes lack this release's entries")
        let timeline = try RebuildCommandTests.replay(["timeline", "--journal", fixture.journal]).1
        let replayed = try #require(timeline.split(separator: "\n").first { $0.contains("auth.code.replayed") })
        let replaySequence = try #require(UInt64(replayed.split(separator: " ")[0].dropFirst()))
        let issued = try #require(timeline.split(separator: "\n").last { $0.contains("auth.code.issued") && $0.contains("auth0|alice") })
        let decision = try #require(UInt64(issued.split(separator: " ")[0].dropFirst())) - 1
        let explained = try RebuildCommandTests.replay(["explain", String(decision), "--journal", fixture.journal])
        #expect(explained.0 == 0, "\(explained.1)")
        #expect(explained.1.contains("#\(replaySequence) code presented again: replay"))
        let consent = try RebuildCommandTests.replay(["consent", "--user", "auth0|alice", "--at", "#\(decision)", "--journal", fixture.journal])
        #expect(consent.0 == 0 && consent.1.contains("auth0|alice → web-app"), "\(consent.1)")
    }

    @Test("on a journal the server wrote: refresh rotations and reuse, a replayed code, a consent revoked, a client credentials grant, a pushed request, a logout")
    func serverJournal() async throws {
        let harness = try await ServerHarness(tenant: grantsTenantYAML(AssertionSigner()))
        try await harness.run { browser in
            // A family rotated, then its first token reused: the family is revoked.
            let first = try #require(try await RefreshTokenTests.offlineTokens(browser)["refresh_token"] as? String)
            _ = try await RefreshTokenTests.refresh(browser, first)
            _ = try await RefreshTokenTests.refresh(browser, first)
            // A code exchanged twice: the replay revokes the family it started.
            let page = try await browser.authorize(webAppParameters([("audience", "https://api.example.com")], scope: "openid offline_access"))
            let code = try #require(page.redirectParameters["code"])
            _ = try await TokenEndpointTests.exchange(browser, code: code)
            _ = try await TokenEndpointTests.exchange(browser, code: code)
            // A client credentials grant, a pushed request, a logout.
            #expect(try await GrantTests.clientCredentials(browser, [("audience", "https://api.example.com")]).status == .ok)
            #expect(try await GrantTests.push(browser, GrantTests.parParameters()).status == .created)
            _ = try await browser.get("/oidc/logout")
        }
        let journal = harness.directory + "/journal"
        let revoke = try RebuildCommandTests.run("authledger", ["consent", "revoke", "--user", "auth0|alice", "--client", "web-app", "--journal", journal])
        #expect(revoke.0 == 0)
        let events = try harness.events()
        #expect(events.contains { if case .refreshFamilyRevoked = $0.1 { true } else { false } })
        #expect(events.contains { if case .codeReplayed = $0.1 { true } else { false } })
        #expect(events.contains { if case .consentRevoked = $0.1 { true } else { false } })
        let decisions = try Self.compare(directory: journal, users: ["auth0|alice"])
        #expect(decisions >= 6)

        // And explain, from the indexes, shows the family's rotation and revocation after the first decision.
        let issuing = try #require(events.first { if case .codeIssued = $0.1 { true } else { false } }.map { $0.0 - 1 })
        let explained = try RebuildCommandTests.replay(["explain", String(issuing), "--journal", journal])
        #expect(explained.0 == 0, "\(explained.1)")
        #expect(explained.1.contains("tokens issued by refresh_token"))
        #expect(explained.1.contains("refresh family revoked (reuse)"))
    }
}
