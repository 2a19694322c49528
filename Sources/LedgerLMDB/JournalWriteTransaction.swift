import LedgerCore

/// An event to append: its type, payload schema version and payload. The journal adds the sequence
/// number, time, chain hash, key id and signature.
public struct EventDraft: Sendable, Equatable {
    public var type: EventType
    public var schemaVersion: UInt16
    public var payload: [UInt8]

    public init(type: EventType, schemaVersion: UInt16 = 1, payload: [UInt8]) {
        self.type = type
        self.schemaVersion = schemaVersion
        self.payload = payload
    }

    /// A draft whose payload is `value` encoded with ``PayloadCoding``.
    public init(type: EventType, schemaVersion: UInt16 = 1, encoding value: some Encodable) throws {
        self.init(type: type, schemaVersion: schemaVersion, payload: try PayloadCoding.encode(value))
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
    var signingKey: Ed25519SigningKey
    let timestamp: LedgerTimestamp

    /// Chains `draft` after the cursor, returning the unsigned envelope.
    mutating func chain(_ draft: EventDraft) throws(JournalError) -> EventEnvelope {
        guard draft.payload.count <= EventEnvelope.maximumPayloadSize else {
            throw .invalidEvent("payload of \(draft.payload.count) bytes exceeds \(EventEnvelope.maximumPayloadSize)")
        }
        let envelope = EventEnvelope(
            sequence: nextSequence, timestamp: timestamp, type: draft.type, schemaVersion: draft.schemaVersion,
            keyID: signingKey.keyID, previousHash: lastHash, payload: draft.payload)
        lastHash = envelope.eventHash
        nextSequence += 1
        return envelope
    }
}

/// What a ``Journal/transact(_:)`` body works with: it appends events and reads and writes projection
/// tables, all in the one LMDB write transaction that makes them durable together.
///
/// The body runs on the journal's writer thread, inside a nested transaction of the batch: if it throws,
/// its events and projection changes are discarded and the rest of the batch is unaffected. It may be
/// run again if the batch has to be retried (after the map grew), so it must not have side effects
/// outside this transaction.
public struct JournalWriteTransaction {
    let transaction: LMDBTransaction
    let layout: JournalLayout
    var cursor: ChainCursor
    var appended: [EventEnvelope] = []
    var signers: [Ed25519SigningKey] = []

    /// The time every event of this batch is stamped with: the journal's clock, never earlier than the
    /// previous event.
    public var timestamp: LedgerTimestamp { cursor.timestamp }

    /// The sequence number the next appended event will get.
    public var nextSequence: UInt64 { cursor.nextSequence }

    /// Appends an event; returns where it stands. It becomes durable when the batch commits.
    @discardableResult
    public mutating func append(_ draft: EventDraft) throws -> AppendedEvent {
        let envelope = try cursor.chain(draft)
        appended.append(envelope)
        signers.append(cursor.signingKey)
        return AppendedEvent(sequence: envelope.sequence, timestamp: envelope.timestamp, eventHash: cursor.lastHash)
    }

    /// Read-write access to projection table `name` (declared in ``Journal/Configuration/projections``).
    public func projection(_ name: String) throws -> ProjectionTable {
        ProjectionTable(transaction: transaction, database: try layout.projection(name))
    }

    /// A committed event (events appended in the current batch are not readable yet).
    public func event(_ sequence: UInt64) throws -> EventEnvelope? {
        try transaction.get(sequence.bigEndianBytes, in: layout.events).map { try EventEnvelope(record: $0) }
    }

    mutating func rotate(to newKey: Ed25519SigningKey, journalID: String) throws {
        let payload = KeyRotationPayload(journalID: journalID, previousKeyID: cursor.signingKey.keyID, newKey: newKey)
        let rotation = try append(EventDraft(type: .keyRotated, encoding: payload))
        cursor.signingKey = newKey
        try transaction.put(newKey.publicKey.bytes, for: JournalLayout.MetaKey.activeKey, in: layout.meta)
        try transaction.put(newKey.publicKey.bytes, for: JournalLayout.MetaKey.keyHistory(rotation.sequence), in: layout.meta)
    }
}
