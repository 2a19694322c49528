import AuthCore
import Foundation
import HTTPTypes
import Testing

@testable import AuthServer

@Suite("GET /authorize over a real socket: the code flow end to end")
struct AuthorizeFlowTests {
    @Test("login, consent and a code bound to the request; state and iss come back; every step is in the journal")
    func codeFlow() async throws {
        let harness = try await ServerHarness()
        let codeBox = CodeBox()
        try await harness.run { browser in
            let first = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters()))
            #expect(first.status == .found)
            #expect(first.location?.hasPrefix("/login?state=") == true)
            let result = try await browser.authorize(webAppParameters())
            #expect(result.status == .found)
            #expect(result.location?.hasPrefix("https://client.test/callback?") == true)
            let parameters = result.redirectParameters
            #expect(parameters["state"] == "st-123")
            #expect(parameters["iss"] == "https://auth.test/")
            let code = try #require(parameters["code"])
            #expect(code.utf8.count == 43, "256 random bits, base64url")
            codeBox.code = code
        }
        let events = try harness.events()
        let types = events.map(\.1.eventType.name)
        #expect(types.contains("auth.login.succeeded"))
        #expect(types.contains("auth.consent.granted"))
        let issued = events.compactMap { if case .codeIssued(let issued) = $0.1 { issued } else { nil } }
        #expect(issued.count == 1)
        let grant = try #require(issued.first?.grant)
        #expect(grant.clientID == "web-app")
        #expect(grant.userID == "auth0|alice")
        #expect(grant.redirectURI == "https://client.test/callback")
        #expect(grant.scopes == ["openid", "profile"])
        #expect(issued.first?.codeHash == OpaqueToken.hash(codeBox.code!))
        // The raw code never reaches the journal; only its hash does.
        let bytes = try harness.journalBytes()
        #expect(bytes.range(of: Data(codeBox.code!.utf8)) == nil)
        #expect(bytes.range(of: Data("correct horse battery staple".utf8)) == nil, "no plain password in the journal")
        #expect(bytes.range(of: Data("s3cret".utf8)) == nil, "no plain client secret in the journal")
    }

    @Test("a second /authorize in the same browser is answered from the SSO session and the stored consent")
    func singleSignOn() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await browser.authorize(webAppParameters())
            let again = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters(state: "second")))
            #expect(again.status == .found)
            #expect(again.redirectParameters["code"] != nil)
            #expect(again.redirectParameters["state"] == "second")
        }
    }

    @Test("an unknown client gets an error page and no redirect")
    func unknownClient() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let page = try await browser.get(
                "/authorize?" + FormEncoding.encode([("response_type", "code"), ("client_id", "nope<script>"), ("redirect_uri", "https://evil.test/")]))
            #expect(page.status == .badRequest)
            #expect(page.location == nil)
            #expect(page.body.contains("Unknown client."), "the page names no request value")
            #expect(!page.body.contains("nope<script>"))
        }
    }

    @Test("redirect URIs must match exactly: every variant gets an error page, never a redirect", arguments: [
        "https://client.test/callback/", "https://CLIENT.test/callback", "HTTPS://client.test/callback",
        "https://client.test/callback?x=1", "https://client.test/callback/../callback", "https://client.test/Callback",
        "https://evil.test@client.test/callback", "https://client.test@evil.test/callback", "https://client.test/callback%2F",
        "https://client.test:443/callback", "https://client.test/callback#frag", "http://client.test/callback", "",
    ])
    func redirectURIVariants(_ uri: String) async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            var parameters = webAppParameters().filter { $0.0 != "redirect_uri" }
            if !uri.isEmpty { parameters.append(("redirect_uri", uri)) }
            let page = try await browser.get("/authorize?" + FormEncoding.encode(parameters))
            #expect(page.status == .badRequest)
            #expect(page.location == nil)
        }
    }

    @Test("token responses carry no-store and the pages carry a strict Content-Security-Policy")
    func securityHeaders() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let page = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters()))
            #expect(page.headers[.cacheControl] == "no-store")
            #expect(page.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("default-src 'none'") == true)
            let cookie = page.headers[.setCookie] ?? ""
            #expect(cookie.contains("HttpOnly"))
            #expect(cookie.contains("SameSite=Lax"))
            // Answers the router gives itself (unknown path, unknown method) carry the same headers.
            for missing in [try await browser.get("/no-such-page"), try await browser.send("/healthz", method: .delete)] {
                #expect(missing.status == .notFound)
                #expect(missing.headers[.cacheControl] == "no-store")
                #expect(missing.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
            }
        }
    }
}

/// Carries a value out of a `@Sendable` test closure.
final class CodeBox: @unchecked Sendable {
    var code: String?
}
