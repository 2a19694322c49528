/// RFC 9162 §2.1.1 hashing: leaves and interior nodes are hashed with distinct one-byte prefixes,
/// so a leaf can never be passed off as a node.
public enum MerkleHashing {
    /// `SHA-256(0x00 || data)`.
    public static func leafHash(_ data: [UInt8]) -> SHA256Digest {
        SHA256Digest.hash(prefix: 0x00, data)
    }

    /// `SHA-256(0x01 || left || right)`.
    public static func nodeHash(_ left: SHA256Digest, _ right: SHA256Digest) -> SHA256Digest {
        SHA256Digest.hash(prefix: 0x01, left.bytes, right.bytes)
    }

    /// The root of the empty tree: `SHA-256("")`.
    public static let emptyRoot = SHA256Digest.hash([UInt8]())
}

/// Why a Merkle proof could not be made or did not verify.
public enum MerkleProofError: Error, Equatable, CustomStringConvertible {
    /// The leaf index is not inside the tree.
    case indexOutOfRange
    /// The proof has more or fewer hashes than its sizes call for.
    case wrongProofSize
    /// The proof leads to a different root.
    case rootMismatch
    /// The tree sizes are not ones a proof can exist for (such as an old size larger than the new).
    case invalidSizes

    public var description: String {
        switch self {
        case .indexOutOfRange: "leaf index is outside the tree"
        case .wrongProofSize: "proof has the wrong number of hashes"
        case .rootMismatch: "proof does not lead to the expected root"
        case .invalidSizes: "tree sizes are invalid for this proof"
        }
    }
}

extension UInt64 {
    /// The largest power of two strictly smaller than `self` (which must be at least 2).
    var largestPowerOfTwoBelow: UInt64 {
        UInt64(1) << UInt64(63 - (self - 1).leadingZeroBitCount)
    }

    var isPowerOfTwo: Bool { self != 0 && self & (self - 1) == 0 }
}
