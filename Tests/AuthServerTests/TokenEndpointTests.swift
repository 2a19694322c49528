import AuthCore
import AuthTokens
import Foundation
import HTTPTypes
import LedgerCore
import Testing

@testable import AuthServer

/// `Authorization: Basic` for a client.
func basic(_ id: String, _ secret: String) -> HTTPFields {
    var headers = HTTPFields()
    headers[.authorization] = "Basic " + Base64.encode(Array("\(FormEncoding.encode(id)):\(FormEncoding.encode(secret))".utf8))
    return headers
}

/// The JSON object of a response body.
func jsonObject(_ page: Page) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(page.body.utf8))) as? [String: Any] ?? [:]
}

/// A PKCE verifier and its S256 challenge.
let tokenTestVerifier = "dBjftJeZ4CVP-mJ92K9qcSmv8iK2eNDw3I0Yqd4g2Qw-extra-chars"
let tokenTestChallenge = Base64URL.encode(SHA256Digest.hash(Array(tokenTestVerifier.utf8)).bytes)

@Suite("POST /oauth/token: codes redeemed once, tokens clients can verify")
struct TokenEndpointTests {
    /// Logs in as alice through web-app and returns a fresh code.
    static func code(_ browser: Browser, nonce: String = "n-1") async throws -> String {
        let page = try await browser.authorize(webAppParameters([("nonce", nonce)], scope: "openid profile email"))
        return try #require(page.redirectParameters["code"])
    }

    static func exchange(_ browser: Browser, code: String, secret: String = "s3cret", redirect: String = "https://client.test/callback",
                         extra: [(String, String)] = []) async throws -> Page {
        try await browser.post(
            "/oauth/token", form: [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect)] + extra,
            headers: basic("web-app", secret))
    }

    @Test("a code exchanged with client_secret_basic gives an at+jwt access token and an ID token, no-store")
    func exchangeCode() async throws {
        let harness = try await ServerHarness()
        let tokenBox = CodeBox()
        try await harness.run { browser in
            let code = try await Self.code(browser)
            let page = try await Self.exchange(browser, code: code)
            #expect(page.status == .ok)
            #expect(page.headers[.cacheControl] == "no-store")
            #expect(page.headers[HTTPField.Name("Pragma")!] == "no-cache")
            let body = jsonObject(page)
            #expect(body["token_type"] as? String == "Bearer")
            #expect(body["scope"] as? String == "openid profile email")
            let access = try await harness.server.tokenKeys.verify(try #require(body["access_token"] as? String), as: AccessTokenClaims.self)
            #expect(access.iss == "https://auth.test/")
            #expect(access.sub == "auth0|alice")
            #expect(access.clientID == "web-app")
            #expect(access.scope == "openid profile email")
            let accessText = body["access_token"] as! String
            tokenBox.code = accessText
            let header = String(decoding: Base64URL.decode(String(accessText.split(separator: ".")[0]))!, as: UTF8.self)
            #expect(header.contains("\"typ\":\"at+jwt\""))
            let id = try await harness.server.tokenKeys.verify(try #require(body["id_token"] as? String), as: IDTokenClaims.self)
            #expect(id.aud == "web-app")
            #expect(id.azp == "web-app")
            #expect(id.nonce == "n-1")
            #expect(id.email == "alice@example.com")
            #expect(id.atHash == TokenMinter.atHash(accessText, algorithm: .rs256))
        }
        let events = try harness.events()
        let issued = events.compactMap { if case .tokenIssued(let value) = $0.1 { value } else { nil } }
        #expect(issued.count == 1)
        #expect(issued.first?.grantType == "authorization_code")
        let token = try #require(tokenBox.code)
        #expect(try harness.journalBytes().range(of: Data(token.suffix(40).utf8)) == nil, "no token is stored in the journal")
    }

    @Test("a second redemption fails with invalid_grant and revokes the tokens of the first")
    func replayRevokes() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let code = try await Self.code(browser)
            #expect(try await Self.exchange(browser, code: code).status == .ok)
            let again = try await Self.exchange(browser, code: code)
            #expect(again.status == .badRequest)
            #expect(jsonObject(again)["error"] as? String == "invalid_grant")
        }
        let events = try harness.events()
        let issued = try #require(events.compactMap { if case .tokenIssued(let value) = $0.1 { value } else { nil } }.first)
        let replays = events.compactMap { if case .codeReplayed(let value) = $0.1 { value } else { nil } }
        #expect(replays.count == 1)
        #expect(replays.first?.revokedTokenIDs == [issued.accessTokenID!])
    }

    @Test("of many concurrent redemptions of one code, exactly one succeeds")
    func concurrentRedemptions() async throws {
        let harness = try await ServerHarness()
        let statuses = StatusBox()
        try await harness.run { browser in
            let code = try await Self.code(browser)
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<16 {
                    group.addTask { try await Self.exchange(Browser(client: browser.client), code: code).status }
                }
                for try await status in group { statuses.append(status) }
            }
        }
        #expect(statuses.values.filter { $0 == .ok }.count == 1)
        #expect(statuses.values.filter { $0 == .badRequest }.count == 15)
        let issued = try harness.events().filter { if case .tokenIssued = $0.1 { true } else { false } }
        #expect(issued.count == 1)
    }

    @Test("client authentication failures are invalid_client with 401 and a Basic challenge; nothing is issued")
    func clientAuthentication() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let code = try await Self.code(browser)
            let wrong = try await Self.exchange(browser, code: code, secret: "wrong")
            #expect(wrong.status == .unauthorized)
            #expect(jsonObject(wrong)["error"] as? String == "invalid_client")
            #expect(wrong.headers[.wwwAuthenticate]?.hasPrefix("Basic") == true)
            // web-app is registered for client_secret_basic: the post method is refused.
            let post = try await browser.post(
                "/oauth/token",
                form: [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://client.test/callback"),
                       ("client_id", "web-app"), ("client_secret", "s3cret")])
            #expect(post.status == .unauthorized)
            // The code was never redeemed, so it still works.
            #expect(try await Self.exchange(browser, code: code).status == .ok)
        }
        let rejected = try harness.events().compactMap { if case .tokenRejected(let value) = $0.1 { value } else { nil } }
        #expect(rejected.map(\.error.code) == [.invalidClient, .invalidClient])
    }

    @Test("redirect_uri mismatch, expiry, unknown codes and unsupported grants are refused")
    func refusals() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let code = try await Self.code(browser)
            let mismatch = try await Self.exchange(browser, code: code, redirect: "https://client.test/other")
            #expect(jsonObject(mismatch)["error"] as? String == "invalid_grant")
            let otherClient = try await browser.post(
                "/oauth/token", form: [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://client.test/callback")],
                headers: basic("first-party", "s3cret"))
            #expect(jsonObject(otherClient)["error"] as? String == "invalid_grant")
            #expect(jsonObject(otherClient)["error_description"] as? String == "The authorization code was issued to another client.")
            let unknown = try await Self.exchange(browser, code: "not-a-code")
            #expect(jsonObject(unknown)["error"] as? String == "invalid_grant")
            let grant = try await browser.post("/oauth/token", form: [("grant_type", "password")], headers: basic("web-app", "s3cret"))
            #expect(jsonObject(grant)["error"] as? String == "unsupported_grant_type")
            harness.clock.advance(seconds: 61)
            let expired = try await Self.exchange(browser, code: code)
            #expect(jsonObject(expired)["error"] as? String == "invalid_grant")
            #expect(jsonObject(expired)["error_description"] as? String == "The authorization code has expired.")
        }
    }

    @Test("PKCE: the verifier must match the challenge; sending none, or one without a challenge, fails")
    func pkce() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let spa = spaPKCEParameters()
            func spaCode() async throws -> String {
                try #require(try await browser.authorize(spa).redirectParameters["code"])
            }
            func redeem(_ code: String, verifier: String?) async throws -> Page {
                var form: [(String, String)] = [
                    ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://spa.test/callback"), ("client_id", "spa"),
                ]
                if let verifier { form.append(("code_verifier", verifier)) }
                return try await browser.post("/oauth/token", form: form)
            }
            #expect(jsonObject(try await redeem(try await spaCode(), verifier: nil))["error"] as? String == "invalid_grant")
            #expect(jsonObject(try await redeem(try await spaCode(), verifier: tokenTestVerifier + "x"))["error"] as? String == "invalid_grant")
            #expect(try await redeem(try await spaCode(), verifier: tokenTestVerifier).status == .ok)
            // A verifier for a code issued without a challenge is a downgrade attempt.
            let webCode = try await Self.code(browser)
            let downgrade = try await Self.exchange(browser, code: webCode, extra: [("code_verifier", tokenTestVerifier)])
            #expect(jsonObject(downgrade)["error"] as? String == "invalid_grant")
        }
    }

    @Test("implicit: id_token token comes back in the fragment, with nonce and at_hash; the tokens verify")
    func implicitFlow() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let parameters: [(String, String)] = [
                ("response_type", "id_token token"), ("client_id", "implicit-app"), ("redirect_uri", "https://implicit.test/callback"),
                ("scope", "openid"), ("nonce", "n-imp"), ("state", "s-imp"),
            ]
            let page = try await browser.authorize(parameters)
            let location = try #require(page.location)
            #expect(location.hasPrefix("https://implicit.test/callback#"))
            let fragment = page.redirectParameters
            #expect(fragment["state"] == "s-imp")
            #expect(fragment["token_type"] == "Bearer")
            let accessToken = try #require(fragment["access_token"])
            let id = try await harness.server.tokenKeys.verify(try #require(fragment["id_token"]), as: IDTokenClaims.self)
            #expect(id.nonce == "n-imp")
            #expect(id.atHash == TokenMinter.atHash(accessToken, algorithm: .rs256))
            _ = try await harness.server.tokenKeys.verify(accessToken, as: AccessTokenClaims.self)

            let noNonce = try await browser.get(
                "/authorize?" + FormEncoding.encode(parameters.filter { $0.0 != "nonce" }))
            #expect(noNonce.redirectParameters["error"] == "invalid_request")
            let query = try await browser.get("/authorize?" + FormEncoding.encode(parameters + [("response_mode", "query")]))
            #expect(query.redirectParameters["error"] == "invalid_request")
            let idOnly = try await browser.get(
                "/authorize?" + FormEncoding.encode(parameters.map { $0.0 == "response_type" ? ($0.0, "id_token") : $0 }))
            #expect(idOnly.redirectParameters["access_token"] == nil)
            #expect(idOnly.redirectParameters["id_token"] != nil)
        }
        let issued = try harness.events().compactMap { if case .tokenIssued(let value) = $0.1 { value } else { nil } }
        #expect(issued.map(\.grantType) == ["implicit", "implicit"])
    }
}

final class StatusBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [HTTPResponse.Status] = []

    func append(_ status: HTTPResponse.Status) {
        lock.lock()
        stored.append(status)
        lock.unlock()
    }

    var values: [HTTPResponse.Status] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}
