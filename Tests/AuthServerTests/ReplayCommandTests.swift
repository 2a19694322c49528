import AuthCore
import AuthJournal
import Foundation
import Testing

@Suite("authledger-replay explain and replay on a journal the server wrote")
struct ReplayCommandTests {
    @Test("replay re-decides every request identically; explain shows the request, the state, the rule and what followed")
    func replayAndExplain() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            #expect(try await TokenEndpointTests.exchange(browser, code: code).status == .ok)
            _ = try await TokenEndpointTests.exchange(browser, code: code)
            _ = try await browser.get("/authorize?" + FormEncoding.encode([("client_id", "web-app"), ("redirect_uri", "https://evil.test/")]))
        }
        let journal = harness.directory + "/journal"
        let replay = try RebuildCommandTests.replay(["replay", "--journal", journal])
        #expect(replay.0 == 0)
        #expect(replay.1.contains("0 differ from the record"))

        let events = try harness.events()
        let issuedDecision = try #require(events.first { event in
            if case .codeIssued = event.1 { true } else { false }
        }.map { event -> UInt64 in
            if case .codeIssued(let issued) = event.1 { issued.decisionSequence } else { 0 }
        })
        let explained = try RebuildCommandTests.replay(["explain", String(issuedDecision), "--journal", journal])
        #expect(explained.0 == 0)
        #expect(explained.1.contains("Rule that decided: authorized"))
        #expect(explained.1.contains("client_id = web-app"))
        #expect(explained.1.contains("session: user auth0|alice"))
        #expect(explained.1.contains("code presented again: replay"))
        #expect(explained.1.contains("the same decision function gives the same outcome today"))

        let notADecision = try RebuildCommandTests.replay(["explain", "1", "--journal", journal])
        #expect(notADecision.0 == 2)
        // The largest sequence number there can be: no event, no crash (its successor is not looked for).
        let last = try RebuildCommandTests.replay(["explain", String(UInt64.max), "--journal", journal])
        #expect(last.0 == 2)
    }

    @Test("a decision whose configuration version is not in the journal is never re-decided against another: replay and explain say why, and exit 1")
    func neverGuesses() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await browser.authorize(webAppParameters())
        }
        let journal = harness.directory + "/journal"
        #expect(try RebuildCommandTests.replay(["replay", "--journal", journal]).0 == 0)

        // A recorded decision again, naming a configuration version the journal never had. Against the
        // newest configuration it would re-decide the same: replay must not say so.
        let decided = try #require(harness.events().compactMap { entry -> AuthorizeDecided? in
            if case .authorizeDecided(let decided) = entry.1 { decided } else { nil }
        }.last)
        var forged = decided
        forged.configurationVersion = 999_999
        forged.requestOffset = nil
        let ledger = try await AuthLedger.open(directory: journal)
        let sequence = try #require(try await ledger.record([.authorizeDecided(forged)]).first)
        await ledger.journal.close()

        let replay = try RebuildCommandTests.replay(["replay", "--journal", journal])
        #expect(replay.0 == 1, "\(replay.1)")
        #expect(replay.1.contains("#\(sequence) "))
        #expect(replay.1.contains("not re-derivable: the configuration version #999999 it was decided against is not in this journal"))
        #expect(replay.1.contains("0 differ from the record; 1 not re-derivable"))

        let explained = try RebuildCommandTests.replay(["explain", String(sequence), "--journal", journal])
        #expect(explained.0 == 1)
        #expect(explained.1.contains("configuration version #999999: not in this journal"))
        #expect(explained.1.contains("Replay: not re-derivable"))
        #expect(!explained.1.contains("the same decision function gives the same outcome today"))

        // The decision it copied still replays, in a range without the forged one.
        let before = try RebuildCommandTests.replay(["replay", "--journal", journal, "--to", "#\(sequence - 1)"])
        #expect(before.0 == 0 && before.1.contains("0 differ from the record"))
    }

    @Test("replay --tenant: had web-app been a public client, its code requests without PKCE would have been refused")
    func whatIf() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await browser.authorize(webAppParameters())
            _ = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters(state: "again")))
        }
        let tenant = testTenantYAML.replacingOccurrences(
            of: "    app_type: regular_web\n    client_secret: s3cret\n    token_endpoint_auth_method: client_secret_basic\n",
            with: "    app_type: spa\n    token_endpoint_auth_method: none\n")
        #expect(tenant != testTenantYAML)
        let path = harness.directory + "/what-if.yaml"
        try tenant.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try RebuildCommandTests.replay(["replay", "--journal", harness.directory + "/journal", "--tenant", path])
        #expect(result.0 == 0)
        #expect(result.1.contains("would change"))
        #expect(result.1.contains("code_issued -> error:invalid_request (pkce)"))
        #expect(!result.1.contains(" 0 would change"))
    }

    @Test("consent revoke withdraws a consent (the next authorization asks again); consent --at shows it as it was")
    func consentHistory() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await browser.authorize(webAppParameters())
        }
        let journal = harness.directory + "/journal"
        let before = try harness.events().last!.0
        let now = try RebuildCommandTests.replay(["consent", "--user", "auth0|alice", "--journal", journal])
        #expect(now.1.contains("auth0|alice → web-app: openid profile"))
        let revoke = try RebuildCommandTests.run("authledger", ["consent", "revoke", "--user", "auth0|alice", "--client", "web-app", "--journal", journal])
        #expect(revoke.0 == 0)
        #expect(revoke.1.contains("revoked 1 consent"))
        let after = try RebuildCommandTests.replay(["consent", "--user", "auth0|alice", "--journal", journal])
        #expect(after.1.contains("no consents"))
        let past = try RebuildCommandTests.replay(["consent", "--user", "auth0|alice", "--at", "#\(before)", "--journal", journal])
        #expect(past.1.contains("auth0|alice → web-app: openid profile"))
        let again = try RebuildCommandTests.run("authledger", ["consent", "revoke", "--user", "auth0|alice", "--client", "web-app", "--journal", journal])
        #expect(again.0 == 2, "nothing left to revoke")
        #expect(try RebuildCommandTests.replay(["rebuild", "--check", "--journal", journal]).0 == 0)
    }

    @Test("timeline: by user, by raw code (hashed for lookup), by client within a range, from the indexes")
    func timeline() async throws {
        let harness = try await ServerHarness()
        let box = CodeBox()
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            box.code = code
            _ = try await TokenEndpointTests.exchange(browser, code: code)
            _ = try await TokenEndpointTests.exchange(browser, code: code)
            _ = try await Browser(client: browser.client).authorize(webAppParameters(), username: "bob@example.com", password: "wrong")
        }
        let journal = harness.directory + "/journal"
        let byUser = try RebuildCommandTests.replay(["timeline", "--user", "auth0|alice", "--journal", journal])
        #expect(byUser.0 == 0)
        #expect(byUser.1.contains("auth.login.succeeded"))
        #expect(byUser.1.contains("auth.code.issued"))
        #expect(!byUser.1.contains("bob@example.com"))

        let byCode = try RebuildCommandTests.replay(["timeline", "--code=\(box.code!)", "--journal", journal])
        let lines = byCode.1.split(separator: "\n")
        #expect(lines.map { $0.split(separator: " ")[2] } == ["auth.code.issued", "auth.token.issued", "auth.code.replayed", "auth.token.rejected"])

        // The typed name is sealed under bob's key: the timeline opens it with the data key, and shows it
        // sealed without (the lookup is by user id; a typed name is not an index key any more).
        let failures = try RebuildCommandTests.replay(["timeline", "--user", "auth0|bob", "--journal", journal])
        #expect(failures.1.contains("login failed for bob@example.com (wrong_password)"))
        let sealed = try RebuildCommandTests.replay(["timeline", "--user", "auth0|bob", "--journal", journal, "--data-key", journal + ".none"])
        #expect(sealed.1.contains("login failed for [sealed] (wrong_password) from [sealed]"))

        let first = try #require(lines.first.map { String($0.split(separator: " ")[0]) })
        let ranged = try RebuildCommandTests.replay(["timeline", "--client", "web-app", "--from", first, "--journal", journal])
        #expect(ranged.1.split(separator: "\n").allSatisfy { UInt64($0.split(separator: " ")[0].dropFirst())! >= UInt64(first.dropFirst())! })
        #expect(try RebuildCommandTests.replay(["timeline", "--from", "yesterday", "--journal", journal]).0 == 2)
    }

    @Test("the replay commands read a journal while the server keeps writing to it")
    func whileServing() async throws {
        let harness = try await ServerHarness()
        let journal = harness.directory + "/journal"
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            _ = try await TokenEndpointTests.exchange(browser, code: code)
            // The server is still running (and its journal open for writing) while another process reads.
            async let more: Void = {
                for index in 0..<10 { _ = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters(state: "live-\(index)"))) }
            }()
            let verify = try RebuildCommandTests.replay(["verify", "--journal", journal])
            #expect(verify.0 == 0, "\(verify.1)")
            let rebuild = try RebuildCommandTests.replay(["rebuild", "--check", "--journal", journal])
            #expect(rebuild.0 == 0, "\(rebuild.1)")
            let timeline = try RebuildCommandTests.replay(["timeline", "--user", "auth0|alice", "--journal", journal])
            #expect(timeline.1.contains("auth.token.issued"))
            try await more
        }
    }

    @Test("tail --follow streams events as the server commits them, as JSON lines with their sequence numbers")
    func tailFollow() async throws {
        let harness = try await ServerHarness()
        let journal = harness.directory + "/journal"
        let lines = LineCollector()
        try await harness.run { browser in
            let process = Process()
            process.executableURL = RebuildCommandTests.products.appendingPathComponent("authledger-replay")
            process.arguments = ["tail", "--follow", "--interval", "50", "--journal", journal]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            try await Task.sleep(for: .milliseconds(300))
            _ = try await browser.authorize(webAppParameters())
            for _ in 0..<100 where !lines.text.contains("auth.code.issued") {
                lines.append(pipe.fileHandleForReading.availableData)
            }
            process.terminate()
            process.waitUntilExit()
        }
        let parsed = lines.text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let types = parsed.compactMap { $0["type"] as? String }
        #expect(types.first == "auth.authorize.requested", "only events committed after tail started")
        #expect(types.contains("auth.login.succeeded"))
        #expect(types.contains("auth.code.issued"))
        let sequences = parsed.compactMap { $0["sequence"] as? Int }
        #expect(sequences == Array(sequences.first!...sequences.last!), "in order, without gaps")
    }
}

final class LineCollector: @unchecked Sendable {
    private(set) var text = ""
    func append(_ data: Data) { text += String(decoding: data, as: UTF8.self) }
}
