import AuthCore
import Foundation
import LedgerCommandSupport
import Logging
import Synchronization
import Testing

/// Recorded values come from unauthenticated requests; what prints them for people must not let them forge
/// lines or drive the terminal.
@Suite("Text output escapes recorded values: no forged timeline or log lines, no terminal escapes")
struct TerminalOutputTests {
    /// A forged event line, a terminal escape that clears the screen, a bidi override, and a backslash.
    static let forged = "x\n#9 2026-01-01T00:00:00Z auth.consent.revoked FORGED\u{1B}[2J\u{1B}[1A\u{202E}\\"

    /// What a hostile text would do on a terminal: a line of its own, an escape sequence, a bidi override.
    static func expectInert(_ output: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!output.contains("\u{1B}"), "\(what): an escape byte reached the output", sourceLocation: sourceLocation)
        #expect(!output.contains("\u{202E}"), "\(what): a bidi override reached the output", sourceLocation: sourceLocation)
        let forgedLines = output.split(separator: "\n").filter { $0.hasPrefix("#9 2026-01-01") }
        #expect(forgedLines.isEmpty, "\(what): a forged line: \(forgedLines)", sourceLocation: sourceLocation)
    }

    @Test("TerminalText escapes interpolations, keeps literals and escapes once")
    func escaping() {
        let value = "a\nb\u{1B}[2J\u{200B}\u{2028}\u{A0}c\\"
        let line: TerminalText = "literal\t\(value)"
        #expect(line.description == "literal\ta\\u{A}b\\u{1B}[2J\\u{200B}\\u{2028}\\u{A0}c\\\\")
        let nested: TerminalText = "[\(line)]"
        #expect(nested.description == "[" + line.description + "]", "a TerminalText is not escaped twice")
        #expect(TerminalText.escape("plain ascii, ünïcödé, 日本語 ✓") == "plain ascii, ünïcödé, 日本語 ✓")
    }

    @Test("the text log handler writes one line per entry, values escaped")
    func textLog() {
        let lines = Mutex<[String]>([])
        let handler = TextLogHandler(label: "authledger") { line in lines.withLock { $0.append(line) } }
        var logger = Logger(label: "authledger", factory: { _ in handler })
        logger.logLevel = .info
        logger.info("authorize \(Self.forged)", metadata: ["client_id": "\(Self.forged)"])
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        #expect(written.first?.filter { $0 == "\n" }.count == 1, "one line")
        Self.expectInert(written.joined(), "text log")
    }

    @Test("timeline, explain and replay print a hostile client_id, state, scope and audience as inert text; the server's text log too")
    func hostileRecordedValues() async throws {
        let logged = Mutex<[String]>([])
        let handler = TextLogHandler(label: "authledger") { line in logged.withLock { $0.append(line) } }
        var logger = Logger(label: "authledger", factory: { _ in handler })
        logger.logLevel = .debug  // where the server logs each authorization's client_id (serve --log-level debug)
        let harness = try await ServerHarness(logger: logger)
        try await harness.run { browser in
            // An unknown client (an error page), a valid client with hostile state, scope and audience (redirects),
            // and the token endpoint with a hostile client_id.
            _ = try await browser.get("/authorize?" + FormEncoding.encode([("client_id", Self.forged), ("redirect_uri", "https://x.test/")]))
            _ = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters([("audience", Self.forged)], state: Self.forged)))
            _ = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters(scope: "openid " + Self.forged)))
            _ = try await browser.post("/oauth/token", form: [("grant_type", "authorization_code"), ("code", "c"), ("client_id", Self.forged)])
        }
        let journal = harness.directory + "/journal"
        let events = try harness.events()
        let timeline = try RebuildCommandTests.replay(["timeline", "--journal", journal])
        #expect(timeline.0 == 0)
        Self.expectInert(timeline.1, "timeline")
        let lines = timeline.1.split(separator: "\n")
        #expect(lines.count == Int(events.last?.0 ?? 0), "one line per event")
        #expect(lines.allSatisfy { $0.hasPrefix("#") })
        #expect(timeline.1.contains("x\\u{A}#9 2026-01-01T00:00:00Z auth.consent.revoked FORGED\\u{1B}[2J"), "the value is shown, escaped")
        let byClient = try RebuildCommandTests.replay(["timeline", "--journal", journal, "--client", Self.forged])
        Self.expectInert(byClient.1, "timeline --client")
        #expect(!byClient.1.isEmpty, "the hostile client's events are found by its id")
        for (sequence, event) in events {
            guard case .authorizeDecided = event else { continue }
            let explained = try RebuildCommandTests.replay(["explain", String(sequence), "--journal", journal])
            #expect(explained.0 == 0)
            Self.expectInert(explained.1, "explain #\(sequence)")
        }
        let replay = try RebuildCommandTests.replay(["replay", "--journal", journal])
        Self.expectInert(replay.1, "replay")
        Self.expectInert(logged.withLock { $0.joined() }, "server log")
        #expect(logged.withLock { $0.contains { $0.contains("FORGED") } }, "the server logged the hostile client_id (escaped)")
    }
}
