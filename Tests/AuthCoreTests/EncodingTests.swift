import LedgerCore
import Testing

@testable import AuthCore

@Suite("Form encoding, /authorize parameters, redirect URIs, base64url, opaque tokens, Argon2id")
struct EncodingTests {
    static let unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    static let urlSafeAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

    /// Pairs as arrays, which are Equatable (tuples are not).
    static func flat(_ pairs: [(name: String, value: String)]) -> [[String]] {
        pairs.map { [$0.name, $0.value] }
    }

    // MARK: - FormEncoding.parse

    @Test("parse keeps the order and the repeats, splits on the first =, skips empty pairs")
    func parseOrderAndRepeats() {
        let pairs = FormEncoding.parse("b=2&a=1&b=3&&flag&c=x=y&=v")
        #expect(Self.flat(pairs) == [["b", "2"], ["a", "1"], ["b", "3"], ["flag", ""], ["c", "x=y"], ["", "v"]])
    }

    @Test("parse reads + as a space and %2B as a plus, in names and values")
    func parsePlus() {
        #expect(Self.flat(FormEncoding.parse("q=a+b&first+name=x%2By")) == [["q", "a b"], ["first name", "x+y"]])
    }

    @Test("parse percent-decodes, either hex case, into UTF-8")
    func parsePercent() {
        #expect(Self.flat(FormEncoding.parse("a=%41%62c&e=%e2%82%AC&u=%C3%A9t%C3%A9")) == [["a", "Abc"], ["e", "€"], ["u", "été"]])
        #expect(Self.flat(FormEncoding.parse("redirect_uri=https%3A%2F%2Fclient.test%2Fcb%3Fx%3D1%26y%3D2")) == [["redirect_uri", "https://client.test/cb?x=1&y=2"]])
        #expect(Self.flat(FormEncoding.parse("raw=été")) == [["raw", "été"]])
    }

    @Test(
        "parse keeps malformed escapes literally",
        arguments: [("%zz", "%zz"), ("100%", "100%"), ("%4", "%4"), ("%%41", "%A"), ("%g1", "%g1"), ("a%2", "a%2"), ("%", "%")])
    func parseMalformed(raw: String, decoded: String) {
        #expect(Self.flat(FormEncoding.parse("v=" + raw)) == [["v", decoded]])
        #expect(FormEncoding.decode(raw[...]) == decoded)
    }

    @Test(
        "parse replaces invalid UTF-8 with U+FFFD",
        arguments: [("%FF", "\u{FFFD}"), ("a%C3", "a\u{FFFD}"), ("%C3%28", "\u{FFFD}("), ("%80x", "\u{FFFD}x")])
    func parseInvalidUTF8(raw: String, decoded: String) {
        #expect(FormEncoding.decode(raw[...]) == decoded)
    }

    @Test("parse of an empty string is empty")
    func parseEmpty() {
        #expect(FormEncoding.parse("").isEmpty)
        #expect(FormEncoding.parse("&&&").isEmpty)
    }

    // MARK: - FormEncoding.encode

    @Test("encode keeps only RFC 3986 unreserved characters and escapes the rest in upper-case hex")
    func encodeExact() {
        #expect(FormEncoding.encode("AZaz09-._~") == "AZaz09-._~")
        #expect(FormEncoding.encode("a b") == "a%20b")
        #expect(FormEncoding.encode("&=+#%") == "%26%3D%2B%23%25")
        #expect(FormEncoding.encode("/?:@") == "%2F%3F%3A%40")
        #expect(FormEncoding.encode("é") == "%C3%A9")
        #expect(FormEncoding.encode("\u{1F}") == "%1F")
        #expect(FormEncoding.encode([("a", "1"), ("b c", "d&e")]) == "a=1&b%20c=d%26e")
    }

    @Test(
        "encode then decode returns the original string",
        arguments: [
            "", "a", "a b", "&=+#%", "100% sure?", "a+b=c&d", "é", "日本語", "emoji 🎉", "\n\t\r", "~-._", "%zz", "+", "%2B",
            "https://client.test/cb?x=1#frag", "\u{0}", "\u{7F}\u{80}\u{FFFD}",
        ])
    func encodeRoundTrip(text: String) {
        let encoded = FormEncoding.encode(text)
        #expect(FormEncoding.decode(encoded[...]) == text)
        // Only unreserved characters and %XX escapes remain.
        #expect(encoded.allSatisfy { (Self.unreserved + "%").contains($0) })
    }

    @Test("encoded pairs parse back to the same pairs, order and repeats kept")
    func pairsRoundTrip() {
        let pairs = [("scope", "openid profile"), ("state", "a&b=c"), ("scope", "email"), ("nonce", ""), ("é", "ü+%")]
        let parsed = FormEncoding.parse(FormEncoding.encode(pairs))
        #expect(Self.flat(parsed) == pairs.map { [$0.0, $0.1] })
    }

    // MARK: - AuthorizeParameters

    @Test("AuthorizeParameters(query:) keeps the first value of each known parameter and records repeats, sorted")
    func authorizeParameters() {
        let parameters = AuthorizeParameters(query: "state=b&response_type=code&client_id=web-app&scope=openid&scope=profile&state=a&state=c")
        #expect(parameters.values == ["response_type": "code", "client_id": "web-app", "scope": "openid", "state": "b"])
        #expect(parameters.repeated == ["scope", "state"])
    }

    @Test("AuthorizeParameters(query:) ignores unknown parameters, even repeated ones")
    func unknownParametersIgnored() {
        let parameters = AuthorizeParameters(query: "client_id=web-app&foo=1&foo=2&bar&utm_source=x")
        #expect(parameters.values == ["client_id": "web-app"])
        #expect(parameters.repeated == [])
        #expect(parameters["foo"] == nil)
    }

    @Test("an empty value is recorded, counts for repeats, and reads as absent through the subscript")
    func emptyValues() {
        let parameters = AuthorizeParameters(query: "state=&state=x&nonce=")
        #expect(parameters.values == ["state": "", "nonce": ""])
        #expect(parameters.repeated == ["state"])
        #expect(parameters["state"] == nil)
        #expect(parameters["nonce"] == nil)
    }

    @Test("login_hint is kept apart from the other values; both layouts decode; it encodes sealed as an object")
    func loginHintLayouts() throws {
        let before = try PayloadCoding.decode(
            AuthorizeParameters.self, from: Array(#"{"repeated":[],"values":{"client_id":"c","login_hint":"a@example.com"}}"#.utf8))
        #expect(before.values == ["client_id": "c"] && before.loginHint == .clear("a@example.com"))
        let now = try PayloadCoding.decode(AuthorizeParameters.self, from: try PayloadCoding.encode(before))
        #expect(now == before)
        #expect(String(decoding: try PayloadCoding.encode(before), as: UTF8.self).contains(#""login_hint":"a@example.com""#))
        #expect(now.query == "client_id=c&login_hint=a%40example.com")
        let marker = try PayloadCoding.decode(AuthorizeParameters.self, from: Array(#"{"repeated":[],"values":{},"login_hint":"[erased]"}"#.utf8))
        #expect(marker.loginHint == .erased && marker["login_hint"] == nil, "a marker is never taken for a value")
    }

    @Test("AuthorizeParameters decodes its values and every known name is recognised")
    func decodedValues() {
        let query = AuthorizeParameters.known.sorted().map { "\($0)=v+\($0)" }.joined(separator: "&")
        let parameters = AuthorizeParameters(query: query)
        #expect(parameters.values.count == AuthorizeParameters.known.count - 1, "login_hint is kept apart")
        #expect(parameters.loginHint == .clear("v login_hint"))
        // A request object and the values of a claims request are not kept (they may hold personal data).
        for name in AuthorizeParameters.known.subtracting(["request", "claims"]) { #expect(parameters[name] == "v \(name)") }
        #expect(parameters["request"] == AuthorizeParameters.withheldRequestObject)
        #expect(parameters["claims"] == RequestedClaims.malformed)
        #expect(AuthorizeParameters(query: "redirect_uri=https%3A%2F%2Fclient.test%2Fcb")["redirect_uri"] == "https://client.test/cb")
    }

    @Test("the query property is sorted and parses back to the same parameters")
    func queryRoundTrip() {
        let parameters = AuthorizeParameters(values: ["state": "a b&c", "client_id": "web-app", "redirect_uri": "https://client.test/cb"])
        #expect(parameters.query == "client_id=web-app&redirect_uri=https%3A%2F%2Fclient.test%2Fcb&state=a%20b%26c")
        #expect(AuthorizeParameters(query: parameters.query) == parameters)
    }

    // MARK: - RedirectURI

    @Test(
        "isRegistrable accepts absolute URIs without a fragment",
        arguments: [
            "https://client.test/callback", "http://127.0.0.1:9000/callback", "com.example.app:/oauth2redirect",
            "https://client.test/cb?tenant=1", "myapp+x-1.2://cb",
        ])
    func registrable(uri: String) {
        #expect(RedirectURI.isRegistrable(uri))
    }

    @Test(
        "isRegistrable refuses relative URIs, fragments, bad schemes and whitespace",
        arguments: [
            "", "/callback", "callback", "//client.test/cb", "https://client.test/cb#frag", "https://client.test/cb#", ":/x",
            "1https://client.test/cb", "ht tp://client.test/cb", "https://client.test/call back", "https://client.test/cb\n",
        ])
    func notRegistrable(uri: String) {
        #expect(!RedirectURI.isRegistrable(uri))
    }

    @Test(
        "matches is exact string comparison: no normalisation of case, slash, port, query or encoding",
        arguments: [
            "https://client.test/callback/", "https://CLIENT.test/callback", "https://client.test:443/callback",
            "https://client.test/callback?x=1", "https://client.test/%63allback", "https://client.test/Callback",
            "http://client.test/callback", "https://client.test/callback#", " https://client.test/callback", "",
        ])
    func matchesExactly(requested: String) {
        let registered = ["https://client.test/callback", "https://client.test/other"]
        #expect(RedirectURI.matches("https://client.test/callback", registered))
        #expect(RedirectURI.matches("https://client.test/other", registered))
        #expect(!RedirectURI.matches(requested, registered))
        #expect(!RedirectURI.matches("https://client.test/callback", []))
    }

    @Test("matches compares bytes, not Unicode canonical equivalence (which Swift's == applies)")
    func matchesBytesNotCanonicalEquivalence() {
        // GREEK QUESTION MARK, KELVIN SIGN, GREEK VARIA decompose to ; K ` — equal to ==, not in a URL.
        let registered = ["https://client.example/cb;K`x", "https://client.example/caf\u{E9}"]
        #expect("https://client.example/cb\u{37E}\u{212A}\u{1FEF}x" == registered[0], "Swift's == would let it through")
        #expect(!RedirectURI.matches("https://client.example/cb\u{37E}\u{212A}\u{1FEF}x", registered))
        #expect(!RedirectURI.matches("https://client.example/cafe\u{301}", registered), "decomposed é")
        #expect(RedirectURI.matches("https://client.example/caf\u{E9}", registered))
    }

    @Test("appending adds a query, extends an existing query, or sets the fragment")
    func appending() {
        let parameters = [("code", "abc"), ("state", "s t&u")]
        #expect(
            RedirectURI.appending(parameters, to: "https://client.test/cb", inFragment: false)
                == "https://client.test/cb?code=abc&state=s%20t%26u")
        #expect(
            RedirectURI.appending(parameters, to: "https://client.test/cb?tenant=1", inFragment: false)
                == "https://client.test/cb?tenant=1&code=abc&state=s%20t%26u")
        #expect(
            RedirectURI.appending(parameters, to: "https://client.test/cb", inFragment: true)
                == "https://client.test/cb#code=abc&state=s%20t%26u")
        #expect(
            RedirectURI.appending(parameters, to: "https://client.test/cb?tenant=1", inFragment: true)
                == "https://client.test/cb?tenant=1#code=abc&state=s%20t%26u")
    }

    // MARK: - Base64URL

    @Test("Base64URL uses - and _ and no padding")
    func base64URLAlphabet() {
        #expect(Base64URL.encode([0xFB, 0xFF, 0xBF]) == "-_-_")
        #expect(Base64URL.encode([0xFF]) == "_w")
        #expect(Base64URL.encode([0xFF, 0xFF]) == "__8")
        #expect(Base64URL.decode("-_-_") == [0xFB, 0xFF, 0xBF])
        #expect(Base64URL.decode("_w") == [0xFF])
        #expect(Base64URL.decode("__8") == [0xFF, 0xFF])
        #expect(Base64URL.encode([]) == "")
        #expect(Base64URL.decode("") == [])
    }

    @Test("Base64URL round-trips every length", arguments: Array(1...66))
    func base64URLRoundTrip(length: Int) {
        let bytes = SecureRandom.bytes(length)
        let text = Base64URL.encode(bytes)
        #expect(!text.contains("+") && !text.contains("/") && !text.contains("="))
        #expect(text.utf8.count == (length * 4 + 2) / 3)
        #expect(Base64URL.decode(text) == bytes)
    }

    @Test(
        "Base64URL.decode refuses the standard alphabet, padding, and text that is not base64url",
        arguments: ["+/+/", "-_-+", "_w==", "_w=", "AA/A", "A", "a$b", "ab cd", "_x"])
    func base64URLRejects(text: String) {
        #expect(Base64URL.decode(text) == nil)
    }

    @Test("the RFC 7636 S256 example: base64url of the SHA-256 of the verifier")
    func pkceVector() {
        let digest = SHA256Digest.hash(Array("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".utf8))
        #expect(Base64URL.encode(digest.bytes) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    }

    // MARK: - OpaqueToken

    @Test("generate() is 43 base64url characters of 256 random bits, different every time")
    func opaqueTokens() throws {
        let tokens = (0..<200).map { _ in OpaqueToken.generate() }
        #expect(Set(tokens).count == tokens.count)
        for token in tokens {
            #expect(token.utf8.count == 43)
            #expect(token.allSatisfy { Self.urlSafeAlphabet.contains($0) })
            #expect(Base64URL.decode(token)?.count == 32)
        }
    }

    @Test("hash is the lower-case hex SHA-256 of the token's text")
    func opaqueTokenHash() {
        #expect(OpaqueToken.hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let token = OpaqueToken.generate()
        let hash = OpaqueToken.hash(token)
        #expect(hash.utf8.count == 64)
        #expect(hash.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(OpaqueToken.hash(token) == hash, "deterministic")
        #expect(OpaqueToken.hash(token + "x") != hash)
        #expect(!hash.contains(token))
    }

    // MARK: - Argon2id

    @Test("an Argon2id hash verifies the right secret only and never contains it", arguments: ["s3cret", "correct horse battery staple", "pässwörd 🔑", ""])
    func argon2id(secret: String) {
        let hasher = Argon2idHasher.minimal
        let hash = hasher.hash(secret)
        #expect(hash.hasPrefix("$argon2id$v=19$m=8,t=1,p=1$"), "libsodium's minimum limits, in the string itself")
        #expect(hasher.verify(secret, against: hash))
        #expect(!hasher.verify(secret + "x", against: hash))
        #expect(!hasher.verify("x" + secret, against: hash))
        if !secret.isEmpty {
            #expect(!hash.contains(secret))
            #expect(!hasher.verify(String(secret.dropLast()), against: hash))
            #expect(!hasher.verify(secret.uppercased() == secret ? secret.lowercased() : secret.uppercased(), against: hash))
        }
    }

    @Test("two hashes of the same secret differ (random salt) and both verify")
    func argon2idSalted() {
        let hasher = Argon2idHasher.minimal
        let first = hasher.hash("s3cret")
        let second = hasher.hash("s3cret")
        #expect(first != second)
        #expect(hasher.verify("s3cret", against: first))
        #expect(hasher.verify("s3cret", against: second))
    }

    @Test("verify reads the limits from the hash: a hash made with other limits verifies with any hasher")
    func argon2idLimitsInHash() {
        let other = Argon2idHasher(opsLimit: 2, memLimit: 16 * 1024)
        let hash = other.hash("s3cret")
        #expect(hash.hasPrefix("$argon2id$v=19$m=16,t=2,p=1$"))
        #expect(Argon2idHasher.minimal.verify("s3cret", against: hash))
    }

    @Test("verify refuses anything that is not an Argon2id hash", arguments: ["", "s3cret", "$argon2i$v=19$m=8,t=3,p=1$c2FsdHNhbHQ$aGFzaA", "$2b$12$abcdefghijklmnopqrstuv"])
    func argon2idRefusesOthers(hash: String) {
        #expect(!Argon2idHasher.minimal.verify("s3cret", against: hash))
        #expect(!Argon2idHasher.minimal.verify(hash, against: hash))
    }

    // MARK: - constantTimeEquals

    @Test("constantTimeEquals is byte equality, with lengths compared first")
    func constantTime() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(constantTimeEquals([], []))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([0, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(!constantTimeEquals([1, 2], [1, 2, 3]))
        #expect(!constantTimeEquals([0], []))
        let secret = SecureRandom.bytes(32)
        #expect(constantTimeEquals(secret, secret))
        var flipped = secret
        flipped[31] ^= 0x01
        #expect(!constantTimeEquals(secret, flipped))
    }
}
