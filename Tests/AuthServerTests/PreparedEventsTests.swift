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
            // Read back with the request's parameters, which the decision leaves to it (written once).
            guard case .authorizeRequested(let request)? = events.first(where: { $0.0 == decided.requestSequence })?.1 else {
                Issue.record("#\(sequence) does not follow its request")
                continue
            }
            #expect(decided.parametersOfRequest && decided.input.parameters == request.parameters && request.parameters["client_id"] != nil)
        }
        let codes = events.compactMap { sequence, event in if case .codeIssued(let issued) = event { (sequence, issued) } else { nil } }
        #expect(codes.count == 2)
        for (sequence, issued) in codes {
            #expect(issued.decisionOffset == 1 && issued.decisionSequence == sequence - 1)
            // Read back with the grant of its decision's outcome, which it leaves to the decision.
            guard case .authorizeDecided(let decided)? = events.first(where: { $0.0 == issued.decisionSequence })?.1,
                case .issueCode(let grant, _) = decided.decision.outcome
            else {
                Issue.record("#\(sequence) does not follow a decision to issue a code")
                continue
            }
            #expect(issued.grantOfDecision && issued.grant == grant && grant.userID == "auth0|alice")
        }
        let opened = events.compactMap { sequence, event in if case .interactionOpened(let opened) = event { (sequence, opened) } else { nil } }
        #expect(!opened.isEmpty)
        for (sequence, interaction) in opened {
            #expect(interaction.decisionSequence == sequence - 1)
        }
        // As stored: the offset, no sequence number, in the new schema versions (compact payloads: 0x8000
        // set); the decision without the request's parameters, the code without the decision's grant.
        let reader = try JournalReader(directory: harness.directory + "/journal")
        defer { reader.close() }
        try reader.read { snapshot in
            let decision = try #require(try snapshot.event(decisions[0].0))
            #expect(decision.schemaVersion == 0x8005 && PayloadCoding.isCompact(decision.payload))
            let text = String(decoding: try PayloadCoding.json(decision.payload), as: UTF8.self)
            #expect(text.contains(#""request_offset":1"#) && !text.contains("request_sequence"))
            #expect(!text.contains(#""parameters""#) && text.contains(#""input":{"#))
            // A decision to issue a code leaves its client, redirect URI, user, authentication time and state
            // to the input.
            let issuing = try #require(try snapshot.event(codes[0].0 - 1))
            #expect(issuing.schemaVersion == 0x8005)
            let issuingText = String(decoding: try PayloadCoding.json(issuing.payload), as: UTF8.self)
            #expect(issuingText.contains(#""issueCode":{"_0":{"#) && issuingText.contains(#""delivery":{"mode":"query"}"#), "\(issuingText)")
            #expect(!issuingText.contains("client_id") && !issuingText.contains("redirect_uri") && !issuingText.contains("redirectURI"), "\(issuingText)")
            let code = try #require(try snapshot.event(codes[0].0))
            let codeText = String(decoding: try PayloadCoding.json(code.payload), as: UTF8.self)
            #expect(code.schemaVersion == 0x8003 && codeText.contains(#""decision_offset":1"#) && !codeText.contains(#""grant""#))
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

    @Test("a subject's key read ahead with a request's other reads prepares its events; without it (or before the subject has one) preparing reads it, and all read back the same")
    func readAhead() async throws {
        let harness = try await ServerHarness()
        let ledger = harness.ledger
        let carol = PersonalData.userSubject("auth0|carol")
        let failed = AuthEvent.loginFailed(
            LoginFailed(
                username: "carol@example.com", connection: "Username-Password-Authentication", reason: .wrongPassword, interaction: nil,
                clientIP: "203.0.113.10", userID: "auth0|carol"))
        // No key yet: nothing to read ahead, and preparing (which then reads) finds none either.
        let none = try ledger.read { try ledger.readAhead(subjects: [carol], in: $0) }
        #expect(try await ledger.prepare([failed], readAhead: none) == nil)
        let first = try await ledger.record([failed], readAhead: none)

        // Read ahead: prepared from it. Read ahead for someone else: prepared by reading carol's key.
        let ahead = try ledger.read { try ledger.readAhead(subjects: [carol], in: $0) }
        let elsewhere = try ledger.read { try ledger.readAhead(subjects: [PersonalData.userSubject("auth0|nobody")], in: $0) }
        #expect(try await ledger.prepare([failed], readAhead: ahead) != nil)
        #expect(try await ledger.prepare([failed], readAhead: elsewhere) != nil)
        let second = try await ledger.record([failed], readAhead: ahead)
        let third = try await ledger.record([failed], readAhead: elsewhere)
        #expect(second[0] == first[0] + 1 && third[0] == second[0] + 1)
        await ledger.journal.close()

        // All three sealed under carol's one key: opened, they read back the same, with her address.
        let events = try harness.events()
        let recorded = events.filter { [first[0], second[0], third[0]].contains($0.0) }.map(\.1)
        #expect(recorded.count == 3 && recorded.allSatisfy { $0 == recorded[0] })
        guard case .loginFailed(let read) = recorded[0] else { Issue.record("not a failed login: \(recorded[0])"); return }
        #expect(read.clientIP == "203.0.113.10" && read.userID == "auth0|carol")
    }
}
