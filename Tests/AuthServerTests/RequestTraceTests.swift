import AuthCore
import AuthJournal
import Foundation
import LedgerCore
import LedgerJournal
import Testing

/// The trace id of a traced request in the events it records (`tools/trace_test.py` runs the server with a
/// real tracer and an OTLP receiver; these tests bind the id directly).
@Suite("Trace ids in events: written at the payload's top level, indexed, listed by timeline --trace")
struct RequestTraceTests {
    static let trace = "4bf92f3577b34da6a3ce929d0e0e4736"

    @Test("a trace id is 32 lowercase hex digits, not all zero")
    func traceIDs() {
        #expect(RequestTrace.isTraceID(Self.trace))
        #expect(!RequestTrace.isTraceID(Self.trace.uppercased()))
        #expect(!RequestTrace.isTraceID(String(repeating: "0", count: 32)))
        #expect(!RequestTrace.isTraceID(String(Self.trace.dropLast())))
        #expect(!RequestTrace.isTraceID(Self.trace + "0"))
        #expect(!RequestTrace.isTraceID("4bf92f3577b34da6a3ce929d0e0e473g"))
    }

    @Test("annotating adds one top-level member, canonically; only a top-level member is read back; bad ids and non-objects are left alone")
    func annotate() throws {
        let payload = Array(#"{"client_id":"web-app","parameters":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}}"#.utf8)
        #expect(RequestTrace.traceID(in: payload) == nil, "a nested trace_id (a request parameter) is no trace id")
        let annotated = RequestTrace.annotate(payload, traceID: Self.trace)
        #expect(RequestTrace.traceID(in: annotated) == Self.trace)
        let members = try #require(try JSONSerialization.jsonObject(with: Data(annotated)) as? [String: Any])
        #expect(Set(members.keys) == ["client_id", "parameters", "trace_id"])
        #expect(annotated == (try PayloadCoding.encode(PayloadCoding.decode(JSONValue.self, from: annotated))), "canonical")
        #expect(RequestTrace.annotate(payload, traceID: "not-a-trace") == payload)
        #expect(RequestTrace.annotate(Array("[1,2]".utf8), traceID: Self.trace) == Array("[1,2]".utf8))
        #expect(RequestTrace.traceID(in: Array(#"{"trace_id":"00000000000000000000000000000000"}"#.utf8)) == nil)
        #expect(RequestTrace.traceID(in: Array(#"{"trace_id":7}"#.utf8)) == nil)
    }

    @Test("in a compact payload too: the member added while encoding is read back at the top level only; annotating keeps the encoding")
    func compact() throws {
        let nested = try CompactCoding.encode(JSONValue.object(["client_id": .string("web-app"), "parameters": .object(["trace_id": .string(Self.trace)])]))
        #expect(RequestTrace.traceID(in: nested) == nil, "a nested trace_id (a request parameter) is no trace id")
        let annotated = RequestTrace.annotate(nested, traceID: Self.trace)
        #expect(PayloadCoding.isCompact(annotated) && RequestTrace.traceID(in: annotated) == Self.trace)
        let event = AuthEvent.codeReplayed(CodeReplayed(codeHash: OpaqueToken.hash("code"), clientID: "web-app", revokedTokenIDs: []))
        let encoded = try event.payload(.compact, adding: [(RequestTrace.member, Self.trace)])
        #expect(RequestTrace.traceID(in: encoded) == Self.trace)
        #expect(try AuthEvent(type: event.eventType, payload: encoded) == event)
        let json = try event.payload(.json, adding: [(RequestTrace.member, Self.trace)])
        #expect(try PayloadCoding.json(encoded) == json)
    }

    @Test("events recorded in a traced request carry its id, prepared or appended on the writer; they read back as untraced ones; timeline --trace lists them and rebuild --check agrees")
    func recorded() async throws {
        let harness = try await ServerHarness()
        let ledger = harness.ledger
        func failure(_ user: String) -> AuthEvent {
            .loginFailed(
                LoginFailed(
                    username: "\(user)@example.com", connection: "Username-Password-Authentication", reason: .wrongPassword, interaction: nil,
                    clientIP: "203.0.113.9", userID: "auth0|\(user)"))
        }
        let untraced = try await ledger.record([failure("alice")])
        // carol has no subject key yet: her event is encoded on the writer; alice's is prepared before it.
        let traced = try await RequestTrace.$traceID.withValue(Self.trace) {
            try await ledger.record([failure("carol"), failure("alice")])
        }
        let other = try await RequestTrace.$traceID.withValue("0af7651916cd43dd8448eb211c80319c") {
            try await ledger.record([failure("alice")])
        }
        await ledger.journal.close()

        let reader = try JournalReader(directory: harness.directory + "/journal")
        try reader.read { snapshot in
            for sequence in traced {
                let envelope = try #require(try snapshot.event(sequence))
                #expect(RequestTrace.traceID(in: envelope.payload) == Self.trace, "#\(sequence)")
            }
            #expect(RequestTrace.traceID(in: try #require(try snapshot.event(untraced[0])).payload) == nil)
        }
        reader.close()
        let events = Dictionary(uniqueKeysWithValues: try harness.events())
        #expect(events[traced[1]] == events[untraced[0]], "the trace id changes nothing the event says")

        let journal = harness.directory + "/journal"
        let (status, output) = try RebuildCommandTests.replay(["timeline", "--journal", journal, "--trace", Self.trace, "--format", "jsonl"])
        #expect(status == 0, "\(output)")
        let listed = output.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["sequence"] as? Int
        }
        #expect(listed == traced.map(Int.init), "only the traced request's events, not \(other)")
        let described = output.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["description"] as? String
        }
        #expect(described.count == traced.count && described.allSatisfy { $0.hasPrefix("login failed for ") }, "the text output's words: \(described)")
        let (textStatus, text) = try RebuildCommandTests.replay(["timeline", "--journal", journal, "--trace", Self.trace])
        #expect(textStatus == 0 && text.contains("[trace \(Self.trace)]"), "\(text)")
        let (badStatus, _) = try RebuildCommandTests.run("authledger-replay", ["timeline", "--journal", journal, "--trace", "nope"])
        #expect(badStatus == 2)
        let (rebuildStatus, rebuilt) = try RebuildCommandTests.replay(["rebuild", "--check", "--journal", journal])
        #expect(rebuildStatus == 0, "the trace index is folded the same from the events: \(rebuilt)")
        #expect(try RebuildCommandTests.replay(["verify", "--journal", journal]).0 == 0)
    }
}
