import AuthCore
import AuthTokens
import Foundation
import HTTPTypes
import JWTKit
import LedgerCore
import Testing

@testable import AuthServer

/// A client's DPoP key, making proofs with jwt-kit (an independent JOSE implementation).
struct DPoPClient: Sendable {
    let key = ES256PrivateKey()

    var jwk: [String: String] {
        let parameters = key.publicKey.parameters!
        return ["kty": "EC", "crv": "P-256", "x": parameters.x, "y": parameters.y]
    }

    /// RFC 7638 thumbprint, computed here independently of the server's code.
    var thumbprint: String {
        let json = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(jwk["x"]!)\",\"y\":\"\(jwk["y"]!)\"}"
        return Base64URL.encode(SHA256Digest.hash(Array(json.utf8)).bytes)
    }

    func proof(
        htu: String = "https://auth.test/oauth/token", htm: String = "POST", iat: Int64 = TestTime.seconds(),
        jti: String = UUID().uuidString, type: String = "dpop+jwt", jwkOverride: [String: String]? = nil
    ) async throws -> String {
        let keys = await JWTKeyCollection().add(ecdsa: key)
        var header = JWTHeader()
        header.typ = type
        header.alg = "ES256"
        header.jwk = (jwkOverride ?? jwk).mapValues { .string($0) }
        return try await keys.sign(DPoPClaims(jti: jti, htm: htm, htu: htu, iat: iat), header: header)
    }

    func headers(_ proof: String, client: (String, String) = ("web-app", "s3cret")) -> HTTPFields {
        var headers = basic(client.0, client.1)
        headers[HTTPField.Name("DPoP")!] = proof
        return headers
    }
}

@Suite("DPoP (RFC 9449) at the token endpoint")
struct DPoPTests {
    static func exchange(_ browser: Browser, code: String, headers: HTTPFields) async throws -> Page {
        try await browser.post(
            "/oauth/token",
            form: [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://client.test/callback")],
            headers: headers)
    }

    @Test("a valid proof binds the tokens: token_type DPoP and cnf.jkt = the key's thumbprint")
    func binding() async throws {
        let harness = try await ServerHarness()
        let client = DPoPClient()
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            let page = try await Self.exchange(browser, code: code, headers: client.headers(try await client.proof()))
            #expect(page.status == .ok, "\(page.body)")
            let body = jsonObject(page)
            #expect(body["token_type"] as? String == "DPoP")
            let access = try await harness.server.tokenKeys.verify(try #require(body["access_token"] as? String), as: AccessTokenClaims.self)
            #expect(access.cnf?.jkt == client.thumbprint)
        }
        let issued = try harness.events().compactMap { if case .tokenIssued(let value) = $0.1 { value } else { nil } }
        #expect(issued.first?.dpopJKT == client.thumbprint)
    }

    @Test("a code bound with dpop_jkt needs a proof by that key: none or another key is invalid_grant")
    func boundCode() async throws {
        let harness = try await ServerHarness()
        let client = DPoPClient()
        let stranger = DPoPClient()
        try await harness.run { browser in
            let page = try await browser.authorize(webAppParameters([("dpop_jkt", client.thumbprint)]))
            let code = try #require(page.redirectParameters["code"])
            let withoutProof = try await Self.exchange(browser, code: code, headers: basic("web-app", "s3cret"))
            #expect(jsonObject(withoutProof)["error"] as? String == "invalid_grant")
            let otherKey = try await Self.exchange(browser, code: code, headers: stranger.headers(try await stranger.proof()))
            #expect(jsonObject(otherKey)["error"] as? String == "invalid_grant")
            let right = try await Self.exchange(browser, code: code, headers: client.headers(try await client.proof()))
            #expect(right.status == .ok)
            #expect(jsonObject(right)["token_type"] as? String == "DPoP")
        }
    }

    @Test("malformed proofs are invalid_dpop_proof", arguments: ["wrong htu", "wrong htm", "old iat", "wrong typ", "private jwk", "not a jwt", "foreign jwk"])
    func malformed(_ variant: String) async throws {
        let harness = try await ServerHarness()
        let client = DPoPClient()
        let other = DPoPClient()
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            let proof: String
            switch variant {
            case "wrong htu": proof = try await client.proof(htu: "https://auth.test/other")
            case "wrong htm": proof = try await client.proof(htm: "GET")
            case "old iat": proof = try await client.proof(iat: TestTime.seconds() - 3600)
            case "wrong typ": proof = try await client.proof(type: "JWT")
            case "private jwk": proof = try await client.proof(jwkOverride: client.jwk.merging(["d": "AAAA"]) { $1 })
            case "foreign jwk": proof = try await client.proof(jwkOverride: other.jwk)
            default: proof = "not.a.jwt"
            }
            let page = try await Self.exchange(browser, code: code, headers: client.headers(proof))
            #expect(page.status == .badRequest)
            #expect(jsonObject(page)["error"] as? String == "invalid_dpop_proof")
            // The code was not consumed by a refused proof.
            #expect(try await TokenEndpointTests.exchange(browser, code: code).status == .ok)
        }
    }

    @Test("a proof is good for one request: its jti cannot be used again")
    func proofReplay() async throws {
        let harness = try await ServerHarness()
        let client = DPoPClient()
        try await harness.run { browser in
            let proof = try await client.proof(jti: "once")
            let first = try await Self.exchange(browser, code: try await TokenEndpointTests.code(browser), headers: client.headers(proof))
            #expect(first.status == .ok)
            let second = try await Self.exchange(browser, code: try await TokenEndpointTests.code(browser), headers: client.headers(proof))
            #expect(jsonObject(second)["error"] as? String == "invalid_dpop_proof")
        }
    }

    @Test("a refresh family bound to a DPoP key refreshes only with a proof by that key")
    func boundRefresh() async throws {
        let harness = try await ServerHarness()
        let client = DPoPClient()
        try await harness.run { browser in
            let page = try await browser.authorize(
                webAppParameters([("audience", "https://api.example.com")], scope: "openid offline_access"))
            let code = try #require(page.redirectParameters["code"])
            let tokens = jsonObject(try await Self.exchange(browser, code: code, headers: client.headers(try await client.proof())))
            let refresh = try #require(tokens["refresh_token"] as? String)
            let unbound = try await browser.post(
                "/oauth/token", form: [("grant_type", "refresh_token"), ("refresh_token", refresh)], headers: basic("web-app", "s3cret"))
            #expect(jsonObject(unbound)["error"] as? String == "invalid_grant")
            let bound = try await browser.post(
                "/oauth/token", form: [("grant_type", "refresh_token"), ("refresh_token", refresh)],
                headers: client.headers(try await client.proof()))
            #expect(bound.status == .ok)
            #expect(jsonObject(bound)["token_type"] as? String == "DPoP")
        }
    }
}
