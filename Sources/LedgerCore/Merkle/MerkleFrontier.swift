/// The incremental Merkle tree state: the roots of the perfect subtrees that make up the tree so far
/// (one per set bit of the size, largest first). Appending is O(log n) and needs no stored nodes.
public struct MerkleFrontier: Sendable, Equatable {
    /// Roots of the perfect subtrees, left to right: the first covers the most leaves.
    public private(set) var subtreeRoots: [SHA256Digest] = []
    /// Number of leaves.
    public private(set) var size: UInt64 = 0

    public init() {}

    /// The frontier of a tree of `size` leaves whose perfect subtrees (left to right) have these roots;
    /// `nil` when their number does not fit the size (one per bit set in it).
    public init?(size: UInt64, subtreeRoots: [SHA256Digest]) {
        guard size.nonzeroBitCount == subtreeRoots.count else { return nil }
        self.size = size
        self.subtreeRoots = subtreeRoots
    }

    /// Rebuilds the frontier of a tree of `size` leaves from its perfect subtrees.
    public init(size: UInt64, nodes: some MerkleNodeSource) throws {
        var start: UInt64 = 0
        for level in stride(from: 63, through: 0, by: -1) where size & (UInt64(1) << UInt64(level)) != 0 {
            subtreeRoots.append(try nodes.perfectSubtreeHash(level: level, index: start >> UInt64(level)))
            start += UInt64(1) << UInt64(level)
        }
        self.size = size
    }

    /// Appends a leaf.
    public mutating func append(_ leafHash: SHA256Digest) {
        append(leafHash) { _, _, _ in }
    }

    /// Appends a leaf, reporting every perfect subtree that becomes complete: the leaf itself
    /// at level 0, then each merged parent, as `(level, index, hash)`.
    public mutating func append(_ leafHash: SHA256Digest, completed: (Int, UInt64, SHA256Digest) -> Void) {
        var hash = leafHash
        var index = size
        var level = 0
        completed(0, index, hash)
        while index & 1 == 1 {
            hash = MerkleHashing.nodeHash(subtreeRoots.removeLast(), hash)
            index >>= 1
            level += 1
            completed(level, index, hash)
        }
        subtreeRoots.append(hash)
        size += 1
    }

    /// The tree's root (RFC 9162 `MTH`); ``MerkleHashing/emptyRoot`` for no leaves.
    public var root: SHA256Digest {
        guard var hash = subtreeRoots.last else { return MerkleHashing.emptyRoot }
        for left in subtreeRoots.dropLast().reversed() {
            hash = MerkleHashing.nodeHash(left, hash)
        }
        return hash
    }
}

/// A whole Merkle tree in memory: every perfect subtree, so it can produce any proof.
/// For tests, tools and bundles; the journal stores the upper levels of the same nodes instead, and
/// computes the lower ones from its events.
public struct InMemoryMerkleTree: Sendable, MerkleNodeSource {
    private var levels: [[SHA256Digest]] = []
    private var frontier = MerkleFrontier()

    public init() {}

    public var size: UInt64 { frontier.size }

    public mutating func append(leafHash: SHA256Digest) {
        frontier.append(leafHash) { level, index, hash in
            if levels.count <= level { levels.append([]) }
            precondition(levels[level].count == Int(index))
            levels[level].append(hash)
        }
    }

    public func perfectSubtreeHash(level: Int, index: UInt64) throws -> SHA256Digest {
        guard level < levels.count, index < levels[level].count else { throw MerkleProofError.indexOutOfRange }
        return levels[level][Int(index)]
    }

    public func root(ofSize size: UInt64) throws(MerkleProofError) -> SHA256Digest {
        guard size <= self.size else { throw .invalidSizes }
        return try Self.typed { try subtreeRoot(start: 0, end: size) }
    }

    public func inclusionProof(leafIndex: UInt64, treeSize: UInt64) throws(MerkleProofError) -> InclusionProof {
        guard treeSize <= size else { throw .invalidSizes }
        return try Self.typed { try (self as any MerkleNodeSource).inclusionProof(leafIndex: leafIndex, treeSize: treeSize) }
    }

    public func consistencyProof(oldSize: UInt64, newSize: UInt64) throws(MerkleProofError) -> ConsistencyProof {
        guard newSize <= size else { throw .invalidSizes }
        return try Self.typed { try (self as any MerkleNodeSource).consistencyProof(oldSize: oldSize, newSize: newSize) }
    }

    private static func typed<T>(_ body: () throws -> T) throws(MerkleProofError) -> T {
        do { return try body() } catch let error as MerkleProofError { throw error } catch { throw .invalidSizes }
    }
}
