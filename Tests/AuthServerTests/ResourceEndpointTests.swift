import AuthCore
import AuthTokens
import Foundation
import HTTPTypes
import Testing

@testable import AuthServer

@Suite("GET /userinfo and POST /oauth/revoke")
struct ResourceEndpointTests {
    static func bearer(_ token: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[.authorization] = "Bearer " + token
        return headers
    }

    static func accessToken(_ browser: Browser) async throws -> String {
        let code = try await TokenEndpointTests.code(browser)
        let page = try await TokenEndpointTests.exchange(browser, code: code)
        return try #require(jsonObject(page)["access_token"] as? String)
    }

    @Test("userinfo answers the token's user; a missing, forged or revoked token gets 401 with a Bearer challenge")
    func userinfo() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let token = try await Self.accessToken(browser)
            let info = try await browser.send("/userinfo", method: .get, headers: Self.bearer(token))
            #expect(info.status == .ok)
            let body = jsonObject(info)
            #expect(body["sub"] as? String == "auth0|alice")
            #expect(body["email"] as? String == "alice@example.com")

            let missing = try await browser.get("/userinfo")
            #expect(missing.status == .unauthorized)
            #expect(missing.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
            var parts = token.split(separator: ".").map(String.init)
            parts[1] = Base64URL.encode(Array(#"{"sub":"auth0|bob"}"#.utf8))
            let forged = try await browser.send("/userinfo", method: .get, headers: Self.bearer(parts.joined(separator: ".")))
            #expect(forged.status == .unauthorized)
            #expect(forged.headers[.wwwAuthenticate]?.contains("invalid_token") == true)

            let revoke = try await browser.post("/oauth/revoke", form: [("token", token)], headers: basic("web-app", "s3cret"))
            #expect(revoke.status == .ok)
            let afterRevoke = try await browser.send("/userinfo", method: .get, headers: Self.bearer(token))
            #expect(afterRevoke.status == .unauthorized)
        }
        let revoked = try harness.events().compactMap { if case .tokenRevoked(let value) = $0.1 { value } else { nil } }
        #expect(revoked.count == 1)
        #expect(revoked.first?.clientID == "web-app")
    }

    @Test("revocation needs client authentication, answers 200 for tokens that are unknown or another client's, and records only real revocations")
    func revocation() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let token = try await Self.accessToken(browser)
            let unauthenticated = try await browser.post("/oauth/revoke", form: [("token", token), ("client_id", "web-app")])
            #expect(unauthenticated.status == .unauthorized)
            let wrongClient = try await browser.post("/oauth/revoke", form: [("token", token)], headers: basic("first-party", "s3cret"))
            #expect(wrongClient.status == .ok)
            let garbage = try await browser.post("/oauth/revoke", form: [("token", "not-a-token")], headers: basic("web-app", "s3cret"))
            #expect(garbage.status == .ok)
            #expect(try await browser.send("/userinfo", method: .get, headers: Self.bearer(token)).status == .ok, "still valid")
            let twice = [try await browser.post("/oauth/revoke", form: [("token", token)], headers: basic("web-app", "s3cret")),
                         try await browser.post("/oauth/revoke", form: [("token", token)], headers: basic("web-app", "s3cret"))]
            #expect(twice.allSatisfy { $0.status == .ok })
        }
        let revoked = try harness.events().filter { if case .tokenRevoked = $0.1 { true } else { false } }
        #expect(revoked.count == 1, "revoking twice records one revocation")
    }

    @Test("a replayed code also makes its access token fail at userinfo")
    func replayRevokesAtUserinfo() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            let token = try #require(jsonObject(try await TokenEndpointTests.exchange(browser, code: code))["access_token"] as? String)
            _ = try await TokenEndpointTests.exchange(browser, code: code)
            let info = try await browser.send("/userinfo", method: .get, headers: Self.bearer(token))
            #expect(info.status == .unauthorized)
        }
    }
}
