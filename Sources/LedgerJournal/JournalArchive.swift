import LedgerCore

/// Archival: moving a journal's oldest events out to an archive of their own, while the journal keeps
/// verifying from the cut (see docs/journal-format.md, "Archives").
///
/// An archive is a journal too — the same tables, holding events `first...cut` and the checkpoints and
/// Merkle nodes over them — so the tools that verify and read a journal read an archive. What the live
/// journal keeps of the archived events is what verification needs to go on from the cut: the verified
/// state after them (``VerifiedPrefix``), the signed checkpoint at the cut, the Merkle nodes of the tree's
/// frontier there, the key history, and the projections as the archived events left them.
///
/// The steps, each safe to crash in: ``JournalSnapshot/writeArchive(through:to:)`` writes the archive
/// (the live journal is untouched; run again, it is written again); ``Journal/recordArchive(prefix:projections:)``
/// stores the cut and appends `ledger.archived`, in one commit (from then on the journal's events start
/// after the cut); ``Journal/removeArchivedEvents(batch:)`` removes the archived bodies in bounded commits
/// (until it has finished, readers and the verifier skip what is left of them).
extension JournalSnapshot {
    /// The largest size of a signed checkpoint after the journal's first event and before `sequence`:
    /// where an archive of the events before `sequence` can end (the live journal keeps that checkpoint
    /// to verify from). `nil` when there is none.
    public func archiveCut(before sequence: UInt64) throws -> UInt64? {
        let first = try firstSequence
        guard sequence > first else { return nil }
        var cut: UInt64?
        try transaction.forEach(in: layout.checkpoints, from: first.bigEndianBytes) { key, _ in
            guard let size = UInt64(bigEndianBytes: key), size < sequence else { return false }
            cut = size
            return true
        }
        return cut
    }
}

/// What ``JournalSnapshot/writeArchive(through:to:)`` wrote.
public struct ArchiveReport: Sendable, Equatable {
    /// The first and last event of the archive.
    public var first: UInt64
    public var last: UInt64
    /// Entries written, over every table.
    public var entries: Int
}

extension JournalSnapshot {
    /// Writes events `first...cut` of this journal — with their checkpoints, Merkle nodes, key history, and
    /// the prefix and projections it starts from if its own oldest events were archived before — into the
    /// empty store `destination`, in one transaction: a journal of its own that verifies as this one does,
    /// up to `cut`. The data subjects' keys are not copied: an erasure after archival still reaches what
    /// the archive holds sealed.
    /// - Throws: ``JournalError/directory(path:reason:)`` when `destination` already holds events;
    ///   ``JournalError/invalidEvent(_:)`` when `cut` is not the size of a checkpoint after the first event.
    public func writeArchive(through cut: UInt64, to destination: any JournalStorage) throws -> ArchiveReport {
        let target = try JournalLayout.open(in: destination, projections: [], create: true, subjectKeys: false)
        let transaction = try destination.beginWrite()
        var committed = false
        defer { if !committed { transaction.abort() } }
        try transaction.lockJournal()
        guard try transaction.last(in: target.events) == nil, try transaction.last(in: target.meta) == nil else {
            throw JournalError.directory(path: destination.location, reason: "already holds a journal; write an archive only into an empty one")
        }
        let report: ArchiveReport = try { (snapshot: JournalSnapshot) in
            let first = try snapshot.firstSequence
            let base = first - 1
            guard cut >= first, try snapshot.transaction.get(cut.bigEndianBytes, in: layout.checkpoints) != nil else {
                throw JournalError.invalidEvent("#\(cut) is not the size of a checkpoint after #\(base): an archive ends at a checkpoint")
            }
            var entries = 0
            func copy(_ from: StorageTable, _ to: StorageTable, start: [UInt8]? = nil, while keep: ([UInt8]) -> Bool = { _ in true }) throws {
                try snapshot.transaction.forEach(in: from, from: start) { key, value in
                    guard keep(key) else { return false }
                    try transaction.put(value, for: key, in: to, append: true)
                    entries += 1
                    return true
                }
            }
            try copy(layout.events, target.events, start: first.bigEndianBytes) { (UInt64(bigEndianBytes: $0) ?? .max) <= cut }
            // The checkpoint at the base too: the archive resumes from it as the journal did.
            try copy(layout.checkpoints, target.checkpoints, start: base.bigEndianBytes) { (UInt64(bigEndianBytes: $0) ?? .max) <= cut }
            // Every stored node over leaves before the cut (the first 8 bytes of a key: its last leaf's index).
            try copy(layout.merkle, target.merkle) { (UInt64(bigEndianBytes: $0.prefix(8)) ?? .max) < cut }
            try copy(layout.meta, target.meta)
            if let from = layout.archivedProjections, let to = target.archivedProjections { try copy(from, to) }
            return ArchiveReport(first: first, last: cut, entries: entries)
        }(self)
        committed = true
        try transaction.commit()
        return report
    }
}

/// `ledger.archived`: the journal's events up to ``through`` were moved to an archive.
public struct ArchivedPayload: Codable, Sendable, Equatable {
    /// The last archived event; the journal's events now start after it.
    public var through: UInt64
    /// The Merkle root over events `1...through` (the signed checkpoint at `through` has it too).
    public var rootHash: String
    /// SHA-256 of the last archived event's record, hex.
    public var lastEventHash: String
    /// SHA-256 of the projections as the archived events left them (``ArchivedProjections/digest(_:)``), hex.
    public var projectionsHash: String

    enum CodingKeys: String, CodingKey {
        case through
        case rootHash = "root_hash", lastEventHash = "last_event_hash", projectionsHash = "projections_sha256"
    }

    public init(through: UInt64, rootHash: String, lastEventHash: String, projectionsHash: String) {
        self.through = through
        self.rootHash = rootHash
        self.lastEventHash = lastEventHash
        self.projectionsHash = projectionsHash
    }
}

/// The projections as archived events left them: projection name → entries (key, value), each in key order.
public enum ArchivedProjections {
    public typealias Tables = [String: [([UInt8], [UInt8])]]

    /// SHA-256 over every entry, projections by name, entries in key order, each as name, key and value
    /// with 8-byte big-endian lengths before them.
    public static func digest(_ tables: Tables) -> SHA256Digest {
        var bytes: [UInt8] = []
        func field(_ value: [UInt8]) {
            bytes += UInt64(value.count).bigEndianBytes
            bytes += value
        }
        for name in tables.keys.sorted() {
            for (key, value) in tables[name]!.sorted(by: { $0.0.lexicographicallyPrecedes($1.0) }) {
                field(Array(name.utf8))
                field(key)
                field(value)
            }
        }
        return SHA256Digest.hash(bytes)
    }

    /// The tables with every value as this release encodes it (`PayloadCoding.canonical(_:)`), for
    /// comparing projections that different releases wrote.
    public static func canonical(_ tables: Tables) -> Tables {
        tables.mapValues { entries in entries.map { ($0.0, PayloadCoding.canonical($0.1)) } }
    }
}

extension EventType {
    /// `ledger.archived`: events up to a cut were moved to an archive (``ArchivedPayload``).
    public static let archived: EventType = "ledger.archived"
}

extension Journal {
    /// Stores the cut — `prefix`, the verified state after the archived events, and `projections`, the
    /// projections as they left them — and appends `ledger.archived`, in one commit. From then on the
    /// journal's events start after `prefix.size` and it verifies from there.
    /// - Throws: ``JournalError/invalidEvent(_:)`` when the prefix does not end after the journal's current
    ///   first event, at one of its checkpoints, with the hash of the event stored there.
    @discardableResult
    public func recordArchive(prefix: VerifiedPrefix, projections: ArchivedProjections.Tables) async throws -> AppendedEvent {
        let prefixBytes = try PayloadCoding.encode(prefix)
        return try await transact { transaction in
            let layout = transaction.layout
            let store = transaction.transaction
            let first = (try layout.archivePrefix(in: store)?.size ?? 0) + 1
            guard prefix.size >= first, let root = prefix.rootHash,
                try store.get(prefix.size.bigEndianBytes, in: layout.checkpoints) != nil,
                let record = try layout.record(prefix.size, in: store), SHA256Digest.hash(record) == prefix.lastHash
            else {
                throw JournalError.invalidEvent("the archive does not end at a checkpoint of this journal after #\(first - 1)")
            }
            guard let table = layout.archivedProjections else { throw JournalError.readOnly }
            try store.removeAll(in: table)
            for name in projections.keys.sorted() {
                for (key, value) in projections[name]! {
                    try store.put(value, for: Array(name.utf8) + [0] + key, in: table, append: false)
                }
            }
            try store.put(prefixBytes, for: JournalLayout.MetaKey.archivePrefix, in: layout.meta)
            try layout.storeFrontierNodes(at: prefix.size, in: store)
            let payload = ArchivedPayload(
                through: prefix.size, rootHash: root.hex, lastEventHash: prefix.lastHash.hex,
                // Over the values as canonical JSON, whatever encoding the tables store (projection values
                // are compact since 2026-12-04), so that the digest means the same in every release.
                projectionsHash: ArchivedProjections.digest(ArchivedProjections.canonical(projections)).hex)
            return try transaction.append(EventDraft(type: .archived, encoding: payload))
        }
    }

    /// Removes what is left of the archived events — their records, their checkpoints but the one at the
    /// cut, the Merkle nodes that are not on the tree's frontier at the cut — at most `batch` entries per
    /// commit, until none is left. Returns how many entries were removed.
    @discardableResult
    public func removeArchivedEvents(batch: Int = 10_000) async throws -> Int {
        var removed = 0
        while true {
            let count = try await transact { transaction in
                try transaction.removeArchived(limit: max(1, batch))
            }
            removed += count
            if count == 0 { return removed }
        }
    }
}

extension JournalLayout {
    /// The keys of the Merkle tree's frontier at `cut` — the perfect subtrees that inclusion proofs of
    /// later events, and the writer, still need once the events up to `cut` are gone — each stored: those
    /// below the levels the writer stores are computed from the events and stored now, while the events
    /// are there (and found, not computed again, by later calls).
    @discardableResult
    func storeFrontierNodes(at cut: UInt64, in transaction: any StorageWriteTransaction) throws -> Set<[UInt8]> {
        var frontier: Set<[UInt8]> = []
        var start: UInt64 = 0
        let nodes = StoredMerkleNodes(transaction: transaction, layout: self)
        for level in stride(from: 63, through: 0, by: -1) where cut & (UInt64(1) << UInt64(level)) != 0 {
            let index = start >> UInt64(level)
            let key = JournalLayout.merkleKey(level: level, index: index)
            frontier.insert(key)
            if !JournalLayout.storesMerkleNode(level: level), try transaction.get(key, in: merkle) == nil {
                try transaction.put(try nodes.perfectSubtreeHash(level: level, index: index).bytes, for: key, in: merkle, append: false)
            }
            start += UInt64(1) << UInt64(level)
        }
        return frontier
    }

    /// The entries of projection `name` in `archived_projections`, in key order, until `body` returns false.
    func archivedProjection(_ name: String, in transaction: any StorageReadTransaction, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        guard let table = archivedProjections else { return }
        let prefix = Array(name.utf8) + [0]
        try transaction.forEach(in: table, from: prefix) { key, value in
            guard key.starts(with: prefix) else { return false }
            return try body(Array(key.dropFirst(prefix.count)), value)
        }
    }
}

extension JournalWriteTransaction {
    /// The verified state after the archived events, when the journal's oldest events were archived.
    public func archivedPrefix() throws -> VerifiedPrefix? {
        try layout.archivePrefix(in: transaction)
    }

    /// The entries of projection `name` as the archived events left them (none when nothing was archived).
    public func archivedProjection(_ name: String, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        try layout.archivedProjection(name, in: transaction, body)
    }

    /// Removes at most `limit` entries left of the archived events (see ``Journal/removeArchivedEvents(batch:)``).
    func removeArchived(limit: Int) throws -> Int {
        guard let prefix = try layout.archivePrefix(in: transaction) else { return 0 }
        let cut = prefix.size
        let frontier = try layout.storeFrontierNodes(at: cut, in: transaction)
        var doomed: [([UInt8], StorageTable)] = []
        func collect(_ table: StorageTable, while belongs: ([UInt8]) -> Bool) throws {
            guard doomed.count < limit else { return }
            try transaction.forEach(in: table, from: nil) { key, _ in
                guard belongs(key) else { return false }
                doomed.append((key, table))
                return doomed.count < limit
            }
        }
        try collect(layout.events) { (UInt64(bigEndianBytes: $0) ?? .max) <= cut }
        try collect(layout.checkpoints) { (UInt64(bigEndianBytes: $0) ?? .max) < cut }
        // Nodes are in order of their last leaf; frontier nodes are kept (skipped, not collected).
        var merkle: [[UInt8]] = []
        if doomed.count < limit {
            try transaction.forEach(in: layout.merkle, from: nil) { key, _ in
                guard (UInt64(bigEndianBytes: key.prefix(8)) ?? .max) < cut else { return false }
                if !frontier.contains(key) { merkle.append(key) }
                return doomed.count + merkle.count < limit
            }
        }
        for (key, table) in doomed { try transaction.delete(key, in: table) }
        for key in merkle { try transaction.delete(key, in: layout.merkle) }
        return doomed.count + merkle.count
    }
}
