import LedgerCore

/// How a journal is laid out in LMDB (documented in docs/journal-format.md):
///
/// | database      | key                              | value                                   |
/// |---------------|----------------------------------|-----------------------------------------|
/// | `events`      | sequence, 8 bytes big-endian     | the event record (signed bytes + signature) |
/// | `merkle`      | last leaf (8 bytes) + level (1)  | root of that perfect subtree (32 bytes) |
/// | `checkpoints` | tree size, 8 bytes big-endian    | signed note text                        |
/// | `meta`        | ASCII name                       | journal head, identity, active key      |
/// | `p.<name>`    | chosen by the projection         | chosen by the projection                |
struct JournalLayout {
    let events: LMDBDatabase
    let merkle: LMDBDatabase
    let checkpoints: LMDBDatabase
    let meta: LMDBDatabase
    let projections: [String: LMDBDatabase]

    static let formatVersion = "1"

    enum MetaKey {
        static let format = Array("format".utf8)
        static let journalID = Array("journal_id".utf8)
        static let activeKey = Array("active_key".utf8)
        /// `key.` + sequence (8 bytes) → the public key that event introduced (genesis or rotation).
        static let keyHistoryPrefix = Array("key.".utf8)

        static func keyHistory(_ sequence: UInt64) -> [UInt8] { keyHistoryPrefix + sequence.bigEndianBytes }
    }

    static func open(
        in environment: LMDBEnvironment, transaction: LMDBTransaction, projections: [String], create: Bool
    ) throws(LMDBError) -> JournalLayout {
        var tables: [String: LMDBDatabase] = [:]
        for name in projections {
            tables[name] = try environment.openDatabase("p.\(name)", in: transaction, create: create)
        }
        return JournalLayout(
            events: try environment.openDatabase("events", in: transaction, create: create),
            merkle: try environment.openDatabase("merkle", in: transaction, create: create),
            checkpoints: try environment.openDatabase("checkpoints", in: transaction, create: create),
            meta: try environment.openDatabase("meta", in: transaction, create: create),
            projections: tables)
    }

    /// Refuses a journal written in another format version, or holding events but no version at all (a
    /// journal still empty has none yet).
    func checkFormat(in transaction: LMDBTransaction) throws(JournalError) {
        let stored: [UInt8]?
        let empty: Bool
        do {
            stored = try transaction.get(MetaKey.format, in: meta)
            empty = try transaction.last(in: events) == nil
        } catch {
            throw .storage(error)
        }
        guard let stored else {
            if empty { return }
            throw .unsupportedFormat("none")
        }
        let version = String(decoding: stored.prefix(32), as: UTF8.self)
        guard version == Self.formatVersion else { throw .unsupportedFormat(version) }
    }

    /// A perfect subtree is keyed by the index of its last leaf, then its level, so every append
    /// writes keys in increasing order (and LMDB only ever touches the tail page).
    static func merkleKey(level: Int, index: UInt64) -> [UInt8] {
        ((index + 1) << UInt64(level) - 1).bigEndianBytes + [UInt8(level)]
    }

    func projection(_ name: String) throws(JournalError) -> LMDBDatabase {
        guard let table = projections[name] else { throw .unknownProjection(name) }
        return table
    }
}

/// The end of the journal: the last event's sequence number, hash and time.
public struct JournalHead: Sendable, Equatable {
    /// The last event's sequence number, which is also the Merkle tree size; 0 when empty.
    public var sequence: UInt64
    /// The last event's hash (`EventEnvelope.eventHash`: SHA-256 of its record).
    public var lastHash: SHA256Digest
    /// The last event's time.
    public var lastTime: LedgerTimestamp

    static let empty = JournalHead(
        sequence: 0, lastHash: .zero, lastTime: LedgerTimestamp(microsecondsSinceEpoch: 0))

    init(sequence: UInt64, lastHash: SHA256Digest, lastTime: LedgerTimestamp) {
        self.sequence = sequence
        self.lastHash = lastHash
        self.lastTime = lastTime
    }
}

/// Perfect-subtree hashes read from the `merkle` database.
struct StoredMerkleNodes: MerkleNodeSource {
    let transaction: LMDBTransaction
    let layout: JournalLayout

    func perfectSubtreeHash(level: Int, index: UInt64) throws -> SHA256Digest {
        guard let bytes = try transaction.get(JournalLayout.merkleKey(level: level, index: index), in: layout.merkle),
            let hash = SHA256Digest(bytes: bytes)
        else { throw JournalError.corrupt("Merkle node \(level)/\(index) is missing") }
        return hash
    }
}
