/// The part of an event that its Ed25519 signature covers: which journal, what kind of event, which
/// key, and the payload.
///
/// Signing needs nothing from the journal's current state, so callers sign in parallel, on every core,
/// before the journal's single writer puts the event in its place. The place itself (sequence number,
/// time, previous event's hash) is then bound by the hash chain and by the signed checkpoint that the
/// writer commits with every batch (see docs/journal-format.md).
public struct EventContent: Sendable, Equatable {
    /// The journal the event belongs to (16 bytes), so that a signed event cannot be replayed into another.
    public var journalID: [UInt8]
    /// The event's kind.
    public var type: EventType
    /// The version of the payload schema for `type`.
    public var schemaVersion: UInt16
    /// The signing key's identifier.
    public var keyID: KeyID
    /// The event's content, encoded by its producer (JSON for AuthLedger's own events).
    public var payload: [UInt8]

    public init(journalID: [UInt8], type: EventType, schemaVersion: UInt16, keyID: KeyID, payload: [UInt8]) {
        precondition(journalID.count == 16, "a journal id is 16 bytes")
        self.journalID = journalID
        self.type = type
        self.schemaVersion = schemaVersion
        self.keyID = keyID
        self.payload = payload
    }

    /// The canonical encoding of the content (without the domain prefix).
    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 40 + type.name.utf8.count + payload.count)
        write(to: &writer)
        return writer.bytes
    }

    /// What the signature is over: the domain-separation prefix followed by ``encoded``.
    public var signingBytes: [UInt8] {
        var writer = ByteWriter(capacity: EventEnvelope.domainPrefix.count + 40 + type.name.utf8.count + payload.count)
        writer.write(EventEnvelope.domainPrefix)
        write(to: &writer)
        return writer.bytes
    }

    /// Signs the content with `key`, whose id must be ``keyID``.
    ///
    /// The id is checked in debug builds only: deriving it is a SHA-256, and every event is signed
    /// through here by code that took the id from the same key.
    public func signature(with key: Ed25519SigningKey) -> [UInt8] {
        assert(key.keyID == keyID, "signing key does not match the content's key id")
        return key.signature(for: signingBytes)
    }

    func write(to writer: inout ByteWriter) {
        writer.write(journalID)
        writer.write(UInt8(type.name.utf8.count))
        writer.write(type.name.utf8)
        writer.write(schemaVersion)
        writer.write(keyID.bytes)
        writer.write(UInt32(payload.count))
        writer.write(payload)
    }
}

/// One event in the journal: its signed ``EventContent`` and its place — sequence number, time, and the
/// hash of the event before it.
///
/// Its canonical encoding is ``record``, described in docs/journal-format.md: the same envelope always
/// encodes to the same bytes, and decoding is strict, so every record has exactly one meaning. The record
/// is what the hash chain and the Merkle tree are computed over; the store keeps it in full or shortened
/// (``StoredRecord``).
public struct EventEnvelope: Sendable, Equatable {
    /// Position in the journal, starting at 1, without gaps.
    public var sequence: UInt64
    /// When the journal's writer committed the event; never earlier than the previous event's time.
    public var timestamp: LedgerTimestamp
    /// ``eventHash`` of the event before; ``SHA256Digest/zero`` for the first.
    public var previousHash: SHA256Digest
    /// The signed content.
    public var content: EventContent
    /// Ed25519 signature over ``EventContent/signingBytes``.
    public var signature: [UInt8]

    /// The domain-separation prefix of version 1: it starts every record and every signed content.
    public static let domainPrefix = Array("AuthLedger/event/v1\n".utf8)
    /// The largest payload an event may carry (16 MiB).
    public static let maximumPayloadSize = 16 << 20

    public init(
        sequence: UInt64, timestamp: LedgerTimestamp, previousHash: SHA256Digest, content: EventContent,
        signature: [UInt8]
    ) {
        self.sequence = sequence
        self.timestamp = timestamp
        self.previousHash = previousHash
        self.content = content
        self.signature = signature
    }

    public var type: EventType { content.type }
    public var schemaVersion: UInt16 { content.schemaVersion }
    public var keyID: KeyID { content.keyID }
    public var payload: [UInt8] { content.payload }

    /// The stored record: prefix, sequence, time, previous hash, content, signature.
    public var record: [UInt8] {
        var writer = ByteWriter(capacity: 160 + content.payload.count)
        writer.write(Self.domainPrefix)
        writer.write(sequence)
        writer.write(timestamp.microseconds)
        writer.write(previousHash.bytes)
        content.write(to: &writer)
        writer.write(signature)
        return writer.bytes
    }

    /// SHA-256 of ``record``: what the next event's ``previousHash`` must equal.
    public var eventHash: SHA256Digest { SHA256Digest.hash(record) }

    /// Whether the signature is valid for the content under `key`.
    public func hasValidSignature(by key: Ed25519PublicKey) -> Bool {
        key.isValidSignature(signature, for: content.signingBytes)
    }

    /// Decodes a stored record strictly.
    ///
    /// - Throws: ``EnvelopeDecodingError`` naming the first field that is wrong.
    public init(record: [UInt8]) throws(EnvelopeDecodingError) {
        let layout = try RecordLayout(of: record)
        self.init(
            sequence: layout.sequence, timestamp: layout.timestamp,
            previousHash: SHA256Digest(unchecked: Array(record[layout.previousHash])),
            content: EventContent(
                journalID: Array(record[layout.journalID]), type: layout.type, schemaVersion: layout.schemaVersion,
                keyID: KeyID(bytes: Array(record[layout.keyID]))!, payload: Array(record[layout.payload])),
            signature: Array(record[layout.signature]))
    }
}

extension EventEnvelope {
    /// The type and time of the event `record` encodes, after checking its layout as ``init(record:)``
    /// does (the same walk, `RecordLayout`), without decoding it: no copy of its content, payload or
    /// signature. For a writer that catches up on other processes' events, which it hashes in full and
    /// needs only these two of, and must not chain over a record that is not an event.
    ///
    /// - Throws: ``EnvelopeDecodingError`` naming the first field that is wrong, as ``init(record:)``
    ///   would.
    public static func typeAndTime(ofRecord record: [UInt8]) throws(EnvelopeDecodingError) -> (type: EventType, timestamp: LedgerTimestamp) {
        let layout = try RecordLayout(of: record)
        return (layout.type, layout.timestamp)
    }
}

/// Why a stored record is not a valid version-1 envelope.
public enum EnvelopeDecodingError: Error, Equatable, CustomStringConvertible {
    /// It does not start with the version-1 domain prefix.
    case unknownFormat
    /// It ends inside the named field.
    case truncated(String)
    /// The event type is not a valid ``EventType``.
    case invalidType
    /// Bytes follow the signature.
    case trailingBytes(Int)
    /// The schema version declares a compact payload (its top bit set) and the payload is not one.
    case payloadNotCompact
    /// A shortened record (``StoredRecord``) writes out a type name that it must name by its position.
    case typeWrittenOut
    /// A shortened record where the journal id it leaves out is not known yet: before the genesis event,
    /// which is always stored in full.
    case shortenedBeforeGenesis

    public var description: String {
        switch self {
        case .unknownFormat: "record does not start with the AuthLedger/event/v1 prefix"
        case .truncated(let field): "record ends inside its \(field)"
        case .invalidType: "record has an invalid event type"
        case .trailingBytes(let count): "record has \(count) bytes after its signature"
        case .payloadNotCompact: "record's schema version declares a compact payload and its payload is not one"
        case .typeWrittenOut: "shortened record writes out a type name it must name by its position"
        case .shortenedBeforeGenesis: "shortened record before the genesis event, whose journal id it leaves out"
        }
    }
}
