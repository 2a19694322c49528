import LedgerCore
import Testing

@testable import AuthCore

/// A decision leaves its request's parameters to the request, and a code its grant to the decision
/// (journal format §14, "Values written once"): each is written once, and read back whole.
@Suite("Values written once: a decision's parameters in its request, a code's grant in its decision")
struct ValuesWrittenOnceTests {
    let fixtures = ProjectionTests()

    /// The three events of an authorization that issues a code, as the server records them: the decision's
    /// outcome leaves the values its input holds to it (schema 5), and the code its grant to the decision.
    func authorization() -> (request: AuthEvent, decision: AuthEvent, code: AuthEvent) {
        var grant = fixtures.grant
        grant.redirectURIGiven = true
        let request = AuthorizeRequested(parameters: fixtures.parameters, clientIP: "127.0.0.1", userAgent: "test", interaction: nil)
        let decision = AuthorizeDecided(
            requestOffset: 1, configurationVersion: 8, input: AuthorizationInput(parameters: fixtures.parameters, session: fixtures.session, now: fixtures.now),
            decision: AuthorizationDecision(outcome: .issueCode(grant, delivery: fixtures.delivery), rule: "authorized"), interaction: nil,
            parametersOfRequest: true)
        let code = CodeIssued(codeHash: OpaqueToken.hash("code-1"), grant: grant, decisionOffset: 1, grantOfDecision: true)
        return (.authorizeRequested(request), .authorizeDecided(decision), .codeIssued(code))
    }

    @Test("the decision's payload leaves out the parameters and the code's the grant; read with the earlier event, both are whole again", arguments: [PayloadEncoding.json, .compact])
    func leftOutAndReadBack(_ encoding: PayloadEncoding) throws {
        let (request, decision, code) = authorization()
        let decisionJSON = String(decoding: try PayloadCoding.json(try decision.payload(encoding)), as: UTF8.self)
        #expect(!decisionJSON.contains(#""parameters""#) && decisionJSON.contains(#""request_offset":1"#))
        let codeJSON = String(decoding: try PayloadCoding.json(try code.payload(encoding)), as: UTF8.self)
        #expect(!codeJSON.contains(#""grant""#) && codeJSON.contains(#""decision_offset":1"#))

        // Events 10, 11, 12 of a journal: each read with the one before it.
        let stored: [UInt64: (AuthEvent, [UInt8])] = [
            10: (request, try request.payload(encoding)), 11: (decision, try decision.payload(encoding)), 12: (code, try code.payload(encoding)),
        ]
        // The code's decision is read completed in turn, from its request.
        func read(_ sequence: UInt64) throws -> AuthEvent? {
            guard let (event, payload) = stored[sequence] else { return nil }
            return try AuthEvent(type: event.eventType, payload: payload, sequence: sequence, earlier: read)
        }
        #expect(try read(11) == decision.resolved(at: 11))
        #expect(try read(12) == code.resolved(at: 12))
        guard case .authorizeDecided(let readDecision)? = try read(11), case .codeIssued(let readCode)? = try read(12) else {
            Issue.record("not read back")
            return
        }
        #expect(readDecision.input.parameters == fixtures.parameters && readDecision.parametersOfRequest)
        #expect(readDecision.outcomeOfInput)
        #expect(readCode.grant.clientID == fixtures.grant.clientID && readCode.grantOfDecision)
        // Encoded again, the same bytes: what is left out stays left out.
        #expect(try AuthEvent.authorizeDecided(readDecision).payload(encoding) == stored[11]!.1)
        #expect(try AuthEvent.codeIssued(readCode).payload(encoding) == stored[12]!.1)
        // Read without the earlier event (a tool that reads one event alone), the gap says where to look.
        let alone = try #require(try AuthEvent(type: decision.eventType, payload: stored[11]!.1, sequence: 11))
        #expect(alone.valuesFrom == 10)
        #expect(alone.completed(like: decision) == decision.resolved(at: 11), "what records an event fills it from the event itself")
    }

    @Test("a decision or code that leaves its values to an event that is missing, or of another kind, is refused by name")
    func wrongEarlierEvent() throws {
        let (request, decision, code) = authorization()
        let decisionPayload = try decision.payload(.compact), codePayload = try code.payload(.compact)
        #expect(throws: EventReferenceError.self) {
            _ = try AuthEvent(type: decision.eventType, payload: decisionPayload, sequence: 11) { _ in nil }
        }
        #expect(throws: EventReferenceError.self) {
            _ = try AuthEvent(type: decision.eventType, payload: decisionPayload, sequence: 11) { _ in code }
        }
        // A code's decision must be one that issued a code.
        let login = fixtures.decided(.login(connection: ProjectionTests.connection, loginHint: nil))
        do {
            _ = try AuthEvent(type: code.eventType, payload: codePayload, sequence: 12) { _ in login }
            Issue.record("a code completed from a decision that issued none")
        } catch let error as EventReferenceError {
            #expect(error.description.contains("auth.code.issued takes values from #11, which is auth.authorize.decided, not the event that holds them"))
        }
        // The request itself takes nothing from anyone.
        #expect(try AuthEvent(type: request.eventType, payload: try request.payload(.compact), sequence: 10) { _ in nil } == request)
    }

    @Test("only an event that refers by offset may leave values out: without the offset, the payload is malformed")
    func onlyWithinACommit() throws {
        let (_, decision, code) = authorization()
        guard case .authorizeDecided(var bySequence) = decision, case .codeIssued(var codeBySequence) = code else { return }
        // Referring by sequence number, the values are written whatever the flag says...
        bySequence.requestOffset = nil
        bySequence.requestSequence = 10
        codeBySequence.decisionOffset = nil
        codeBySequence.decisionSequence = 11
        let written = String(decoding: try AuthEvent.authorizeDecided(bySequence).payload(), as: UTF8.self)
        #expect(written.contains(#""parameters""#))
        #expect(String(decoding: try AuthEvent.codeIssued(codeBySequence).payload(), as: UTF8.self).contains(#""grant""#))
        // ...and a payload that leaves them out without an offset is refused.
        let forged = written.replacingOccurrences(of: #""parameters":"#, with: #""other":"#)
        #expect(throws: DecodingError.self) { _ = try AuthEvent(type: decision.eventType, payload: Array(forged.utf8)) }
        let codeForged = #"{"code_hash":"\#(OpaqueToken.hash("code-1"))","decision_sequence":11}"#
        #expect(throws: DecodingError.self) { _ = try AuthEvent(type: code.eventType, payload: Array(codeForged.utf8)) }
    }

    @Test("decisions and codes are written in the schema versions that leave values out (5 and 3)")
    func schemaVersions() {
        #expect(AuthEvent.memberSchemaVersion(of: AuthEvent.authorizeDecidedType) == 5)
        #expect(AuthEvent.memberSchemaVersion(of: AuthEvent.codeIssuedType) == 3)
    }
}
