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
            let parameters: [(String, String)] = [
                ("response_type", "code"), ("client_id", "spa"), ("redirect_uri", "https://spa.test/callback"), ("scope", "openid"),
                ("code_challenge", tokenTestChallenge), ("code_challenge_method", "S256"), ("state", "s"),
            ]
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
            let error = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters(scope: "openid no-such-scope")))
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
