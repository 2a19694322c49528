import AuthCore
import AuthTokens
import Foundation
import HTTPTypes
import LedgerCore
import NIOCore
import Synchronization
import Testing

@testable import AuthServer

/// The test tenant with alice's OIDC claims (OIDC Core §5.1).
let claimsTenantYAML = testTenantYAML.replacingOccurrences(
    of: """
              - user_id: auth0|alice
                email: alice@example.com
                password: correct horse battery staple
        """,
    with: """
              - user_id: auth0|alice
                email: alice@example.com
                password: correct horse battery staple
                email_verified: true
                name: Alice Liddell
                given_name: Alice
                family_name: Liddell
                phone_number: "+44 1865 270000"
                phone_number_verified: true
                address: {street_address: 1 Rabbit Hole, locality: Oxford, country: GB}
        """)

@Suite("OpenID Connect conformance: POST endpoints, standard scopes and claims, id_token_hint, request objects")
struct OIDCConformanceTests {
    /// A code for alice through web-app with `parameters`, and the token response it is exchanged for.
    static func tokens(_ browser: Browser, _ parameters: [(String, String)]) async throws -> [String: Any] {
        let page = try await browser.authorize(parameters)
        let code = try #require(page.redirectParameters["code"], "no code: \(page.location ?? page.body)")
        let response = try await TokenEndpointTests.exchange(browser, code: code)
        #expect(response.status == .ok)
        return jsonObject(response)
    }

    @Test("the tenant file's claims are sealed in the journal, and the planner sees them unchanged on a second apply")
    func claimsSealed() async throws {
        let harness = try await ServerHarness(tenant: claimsTenantYAML)
        let bytes = try harness.journalBytes()
        for text in ["Liddell", "Rabbit Hole", "270000", "Oxford"] {
            #expect(bytes.range(of: Data(text.utf8)) == nil, "\(text) is in the journal in clear")
        }
        let alice = try #require(harness.ledger.configuration.users["auth0|alice"])
        #expect(alice.profile["name"] == .clear("Alice Liddell"))
        #expect(alice.emailVerified && alice.phoneNumberVerified)
        let planned = try TenantPlanner(hasher: harness.server.settings.hasher).plan(
            try TenantFile.parse(yaml: claimsTenantYAML), against: harness.ledger.configuration)
        #expect(planned.isEmpty)
    }

    @Test("scope openid profile email address phone: the claims in the ID token and at GET and POST /userinfo")
    func standardScopes() async throws {
        let harness = try await ServerHarness(tenant: claimsTenantYAML)
        try await harness.run { browser in
            let body = try await Self.tokens(browser, webAppParameters(scope: "openid profile email address phone"))
            #expect(body["scope"] as? String == "openid profile email address phone")
            let id = try await harness.server.tokenKeys.verify(try #require(body["id_token"] as? String), as: IDTokenClaims.self)
            #expect(id.userClaims["name"] == .string("Alice Liddell"))
            #expect(id.userClaims["family_name"] == .string("Liddell"))
            #expect(id.userClaims["email_verified"] == .bool(true))
            #expect(id.userClaims["phone_number"] == .string("+44 1865 270000"))
            #expect(id.userClaims["address"]?.object?["locality"] == .string("Oxford"))
            let token = try #require(body["access_token"] as? String)

            var headers = HTTPFields()
            headers[.authorization] = "Bearer " + token
            let viaHeader = try await browser.send("/userinfo", method: .get, headers: headers)
            #expect(viaHeader.status == .ok)
            let claims = jsonObject(viaHeader)
            #expect(claims["sub"] as? String == "auth0|alice")
            #expect(claims["email"] as? String == "alice@example.com")
            #expect(claims["given_name"] as? String == "Alice")
            #expect(claims["phone_number_verified"] as? Bool == true)
            #expect((claims["address"] as? [String: Any])?["street_address"] as? String == "1 Rabbit Hole")

            // RFC 6750 §2.2 / OIDC Core §5.3.1: the token in a form body.
            let viaForm = try await browser.post("/userinfo", form: [("access_token", token)])
            #expect(viaForm.status == .ok)
            #expect(jsonObject(viaForm)["name"] as? String == "Alice Liddell")
            // Both ways at once is a malformed request.
            let both = try await browser.post("/userinfo", form: [("access_token", token)], headers: headers)
            #expect(both.status == .badRequest)
            #expect(jsonObject(both)["error"] as? String == "invalid_request")
            let empty = try await browser.post("/userinfo", form: [("access_token", "")])
            #expect(empty.status == .badRequest)
        }
    }

    @Test("only the scopes' claims: openid email gives no name, no address")
    func onlyScopedClaims() async throws {
        let harness = try await ServerHarness(tenant: claimsTenantYAML)
        try await harness.run { browser in
            let body = try await Self.tokens(browser, webAppParameters(scope: "openid email"))
            let id = try await harness.server.tokenKeys.verify(try #require(body["id_token"] as? String), as: IDTokenClaims.self)
            #expect(Set(id.userClaims.keys) == ["email", "email_verified"])
            let userinfo = jsonObject(try await browser.post("/userinfo", form: [("access_token", body["access_token"] as! String)]))
            #expect(Set(userinfo.keys) == ["sub", "email", "email_verified"])
        }
    }

    @Test("an OpenID request ignores scopes the server does not define (OIDC Core §3.1.2.1); with an API they are refused")
    func unknownScopesIgnored() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let body = try await Self.tokens(browser, webAppParameters(scope: "openid email made-up:scope"))
            #expect(body["scope"] as? String == "openid email")
            let refused = try await browser.get(
                "/authorize?" + FormEncoding.encode(webAppParameters([("audience", "https://api.example.com")], scope: "openid read:nope")))
            #expect(refused.redirectParameters["error"] == "invalid_scope")
        }
        let decisions = try RecordedFlow(harness).decisions
        #expect(decisions.allSatisfy { $0.input.policy == AuthorizationPolicy.currentVersion })
    }

    @Test("POST /authorize: the same rules, events and errors as GET (OIDC Core §3.1.2.1)")
    func postAuthorize() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let login = try await browser.post("/authorize", form: webAppParameters([("nonce", "n-post")]))
            #expect(login.status == .found)
            #expect(login.location?.hasPrefix("/login?state=") == true)
            let form = try await browser.get(login.location!)
            var page = try await browser.post(
                "/login",
                form: [
                    ("state", form.hidden("state") ?? ""), ("csrf", form.hidden("csrf") ?? ""), ("username", "alice@example.com"),
                    ("password", "correct horse battery staple"),
                ])
            while page.status == .found, let location = page.location, location.hasPrefix("/") {
                if location.hasPrefix("/consent") {
                    let consent = try await browser.get(location)
                    page = try await browser.post(
                        "/consent", form: [("state", consent.hidden("state") ?? ""), ("csrf", consent.hidden("csrf") ?? ""), ("action", "accept")])
                } else {
                    page = try await browser.get(location)
                }
            }
            #expect(page.redirectParameters["code"] != nil)
            #expect(page.redirectParameters["state"] == "st-123")
            // A repeated parameter in the body is refused like one in the query.
            let repeated = try await browser.send(
                "/authorize", method: .post, body: FormEncoding.encode(webAppParameters() + [("scope", "openid email")]))
            #expect(repeated.redirectParameters["error"] == "invalid_request")
            // Parameters come as a form, nothing else.
            var json = HTTPFields()
            json[.contentType] = "application/json"
            let notForm = try await browser.client.execute(
                uri: "/authorize", method: .post, headers: json, body: ByteBuffer(string: #"{"client_id":"web-app"}"#))
            #expect(notForm.status == .unsupportedMediaType)
            // An unknown client: a page, never a redirect.
            let unknown = try await browser.post("/authorize", form: [("client_id", "nobody"), ("response_type", "code")])
            #expect(unknown.status == .badRequest && unknown.location == nil)
        }
        let decisions = try RecordedFlow(harness).decisions
        #expect(decisions.first?.input.parameters["nonce"] == "n-post")
    }

    @Test("prompt=none with an id_token_hint: the hint's user must be the session's (OIDC Core §3.1.2.1)")
    func idTokenHint() async throws {
        let harness = try await ServerHarness()
        let hints = Mutex<[String]>([])
        try await harness.run { browser in
            let body = try await Self.tokens(browser, webAppParameters(scope: "openid"))
            let aliceHint = try #require(body["id_token"] as? String)
            // bob's ID token, from another browser.
            let other = Browser(client: browser.client)
            let bobTokens = jsonObject(
                try await TokenEndpointTests.exchange(
                    other,
                    code: try #require(
                        try await other.authorize(webAppParameters(scope: "openid"), username: "bob@example.com", password: "hunter2 hunter2")
                            .redirectParameters["code"])))
            let bobHint = try #require(bobTokens["id_token"] as? String)
            hints.withLock { $0 = [aliceHint, bobHint] }

            // alice's session, alice's hint: a code without interaction.
            let same = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters([("prompt", "none"), ("id_token_hint", aliceHint)], scope: "openid")))
            #expect(same.redirectParameters["code"] != nil, "\(same.location ?? same.body)")
            // alice's session, bob's hint: login_required, nothing issued.
            let mismatch = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters([("prompt", "none"), ("id_token_hint", bobHint)], scope: "openid")))
            #expect(mismatch.redirectParameters["error"] == "login_required")
            #expect(mismatch.redirectParameters["code"] == nil)
            // Interaction allowed: bob is asked to log in.
            let login = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters([("id_token_hint", bobHint)], scope: "openid")))
            #expect(login.location?.hasPrefix("/login?") == true)
            // A hint this server did not sign: invalid_request.
            let parts = aliceHint.split(separator: ".")
            let forged = parts[0] + "." + parts[1] + "." + String(parts[2].reversed())
            let invalid = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters([("prompt", "none"), ("id_token_hint", String(forged))], scope: "openid")))
            #expect(invalid.redirectParameters["error"] == "invalid_request")
            // Expired is fine: a day later the session is gone, but the hint still names alice.
        }
        let events = try harness.events()
        let decisions = try RecordedFlow(harness).decisions
        let recordedHints = decisions.compactMap(\.input.parameters.idTokenHint)
        #expect(recordedHints == [.subject("auth0|alice"), .subject("auth0|bob"), .subject("auth0|bob"), .invalid])
        // The hint itself (an ID token) is never recorded, nor any of its parts. (Not a search for
        // "eyJ": the random salts of the recorded Argon2id hashes contain it now and then.)
        let issuedHints = hints.withLock { $0 }
        #expect(issuedHints.count == 2)
        let recorded = events.map { String(describing: $0.1) }.joined()
        for part in issuedHints.flatMap({ $0.split(separator: ".") }) {
            #expect(!recorded.contains(part))
        }
    }

    @Test("request and request_uri are refused with request_not_supported and request_uri_not_supported")
    func requestObjects() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let byValue = try await browser.get(
                "/authorize?" + FormEncoding.encode(webAppParameters([("request", "eyJhbGciOiJub25lIn0.eyJsb2dpbl9oaW50IjoiYm9iIn0.")])))
            #expect(byValue.redirectParameters["error"] == "request_not_supported")
            #expect(byValue.redirectParameters["state"] == "st-123")
            let byReference = try await browser.get(
                "/authorize?" + FormEncoding.encode(webAppParameters([("request_uri", "https://client.test/request.jwt")])))
            #expect(byReference.redirectParameters["error"] == "request_uri_not_supported")
        }
        #expect(try RecordedFlow(harness).decisions.map(\.decision.rule) == ["request_object.unsupported", "request_object.unsupported"])
        // The request object itself (it may carry personal claims) is not recorded.
        #expect(try harness.journalBytes().range(of: Data("eyJsb2dpbl9oaW50".utf8)) == nil)
    }

    @Test("display, ui_locales, claims_locales and acr_values are accepted and recorded, never an error")
    func acceptedParameters() async throws {
        let harness = try await ServerHarness()
        let extra = [("display", "popup"), ("ui_locales", "fr-CA fr"), ("claims_locales", "de"), ("acr_values", "urn:mace:incommon:iap:silver")]
        try await harness.run { browser in
            let page = try await browser.authorize(webAppParameters(extra))
            #expect(page.redirectParameters["code"] != nil)
        }
        let first = try #require(try RecordedFlow(harness).decisions.first)
        for (name, value) in extra { #expect(first.input.parameters[name] == value) }
    }

    @Test("the claims parameter (OIDC Core §5.5): named claims in the ID token and at /userinfo, malformed ones refused")
    func claimsParameter() async throws {
        let harness = try await ServerHarness(tenant: claimsTenantYAML)
        try await harness.run { browser in
            let claims = #"{"id_token":{"name":{"essential":true},"nickname":null,"email":{"value":"someone.else@example.org"}},"userinfo":{"phone_number":null,"address":{"essential":true}}}"#
            let body = try await Self.tokens(browser, webAppParameters([("claims", claims)], scope: "openid"))
            let id = try await harness.server.tokenKeys.verify(try #require(body["id_token"] as? String), as: IDTokenClaims.self)
            // nickname is asked for but alice has none: left out, no error (§5.5.1). The email requested
            // with a value is alice's own (a value is a hint, never what is returned).
            #expect(id.userClaims == ["name": .string("Alice Liddell"), "email": .string("alice@example.com")])
            let userinfo = jsonObject(try await browser.post("/userinfo", form: [("access_token", body["access_token"] as! String)]))
            #expect(Set(userinfo.keys) == ["sub", "phone_number", "address"])

            for malformed in ["not json", #"["id_token"]"#, #"{"id_token":{"name":true}}"#, #"{"userinfo":"name"}"#] {
                let page = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters([("claims", malformed)])))
                #expect(page.redirectParameters["error"] == "invalid_request", "\(malformed)")
            }
        }
        // A value in the claims request may be personal data: it is not recorded.
        #expect(try harness.journalBytes().range(of: Data("someone.else".utf8)) == nil)
        let recorded = try RecordedFlow(harness).decisions.compactMap { $0.input.parameters["claims"] }
        #expect(recorded.first == #"{"id_token":{"email":null,"name":{"essential":true},"nickname":null},"userinfo":{"address":{"essential":true},"phone_number":null}}"#)
        #expect(Set(recorded).count == 2 && recorded.last == RequestedClaims.malformed)
    }

    @Test("discovery says what the server does: claims, scopes, no request objects (OIDC Discovery §3)")
    func discovery() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let metadata = jsonObject(try await browser.get("/.well-known/openid-configuration"))
            #expect(metadata["claims_parameter_supported"] as? Bool == true)
            #expect(metadata["request_parameter_supported"] as? Bool == false)
            #expect(metadata["request_uri_parameter_supported"] as? Bool == false)
            let claims = try #require(metadata["claims_supported"] as? [String])
            #expect(Set(["sub", "email", "name", "address", "phone_number"]).isSubset(of: Set(claims)))
            let scopes = try #require(metadata["scopes_supported"] as? [String])
            #expect(Set(["openid", "profile", "email", "address", "phone", "offline_access"]) == Set(scopes))
        }
    }
}

@Suite("Rule-set versions: a decision re-decides under the rules it was made by")
struct PolicyVersionTests {
    @Test("address and phone, and an unknown OpenID scope: refused under version 1, accepted under version 2")
    func versions() throws {
        let configuration = try decisionTestConfiguration()
        let session = SessionSnapshot(
            sessionHash: "h", userID: "auth0|alice", connection: "Username-Password-Authentication", authTime: LedgerTimestamp(microsecondsSinceEpoch: 0),
            expiresAt: LedgerTimestamp(microsecondsSinceEpoch: Int64.max / 2))
        for scope in ["openid address", "openid phone", "openid made-up"] {
            let parameters = AuthorizeParameters(values: Dictionary(uniqueKeysWithValues: webAppParameters(scope: scope)))
            let old = AuthorizationPolicy.decide(
                AuthorizationInput(parameters: parameters, session: session, now: LedgerTimestamp(microsecondsSinceEpoch: 1), policy: 1),
                configuration: configuration)
            #expect(old.rule == "scope.defined", "\(scope)")
            let current = AuthorizationPolicy.decide(
                AuthorizationInput(parameters: parameters, session: session, now: LedgerTimestamp(microsecondsSinceEpoch: 1)), configuration: configuration)
            #expect(current.rule != "scope.defined", "\(scope)")
        }
    }

    @Test("a decision recorded without a version reads as version 1")
    func unversioned() throws {
        let input = AuthorizationInput(parameters: AuthorizeParameters(values: [:]), now: LedgerTimestamp(microsecondsSinceEpoch: 1))
        var object = try #require(try JSONSerialization.jsonObject(with: Data(PayloadCoding.encode(input))) as? [String: Any])
        #expect(object["policy"] as? Int == AuthorizationPolicy.currentVersion)
        object.removeValue(forKey: "policy")
        let decoded = try PayloadCoding.decode(AuthorizationInput.self, from: Array(try JSONSerialization.data(withJSONObject: object)))
        #expect(decoded.policy == 1)
    }
}

/// The test tenant as a configuration state (users' secrets hashed quickly).
func decisionTestConfiguration() throws -> ConfigurationState {
    let events = try TenantPlanner(hasher: Argon2idHasher.minimal).plan(try TenantFile.parse(yaml: testTenantYAML), against: ConfigurationState())
    var state = ConfigurationState()
    for (index, event) in events.enumerated() { state.apply(event, at: UInt64(index + 1)) }
    return state
}

@Suite("The consent page says what each scope lets the client do")
struct ConsentPageTests {
    @Test("an API's {value, description} scopes and the standard OpenID scopes are described; hostile text is escaped")
    func descriptions() async throws {
        let tenant = testTenantYAML.replacingOccurrences(
            of: "    scopes: [read:messages, write:messages]",
            with: "    scopes: [read:messages, {value: write:messages, description: \"Send messages <script>x</script>\"}]")
        let harness = try await ServerHarness(tenant: tenant)
        #expect(harness.ledger.configuration.apis["https://api.example.com"]?.scopeDescriptions == ["write:messages": "Send messages <script>x</script>"])
        try await harness.run { browser in
            var page = try await browser.get(
                "/authorize?" + FormEncoding.encode(webAppParameters([("audience", "https://api.example.com")], scope: "openid email write:messages read:messages offline_access")))
            for _ in 0..<4 where page.location?.hasPrefix("/consent") != true {
                guard let location = page.location else { break }
                if location.hasPrefix("/login") {
                    let form = try await browser.get(location)
                    page = try await browser.post(
                        "/login",
                        form: [("state", form.hidden("state") ?? ""), ("csrf", form.hidden("csrf") ?? ""), ("username", "alice@example.com"),
                               ("password", "correct horse battery staple")])
                } else {
                    page = try await browser.get(location)
                }
            }
            let consent = try await browser.get(try #require(page.location))
            #expect(consent.body.contains("Send messages &lt;script&gt;x&lt;/script&gt;"))
            #expect(!consent.body.contains("<script>x"))
            #expect(consent.body.contains("See your email address"))
            #expect(consent.body.contains("Sign you in with your account"))
            #expect(consent.body.contains("Keep access while you are away"))
            #expect(consent.body.contains("<code>read:messages</code>"), "a scope without a description is shown by name")
            #expect(consent.body.contains("Example API"), "the API by its name")
        }
    }

    @Test("the SPEC example's scopes parse, in YAML and as recorded")
    func specExample() throws {
        let yaml = """
            tenant: {issuer: "http://127.0.0.1:8080/"}
            apis:
              - identifier: https://api.example.com
                scopes: [read:messages, {value: write:messages, description: Send messages}]
            """
        let api = try #require(try TenantFile.parse(yaml: yaml).apis.first)
        #expect(api.scopes == ["read:messages", "write:messages"])
        #expect(api.describe("write:messages") == "Send messages")
        let recorded = try PayloadCoding.decode(APIDefinition.self, from: try PayloadCoding.encode(api))
        #expect(recorded == api)
        #expect(throws: TenantFileError.self) {
            try TenantFile.parse(yaml: yaml.replacingOccurrences(of: "description: Send messages", with: "descripton: Send messages"))
        }
    }
}
