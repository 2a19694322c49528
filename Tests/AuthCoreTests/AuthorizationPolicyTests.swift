import LedgerCore
import Testing

@testable import AuthCore

@Suite("AuthorizationPolicy.decide: a pure function of the request, the session, the consents, the configuration and the time")
struct AuthorizationPolicyTests {
    static let connection = "Username-Password-Authentication"
    static let audience = "https://api.test"
    static let noOfflineAudience = "https://no-offline.test"
    static let redirectURI = "https://client.test/callback"
    /// RFC 7636 appendix B: the S256 challenge of `dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk`.
    static let codeChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    /// RFC 9449 §10: a JWK SHA-256 thumbprint.
    static let dpopJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    static let codeTTL = 90

    static let tenant = TenantConfiguration(
        tenant: TenantSettings(issuer: "https://auth.test/", codeTTLSeconds: codeTTL),
        apis: [
            APIDefinition(identifier: audience, name: "API", scopes: ["read:messages", "write:messages"], allowOfflineAccess: true),
            APIDefinition(identifier: noOfflineAudience, name: "No offline", scopes: ["read:messages"], allowOfflineAccess: false),
        ],
        clients: [
            ClientDefinition(
                clientID: "web-app", name: "Web App", appType: .regularWeb, clientSecret: "s3cret",
                tokenEndpointAuthMethod: .clientSecretBasic, redirectURIs: [redirectURI],
                grantTypes: ["authorization_code", "refresh_token"], firstParty: false, connections: [connection])
        ],
        connections: [
            ConnectionDefinition(name: connection, users: [UserDefinition(userID: "auth0|alice", email: "alice@example.com", password: "pw-alice")])
        ])

    let configuration: ConfigurationState
    let now = LedgerTimestamp(rfc3339: "2025-06-01T12:00:00Z")!

    init() throws {
        configuration = try Fixtures.configuration(Self.tenant)
    }

    // MARK: - Helpers

    /// A complete, valid code-flow request; `setting` replaces or adds parameters, `removing` drops them,
    /// `extra` appends raw pairs (to repeat a parameter).
    func parameters(setting: [String: String] = [:], removing: Set<String> = [], extra: [(String, String)] = []) -> AuthorizeParameters {
        var pairs: [(String, String)] = [
            ("response_type", "code"),
            ("client_id", "web-app"),
            ("redirect_uri", Self.redirectURI),
            ("scope", "openid profile read:messages"),
            ("state", "st-123"),
            ("audience", Self.audience),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", Self.codeChallenge),
            ("code_challenge_method", "S256"),
            ("dpop_jkt", Self.dpopJKT),
        ]
        pairs.removeAll { removing.contains($0.0) }
        for (name, value) in setting.sorted(by: { $0.key < $1.key }) {
            if let index = pairs.firstIndex(where: { $0.0 == name }) { pairs[index].1 = value } else { pairs.append((name, value)) }
        }
        return AuthorizeParameters(query: FormEncoding.encode(pairs + extra))
    }

    func session(authTime: LedgerTimestamp? = nil, expiresAt: LedgerTimestamp? = nil) -> SessionSnapshot {
        SessionSnapshot(
            sessionHash: OpaqueToken.hash("session-1"), userID: "auth0|alice", connection: Self.connection,
            authTime: authTime ?? now.adding(seconds: -600), expiresAt: expiresAt ?? now.adding(seconds: 3_600))
    }

    var fullConsent: [String: [String]] {
        [ConsentKey.make(clientID: "web-app", audience: Self.audience): ["openid", "profile", "read:messages"]]
    }

    var delivery: ResponseDelivery { ResponseDelivery(redirectURI: Self.redirectURI, mode: .query, state: "st-123") }

    func decide(_ input: AuthorizationInput) -> AuthorizationDecision {
        AuthorizationPolicy.decide(input, configuration: configuration)
    }

    // MARK: - Errors shown as pages

    @Test("the tenant without settings: an error page, server_error, rule tenant.configured")
    func tenantNotConfigured() {
        let decision = AuthorizationPolicy.decide(AuthorizationInput(parameters: parameters(), now: now), configuration: ConfigurationState())
        #expect(decision.rule == "tenant.configured")
        guard case .errorPage(let error, _) = decision.outcome else {
            Issue.record("expected an error page, got \(decision.outcome)")
            return
        }
        #expect(error == .serverError)
    }

    @Test("an unknown client: an error page (never a redirect), rule client.registered")
    func unknownClient() {
        let decision = decide(AuthorizationInput(parameters: parameters(setting: ["client_id": "nobody"]), session: session(), now: now))
        #expect(decision.rule == "client.registered")
        #expect(decision.outcome.name == "error_page:invalid_request")
    }

    @Test("a missing or repeated client_id: an error page, rule client.registered")
    func missingOrRepeatedClient() {
        let missing = decide(AuthorizationInput(parameters: parameters(removing: ["client_id"]), now: now))
        #expect(missing.rule == "client.registered")
        #expect(missing.outcome.name == "error_page:invalid_request")

        let repeated = decide(AuthorizationInput(parameters: parameters(extra: [("client_id", "web-app")]), now: now))
        #expect(repeated.rule == "client.registered")
        #expect(repeated.outcome.name == "error_page:invalid_request")
    }

    @Test(
        "a redirect_uri that is not exactly a registered one: an error page, rule redirect_uri.exact_match",
        arguments: [
            "https://client.test/callback/", "https://CLIENT.test/callback", "https://client.test:443/callback",
            "https://client.test/callback?x=1", "http://client.test/callback", "https://client.test/%63allback",
            "https://evil.test/callback",
        ])
    func redirectMismatch(uri: String) {
        let decision = decide(AuthorizationInput(parameters: parameters(setting: ["redirect_uri": uri]), session: session(), now: now))
        #expect(decision.rule == "redirect_uri.exact_match")
        #expect(decision.outcome.name == "error_page:invalid_request")
    }

    @Test("an OpenID request without redirect_uri: an error page even with one registered URI")
    func openIDNeedsRedirectURI() {
        let decision = decide(AuthorizationInput(parameters: parameters(removing: ["redirect_uri"]), session: session(), now: now))
        #expect(decision.rule == "redirect_uri.exact_match")
        #expect(decision.outcome.name == "error_page:invalid_request")
    }

    // MARK: - Errors redirected to the client

    @Test("a repeated scope: redirected invalid_request with the state, rule parameters.not_repeated")
    func repeatedScope() {
        let decision = decide(
            AuthorizationInput(
                parameters: parameters(extra: [("scope", "openid")]), session: session(), consents: fullConsent, now: now))
        #expect(decision.rule == "parameters.not_repeated")
        guard case .errorRedirect(let error, let description, let delivery) = decision.outcome else {
            Issue.record("expected a redirected error, got \(decision.outcome)")
            return
        }
        #expect(error == .invalidRequest)
        #expect(description.contains("scope"))
        #expect(delivery == self.delivery)
    }

    @Test("prompt=none without a session: redirected login_required")
    func promptNoneWithoutSession() {
        let decision = decide(AuthorizationInput(parameters: parameters(setting: ["prompt": "none"]), now: now))
        #expect(decision.rule == "session.authenticated")
        guard case .errorRedirect(let error, _, let delivery) = decision.outcome else {
            Issue.record("expected a redirected error, got \(decision.outcome)")
            return
        }
        #expect(error == .loginRequired)
        #expect(delivery == self.delivery)
    }

    // MARK: - Login

    @Test("no session: login with the client's connection and the login_hint")
    func noSessionLogin() {
        let decision = decide(AuthorizationInput(parameters: parameters(setting: ["login_hint": "alice@example.com"]), now: now))
        #expect(decision == AuthorizationDecision(outcome: .login(connection: Self.connection, loginHint: "alice@example.com"), rule: "session.authenticated"))
    }

    @Test("no session and no login_hint: login without a hint")
    func noSessionNoHint() {
        let decision = decide(AuthorizationInput(parameters: parameters(), consents: fullConsent, now: now))
        #expect(decision == AuthorizationDecision(outcome: .login(connection: Self.connection, loginHint: nil), rule: "session.authenticated"))
    }

    @Test("an expired session (expiresAt <= now) means login", arguments: [0, -1, -3_600])
    func expiredSession(secondsLeft: Int) {
        let decision = decide(
            AuthorizationInput(
                parameters: parameters(), session: session(expiresAt: now.adding(seconds: secondsLeft)), consents: fullConsent, now: now))
        #expect(decision == AuthorizationDecision(outcome: .login(connection: Self.connection, loginHint: nil), rule: "session.authenticated"))
    }

    @Test("a session one second from expiry is still used")
    func sessionAboutToExpire() {
        let decision = decide(
            AuthorizationInput(parameters: parameters(), session: session(expiresAt: now.adding(seconds: 1)), consents: fullConsent, now: now))
        #expect(decision.rule == "authorized")
    }

    @Test("a session of an unknown user or of another connection means login")
    func unusableSession() {
        var stranger = session()
        stranger.userID = "auth0|nobody"
        #expect(decide(AuthorizationInput(parameters: parameters(), session: stranger, consents: fullConsent, now: now)).outcome.name == "login")

        var otherConnection = session()
        otherConnection.connection = "Other-Connection"
        #expect(decide(AuthorizationInput(parameters: parameters(), session: otherConnection, consents: fullConsent, now: now)).outcome.name == "login")
    }

    // MARK: - Consent

    @Test("a session but no consent, third-party client: consent for exactly the requested scopes")
    func consentNeeded() {
        let decision = decide(AuthorizationInput(parameters: parameters(), session: session(), now: now))
        #expect(
            decision
                == AuthorizationDecision(
                    outcome: .consent(ConsentRequest(clientID: "web-app", audience: Self.audience, scopes: ["openid", "profile", "read:messages"])),
                    rule: "consent"))
    }

    @Test("consent for fewer scopes than requested: consent asked again")
    func partialConsent() {
        let partial = [ConsentKey.make(clientID: "web-app", audience: Self.audience): ["openid", "profile"]]
        let decision = decide(AuthorizationInput(parameters: parameters(), session: session(), consents: partial, now: now))
        #expect(decision.rule == "consent")
        #expect(decision.outcome.name == "consent")
    }

    @Test("consent given for another audience does not count")
    func consentForOtherAudience() {
        let elsewhere = [ConsentKey.make(clientID: "web-app", audience: Self.noOfflineAudience): ["openid", "profile", "read:messages"]]
        let decision = decide(AuthorizationInput(parameters: parameters(), session: session(), consents: elsewhere, now: now))
        #expect(decision.outcome.name == "consent")
    }

    @Test("the user denied consent in this interaction: redirected access_denied, rule consent")
    func consentDenied() {
        let decision = decide(
            AuthorizationInput(
                parameters: parameters(), session: session(), consents: fullConsent, progress: InteractionProgress(consent: .denied), now: now))
        #expect(decision.rule == "consent")
        guard case .errorRedirect(let error, _, let delivery) = decision.outcome else {
            Issue.record("expected a redirected error, got \(decision.outcome)")
            return
        }
        #expect(error == .accessDenied)
        #expect(delivery == self.delivery)
    }

    @Test("the user granted consent in this interaction: a code, without stored consents")
    func consentGrantedInInteraction() {
        let decision = decide(
            AuthorizationInput(parameters: parameters(), session: session(), progress: InteractionProgress(consent: .granted), now: now))
        #expect(decision.rule == "authorized")
    }

    // MARK: - Authorized

    @Test("consents covering the scopes: a code bound to client, redirect, user, scopes, nonce, PKCE, dpop_jkt, auth_time and expiry")
    func issueCode() {
        let session = self.session()
        let decision = decide(AuthorizationInput(parameters: parameters(), session: session, consents: fullConsent, now: now))
        let expected = CodeGrant(
            clientID: "web-app", redirectURI: Self.redirectURI, userID: "auth0|alice", scopes: ["openid", "profile", "read:messages"],
            audience: Self.audience, organizationID: nil, nonce: "n-0S6_WzA2Mj", codeChallenge: Self.codeChallenge,
            codeChallengeMethod: "S256", dpopJKT: Self.dpopJKT, authTime: session.authTime, expiresAt: now.adding(seconds: Self.codeTTL),
            invitation: nil, redirectURIGiven: true)
        #expect(decision == AuthorizationDecision(outcome: .issueCode(expected, delivery: delivery), rule: "authorized"))

        guard case .issueCode(let grant, _) = decision.outcome else { return }
        #expect(grant.authTime == now.adding(seconds: -600), "auth_time is the session's, not now")
        #expect(grant.expiresAt == now.adding(seconds: 90), "expiresAt = now + code_ttl_seconds")
    }

    @Test("consents that are a superset of the requested scopes: a code")
    func supersetConsent() {
        let wide = [ConsentKey.make(clientID: "web-app", audience: Self.audience): ["openid", "profile", "email", "read:messages", "write:messages"]]
        let decision = decide(AuthorizationInput(parameters: parameters(), session: session(), consents: wide, now: now))
        #expect(decision.rule == "authorized")
        #expect(decision.outcome.name == "code_issued")
    }

    @Test("response_mode and state are carried to the delivery")
    func deliveryMode() {
        let decision = decide(
            AuthorizationInput(
                parameters: parameters(setting: ["response_mode": "form_post", "state": "other-state"]), session: session(),
                consents: fullConsent, now: now))
        guard case .issueCode(_, let delivery) = decision.outcome else {
            Issue.record("expected a code, got \(decision.outcome)")
            return
        }
        #expect(delivery == ResponseDelivery(redirectURI: Self.redirectURI, mode: .formPost, state: "other-state"))
    }

    // MARK: - offline_access

    @Test("offline_access is kept when the API allows it")
    func offlineKept() {
        let decision = decide(
            AuthorizationInput(parameters: parameters(setting: ["scope": "openid offline_access read:messages"]), session: session(), now: now))
        #expect(
            decision.outcome
                == .consent(ConsentRequest(clientID: "web-app", audience: Self.audience, scopes: ["openid", "offline_access", "read:messages"])))
    }

    @Test("offline_access is dropped when the API does not allow it")
    func offlineDropped() {
        let decision = decide(
            AuthorizationInput(
                parameters: parameters(setting: ["scope": "openid offline_access read:messages", "audience": Self.noOfflineAudience]),
                session: session(), now: now))
        #expect(
            decision.outcome
                == .consent(ConsentRequest(clientID: "web-app", audience: Self.noOfflineAudience, scopes: ["openid", "read:messages"])))
    }

    @Test("offline_access is dropped from the issued code too")
    func offlineDroppedFromCode() {
        let consents = [ConsentKey.make(clientID: "web-app", audience: Self.noOfflineAudience): ["openid", "read:messages"]]
        let decision = decide(
            AuthorizationInput(
                parameters: parameters(setting: ["scope": "openid offline_access read:messages", "audience": Self.noOfflineAudience]),
                session: session(), consents: consents, now: now))
        guard case .issueCode(let grant, _) = decision.outcome else {
            Issue.record("expected a code, got \(decision.outcome)")
            return
        }
        #expect(grant.scopes == ["openid", "read:messages"])
    }

    // MARK: - Purity

    @Test("the same input decided twice gives equal decisions", arguments: [false, true])
    func deterministic(withSession: Bool) {
        let input = AuthorizationInput(parameters: parameters(), session: withSession ? session() : nil, consents: fullConsent, now: now)
        let first = decide(input)
        let second = decide(input)
        #expect(first == second)
    }

    @Test("the decision survives the journal: input and configuration decoded from their payloads decide the same")
    func replayable() throws {
        let input = AuthorizationInput(parameters: parameters(), session: session(), consents: fullConsent, now: now)
        let recordedInput = try PayloadCoding.decode(AuthorizationInput.self, from: try PayloadCoding.encode(input))
        let recordedConfiguration = try PayloadCoding.decode(ConfigurationState.self, from: try PayloadCoding.encode(configuration))
        #expect(recordedInput == input)
        #expect(AuthorizationPolicy.decide(recordedInput, configuration: recordedConfiguration) == decide(input))
    }

    @Test("the decision uses the input's time, never the wall clock")
    func noWallClock() throws {
        // In 2001 the session is valid and the code expires in 2001, whatever the date is when the test runs.
        let then = try #require(LedgerTimestamp(rfc3339: "2001-02-03T04:05:06Z"))
        let oldSession = session(authTime: then.adding(seconds: -10), expiresAt: then.adding(seconds: 10))
        let decision = AuthorizationPolicy.decide(
            AuthorizationInput(parameters: parameters(), session: oldSession, consents: fullConsent, now: then), configuration: configuration)
        guard case .issueCode(let grant, _) = decision.outcome else {
            Issue.record("expected a code, got \(decision.outcome)")
            return
        }
        #expect(grant.expiresAt == then.adding(seconds: Self.codeTTL))
        #expect(grant.authTime == then.adding(seconds: -10))

        // And a session that expires in the far future is expired for an input dated after it.
        let future = try #require(LedgerTimestamp(rfc3339: "2100-01-01T00:00:00Z"))
        let late = AuthorizationPolicy.decide(
            AuthorizationInput(
                parameters: parameters(), session: session(expiresAt: future), consents: fullConsent, now: future.adding(seconds: 1)),
            configuration: configuration)
        #expect(late.outcome.name == "login")
    }

    @Test("the decision depends on the configuration passed in: the same request against a tenant without the client")
    func configurationIsAnInput() throws {
        var withoutClient = configuration
        withoutClient.clients = [:]
        let input = AuthorizationInput(parameters: parameters(), session: session(), consents: fullConsent, now: now)
        #expect(decide(input).rule == "authorized")
        #expect(AuthorizationPolicy.decide(input, configuration: withoutClient).rule == "client.registered")
    }
}

@Suite("LoginThrottle: per account and address, per address, and per account from everywhere")
struct LoginThrottleRuleTests {
    static let now = LedgerTimestamp(microsecondsSinceEpoch: 1_800_000_000_000_000)
    let throttle = LoginThrottle()

    func failures(_ account: Int, _ pair: Int, _ address: Int) -> [[LedgerTimestamp]] {
        [account, pair, address].map { Array(repeating: Self.now.adding(seconds: -60), count: $0) }
    }

    @Test("keys: the account, the account from this address, the address; the account alone without an address")
    func keys() {
        let keys = throttle.keys(userID: "auth0|bob", username: "bob@example.com", address: "203.0.113.9")
        #expect(keys.map(\.name) == ["u\u{1F}auth0|bob", "p\u{1F}auth0|bob\u{1F}203.0.113.9", "i\u{1F}203.0.113.9"])
        #expect(keys.map(\.limit) == [100, 10, 100])
        #expect(throttle.keys(userID: "auth0|bob", username: "bob", address: nil) == [LoginThrottle.Key(name: "u\u{1F}auth0|bob", limit: 100)])
        #expect(LoginThrottle(limit: 500, addressLimit: 500, accountLimit: 500).accountLimit == LoginThrottle.kept, "no limit above what is kept")
        let unknown = LoginThrottle.keyNames(userID: nil, username: "Nobody@Example.com", address: nil)
        #expect(unknown == LoginThrottle.keyNames(userID: nil, username: "nobody@example.com", address: nil), "case-insensitive")
        #expect(!unknown[0].contains("nobody"), "an unknown name is kept only as a hash")
    }

    @Test("an IPv6 address counts as its /64; an IPv4-mapped one as its IPv4 address; other text as itself, cut")
    func networks() {
        #expect(LoginThrottle.network(of: "2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64")
        #expect(LoginThrottle.network(of: "2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64", "same /64, same count")
        #expect(LoginThrottle.network(of: "::ffff:203.0.113.9") == "203.0.113.9")
        #expect(LoginThrottle.network(of: "203.0.113.9") == "203.0.113.9")
        #expect(LoginThrottle.network(of: String(repeating: "x", count: 100)) == String(repeating: "x", count: 64))
        let a = LoginThrottle.keyNames(userID: "auth0|bob", username: "bob", address: "2001:db8:1:2::a")
        let b = LoginThrottle.keyNames(userID: "auth0|bob", username: "bob", address: "2001:db8:1:2::b")
        #expect(a == b)
    }

    @Test("ten failures from one address refuse that pair, not the account from elsewhere nor the address for others")
    func noLockoutFromOneAddress() {
        let keys = throttle.keys(userID: "auth0|bob", username: "bob", address: "203.0.113.9")
        #expect(throttle.isThrottled(keys, failures: failures(10, 10, 10), now: Self.now))
        let elsewhere = throttle.keys(userID: "auth0|bob", username: "bob", address: "198.51.100.4")
        #expect(!throttle.isThrottled(elsewhere, failures: failures(10, 0, 0), now: Self.now), "bob from his own address")
        let neighbour = throttle.keys(userID: "auth0|carol", username: "carol", address: "203.0.113.9")
        #expect(!throttle.isThrottled(neighbour, failures: failures(0, 0, 10), now: Self.now), "carol behind the same address")
        #expect(throttle.isThrottled(neighbour, failures: failures(0, 0, 100), now: Self.now), "an address guessing across accounts")
        #expect(throttle.isThrottled(elsewhere, failures: failures(100, 0, 0), now: Self.now), "a guess spread over many addresses")
        #expect(!throttle.isThrottled(keys, failures: failures(10, 10, 10), now: Self.now.adding(seconds: 900)), "the window passed")
    }
}

@Suite("AuthorizationDecision.isSameDecision: replay compares what was decided, not the wording")
struct DecisionComparisonTests {
    static let delivery = ResponseDelivery(redirectURI: "https://client.test/callback", mode: .query, state: "s")

    @Test("an error recorded with an older wording is the same decision; another code, rule or delivery is not")
    func wordingAside() {
        let recorded = AuthorizationDecision(
            outcome: .errorRedirect(error: .invalidScope, description: "Scope foo is not defined.", delivery: Self.delivery), rule: "scope.defined")
        let today = AuthorizationDecision(
            outcome: .errorRedirect(error: .invalidScope, description: "A requested scope is not defined.", delivery: Self.delivery),
            rule: "scope.defined")
        #expect(today.isSameDecision(as: recorded))
        #expect(today != recorded)
        var otherCode = today
        otherCode.outcome = .errorRedirect(error: .invalidRequest, description: "A requested scope is not defined.", delivery: Self.delivery)
        #expect(!otherCode.isSameDecision(as: recorded))
        var otherRule = today
        otherRule.rule = "audience.known"
        #expect(!otherRule.isSameDecision(as: recorded))
        var otherDelivery = today
        otherDelivery.outcome = .errorRedirect(
            error: .invalidScope, description: "x", delivery: ResponseDelivery(redirectURI: "https://client.test/callback", mode: .fragment, state: "s"))
        #expect(!otherDelivery.isSameDecision(as: recorded))
        let page = AuthorizationDecision(outcome: .errorPage(error: .invalidRequest, description: "Unknown client: x."), rule: "client.registered")
        #expect(page.isSameDecision(as: AuthorizationDecision(outcome: .errorPage(error: .invalidRequest, description: "Unknown client."), rule: "client.registered")))
        #expect(!page.isSameDecision(as: today))
    }
}


@Suite("ParsedAuthorizeRequest: the parameters every rule reads, parsed once")
struct ParsedAuthorizeRequestTests {
    static func parsed(_ pairs: [(String, String)]) -> ParsedAuthorizeRequest {
        ParsedAuthorizeRequest(AuthorizeParameters(pairs: pairs.map { (name: $0.0, value: $0.1) }))
    }

    @Test("prompt values as a set, scopes in the order sent with repeats, empty values dropped")
    func promptsAndScopes() {
        let request = Self.parsed([("prompt", "login  consent login"), ("scope", "openid email openid  profile")])
        #expect(request.prompts == ["login", "consent"])
        #expect(request.scopes == ["openid", "email", "openid", "profile"])
        let none = Self.parsed([])
        #expect(none.prompts.isEmpty && none.scopes.isEmpty && none.maxAge == .absent)
    }

    @Test("max_age: seconds from 0 to ten years; anything else is invalid (and refused by session.authenticated)",
          arguments: [("0", ParsedAuthorizeRequest.MaxAge.seconds(0)), ("3600", .seconds(3600)), ("315360000", .seconds(315_360_000)),
                      ("315360001", .invalid), ("-1", .invalid), ("1.5", .invalid), ("ten", .invalid),
                      ("", .absent)])  // an empty parameter is no parameter
    func maxAge(text: String, expected: ParsedAuthorizeRequest.MaxAge) {
        #expect(Self.parsed([("max_age", text)]).maxAge == expected)
    }
}
