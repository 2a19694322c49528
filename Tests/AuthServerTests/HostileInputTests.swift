import AuthCore
import AuthTokens
import Foundation
import HTTPTypes
import JWTKit
import LedgerCore
import Testing

@testable import AuthServer

/// Findings of a security review, each pinned by a test.
@Suite("Hostile inputs and binding rules found in review")
struct HostileInputTests {
    @Test("a huge max_age is refused, not an arithmetic overflow")
    func hugeMaxAge() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await browser.authorize(webAppParameters())
            for value in ["9223372036855", "9223372036854775807", "315360001"] {
                let page = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters([("max_age", value)])))
                #expect(page.redirectParameters["error"] == "invalid_request")
            }
            #expect(try await browser.get("/healthz").status == .ok, "the server is still up")
        }
    }

    @Test("a DPoP proof with an absurd iat is refused, not an arithmetic overflow")
    func absurdDPoPTime() async throws {
        let harness = try await ServerHarness()
        let client = DPoPClient()
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            let proof = try await client.proof(iat: -9_223_372_036_000_000_000)
            let page = try await DPoPTests.exchange(browser, code: code, headers: client.headers(proof))
            #expect(jsonObject(page)["error"] as? String == "invalid_dpop_proof")
            #expect(try await browser.get("/healthz").status == .ok)
        }
    }

    @Test("an over-long username is refused before anything is recorded or hashed")
    func longUsername() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let start = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters()))
            let form = try await browser.get(try #require(start.location))
            let username = "a" + String(repeating: "\u{301}", count: 300)
            let page = try await browser.post(
                "/login", form: [("state", form.hidden("state") ?? ""), ("csrf", form.hidden("csrf") ?? ""), ("username", username), ("password", "x")])
            #expect(page.status == .badRequest)
        }
        #expect(try harness.events().allSatisfy { if case .loginFailed = $0.1 { false } else { true } })
    }

    @Test("an unknown username is recorded only as a hash (it may be a mistyped password)")
    func unknownUsernameHashed() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await LoginThrottleTests.attempt(browser, "my secret password", "x")
        }
        let failure = try #require(harness.events().compactMap { if case .loginFailed(let value) = $0.1 { value } else { nil } }.first)
        #expect(failure.username.hasPrefix("sha256:"))
        #expect(try harness.journalBytes().range(of: Data("my secret password".utf8)) == nil)
    }

    @Test("a DPoP-bound access token works at userinfo only with the DPoP scheme and a fresh proof by its key for it")
    func dpopBoundUserinfo() async throws {
        let harness = try await ServerHarness()
        let client = DPoPClient()
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            let tokens = jsonObject(try await DPoPTests.exchange(browser, code: code, headers: client.headers(try await client.proof())))
            let token = try #require(tokens["access_token"] as? String)
            var bearer = HTTPFields()
            bearer[.authorization] = "Bearer " + token
            let asBearer = try await browser.send("/userinfo", method: .get, headers: bearer)
            #expect(asBearer.status == .unauthorized)
            // RFC 9449 §7.1: the challenge for a DPoP-bound token is DPoP's, naming the proof algorithms.
            let challenge = try #require(asBearer.headers[.wwwAuthenticate])
            #expect(challenge.hasPrefix("DPoP ") && challenge.contains("algs=\"ES256 ") && challenge.contains("error=\"invalid_token\""), "\(challenge)")

            let ath = Base64URL.encode(SHA256Digest.hash(Array(token.utf8)).bytes)
            let keys = await JWTKeyCollection().add(ecdsa: client.key)
            var header = JWTHeader()
            header.typ = "dpop+jwt"
            header.alg = "ES256"
            header.jwk = client.jwk.mapValues { .string($0) }
            let proof = try await keys.sign(
                DPoPClaims(jti: UUID().uuidString, htm: "GET", htu: "https://auth.test/userinfo", iat: Int64(Date().timeIntervalSince1970), ath: ath),
                header: header)
            var dpop = HTTPFields()
            dpop[.authorization] = "DPoP " + token
            dpop[HTTPField.Name("DPoP")!] = proof
            let info = try await browser.send("/userinfo", method: .get, headers: dpop)
            #expect(info.status == .ok, "\(info.body)")
            #expect(jsonObject(info)["sub"] as? String == "auth0|alice")
            let replayed = try await browser.send("/userinfo", method: .get, headers: dpop)
            #expect(replayed.status == .unauthorized, "a DPoP proof works once at /userinfo too")
            #expect(jsonObject(replayed)["error"] as? String == "invalid_dpop_proof")

            var stranger = dpop
            stranger[HTTPField.Name("DPoP")!] = try await DPoPClient().proof(htu: "https://auth.test/userinfo", htm: "GET")
            #expect(try await browser.send("/userinfo", method: .get, headers: stranger).status == .unauthorized)
        }
    }

    @Test("implicit requests cannot spend invitations; id_token needs openid; a consent for no scopes is remembered")
    func reviewedRules() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let implicit: [(String, String)] = [
                ("response_type", "token"), ("client_id", "implicit-app"), ("redirect_uri", "https://implicit.test/callback"),
                ("organization", "org_acme"), ("invitation", "inv_123"), ("state", "s"),
            ]
            let invitation = try await browser.get("/authorize?" + FormEncoding.encode(implicit))
            #expect(invitation.redirectParameters["error"] == "invalid_request")
            let idToken: [(String, String)] = [
                ("response_type", "id_token"), ("client_id", "implicit-app"), ("redirect_uri", "https://implicit.test/callback"),
                ("scope", "profile"), ("nonce", "n"), ("state", "s"),
            ]
            #expect(try await browser.get("/authorize?" + FormEncoding.encode(idToken)).redirectParameters["error"] == "invalid_request")

            let empty: [(String, String)] = [
                ("response_type", "code"), ("client_id", "web-app"), ("redirect_uri", "https://client.test/callback"), ("state", "s"),
            ]
            #expect(try await browser.authorize(empty).redirectParameters["code"] != nil)
            let again = try await browser.get("/authorize?" + FormEncoding.encode(empty + [("prompt", "none")]))
            #expect(again.redirectParameters["code"] != nil, "the empty consent was remembered")
        }
    }
}
