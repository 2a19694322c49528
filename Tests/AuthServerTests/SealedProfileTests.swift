import AuthCore
import AuthJournal
import Foundation
import HTTPTypes
import LedgerCore
import LedgerJournal
import Testing

/// Email addresses (users and invitations, in `config.*` events and the configuration projection) and
/// `login_hint` (in requests, decisions, interactions and their projection) are sealed like the other
/// personal values: the journal's file holds none of them in clear, while the server logs in by email,
/// pre-fills the hint and hands out the email claim; erasure reaches a user's email.
@Suite("Email addresses and login hints sealed in events and projections")
struct SealedProfileTests {
    static let hint = "hint.person@example.org"

    /// Logs bob in through an invitation of org-app, after a request of web-app with a login hint.
    static func journal() async throws -> (ServerHarness, userinfo: String) {
        let harness = try await ServerHarness()
        let userinfo = UserinfoBox()
        try await harness.run { browser in
            // The hint pre-fills the login form (escaped) and is recorded sealed.
            let start = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters([("login_hint", Self.hint)])))
            let form = try await browser.get(try #require(start.location))
            #expect(form.body.contains("value=\"\(Self.hint)\""), "the login form is pre-filled with the hint")
            // Login by email still works: the server opens the configuration's sealed emails in memory.
            let code = try await TokenEndpointTests.code(browser)
            let tokens = try await TokenEndpointTests.exchange(browser, code: code)
            let accessToken = try #require(try JSONSerialization.jsonObject(with: Data(tokens.body.utf8)) as? [String: Any])["access_token"] as? String
            let info = try await browser.send("/userinfo", method: .get, headers: [.authorization: "Bearer \(accessToken ?? "")"])
            userinfo.value = info.body
            // bob accepts his invitation: the decision compares the invitation's email with his.
            let bob = Browser(client: browser.client)
            let invited = [
                ("response_type", "code"), ("client_id", "org-app"), ("redirect_uri", "https://org.test/callback"), ("scope", "openid"),
                ("state", "st-inv"), ("organization", "org_acme"), ("invitation", "inv_123"),
            ]
            let accepted = try await bob.authorize(invited, username: "bob@example.com", password: "hunter2 hunter2")
            #expect(accepted.redirectParameters["code"] != nil, "\(accepted.status) \(accepted.location ?? accepted.body)")
        }
        return (harness, userinfo.value)
    }

    final class UserinfoBox: @unchecked Sendable { var value = "" }

    @Test("the real data.mdb holds no email address and no login hint in clear; the server still uses them")
    func sealedInTheFile() async throws {
        let (harness, userinfo) = try await Self.journal()
        #expect(userinfo.contains("\"email\":\"alice@example.com\""), "userinfo carries the opened email: \(userinfo)")
        let bytes = try harness.journalBytes()
        for value in ["alice@example.com", "bob@example.com", Self.hint, "hint.person"] {
            #expect(bytes.range(of: Data(value.utf8)) == nil, "\(value) is in data.mdb")
        }
        // With the data key every value opens where it was recorded.
        let events = try harness.events()
        let users = events.compactMap { if case .configuration(.userSet(let user)) = $0.1 { user } else { nil } }
        #expect(Set(users.map(\.email)) == [.clear("alice@example.com"), .clear("bob@example.com")])
        let invitations = events.compactMap { if case .configuration(.invitationSet(let value)) = $0.1 { value } else { nil } }
        #expect(!invitations.isEmpty && invitations.allSatisfy { $0.email == .clear("bob@example.com") && $0.userID == "auth0|bob" })
        let hints = events.compactMap { if case .authorizeRequested(let value) = $0.1 { value.parameters.loginHint } else { nil } }
        #expect(hints.contains(.clear(Self.hint)))
        let decided = events.compactMap { if case .authorizeDecided(let value) = $0.1 { value } else { nil } }
        #expect(decided.contains { $0.decision.outcome == .login(connection: "Username-Password-Authentication", loginHint: .clear(Self.hint)) })
        // Without it they read as unavailable; as stored, they are sealed objects under the right subjects.
        let blind = try harness.events(opened: false).compactMap { if case .configuration(.userSet(let user)) = $0.1 { user } else { nil } }
        #expect(blind.allSatisfy { $0.email == .unavailable })
        let reader = try JournalReader(directory: harness.directory + "/journal")
        defer { reader.close() }
        var sealed: [(UInt64, AuthEvent)] = []
        try reader.read { snapshot in
            try snapshot.forEachEvent { envelope in
                if let event = try AuthEvent(type: envelope.type, payload: envelope.payload) { sealed.append((envelope.sequence, event)) }
                return true
            }
        }
        let storedUsers = sealed.compactMap { if case .configuration(.userSet(let user)) = $0.1 { user } else { nil } }
        #expect(storedUsers.allSatisfy { if case .sealed(let value) = $0.email { value.subject == "u:" + $0.userID } else { false } })
        let storedHints = sealed.compactMap { if case .authorizeRequested(let value) = $0.1 { value.parameters.loginHint } else { nil } }
        #expect(storedHints.allSatisfy { if case .sealed(let value) = $0 { value.subject.hasPrefix("a:") } else { false } })
    }

    @Test("after erasing bob his email reads [erased] everywhere; his invitation's decision is not re-decidable, not a difference")
    func erasure() async throws {
        let (harness, _) = try await Self.journal()
        let journal = harness.directory + "/journal"
        let before = try RebuildCommandTests.replay(["replay", "--journal", journal])
        #expect(before.0 == 0 && before.1.contains("0 differ from the record") && !before.1.contains("not re-decidable"), "\(before.1)")
        let erase = try RebuildCommandTests.run("authledger", ["subject", "erase", "--user", "auth0|bob", "--journal", journal])
        #expect(erase.0 == 0, "\(erase.1)")
        let users = try harness.events().compactMap { if case .configuration(.userSet(let user)) = $0.1 { user } else { nil } }
        #expect(users.first { $0.userID == "auth0|bob" }?.email == .erased)
        #expect(users.first { $0.userID == "auth0|alice" }?.email == .clear("alice@example.com"))

        #expect(try RebuildCommandTests.replay(["verify", "--journal", journal]).0 == 0)
        #expect(try RebuildCommandTests.replay(["rebuild", "--check", "--journal", journal]).0 == 0)
        let replay = try RebuildCommandTests.replay(["replay", "--journal", journal])
        #expect(replay.0 == 0, "\(replay.1)")
        #expect(replay.1.contains("0 differ from the record"))
        #expect(replay.1.contains("not re-decidable: inputs erased"), "\(replay.1)")
        let timeline = try RebuildCommandTests.replay(["timeline", "--journal", journal, "--format", "jsonl"])
        #expect(timeline.0 == 0 && timeline.1.contains("inv_123"))
        #expect(!timeline.1.contains("bob@example.com"), "neither his account nor his invitation names him any more")
        // Without the data key nothing opens, and replay still passes: withheld inputs are never differences.
        let blind = try RebuildCommandTests.replay(["replay", "--journal", journal, "--data-key", journal + ".none"])
        #expect(blind.0 == 0, "\(blind.1)")
    }
}
