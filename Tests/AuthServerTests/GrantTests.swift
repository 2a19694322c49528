import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import HTTPTypes
import JWTKit
import LedgerCore
import LedgerJournal
import LedgerLMDB
import Testing

@testable import AuthServer

/// A `private_key_jwt` client's key, signing assertions with jwt-kit (an independent JOSE implementation).
struct AssertionSigner: Sendable {
    let key = ES256PrivateKey()
    let kid = "rs-1"

    /// The JWK Set of its public key, as a tenant file registers it (inline YAML flow mapping).
    var jwksYAML: String {
        let parameters = key.publicKey.parameters!
        return "{keys: [{kty: EC, crv: P-256, x: \"\(parameters.x)\", y: \"\(parameters.y)\", kid: \(kid), use: sig}]}"
    }

    func assertion(
        client: String = "signed-service", audience: [String] = ["https://auth.test/"], lifetime: Int64 = 60, jti: String = UUID().uuidString,
        kid: String? = nil, issuer: String? = nil, now: Int64 = TestTime.seconds()
    ) async throws -> String {
        let keys = await JWTKeyCollection().add(ecdsa: key, kid: JWKIdentifier(string: kid ?? self.kid))
        return try await keys.sign(
            ClientAssertionClaims(iss: issuer ?? client, sub: client, aud: audience, exp: now + lifetime, iat: now, jti: jti),
            kid: JWKIdentifier(string: kid ?? self.kid))
    }

    func form(_ assertion: String) -> [(String, String)] {
        [("client_assertion_type", ClientAssertionVerifier.assertionType), ("client_assertion", assertion)]
    }
}

/// The test tenant with machine-to-machine clients: a secret one, one that signs assertions, and grants.
func grantsTenantYAML(_ signer: AssertionSigner) -> String {
    let clients = [
        "  - client_id: reporting-service",
        "    name: Reporting Service",
        "    app_type: non_interactive",
        "    client_secret: m2m-secret",
        "    grant_types: [client_credentials]",
        "  - client_id: signed-service",
        "    name: Signed Service",
        "    app_type: non_interactive",
        "    token_endpoint_auth_method: private_key_jwt",
        "    jwks: \(signer.jwksYAML)",
        "    grant_types: [client_credentials]",
        "  - client_id: par-app",
        "    name: PAR App",
        "    app_type: regular_web",
        "    client_secret: par-secret",
        "    redirect_uris: [https://par.test/callback]",
        "    first_party: true",
        "    connections: [Username-Password-Authentication]",
        "    require_pushed_authorization_requests: true",
        "client_grants:",
        "  - client_id: reporting-service",
        "    audience: https://api.example.com",
        "    scopes: [read:messages]",
        "  - client_id: signed-service",
        "    audience: https://api.example.com",
        "    scopes: [read:messages, write:messages]",
    ]
    let anchor = "connections:\n  - name: Username-Password-Authentication"
    precondition(testTenantYAML.contains(anchor))
    return testTenantYAML.replacingOccurrences(of: anchor, with: clients.joined(separator: "\n") + "\n" + anchor)
}

@Suite("client_credentials, private_key_jwt, introspection and pushed authorization requests, over a socket")
struct GrantTests {
    static func clientCredentials(
        _ browser: Browser, _ extra: [(String, String)], client: (String, String)? = ("reporting-service", "m2m-secret")
    ) async throws -> Page {
        try await browser.post(
            "/oauth/token", form: [("grant_type", "client_credentials")] + extra, headers: client.map { basic($0.0, $0.1) } ?? [:])
    }

    @Test("client_credentials: an access token for the granted API and scopes, decided by named rules and recorded")
    func clientCredentialsGrant() async throws {
        let harness = try await ServerHarness(tenant: grantsTenantYAML(AssertionSigner()))
        try await harness.run { browser in
            let granted = try await Self.clientCredentials(browser, [("audience", "https://api.example.com")])
            #expect(granted.status == .ok)
            #expect(granted.headers[.cacheControl] == "no-store")
            let body = jsonObject(granted)
            #expect(body["scope"] as? String == "read:messages")
            #expect(body["id_token"] == nil && body["refresh_token"] == nil)
            let claims = try await harness.server.tokenKeys.verify(try #require(body["access_token"] as? String), as: AccessTokenClaims.self)
            #expect(claims.sub == "reporting-service@clients")
            #expect(claims.aud == "https://api.example.com")
            #expect(claims.clientID == "reporting-service")

            let refusals: [([(String, String)], (String, String), String, HTTPResponse.Status)] = [
                ([("audience", "https://nope.example")], ("reporting-service", "m2m-secret"), "invalid_target", .badRequest),
                ([("audience", "https://api.example.com"), ("scope", "write:messages")], ("reporting-service", "m2m-secret"), "invalid_scope", .badRequest),
                ([], ("reporting-service", "m2m-secret"), "invalid_request", .badRequest),
                ([("audience", "https://api.example.com")], ("web-app", "s3cret"), "unauthorized_client", .badRequest),
                ([("audience", "https://api.example.com")], ("reporting-service", "wrong"), "invalid_client", .unauthorized),
            ]
            for (extra, client, error, status) in refusals {
                let page = try await Self.clientCredentials(browser, extra, client: client)
                #expect(page.status == status, "\(error)")
                #expect(jsonObject(page)["error"] as? String == error)
            }
        }
        let events = try harness.events()
        let decisions = events.compactMap { if case .clientCredentialsDecided(let value) = $0.1 { value } else { nil } }
        #expect(decisions.map(\.decision.rule) == ["authorized", "audience.known", "scope.granted", "audience.known", "client_credentials.allowed"])
        let issued = events.compactMap { if case .tokenIssued(let value) = $0.1 { value } else { nil } }
        #expect(issued.map(\.grantType) == ["client_credentials"])
        // Replay re-decides every one of them as recorded.
        let reader = try JournalReader(directory: harness.directory + "/journal")
        defer { reader.close() }
        var redecided = 0
        try DecisionHistory.forEachDecision(in: reader, clientCredentials: { decision in
            redecided += 1
            #expect(decision.recomputed?.isSameDecision(as: decision.decided.decision) == true)
        }) { _, _ in }
        #expect(redecided == 5)
    }

    @Test("a client grant withdrawn: replay against that tenant says which decisions would change")
    func clientCredentialsWhatIf() async throws {
        let signer = AssertionSigner()
        let harness = try await ServerHarness(tenant: grantsTenantYAML(signer))
        try await harness.run { browser in
            let page = try await Self.clientCredentials(browser, [("audience", "https://api.example.com")])
            #expect(page.status == .ok)
        }
        let withdrawn = grantsTenantYAML(signer).replacingOccurrences(
            of: "client_grants:\n  - client_id: reporting-service\n    audience: https://api.example.com\n    scopes: [read:messages]\n",
            with: "client_grants:\n")
        let events = try TenantPlanner(hasher: Argon2idHasher.minimal).plan(try TenantFile.parse(yaml: withdrawn), against: ConfigurationState())
        var whatIf = ConfigurationState()
        for (index, event) in events.enumerated() { whatIf.apply(event, at: UInt64(index + 1)) }
        let reader = try JournalReader(directory: harness.directory + "/journal")
        defer { reader.close() }
        var outcomes: [String] = []
        try DecisionHistory.forEachDecision(in: reader, clientCredentials: { decision in
            outcomes.append(ClientCredentialsPolicy.decide(decision.decided.input, configuration: whatIf).rule)
        }) { _, _ in }
        #expect(outcomes == ["client_grant.exists"])
    }

    @Test("private_key_jwt (RFC 7523): a signed assertion authenticates once; replayed, foreign, expired or misaddressed ones do not")
    func privateKeyJWT() async throws {
        let signer = AssertionSigner()
        let harness = try await ServerHarness(tenant: grantsTenantYAML(signer))
        try await harness.run { browser in
            let audience = [("audience", "https://api.example.com")]
            let assertion = try await signer.assertion()
            let first = try await Self.clientCredentials(browser, audience + signer.form(assertion), client: nil)
            #expect(first.status == .ok, "\(first.body)")
            #expect(jsonObject(first)["scope"] as? String == "read:messages write:messages")
            // The token endpoint URL is an accepted audience too.
            let atTokenEndpoint = try await signer.assertion(audience: ["https://auth.test/oauth/token"])
            #expect(try await Self.clientCredentials(browser, audience + signer.form(atTokenEndpoint), client: nil).status == .ok)

            let other = AssertionSigner()
            let refused: [(String, String)] = [
                ("replayed jti", assertion),
                ("another key", try await other.assertion()),
                ("another audience", try await signer.assertion(audience: ["https://elsewhere.test/"])),
                // By the server's clock, which a test holds still while the suite runs on.
                ("expired", try await signer.assertion(lifetime: -10, now: harness.clock.read().secondsSinceEpoch)),
                ("too long-lived", try await signer.assertion(lifetime: 7200)),
                ("iss is not the client", try await signer.assertion(issuer: "web-app")),
                ("not a JWT", "not.a.jwt"),
            ]
            for (name, bad) in refused {
                let page = try await Self.clientCredentials(browser, audience + signer.form(bad), client: nil)
                #expect(page.status == .unauthorized, "\(name)")
                #expect(jsonObject(page)["error"] as? String == "invalid_client", "\(name)")
            }
            // An unsigned (alg none) assertion is refused before any key is looked at.
            let unsigned = Base64URL.encode(Array(#"{"alg":"none"}"#.utf8)) + "." + assertion.split(separator: ".")[1] + "."
            #expect(jsonObject(try await Self.clientCredentials(browser, audience + signer.form(unsigned), client: nil))["error"] as? String == "invalid_client")
            // A client registered for private_key_jwt cannot use a secret instead.
            let secret = try await browser.post(
                "/oauth/token", form: [("grant_type", "client_credentials"), ("client_id", "signed-service"), ("client_secret", "x")] + audience)
            #expect(jsonObject(secret)["error"] as? String == "invalid_client")
        }
        let events = try harness.events()
        let used = events.compactMap { if case .clientAssertionUsed(let value) = $0.1 { value } else { nil } }
        #expect(used.count == 2, "each accepted assertion's use is recorded once")
        #expect(Set(used.map(\.assertion)).count == 2)
        let rejected = events.compactMap { if case .tokenRejected(let value) = $0.1 { value } else { nil } }
        #expect(rejected.contains { $0.error.description.contains("used before") })
    }

    @Test("introspection (RFC 7662): the journal decides active; unauthenticated callers are refused")
    func introspection() async throws {
        let harness = try await ServerHarness(tenant: grantsTenantYAML(AssertionSigner()))
        try await harness.run { browser in
            let resourceServer = basic("reporting-service", "m2m-secret")
            func introspect(_ token: String, headers: HTTPFields = basic("reporting-service", "m2m-secret")) async throws -> [String: Any] {
                jsonObject(try await browser.post("/oauth/introspect", form: [("token", token)], headers: headers))
            }
            // A user's tokens, with a refresh token.
            let code = try #require(
                try await browser.authorize(webAppParameters([("audience", "https://api.example.com")], scope: "openid read:messages offline_access"))
                    .redirectParameters["code"])
            let tokens = jsonObject(try await TokenEndpointTests.exchange(browser, code: code))
            let access = try #require(tokens["access_token"] as? String)
            let refresh = try #require(tokens["refresh_token"] as? String)

            let active = try await introspect(access)
            #expect(active["active"] as? Bool == true)
            #expect(active["sub"] as? String == "auth0|alice")
            #expect(active["client_id"] as? String == "web-app")
            #expect(active["scope"] as? String == "openid read:messages offline_access")
            #expect(active["token_type"] as? String == "Bearer")
            #expect(try await introspect(refresh)["active"] as? Bool == true)
            #expect(try await introspect("garbage")["active"] as? Bool == false)

            // Unauthenticated, wrongly authenticated, or a public client: 401, nothing said about the token.
            let anonymous = try await browser.post("/oauth/introspect", form: [("token", access)])
            #expect(anonymous.status == .unauthorized)
            #expect(jsonObject(anonymous)["active"] == nil)
            let wrong = try await browser.post("/oauth/introspect", form: [("token", access)], headers: basic("reporting-service", "nope"))
            #expect(wrong.status == .unauthorized)
            let publicClient = try await browser.post("/oauth/introspect", form: [("token", access), ("client_id", "spa")])
            #expect(publicClient.status == .unauthorized)

            // Rotation: the old refresh token is inactive, the new one active.
            let rotated = jsonObject(
                try await browser.post(
                    "/oauth/token", form: [("grant_type", "refresh_token"), ("refresh_token", refresh)], headers: basic("web-app", "s3cret")))
            let next = try #require(rotated["refresh_token"] as? String)
            #expect(try await introspect(refresh)["active"] as? Bool == false)
            #expect(try await introspect(next)["active"] as? Bool == true)
            // A replayed code revokes what it issued: the access token turns inactive.
            #expect(try await TokenEndpointTests.exchange(browser, code: code).status == .badRequest)
            #expect(try await introspect(access, headers: resourceServer)["active"] as? Bool == false)
            #expect(try await introspect(next)["active"] as? Bool == false, "the family is revoked with the code")
        }
        let introspected = try harness.events().compactMap { if case .tokenIntrospected(let value) = $0.1 { value } else { nil } }
        #expect(introspected.map(\.active) == [true, true, false, false, true, false, false])
        #expect(introspected.last?.reason == "family_revoked")
        #expect(introspected.allSatisfy { $0.clientID == "reporting-service" })
        // Replay asks the projections as they stood at each question, and gets the same answers.
        let reader = try JournalReader(directory: harness.directory + "/journal")
        defer { reader.close() }
        var asked = 0
        try DecisionHistory.forEachIntrospection(in: reader) { _, _, recorded, recomputed in
            asked += 1
            #expect(recomputed == IntrospectionAnswer(active: recorded.active, reason: recorded.reason))
        }
        #expect(asked == 7)
        let replay = try RebuildCommandTests.replay(["replay", "--journal", harness.directory + "/journal"])
        #expect(replay.0 == 0 && replay.1.contains("0 differ from the record"), "\(replay.1)")
        let last = try #require(try harness.events().last { if case .tokenIntrospected = $0.1 { true } else { false } }?.0)
        let explained = try RebuildCommandTests.replay(["explain", String(last), "--journal", harness.directory + "/journal"]).1
        #expect(explained.contains("inactive (family_revoked)") && explained.contains("give the same answer"), "\(explained)")
    }

    /// Pushes `parameters` as `client`; the response.
    static func push(_ browser: Browser, _ parameters: [(String, String)], client: (String, String) = ("par-app", "par-secret")) async throws -> Page {
        try await browser.post("/oauth/par", form: parameters, headers: basic(client.0, client.1))
    }

    static func parParameters(_ extra: [(String, String)] = []) -> [(String, String)] {
        [("response_type", "code"), ("client_id", "par-app"), ("redirect_uri", "https://par.test/callback"), ("scope", "openid"), ("state", "par-state")]
            + extra
    }

    @Test("PAR (RFC 9126): a pushed request is used once, for 60 s, by its client; a client may be made to push")
    func pushedRequests() async throws {
        let harness = try await ServerHarness(tenant: grantsTenantYAML(AssertionSigner()))
        try await harness.run { browser in
            let pushed = try await Self.push(browser, Self.parParameters([("nonce", "n-par")]))
            #expect(pushed.status == .created, "\(pushed.body)")
            let body = jsonObject(pushed)
            #expect(body["expires_in"] as? Int == 60)
            let requestURI = try #require(body["request_uri"] as? String)
            #expect(requestURI.hasPrefix("urn:ietf:params:oauth:request_uri:"))

            // Used: login, and a code for the pushed parameters (the query's other parameters are ignored).
            let reference = [("client_id", "par-app"), ("request_uri", requestURI)]
            let done = try await browser.authorize(reference + [("state", "ignored")])
            #expect(done.redirectParameters["code"] != nil, "\(done.location ?? done.body)")
            #expect(done.redirectParameters["state"] == "par-state")
            #expect(done.location?.hasPrefix("https://par.test/callback?") == true)

            // Used again: an error page, never a redirect.
            let reused = try await browser.get("/authorize?" + FormEncoding.encode(reference))
            #expect(reused.status == .badRequest && reused.location == nil)
            #expect(reused.body.contains("invalid_request_uri"))

            // Another client's request_uri, and one never issued.
            let fresh = try #require(jsonObject(try await Self.push(browser, Self.parParameters()))["request_uri"] as? String)
            let foreign = try await browser.get("/authorize?" + FormEncoding.encode([("client_id", "web-app"), ("request_uri", fresh)]))
            #expect(foreign.body.contains("invalid_request_uri") && foreign.location == nil)
            let unknown = try await browser.get(
                "/authorize?" + FormEncoding.encode([("client_id", "par-app"), ("request_uri", "urn:ietf:params:oauth:request_uri:nope")]))
            #expect(unknown.body.contains("invalid_request_uri"))
            // Expired after 60 s.
            harness.clock.advance(seconds: 61)
            let expired = try await browser.get("/authorize?" + FormEncoding.encode([("client_id", "par-app"), ("request_uri", fresh)]))
            #expect(expired.body.contains("invalid_request_uri"))

            // A client that must push: a plain request is refused (to its registered redirect URI).
            let plain = try await browser.get("/authorize?" + FormEncoding.encode(Self.parParameters()))
            #expect(plain.redirectParameters["error"] == "invalid_request")

            // Pushes are checked like authorization requests, and need client authentication.
            let badRedirect = try await Self.push(browser, Self.parParameters().map { $0.0 == "redirect_uri" ? ($0.0, "https://evil.test/") : $0 })
            #expect(badRedirect.status == .badRequest)
            #expect(jsonObject(badRedirect)["error"] as? String == "invalid_request")
            let badScope = try await Self.push(browser, Self.parParameters([("audience", "https://api.example.com")]).map { $0.0 == "scope" ? ($0.0, "openid nope") : $0 })
            #expect(jsonObject(badScope)["error"] as? String == "invalid_scope")
            let unauthenticated = try await browser.post("/oauth/par", form: Self.parParameters())
            #expect(unauthenticated.status == .unauthorized)
            let nested = try await Self.push(browser, Self.parParameters([("request_uri", fresh)]))
            #expect(jsonObject(nested)["error"] as? String == "invalid_request")
            // A public client pushes with its client_id alone (RFC 9126 §2).
            let spa = try await browser.post("/oauth/par", form: spaPKCEParameters())
            #expect(spa.status == .created)
        }
        let decisions = try RecordedFlow(harness).decisions
        #expect(decisions.map(\.decision.rule).filter { $0.hasPrefix("pushed_request") }
            == ["pushed_request.valid", "pushed_request.valid", "pushed_request.valid", "pushed_request.valid", "pushed_request.required"])
        let events = try harness.events()
        let pushes = events.compactMap { if case .pushedRequest(let value) = $0.1 { value } else { nil } }
        #expect(pushes.filter { $0.refusal == nil }.count == 3)
        #expect(pushes.compactMap(\.refusal).map(\.rule) == ["redirect_uri.exact_match", "scope.defined"])
        // Replay checks every push again, accepted or refused, with the same outcome.
        let reader = try JournalReader(directory: harness.directory + "/journal")
        defer { reader.close() }
        var rechecked = 0
        try DecisionHistory.forEachDecision(in: reader, pushes: { push in
            rechecked += 1
            #expect(push.recheck()?.agrees == true)
        }) { _, _ in }
        #expect(rechecked == 5)
    }

    /// The grants tenant with a FAPI 2.0 client that signs with `signer`'s key.
    static func fapiTenant(_ signer: AssertionSigner) -> String {
        grantsTenantYAML(signer).replacingOccurrences(
            of: "client_grants:\n",
            with: [
                "  - client_id: fapi-app",
                "    name: FAPI App",
                "    app_type: regular_web",
                "    token_endpoint_auth_method: private_key_jwt",
                "    jwks: \(signer.jwksYAML)",
                "    redirect_uris: [https://fapi.test/callback]",
                "    first_party: true",
                "    connections: [Username-Password-Authentication]",
                "    profile: fapi2",
                "client_grants:", "",
            ].joined(separator: "\n"))
    }

    @Test("FAPI 2.0 profile: pushed requests with PKCE S256 only, private_key_jwt to the issuer, DPoP-bound tokens")
    func fapi2() async throws {
        let signer = AssertionSigner()
        let harness = try await ServerHarness(tenant: Self.fapiTenant(signer))
        let dpop = DPoPClient()
        try await harness.run { browser in
            func push(_ parameters: [(String, String)]) async throws -> Page {
                try await browser.post("/oauth/par", form: parameters + signer.form(try await signer.assertion(client: "fapi-app")))
            }
            let base: [(String, String)] = [
                ("response_type", "code"), ("client_id", "fapi-app"), ("redirect_uri", "https://fapi.test/callback"), ("scope", "openid"),
                ("state", "f"), ("code_challenge", tokenTestChallenge), ("code_challenge_method", "S256"),
            ]
            // Refused at the push: PKCE missing or plain, the redirect URI left out, implicit.
            for (name, parameters) in [
                ("no PKCE", base.filter { !$0.0.hasPrefix("code_challenge") }),
                ("plain PKCE", base.map { $0.0 == "code_challenge_method" ? ($0.0, "plain") : $0 }),
                ("no redirect_uri", base.filter { $0.0 != "redirect_uri" }),
                ("implicit", base.map { $0.0 == "response_type" ? ($0.0, "id_token") : $0 } + [("nonce", "n")]),
            ] {
                let page = try await push(parameters)
                #expect(page.status == .badRequest, "\(name): \(page.body)")
            }
            // An assertion addressed to the token endpoint is not enough for a FAPI 2.0 client.
            let misaddressed = try await browser.post(
                "/oauth/par", form: base + signer.form(try await signer.assertion(client: "fapi-app", audience: ["https://auth.test/oauth/token"])))
            #expect(misaddressed.status == .unauthorized)
            // A plain authorization request is refused.
            let plain = try await browser.get("/authorize?" + FormEncoding.encode(base))
            #expect(plain.redirectParameters["error"] == "invalid_request")

            let pushed = try await push(base)
            #expect(pushed.status == .created, "\(pushed.body)")
            let requestURI = try #require(jsonObject(pushed)["request_uri"] as? String)
            let done = try await browser.authorize([("client_id", "fapi-app"), ("request_uri", requestURI)])
            let code = try #require(done.redirectParameters["code"], "\(done.location ?? done.body)")
            #expect(done.redirectParameters["iss"] == "https://auth.test/")
            let exchange: [(String, String)] = [
                ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://fapi.test/callback"), ("code_verifier", tokenTestVerifier),
            ]
            // Without DPoP: refused (the code stays redeemable).
            let unbound = try await browser.post("/oauth/token", form: exchange + signer.form(try await signer.assertion(client: "fapi-app")))
            #expect(unbound.status == .badRequest)
            var headers = HTTPFields()
            headers[HTTPField.Name("DPoP")!] = try await dpop.proof()
            let bound = try await browser.post(
                "/oauth/token", form: exchange + signer.form(try await signer.assertion(client: "fapi-app")), headers: headers)
            #expect(bound.status == .ok, "\(bound.body)")
            #expect(jsonObject(bound)["token_type"] as? String == "DPoP")
        }
        // A FAPI 2.0 client with a secret is refused by the tenant file's checks.
        let withSecret = Self.fapiTenant(signer).replacingOccurrences(
            of: "    token_endpoint_auth_method: private_key_jwt\n    jwks: \(signer.jwksYAML)\n    redirect_uris: [https://fapi.test/callback]",
            with: "    client_secret: s\n    redirect_uris: [https://fapi.test/callback]")
        #expect(throws: TenantFileError.self) {
            try TenantPlanner(hasher: Argon2idHasher.minimal).plan(try TenantFile.parse(yaml: withSecret), against: ConfigurationState())
        }
    }

    @Test("discovery lists the new endpoints, grant and authentication methods")
    func discovery() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let metadata = jsonObject(try await browser.get("/.well-known/openid-configuration"))
            #expect(metadata["introspection_endpoint"] as? String == "https://auth.test/oauth/introspect")
            #expect(metadata["pushed_authorization_request_endpoint"] as? String == "https://auth.test/oauth/par")
            #expect(metadata["end_session_endpoint"] as? String == "https://auth.test/oidc/logout")
            #expect(metadata["backchannel_logout_supported"] as? Bool == true)
            #expect((metadata["grant_types_supported"] as? [String])?.contains("client_credentials") == true)
            #expect((metadata["token_endpoint_auth_methods_supported"] as? [String])?.contains("private_key_jwt") == true)
            #expect((metadata["token_endpoint_auth_signing_alg_values_supported"] as? [String])?.contains("ES256") == true)
        }
    }
}
