import AuthCore
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import Testing

/// The attacks of RFC 9700 (OAuth 2.0 Security Best Current Practice) §4 that are not pinned elsewhere,
/// each against the real server over a socket. The others: open redirects through redirect_uri variants
/// (AuthorizeFlowTests.exactRedirectURIs), CSRF on the login form (AuthorizeRulesTests), session fixation
/// (AuthorizeRulesTests), code replay (TokenEndpointTests), refresh token reuse (RefreshTokenTests).
@Suite("RFC 9700 attacks, refused")
struct AttackTests {
    @Test("authorization code injection (§4.5): a code issued to web-app is refused to another confidential client, and nothing is issued")
    func codeInjection() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            let injected = try await browser.post(
                "/oauth/token",
                form: [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://first.test/callback")],
                headers: basic("first-party", "s3cret"))
            #expect(injected.status == .badRequest)
            #expect(jsonObject(injected)["error"] as? String == "invalid_grant")
            #expect(jsonObject(injected)["access_token"] == nil)
        }
        let issued = try harness.events().filter { if case .tokenIssued = $0.1 { true } else { false } }
        #expect(issued.isEmpty)
    }

    @Test("a leaked, already-used code presented by another client is invalid_grant and revokes nothing of the client it was issued to")
    func usedCodeByAnotherClient() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let page = try await browser.authorize(
                webAppParameters([("audience", "https://api.example.com")], scope: "openid offline_access read:messages"))
            let code = try #require(page.redirectParameters["code"])
            let tokens = jsonObject(try await TokenEndpointTests.exchange(browser, code: code))
            let refresh = try #require(tokens["refresh_token"] as? String)
            let access = try #require(tokens["access_token"] as? String)
            // The public client spa (no secret needed) and the confidential first-party both present the used code.
            let byPublic = try await browser.post(
                "/oauth/token",
                form: [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://client.test/callback"), ("client_id", "spa")])
            #expect(jsonObject(byPublic)["error"] as? String == "invalid_grant")
            let byConfidential = try await browser.post(
                "/oauth/token", form: [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://client.test/callback")],
                headers: basic("first-party", "s3cret"))
            #expect(jsonObject(byConfidential)["error"] as? String == "invalid_grant")
            // web-app's tokens and refresh family still work.
            var bearer = HTTPFields()
            bearer[.authorization] = "Bearer " + access
            #expect(try await browser.send("/userinfo", method: .get, headers: bearer).status == .ok)
            #expect(try await RefreshTokenTests.refresh(browser, refresh).status == .ok)
        }
        let events = try harness.events().map(\.1)
        #expect(!events.contains { if case .codeReplayed = $0 { true } else { false } }, "no replay recorded")
        #expect(!events.contains { if case .refreshFamilyRevoked = $0 { true } else { false } }, "no family revoked")
        let rejected = events.compactMap { if case .tokenRejected(let value) = $0 { value } else { nil } }
        #expect(rejected.map(\.clientID) == ["spa", "first-party"])
    }

    /// Wording an attacker would like a real client's error page to show: quotes, a newline, bidi controls.
    static let hostileWording = "Your account is locked.\n\"Call\" +1-555-0100 \u{202E}now\u{202C} \\ \u{1B}[2J"

    /// Whether `description` is within RFC 6749 §4.1.2.1's character set and holds none of the hostile text.
    static func expectSafeDescription(_ description: String?, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let description else {
            Issue.record("\(what): no error_description", sourceLocation: sourceLocation)
            return
        }
        #expect(description.unicodeScalars.allSatisfy(OAuthErrorDescription.isAllowed), "\(what): \(description)", sourceLocation: sourceLocation)
        #expect(!description.contains("locked") && !description.contains("555"), "\(what) echoes the request: \(description)",
                sourceLocation: sourceLocation)
        #expect(description.utf8.count <= OAuthErrorDescription.maximumLength, sourceLocation: sourceLocation)
    }

    @Test("error_description never carries request text (RFC 6749 §4.1.2.1): /authorize redirects, /oauth/token, /userinfo")
    func noRequestTextInErrorDescriptions() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            // /authorize: each value reaches a rule that refuses it with a redirect to the real client.
            let refusals: [(String, [(String, String)])] = [
                ("scope", webAppParameters(scope: "profile " + Self.hostileWording)),
                ("audience", webAppParameters([("audience", Self.hostileWording)])),
                ("response_type", webAppParameters().map { $0.0 == "response_type" ? ($0.0, Self.hostileWording) : $0 }),
                ("response_mode", webAppParameters([("response_mode", Self.hostileWording)])),
                ("connection", webAppParameters([("connection", Self.hostileWording)])),
                ("organization", webAppParameters([("organization", Self.hostileWording)])),
                ("code_challenge_method", webAppParameters([("code_challenge", tokenTestChallenge), ("code_challenge_method", Self.hostileWording)])),
            ]
            for (name, parameters) in refusals {
                let page = try await browser.get("/authorize?" + FormEncoding.encode(parameters))
                #expect(page.status == .found, "\(name)")
                #expect(page.location?.hasPrefix("https://client.test/callback") == true, "\(name)")
                Self.expectSafeDescription(page.redirectParameters["error_description"], "/authorize \(name)")
            }
            // /oauth/token: an unknown grant type, and a DPoP proof whose header names a made-up key type.
            let grant = try await browser.post("/oauth/token", form: [("grant_type", Self.hostileWording)], headers: basic("web-app", "s3cret"))
            #expect(jsonObject(grant)["error"] as? String == "unsupported_grant_type")
            Self.expectSafeDescription(jsonObject(grant)["error_description"] as? String, "/oauth/token grant_type")
            let header = Base64URL.encode(Array(#"{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"Your account is locked. Call 555"}}"#.utf8))
            var proof = basic("web-app", "s3cret")
            proof[HTTPField.Name("DPoP")!] = header + "." + Base64URL.encode(Array("{}".utf8)) + ".c2ln"
            let dpop = try await browser.post("/oauth/token", form: [("grant_type", "authorization_code"), ("code", "x")], headers: proof)
            #expect(jsonObject(dpop)["error"] as? String == "invalid_dpop_proof")
            Self.expectSafeDescription(jsonObject(dpop)["error_description"] as? String, "/oauth/token DPoP")
            let repeated = try await browser.post(
                "/oauth/token", form: [("grant_type", "refresh_token"), ("Call_555_now", "a"), ("Call_555_now", "b")], headers: basic("web-app", "s3cret"))
            #expect(jsonObject(repeated)["error"] as? String == "invalid_request")
            Self.expectSafeDescription(jsonObject(repeated)["error_description"] as? String, "/oauth/token repeated")
        }
    }

    @Test("forced logout: GET /logout only asks; the session ends by the CSRF-bound form, or with an id_token_hint of this very session")
    func forcedLogout() async throws {
        // Sessions of a day, so that an ID token (10 hours) can expire while its session lives on.
        let harness = try await ServerHarness(tenant: testTenantYAML.replacingOccurrences(of: "session_ttl_seconds: 3600", with: "session_ttl_seconds: 86400"))
        try await harness.run { browser in
            func loggedIn(_ browser: Browser) async throws -> Bool {
                let page = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters([("prompt", "none")])))
                return page.redirectParameters["code"] != nil
            }
            func asks(_ page: Page) -> Bool { page.status == .ok && page.body.contains("action=\"/logout\"") }
            let code = try await TokenEndpointTests.code(browser)
            let aliceIDToken = try #require(jsonObject(try await TokenEndpointTests.exchange(browser, code: code))["id_token"] as? String)
            // A cross-site link: a top-level GET with the session cookie. It asks, and changes nothing.
            #expect(asks(try await browser.get("/logout")))
            #expect(try await loggedIn(browser))
            // A cross-site form post cannot know the CSRF token.
            #expect(try await browser.post("/logout", form: [("csrf", "forged")]).status == .forbidden)
            // Without a CSRF token a POST is a logout request (RP-Initiated Logout §2): it asks too.
            #expect(asks(try await browser.post("/logout", form: [])))
            #expect(try await loggedIn(browser))
            // Hints that are not an ID token of this server for this session: asked again, nothing changed.
            let bobBrowser = Browser(client: browser.client)
            let bobCode = try #require(
                try await bobBrowser.authorize(webAppParameters(), username: "bob@example.com", password: "hunter2 hunter2").redirectParameters["code"])
            let bobIDToken = try #require(jsonObject(try await TokenEndpointTests.exchange(bobBrowser, code: bobCode))["id_token"] as? String)
            let tampered = String(aliceIDToken.dropLast(2)) + (aliceIDToken.hasSuffix("AA") ? "BA" : "AA")
            // Another user's ID token: asked. Not an ID token of this server: refused with a page.
            #expect(asks(try await browser.get("/logout?" + FormEncoding.encode([("id_token_hint", bobIDToken)]))))
            #expect(try await loggedIn(browser))
            for hint in [tampered, "not-a-jwt"] {
                let page = try await browser.get("/logout?" + FormEncoding.encode([("id_token_hint", hint)]))
                #expect(page.status == .badRequest && page.location == nil)
                #expect(try await loggedIn(browser))
            }
            // Alice's ID token of this session does not end another, later session of hers.
            harness.clock.advance(seconds: 5)
            let laterSession = Browser(client: browser.client)
            #expect(try await laterSession.authorize(webAppParameters()).redirectParameters["code"] != nil)
            #expect(asks(try await laterSession.get("/logout?" + FormEncoding.encode([("id_token_hint", aliceIDToken)]))))
            #expect(try await loggedIn(laterSession))
            // It ends its own session at once, even once expired (after 10 hours).
            harness.clock.advance(seconds: 11 * 3600)
            let hinted = try await browser.get("/logout?" + FormEncoding.encode([("id_token_hint", aliceIDToken)]))
            #expect(hinted.body.contains("Logged out"))
            #expect(browser.cookies["al_session"] == nil)
            #expect(!(try await loggedIn(browser)))
            #expect(try await loggedIn(laterSession), "the other session lives on")
            // The confirmation form itself logs out.
            let confirm = try await bobBrowser.get("/logout")
            let done = try await bobBrowser.post("/logout", form: [("csrf", try #require(confirm.hidden("csrf")))])
            #expect(done.status == .ok && done.body.contains("Logged out"))
            #expect(!(try await loggedIn(bobBrowser)))
        }
        let logouts = try harness.events().compactMap { if case .loggedOut(let value) = $0.1 { value.userID } else { nil } }
        #expect(logouts == ["auth0|alice", "auth0|bob"])
    }

    @Test("a public client's used code presented without its PKCE verifier changes nothing; with it, it is a replay that revokes")
    func usedPublicCodeWithoutVerifier() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let parameters = spaPKCEParameters()
            let code = try #require(try await browser.authorize(parameters).redirectParameters["code"])
            func redeem(verifier: String?) async throws -> Page {
                var form: [(String, String)] = [
                    ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://spa.test/callback"), ("client_id", "spa"),
                ]
                if let verifier { form.append(("code_verifier", verifier)) }
                return try await browser.post("/oauth/token", form: form)
            }
            let tokens = jsonObject(try await redeem(verifier: tokenTestVerifier))
            let access = try #require(tokens["access_token"] as? String)
            var bearer = HTTPFields()
            bearer[.authorization] = "Bearer " + access
            // Anyone can send spa's client_id: without the verifier the used code is just refused.
            for verifier in [nil, tokenTestVerifier + "x"] {
                #expect(jsonObject(try await redeem(verifier: verifier))["error"] as? String == "invalid_grant")
            }
            #expect(try await browser.send("/userinfo", method: .get, headers: bearer).status == .ok, "nothing revoked")
            // The client itself presenting it again, verifier and all, is a replay: what it issued is revoked.
            #expect(jsonObject(try await redeem(verifier: tokenTestVerifier))["error"] as? String == "invalid_grant")
            #expect(try await browser.send("/userinfo", method: .get, headers: bearer).status == .unauthorized)
        }
        let replays = try harness.events().filter { if case .codeReplayed = $0.1 { true } else { false } }
        #expect(replays.count == 1)
    }

    @Test("parameter pollution (RFC 6749 §3.2): a repeated parameter at the token endpoint is invalid_request, and nothing is issued")
    func repeatedTokenParameters() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            let repeats: [[(String, String)]] = [
                [("grant_type", "authorization_code"), ("grant_type", "authorization_code")],
                [("code", code), ("code", "another")],
                [("redirect_uri", "https://client.test/callback"), ("redirect_uri", "https://evil.test/")],
                [("client_id", "web-app"), ("client_id", "spa")],
            ]
            for extra in repeats {
                var form: [(String, String)] = [
                    ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://client.test/callback"),
                ]
                form.removeAll { field in extra.contains { $0.0 == field.0 } }
                let refused = try await browser.post("/oauth/token", form: form + extra, headers: basic("web-app", "s3cret"))
                #expect(refused.status == .badRequest, "\(extra[0].0)")
                #expect(jsonObject(refused)["error"] as? String == "invalid_request")
                #expect((jsonObject(refused)["error_description"] as? String)?.contains("is repeated") == true)
            }
            // The code was never consumed by the refused requests.
            #expect(try await TokenEndpointTests.exchange(browser, code: code).status == .ok)
            let revoke = try await browser.post("/oauth/revoke", form: [("token", "a"), ("token", "b")], headers: basic("web-app", "s3cret"))
            #expect(jsonObject(revoke)["error"] as? String == "invalid_request")
        }
        let issued = try harness.events().filter { if case .tokenIssued = $0.1 { true } else { false } }
        #expect(issued.count == 1)
    }

    @Test("PKCE downgrade (§4.8): a code bound to an S256 challenge is refused with the challenge as a plain verifier, or with none")
    func pkceDowngrade() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let parameters = spaPKCEParameters()
            for verifier in [tokenTestChallenge, nil] {
                let code = try #require(try await browser.authorize(parameters).redirectParameters["code"])
                var form: [(String, String)] = [
                    ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://spa.test/callback"), ("client_id", "spa"),
                ]
                if let verifier { form.append(("code_verifier", verifier)) }
                form.append(("code_challenge_method", "plain"))
                let refused = try await browser.post("/oauth/token", form: form)
                #expect(jsonObject(refused)["error"] as? String == "invalid_grant", "verifier \(verifier ?? "none")")
            }
            // plain is not even accepted at /authorize unless the tenant allows it.
            let plain = try await browser.get(
                "/authorize?" + FormEncoding.encode(parameters.filter { $0.0 != "code_challenge_method" } + [("code_challenge_method", "plain")]))
            #expect(plain.redirectParameters["error"] == "invalid_request")
        }
    }

    @Test("mix-up (§4.4, RFC 9207): every authorization response, success or error, names the issuer in iss")
    func issuerInEveryResponse() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let success = try await browser.authorize(webAppParameters())
            #expect(success.redirectParameters["code"] != nil)
            #expect(success.redirectParameters["iss"] == "https://auth.test/")
            let error = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters(scope: "profile no-such-scope")))
            #expect(error.redirectParameters["error"] == "invalid_scope")
            #expect(error.redirectParameters["iss"] == "https://auth.test/")
            let denied = try await Browser(client: browser.client).authorize(webAppParameters(scope: "openid email"), consent: "deny")
            #expect(denied.redirectParameters["error"] == "access_denied")
            #expect(denied.redirectParameters["iss"] == "https://auth.test/")
            let metadata = jsonObject(try await browser.get("/.well-known/openid-configuration"))
            #expect(metadata["authorization_response_iss_parameter_supported"] as? Bool == true)
        }
    }

    @Test("online guessing (§4.16): the login limit is decided from the journal's own events, so a restart does not reset it")
    func throttleSurvivesRestart() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            for attempt in 0..<10 {
                let failed = try await LoginThrottleTests.attempt(browser, "bob@example.com", "guess-\(attempt)")
                #expect(failed.status == .unauthorized)
            }
        }
        let restarted = try await ServerHarness(restarting: harness)
        try await restarted.run { browser in
            let refused = try await LoginThrottleTests.attempt(browser, "bob@example.com", "hunter2 hunter2")
            #expect(refused.status == .tooManyRequests, "the restarted server forgot the failures")
            restarted.clock.advance(seconds: 901)
            #expect(try await LoginThrottleTests.attempt(browser, "bob@example.com", "hunter2 hunter2").status == .found)
        }
    }

    @Test("clickjacking (§4.16): every page forbids framing (X-Frame-Options DENY, CSP frame-ancestors 'none')")
    func noFraming() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            var pages: [(String, Page)] = []
            let start = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters()))
            pages.append(("redirect to login", start))
            let login = try await browser.get(try #require(start.location))
            pages.append(("login page", login))
            let afterLogin = try await browser.post(
                "/login",
                form: [
                    ("state", login.hidden("state") ?? ""), ("csrf", login.hidden("csrf") ?? ""), ("username", "alice@example.com"),
                    ("password", "correct horse battery staple"),
                ])
            let resumed = try await browser.get(try #require(afterLogin.location))
            pages.append(("consent page", try await browser.get(try #require(resumed.location))))
            pages.append(("error page", try await browser.get("/authorize?client_id=nobody&redirect_uri=https%3A%2F%2Fevil.test%2F")))
            pages.append(("callback page", try await browser.get("/callback?code=c&state=s")))
            let fresh = Browser(client: browser.client)
            pages.append(("failed login page", try await LoginThrottleTests.attempt(fresh, "alice@example.com", "wrong")))
            pages.append(("form_post page", try await browser.authorize(webAppParameters([("response_mode", "form_post")], scope: "openid"))))
            for (name, page) in pages {
                #expect(page.headers[HTTPField.Name("X-Frame-Options")!] == "DENY", "\(name)")
                #expect(page.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("frame-ancestors 'none'") == true, "\(name)")
            }
        }
    }
}
