import AuthCore
import Foundation
import LedgerCore
import Testing

@testable import IncidentReport

@Suite("IncidentSummary: the counts and anomalies of the incident report")
struct IncidentSummaryTests {
    static let start = LedgerTimestamp(microsecondsSinceEpoch: 1_800_000_000_000_000)

    static func at(_ seconds: Int64) -> LedgerTimestamp {
        LedgerTimestamp(microsecondsSinceEpoch: start.microseconds + seconds * 1_000_000)
    }

    static func failure(_ username: String, from address: String?, user: String? = nil) -> AuthEvent {
        .loginFailed(LoginFailed(username: username, connection: "db", reason: .wrongPassword, interaction: nil, clientIP: address, userID: user))
    }

    static func summary(over seconds: Int64 = 3600, buckets: Int = 12) -> IncidentSummary {
        IncidentSummary(buckets: .init(start: start, end: at(seconds), count: buckets))
    }

    @Test("absurd timestamps (a tampered journal) give buckets, not an arithmetic overflow")
    func absurdTimestamps() {
        let wide = IncidentSummary.Buckets(
            start: LedgerTimestamp(microsecondsSinceEpoch: .min), end: LedgerTimestamp(microsecondsSinceEpoch: .max), count: 48)
        #expect(wide.count == 48)
        #expect(wide.index(of: LedgerTimestamp(microsecondsSinceEpoch: .max)) == 47)
        #expect(wide.index(of: LedgerTimestamp(microsecondsSinceEpoch: .min)) == 0)
        _ = wide.start(of: 47)
        let backwards = IncidentSummary.Buckets(start: Self.at(100), end: Self.at(0), count: 10)
        #expect(backwards.count == 1)
    }

    @Test("buckets cut the range into equal parts of at least a second and clamp times outside it")
    func buckets() {
        let buckets = IncidentSummary.Buckets(start: Self.start, end: Self.at(3599), count: 12)
        #expect(buckets.width == 300_000_000)
        #expect(buckets.index(of: Self.at(0)) == 0)
        #expect(buckets.index(of: Self.at(299)) == 0)
        #expect(buckets.index(of: Self.at(300)) == 1)
        #expect(buckets.index(of: Self.at(3599)) == 11)
        #expect(buckets.index(of: Self.at(99_999)) == 11)
        #expect(buckets.index(of: Self.at(-5)) == 0)
        let instant = IncidentSummary.Buckets(start: Self.start, end: Self.start, count: 48)
        #expect(instant.width == 1_000_000 && instant.count == 1)
        let short = IncidentSummary.Buckets(start: Self.start, end: Self.at(1).adding(microseconds: 500_000), count: 48)
        #expect(short.count == 2, "a range of 1.5 s gets two one-second buckets, not 48 mostly empty ones")
    }

    @Test("five failed logins for one account within ten minutes are one burst, extended by the failures that follow")
    func burstPerAccount() {
        var summary = Self.summary()
        for index in 0..<7 {
            summary.record(sequence: UInt64(10 + index), timestamp: Self.at(Int64(index * 30)), event: Self.failure("bob@example.com", from: "203.0.113.\(index)", user: "auth0|bob"))
        }
        let bursts = summary.anomalies.filter { $0.kind == .bruteForce }
        #expect(bursts.count == 1)
        let burst = try! #require(bursts.first)
        #expect(burst.sequence == 10)
        #expect(burst.lastSequence == 16)
        #expect(burst.occurrences == 7)
        #expect(burst.summary == "7 failed logins for user auth0|bob")
        #expect(burst.timelineArguments == ["--user=auth0|bob", "--from=#10", "--to=#16"])
        #expect(summary.failedLoginsByUser == ["auth0|bob": 7])
        #expect(summary.failedLoginsByAddress.count == 7)
    }

    @Test("four failures are not a burst; failures spread wider than the window are not one either")
    func noBurst() {
        var summary = Self.summary(over: 86_400)
        for index in 0..<4 {
            summary.record(sequence: UInt64(index + 1), timestamp: Self.at(Int64(index)), event: Self.failure("carol", from: nil))
        }
        for index in 0..<6 {
            summary.record(sequence: UInt64(index + 10), timestamp: Self.at(Int64(1000 + index * 700)), event: Self.failure("dave", from: nil))
        }
        #expect(summary.anomalies.isEmpty)
        #expect(summary.failedLoginsByUser == ["carol": 4, "dave": 6])
    }

    @Test("one address trying many accounts is a burst by address")
    func burstPerAddress() {
        var summary = Self.summary()
        for index in 0..<5 {
            summary.record(sequence: UInt64(index + 1), timestamp: Self.at(Int64(index)), event: Self.failure("user\(index)", from: "198.51.100.7"))
        }
        #expect(summary.anomalies.map(\.summary) == ["5 failed logins for address 198.51.100.7"])
        #expect(summary.anomalies.first?.timelineArguments.first == "--ip=198.51.100.7")
    }

    @Test("a replayed code and a reused refresh token are anomalies; unknown roots have no explain target")
    func replays() {
        var summary = Self.summary()
        summary.record(sequence: 5, timestamp: Self.at(10), event: .codeReplayed(CodeReplayed(codeHash: "abcdef0123456789", clientID: "web-app", revokedTokenIDs: ["t1"])))
        summary.record(
            sequence: 6, timestamp: Self.at(20),
            event: .refreshFamilyRevoked(RefreshFamilyRevoked(family: "fam-1", reason: .reuse, presentedHash: "h", clientID: "web-app")))
        summary.record(
            sequence: 7, timestamp: Self.at(30),
            event: .refreshFamilyRevoked(RefreshFamilyRevoked(family: "fam-2", reason: .revocation, presentedHash: nil, clientID: "web-app")))
        #expect(summary.anomalies.map(\.kind) == [.codeReplay, .refreshReuse])
        #expect(summary.anomalies.allSatisfy { $0.decisionSequence == nil })
        #expect(summary.anomalies[0].timelineArguments == ["--client=web-app", "--to=#5"])
        summary.record(sequence: 8, timestamp: Self.at(40), event: .codeReplayed(CodeReplayed(codeHash: "ff", clientID: nil, revokedTokenIDs: [])))
        #expect(summary.anomalies.last?.timelineArguments == ["--to=#8"], "no filter that would match nothing when the client is unknown")
        #expect(summary.codes.total(2) == 2)
    }

    @Test("root decisions are remembered for the most recent limit to twice-limit keys, and no more")
    func recentRootsAreBounded() {
        var roots = IncidentSummary.RecentRoots()
        let limit = IncidentSummary.RecentRoots.limit
        for index in 0..<limit { roots["k\(index)"] = UInt64(index) }
        roots["next"] = 1
        #expect(roots["k0"] == 0, "the previous generation is still consulted")
        #expect(roots["next"] == 1)
        for index in 0..<limit { roots["m\(index)"] = UInt64(index) }
        #expect(roots["k0"] == nil, "two generations later, forgotten")
        #expect(roots["m0"] == 0)
    }

    @Test("consent granted, denied and revoked are counted in their buckets")
    func consent() {
        var summary = Self.summary(over: 3599, buckets: 12)
        let answer = ConsentAnswered(userID: "auth0|alice", clientID: "web-app", audience: nil, scopes: ["openid"], interaction: nil)
        summary.record(sequence: 1, timestamp: Self.at(0), event: .consentGranted(answer))
        summary.record(sequence: 2, timestamp: Self.at(400), event: .consentDenied(answer))
        summary.record(sequence: 3, timestamp: Self.at(3500), event: .consentRevoked(ConsentRevoked(userID: "auth0|alice", clientID: "web-app", audience: nil, revokedKeys: [])))
        summary.record(sequence: 4, timestamp: Self.at(3550), event: nil)
        #expect(summary.consent.counts[0][0] == 1)
        #expect(summary.consent.counts[1][1] == 1)
        #expect(summary.consent.counts[2][11] == 1)
        #expect(summary.events == 4)
        #expect(summary.firstSequence == 1 && summary.lastSequence == 4)
    }
}

@Suite("IncidentReportPage: one self-contained, escaped HTML page")
struct IncidentReportPageTests {
    @Test("the page has inline SVG charts, no script and no external reference; hostile names are escaped")
    func selfContained() {
        var summary = IncidentSummaryTests.summary()
        for index in 0..<5 {
            summary.record(
                sequence: UInt64(index + 1), timestamp: IncidentSummaryTests.at(Int64(index)),
                event: IncidentSummaryTests.failure("<script>alert(1)</script>", from: "\"><img src=x>"))
        }
        let context = IncidentReportPage.Context(
            journal: "/tmp/j's journal", origin: "authledger.test/j", verification: "Verified against the pinned key: 5 events", verified: true,
            from: IncidentSummaryTests.start, to: IncidentSummaryTests.at(3600), generatedAt: IncidentSummaryTests.at(7200))
        let page = IncidentReportPage.render(summary, context: context)
        #expect(page.hasPrefix("<!doctype html>"))
        #expect(page.components(separatedBy: "<svg ").count - 1 == 5)
        #expect(!page.contains("<script"))
        #expect(!page.contains("<img"))
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(page.contains("id=\"anomaly-1\"") && page.contains("id=\"anomaly-2\""), "one anchor per anomaly, even when two start at one event")
        #expect(!page.contains("href=\"http"))
        #expect(page.contains("<p class=\"ok\">Verified against the pinned key: 5 events</p>"))
        // The burst's timeline command quotes the journal path for the shell, and the page escapes it.
        #expect(page.contains("&#39;--journal=/tmp/j&#39;\\&#39;&#39;s journal&#39;"))
    }

    @Test("an unverified journal is said so at the top")
    func unverified() {
        let context = IncidentReportPage.Context(
            journal: "j", origin: "unverified", verification: "NOT VERIFIED: verification failed at #3", verified: false,
            from: IncidentSummaryTests.start, to: IncidentSummaryTests.start, generatedAt: IncidentSummaryTests.start)
        let page = IncidentReportPage.render(IncidentSummaryTests.summary(), context: context)
        #expect(page.contains("<p class=\"bad\">NOT VERIFIED: verification failed at #3</p>"))
        #expect(page.contains("Anomalies (0)"))
    }

    @Test("shell words: plain words stay, printable ASCII is single-quoted, anything else is ANSI-C quoted with escapes")
    func shellWords() {
        #expect(ShellWords.command(["explain", "73", "--journal=/tmp/incident"]) == "explain 73 --journal=/tmp/incident")
        #expect(ShellWords.quote("--user=auth0|bob") == "'--user=auth0|bob'")
        #expect(ShellWords.quote("it's") == "'it'\\''s'")
        #expect(ShellWords.quote("") == "''")
        #expect(ShellWords.quote("#12") == "'#12'", "a # starting a word begins a shell comment")
        #expect(ShellWords.quote("=cmd") == "'=cmd'", "zsh expands a word starting with =")
        // A quote followed by a combining mark is one Character but two scalars: it must still be escaped.
        #expect(ShellWords.quote("x'\u{301};id;'\u{301}") == "$'x\\'\\xcc\\x81;id;\\'\\xcc\\x81'")
        #expect(ShellWords.quote("a\nb") == "$'a\\x0ab'", "a newline is shown, not pasted")
        #expect(ShellWords.quote("\u{202E}evil") == "$'\\xe2\\x80\\xaeevil'", "a bidi override is shown, not live")
        #expect(ShellWords.quote("back\\slash\u{1}") == "$'back\\\\slash\\x01'")
    }

    @Test("the quoted words are read back unchanged by a real shell", arguments: [
        "plain", "--user=auth0|bob", "it's", "x'\u{301};id;'\u{301}", "a\nb", "\u{202E}evil", "$(id)", "`id`", "back\\slash", "caf\u{E9}",
    ])
    func shellRoundTrip(word: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "printf '%s' " + ShellWords.quote(word)]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(String(decoding: data, as: UTF8.self) == word)
    }
}
