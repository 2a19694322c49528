import LedgerCore

/// How a journal is laid out in its store's tables (documented in docs/journal-format.md):
///
/// | table         | key                              | value                                   |
/// |---------------|----------------------------------|-----------------------------------------|
/// | `events`      | sequence, 8 bytes big-endian     | the event record, in full or shortened (`StoredRecord`) |
/// | `merkle`      | last leaf (8 bytes) + level (1)  | root of that perfect subtree (32 bytes) |
/// | `checkpoints` | tree size, 8 bytes big-endian    | signed note text                        |
/// | `meta`        | ASCII name                       | journal identity, format, active key, key history |
/// | `subject_keys`| data subject id (UTF-8)          | the subject's key, wrapped under the journal's data key |
/// | `archived_projections` | projection name, 0x00, key | the projections as the archived events left them |
/// | `consumers`   | consumer name (UTF-8)            | where a consumer of the events (a log stream) stands, its own bytes |
/// | `p.<name>`    | chosen by the projection         | chosen by the projection                |
struct JournalLayout: Sendable {
    let events: StorageTable
    let merkle: StorageTable
    let checkpoints: StorageTable
    let meta: StorageTable
    /// The keys of data subjects; `nil` in a journal opened for reading that has never had one.
    let subjectKeys: StorageTable?
    /// The projections as the archived events left them; `nil` in a journal opened for reading that was
    /// never archived.
    let archivedProjections: StorageTable?
    /// The positions of the journal's consumers; `nil` in a journal opened for reading that never had one.
    let consumers: StorageTable?
    let projections: [String: StorageTable]

    static let formatVersion = "1"
    static let baseTables = ["events", "merkle", "checkpoints", "meta"]
    /// Kept outside the base tables: journals written before subject keys existed have no such table.
    static let subjectKeysTable = "subject_keys"
    /// Outside the base tables too, for the same reason.
    static let archivedProjectionsTable = "archived_projections"
    /// And this one: operational state of the event's consumers, not signed, not rebuilt from the events.
    static let consumersTable = "consumers"

    enum MetaKey {
        static let format = Array("format".utf8)
        static let journalID = Array("journal_id".utf8)
        static let activeKey = Array("active_key".utf8)
        /// `key.` + sequence (8 bytes) → the public key that event introduced (genesis or rotation).
        static let keyHistoryPrefix = Array("key.".utf8)

        static func keyHistory(_ sequence: UInt64) -> [UInt8] { keyHistoryPrefix + sequence.bigEndianBytes }
        /// `signer.` + key id (8 bytes) → the public key of each key that may sign new events. Journals
        /// written before keys could be added have none: their one signer is `active_key`.
        static let signerPrefix = Array("signer.".utf8)

        static func signer(_ id: KeyID) -> [UInt8] { signerPrefix + id.bytes }
        /// The verified state after the archived events (`VerifiedPrefix`, JSON), in a journal whose oldest
        /// events were archived: its events start after it.
        static let archivePrefix = Array("archive.prefix".utf8)
    }

    /// The keys that may sign new events, as the journal's index records them (the signed events are
    /// what verification follows): every key added beside the genesis key, after rotations.
    func signers(in transaction: any StorageReadTransaction) throws -> [Ed25519PublicKey] {
        var keys: [Ed25519PublicKey] = []
        try transaction.forEach(in: meta, from: MetaKey.signerPrefix) { name, value in
            guard name.starts(with: MetaKey.signerPrefix) else { return false }
            if let key = Ed25519PublicKey(bytes: value) { keys.append(key) }
            return true
        }
        if keys.isEmpty, let active = try transaction.get(MetaKey.activeKey, in: meta).flatMap(Ed25519PublicKey.init(bytes:)) {
            return [active]
        }
        return keys
    }

    /// Opens the journal's tables in `storage`. When reading (`create` false), projections the journal
    /// lacks are left out; a journal without its base tables is refused. An archive is made without
    /// `subjectKeys` (its subjects' keys stay in the journal).
    static func open(in storage: any JournalStorage, projections: [String], create: Bool, subjectKeys: Bool = true) throws -> JournalLayout {
        let tables = try storage.openTables(
            baseTables + (subjectKeys ? [subjectKeysTable] : []) + [archivedProjectionsTable, consumersTable] + projections.map { "p.\($0)" },
            create: create)
        func base(_ name: String) throws(JournalError) -> StorageTable {
            guard let table = tables[name] else { throw .directory(path: storage.location, reason: "holds no journal (no \(name) table)") }
            return table
        }
        var projectionTables: [String: StorageTable] = [:]
        for name in projections { projectionTables[name] = tables["p.\(name)"] }
        return JournalLayout(
            events: try base("events"), merkle: try base("merkle"), checkpoints: try base("checkpoints"),
            meta: try base("meta"), subjectKeys: tables[subjectKeysTable], archivedProjections: tables[archivedProjectionsTable],
            consumers: tables[consumersTable], projections: projectionTables)
    }

    /// Refuses a journal written in another format version, or holding events but no version at all (a
    /// journal still empty has none yet).
    func checkFormat(in transaction: any StorageReadTransaction) throws {
        let stored = try transaction.get(MetaKey.format, in: meta)
        let empty = try transaction.last(in: events) == nil
        guard let stored else {
            if empty { return }
            throw JournalError.unsupportedFormat("none")
        }
        let version = String(decoding: stored.prefix(32), as: UTF8.self)
        guard version == Self.formatVersion else { throw JournalError.unsupportedFormat(version) }
    }

    /// The verified state after the archived events, if the journal's oldest events were archived.
    func archivePrefix(in transaction: any StorageReadTransaction) throws -> VerifiedPrefix? {
        guard let bytes = try transaction.get(MetaKey.archivePrefix, in: meta) else { return nil }
        do {
            return try PayloadCoding.decode(VerifiedPrefix.self, from: bytes)
        } catch {
            throw JournalError.corrupt("the prefix of the archived events cannot be read: \(error)")
        }
    }

    /// The lowest level of the Merkle tree whose perfect subtrees the writer stores: the ones below are
    /// computed from the events' records when a proof needs them (at most `2^level - 1` leaves each), which
    /// keeps the `merkle` table to an eighth of a node per event instead of two (journal format §6).
    /// Journals written before 2026-12-04 store every level, and those written before 2026-12-05 level 3
    /// too; all read the same (a node that is stored is read, whatever its level).
    static let lowestStoredMerkleLevel = 4

    /// Whether the writer stores the perfect subtree at `level` (and archival keeps it at the cut).
    static func storesMerkleNode(level: Int) -> Bool { level >= lowestStoredMerkleLevel }

    /// A perfect subtree is keyed by the index of its last leaf, then its level, so every append
    /// writes keys in increasing order (and LMDB only ever touches the tail page).
    static func merkleKey(level: Int, index: UInt64) -> [UInt8] {
        ((index + 1) << UInt64(level) - 1).bigEndianBytes + [UInt8(level)]
    }

    /// The record stored under `sequence`, in full (`RecordExpander`); `nil` when there is none.
    func record(_ sequence: UInt64, in transaction: any StorageReadTransaction) throws -> [UInt8]? {
        var expander = RecordExpander(layout: self)
        return try transaction.get(sequence.bigEndianBytes, in: events).map { try expander.record($0, sequence: sequence, in: transaction) }
    }

    /// The event stored under `sequence`, decoded; `nil` when there is none.
    func event(_ sequence: UInt64, in transaction: any StorageReadTransaction) throws -> EventEnvelope? {
        var expander = RecordExpander(layout: self)
        return try transaction.get(sequence.bigEndianBytes, in: events).map { try expander.envelope($0, sequence: sequence, in: transaction) }
    }

    func projection(_ name: String) throws(JournalError) -> StorageTable {
        guard let table = projections[name] else { throw .unknownProjection(name) }
        return table
    }
}

/// Turns stored records into full ones (`StoredRecord`): a shortened record is expanded with the
/// journal's id, read from `meta` at the first one and kept for the rest of a walk.
struct RecordExpander {
    let layout: JournalLayout
    private var journalID: [UInt8]?

    /// An expander for `layout`'s records; `journalID`, when the caller knows it (a writer), spares the read.
    init(layout: JournalLayout, journalID: [UInt8]? = nil) {
        self.layout = layout
        self.journalID = journalID
    }

    /// The full record that `stored`, read under `sequence`, stands for.
    mutating func record(_ stored: [UInt8], sequence: UInt64, in transaction: any StorageReadTransaction) throws -> [UInt8] {
        guard StoredRecord.isShortened(stored) else { return stored }
        let id = try journalID(in: transaction)
        do {
            return try StoredRecord.record(expanding: stored, sequence: sequence, journalID: id)
        } catch {
            throw JournalError.corrupt("event #\(sequence): \(error)")
        }
    }

    /// The event that `stored`, read under `sequence`, stands for: decoded as its full record would be,
    /// without making that record.
    mutating func envelope(_ stored: [UInt8], sequence: UInt64, in transaction: any StorageReadTransaction) throws -> EventEnvelope {
        guard StoredRecord.isShortened(stored) else { return try EventEnvelope(record: stored) }
        let id = try journalID(in: transaction)
        do {
            return try StoredRecord.envelope(expanding: stored, sequence: sequence, journalID: id)
        } catch {
            throw JournalError.corrupt("event #\(sequence): \(error)")
        }
    }

    private mutating func journalID(in transaction: any StorageReadTransaction) throws -> [UInt8] {
        if let journalID { return journalID }
        guard let text = try transaction.get(JournalLayout.MetaKey.journalID, in: layout.meta),
            let id = Hex.decode(String(decoding: text, as: UTF8.self)), id.count == 16
        else { throw JournalError.corrupt("the journal's id is missing or malformed, and its shortened records need it") }
        journalID = id
        return id
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

    /// The head as `transaction` sees it, read from the last stored record (the head is derived, never
    /// stored separately, so it cannot disagree with the events).
    static func read(from transaction: any StorageReadTransaction, layout: JournalLayout) throws -> JournalHead {
        guard let (key, stored) = try transaction.last(in: layout.events) else { return .empty }
        guard let sequence = UInt64(bigEndianBytes: key) else { throw JournalError.corrupt("last event key is malformed") }
        var expander = RecordExpander(layout: layout)
        let record = try expander.record(stored, sequence: sequence, in: transaction)
        let envelope = try EventEnvelope(record: record)
        return JournalHead(sequence: sequence, lastHash: SHA256Digest.hash(record), lastTime: envelope.timestamp)
    }

    init(sequence: UInt64, lastHash: SHA256Digest, lastTime: LedgerTimestamp) {
        self.sequence = sequence
        self.lastHash = lastHash
        self.lastTime = lastTime
    }
}

/// Perfect-subtree hashes read from the `merkle` table, and below
/// `JournalLayout.lowestStoredMerkleLevel` (which journals written since 2026-12-04 do not store: below 3, and since 2026-12-05 below 4)
/// computed from the events' records.
struct StoredMerkleNodes: MerkleNodeSource {
    let transaction: any StorageReadTransaction
    let layout: JournalLayout

    func perfectSubtreeHash(level: Int, index: UInt64) throws -> SHA256Digest {
        if let bytes = try transaction.get(JournalLayout.merkleKey(level: level, index: index), in: layout.merkle) {
            guard let hash = SHA256Digest(bytes: bytes) else { throw JournalError.corrupt("Merkle node \(level)/\(index) is malformed") }
            return hash
        }
        guard level < JournalLayout.lowestStoredMerkleLevel else { throw JournalError.corrupt("Merkle node \(level)/\(index) is missing") }
        if let computed = try hashOfLeaves(level: level, index: index) { return computed }
        // Some of its leaves are gone (archived, §10): its halves may be stored frontier nodes.
        guard level > 0 else {
            throw JournalError.corrupt("Merkle node 0/\(index) is missing, and so is event #\(index + 1) it is the hash of")
        }
        return MerkleHashing.nodeHash(
            try perfectSubtreeHash(level: level - 1, index: index << 1), try perfectSubtreeHash(level: level - 1, index: index << 1 | 1))
    }

    /// The subtree computed from its leaves, the records of events `index << level + 1` on, read in one
    /// range (one query on a shared store, where reading them one by one took a round trip each); `nil`
    /// when one of them is not there.
    private func hashOfLeaves(level: Int, index: UInt64) throws -> SHA256Digest? {
        let first = index << UInt64(level) + 1
        let count = 1 << level
        var hashes: [SHA256Digest] = []
        hashes.reserveCapacity(count)
        var expander = RecordExpander(layout: layout)
        try transaction.forEach(in: layout.events, from: first.bigEndianBytes, limit: count) { key, stored in
            let sequence = first + UInt64(hashes.count)
            guard key == sequence.bigEndianBytes else { return false }
            hashes.append(MerkleHashing.leafHash(try expander.record(stored, sequence: sequence, in: transaction)))
            return true
        }
        guard hashes.count == count else { return nil }
        while hashes.count > 1 {
            hashes = stride(from: 0, to: hashes.count, by: 2).map { MerkleHashing.nodeHash(hashes[$0], hashes[$0 + 1]) }
        }
        return hashes[0]
    }
}
