/// What verifying a journal's first events established, as ``JournalVerifier`` needs it to go on from
/// there: the state after event ``size``.
///
/// A journal whose oldest events were archived (`authledger journal archive`) keeps the prefix of the
/// events it no longer holds; its verification resumes from it — anchored by the signed checkpoint at
/// ``size``, which the live journal keeps — and the archive's own verification must end in exactly this
/// state for the two to be one history (`authledger-replay verify --archive`).
public struct VerifiedPrefix: Sendable, Equatable, Codable {
    /// The number of events verified (the sequence number of the last one).
    public var size: UInt64
    /// SHA-256 of the last event's record: the next event's previous-event hash.
    public var lastHash: SHA256Digest
    /// The last event's time: no later event may be earlier.
    public var lastTime: LedgerTimestamp
    /// The roots of the Merkle tree's perfect subtrees over those events, left to right.
    public var subtreeRoots: [SHA256Digest]
    /// The genesis event's payload: the journal's identity and origin.
    public var genesis: GenesisPayload
    /// Every key the chain introduced, oldest first, with its tenure so far.
    public var keys: [Ed25519PublicKey]
    public var tenures: [KeyTenure]
    /// The keys that may sign the next event.
    public var signers: [Ed25519PublicKey]

    public init(
        size: UInt64, lastHash: SHA256Digest, lastTime: LedgerTimestamp, subtreeRoots: [SHA256Digest], genesis: GenesisPayload,
        keys: [Ed25519PublicKey], tenures: [KeyTenure], signers: [Ed25519PublicKey]
    ) {
        self.size = size
        self.lastHash = lastHash
        self.lastTime = lastTime
        self.subtreeRoots = subtreeRoots
        self.genesis = genesis
        self.keys = keys
        self.tenures = tenures
        self.signers = signers
    }

    /// The Merkle root over the prefix's events.
    public var rootHash: SHA256Digest? { MerkleFrontier(size: size, subtreeRoots: subtreeRoots)?.root }

    enum CodingKeys: String, CodingKey {
        case size, genesis, keys, tenures, signers
        case lastHash = "last_hash", lastTime = "last_time", subtreeRoots = "subtree_roots"
    }

    enum TenureKeys: String, CodingKey { case first, last }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func digest(_ text: String) throws -> SHA256Digest {
            guard let digest = SHA256Digest(hex: text) else {
                throw DecodingError.dataCorruptedError(forKey: .lastHash, in: container, debugDescription: "not a SHA-256 digest in hex")
            }
            return digest
        }
        func key(_ text: String) throws -> Ed25519PublicKey {
            guard let bytes = Base64.decode(text), let key = Ed25519PublicKey(bytes: bytes) else {
                throw DecodingError.dataCorruptedError(forKey: .keys, in: container, debugDescription: "not an Ed25519 public key in base64")
            }
            return key
        }
        size = try container.decode(UInt64.self, forKey: .size)
        lastHash = try digest(try container.decode(String.self, forKey: .lastHash))
        lastTime = LedgerTimestamp(microsecondsSinceEpoch: try container.decode(Int64.self, forKey: .lastTime))
        subtreeRoots = try container.decode([String].self, forKey: .subtreeRoots).map(digest)
        genesis = try container.decode(GenesisPayload.self, forKey: .genesis)
        keys = try container.decode([String].self, forKey: .keys).map(key)
        tenures = try container.decode([[String: UInt64]].self, forKey: .tenures).map { KeyTenure(first: $0["first"] ?? 0, last: $0["last"]) }
        signers = try container.decode([String].self, forKey: .signers).map(key)
        guard keys.count == tenures.count, MerkleFrontier(size: size, subtreeRoots: subtreeRoots) != nil else {
            throw DecodingError.dataCorruptedError(forKey: .tenures, in: container, debugDescription: "inconsistent prefix")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(size, forKey: .size)
        try container.encode(lastHash.hex, forKey: .lastHash)
        try container.encode(lastTime.microseconds, forKey: .lastTime)
        try container.encode(subtreeRoots.map(\.hex), forKey: .subtreeRoots)
        try container.encode(genesis, forKey: .genesis)
        try container.encode(keys.map { Base64.encode($0.bytes) }, forKey: .keys)
        try container.encode(tenures.map { tenure in ["first": tenure.first].merging(tenure.last.map { ["last": $0] } ?? [:]) { a, _ in a } }, forKey: .tenures)
        try container.encode(signers.map { Base64.encode($0.bytes) }, forKey: .signers)
    }
}
