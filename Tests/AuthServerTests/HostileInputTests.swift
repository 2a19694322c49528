import AuthCore
import AuthTokens
import Foundation
import HTTPTypes
import JWTKit
import LedgerCore
import LedgerJournal
import LedgerLMDB
import Testing

@testable import AuthServer

/// Findings of a security review, each pinned by a test.
@Suite("Hostile inputs and binding rules found in review")
struct HostileInputTests {
    /// The size of each event's record, by sequence.
    static func recordSizes(_ harness: ServerHarness) throws -> [UInt64: Int] {
        let reader = try JournalReader(directory: harness.directory + "/journal")
        defer { reader.close() }
        var sizes: [UInt64: Int] = [:]
        try reader.read { snapshot in
            try snapshot.forEachRecord { sequence, record in
                sizes[sequence] = record.count
                return true
            }
        }
        return sizes
    }

    @Test("an oversized header is refused with 431 before anything is recorded; a stored User-Agent is bounded")
    func oversizedHeaders() async throws {
        let harness = try await ServerHarness()
        let before = try Self.recordSizes(harness).count
        try await harness.run { browser in
            var huge = HTTPFields()
            huge[.userAgent] = String(repeating: "A", count: 70 * 1024)
            for uri in ["/authorize?" + FormEncoding.encode(webAppParameters()), "/login", "/oauth/token", "/userinfo", "/nowhere"] {
                let page = try await browser.send(uri, method: uri == "/oauth/token" ? .post : .get, headers: huge)
                #expect(page.status.code == 431, "\(uri)")
                #expect(page.headers[.cacheControl] == "no-store", "the security headers too")
            }
            // Many fields, each small, past the total.
            var many = HTTPFields()
            for index in 0..<40 { many[HTTPField.Name("X-Filler-\(index)")!] = String(repeating: "f", count: 500) }
            #expect(try await browser.send("/authorize?" + FormEncoding.encode(webAppParameters()), method: .get, headers: many).status.code == 431)
        }
        #expect(try Self.recordSizes(harness).count == before, "nothing recorded")

        let bounded = try await ServerHarness()
        try await bounded.run { browser in
            var long = HTTPFields()
            long[.userAgent] = String(repeating: "é", count: 3000)  // 6,000 bytes: under the field limit
            _ = try await browser.send("/authorize?" + FormEncoding.encode(webAppParameters()), method: .get, headers: long)
        }
        let requested = try bounded.events().compactMap { if case .authorizeRequested(let value) = $0.1 { value } else { nil } }
        let agent = try #require(requested.first?.userAgent)
        #expect(agent.utf8.count <= RecordedText.userAgentBytes)
        #expect(agent.hasPrefix("éé") && agent.unicodeScalars.allSatisfy { $0 == "é" }, "cut between characters")
    }

    @Test("the most an unauthenticated /authorize request can add to the journal is bounded")
    func boundedEventSize() async throws {
        let harness = try await ServerHarness()
        let before = try Self.recordSizes(harness)
        try await harness.run { browser in
            // The largest query accepted, in one parameter that every event of the request keeps (state), plus
            // the largest header field accepted as the User-Agent; the request opens a login page (three events).
            var parameters = webAppParameters(state: "")
            let room = AuthorizationServer.maximumQueryLength - FormEncoding.encode(parameters).utf8.count - 1
            parameters = webAppParameters(state: String(repeating: "s", count: room))
            var headers = HTTPFields()
            headers[.userAgent] = String(repeating: "U", count: 8 * 1024 - 16)
            let page = try await browser.send("/authorize?" + FormEncoding.encode(parameters), method: .get, headers: headers)
            #expect(page.status == .found)
            #expect(page.location?.hasPrefix("/login") == true)
        }
        let added = try Self.recordSizes(harness).filter { before[$0.key] == nil }.map(\.value)
        #expect(added.count == 3)
        #expect(added.allSatisfy { $0 <= 12 * 1024 }, "each event: \(added)")
        #expect(added.reduce(0, +) <= 32 * 1024, "the request: \(added.reduce(0, +)) bytes")
    }

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

    @Test("an unknown username (often a password in the wrong field) is recorded only as a pseudonym keyed by the data key, never an unsalted hash")
    func unknownUsernameKeyed() async throws {
        let harness = try await ServerHarness()
        let typed = ["My Secret Password", "my secret password", "correct horse battery staple!"]
        try await harness.run { browser in
            for name in typed { _ = try await LoginThrottleTests.attempt(browser, name, "x") }
        }
        let failures = try harness.events().compactMap { if case .loginFailed(let value) = $0.1 { value } else { nil } }
        #expect(failures.count == 3)
        #expect(failures.allSatisfy { $0.username.hasPrefix(DataKey.pseudonymPrefix) })
        #expect(failures[0].username == failures[1].username, "one name in any case: one pseudonym, one throttle budget")
        #expect(failures[0].username != failures[2].username)
        // What a word list would try: the unsalted SHA-256 of the typed text (as earlier releases recorded), anywhere.
        let bytes = try harness.journalBytes()
        for name in typed {
            #expect(bytes.range(of: Data(name.utf8)) == nil)
            #expect(bytes.range(of: Data(SHA256Digest.hash(Array(name.lowercased().utf8)).hex.utf8)) == nil)
            #expect(bytes.range(of: Data(SHA256Digest.hash(Array(name.utf8)).hex.utf8)) == nil)
        }
        // Another data key gives other pseudonyms: without the key, a guess cannot be checked.
        let key = try JournalDataKeyFile(journal: harness.directory + "/journal").load()
        #expect(key.pseudonym("my secret password", domain: "login-name") == failures[1].username)
        #expect(DataKey.generate().pseudonym("my secret password", domain: "login-name") != failures[1].username)
        let mode = try FileManager.default.attributesOfItem(atPath: harness.directory + "/journal.datakey")[.posixPermissions] as? Int
        #expect(mode == 0o600)
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
                DPoPClaims(jti: UUID().uuidString, htm: "GET", htu: "https://auth.test/userinfo", iat: TestTime.seconds(), ath: ath),
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
