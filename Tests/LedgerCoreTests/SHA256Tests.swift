import Testing

@testable import LedgerCore

@Suite("SHA-256: the hash of the chain and the Merkle tree")
struct SHA256Tests {
    @Test("FIPS 180-2 known answers, one block, two blocks and a million bytes", arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (String(repeating: "a", count: 1_000_000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    ])
    func knownAnswers(input: String, expected: String) {
        #expect(SHA256Digest.hash(Array(input.utf8)).hex == expected)
    }

    @Test("hashing in parts or behind a prefix byte is hashing the concatenation")
    func partsAreTheConcatenation() {
        let first = (0..<97).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let second = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let whole = SHA256Digest.hash([0x01] + first + second)
        #expect(SHA256Digest.hash(prefix: 0x01, first, second) == whole)
        #expect(SHA256Digest.hash(parts: [[0x01], first, [], second]) == whole)
        #expect(SHA256Digest.hash(([0x01] + first + second)[...]) == whole)
        #expect(SHA256Digest.hash(prefix: 0x01, first) != whole)
    }
}
