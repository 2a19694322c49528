import Foundation
import LedgerCore
import Testing

@Suite("Subject keys: personal values sealed per data subject (XChaCha20-Poly1305), keys wrapped under the data key")
struct SubjectKeyTests {
    let key = SubjectKey.generate()
    let plaintext = Array("alice@example.com".utf8)

    @Test("a sealed value opens only under its key, for its subject and context; it carries no plaintext")
    func sealAndOpen() throws {
        let sealed = key.seal(plaintext, subject: "u:auth0|alice", context: "config.user.set\nemail")
        #expect(try key.open(sealed, context: "config.user.set\nemail") == plaintext)
        #expect(sealed.ciphertext.count == plaintext.count + 16)
        #expect(Data(sealed.ciphertext).range(of: Data(plaintext)) == nil)
        #expect(key.seal(plaintext, subject: "u:auth0|alice", context: "x").nonce != key.seal(plaintext, subject: "u:auth0|alice", context: "x").nonce)

        #expect(throws: SealedValue.OpenError.forged) { try key.open(sealed, context: "auth.login.failed\nusername") }
        var moved = sealed
        moved.subject = "u:auth0|bob"
        #expect(throws: SealedValue.OpenError.forged) { try key.open(moved, context: "config.user.set\nemail") }
        var flipped = sealed
        flipped.ciphertext[3] ^= 1
        #expect(throws: SealedValue.OpenError.forged) { try key.open(flipped, context: "config.user.set\nemail") }
        // Under a later key of the same subject (the first one destroyed), the value is erased, not forged.
        #expect(throws: SealedValue.OpenError.otherKey) { try SubjectKey.generate().open(sealed, context: "config.user.set\nemail") }
    }

    @Test("the JSON form round-trips, and a malformed or unknown version is refused")
    func json() throws {
        let sealed = key.seal(plaintext, subject: "a:2026-12-02", context: "auth.authorize.requested\nclient_ip")
        let encoded = try PayloadCoding.encode(sealed)
        let text = String(decoding: encoded, as: UTF8.self)
        #expect(text.hasPrefix(#"{"ct":""#) && text.contains(#""sealed":1"#) && text.contains(#""key":"\#(Hex.encode(key.id))""#))
        #expect(try PayloadCoding.decode(SealedValue.self, from: encoded) == sealed)
        #expect(throws: (any Error).self) { try PayloadCoding.decode(SealedValue.self, from: Array(text.replacingOccurrences(of: #""sealed":1"#, with: #""sealed":2"#).utf8)) }
        #expect(throws: (any Error).self) { try PayloadCoding.decode(SealedValue.self, from: Array(text.replacingOccurrences(of: #""key":""#, with: #""key":"zz"#).utf8)) }
    }

    @Test("a subject's pseudonym of a value is stable under its key, differs under another key or domain, and reveals nothing")
    func pseudonyms() {
        let first = key.pseudonym("203.0.113.10", domain: "address")
        #expect(first == key.pseudonym("203.0.113.10", domain: "address"))
        #expect(first.hasPrefix(DataKey.pseudonymPrefix) && first.count == DataKey.pseudonymPrefix.count + 64)
        #expect(first != SubjectKey.generate().pseudonym("203.0.113.10", domain: "address"), "dies with the key")
        #expect(first != key.pseudonym("203.0.113.10", domain: "network"))
        #expect(first != key.pseudonym("203.0.113.11", domain: "address"))
        #expect(!first.contains("203.0.113"), "the value is not in it (a bare \"203\" turns up in random hex one time in 70)")
    }

    @Test("a wrapped key opens only with its data key and for its subject")
    func wrapping() {
        let dataKey = DataKey.generate()
        let wrapped = dataKey.wrap(key, subject: "u:auth0|alice")
        #expect(dataKey.unwrap(wrapped, subject: "u:auth0|alice") == key)
        #expect(dataKey.unwrap(wrapped, subject: "u:auth0|bob") == nil, "moved to another subject")
        #expect(DataKey.generate().unwrap(wrapped, subject: "u:auth0|alice") == nil, "another journal's data key")
        var flipped = wrapped
        flipped[30] ^= 1
        #expect(dataKey.unwrap(flipped, subject: "u:auth0|alice") == nil)
        #expect(Data(wrapped).range(of: Data(key.id)) == nil, "the key id is sealed too")
    }
}
