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

/// How AuthLedger's own payloads and projection values are encoded and read.
///
/// Two encodings, told apart by the first byte (a compact value starts with a tag below 0x20, JSON text
/// that this project writes never does): JSON through ``CanonicalJSONEncoder`` (members sorted, no
/// whitespace, no escaped slashes), which every payload was written in before 2026-12-04 and the
/// journal's own events (genesis, keys, archival) still are, and ``CompactCoding``, which authorization
/// events are written in since (``PayloadEncoding``, journal format §17). ``decode(_:from:)`` reads
/// either. Verification never re-encodes: it checks the stored bytes. Releases before 2026-12 wrote JSON
/// with Foundation's `JSONEncoder` (`.sortedKeys`), whose member order can differ; values written by
/// different releases are compared through ``canonical(_:)``.
public enum PayloadCoding {
    /// The canonical JSON text of `value`.
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        try CanonicalJSONEncoder().encode(value)
    }

    /// Decodes a payload written compact or as JSON text (`JSONNodeParser`), through the one decoder both share.
    /// - Throws: ``CompactDecodingError`` or ``JSONParseError`` when the bytes are not a value of their
    ///   encoding, `DecodingError` when the value does not have the shape of a `T`.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        if isCompact(bytes) { return try CompactCoding.decode(type, from: bytes) }
        return try CompactNodeDecoder.decode(type, from: JSONNodeParser.parse(bytes), codingPath: [])
    }

    /// Decodes a compact payload as ``decode(_:from:)`` does, each top-level member named in `members`
    /// whose value is a sealed value (an object with the member `sealed` equal to 1) read as the string
    /// `marker` instead: how events are read without the key to open them (every rebuild), with no pass
    /// over the bytes of its own. JSON text is decoded as it is.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], markingSealed members: Set<String>, as marker: String) throws -> T {
        guard isCompact(bytes) else { return try decode(type, from: bytes) }
        let node = try CompactReader.value(of: bytes, markingSealed: members, as: marker)
        return try CompactNodeDecoder.decode(type, from: node, codingPath: [])
    }

    /// Whether `bytes` are a compact value rather than JSON text (by their first byte).
    public static func isCompact(_ bytes: [UInt8]) -> Bool {
        guard let first = bytes.first else { return false }
        return isCompact(firstByte: first)
    }

    /// Whether a value whose first byte is `first` is compact: a compact value starts with a tag, below
    /// any character JSON text starts with.
    public static func isCompact(firstByte first: UInt8) -> Bool { first < 0x20 }

    /// The canonical JSON text of a stored value, for what reads values as JSON (opening sealed values,
    /// showing, exporting): JSON as it is, compact values converted.
    /// - Throws: ``CompactDecodingError`` when compact bytes are not a canonical compact value.
    public static func json(_ bytes: [UInt8]) throws -> [UInt8] {
        guard isCompact(bytes) else { return bytes }
        return try encode(try CompactCoding.decode(JSONValue.self, from: bytes))
    }

    /// `bytes` as this release encodes the same JSON value, so that values written by different
    /// releases compare equal when they mean the same; a compact value as the JSON of the same value;
    /// other bytes are returned as they are.
    public static func canonical(_ bytes: [UInt8]) -> [UInt8] {
        if isCompact(bytes), let json = try? json(bytes) { return json }
        guard let first = bytes.first, first == UInt8(ascii: "{") || first == UInt8(ascii: "[") || first == UInt8(ascii: "\""),
            let value = try? decode(JSONValue.self, from: bytes), let encoded = try? encode(value)
        else { return bytes }
        return encoded
    }
}

/// The encoding an event's payload is written in (journal format §17): ``json`` by every release before
/// 2026-12-04, ``compact`` for authorization events since. The event's schema version says which: the
/// compact encoding sets its top bit (``compactSchemaFlag``), the other 15 bits naming the payload's
/// members as before, so `auth.code.issued` version 2 in JSON is version `0x8002` compact, with the same
/// members.
public enum PayloadEncoding: Sendable, Equatable {
    case json
    case compact

    /// The bit of a schema version that says the payload is compact.
    public static let compactSchemaFlag: UInt16 = 0x8000

    /// The encoding of `payload`, by its first byte.
    public static func of(_ payload: [UInt8]) -> PayloadEncoding {
        PayloadCoding.isCompact(payload) ? .compact : .json
    }

    /// The encoding a schema version names.
    public static func of(schemaVersion: UInt16) -> PayloadEncoding {
        schemaVersion & compactSchemaFlag != 0 ? .compact : .json
    }

    /// `version` (the payload's members) as the schema version of a payload in this encoding.
    public func schemaVersion(_ version: UInt16) -> UInt16 {
        self == .compact ? version | Self.compactSchemaFlag : version
    }

    /// `value` in this encoding.
    public func encode(_ value: some Encodable) throws -> [UInt8] {
        try write(CanonicalJSONEncoder.node(of: value, codingPath: []))
    }

    /// `value`, which encodes as an object, with `members` added to it (a member of the same name
    /// replaced), in this encoding: one pass, where adding to encoded bytes would decode them again.
    /// - Throws: `EncodingError` when `value` does not encode as an object.
    public func encode(_ value: some Encodable, adding members: [(name: String, value: any Encodable)]) throws -> [UInt8] {
        let node = try CanonicalJSONEncoder.node(of: value, codingPath: [])
        guard !members.isEmpty else { return try write(node) }
        guard case .object(let box) = node else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "members added to a value that is not an object"))
        }
        func memberNode(_ member: some Encodable) throws -> JSONNode { try CanonicalJSONEncoder.node(of: member, codingPath: []) }
        for member in members { box.members.append((member.name, try memberNode(member.value))) }
        return try write(node)
    }

    /// Whether `payload` is in the encoding `schemaVersion` declares (journal format §17): a version with
    /// the compact flag needs a compact payload; any bytes are the payload of a version without it (JSON,
    /// or an embedding application's own).
    public static func payload(_ payload: [UInt8], fits schemaVersion: UInt16) -> Bool {
        self.payload(startingWith: payload.first, fits: schemaVersion)
    }

    /// ``payload(_:fits:)`` for a payload known by its first byte (`nil`: it is empty), read in place.
    static func payload(startingWith first: UInt8?, fits schemaVersion: UInt16) -> Bool {
        guard of(schemaVersion: schemaVersion) == .compact else { return true }
        return first.map(PayloadCoding.isCompact(firstByte:)) ?? false
    }

    /// The bytes of `node` in this encoding.
    private func write(_ node: JSONNode) throws -> [UInt8] {
        switch self {
        case .json:
            var output: [UInt8] = []
            try node.write(to: &output)
            return output
        case .compact:
            return try CompactWriter.bytes(of: node)
        }
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
        try PayloadCoding.decode(type, from: bytes)
    }

    /// Whether `bytes` are a compact value rather than JSON text (by their first byte).
    public static func isCompact(_ bytes: [UInt8]) -> Bool { PayloadCoding.isCompact(bytes) }

    /// The canonical JSON of a stored value, for what reads values as JSON (opening sealed values,
    /// comparing, showing): JSON as it is, compact values converted.
    public static func json(_ bytes: [UInt8]) throws -> [UInt8] { try PayloadCoding.json(bytes) }
}
