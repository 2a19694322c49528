import AuthCore
import Foundation
import HTTPTypes
import Testing

@testable import AuthServer

@Suite("Refresh tokens: offline_access, rotation, reuse detection, family revocation")
struct RefreshTokenTests {
    /// A code flow for web-app with offline_access on the API; returns the token response.
    static func offlineTokens(_ browser: Browser) async throws -> [String: Any] {
        let page = try await browser.authorize(
            webAppParameters([("audience", "https://api.example.com")], scope: "openid offline_access read:messages"))
        let code = try #require(page.redirectParameters["code"])
        let tokens = jsonObject(try await TokenEndpointTests.exchange(browser, code: code))
        return tokens
    }

    static func refresh(_ browser: Browser, _ token: String, client: (String, String) = ("web-app", "s3cret"),
                        scope: String? = nil) async throws -> Page {
        var form: [(String, String)] = [("grant_type", "refresh_token"), ("refresh_token", token)]
        if let scope { form.append(("scope", scope)) }
        return try await browser.post("/oauth/token", form: form, headers: basic(client.0, client.1))
    }

    @Test("offline_access gives a refresh token; using it rotates it and issues new tokens")
    func rotation() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let tokens = try await Self.offlineTokens(browser)
            let first = try #require(tokens["refresh_token"] as? String)
            #expect(first.utf8.count == 43)
            let rotated = try await Self.refresh(browser, first)
            #expect(rotated.status == .ok)
            let body = jsonObject(rotated)
            let second = try #require(body["refresh_token"] as? String)
            #expect(second != first)
            #expect(body["access_token"] as? String != nil)
            #expect(body["scope"] as? String == "openid offline_access read:messages")
            #expect(try await Self.refresh(browser, second).status == .ok, "the rotated token works")
        }
        let events = try harness.events()
        let refreshes = events.compactMap { if case .refreshIssued(let value) = $0.1 { value } else { nil } }
        #expect(refreshes.count == 3)
        #expect(Set(refreshes.map(\.family)).count == 1, "one family")
        #expect(refreshes[1].parentHash == refreshes[0].tokenHash)
        #expect(try harness.journalBytes().range(of: Data("refresh_token\\\":\\\"".utf8)) == nil)
    }

    @Test("reusing a rotated refresh token revokes the whole family: the newest refresh and access tokens stop working")
    func reuseRevokesFamily() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let first = try #require(try await Self.offlineTokens(browser)["refresh_token"] as? String)
            let rotated = jsonObject(try await Self.refresh(browser, first))
            let second = try #require(rotated["refresh_token"] as? String)
            let access = try #require(rotated["access_token"] as? String)
            #expect(try await browser.send("/userinfo", method: .get, headers: ResourceEndpointTests.bearer(access)).status == .ok)

            let reuse = try await Self.refresh(browser, first)
            #expect(reuse.status == .badRequest)
            #expect(jsonObject(reuse)["error"] as? String == "invalid_grant")
            #expect(jsonObject(try await Self.refresh(browser, second))["error"] as? String == "invalid_grant")
            #expect(try await browser.send("/userinfo", method: .get, headers: ResourceEndpointTests.bearer(access)).status == .unauthorized)
        }
        let revocations = try harness.events().compactMap { if case .refreshFamilyRevoked(let value) = $0.1 { value } else { nil } }
        #expect(revocations.map(\.reason) == [.reuse])
    }

    @Test("a refresh token works only for its client, and only narrows scopes")
    func clientAndScope() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let token = try #require(try await Self.offlineTokens(browser)["refresh_token"] as? String)
            let otherClient = try await Self.refresh(browser, token, client: ("first-party", "s3cret"))
            #expect(otherClient.status == .badRequest, "first-party may not use the refresh grant at all")
            let widened = try await Self.refresh(browser, token, scope: "openid write:messages")
            #expect(jsonObject(widened)["error"] as? String == "invalid_scope")
            let narrowed = try await Self.refresh(browser, token, scope: "openid")
            #expect(narrowed.status == .ok)
            #expect(jsonObject(narrowed)["scope"] as? String == "openid")
        }
    }

    @Test("replaying the code revokes the refresh family it started; revoking a refresh token revokes its family")
    func replayAndRevocation() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let page = try await browser.authorize(
                webAppParameters([("audience", "https://api.example.com")], scope: "openid offline_access"))
            let code = try #require(page.redirectParameters["code"])
            let refresh = try #require(jsonObject(try await TokenEndpointTests.exchange(browser, code: code))["refresh_token"] as? String)
            _ = try await TokenEndpointTests.exchange(browser, code: code)
            #expect(jsonObject(try await Self.refresh(browser, refresh))["error"] as? String == "invalid_grant")

            let other = try #require(try await Self.offlineTokens(browser)["refresh_token"] as? String)
            // The hint is only a hint (RFC 7009 §2.1): a wrong or unknown one still revokes the token.
            let revoke = try await browser.post("/oauth/revoke", form: [("token", other), ("token_type_hint", "id_token")],
                                                headers: basic("web-app", "s3cret"))
            #expect(revoke.status == .ok)
            #expect(jsonObject(try await Self.refresh(browser, other))["error"] as? String == "invalid_grant")
        }
        let reasons = try harness.events().compactMap { if case .refreshFamilyRevoked(let value) = $0.1 { value.reason } else { nil } }
        #expect(reasons == [.codeReplay, .revocation])
    }

    @Test("without offline_access, or when the API does not allow it, there is no refresh token")
    func noOfflineAccess() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let page = try await browser.authorize(webAppParameters(scope: "openid offline_access"))
            let code = try #require(page.redirectParameters["code"])
            let tokens = jsonObject(try await TokenEndpointTests.exchange(browser, code: code))
            #expect(tokens["refresh_token"] == nil, "no audience, so no API allows offline access")
            #expect(tokens["access_token"] != nil)
        }
    }

    @Test("revoking a consent also revokes the refresh tokens granted under it")
    func consentRevocation() async throws {
        let harness = try await ServerHarness()
        let box = CodeBox()
        try await harness.run { browser in
            box.code = try #require(try await Self.offlineTokens(browser)["refresh_token"] as? String)
        }
        let journal = harness.directory + "/journal"
        let revoke = try RebuildCommandTests.run("authledger", ["consent", "revoke", "--user", "auth0|alice", "--client", "web-app", "--journal", journal])
        #expect(revoke.0 == 0)
        #expect(revoke.1.contains("and 1 refresh token family"))
        let reasons = try harness.events().compactMap { if case .refreshFamilyRevoked(let value) = $0.1 { value.reason } else { nil } }
        #expect(reasons == [.revocation])
        #expect(try RebuildCommandTests.replay(["rebuild", "--check", "--journal", journal]).0 == 0)
    }
}
