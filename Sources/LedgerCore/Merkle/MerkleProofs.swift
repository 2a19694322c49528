/// An RFC 9162 §2.1.3 inclusion proof: the audit path from one leaf to the root of a tree of `treeSize` leaves.
public struct InclusionProof: Sendable, Equatable {
    public var leafIndex: UInt64
    public var treeSize: UInt64
    public var hashes: [SHA256Digest]

    public init(leafIndex: UInt64, treeSize: UInt64, hashes: [SHA256Digest]) {
        self.leafIndex = leafIndex
        self.treeSize = treeSize
        self.hashes = hashes
    }

    /// Checks the proof with the algorithm of RFC 9162 §2.1.3.2.
    /// - Throws: ``MerkleProofError`` when the path does not lead from `leafHash` to `root`.
    public func verify(leafHash: SHA256Digest, root: SHA256Digest) throws(MerkleProofError) {
        guard leafIndex < treeSize else { throw .indexOutOfRange }
        var fn = leafIndex
        var sn = treeSize - 1
        var result = leafHash
        for hash in hashes {
            guard sn != 0 else { throw .wrongProofSize }
            if fn & 1 == 1 || fn == sn {
                result = MerkleHashing.nodeHash(hash, result)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                result = MerkleHashing.nodeHash(result, hash)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw .wrongProofSize }
        guard result == root else { throw .rootMismatch }
    }
}

/// An RFC 9162 §2.1.4 consistency proof: that the tree of `newSize` leaves extends the tree of `oldSize`.
public struct ConsistencyProof: Sendable, Equatable {
    public var oldSize: UInt64
    public var newSize: UInt64
    public var hashes: [SHA256Digest]

    public init(oldSize: UInt64, newSize: UInt64, hashes: [SHA256Digest]) {
        self.oldSize = oldSize
        self.newSize = newSize
        self.hashes = hashes
    }

    /// Checks the proof with the algorithm of RFC 9162 §2.1.4.2.
    /// - Throws: ``MerkleProofError`` unless the old root is a prefix of the new one.
    public func verify(oldRoot: SHA256Digest, newRoot: SHA256Digest) throws(MerkleProofError) {
        guard oldSize <= newSize else { throw .invalidSizes }
        if oldSize == newSize {
            guard hashes.isEmpty else { throw .wrongProofSize }
            guard oldRoot == newRoot else { throw .rootMismatch }
            return
        }
        if oldSize == 0 {
            // Every tree extends the empty tree; the proof is empty.
            guard hashes.isEmpty else { throw .wrongProofSize }
            return
        }
        guard !hashes.isEmpty else { throw .wrongProofSize }
        var path = hashes
        if oldSize.isPowerOfTwo { path.insert(oldRoot, at: 0) }
        var fn = oldSize - 1
        var sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for hash in path.dropFirst() {
            guard sn != 0 else { throw .wrongProofSize }
            if fn & 1 == 1 || fn == sn {
                fr = MerkleHashing.nodeHash(hash, fr)
                sr = MerkleHashing.nodeHash(hash, sr)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                sr = MerkleHashing.nodeHash(sr, hash)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw .wrongProofSize }
        guard fr == oldRoot, sr == newRoot else { throw .rootMismatch }
    }
}

/// Where proofs get the hashes of perfect subtrees: the journal's stored nodes, or a tree in memory.
public protocol MerkleNodeSource {
    /// The root of the perfect subtree of `2^level` leaves starting at leaf `index << level`.
    func perfectSubtreeHash(level: Int, index: UInt64) throws -> SHA256Digest
}

extension MerkleNodeSource {
    /// `MTH(D[start:end])` of RFC 9162, assembled from perfect subtrees.
    public func subtreeRoot(start: UInt64, end: UInt64) throws -> SHA256Digest {
        let count = end - start
        if count == 0 { return MerkleHashing.emptyRoot }
        if count.isPowerOfTwo && start % count == 0 {
            return try perfectSubtreeHash(level: count.trailingZeroBitCount, index: start / count)
        }
        let split = count.largestPowerOfTwoBelow
        return MerkleHashing.nodeHash(
            try subtreeRoot(start: start, end: start + split), try subtreeRoot(start: start + split, end: end))
    }

    /// The RFC 9162 §2.1.3.1 audit path of `leafIndex` in the tree of the first `treeSize` leaves.
    public func inclusionProof(leafIndex: UInt64, treeSize: UInt64) throws -> InclusionProof {
        guard leafIndex < treeSize else { throw MerkleProofError.indexOutOfRange }
        var hashes: [SHA256Digest] = []
        try auditPath(index: leafIndex, start: 0, end: treeSize, into: &hashes)
        return InclusionProof(leafIndex: leafIndex, treeSize: treeSize, hashes: hashes)
    }

    /// The RFC 9162 §2.1.4.1 proof that the first `newSize` leaves extend the first `oldSize`.
    public func consistencyProof(oldSize: UInt64, newSize: UInt64) throws -> ConsistencyProof {
        guard oldSize <= newSize else { throw MerkleProofError.invalidSizes }
        var hashes: [SHA256Digest] = []
        if oldSize > 0 && oldSize < newSize {
            try subproof(oldSize: oldSize, start: 0, end: newSize, complete: true, into: &hashes)
        }
        return ConsistencyProof(oldSize: oldSize, newSize: newSize, hashes: hashes)
    }

    // PATH(m, D[start:end]), appending deepest hashes first.
    private func auditPath(index: UInt64, start: UInt64, end: UInt64, into hashes: inout [SHA256Digest]) throws {
        let count = end - start
        guard count > 1 else { return }
        let split = count.largestPowerOfTwoBelow
        if index < split {
            try auditPath(index: index, start: start, end: start + split, into: &hashes)
            hashes.append(try subtreeRoot(start: start + split, end: end))
        } else {
            try auditPath(index: index - split, start: start + split, end: end, into: &hashes)
            hashes.append(try subtreeRoot(start: start, end: start + split))
        }
    }

    // SUBPROOF(m, D[start:end], b).
    private func subproof(
        oldSize: UInt64, start: UInt64, end: UInt64, complete: Bool, into hashes: inout [SHA256Digest]
    ) throws {
        let count = end - start
        if oldSize == count {
            if !complete { hashes.append(try subtreeRoot(start: start, end: end)) }
            return
        }
        let split = count.largestPowerOfTwoBelow
        if oldSize <= split {
            try subproof(oldSize: oldSize, start: start, end: start + split, complete: complete, into: &hashes)
            hashes.append(try subtreeRoot(start: start + split, end: end))
        } else {
            try subproof(oldSize: oldSize - split, start: start + split, end: end, complete: false, into: &hashes)
            hashes.append(try subtreeRoot(start: start, end: start + split))
        }
    }
}
