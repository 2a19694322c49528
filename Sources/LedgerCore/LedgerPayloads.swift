import Foundation

/// Payload of ``EventType/genesis`` (schema version 1), the journal's first event.
///
/// It names the journal and its first signing key; the event is signed by that key.
public struct GenesisPayload: Codable, Sendable, Equatable {
    /// 16 random bytes, hex: the journal's unique identity.
    public var journalID: String
    /// The checkpoint origin and signed-note key name, `authledger/<journalID>`.
    public var origin: String
    /// The first signing key, base64.
    public var publicKey: String
    /// The envelope format, `AuthLedger/event/v1`.
    public var format: String

    enum CodingKeys: String, CodingKey {
        case journalID = "journal_id", origin, publicKey = "public_key", format
    }

    public init(journalID: String, publicKey: Ed25519PublicKey) {
        self.journalID = journalID
        self.origin = "authledger/\(journalID)"
        self.publicKey = Base64.encode(publicKey.bytes)
        self.format = "AuthLedger/event/v1"
    }
}

/// Payload of ``EventType/keyRotated`` (schema version 1). The event is signed by the outgoing key;
/// the payload carries the incoming key's signature over ``statement(journalID:previousKeyID:newKey:)``,
/// so each key of the chain vouches for its neighbour and one pinned key anchors them all.
public struct KeyRotationPayload: Codable, Sendable, Equatable {
    public var previousKeyID: String
    public var newPublicKey: String
    public var newKeySignature: String

    enum CodingKeys: String, CodingKey {
        case previousKeyID = "previous_key_id", newPublicKey = "new_public_key", newKeySignature = "new_key_signature"
    }

    public init(journalID: String, previousKeyID: KeyID, newKey: Ed25519SigningKey) {
        self.previousKeyID = previousKeyID.hex
        self.newPublicKey = Base64.encode(newKey.publicKey.bytes)
        self.newKeySignature = Base64.encode(
            newKey.signature(for: Self.statement(journalID: journalID, previousKeyID: previousKeyID, newKey: newKey.publicKey)))
    }

    /// `"AuthLedger/key-rotation/v1\n" || journal id (UTF-8 hex) || "\n" || previous key id (8 bytes) || new public key`.
    public static func statement(journalID: String, previousKeyID: KeyID, newKey: Ed25519PublicKey) -> [UInt8] {
        Array("AuthLedger/key-rotation/v1\n".utf8) + Array(journalID.utf8) + [0x0a] + previousKeyID.bytes + newKey.bytes
    }
}

/// Payload of ``EventType/keyAdded`` (schema version 1): a key joins the journal's signers beside the
/// ones already there, as when a cluster node with a key of its own joins. The event is signed by a key
/// already among the signers (`addedBy`); the payload carries the new key's signature over
/// ``statement(journalID:addedBy:newKey:)``, so the new key is vouched for by a signer and proves it is
/// held, and a key pinned anywhere in the chain anchors it.
public struct KeyAdditionPayload: Codable, Sendable, Equatable {
    public var addedBy: String
    public var newPublicKey: String
    public var newKeySignature: String

    enum CodingKeys: String, CodingKey {
        case addedBy = "added_by", newPublicKey = "new_public_key", newKeySignature = "new_key_signature"
    }

    public init(journalID: String, addedBy: KeyID, newKey: Ed25519SigningKey) {
        self.addedBy = addedBy.hex
        self.newPublicKey = Base64.encode(newKey.publicKey.bytes)
        self.newKeySignature = Base64.encode(
            newKey.signature(for: Self.statement(journalID: journalID, addedBy: addedBy, newKey: newKey.publicKey)))
    }

    /// `"AuthLedger/key-addition/v1\n" || journal id (UTF-8 hex) || "\n" || signer's key id (8 bytes) || new public key`.
    public static func statement(journalID: String, addedBy: KeyID, newKey: Ed25519PublicKey) -> [UInt8] {
        Array("AuthLedger/key-addition/v1\n".utf8) + Array(journalID.utf8) + [0x0a] + addedBy.bytes + newKey.bytes
    }
}

/// Payload of ``EventType/keyRemoved`` (schema version 1): a key stops signing the journal (a cluster
/// node decommissioned, or its key file lost). The event is signed by another signer, `removedBy`; the
/// last signer cannot be removed. Events signed by the removed key after this one are refused.
public struct KeyRemovalPayload: Codable, Sendable, Equatable {
    public var removedKeyID: String
    public var removedBy: String

    enum CodingKeys: String, CodingKey {
        case removedKeyID = "removed_key_id", removedBy = "removed_by"
    }

    public init(removedKeyID: KeyID, removedBy: KeyID) {
        self.removedKeyID = removedKeyID.hex
        self.removedBy = removedBy.hex
    }
}

/// The JSON encoding of AuthLedger's own payloads and projection values: ``CanonicalJSONEncoder``
/// (members sorted, no whitespace, no escaped slashes), so that the same value gives the same bytes.
/// Verification never re-encodes: it checks the stored bytes. Releases before 2026-12 wrote with
/// Foundation's `JSONEncoder` (`.sortedKeys`), whose member order can differ; values written by
/// different releases are compared through ``canonical(_:)``.
public enum PayloadCoding {
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        try CanonicalJSONEncoder().encode(value)
    }

    /// Decodes JSON text (`JSONNodeParser`, then the decoder compact values share).
    /// - Throws: ``JSONParseError`` when the bytes are not JSON, `DecodingError` when the value does not have
    ///   the shape of a `T`.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try CompactNodeDecoder.decode(type, from: JSONNodeParser.parse(bytes), codingPath: [])
    }

    /// `bytes` as this release encodes the same JSON value, so that values written by different
    /// releases compare equal when they mean the same; a compact value (``ProjectionCoding``) as the JSON
    /// of the same value; other bytes are returned as they are.
    public static func canonical(_ bytes: [UInt8]) -> [UInt8] {
        if ProjectionCoding.isCompact(bytes), let json = try? ProjectionCoding.json(bytes) { return json }
        guard let first = bytes.first, first == UInt8(ascii: "{") || first == UInt8(ascii: "[") || first == UInt8(ascii: "\""),
            let value = try? decode(JSONValue.self, from: bytes), let encoded = try? encode(value)
        else { return bytes }
        return encoded
    }
}

/// The encoding of projection values — what the journal's tables beside the events hold, folded from the
/// events: ``CompactCoding`` since 2026-12-04, JSON (``PayloadCoding``) before (docs/journal-format.md §16).
///
/// Compact values start with a tag below 0x20 and JSON text never does, so a table may hold both (values
/// written by earlier releases stay readable without a rebuild) and ``decode(_:from:)`` reads either.
/// Projections are not signed and are rebuilt from the events at will, so their encoding can change
/// between releases; event payloads keep theirs for good.
public enum ProjectionCoding {
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        try CompactCoding.encode(value)
    }

    /// Decodes a value written compact, or as JSON by an earlier release.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        if isCompact(bytes) { return try CompactCoding.decode(type, from: bytes) }
        return try PayloadCoding.decode(type, from: bytes)
    }

    /// Whether `bytes` are a compact value rather than JSON text (by their first byte).
    public static func isCompact(_ bytes: [UInt8]) -> Bool {
        guard let first = bytes.first else { return false }
        return first < 0x20
    }

    /// The canonical JSON of a stored value, for what reads values as JSON (opening sealed values,
    /// comparing, showing): JSON as it is, compact values converted.
    public static func json(_ bytes: [UInt8]) throws -> [UInt8] {
        guard isCompact(bytes) else { return bytes }
        return try PayloadCoding.encode(try CompactCoding.decode(JSONValue.self, from: bytes))
    }
}
