import LedgerCore

/// An event to append: its type, payload schema version and payload. The journal adds the journal id,
/// key id, signature, sequence number, time and chain hash.
public struct EventDraft: Sendable, Equatable {
    public var type: EventType
    public var schemaVersion: UInt16
    public var payload: [UInt8]

    public init(type: EventType, schemaVersion: UInt16 = 1, payload: [UInt8]) {
        self.type = type
        self.schemaVersion = schemaVersion
        self.payload = payload
    }

    /// A draft whose payload is `value` encoded with `PayloadCoding` (JSON with sorted keys).
    public init(type: EventType, schemaVersion: UInt16 = 1, encoding value: some Encodable) throws {
        self.init(type: type, schemaVersion: schemaVersion, payload: try PayloadCoding.encode(value))
    }
}

/// An event already signed by the caller (``Journal/prepare(_:)``), waiting for its place in the journal.
///
/// Signing is the expensive part of an append; preparing events in the calling task spreads it over
/// every core instead of the writer.
public struct PreparedEvent: Sendable, Equatable {
    public let content: EventContent
    public let signature: [UInt8]

    init(content: EventContent, signature: [UInt8]) {
        self.content = content
        self.signature = signature
    }

    init(draft: EventDraft, journalID: [UInt8], key: Ed25519SigningKey) throws(JournalError) {
        try self.init(draft: draft, journalID: journalID, key: key, keyID: key.keyID)
    }

    /// `keyID` is `key`'s, derived by the caller once for many events.
    init(draft: EventDraft, journalID: [UInt8], key: Ed25519SigningKey, keyID: KeyID) throws(JournalError) {
        guard draft.payload.count <= EventEnvelope.maximumPayloadSize else {
            throw .invalidEvent("payload of \(draft.payload.count) bytes exceeds \(EventEnvelope.maximumPayloadSize)")
        }
        guard PayloadEncoding.payload(draft.payload, fits: draft.schemaVersion) else {
            throw .invalidEvent("schema version \(draft.schemaVersion) declares a compact payload (0x8000) and the payload is not one")
        }
        let content = EventContent(
            journalID: journalID, type: draft.type, schemaVersion: draft.schemaVersion, keyID: keyID,
            payload: draft.payload)
        self.init(content: content, signature: content.signature(with: key))
    }
}

/// An event once it is durable in the journal.
public struct AppendedEvent: Sendable, Equatable {
    public var sequence: UInt64
    public var timestamp: LedgerTimestamp
    public var eventHash: SHA256Digest
}

/// The running end of the hash chain while a batch is assembled on the writer thread.
struct ChainCursor {
    var nextSequence: UInt64
    var lastHash: SHA256Digest
    /// The key that signs what the cursor chains from here on (``sign(with:)`` changes it).
    private(set) var signingKey: Ed25519SigningKey
    /// ``signingKey``'s id, derived once a batch: every event chained is checked against it.
    private(set) var signingKeyID: KeyID
    let journalID: [UInt8]
    let timestamp: LedgerTimestamp

    init(
        nextSequence: UInt64, lastHash: SHA256Digest, signingKey: Ed25519SigningKey, journalID: [UInt8],
        timestamp: LedgerTimestamp
    ) {
        self.nextSequence = nextSequence
        self.lastHash = lastHash
        self.signingKey = signingKey
        self.signingKeyID = signingKey.keyID
        self.journalID = journalID
        self.timestamp = timestamp
    }

    /// Signs what is chained after this with `key` (a rotation in the batch).
    mutating func sign(with key: Ed25519SigningKey) {
        signingKey = key
        signingKeyID = key.keyID
    }

    /// Puts `event` after the cursor. An event prepared under a key that has since been rotated away is
    /// signed again with the active key.
    mutating func chain(_ event: PreparedEvent) throws(JournalError) -> (envelope: EventEnvelope, record: [UInt8]) {
        guard event.content.journalID == journalID else { throw .invalidEvent("prepared for another journal") }
        var content = event.content
        var signature = event.signature
        if content.keyID != signingKeyID {
            content.keyID = signingKeyID
            signature = content.signature(with: signingKey)
        }
        let envelope = EventEnvelope(
            sequence: nextSequence, timestamp: timestamp, previousHash: lastHash, content: content, signature: signature)
        let record = envelope.record
        lastHash = SHA256Digest.hash(record)
        nextSequence += 1
        return (envelope, record)
    }

    mutating func chain(_ draft: EventDraft) throws(JournalError) -> (envelope: EventEnvelope, record: [UInt8]) {
        try chain(PreparedEvent(draft: draft, journalID: journalID, key: signingKey, keyID: signingKeyID))
    }
}

/// What a ``Journal/transact(_:)`` body works with: it appends events and reads and writes projection
/// tables, all in the one write transaction that makes them durable together.
///
/// The body runs on the journal's writer thread, inside a nested transaction of the batch: if it throws,
/// its events and projection changes are discarded and the rest of the batch is unaffected. It may be
/// run again if the batch has to be retried (after the map grew), so it must not have side effects
/// outside this transaction. Keep it short: every other append waits for it. Append events prepared
/// beforehand with ``Journal/prepare(_:)`` so that their signing happens outside the writer.
public struct JournalWriteTransaction {
    let transaction: any StorageWriteTransaction
    let layout: JournalLayout
    var cursor: ChainCursor
    var records: [(sequence: UInt64, record: [UInt8])] = []

    /// The time every event of this batch is stamped with: the journal's clock, never earlier than the
    /// previous event.
    public var timestamp: LedgerTimestamp { cursor.timestamp }

    /// The sequence number the next appended event will get.
    public var nextSequence: UInt64 { cursor.nextSequence }

    /// Appends a prepared event; returns where it stands. It becomes durable when the batch commits.
    @discardableResult
    public mutating func append(_ event: PreparedEvent) throws -> AppendedEvent {
        let (envelope, record) = try cursor.chain(event)
        records.append((envelope.sequence, record))
        return AppendedEvent(sequence: envelope.sequence, timestamp: envelope.timestamp, eventHash: cursor.lastHash)
    }

    /// Appends an event, signing it here on the writer. Prefer appending a ``PreparedEvent`` made
    /// beforehand with ``Journal/prepare(_:)``, so that signing happens outside the writer.
    @discardableResult
    public mutating func append(_ draft: EventDraft) throws -> AppendedEvent {
        try append(try PreparedEvent(draft: draft, journalID: cursor.journalID, key: cursor.signingKey, keyID: cursor.signingKeyID))
    }

    /// Read-write access to projection table `name` (declared in ``Journal/Configuration/projections``).
    public func projection(_ name: String) throws -> ProjectionTable {
        ProjectionTable(transaction: transaction, database: try layout.projection(name))
    }

    /// The state consumer `name` of the journal's events (a log stream) last stored, or `nil`.
    ///
    /// Consumers' state is kept beside the events, in the same store and transaction, but it is not part
    /// of the signed journal: it is neither verified nor rebuilt from the events.
    public func consumerState(_ name: String) throws -> [UInt8]? {
        guard let table = layout.consumers else { return nil }
        return try transaction.get(Array(name.utf8), in: table)
    }

    /// Stores `state` as consumer `name`'s, durably with the batch.
    public func setConsumerState(_ state: [UInt8], for name: String) throws {
        guard let table = layout.consumers else { throw JournalError.readOnly }
        try transaction.put(state, for: Array(name.utf8), in: table, append: false)
    }

    /// A committed event (events appended in the current batch are not readable yet).
    public func event(_ sequence: UInt64) throws -> EventEnvelope? {
        try layout.event(sequence, in: transaction)
    }

    mutating func rotate(to newKey: Ed25519SigningKey, journalID: String) throws {
        let old = cursor.signingKey.publicKey
        let payload = KeyRotationPayload(journalID: journalID, previousKeyID: old.keyID, newKey: newKey)
        let rotation = try append(EventDraft(type: .keyRotated, encoding: payload))
        cursor.sign(with: newKey)
        let meta = layout.meta
        if try transaction.get(JournalLayout.MetaKey.activeKey, in: meta) == old.bytes {
            try transaction.put(newKey.publicKey.bytes, for: JournalLayout.MetaKey.activeKey, in: meta)
        }
        try transaction.delete(JournalLayout.MetaKey.signer(old.keyID), in: meta)
        try transaction.put(newKey.publicKey.bytes, for: JournalLayout.MetaKey.signer(newKey.keyID), in: meta)
        try transaction.put(newKey.publicKey.bytes, for: JournalLayout.MetaKey.keyHistory(rotation.sequence), in: meta)
    }

    /// Appends a `ledger.key.added` event signed by this writer's key, after which `newKey` may sign too.
    mutating func addSigner(_ newKey: Ed25519SigningKey, journalID: String) throws -> UInt64 {
        let signers = try layout.signers(in: transaction)
        guard !signers.contains(where: { $0.keyID == newKey.keyID }) else {
            throw JournalError.invalidEvent("key \(newKey.keyID) already signs this journal")
        }
        // Nor a key the chain ever had (a rotated-away key): verification refuses to bring one back.
        let meta = layout.meta
        var inHistory = false
        try transaction.forEach(in: meta, from: JournalLayout.MetaKey.keyHistoryPrefix) { name, value in
            guard name.starts(with: JournalLayout.MetaKey.keyHistoryPrefix) else { return false }
            inHistory = value == newKey.publicKey.bytes
            return !inHistory
        }
        guard !inHistory else { throw JournalError.invalidEvent("key \(newKey.keyID) already was in this journal's key chain") }
        if try transaction.get(JournalLayout.MetaKey.signer(cursor.signingKey.keyID), in: meta) == nil {
            // A journal from before keys could be added: its one signer is recorded first.
            try transaction.put(cursor.signingKey.publicKey.bytes, for: JournalLayout.MetaKey.signer(cursor.signingKey.keyID), in: meta)
        }
        let payload = KeyAdditionPayload(journalID: journalID, addedBy: cursor.signingKey.keyID, newKey: newKey)
        let addition = try append(EventDraft(type: .keyAdded, encoding: payload))
        try transaction.put(newKey.publicKey.bytes, for: JournalLayout.MetaKey.signer(newKey.keyID), in: meta)
        try transaction.put(newKey.publicKey.bytes, for: JournalLayout.MetaKey.keyHistory(addition.sequence), in: meta)
        return addition.sequence
    }

    /// Appends a `ledger.key.removed` event signed by this writer's key, after which the key `removed`
    /// signs no more. A writer cannot remove its own key (another signer must).
    mutating func removeSigner(_ removed: KeyID) throws -> UInt64 {
        let signers = try layout.signers(in: transaction)
        guard let key = signers.first(where: { $0.keyID == removed }) else {
            throw JournalError.invalidEvent("key \(removed) does not sign this journal")
        }
        guard removed != cursor.signingKey.keyID else {
            throw JournalError.invalidEvent("a key cannot remove itself: remove \(removed) with another signer's key file")
        }
        let meta = layout.meta
        if try transaction.get(JournalLayout.MetaKey.signer(cursor.signingKey.keyID), in: meta) == nil {
            try transaction.put(cursor.signingKey.publicKey.bytes, for: JournalLayout.MetaKey.signer(cursor.signingKey.keyID), in: meta)
        }
        let removal = try append(EventDraft(type: .keyRemoved, encoding: KeyRemovalPayload(removedKeyID: removed, removedBy: cursor.signingKey.keyID)))
        try transaction.delete(JournalLayout.MetaKey.signer(removed), in: meta)
        if try transaction.get(JournalLayout.MetaKey.activeKey, in: meta) == key.bytes {
            try transaction.put(cursor.signingKey.publicKey.bytes, for: JournalLayout.MetaKey.activeKey, in: meta)
        }
        return removal.sequence
    }
}
