import LedgerCore
import Testing

@testable import InvestigationConsole

@Suite("The investigation console's pages: the commands' answers as escaped, linked HTML")
struct ConsolePagesTests {
    static let verified = ConsoleVerification(
        state: .verified(events: 79, pinned: true, keys: ["0123456789abcdef"], checkpoints: 3), checkedAt: "2026-12-03T08:00:00Z")
    static let frame = ConsolePages.Frame(journal: "/tmp/incident", verification: verified, head: 79)

    static let jsonl = [
        #"{"description":"login failed for bob@example.com (wrong_password) from 203.0.113.9","payload":{"client_id":"web-app","client_ip":"203.0.113.9","user_id":"auth0|bob","username":"bob@example.com","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"},"sequence":12,"time":"2026-11-27T12:00:00Z","type":"auth.login.failed"}"#,
        #"{"description":"issueCode by rule R1","payload":{"decision":{"rule":"R1"},"input":{"parameters":{"values":{"client_id":"web-app"}},"session":{"user_id":"[erased]"}}},"sequence":13,"time":"2026-11-27T12:00:01Z","type":"auth.authorize.decided"}"#,
        #"{"payload":{"code_hash":"abcdef0123456789abcdef","grant":{"client_id":"web-app","user_id":"auth0|alice"}},"sequence":14,"time":"2026-11-27T12:00:02Z","type":"auth.code.issued"}"#,
        "not json",
    ]

    @Test("timeline answers: each jsonl line an event with its description (none given: empty); what each event names, to follow")
    func parse() {
        let events = ConsoleEvent.parse(jsonl: Self.jsonl)
        #expect(events.map(\.sequence) == [12, 13, 14])
        #expect(events[0].description == "login failed for bob@example.com (wrong_password) from 203.0.113.9")
        #expect(events[2].description == "")
        #expect(events[0].references.map(\.filter) == ["user", "client", "ip", "trace"])
        #expect(events[1].isExplainable && !events[0].isExplainable)
        #expect(!events[1].references.contains { $0.filter == "user" }, "a marker is nothing to follow")
        #expect(events[2].references.contains(.init(filter: "code-hash", value: "abcdef0123456789abcdef")))
        #expect(events[2].references.contains(.init(filter: "user", value: "auth0|alice")), "found nested in the grant")
        let nested = ConsoleEvent(
            sequence: 1, time: "t", type: "auth.authorize.requested", description: "",
            payload: .object(["parameters": .object(["trace_id": .string("4bf92f3577b34da6a3ce929d0e0e4736")])]))
        #expect(nested.references.isEmpty, "a trace id counts only at the top level, as RequestTrace reads it")
    }

    @Test("links percent-encode every value; the report's command arguments become a timeline link")
    func links() {
        #expect(ConsoleLink.timeline([("user", "auth0|bob")]) == "/timeline?user=auth0%7Cbob")
        #expect(ConsoleLink.timeline(arguments: ["--user=auth0|bob", "--from=#12", "--to=#20"]) == "/timeline?user=auth0%7Cbob&from=%2312&to=%2320")
        #expect(ConsoleLink.consent(user: "a&b=c", at: "#4") == "/consent?user=a%26b%3Dc&at=%234")
        #expect(ConsoleLink.timeline([("ip", "\"><script>")]) == "/timeline?ip=%22%3E%3Cscript%3E")
    }

    @Test("a timeline page: a row per event with its links, the pinned verification at the top, every value escaped")
    func timelinePage() {
        var events = ConsoleEvent.parse(jsonl: Self.jsonl)
        events[0].description = "<script>alert(1)</script>"
        let html = ConsolePages.timeline(frame: Self.frame, filters: [("user", "<b>bob</b>")], events: events)
        #expect(!html.contains("<script>") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!html.contains("<b>bob</b>"))
        #expect(html.contains("Verified against the pinned key: 79 events"))
        #expect(html.contains("href=\"/event/12\"") && html.contains("href=\"/explain/13\""))
        #expect(html.contains("href=\"/timeline?ip=203.0.113.9\"") && html.contains("href=\"/timeline?trace=4bf92f3577b34da6a3ce929d0e0e4736\""))
        #expect(html.contains("href=\"/consent?user=auth0%7Cbob&amp;at=%2312\""), "consent at the event's moment")
    }

    @Test("the banner: not pinned is a warning, a failure names its event, events appended since verification are called out")
    func banner() {
        var frame = Self.frame
        frame.verification.state = .verified(events: 70, pinned: false, keys: [], checkpoints: 1)
        let unpinned = ConsolePages.home(frame: frame, recent: [])
        #expect(unpinned.contains("NOT pinned") && unpinned.contains("9 events appended since (now #79): not yet verified"))
        frame.verification.state = .failed(sequence: 41, reason: "bad signature <x>")
        let failed = ConsolePages.home(frame: frame, recent: [])
        #expect(failed.contains("NOT VERIFIED") && failed.contains("href=\"/event/41\"") && failed.contains("bad signature &lt;x&gt;"))
    }

    @Test("verify --format jsonl's answers read as the banner's states")
    func verification() {
        let ok = ConsoleVerification(
            jsonl: [#"{"checkpoints_verified":3,"events":79,"keys":["ab"],"ok":true,"pinned":true,"root":"x","witnessed":0}"#], errors: [], checkedAt: "t")
        #expect(ok.state == .verified(events: 79, pinned: true, keys: ["ab"], checkpoints: 3))
        let failed = ConsoleVerification(
            jsonl: [##"{"first_bad_sequence":41,"ok":false,"reason":"#41: bad signature"}"##], errors: ["verification failed at #41"], checkedAt: "t")
        #expect(failed.state == .failed(sequence: 41, reason: "#41: bad signature"))
        #expect(ConsoleVerification(jsonl: [], errors: ["cannot open"], checkedAt: "t").state == .unreadable("cannot open"))
    }

    @Test("a text answer: escaped, each #N a link to event N, a lone # left alone")
    func answer() {
        let html = ConsolePages.answer(
            frame: Self.frame, title: "Explain #74", command: "authledger-replay explain 74",
            lines: ["decided by rule R7 <after #73>; followed by #75, #76", "see # and #x"], errors: [])
        #expect(html.contains("&lt;after <a href=\"/event/73\">#73</a>&gt;"))
        #expect(html.contains("<a href=\"/event/75\">#75</a>, <a href=\"/event/76\">#76</a>"))
        #expect(html.contains("see # and #x"))
    }

    @Test("one event: its payload as indented JSON, control and bidi characters escaped")
    func eventPage() {
        let event = ConsoleEvent(
            sequence: 5, time: "t", type: "auth.login.failed", description: "d",
            payload: .object(["username": .string("evil\u{202E}txt\n<i>"), "attempt": .integer(2)]))
        let html = ConsolePages.event(frame: Self.frame, event, previous: 4, next: 6)
        #expect(html.contains("&quot;username&quot;: &quot;evil\\u202etxt\\n&lt;i&gt;&quot;"))
        #expect(html.contains("\"attempt\"") == false, "quotes are escaped in the page")
        #expect(html.contains("href=\"/event/4\"") && html.contains("href=\"/event/6\""))
    }
}
