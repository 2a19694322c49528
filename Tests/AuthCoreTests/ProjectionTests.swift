import LedgerCore
import Testing

@testable import AuthCore

/// Projections in memory: one dictionary per table.
final class MemoryProjectionStore: ProjectionStore {
    var tables: [AuthTable: [String: [UInt8]]] = [:]

    /// The state tables, without the timeline index (which every event with a subject touches).
    var stateTables: [AuthTable: [String: [UInt8]]] { tables.filter { $0.key != .index } }

    func get(_ table: AuthTable, _ key: String) throws -> [UInt8]? { tables[table]?[key] }
    func put(_ table: AuthTable, _ key: String, _ value: [UInt8]) throws { tables[table, default: [:]][key] = value }
    func delete(_ table: AuthTable, _ key: String) throws { tables[table]?[key] = nil }
    func forEach(_ table: AuthTable, from start: String, _ body: (String, [UInt8]) throws -> Bool) throws {
        try MemoryProjectionOrder.forEach(tables[table] ?? [:], from: start, body)
    }

    func decode<T: Decodable>(_ type: T.Type, _ table: AuthTable, _ key: String) throws -> T? {
        try get(table, key).map { try ProjectionCoding.decode(type, from: $0) }
    }

    /// Applies `events`, numbered from `first`.
    func apply(_ events: [AuthEvent], from first: UInt64 = 1) throws {
        for (offset, event) in events.enumerated() {
            try AuthProjection.apply(event, sequence: first + UInt64(offset), to: self)
        }
    }
}

@Suite("AuthProjection: how each event changes the projections, and that they are a pure function of the events")
struct ProjectionTests {
    static let interaction = OpaqueToken.hash("interaction-1")
    static let connection = "Username-Password-Authentication"
    static let audience = "https://api.example.com"

    let now = LedgerTimestamp(rfc3339: "2025-06-01T12:00:00Z")!

    var parameters: AuthorizeParameters {
        AuthorizeParameters(values: [
            "response_type": "code", "client_id": "web-app", "redirect_uri": "http://127.0.0.1:9000/callback", "scope": "openid read:messages",
            "state": "st-1", "audience": Self.audience,
        ])
    }

    var session: SessionSnapshot {
        SessionSnapshot(
            sessionHash: OpaqueToken.hash("session-1"), userID: "auth0|alice", connection: Self.connection, authTime: now.adding(seconds: 5),
            expiresAt: now.adding(seconds: 86_400))
    }

    var delivery: ResponseDelivery { ResponseDelivery(redirectURI: "http://127.0.0.1:9000/callback", mode: .query, state: "st-1") }

    var grant: CodeGrant {
        CodeGrant(
            clientID: "web-app", redirectURI: "http://127.0.0.1:9000/callback", userID: "auth0|alice", scopes: ["openid", "read:messages"],
            audience: Self.audience, organizationID: nil, nonce: nil, codeChallenge: nil, codeChallengeMethod: nil, dpopJKT: nil,
            authTime: now.adding(seconds: 5), expiresAt: now.adding(seconds: 65), invitation: nil)
    }

    func opened(pending: AuthorizationOutcome = .login(connection: ProjectionTests.connection, loginHint: nil)) -> AuthEvent {
        .interactionOpened(
            InteractionOpened(
                interaction: Self.interaction,
                record: InteractionRecord(
                    parameters: parameters, progress: .fresh, bindingHash: OpaqueToken.hash("binding"), expiresAt: now.adding(seconds: 600),
                    pending: pending),
                decisionSequence: 2))
    }

    func decided(_ outcome: AuthorizationOutcome, rule: String = "test", interaction: String? = ProjectionTests.interaction) -> AuthEvent {
        .authorizeDecided(
            AuthorizeDecided(
                requestSequence: 1, configurationVersion: 8,
                input: AuthorizationInput(parameters: parameters, session: nil, now: now),
                decision: AuthorizationDecision(outcome: outcome, rule: rule), interaction: interaction))
    }

    func consent(
        _ scopes: [String], audience: String? = ProjectionTests.audience, interaction: String? = ProjectionTests.interaction
    ) -> ConsentAnswered {
        ConsentAnswered(userID: "auth0|alice", clientID: "web-app", audience: audience, scopes: scopes, interaction: interaction)
    }

    /// A whole code flow after the example tenant's configuration: request, login, consent, code.
    func flow() throws -> [AuthEvent] {
        let configuration = try Fixtures.planner.plan(try Fixtures.example(), against: ConfigurationState()).map(AuthEvent.configuration)
        let steps: [AuthEvent] = [
            .authorizeRequested(AuthorizeRequested(parameters: parameters, clientIP: "127.0.0.1", userAgent: "test", interaction: nil)),
            decided(.login(connection: Self.connection, loginHint: nil), rule: "session.authenticated", interaction: nil),
            opened(),
            .loginFailed(LoginFailed(username: "alice@example.com", connection: Self.connection, reason: .wrongPassword, interaction: Self.interaction, clientIP: "127.0.0.1")),
            .loginSucceeded(LoginSucceeded(userID: "auth0|alice", connection: Self.connection, session: session, interaction: Self.interaction, clientIP: "127.0.0.1")),
            decided(.consent(ConsentRequest(clientID: "web-app", audience: Self.audience, scopes: ["openid", "read:messages"])), rule: "consent"),
            .consentGranted(consent(["openid", "read:messages"])),
            decided(.issueCode(grant, delivery: delivery), rule: "authorized"),
            .codeIssued(CodeIssued(codeHash: OpaqueToken.hash("code-1"), grant: grant, decisionSequence: 16)),
        ]
        return configuration + steps
    }

    // MARK: - Configuration

    @Test("an empty store holds the empty configuration")
    func emptyConfiguration() throws {
        #expect(try AuthProjection.configuration(in: MemoryProjectionStore()) == ConfigurationState())
    }

    @Test("configuration events update the stored ConfigurationState, whose version is the event's sequence")
    func configurationEvents() throws {
        let events = try Fixtures.planner.plan(try Fixtures.example(), against: ConfigurationState())
        let store = MemoryProjectionStore()
        for (offset, event) in events.enumerated() {
            let sequence = UInt64(offset) * 3 + 5  // not 1, 2, 3...: the version must be the sequence given
            try AuthProjection.apply(.configuration(event), sequence: sequence, to: store)
            #expect(try AuthProjection.configuration(in: store).version == sequence)
        }
        var expected = ConfigurationState()
        for (offset, event) in events.enumerated() { expected.apply(event, at: UInt64(offset) * 3 + 5) }
        let stored = try AuthProjection.configuration(in: store)
        #expect(stored == expected)
        #expect(stored.settings == Fixtures.expectedExample.tenant)
        #expect(stored.clients["web-app"]?.redirectURIs == ["http://127.0.0.1:9000/callback"])
        #expect(Set(store.stateTables.keys) == [.configuration], "configuration events touch only the configuration table")
        #expect(store.tables[.configuration]?.keys.sorted() == [AuthProjection.configurationKey])
    }

    @Test("a later configuration event replaces the entity it sets")
    func configurationReplaces() throws {
        let store = MemoryProjectionStore()
        try store.apply(try flow())
        var client = try #require(try AuthProjection.configuration(in: store).clients["web-app"])
        client.redirectURIs = ["https://new.example.com/cb"]
        try AuthProjection.apply(.configuration(.clientSet(client)), sequence: 100, to: store)
        let stored = try AuthProjection.configuration(in: store)
        #expect(stored.clients["web-app"]?.redirectURIs == ["https://new.example.com/cb"])
        #expect(stored.version == 100)
    }

    @Test("invitationAccepted marks the ticket spent and adds the member")
    func invitationAccepted() throws {
        let store = MemoryProjectionStore()
        try store.apply(try flow())
        try AuthProjection.apply(
            .invitationAccepted(InvitationAccepted(ticket: "inv_123", organizationID: "org_acme", userID: "auth0|bob")), sequence: 50, to: store)
        let stored = try AuthProjection.configuration(in: store)
        #expect(stored.spentInvitations == ["inv_123"])
        #expect(stored.members["org_acme"] == ["auth0|alice", "auth0|bob"])
        #expect(stored.version == 50)
    }

    // MARK: - Sessions and interactions

    @Test("loginSucceeded stores the session by its hash and marks the interaction authenticated at the session's auth_time")
    func loginSucceeded() throws {
        let store = MemoryProjectionStore()
        try store.apply([opened()])
        try AuthProjection.apply(
            .loginSucceeded(LoginSucceeded(userID: "auth0|alice", connection: Self.connection, session: session, interaction: Self.interaction, clientIP: nil)),
            sequence: 2, to: store)
        #expect(try store.decode(SessionSnapshot.self, .sessions, session.sessionHash) == session)
        let record = try #require(try store.decode(InteractionRecord.self, .interactions, Self.interaction))
        #expect(record.progress == InteractionProgress(authenticatedAt: session.authTime, consent: nil, organizationID: nil))
        #expect(record.parameters == parameters, "the rest of the interaction is untouched")
        #expect(record.pending == .login(connection: Self.connection, loginHint: nil))
    }

    @Test("loginSucceeded without an interaction, or with an unknown one, stores only the session")
    func loginWithoutInteraction() throws {
        for interaction in [nil, "unknown-interaction"] as [String?] {
            let store = MemoryProjectionStore()
            try AuthProjection.apply(
                .loginSucceeded(LoginSucceeded(userID: "auth0|alice", connection: Self.connection, session: session, interaction: interaction, clientIP: nil)),
                sequence: 1, to: store)
            #expect(try store.decode(SessionSnapshot.self, .sessions, session.sessionHash) == session)
            #expect(store.tables[.interactions]?.isEmpty ?? true, "no interaction is created")
        }
    }

    @Test("loginFailed and authorizeRequested change no projection")
    func eventsWithoutProjection() throws {
        let store = MemoryProjectionStore()
        try store.apply([opened()])
        let before = store.stateTables
        try AuthProjection.apply(
            .loginFailed(LoginFailed(username: "alice", connection: Self.connection, reason: .unknownUser, interaction: Self.interaction, clientIP: nil)),
            sequence: 2, to: store)
        try AuthProjection.apply(
            .authorizeRequested(AuthorizeRequested(parameters: parameters, clientIP: nil, userAgent: nil, interaction: Self.interaction)), sequence: 3,
            to: store)
        #expect(store.stateTables == before)
    }

    @Test("organizationChosen records the organization in the interaction")
    func organizationChosen() throws {
        let store = MemoryProjectionStore()
        try store.apply([opened(pending: .chooseOrganization(["org_acme"]))])
        try AuthProjection.apply(.organizationChosen(OrganizationChosen(interaction: Self.interaction, organizationID: "org_acme")), sequence: 2, to: store)
        let record = try #require(try store.decode(InteractionRecord.self, .interactions, Self.interaction))
        #expect(record.progress.organizationID == "org_acme")
    }

    // MARK: - Consent

    @Test("consentGranted unions the scopes under user, client and audience, and marks the interaction granted")
    func consentGranted() throws {
        let store = MemoryProjectionStore()
        try store.apply([opened()])
        try AuthProjection.apply(.consentGranted(consent(["openid", "profile"])), sequence: 2, to: store)
        try AuthProjection.apply(.consentGranted(consent(["profile", "read:messages"], interaction: nil)), sequence: 3, to: store)

        let key = AuthProjection.consentKey(userID: "auth0|alice", clientID: "web-app", audience: Self.audience)
        #expect(try store.decode([String].self, .consents, key) == ["openid", "profile", "read:messages"])
        let record = try #require(try store.decode(InteractionRecord.self, .interactions, Self.interaction))
        #expect(record.progress.consent == .granted)

        // Another audience is another consent.
        try AuthProjection.apply(.consentGranted(consent(["openid"], audience: nil, interaction: nil)), sequence: 4, to: store)
        let noAudience = AuthProjection.consentKey(userID: "auth0|alice", clientID: "web-app", audience: nil)
        #expect(try store.decode([String].self, .consents, noAudience) == ["openid"])
        #expect(try store.decode([String].self, .consents, key) == ["openid", "profile", "read:messages"])
    }

    @Test("the consent key is the user followed by the policy's ConsentKey")
    func consentKeyMatchesPolicy() {
        #expect(
            AuthProjection.consentKey(userID: "auth0|alice", clientID: "web-app", audience: Self.audience)
                == "auth0|alice\u{1F}" + ConsentKey.make(clientID: "web-app", audience: Self.audience))
        #expect(
            AuthProjection.consentKey(userID: "u", clientID: "c", audience: nil)
                != AuthProjection.consentKey(userID: "u", clientID: "c", audience: "a"))
    }

    @Test("consentDenied marks the interaction denied and grants nothing")
    func consentDenied() throws {
        let store = MemoryProjectionStore()
        try store.apply([opened(pending: .consent(ConsentRequest(clientID: "web-app", audience: Self.audience, scopes: ["openid"])))])
        try AuthProjection.apply(.consentDenied(consent(["openid"])), sequence: 2, to: store)
        let record = try #require(try store.decode(InteractionRecord.self, .interactions, Self.interaction))
        #expect(record.progress.consent == .denied)
        #expect(store.tables[.consents]?.isEmpty ?? true)
    }

    // MARK: - Codes and decisions

    @Test("codeIssued stores a CodeRecord with status issued at the event's sequence, by code hash")
    func codeIssued() throws {
        let store = MemoryProjectionStore()
        let codeHash = OpaqueToken.hash("code-1")
        try AuthProjection.apply(.codeIssued(CodeIssued(codeHash: codeHash, grant: grant, decisionSequence: 41)), sequence: 42, to: store)
        #expect(try store.decode(CodeRecord.self, .codes, CodeRecord.key(codeHash)) == CodeRecord(grant: grant, status: .issued, issuedSequence: 42))
        #expect(store.tables[.codes]?.count == 1)
    }

    @Test(
        "a decision with a terminal outcome deletes its interaction; one that continues on a page keeps it",
        arguments: [
            ("issueCode", true), ("issueTokens", true), ("errorRedirect", true), ("errorPage", true), ("login", false), ("consent", false),
            ("chooseOrganization", false),
        ])
    func decidedInteraction(outcome name: String, deletes: Bool) throws {
        let outcome: AuthorizationOutcome =
            switch name {
            case "issueCode": .issueCode(grant, delivery: delivery)
            case "issueTokens": .issueTokens(grant, responseTypes: ["id_token", "token"], delivery: delivery)
            case "errorRedirect": .errorRedirect(error: .accessDenied, description: "denied", delivery: delivery)
            case "errorPage": .errorPage(error: .invalidRequest, description: "bad")
            case "login": .login(connection: Self.connection, loginHint: nil)
            case "consent": .consent(ConsentRequest(clientID: "web-app", audience: Self.audience, scopes: ["openid"]))
            default: .chooseOrganization(["org_acme"])
            }
        let store = MemoryProjectionStore()
        try store.apply([opened()])
        try AuthProjection.apply(decided(outcome), sequence: 2, to: store)
        let remaining = try store.get(.interactions, Self.interaction)
        #expect((remaining == nil) == deletes)
    }

    @Test("a terminal decision without an interaction deletes nothing")
    func decidedWithoutInteraction() throws {
        let store = MemoryProjectionStore()
        try store.apply([opened()])
        try AuthProjection.apply(decided(.issueCode(grant, delivery: delivery), interaction: nil), sequence: 2, to: store)
        #expect(try store.get(.interactions, Self.interaction) != nil)
    }

    @Test("loggedOut deletes the session, and only that session")
    func loggedOut() throws {
        let store = MemoryProjectionStore()
        var other = session
        other.sessionHash = OpaqueToken.hash("session-2")
        for (sequence, snapshot) in [session, other].enumerated() {
            try AuthProjection.apply(
                .loginSucceeded(LoginSucceeded(userID: "auth0|alice", connection: Self.connection, session: snapshot, interaction: nil, clientIP: nil)),
                sequence: UInt64(sequence + 1), to: store)
        }
        try AuthProjection.apply(.loggedOut(LoggedOut(sessionHash: session.sessionHash, userID: "auth0|alice", clientIP: nil)), sequence: 3, to: store)
        #expect(try store.get(.sessions, session.sessionHash) == nil)
        #expect(try store.decode(SessionSnapshot.self, .sessions, other.sessionHash) == other)
    }

    @Test("tokenIssued for a code stores the access token as active and marks the code redeemed with the token's id")
    func tokenIssuedRedeemsCode() throws {
        let store = MemoryProjectionStore()
        let codeHash = OpaqueToken.hash("code-1")
        try AuthProjection.apply(.codeIssued(CodeIssued(codeHash: codeHash, grant: grant, decisionSequence: 1)), sequence: 2, to: store)
        try AuthProjection.apply(.tokenIssued(makeTokenIssued(codeHash: codeHash)), sequence: 3, to: store)
        #expect(
            try store.decode(TokenRecord.self, .tokens, TokenRecord.key("jti-1"))
                == TokenRecord(clientID: "web-app", userID: "auth0|alice", expiresAt: now.adding(seconds: 3_600), status: .active))
        let code = try #require(try store.decode(CodeRecord.self, .codes, CodeRecord.key(codeHash)))
        #expect(code.status == .redeemed)
        #expect(code.tokenIDs == ["jti-1"])
        #expect(code.issuedSequence == 2)
        #expect(code.grant == grant)
    }

    @Test("codeReplayed revokes the code and the tokens it issued")
    func codeReplayedRevokes() throws {
        let store = MemoryProjectionStore()
        let codeHash = OpaqueToken.hash("code-1")
        try AuthProjection.apply(.codeIssued(CodeIssued(codeHash: codeHash, grant: grant, decisionSequence: 1)), sequence: 2, to: store)
        try AuthProjection.apply(.tokenIssued(makeTokenIssued(codeHash: codeHash)), sequence: 3, to: store)
        try AuthProjection.apply(.codeReplayed(CodeReplayed(codeHash: codeHash, clientID: "web-app", revokedTokenIDs: ["jti-1", "jti-unknown"])), sequence: 4, to: store)
        #expect(try store.decode(CodeRecord.self, .codes, CodeRecord.key(codeHash))?.status == .revoked)
        #expect(try store.decode(TokenRecord.self, .tokens, TokenRecord.key("jti-1"))?.status == .revoked)
        #expect(try store.get(.tokens, TokenRecord.key("jti-unknown")) == nil, "an unknown token id creates nothing")
    }

    func makeTokenIssued(codeHash: String?) -> TokenIssued {
        TokenIssued(
            grantType: "authorization_code", clientID: "web-app", userID: "auth0|alice", codeHash: codeHash, decisionSequence: 1,
            accessTokenID: "jti-1", idTokenID: "idt-1", scopes: ["openid", "read:messages"], audience: Self.audience, organizationID: nil,
            expiresAt: now.adding(seconds: 3_600), clientIP: "127.0.0.1")
    }

    // MARK: - Purity

    @Test("the code flow leaves the expected projections")
    func flowProjections() throws {
        let store = MemoryProjectionStore()
        try store.apply(try flow())
        #expect(try AuthProjection.configuration(in: store).version == 8, "auth events do not move the configuration version")
        #expect(try store.decode(SessionSnapshot.self, .sessions, session.sessionHash) == session)
        let key = AuthProjection.consentKey(userID: "auth0|alice", clientID: "web-app", audience: Self.audience)
        #expect(try store.decode([String].self, .consents, key) == ["openid", "read:messages"])
        #expect(try store.decode(CodeRecord.self, .codes, CodeRecord.key(OpaqueToken.hash("code-1"))) == CodeRecord(grant: grant, status: .issued, issuedSequence: 17))
        #expect(try store.get(.interactions, Self.interaction) == nil, "the code decision closed the interaction")
    }

    @Test("rebuilding the projections twice from the same events gives byte-identical stores")
    func rebuildIsPure() throws {
        let events = try flow()
        let first = MemoryProjectionStore()
        let second = MemoryProjectionStore()
        try first.apply(events)
        try second.apply(events)
        #expect(first.tables == second.tables)
        #expect(Set(first.stateTables.keys) == [.configuration, .sessions, .consents, .codes, .interactions])
        #expect(first.tables[.index]?.isEmpty == false, "events are indexed for the timeline")
    }

    @Test("projection values are written compact, and values an earlier release wrote as JSON are read and folded on")
    func compactAndEarlierJSON() throws {
        let events = try flow()
        let compact = MemoryProjectionStore()
        try compact.apply(events)
        for (table, entries) in compact.stateTables {
            for (key, value) in entries {
                #expect(ProjectionCoding.isCompact(value), "\(table) \(key)")
            }
        }
        // The same projections as an earlier release left them: every value JSON.
        let earlier = MemoryProjectionStore()
        try earlier.apply(events)
        for (table, entries) in earlier.stateTables {
            for (key, value) in entries { earlier.tables[table]![key] = try ProjectionCoding.json(value) }
        }
        #expect(earlier.tables != compact.tables)
        let codeHash = OpaqueToken.hash("code-1")
        let redeem = AuthEvent.tokenIssued(makeTokenIssued(codeHash: codeHash))
        try AuthProjection.apply(redeem, sequence: UInt64(events.count + 1), to: earlier)
        try AuthProjection.apply(redeem, sequence: UInt64(events.count + 1), to: compact)
        #expect(try earlier.decode(CodeRecord.self, .codes, CodeRecord.key(codeHash))?.status == .redeemed)
        #expect(try AuthProjection.configuration(in: earlier) == AuthProjection.configuration(in: compact))
        for (table, entries) in compact.stateTables {
            for (key, value) in entries {
                #expect(PayloadCoding.canonical(earlier.tables[table]?[key] ?? []) == PayloadCoding.canonical(value), "\(table) \(key)")
            }
        }
    }

    @Test("every event survives its journal payload: decoding what payload() wrote gives the same event")
    func payloadRoundTrip() throws {
        let others: [AuthEvent] = [
            .consentDenied(consent(["openid"])),
            .organizationChosen(OrganizationChosen(interaction: Self.interaction, organizationID: "org_acme")),
            .invitationAccepted(InvitationAccepted(ticket: "inv_123", organizationID: "org_acme", userID: "auth0|bob")),
            decided(.errorRedirect(error: .invalidScope, description: "bad scope", delivery: delivery)),
            decided(.errorPage(error: .invalidRequest, description: "bad client")),
            decided(.chooseOrganization(["org_a", "org_b"])),
            decided(.issueTokens(grant, responseTypes: ["id_token", "token"], delivery: delivery)),
            .loggedOut(LoggedOut(sessionHash: session.sessionHash, userID: "auth0|alice", clientIP: "127.0.0.1")),
            .tokenIssued(makeTokenIssued(codeHash: OpaqueToken.hash("code-1"))),
            .tokenRejected(TokenRejected(grantType: "authorization_code", clientID: "web-app", error: TokenError(.invalidGrant, "used"), codeHash: nil, clientIP: nil)),
            .codeReplayed(CodeReplayed(codeHash: OpaqueToken.hash("code-1"), clientID: "web-app", revokedTokenIDs: ["jti-1"])),
        ]
        let events = try flow() + others
        for event in events {
            let decoded = try AuthEvent(type: event.eventType, payload: try event.payload())
            #expect(decoded == event, "\(event.eventType)")
            // Compact (journal format §17): the same event, and as JSON exactly the JSON payload.
            let compact = try event.payload(.compact), json = try event.payload()
            #expect(PayloadCoding.isCompact(compact) && compact.count < json.count, "\(event.eventType)")
            #expect(try AuthEvent(type: event.eventType, payload: compact) == event, "\(event.eventType)")
            #expect(try PayloadCoding.json(compact) == json, "\(event.eventType)")
        }
    }

    /// SPEC: "rebuilding them from the journal alone gives exactly the live ones" — so the stored bytes must not
    /// depend on anything but the events. `ConfigurationState` holds `Set`s (members, spent invitations), whose
    /// iteration order depends on a per-instance hash seed; encoded as they are, equal states give different bytes.
    @Test("equal configuration states are stored as identical bytes, whatever the history of their sets")
    func configurationEncodingIsCanonical() throws {
        var tenant = try Fixtures.example()
        for index in 1...8 {
            tenant.connections[0].users.append(UserDefinition(userID: "auth0|user\(index)", email: "user\(index)@example.com", password: "pw"))
            tenant.organizations[0].members.append("auth0|user\(index)")
        }
        let events = try Fixtures.planner.plan(tenant, against: ConfigurationState()).map(AuthEvent.configuration)
        let first = MemoryProjectionStore()
        try first.apply(events)
        let second = MemoryProjectionStore()
        try second.apply(events)
        // The same events in the same order: the decoded states are equal...
        #expect(try AuthProjection.configuration(in: first) == AuthProjection.configuration(in: second))
        // ...and so must be the stored bytes (a rebuild is compared with the live projection).
        let state = try AuthProjection.configuration(in: first)
        let reencoded = try PayloadCoding.encode(try PayloadCoding.decode(ConfigurationState.self, from: try PayloadCoding.encode(state)))
        #expect(try PayloadCoding.encode(state) == reencoded)
        #expect(first.tables[.configuration] == second.tables[.configuration])
    }
}
