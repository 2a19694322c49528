import Foundation
import LedgerCore
import Testing

@testable import AuthCore

/// Schema 5 of `auth.authorize.decided` (journal format §14, "Values written once"): an outcome that issues
/// leaves to the decision's input the client, redirect URI, user, authentication time and state it holds.
@Suite("A decision's outcome leaves the values its input holds to the input")
struct OutcomeOfInputTests {
    let fixtures = ProjectionTests()

    var grant: CodeGrant {
        var grant = fixtures.grant
        grant.redirectURIGiven = true
        grant.nonce = "n-1"
        return grant
    }

    var input: AuthorizationInput { AuthorizationInput(parameters: fixtures.parameters, session: fixtures.session, now: fixtures.now) }

    func decision(_ outcome: AuthorizationOutcome, input: AuthorizationInput? = nil, parametersOfRequest: Bool = false) -> AuthorizeDecided {
        AuthorizeDecided(
            requestOffset: 1, configurationVersion: 8, input: input ?? self.input, decision: AuthorizationDecision(outcome: outcome, rule: "authorized"),
            interaction: nil, parametersOfRequest: parametersOfRequest)
    }

    func json(_ decided: AuthorizeDecided, _ encoding: PayloadEncoding = .compact) throws -> String {
        String(decoding: try PayloadCoding.json(try AuthEvent.authorizeDecided(decided).payload(encoding)), as: UTF8.self)
    }

    @Test(
        "a code's or tokens' grant and delivery are written without what the input holds, and read back whole",
        arguments: [PayloadEncoding.json, .compact], ["issueCode", "issueTokens"])
    func leftOutAndReadBack(_ encoding: PayloadEncoding, outcome name: String) throws {
        let outcome: AuthorizationOutcome =
            name == "issueCode"
            ? .issueCode(grant, delivery: fixtures.delivery)
            : .issueTokens(grant, responseTypes: ["id_token", "token"], delivery: ResponseDelivery(redirectURI: grant.redirectURI, mode: .fragment, state: "st-1"))
        let decided = decision(outcome)
        #expect(decided.outcomeOfInput)
        let text = try json(decided, encoding)
        let outcomeText = String(text[try #require(text.range(of: #""outcome":"#)).upperBound..<(try #require(text.range(of: #","rule":"#))).lowerBound])
        for member in ["client_id", "redirect_uri", "user_id", "auth_time", "redirectURI", "state"] {
            #expect(!outcomeText.contains(#""\#(member)""#), "\(member) in \(outcomeText)")
        }
        #expect(outcomeText.contains(#""nonce":"n-1""#) && outcomeText.contains(#""scopes":["#) && outcomeText.contains(#""expires_at""#))

        let payload = try AuthEvent.authorizeDecided(decided).payload(encoding)
        let read = try #require(try AuthEvent(type: AuthEvent.authorizeDecidedType, payload: payload, sequence: 11) { _ in nil })
        #expect(read == .authorizeDecided(decided).resolved(at: 11))
        guard case .authorizeDecided(let readDecided) = read else { return }
        #expect(try AuthEvent.authorizeDecided(readDecided).payload(encoding) == payload, "encoded again, the same bytes")
    }

    @Test("left to a request's parameters, the values come back with them; a code takes the grant of the decision completed so")
    func withTheRequestsParameters() throws {
        let decided = decision(.issueCode(grant, delivery: fixtures.delivery), parametersOfRequest: true)
        let request = AuthEvent.authorizeRequested(
            AuthorizeRequested(parameters: fixtures.parameters, clientIP: "127.0.0.1", userAgent: "test", interaction: nil))
        let code = AuthEvent.codeIssued(CodeIssued(codeHash: OpaqueToken.hash("code-1"), grant: grant, decisionOffset: 1, grantOfDecision: true))
        let stored: [UInt64: (AuthEvent, [UInt8])] = [
            10: (request, try request.payload()), 11: (.authorizeDecided(decided), try AuthEvent.authorizeDecided(decided).payload()),
            12: (code, try code.payload()),
        ]
        func read(_ sequence: UInt64) throws -> AuthEvent? {
            guard let (event, payload) = stored[sequence] else { return nil }
            return try AuthEvent(type: event.eventType, payload: payload, sequence: sequence, earlier: read)
        }
        #expect(try read(11) == .authorizeDecided(decided).resolved(at: 11))
        #expect(try read(12) == code.resolved(at: 12))

        // Alone, the decision holds placeholders until it is completed...
        let alone = try #require(try AuthEvent(type: AuthEvent.authorizeDecidedType, payload: stored[11]!.1, sequence: 11))
        guard case .authorizeDecided(let incomplete) = alone, case .issueCode(let placeholder, _) = incomplete.decision.outcome else {
            Issue.record("not a decision to issue a code")
            return
        }
        #expect(placeholder.clientID.isEmpty && incomplete.outcomeOfInput)
        #expect(alone.completed(like: .authorizeDecided(decided)) == .authorizeDecided(decided).resolved(at: 11))
        // ...a code does not take its grant from it...
        #expect(throws: EventReferenceError.self) {
            _ = try AuthEvent(type: AuthEvent.codeIssuedType, payload: stored[12]!.1, sequence: 12) { _ in alone }
        }
        // ...and encoding it would lose the values: refused.
        #expect(throws: EncodingError.self) { _ = try alone.payload() }
    }

    @Test(
        "an outcome whose values are not all the input's writes them all",
        arguments: ["state differs", "no state given", "redirect URI not given", "no session", "another user", "earlier authentication"])
    func writtenOut(_ difference: String) throws {
        var grant = self.grant
        var delivery = fixtures.delivery
        var input = self.input
        switch difference {
        case "state differs": delivery.state = "other"
        case "no state given": delivery.state = nil
        case "redirect URI not given": grant.redirectURIGiven = false
        case "no session": input.session = nil
        case "another user": grant.userID = "auth0|bob"
        default: grant.authTime = fixtures.now
        }
        let decided = decision(.issueCode(grant, delivery: delivery), input: input)
        #expect(!decided.outcomeOfInput)
        let text = try json(decided)
        #expect(text.contains(#""client_id":"web-app""#) && text.contains(#""redirectURI""#))
        let read = try AuthEvent(type: AuthEvent.authorizeDecidedType, payload: try AuthEvent.authorizeDecided(decided).payload(), sequence: 11)
        #expect(read == .authorizeDecided(decided).resolved(at: 11))
    }

    @Test("a decision that names its request by sequence number leaves the values out all the same: they are its own input's")
    func bySequenceNumber() throws {
        let decided = AuthorizeDecided(
            requestSequence: 10, configurationVersion: 8, input: input,
            decision: AuthorizationDecision(outcome: .issueCode(grant, delivery: fixtures.delivery), rule: "authorized"), interaction: nil)
        #expect(decided.outcomeOfInput)
        #expect(try !json(decided).contains("redirectURI"))
        let read = try AuthEvent(type: AuthEvent.authorizeDecidedType, payload: try AuthEvent.authorizeDecided(decided).payload(), sequence: 11)
        #expect(read == .authorizeDecided(decided))
    }

    @Test("without state in the parameters or in the delivery, the values are still left out, and read back without state")
    func withoutState() throws {
        var parameters = fixtures.parameters.values
        parameters["state"] = nil
        var delivery = fixtures.delivery
        delivery.state = nil
        let input = AuthorizationInput(parameters: AuthorizeParameters(values: parameters), session: fixtures.session, now: fixtures.now)
        let decided = decision(.issueCode(grant, delivery: delivery), input: input)
        #expect(decided.outcomeOfInput)
        let read = try AuthEvent(type: AuthEvent.authorizeDecidedType, payload: try AuthEvent.authorizeDecided(decided).payload(), sequence: 11)
        #expect(read == .authorizeDecided(decided).resolved(at: 11))
    }

    @Test("a payload that leaves out some of the values and writes others, or leaves them to an input without them, is refused")
    func refused() throws {
        let decided = decision(.issueCode(grant, delivery: fixtures.delivery))
        let text = try json(decided, .json)
        func decode(_ forged: String) throws {
            _ = try AuthEvent(type: AuthEvent.authorizeDecidedType, payload: Array(forged.utf8), sequence: 11)
        }
        try decode(text)
        // The user written in a grant that leaves out its client.
        let withUser = text.replacingOccurrences(of: #""_0":{"#, with: #""_0":{"user_id":"auth0|alice","#)
        #expect(withUser != text)
        #expect(throws: DecodingError.self) { try decode(withUser) }
        // A delivery with its state beside such a grant.
        let withState = text.replacingOccurrences(of: #""delivery":{"mode":"query"}"#, with: #""delivery":{"mode":"query","state":"x"}"#)
        #expect(withState != text)
        #expect(throws: DecodingError.self) { try decode(withState) }
        // An input whose parameters have no redirect URI.
        let withoutRedirect = text.replacingOccurrences(of: #""redirect_uri":"http://127.0.0.1:9000/callback","#, with: "")
        #expect(withoutRedirect != text)
        #expect(throws: DecodingError.self) { try decode(withoutRedirect) }
        // A second outcome beside it.
        let twoOutcomes = text.replacingOccurrences(of: #""delivery":{"mode":"query"}}}"#, with: #""delivery":{"mode":"query"}},"login":{"connection":"c"}}"#)
        #expect(twoOutcomes != text)
        #expect(throws: DecodingError.self) { try decode(twoOutcomes) }
        // An input without the session whose user and authentication time the grant leaves to it.
        let withoutSession = text.replacingOccurrences(of: #","session":\{[^}]*\}"#, with: "", options: .regularExpression)
        #expect(withoutSession != text)
        #expect(throws: DecodingError.self) { try decode(withoutSession) }
        // Left to a request that has no client.
        let fromRequest = decision(.issueCode(grant, delivery: fixtures.delivery), parametersOfRequest: true)
        var parameters = fixtures.parameters.values
        parameters["client_id"] = nil
        let request = AuthEvent.authorizeRequested(
            AuthorizeRequested(parameters: AuthorizeParameters(values: parameters), clientIP: nil, userAgent: nil, interaction: nil))
        #expect(throws: EventReferenceError.self) {
            _ = try AuthEvent(type: AuthEvent.authorizeDecidedType, payload: try AuthEvent.authorizeDecided(fromRequest).payload(), sequence: 11) { _ in
                request
            }
        }
    }
}
