import AuthCore
import LedgerCore
import Testing

/// The events of every flow are sealed from their typed values (no JSON parse); what they store must read
/// exactly as the general path's, opened and unopened.
@Suite("Sealing from typed values reads as sealing through JSON")
struct TypedSealingTests {
    static let time = LedgerTimestamp(microsecondsSinceEpoch: 1_764_633_600_000_000)
    static let session = SessionSnapshot(sessionHash: "s", userID: "auth0|alice", connection: "db", authTime: time, expiresAt: time)

    static var events: [AuthEvent] {
        var requested = AuthorizeRequested(
            parameters: AuthorizeParameters(values: ["client_id": "web-app", "state": "a\"b\\\\c"]), clientIP: "203.0.113.7",
            userAgent: "Agent/1.0 \"quoted\"", interaction: nil)
        requested.userID = "auth0|alice"
        var anonymous = requested
        anonymous.userID = nil
        anonymous.userAgent = nil
        return [
            .authorizeRequested(requested), .authorizeRequested(anonymous),
            .loginSucceeded(LoginSucceeded(userID: "auth0|alice", connection: "db", session: session, interaction: "i", clientIP: "2001:db8::1")),
            .loggedOut(LoggedOut(sessionHash: "s", userID: "auth0|alice", clientIP: "203.0.113.7")),
            .tokenIssued(TokenIssued(
                grantType: "authorization_code", clientID: "web-app", userID: "auth0|alice", codeHash: "c", decisionSequence: 3, accessTokenID: "a",
                idTokenID: nil, scopes: ["openid"], audience: nil, organizationID: nil, expiresAt: time, clientIP: "203.0.113.7")),
            .tokenRejected(TokenRejected(grantType: "refresh_token", clientID: nil, error: TokenError(.invalidGrant, "The code was already used."), codeHash: nil, clientIP: "198.51.100.1")),
            .tokenRevoked(TokenRevoked(tokenID: "t", clientID: "web-app", clientIP: "198.51.100.1")),
        ]
    }

    @Test("opened with the key, and unopened, both paths give the same event, in either payload encoding", arguments: [PayloadEncoding.json, .compact])
    func samePayloads(encoding: PayloadEncoding) throws {
        let dataKey = DataKey.generate()
        var keys: [String: SubjectKey] = [:]
        let key = { (subject: String, _: DataKey) -> SubjectKey in
            if let known = keys[subject] { return known }
            let made = SubjectKey.generate()
            keys[subject] = made
            return made
        }
        let opener: PersonalData.Opener = { sealed, context in
            guard let key = keys[sealed.subject], let bytes = try? key.open(sealed, context: context) else { return .erased }
            return .value(String(decoding: bytes, as: UTF8.self))
        }
        for event in Self.events {
            let typed = try #require(try PersonalData.sealedWithoutParsing(event, time: Self.time, dataKey: dataKey, encoding: encoding, key: key))
            let general = try #require(try PersonalData.sealed(try event.payload(encoding), type: event.eventType, time: Self.time, dataKey: dataKey, key: key))
            #expect(PayloadEncoding.of(typed.payload) == encoding && PayloadEncoding.of(general.payload) == encoding)
            // Read without an opener through the text path too (what tools that show payloads use).
            let shown = try PersonalData.open(typed.payload, type: event.eventType, opener: nil)
            #expect(try AuthEvent(type: event.eventType, payload: shown) == typed.unopened)
            #expect(try AuthEvent(type: event.eventType, payload: typed.payload, opener: opener) == AuthEvent(type: event.eventType, payload: general.payload, opener: opener))
            #expect(try AuthEvent(type: event.eventType, payload: typed.payload) == typed.unopened)
            #expect(try AuthEvent(type: event.eventType, payload: general.unopened) == typed.unopened)
            #expect(!String(decoding: typed.payload, as: UTF8.self).contains("203.0.113.7"))
        }
        #expect(throws: PersonalData.Unsealable.self) {
            try PersonalData.sealedWithoutParsing(Self.events[0], time: Self.time, dataKey: nil, key: key)
        }
    }
}
