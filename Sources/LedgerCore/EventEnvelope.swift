/// One event in the journal: what happened (type, schema version, payload), where it stands
/// (sequence number, previous event's hash), when, and who signed it.
///
/// The signed bytes are ``signingBytes``, a canonical encoding described in docs/journal-format.md:
/// the same envelope always encodes to the same bytes, and decoding is strict, so every stored
/// record has exactly one meaning.
public struct EventEnvelope: Sendable, Equatable {
    /// Position in the journal, starting at 1, without gaps.
    public var sequence: UInt64
    /// When the journal's writer stamped the event; never earlier than the previous event's time.
    public var timestamp: LedgerTimestamp
    /// The event's kind.
    public var type: EventType
    /// The version of the payload schema for `type`.
    public var schemaVersion: UInt16
    /// The signing key's identifier.
    public var keyID: KeyID
    /// ``eventHash`` of the event before; ``SHA256Digest/zero`` for the first.
    public var previousHash: SHA256Digest
    /// The event's content, encoded by its producer (JSON for AuthLedger's own events).
    public var payload: [UInt8]
    /// Ed25519 signature over ``signingBytes``; empty until signed.
    public var signature: [UInt8]

    /// The domain-separation prefix that starts the signed bytes of every version-1 event.
    public static let domainPrefix = Array("AuthLedger/event/v1\n".utf8)
    /// The largest payload an event may carry (16 MiB).
    public static let maximumPayloadSize = 16 << 20

    public init(
        sequence: UInt64, timestamp: LedgerTimestamp, type: EventType, schemaVersion: UInt16, keyID: KeyID,
        previousHash: SHA256Digest, payload: [UInt8], signature: [UInt8] = []
    ) {
        self.sequence = sequence
        self.timestamp = timestamp
        self.type = type
        self.schemaVersion = schemaVersion
        self.keyID = keyID
        self.previousHash = previousHash
        self.payload = payload
        self.signature = signature
    }

    /// The canonical version-1 encoding that the signature covers.
    public var signingBytes: [UInt8] {
        let typeBytes = Array(type.name.utf8)
        var writer = ByteWriter(capacity: Self.domainPrefix.count + 64 + typeBytes.count + payload.count)
        writer.write(Self.domainPrefix)
        writer.write(sequence)
        writer.write(timestamp.microseconds)
        writer.write(UInt8(typeBytes.count))
        writer.write(typeBytes)
        writer.write(schemaVersion)
        writer.write(keyID.bytes)
        writer.write(previousHash.bytes)
        writer.write(UInt32(payload.count))
        writer.write(payload)
        return writer.bytes
    }

    /// The hash that the next event's ``previousHash`` must equal: SHA-256 of ``signingBytes``.
    public var eventHash: SHA256Digest { SHA256Digest.hash(signingBytes) }

    /// The stored form: ``signingBytes`` followed by the 64-byte signature. This is also the
    /// Merkle tree's leaf data.
    public var record: [UInt8] { signingBytes + signature }

    /// Signs the envelope in place with `key`, whose id must be ``keyID``.
    public mutating func sign(with key: Ed25519SigningKey) {
        precondition(key.keyID == keyID, "signing key does not match the envelope's key id")
        signature = key.signature(for: signingBytes)
    }

    /// Decodes a stored record strictly.
    ///
    /// - Throws: ``EnvelopeDecodingError`` naming the first field that is wrong.
    public init(record: [UInt8]) throws(EnvelopeDecodingError) {
        var reader = ByteReader(record)
        guard reader.read(count: Self.domainPrefix.count) == Self.domainPrefix else { throw .unknownFormat }
        guard let sequence = reader.readUInt64(), let micros = reader.readInt64() else { throw .truncated("header") }
        guard let typeLength = reader.readUInt8(), let typeBytes = reader.read(count: Int(typeLength)) else {
            throw .truncated("type")
        }
        guard let type = EventType(String(decoding: typeBytes, as: UTF8.self)), type.name.utf8.count == typeBytes.count
        else { throw .invalidType }
        guard let schemaVersion = reader.readUInt16(), let keyBytes = reader.read(count: 8),
            let previous = reader.read(count: 32)
        else { throw .truncated("key id or previous hash") }
        guard let payloadLength = reader.readUInt32() else { throw .truncated("payload length") }
        guard Int(payloadLength) <= Self.maximumPayloadSize, let payload = reader.read(count: Int(payloadLength)) else {
            throw .truncated("payload")
        }
        guard let signature = reader.read(count: 64) else { throw .truncated("signature") }
        guard reader.remaining == 0 else { throw .trailingBytes(reader.remaining) }
        self.init(
            sequence: sequence, timestamp: LedgerTimestamp(microsecondsSinceEpoch: micros), type: type,
            schemaVersion: schemaVersion, keyID: KeyID(bytes: keyBytes)!, previousHash: SHA256Digest(unchecked: previous),
            payload: payload, signature: signature)
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

    public var description: String {
        switch self {
        case .unknownFormat: "record does not start with the AuthLedger/event/v1 prefix"
        case .truncated(let field): "record ends inside its \(field)"
        case .invalidType: "record has an invalid event type"
        case .trailingBytes(let count): "record has \(count) bytes after its signature"
        }
    }
}
