import LedgerCore

/// A consistent, read-only view of the journal at one moment (a read transaction of its store).
///
/// Valid only inside the closure that receives it (``JournalReader/read(_:)``). Concurrent appends
/// neither block it nor change what it sees.
public struct JournalSnapshot {
    let transaction: any StorageReadTransaction
    let layout: JournalLayout

    /// The last event in this snapshot, read from the last stored record (the head is derived, never
    /// stored separately, so it cannot disagree with the events).
    public var head: JournalHead {
        get throws { try JournalHead.read(from: transaction, layout: layout) }
    }

    /// The journal's identity (from its genesis), or `nil` for a journal that has none yet.
    public var journalID: String? {
        get throws {
            try transaction.get(JournalLayout.MetaKey.journalID, in: layout.meta).map { String(decoding: $0, as: UTF8.self) }
        }
    }

    /// The checkpoint origin, `authledger/<journal id>`.
    public var origin: String? {
        get throws { try journalID.map { "authledger/\($0)" } }
    }

    /// The key that signs new events.
    public var activeKey: Ed25519PublicKey? {
        get throws {
            try transaction.get(JournalLayout.MetaKey.activeKey, in: layout.meta).flatMap(Ed25519PublicKey.init(bytes:))
        }
    }

    /// The keys that may sign new events: the active key, and every key added beside it (one per cluster
    /// node that signs with its own).
    public var signers: [Ed25519PublicKey] {
        get throws { try layout.signers(in: transaction) }
    }

    /// The record of event `sequence`, in full (as signed, hashed and exported), however it is stored.
    public func record(_ sequence: UInt64) throws -> [UInt8]? {
        try layout.record(sequence, in: transaction)
    }

    /// Event `sequence`, decoded.
    public func event(_ sequence: UInt64) throws -> EventEnvelope? {
        try layout.event(sequence, in: transaction)
    }

    /// The verified state after the archived events, when the journal's oldest events were archived
    /// (`authledger journal archive`): its events start after the prefix's `size`.
    public var archivedPrefix: VerifiedPrefix? {
        get throws { try layout.archivePrefix(in: transaction) }
    }

    /// The first event the journal holds: 1, or the first after its archived events.
    public var firstSequence: UInt64 {
        get throws { (try archivedPrefix?.size ?? 0) + 1 }
    }

    /// Visits records, in full, in sequence order from `start` (at the earliest the first event the journal
    /// holds: archived ones are not visited, even while their removal is unfinished), with the sequence key
    /// they are stored under, until `body` returns false. Does not decode or check them.
    public func forEachRecord(from start: UInt64 = 1, _ body: (UInt64, [UInt8]) throws -> Bool) throws {
        try forEachStored(from: start) { expander, sequence, stored in
            try body(sequence, try expander.record(stored, sequence: sequence, in: transaction))
        }
    }

    /// Visits decoded events in order from `start` until `body` returns false.
    public func forEachEvent(from start: UInt64 = 1, _ body: (EventEnvelope) throws -> Bool) throws {
        try forEachStored(from: start) { expander, sequence, stored in
            try body(try expander.envelope(stored, sequence: sequence, in: transaction))
        }
    }

    /// Visits the events table as stored from `start` (archived events left out), with one expander for
    /// the walk and each key's sequence number, until `body` returns false.
    private func forEachStored(from start: UInt64, _ body: (inout RecordExpander, UInt64, [UInt8]) throws -> Bool) throws {
        var expander = RecordExpander(layout: layout)
        try transaction.forEach(in: layout.events, from: max(start, try firstSequence).bigEndianBytes) { key, value in
            guard let sequence = UInt64(bigEndianBytes: key) else { throw JournalError.corrupt("event key of \(key.count) bytes") }
            return try body(&expander, sequence, value)
        }
    }

    /// The entries of projection `name` as the archived events left them (none when nothing was archived).
    public func archivedProjection(_ name: String, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        try layout.archivedProjection(name, in: transaction, body)
    }

    /// Every checkpoint stored in the journal, by tree size; those stored shortened with the origin and
    /// the roots the journal holds (`StoredCheckpoint`).
    public func checkpoints() throws -> [SignedCheckpoint] {
        var stored: [([UInt8], [UInt8])] = []
        try transaction.forEach(in: layout.checkpoints, from: nil) { key, value in
            stored.append((key, value))
            return true
        }
        return try stored.map { try checkpoint($0.1, storedUnder: $0.0) }
    }

    /// The checkpoint with the largest tree size.
    public func latestCheckpoint() throws -> SignedCheckpoint? {
        try transaction.last(in: layout.checkpoints).map { try checkpoint($0.1, storedUnder: $0.0) }
    }

    private func checkpoint(_ value: [UInt8], storedUnder key: [UInt8]) throws -> SignedCheckpoint {
        guard StoredCheckpoint.isShortened(value) else { return try SignedCheckpoint(text: String(decoding: value, as: UTF8.self)) }
        guard let size = UInt64(bigEndianBytes: key) else { throw JournalError.corrupt("checkpoint key of \(key.count) bytes") }
        guard let origin = try origin else { throw JournalError.corrupt("a shortened checkpoint, and no journal id to read it with") }
        return try StoredCheckpoint.signed(expanding: value, treeSize: size, origin: origin, rootHash: try rootHash(treeSize: size))
    }

    /// The Merkle root over events `1...treeSize`.
    public func rootHash(treeSize: UInt64) throws -> SHA256Digest {
        try checkTreeSize(treeSize)
        return try nodes.subtreeRoot(start: 0, end: treeSize)
    }

    /// Proof that event `sequence` is in the tree of events `1...treeSize`.
    public func inclusionProof(sequence: UInt64, treeSize: UInt64) throws -> InclusionProof {
        try checkTreeSize(treeSize)
        guard sequence >= 1 else { throw MerkleProofError.indexOutOfRange }
        return try nodes.inclusionProof(leafIndex: sequence - 1, treeSize: treeSize)
    }

    /// Proof that the tree of `newSize` events extends the tree of `oldSize` events.
    public func consistencyProof(oldSize: UInt64, newSize: UInt64) throws -> ConsistencyProof {
        try checkTreeSize(newSize)
        return try nodes.consistencyProof(oldSize: oldSize, newSize: newSize)
    }

    /// The state consumer `name` of the events (a log stream) last stored, or `nil`
    /// (``JournalWriteTransaction/consumerState(_:)``).
    public func consumerState(_ name: String) throws -> [UInt8]? {
        guard let table = layout.consumers else { return nil }
        return try transaction.get(Array(name.utf8), in: table)
    }

    /// Read access to projection table `name`.
    public func projection(_ name: String) throws -> ProjectionReader {
        ProjectionReader(transaction: transaction, database: try layout.projection(name))
    }

    private var nodes: StoredMerkleNodes { StoredMerkleNodes(transaction: transaction, layout: layout) }

    private func checkTreeSize(_ size: UInt64) throws {
        guard size <= (try head.sequence) else { throw MerkleProofError.invalidSizes }
    }
}

/// Reads one projection table.
public struct ProjectionReader {
    let transaction: any StorageReadTransaction
    let database: StorageTable

    public func get(_ key: [UInt8]) throws -> [UInt8]? {
        try transaction.get(key, in: database)
    }

    /// Visits entries in key order from the first key `>= start` until `body` returns false.
    public func forEach(from start: [UInt8]? = nil, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        try transaction.forEach(in: database, from: start, body)
    }

    public var count: Int { get throws { try transaction.count(in: database) } }
}

/// Reads and writes one projection table inside a journal write transaction.
public struct ProjectionTable {
    let transaction: any StorageWriteTransaction
    let database: StorageTable

    public func get(_ key: [UInt8]) throws -> [UInt8]? {
        try transaction.get(key, in: database)
    }

    public func put(_ value: [UInt8], for key: [UInt8]) throws {
        try transaction.put(value, for: key, in: database, append: false)
    }

    /// Appends `bytes` to the value under `key` (stores `bytes` when there is none).
    public func extend(_ bytes: [UInt8], for key: [UInt8]) throws {
        try transaction.extend(bytes, for: key, in: database)
    }

    @discardableResult
    public func delete(_ key: [UInt8]) throws -> Bool {
        try transaction.delete(key, in: database)
    }

    public func forEach(from start: [UInt8]? = nil, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        try transaction.forEach(in: database, from: start, body)
    }

    /// Removes every entry, as when a projection is rebuilt from the events.
    public func removeAll() throws {
        try transaction.removeAll(in: database)
    }
}

extension JournalSnapshot {
    /// The first sequence number whose event time is at or after `time` (head + 1 if none): a binary
    /// search, since event times never decrease.
    public func firstSequence(atOrAfter time: LedgerTimestamp) throws -> UInt64 {
        var low = try firstSequence
        var high = try head.sequence + 1
        while low < high {
            let middle = low + (high - low) / 2
            guard let event = try event(middle) else { throw JournalError.corrupt("event #\(middle) is missing") }
            if event.timestamp < time { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
