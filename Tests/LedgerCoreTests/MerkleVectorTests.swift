// Known-answer tests for the RFC 9162 / RFC 6962 Merkle tree, using the public test cases
// of github.com/transparency-dev/merkle (Apache-2.0). Only the cases are reused (inputs,
// expected hashes and proofs, and which probes must be rejected); the code is our own.
//
//   testonly/constants.go       8 reference leaves, every complete-subtree hash, roots of sizes 0...8
//   testonly/reference_test.go  known inclusion and consistency proofs of the reference tree
//   proof/proof_test.go         proof shapes (node IDs) for trees of up to 8 leaves
//   proof/verify_test.go        verifier tables and the probe generator behind
//   testdata/inclusion/N/*.json, testdata/consistency/N/*.json   (N = 0...4)
//   rfc6962/rfc6962_test.go     hashing vectors
//
// Upstream probes that use byte strings which are not 32 bytes long ("" as garbage, "WrongLeaf",
// "WrongRoot", "don't care 1") cannot be expressed as a SHA256Digest at all; `unrepresentable()`
// checks that, and the probes use 32-byte stand-ins that must fail for the same reason.

import Testing
@testable import LedgerCore

// MARK: - Helpers

private func bytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    precondition(digits.count % 2 == 0, "odd-length hex in a test vector")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0 ..< $0 + 2], as: UTF8.self), radix: 16)! }
}

/// A digest from 64 hex digits (built via `init(bytes:)`, so a hex-parser bug cannot hide here).
private func dg(_ hex: String) -> SHA256Digest {
    guard let digest = SHA256Digest(bytes: bytes(hex)) else { fatalError("test vector is not 32 bytes: \(hex)") }
    return digest
}

private func leaf(_ text: String) -> SHA256Digest { MerkleHashing.leafHash(Array(text.utf8)) }

/// `digest` with `mask` XORed into byte `index`.
private func flipped(_ digest: SHA256Digest, mask: UInt8, at index: Int = 0) -> SHA256Digest {
    var b = digest.bytes
    b[index] ^= mask
    return SHA256Digest(bytes: b)!
}

private func verifies(_ body: () throws -> Void) -> Bool { (try? body()) != nil }

// MARK: - Reference tree (testonly/constants.go)

private enum Ref {
    static let leafInputs: [[UInt8]] = [
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
    ].map(bytes)

    /// `nodes[level][index]`: every complete subtree of the 8-leaf tree (level 0 = leaf hashes).
    static let nodes: [[SHA256Digest]] = [
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ],
        [
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ],
        [
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
    ].map { $0.map(dg) }

    /// `roots[size]` for sizes 0...8.
    static let roots: [SHA256Digest] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ].map(dg)

    static let emptyTreeHash = roots[0]
    /// `sha256SomeHash` of verify_test.go.
    static let someHash = dg("abacaba000000000000000000000000000000000000000000060061e00123456")
    /// Stand-in for upstream's zero-length "garbage" proof element.
    static let garbage = SHA256Digest(bytes: [UInt8](repeating: 0, count: 32))!

    static let tree: InMemoryMerkleTree = {
        var tree = InMemoryMerkleTree()
        for input in leafInputs { tree.append(leafHash: MerkleHashing.leafHash(input)) }
        return tree
    }()
}

/// Node names of the RFC 6962 example tree in proof/proof_test.go (d0...d6 → a b c d e f j).
private enum N {
    static let (a, b, c, d, e, f, j, leaf7) = (Ref.nodes[0][0], Ref.nodes[0][1], Ref.nodes[0][2], Ref.nodes[0][3],
                                              Ref.nodes[0][4], Ref.nodes[0][5], Ref.nodes[0][6], Ref.nodes[0][7])
    static let (g, h, i) = (Ref.nodes[1][0], Ref.nodes[1][1], Ref.nodes[1][2])
    static let (k, l) = (Ref.nodes[2][0], Ref.nodes[2][1])
    /// Right subtree of the 7-leaf tree, hash(i, j): the "rehash" entries of proof_test.go.
    static let l7 = dg("837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e")
}

// MARK: - Case types

/// A known proof of the reference tree: (leafIndex, treeSize) or (oldSize, newSize).
struct MerkleVectorKnownProof: Sendable, CustomTestStringConvertible {
    var first: UInt64
    var second: UInt64
    var hashes: [SHA256Digest]
    var testDescription: String { "\(first), \(second)" }
    init(_ first: UInt64, _ second: UInt64, _ hashes: [SHA256Digest]) {
        (self.first, self.second, self.hashes) = (first, second, hashes)
    }
}

/// One testdata/inclusion/N/*.json file.
struct MerkleVectorInclusionCase: Sendable, CustomTestStringConvertible {
    var file: String
    var leafIdx: UInt64
    var treeSize: UInt64
    var root: SHA256Digest
    var leafHash: SHA256Digest
    var proof: [SHA256Digest]
    var wantErr = false
    var testDescription: String { file }

    func verify() throws(MerkleProofError) {
        try InclusionProof(leafIndex: leafIdx, treeSize: treeSize, hashes: proof).verify(leafHash: leafHash, root: root)
    }

    private func probe(_ name: String, _ change: (inout Self) -> Void) -> Self {
        var copy = self
        copy.file = file.replacingHappyPath(with: name)
        copy.wantErr = true
        change(&copy)
        return copy
    }

    /// The corruptions verify_test.go applies to a good inclusion proof (bit 3 = mask 0x08).
    var probes: [Self] {
        let p = proof
        var out = [
            probe("leafIdx---1") { $0.leafIdx = leafIdx &- 1 },
            probe("leafIdx-+-1") { $0.leafIdx = leafIdx + 1 },
            probe("leafIdx-^-2") { $0.leafIdx = leafIdx ^ 2 },
            probe("treeSize-*-2") { $0.treeSize = treeSize * 2 },
            probe("treeSize-div-2") { $0.treeSize = treeSize / 2 },
            probe("wrong-leaf") { $0.leafHash = leaf("WrongLeaf") },
            probe("empty-root") { $0.root = Ref.emptyTreeHash },
            probe("random-root") { $0.root = Ref.someHash },
            probe("trailing-garbage") { $0.proof = p + [Ref.garbage] },
            probe("trailing-root") { $0.proof = p + [root] },
            probe("preceding-garbage") { $0.proof = [Ref.garbage] + p },
            probe("preceding-root") { $0.proof = [root] + p },
        ]
        for n in p.indices { out.append(probe("modified-proof[\(n)]-bit-3") { $0.proof[n] = flipped(p[n], mask: 0x08) }) }
        if !p.isEmpty { out.append(probe("removed-component") { $0.proof.removeLast() }) }
        if p.count > 1 { out.append(probe("inserted-component") { $0.proof.insert(Ref.someHash, at: 1) }) }
        return out
    }
}

/// One testdata/consistency/N/*.json file.
struct MerkleVectorConsistencyCase: Sendable, CustomTestStringConvertible {
    var file: String
    var size1: UInt64
    var size2: UInt64
    var root1: SHA256Digest
    var root2: SHA256Digest
    var proof: [SHA256Digest]
    var wantErr = false
    var testDescription: String { file }

    func verify() throws(MerkleProofError) {
        try ConsistencyProof(oldSize: size1, newSize: size2, hashes: proof).verify(oldRoot: root1, newRoot: root2)
    }

    private func probe(_ name: String, _ change: (inout Self) -> Void) -> Self {
        var copy = self
        copy.file = file.replacingHappyPath(with: name)
        copy.wantErr = true
        change(&copy)
        return copy
    }

    /// The corruptions verify_test.go applies to a good, non-empty consistency proof (bit 4 = mask 0x10).
    var probes: [Self] {
        let p = proof
        guard !p.isEmpty else { return [] }
        var out = [
            probe("size1---1") { $0.size1 = size1 &- 1 },
            probe("size1-+-1") { $0.size1 = size1 + 1 },
            probe("size1-^-2") { $0.size1 = size1 ^ 2 },
            probe("size2-*-2") { $0.size2 = size2 * 2 },
            probe("size2-div-2") { $0.size2 = size2 / 2 },
            probe("wrong-root1") { $0.root1 = leaf("WrongRoot") },
            probe("wrong-root2") { $0.root2 = leaf("WrongRoot") },
            probe("swapped-roots") { ($0.root1, $0.root2) = (root2, root1) },
            probe("empty-proof") { $0.proof = [] },
            probe("trailing-garbage") { $0.proof = p + [Ref.garbage] },
            probe("trailing-root1") { $0.proof = p + [root1] },
            probe("trailing-root2") { $0.proof = p + [root2] },
            probe("preceding-garbage") { $0.proof = [Ref.garbage] + p },
            probe("preceding-root1") { $0.proof = [root1] + p },
            probe("preceding-root2") { $0.proof = [root2] + p },
            probe("preceding-proof[0]") { $0.proof = [p[0]] + p },
            probe("truncated-proof") { $0.proof.removeLast() },
        ]
        for n in p.indices { out.append(probe("modified-proof[\(n)]-bit-4") { $0.proof[n] = flipped(p[n], mask: 0x10) }) }
        return out
    }
}

private extension String {
    func replacingHappyPath(with name: String) -> String {
        precondition(hasSuffix("/happy-path"))
        return String(dropLast("happy-path".count)) + name
    }
}

// MARK: - Case tables

/// reference_test.go (hex) and proof_test.go TestInclusion (node shapes), as (leafIndex, treeSize).
private let knownInclusionProofs: [MerkleVectorKnownProof] = [
    .init(0, 1, []),
    .init(0, 2, [dg("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")]),
    .init(1, 2, [dg("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")]),
    .init(2, 3, [dg("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    .init(1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                 "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                 "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"].map(dg)),
    .init(0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                 "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                 "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"].map(dg)),
    .init(5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                 "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                 "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"].map(dg)),
    .init(1, 3, [N.a, N.c]),
    .init(0, 7, [N.b, N.h, N.l7]), .init(1, 7, [N.a, N.h, N.l7]),
    .init(2, 7, [N.d, N.g, N.l7]), .init(3, 7, [N.c, N.g, N.l7]),
    .init(4, 7, [N.f, N.j, N.k]), .init(5, 7, [N.e, N.j, N.k]), .init(6, 7, [N.i, N.k]),
    .init(2, 4, [N.d, N.g]), .init(3, 5, [N.c, N.g, N.e]), .init(3, 6, [N.c, N.g, N.i]), .init(4, 6, [N.f, N.k]),
]

/// reference_test.go and verify_test.go (hex), proof_test.go TestConsistency (node shapes), as (oldSize, newSize).
private let knownConsistencyProofs: [MerkleVectorKnownProof] = [
    .init(1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                 "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                 "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"].map(dg)),
    .init(2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                 "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"].map(dg)),
    .init(6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                 "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                 "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"].map(dg)),
    .init(6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                 "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                 "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"].map(dg)),
    .init(1, 2, [N.b]), .init(1, 4, [N.b, N.h]), .init(1, 6, [N.b, N.h, N.i]), .init(1, 7, [N.b, N.h, N.l7]),
    .init(2, 3, [N.c]), .init(2, 4, [N.h]), .init(2, 8, [N.h, N.l]),
    .init(3, 5, [N.c, N.d, N.g, N.e]), .init(3, 6, [N.c, N.d, N.g, N.i]), .init(3, 7, [N.c, N.d, N.g, N.l7]),
    .init(4, 6, [N.i]), .init(4, 7, [N.l7]), .init(5, 7, [N.e, N.f, N.j, N.k]), .init(7, 8, [N.j, N.leaf7, N.i, N.k]),
] + (UInt64(1) ... 8).map { MerkleVectorKnownProof($0, $0, []) }

/// The happy paths of testdata/inclusion/0...4 (from verify_test.go's inclusionProofs), each followed by its probes.
private let inclusionFiles: [MerkleVectorInclusionCase] = [
    .init(file: "inclusion/0/happy-path", leafIdx: 0, treeSize: 1,
          root: dg("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
          leafHash: dg("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"), proof: []),
    .init(file: "inclusion/1/happy-path", leafIdx: 0, treeSize: 8,
          root: dg("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
          leafHash: dg("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
          proof: ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"].map(dg)),
    .init(file: "inclusion/2/happy-path", leafIdx: 5, treeSize: 8,
          root: dg("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
          leafHash: dg("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
          proof: ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"].map(dg)),
    .init(file: "inclusion/3/happy-path", leafIdx: 2, treeSize: 3,
          root: dg("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
          leafHash: dg("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
          proof: [dg("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    .init(file: "inclusion/4/happy-path", leafIdx: 1, treeSize: 5,
          root: dg("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
          leafHash: dg("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
          proof: ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"].map(dg)),
].flatMap { [$0] + $0.probes }

/// The happy paths of testdata/consistency/0...4 (from verify_test.go's consistencyProofs), each followed by its probes.
private let consistencyFiles: [MerkleVectorConsistencyCase] = [
    .init(file: "consistency/0/happy-path", size1: 1, size2: 1,
          root1: dg("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
          root2: dg("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"), proof: []),
    .init(file: "consistency/1/happy-path", size1: 1, size2: 8,
          root1: dg("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
          root2: dg("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
          proof: ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"].map(dg)),
    .init(file: "consistency/2/happy-path", size1: 6, size2: 8,
          root1: dg("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
          root2: dg("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
          proof: ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"].map(dg)),
    .init(file: "consistency/3/happy-path", size1: 2, size2: 5,
          root1: dg("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
          root2: dg("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
          proof: ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"].map(dg)),
    .init(file: "consistency/4/happy-path", size1: 6, size2: 7,
          root1: dg("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
          root2: dg("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
          proof: ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                  "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"].map(dg)),
].flatMap { [$0] + $0.probes }

/// Leaves of the property test, and a 64-leaf tree to ask for proofs of past sizes.
private let propertyLeaves = (0 ..< 64).map { MerkleHashing.leafHash([UInt8($0)]) }
private let propertyTree: InMemoryMerkleTree = {
    var tree = InMemoryMerkleTree()
    for hash in propertyLeaves { tree.append(leafHash: hash) }
    return tree
}()

// MARK: - Tests

@Suite("Merkle known-answer tests (transparency-dev/merkle)")
struct MerkleVectorTests {
    @Test("hashing vectors (rfc6962_test.go)")
    func hashing() {
        #expect(MerkleHashing.emptyRoot == dg("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
        #expect(MerkleHashing.leafHash([]) == dg("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"))
        #expect(leaf("L123456") == dg("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"))
        let (h1, h2) = (leaf("Hello"), leaf("World"))
        #expect(h1 != h2)
        #expect(MerkleHashing.nodeHash(h1, h2) != MerkleHashing.leafHash(h1.bytes + h2.bytes), "no second preimage via a leaf")
        #expect(MerkleHashing.nodeHash(h1, h2) != MerkleHashing.nodeHash(h2, h1), "order matters")
    }

    @Test("node hashes and roots of sizes 0...8 of the reference leaves (constants.go)")
    func referenceTree() throws {
        for (index, input) in Ref.leafInputs.enumerated() {
            #expect(MerkleHashing.leafHash(input) == Ref.nodes[0][index], "leaf \(index)")
        }
        for level in 1 ..< Ref.nodes.count {
            for (index, hash) in Ref.nodes[level].enumerated() {
                let below = Ref.nodes[level - 1]
                #expect(MerkleHashing.nodeHash(below[2 * index], below[2 * index + 1]) == hash, "node \(level).\(index)")
            }
        }
        #expect(MerkleHashing.nodeHash(N.i, N.j) == N.l7)
        #expect(MerkleHashing.nodeHash(N.k, N.l7) == Ref.roots[7])

        var tree = InMemoryMerkleTree()
        var frontier = MerkleFrontier()
        #expect(tree.size == 0 && frontier.size == 0)
        #expect(try tree.root(ofSize: 0) == Ref.roots[0])
        #expect(frontier.root == Ref.roots[0])
        for (index, input) in Ref.leafInputs.enumerated() {
            tree.append(leafHash: MerkleHashing.leafHash(input))
            frontier.append(MerkleHashing.leafHash(input))
            let size = index + 1
            #expect(tree.size == UInt64(size) && frontier.size == UInt64(size))
            #expect(frontier.root == Ref.roots[size], "frontier root at size \(size)")
            for past in 0 ... size {
                #expect(try tree.root(ofSize: UInt64(past)) == Ref.roots[past], "root(ofSize: \(past)) of \(size) leaves")
            }
        }
        let full = tree
        #expect(throws: MerkleProofError.self) { try full.root(ofSize: 9) }
    }

    @Test("known inclusion proofs of the reference tree", arguments: knownInclusionProofs)
    func knownInclusion(_ known: MerkleVectorKnownProof) throws {
        let expected = InclusionProof(leafIndex: known.first, treeSize: known.second, hashes: known.hashes)
        #expect(try Ref.tree.inclusionProof(leafIndex: known.first, treeSize: known.second) == expected)
        #expect(throws: Never.self) {
            try expected.verify(leafHash: Ref.nodes[0][Int(known.first)], root: Ref.roots[Int(known.second)])
        }
    }

    @Test("known consistency proofs of the reference tree", arguments: knownConsistencyProofs)
    func knownConsistency(_ known: MerkleVectorKnownProof) throws {
        let expected = ConsistencyProof(oldSize: known.first, newSize: known.second, hashes: known.hashes)
        #expect(try Ref.tree.consistencyProof(oldSize: known.first, newSize: known.second) == expected)
        #expect(throws: Never.self) {
            try expected.verify(oldRoot: Ref.roots[Int(known.first)], newRoot: Ref.roots[Int(known.second)])
        }
    }

    @Test("proof generation rejects bad parameters (proof_test.go, tree_test.go)")
    func generationErrors() {
        let tree = Ref.tree
        let badInclusion: [(index: UInt64, size: UInt64)] = [(0, 0), (1, 0), (2, 1), (3, 0), (8, 7), (0, 9)]
        for (index, size) in badInclusion {
            #expect(throws: MerkleProofError.self, "inclusion \(index) in \(size)") {
                try tree.inclusionProof(leafIndex: index, treeSize: size)
            }
        }
        let badConsistency: [(old: UInt64, new: UInt64)] = [(5, 0), (9, 8), (6, 3), (1, 9)]
        for (old, new) in badConsistency {
            #expect(throws: MerkleProofError.self, "consistency \(old) -> \(new)") {
                try tree.consistencyProof(oldSize: old, newSize: new)
            }
        }
    }

    @Test("testdata/inclusion vectors: happy paths verify, probes fail", arguments: inclusionFiles)
    func inclusionVector(_ file: MerkleVectorInclusionCase) {
        if file.wantErr {
            #expect(throws: MerkleProofError.self) { try file.verify() }
        } else {
            #expect(throws: Never.self) { try file.verify() }
        }
    }

    @Test("testdata/consistency vectors: happy paths verify, probes fail", arguments: consistencyFiles)
    func consistencyVector(_ file: MerkleVectorConsistencyCase) {
        if file.wantErr {
            #expect(throws: MerkleProofError.self) { try file.verify() }
        } else {
            #expect(throws: Never.self) { try file.verify() }
        }
    }

    @Test("the vector tables hold as many files as upstream's testdata")
    func vectorCounts() {
        // inclusion/0...4: 13, 18, 18, 15, 18 files; consistency/0...4: 1, 21, 21, 20, 21 files.
        #expect(inclusionFiles.count == 82 && inclusionFiles.filter { !$0.wantErr }.count == 5)
        #expect(consistencyFiles.count == 84 && consistencyFiles.filter { !$0.wantErr }.count == 5)
    }

    @Test("verifier tables of verify_test.go")
    func verifierTables() {
        let (r1, r2, empty) = (leaf("don't care 1"), leaf("don't care 2"), Ref.emptyTreeHash)
        let rejected: [(UInt64, UInt64, SHA256Digest, SHA256Digest, [SHA256Digest])] = [
            (0, 0, r1, r2, []), (1, 1, r1, r2, []),                  // equal sizes, different roots
            (1, 0, r1, r2, []), (2, 1, r1, r2, []),                  // time travel to the past
            (1, 2, r1, r2, []),                                      // empty proof
            (0, 0, empty, r2, []), (1, 1, empty, r2, []),            // roots don't match
            (0, 0, empty, empty, [empty]), (0, 1, empty, empty, [empty]),
            (1, 1, empty, empty, [empty]),                           // roots match, proof not empty
        ]
        for (old, new, oldRoot, newRoot, hashes) in rejected {
            #expect(throws: MerkleProofError.self, "consistency \(old) -> \(new), \(hashes.count) hashes") {
                try ConsistencyProof(oldSize: old, newSize: new, hashes: hashes).verify(oldRoot: oldRoot, newRoot: newRoot)
            }
        }
        #expect(throws: Never.self) { try ConsistencyProof(oldSize: 1, newSize: 1, hashes: []).verify(oldRoot: r2, newRoot: r2) }

        // A 1-leaf tree: the root is the leaf hash and the proof is empty.
        let data = leaf("data")
        #expect(throws: Never.self) { try InclusionProof(leafIndex: 0, treeSize: 1, hashes: []).verify(leafHash: data, root: data) }
        let badInclusion: [(UInt64, UInt64)] = [(0, 0), (0, 1), (1, 0), (2, 1)]
        for (index, size) in badInclusion {
            #expect(throws: MerkleProofError.self, "inclusion \(index) in \(size)") {
                try InclusionProof(leafIndex: index, treeSize: size, hashes: []).verify(leafHash: Ref.someHash, root: empty)
            }
        }
    }

    /// transparency-dev's verifier treats an empty old tree as consistent with any tree, given an empty
    /// proof. Its reference tree (testonly) refuses to generate a proof from size 0 instead, as RFC 9162
    /// defines PROOF(m, D[n]) only for 0 < m; either is accepted here, but a proof, if given, must verify.
    @Test("size-0 conventions of transparency-dev (verify_test.go, tree_test.go)")
    func sizeZeroConventions() {
        let (r1, r2) = (leaf("don't care 1"), leaf("don't care 2"))
        #expect(throws: Never.self) { try ConsistencyProof(oldSize: 0, newSize: 0, hashes: []).verify(oldRoot: r1, newRoot: r1) }
        #expect(throws: Never.self) { try ConsistencyProof(oldSize: 0, newSize: 1, hashes: []).verify(oldRoot: r1, newRoot: r2) }
        if let proof = try? Ref.tree.consistencyProof(oldSize: 0, newSize: 3) {
            #expect(proof == ConsistencyProof(oldSize: 0, newSize: 3, hashes: []))
            #expect(throws: Never.self) { try proof.verify(oldRoot: Ref.roots[0], newRoot: Ref.roots[3]) }
        }
    }

    @Test("byte strings of upstream probes that are not 32 bytes cannot become digests")
    func unrepresentable() {
        #expect(SHA256Digest(bytes: []) == nil)                              // the "garbage" element
        #expect(SHA256Digest(base64: "") == nil)
        #expect(SHA256Digest(base64: "V3JvbmdMZWFm") == nil)                 // "WrongLeaf"
        #expect(SHA256Digest(base64: "V3JvbmdSb290") == nil)                 // "WrongRoot"
        #expect(SHA256Digest(bytes: Array("don't care 1".utf8)) == nil)
        #expect(SHA256Digest(bytes: [UInt8](repeating: 0, count: 31)) == nil)
        #expect(SHA256Digest(bytes: [UInt8](repeating: 0, count: 33)) == nil)
        // The JSON files' base64 encodings, and hex, decode to the same digests.
        #expect(SHA256Digest(base64: "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=") == Ref.roots[8])
        #expect(SHA256Digest(base64: "q6yroAAAAAAAAAAAAAAAAAAAAAAAAAAAAGAGHgASNFY=") == Ref.someHash)
        #expect(SHA256Digest(base64: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=") == Ref.emptyTreeHash)
        #expect(SHA256Digest(hex: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328") == Ref.roots[8])
        #expect(SHA256Digest(hex: Ref.roots[8].hex) == Ref.roots[8])
    }

    @Test("every generated proof verifies and tampering fails, sizes 1...64", arguments: 1 ... 64)
    func generatedProofs(leafCount: Int) throws {
        var tree = InMemoryMerkleTree()
        var frontier = MerkleFrontier()
        for hash in propertyLeaves.prefix(leafCount) {
            tree.append(leafHash: hash)
            frontier.append(hash)
        }
        let size = UInt64(leafCount)
        let root = try tree.root(ofSize: size)
        #expect(tree.size == size && frontier.size == size)
        #expect(frontier.root == root)
        #expect(try propertyTree.root(ofSize: size) == root, "root of a past size of the 64-leaf tree")

        var failures: [String] = []
        for index in 0 ..< size {
            let proof = try tree.inclusionProof(leafIndex: index, treeSize: size)
            let leafHash = propertyLeaves[Int(index)]
            if try propertyTree.inclusionProof(leafIndex: index, treeSize: size) != proof {
                failures.append("inclusion \(index): differs when taken from the 64-leaf tree")
            }
            if !verifies({ try proof.verify(leafHash: leafHash, root: root) }) {
                failures.append("inclusion \(index): rejected")
            }
            for k in proof.hashes.indices {
                var bad = proof
                bad.hashes[k] = flipped(bad.hashes[k], mask: 1 << UInt8(k % 8), at: (Int(index) + k) % 32)
                if verifies({ try bad.verify(leafHash: leafHash, root: root) }) {
                    failures.append("inclusion \(index): accepted with hashes[\(k)] altered")
                }
            }
        }
        for old in 1 ... size {
            let oldRoot = try tree.root(ofSize: old)
            let proof = try tree.consistencyProof(oldSize: old, newSize: size)
            if try propertyTree.consistencyProof(oldSize: old, newSize: size) != proof {
                failures.append("consistency \(old): differs when taken from the 64-leaf tree")
            }
            if !verifies({ try proof.verify(oldRoot: oldRoot, newRoot: root) }) {
                failures.append("consistency \(old): rejected")
            }
            for k in proof.hashes.indices {
                var bad = proof
                bad.hashes[k] = flipped(bad.hashes[k], mask: 1 << UInt8(k % 8), at: (Int(old) + k) % 32)
                if verifies({ try bad.verify(oldRoot: oldRoot, newRoot: root) }) {
                    failures.append("consistency \(old): accepted with hashes[\(k)] altered")
                }
            }
        }
        #expect(failures.isEmpty, "size \(leafCount): \(failures.prefix(8).joined(separator: "; "))")
    }
}
