import Foundation
import Testing

/// The committed fixture journal (tools/make-fixture): a brute-force burst on bob (throttled after 10
/// failures, so even his right password is refused for now), alice's stolen code replayed, alice's consent
/// revoked.
@Suite("The replay commands on the committed fixture journal journals/fixture-incident")
struct FixtureJournalTests {
    /// A private copy of the fixture (opening a journal creates its lock file; the repository stays clean).
    /// A copy of a committed fixture journal (with its data key beside it, when it has one), its pinned key,
    /// and its facts.
    static func fixtureCopy(_ name: String = "fixture-incident") throws -> (journal: String, pub: String, facts: [String: Any], cleanup: () -> Void) {
        let root = InteropTests.root.appendingPathComponent("journals")
        let directory = FileManager.default.temporaryDirectory.path + "/authledger-fixture-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory + "/journal", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: root.appendingPathComponent("\(name)/data.mdb").path, toPath: directory + "/journal/data.mdb")
        let dataKey = root.appendingPathComponent("\(name).datakey").path
        if FileManager.default.fileExists(atPath: dataKey) {
            // Git keeps no file modes but the executable bit: the copy is made 0600, as a key file must be.
            try FileManager.default.copyItem(atPath: dataKey, toPath: directory + "/journal.datakey")
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: directory + "/journal.datakey")
        }
        let factsFile = root.appendingPathComponent("\(name).facts.json")
        let facts = (try? JSONSerialization.jsonObject(with: Data(contentsOf: factsFile))) as? [String: Any] ?? [:]
        return (directory + "/journal", root.appendingPathComponent("\(name).pub").path, facts,
                { try? FileManager.default.removeItem(atPath: directory) })
    }

    @Test(
        "a journal an earlier release wrote (v1: personal data in clear; v2: sealed, before rule-set versions; both with older projections; v3: events referring by sequence number, payloads from Foundation's JSON encoder; v4: JSON payloads and projection values; v5: compact payloads with objects in the plain form, index keys holding their values, every Merkle level stored) still verifies, replays and reads",
        arguments: ["fixture-incident-v1", "fixture-incident-v2", "fixture-incident-v3", "fixture-incident-v4", "fixture-incident-v5", "fixture-incident-v6"])
    func earlierRelease(name: String) throws {
        let fixture = try Self.fixtureCopy(name)
        defer { fixture.cleanup() }
        let verify = try RebuildCommandTests.replay(["verify", "--journal", fixture.journal, "--public-key", fixture.pub])
        #expect(verify.0 == 0, "\(verify.1)")
        let replay = try RebuildCommandTests.replay(["replay", "--journal", fixture.journal])
        #expect(replay.0 == 0 && replay.1.contains("0 differ from the record"), "\(replay.1)")
        let timeline = try RebuildCommandTests.replay(["timeline", "--journal", fixture.journal]).1
        #expect(timeline.contains("login failed for bob@example.com (wrong_password)"), "clear values of old events read as they are")
    }

    @Test("it verifies against its pinned key, its projections rebuild exactly, and every decision re-decides the same")
    func integrity() throws {
        let fixture = try Self.fixtureCopy()
        defer { fixture.cleanup() }
        let verify = try RebuildCommandTests.replay(["verify", "--journal", fixture.journal, "--public-key", fixture.pub])
        #expect(verify.0 == 0, "\(verify.1)")
        #expect(verify.1.contains("(pinned)"))
        #expect(try RebuildCommandTests.replay(["rebuild", "--check", "--journal", fixture.journal]).0 == 0)
        let replay = try RebuildCommandTests.replay(["replay", "--journal", fixture.journal])
        #expect(replay.0 == 0)
        #expect(replay.1.contains("0 differ from the record"))
    }

    @Test("the investigation: the brute-force burst and its throttling, the replayed code, the revoked consent")
    func investigation() throws {
        let fixture = try Self.fixtureCopy()
        defer { fixture.cleanup() }
        let bob = try RebuildCommandTests.replay(["timeline", "--user", "auth0|bob", "--journal", fixture.journal]).1
        #expect(bob.components(separatedBy: "login failed for bob@example.com (wrong_password)").count - 1 == 10)
        #expect(bob.components(separatedBy: "login failed for bob@example.com (throttled)").count - 1 == 3)
        #expect(!bob.contains("auth0|bob logged in"))

        let code = try #require(fixture.facts["stolen_code"] as? String)
        let stolen = try RebuildCommandTests.replay(["timeline", "--code=\(code)", "--journal", fixture.journal]).1
        let types = stolen.split(separator: "\n").map { String($0.split(separator: " ")[2]) }
        #expect(types == ["auth.code.issued", "auth.token.issued", "auth.code.replayed", "auth.token.rejected"])

        let decision = try #require(stolen.split(separator: "\n").first.map { UInt64($0.split(separator: " ")[0].dropFirst())! - 1 })
        let explained = try RebuildCommandTests.replay(["explain", String(decision), "--journal", fixture.journal]).1
        #expect(explained.contains("Rule that decided: authorized"))
        #expect(explained.contains("code presented again: replay; 1 tokens revoked"))

        let consentNow = try RebuildCommandTests.replay(["consent", "--user", "auth0|alice", "--journal", fixture.journal]).1
        #expect(consentNow.contains("no consents"))
        let consentBefore = try RebuildCommandTests.replay(["consent", "--user", "auth0|alice", "--at", "#\(decision)", "--journal", fixture.journal]).1
        #expect(consentBefore.contains("auth0|alice → web-app"))
    }

    @Test("report --html: one self-contained page with the burst on bob, the replayed code and the decision to explain")
    func report() throws {
        let fixture = try Self.fixtureCopy()
        defer { fixture.cleanup() }
        let out = fixture.journal + "-report.html"
        let result = try RebuildCommandTests.replay(["report", "--html", out, "--journal", fixture.journal])
        #expect(result.0 == 0, "\(result.1)")
        let page = try String(contentsOfFile: out, encoding: .utf8)
        #expect(page.contains("Self-consistent, not pinned: 79 events"))
        #expect(page.components(separatedBy: "<svg ").count - 1 == 5)
        #expect(!page.contains("<script") && !page.contains("href=\"http") && !page.contains("src=\""))
        #expect(page.contains("13 failed logins for user auth0|bob"))
        #expect(page.contains("Anomalies (3)"))
        let code = try #require(fixture.facts["stolen_code"] as? String)
        let stolen = try RebuildCommandTests.replay(["timeline", "--code=\(code)", "--journal", fixture.journal]).1
        let decision = try #require(stolen.split(separator: "\n").first.map { UInt64($0.split(separator: " ")[0].dropFirst())! - 1 })
        #expect(page.contains("authledger-replay explain \(decision) --journal="), "the code replay links to the decision that issued the code")

        let pinned = try RebuildCommandTests.replay(["report", "--html", out + "3", "--public-key", fixture.pub, "--journal", fixture.journal])
        #expect(pinned.0 == 0)
        #expect(try String(contentsOfFile: out + "3", encoding: .utf8).contains("Verified against the pinned key: 79 events"))

        let late = try RebuildCommandTests.replay(["report", "--html", out + "2", "--from", "#77", "--journal", fixture.journal])
        #expect(late.0 == 0)
        let latePage = try String(contentsOfFile: out + "2", encoding: .utf8)
        #expect(latePage.contains("events #77 to #79 (3 events)"))
        #expect(latePage.contains("Anomalies (1)"), "only the replay is inside the range")

        #expect(try RebuildCommandTests.replay(["report", "--html", out, "--from", "#500", "--journal", fixture.journal]).0 == 2)
        #expect(try RebuildCommandTests.replay(["report", "--html", out, "--buckets", "0", "--journal", fixture.journal]).0 == 2)
        #expect(try RebuildCommandTests.replay(["report", "--html", "/nonexistent/dir/r.html", "--journal", fixture.journal]).0 == 2)
    }

    @Test("an OCSF export of alice's events verifies with the independent verifier against the pinned key")
    func export() throws {
        let fixture = try Self.fixtureCopy()
        defer { fixture.cleanup() }
        let bundle = fixture.journal + "-bundle"
        let export = try RebuildCommandTests.replay([
            "export", "--journal", fixture.journal, "--format", "ocsf", "--user", "auth0|alice", "--out", bundle,
        ])
        #expect(export.0 == 0)
        let verified = try ExportTests.verifyBundle(bundle, pin: fixture.pub)
        #expect(verified.0 == 0, "\(verified.1)")
        let text = try String(contentsOfFile: bundle + "/events.ocsf.jsonl", encoding: .utf8)
        #expect(text.contains("\"class_uid\":3002"), "logins map to OCSF Authentication")
    }
}
