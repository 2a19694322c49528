import AuthCore
import AuthJournal
import Foundation
import LedgerCore
import LedgerJournal
import Testing

@testable import AuthServer

/// The events of an authorization are encoded, sealed and signed before the journal's writer: they refer
/// to each other within their commit by offset, which reading resolves into sequence numbers.
@Suite("Events prepared outside the journal's writer, referring to each other by offset")
struct PreparedEventsTests {
    @Test("an authorization's decision names its request by offset 1, its code the decision; read back, both resolve to the events' sequence numbers")
    func offsets() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await browser.authorize(webAppParameters())
            let again = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters(state: "again")))
            #expect(again.redirectParameters["code"] != nil)
        }
        let events = try harness.events()
        let decisions = events.compactMap { sequence, event in if case .authorizeDecided(let decided) = event { (sequence, decided) } else { nil } }
        #expect(decisions.count >= 2)
        for (sequence, decided) in decisions {
            #expect(decided.requestOffset == 1)
            #expect(decided.requestSequence == sequence - 1)
            #expect(events.first { $0.0 == decided.requestSequence }?.1.eventType == AuthEvent.authorizeRequestedType)
        }
        let codes = events.compactMap { sequence, event in if case .codeIssued(let issued) = event { (sequence, issued) } else { nil } }
        #expect(codes.count == 2)
        for (sequence, issued) in codes {
            #expect(issued.decisionOffset == 1 && issued.decisionSequence == sequence - 1)
        }
        let opened = events.compactMap { sequence, event in if case .interactionOpened(let opened) = event { (sequence, opened) } else { nil } }
        #expect(!opened.isEmpty)
        for (sequence, interaction) in opened {
            #expect(interaction.decisionSequence == sequence - 1)
        }
        // As stored: the offset, no sequence number, in the new schema versions.
        let reader = try JournalReader(directory: harness.directory + "/journal")
        defer { reader.close() }
        try reader.read { snapshot in
            let decision = try #require(try snapshot.event(decisions[0].0))
            #expect(decision.schemaVersion == 3)
            let text = String(decoding: decision.payload, as: UTF8.self)
            #expect(text.contains(#""request_offset":1"#) && !text.contains("request_sequence"))
            let code = try #require(try snapshot.event(codes[0].0))
            #expect(code.schemaVersion == 2 && String(decoding: code.payload, as: UTF8.self).contains(#""decision_offset":1"#))
        }
    }

    @Test("events of a subject with a key are prepared before the writer; one whose subject has no key yet is appended on the writer, and both read the same")
    func preparedOrNot() async throws {
        let harness = try await ServerHarness()
        let ledger = harness.ledger
        let known = AuthEvent.loginFailed(
            LoginFailed(
                username: "alice@example.com", connection: "Username-Password-Authentication", reason: .wrongPassword, interaction: nil,
                clientIP: "203.0.113.9", userID: "auth0|carol"))
        // carol (in no tenant file) has no subject key until something of hers is sealed in a commit.
        #expect(try await ledger.prepare([known]) == nil)
        let first = try await ledger.record([known])
        #expect(try await ledger.prepare([known]) != nil, "carol's key exists now")
        let second = try await ledger.record([known])
        #expect(second[0] == first[0] + 1)
        await ledger.journal.close()
        let events = try harness.events()
        let failures = events.filter { $0.0 == first[0] || $0.0 == second[0] }.map(\.1)
        #expect(failures.count == 2 && failures[0] == failures[1], "the writer's and the prepared encoding read back the same")
    }
}
