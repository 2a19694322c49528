import Testing

@testable import LedgerCore

@Suite("Checkpoints and signed notes (C2SP)")
struct CheckpointTests {
    static let key = Ed25519SigningKey(seed: Array(repeating: 9, count: 32))!

    static func checkpoint(size: UInt64 = 5) -> Checkpoint {
        Checkpoint(
            origin: "authledger/00112233445566778899aabbccddeeff", treeSize: size,
            rootHash: MerkleHashing.emptyRoot, timestamp: LedgerTimestamp(microsecondsSinceEpoch: 1_795_000_000_000_000))
    }

    @Test("the body is origin, size, base64 root, then the time extension line")
    func bodyFormat() {
        #expect(Self.checkpoint().body == """
            authledger/00112233445566778899aabbccddeeff
            5
            47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
            time 2026-11-18T11:06:40.000000Z

            """)
    }

    @Test("a signed checkpoint round-trips through its text and verifies only with its key")
    func signAndParse() throws {
        let signed = Self.checkpoint().signed(with: Self.key)
        let text = signed.text
        #expect(text.contains("\n\n\u{2014} authledger/00112233445566778899aabbccddeeff "))
        let parsed = try SignedCheckpoint(text: text)
        #expect(parsed == signed)
        #expect(parsed.verify(with: [Self.key.publicKey]) == Self.key.publicKey)
        let other = Ed25519SigningKey(seed: Array(repeating: 10, count: 32))!
        #expect(parsed.verify(with: [other.publicKey]) == nil)
        let tampered = try SignedCheckpoint(text: text.replacingOccurrences(of: "\n5\n", with: "\n6\n"))
        #expect(tampered.verify(with: [Self.key.publicKey]) == nil)
    }

    @Test("malformed notes are rejected", arguments: [
        "", "no blank line\n", "a\n1\nroot\ntime x\n\n\u{2014} a AAAA\n",
        "authledger/x\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\ntime 2026-11-18T11:06:40Z\n\n- authledger/x AAAA\n",
    ])
    func malformed(_ text: String) {
        #expect(throws: CheckpointError.self) { try SignedCheckpoint(text: text) }
    }

    @Test("verifier keys use the signed-note format and hash")
    func verifierKeys() throws {
        let verifier = NoteVerifierKey(name: "authledger/abc", publicKey: Self.key.publicKey)
        let text = verifier.description
        #expect(text.hasPrefix("authledger/abc+"))
        let parsed = try NoteVerifierKey(parsing: text)
        #expect(parsed == verifier)
        let wrongHash = text.replacingOccurrences(of: "+\(Hex.encode(verifier.keyHash))+", with: "+00000000+")
        #expect(throws: CheckpointError.self) { try NoteVerifierKey(parsing: wrongHash) }
    }

    /// The example from the documentation of Go's golang.org/x/mod/sumdb/note package: a note and verifier
    /// key made by independent code, which ours must read and verify.
    @Test("interoperates with Go's signed-note package (its documented example)")
    func goNoteExample() throws {
        let verifier = try NoteVerifierKey(parsing: "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
        let note = try SignedNote(text: """
            If you think cryptography is the answer to your problem,
            then you don't know what your problem is.

            \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=

            """)
        #expect(note.verifier(among: [verifier]) == verifier)
        var altered = note
        altered.body = altered.body.replacingOccurrences(of: "answer", with: "question")
        #expect(altered.verifier(among: [verifier]) == nil)
    }

    @Test("a shortened checkpoint: 77 bytes that, with the origin, size and root left out, stand for the very note")
    func shortened() throws {
        let origin = "authledger/000102030405060708090a0b0c0d0e0f"
        let root = SHA256Digest.hash(Array("root".utf8))
        let signed = Checkpoint(origin: origin, treeSize: 21, rootHash: root, timestamp: LedgerTimestamp(microsecondsSinceEpoch: 1_795_000_000_123_456))
            .signed(with: Self.key)
        let stored = StoredCheckpoint.shortened(signed)
        #expect(stored.count == 77 && stored[0] == 0x01)
        #expect(Array(signed.text.utf8).count > 250, "the note's text it replaces")
        let expanded = try StoredCheckpoint.signed(expanding: stored, treeSize: 21, origin: origin, rootHash: root)
        #expect(expanded == signed && expanded.text == signed.text)
        #expect(expanded.verify(with: [Self.key.publicKey]) == Self.key.publicKey)
        // Another root or size: a note the signature does not hold for.
        let otherRoot = try StoredCheckpoint.signed(expanding: stored, treeSize: 21, origin: origin, rootHash: SHA256Digest.hash([1]))
        #expect(otherRoot.verify(with: [Self.key.publicKey]) == nil)
        #expect(try StoredCheckpoint.signed(expanding: stored, treeSize: 22, origin: origin, rootHash: root).verify(with: [Self.key.publicKey]) == nil)
        // A note's text is read as it is; a shortened one of another length is malformed.
        #expect(try StoredCheckpoint.signed(expanding: Array(signed.text.utf8), treeSize: 21, origin: "", rootHash: .zero) == signed)
        for bytes in [Array(stored.dropLast()), stored + [0], [0x01]] {
            #expect(throws: CheckpointError.self) { try StoredCheckpoint.signed(expanding: bytes, treeSize: 21, origin: origin, rootHash: root) }
        }
    }
}
