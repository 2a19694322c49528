import AuthCore
import Foundation
import HTTPTypes
import Testing

/// A small deterministic generator (SplitMix64), so that a failing case can be reproduced from its seed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Random and hostile input: no crash, no 5xx but 503, no redirect to an unregistered URI, values escaped")
struct RandomInputTests {
    static let names = Array(AuthorizeParameters.known) + ["csrf", "state", "username", "password", "action", "code", "grant_type",
                                                         "client_secret", "code_verifier", "refresh_token", "token", "x"]
    static let pieces = [
        "", "web-app", "https://client.test/callback", "https://evil.test/", "code", "token id_token", "openid profile", "none",
        "<script>alert(1)</script>", "\"'><img src=x>", "%00", "%ff%fe", "%", "%zz", "+", "&&", "==", "\u{0}", "💥",
        String(repeating: "A", count: 3000), "-1", "99999999999999999999", "S256", "plain", "form_post", "org_acme", "inv_123",
    ]

    static func randomValue(_ rng: inout SplitMix) -> String {
        var value = ""
        for _ in 0..<Int.random(in: 1...3, using: &rng) { value += pieces.randomElement(using: &rng)! }
        return value
    }

    /// `value` with only what cannot travel in a request line percent-encoded: `%`, `&`, `=`, `+` and other
    /// printable ASCII stay raw, so malformed escapes and stray separators reach the server.
    static func rawish(_ value: String) -> String {
        let raw = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%".utf8)
        return value.utf8.map { byte in raw.contains(byte) ? String(UnicodeScalar(byte)) : String(format: "%%%02X", byte) }.joined()
    }

    /// A query or form body: known and unknown names, repeats, raw (not always well-encoded) values.
    static func randomForm(_ rng: inout SplitMix) -> String {
        (0..<Int.random(in: 0...12, using: &rng)).map { _ in
            let name = names.randomElement(using: &rng)!
            let value = randomValue(&rng)
            return Bool.random(using: &rng) ? "\(name)=\(FormEncoding.encode(value))" : "\(name)=\(rawish(value))"
        }.joined(separator: "&")
    }

    @Test("400 random requests to /authorize, /login, /consent, /organization, /oauth/token, /oauth/revoke, /userinfo")
    func randomRequests() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await browser.authorize(webAppParameters())  // a session, so deeper rules are reached too
            var rng = SplitMix(state: 20_261_127)
            for index in 0..<400 {
                let form = Self.randomForm(&rng)
                let page: Page
                switch index % 7 {
                case 0, 1: page = try await browser.get("/authorize?" + form)
                case 2: page = try await browser.post("/login", form: FormEncoding.parse(form).map { ($0.name, $0.value) })
                case 3: page = try await browser.post("/consent", form: FormEncoding.parse(form).map { ($0.name, $0.value) })
                case 4: page = try await browser.post("/organization", form: FormEncoding.parse(form).map { ($0.name, $0.value) })
                case 5: page = try await browser.post("/oauth/token", form: FormEncoding.parse(form).map { ($0.name, $0.value) })
                default:
                    var headers = HTTPFields()
                    headers[.authorization] = "Bearer " + Self.rawish(Self.randomValue(&rng)).prefix(500)
                    page = try await browser.send("/userinfo", method: .get, headers: headers)
                }
                #expect(page.status.code < 500 || page.status == .serviceUnavailable, "request \(index): \(page.status) for \(form.prefix(200))")
                if let location = page.location, !location.hasPrefix("/") {
                    let registered = ["https://client.test/callback", "https://first.test/callback", "https://spa.test/callback",
                                      "https://org.test/callback", "https://implicit.test/callback"]
                    #expect(registered.contains { location.hasPrefix($0 + "?") || location.hasPrefix($0 + "#") },
                            "request \(index) redirected to \(location.prefix(120))")
                }
                #expect(!page.body.contains("<script>alert(1)</script>"), "request \(index) reflected markup unescaped")
                #expect(!page.body.contains("'><img src=x>"), "request \(index) reflected markup unescaped")
            }
            #expect(try await browser.get("/healthz").status == .ok)
        }
    }
}
