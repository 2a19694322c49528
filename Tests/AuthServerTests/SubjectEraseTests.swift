import AuthCore
import AuthJournal
import Foundation
import HTTPTypes
import LedgerCore
import LedgerJournal
import LedgerLMDB
import Testing

/// `authledger subject erase`: a user's sealed personal data becomes unreadable for good, and the journal
/// goes on verifying, rebuilding, replaying and exporting.
@Suite("Erasing a data subject")
struct SubjectEraseTests {
    /// A journal where alice logged in and got tokens from 203.0.113.10, and bob failed a login from 198.51.100.20.
    static func journalWithTwoUsers() async throws -> ServerHarness {
        let harness = try await ServerHarness { $0.trustedProxies = ["127.0.0.1"] }
        try await harness.run { browser in
            browser.defaultHeaders[HTTPField.Name("X-Forwarded-For")!] = "203.0.113.10"
            let code = try await TokenEndpointTests.code(browser)
            #expect(try await TokenEndpointTests.exchange(browser, code: code).status == .ok)
            _ = try await LoginThrottleTests.attempt(Browser(client: browser.client), "bob@example.com", "wrong", from: "198.51.100.20")
        }
        return harness
    }

    @Test("after erasure alice's addresses read [erased], bob's still open; verify, rebuild --check, replay and the bundle verifier pass; twice is harmless")
    func eraseAlice() async throws {
        let harness = try await Self.journalWithTwoUsers()
        let journal = harness.directory + "/journal"
        let byAddress = try RebuildCommandTests.replay(["timeline", "--ip", "203.0.113.10", "--journal", journal])
        #expect(byAddress.1.contains("auth.login.succeeded"), "found by the address's pseudonym under alice's key")
        let erase = try RebuildCommandTests.run("authledger", ["subject", "erase", "--user", "auth0|alice", "--reason", "GDPR Art. 17 request", "--journal", journal])
        #expect(erase.0 == 0, "\(erase.1)")
        #expect(erase.1.contains("1 key destroyed"))

        let events = try harness.events()
        let alice = events.compactMap { event -> String? in
            switch event.1 {
            case .loginSucceeded(let login): login.clientIP
            case .tokenIssued(let issued): issued.clientIP
            default: nil
            }
        }
        #expect(!alice.isEmpty && alice.allSatisfy { $0 == PersonalData.erased })
        let bob = events.compactMap { if case .loginFailed(let value) = $0.1, value.userID == "auth0|bob" { value } else { nil } }
        #expect(bob.first?.clientIP == "198.51.100.20" && bob.first?.username == "bob@example.com", "another subject is untouched")
        let erased = events.compactMap { if case .subjectErased(let value) = $0.1 { value } else { nil } }
        #expect(erased == [SubjectErased(userID: "auth0|alice", keysDestroyed: 1, reason: "GDPR Art. 17 request")])

        #expect(try RebuildCommandTests.replay(["verify", "--journal", journal]).0 == 0)
        #expect(try RebuildCommandTests.replay(["rebuild", "--check", "--journal", journal]).0 == 0)
        let replay = try RebuildCommandTests.replay(["replay", "--journal", journal])
        #expect(replay.0 == 0 && replay.1.contains("0 differ from the record"))
        let timeline = try RebuildCommandTests.replay(["timeline", "--user", "auth0|alice", "--journal", journal])
        #expect(timeline.1.contains("logged in from [erased]"))
        #expect(timeline.1.contains("privacy.subject.erased  personal data of auth0|alice erased (1 key destroyed): GDPR Art. 17 request"))
        #expect(!timeline.1.contains("203.0.113.10"))
        // Her address's pseudonyms died with her key: the address finds none of her events any more.
        let afterwards = try RebuildCommandTests.replay(["timeline", "--ip", "203.0.113.10", "--journal", journal])
        #expect(!afterwards.1.contains("auth.login.succeeded") && !afterwards.1.contains("auth.token.issued"))
        let bundle = harness.directory + "/alice-bundle"
        #expect(try RebuildCommandTests.replay(["export", "--journal", journal, "--format", "jsonl", "--user", "auth0|alice", "--out", bundle]).0 == 0)
        #expect(try ExportTests.verifyBundle(bundle).0 == 0)
        #expect(try String(contentsOfFile: bundle + "/events.jsonl", encoding: .utf8).contains("203.0.113.10") == false)

        let again = try RebuildCommandTests.run("authledger", ["subject", "erase", "--user", "auth0|alice", "--journal", journal])
        #expect(again.0 == 0 && again.1.contains("0 key destroyed"))
        #expect(try RebuildCommandTests.replay(["verify", "--journal", journal]).0 == 0)
    }

    @Test("SIGKILL at any moment of an erasure leaves a journal that verifies and either erased (key gone, event recorded) or did not (neither)")
    func crashDuringErasure() async throws {
        let template = try await Self.journalWithTwoUsers()
        let dataKey = try JournalDataKeyFile(journal: template.directory + "/journal").load()
        var outcomes: Set<Bool> = []
        for round in 0..<16 {
            let directory = template.directory + "/round-\(round)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: template.directory + "/journal", toPath: directory + "/journal")
            for file in ["journal.key", "journal.datakey", "journal.tokenkeys"] {
                try FileManager.default.copyItem(atPath: template.directory + "/" + file, toPath: directory + "/" + file)
            }
            let process = Process()
            process.executableURL = RebuildCommandTests.products.appendingPathComponent("authledger")
            process.arguments = ["subject", "erase", "--user", "auth0|alice", "--journal", directory + "/journal"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // The last round is not killed: however slow the executable (under a sanitizer it can take longer
            // than every other round's delay just to start), one erasure runs to its end.
            if round < 15 {
                try await Task.sleep(for: .milliseconds(round * 9))
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: directory + "/journal/compacting")

            let reader = try JournalReader(directory: directory + "/journal", projections: AuthLedger.projections)
            defer { reader.close() }
            #expect((try? reader.verify(trust: .genesisKey).get()) != nil, "round \(round): the journal verifies")
            let (keyGone, recorded) = try reader.read { snapshot -> (Bool, Bool) in
                var recorded = false
                try snapshot.forEachEvent { envelope in
                    if envelope.type == AuthEvent.subjectErasedType { recorded = true }
                    return true
                }
                return (try snapshot.subjectKey("u:auth0|alice", dataKey: dataKey) == nil, recorded)
            }
            #expect(keyGone == recorded, "round \(round): the key is gone exactly when the erasure is recorded")
            outcomes.insert(keyGone)
        }
        #expect(outcomes.contains(true), "some rounds finished the erasure")
    }
}

/// `retention.personal_data_days`: anonymous subjects' personal data is forgotten a day at a time.
@Suite("Retention of anonymous personal data")
struct RetentionTests {
    static let tenant = testTenantYAML + "\nretention:\n  personal_data_days: 90\n  events_days: 2555\n"

    @Test("after 90 days the anonymous day's key is destroyed (privacy.retention.applied, counted); a user's data stays; a dry run changes nothing")
    func forgetAnonymous() async throws {
        let harness = try await ServerHarness(tenant: Self.tenant) { $0.trustedProxies = ["127.0.0.1"] }
        try await harness.run { browser in
            #expect(harness.ledger.configuration.retention == RetentionSettings(personalDataDays: 90, eventsDays: 2555))
            _ = try await LoginThrottleTests.attempt(browser, "nobody@example.com", "x", from: "198.51.100.99")
            let code = try await TokenEndpointTests.code(browser)
            #expect(try await TokenEndpointTests.exchange(browser, code: code).status == .ok)
            // Nothing is past the period yet.
            #expect(try await harness.ledger.applyRetention(now: harness.clock.read()).subjects.isEmpty)
            harness.clock.advance(seconds: 91 * 86_400)
            let dry = try await harness.ledger.applyRetention(now: harness.clock.read(), dryRun: true)
            #expect(dry.subjects.count == 1 && dry.subjects[0].hasPrefix("a:"))
            let applied = try await harness.ledger.applyRetention(now: harness.clock.read())
            #expect(applied.subjects == dry.subjects)
            #expect(try await harness.ledger.applyRetention(now: harness.clock.read()).subjects.isEmpty, "twice is harmless")
        }
        let events = try harness.events()
        let unknown = events.compactMap { if case .loginFailed(let value) = $0.1, value.userID == nil { value } else { nil } }
        #expect(unknown.map(\.clientIP) == [PersonalData.erased], "the anonymous address is forgotten")
        let alice = events.compactMap { if case .loginSucceeded(let value) = $0.1 { value.clientIP } else { nil } }
        #expect(!alice.isEmpty && alice.allSatisfy { $0 != PersonalData.erased }, "a user's data is not anonymous: kept")
        let applied = events.compactMap { if case .retentionApplied(let value) = $0.1 { value } else { nil } }
        #expect(applied.count == 1 && applied.first?.subjectsForgotten == 1 && applied.first?.personalDataDays == 90)
        let journal = harness.directory + "/journal"
        #expect(try RebuildCommandTests.replay(["verify", "--journal", journal]).0 == 0)
        #expect(try RebuildCommandTests.replay(["replay", "--journal", journal]).0 == 0)
    }

    @Test("the CLI applies retention and compacts; a retention period out of range or an unknown key is refused")
    func cliAndTenantFile() async throws {
        let harness = try await ServerHarness(tenant: Self.tenant.replacingOccurrences(of: "personal_data_days: 90", with: "personal_data_days: 1"))
        try await harness.run { browser in
            _ = try await LoginThrottleTests.attempt(browser, "nobody@example.com", "x")
        }
        let journal = harness.directory + "/journal"
        let dry = try RebuildCommandTests.run("authledger", ["journal", "retention", "apply", "--dry-run", "--journal", journal])
        #expect(dry.0 == 0 && dry.1.contains("0 anonymous subjects"), "the day is not past yet: \(dry.1)")
        #expect(throws: TenantFileError.self) { try TenantFile.parse(yaml: testTenantYAML + "\nretention:\n  personal_data_dayz: 9\n") }
        let bad = try TenantFile.parse(yaml: testTenantYAML + "\nretention:\n  personal_data_days: 0\n")
        #expect(throws: TenantFileError.self) { try TenantPlanner(hasher: Argon2idHasher.minimal).plan(bad, against: ConfigurationState()) }
    }
}
