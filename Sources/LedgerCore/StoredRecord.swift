/// How a record is kept in the `events` table: in full, or **shortened** — without the parts the store
/// knows anyway (journal format §6).
///
/// A record (``EventEnvelope/record``) repeats in every event what is the same for all of them: the
/// 20-byte domain prefix and the 16-byte journal id. It also holds its own sequence number, which is the
/// key it is stored under, its event type as text, and its payload's length. Together that is about 65
/// of an authorization event's 180 bytes of envelope. The shortened form leaves them out:
///
/// | field | size |
/// |---|---|
/// | form tag ``shortenedTag`` (`0x01`; a full record starts with `A`, `0x41`) | 1 |
/// | time | 8 |
/// | previous hash | 32 |
/// | type: its position in ``typeNames`` (1…), or `0x00`, its length and its name | 1, or 2 + length |
/// | schema version | 2 |
/// | key id | 8 |
/// | payload | the rest, up to the signature |
/// | signature | 64 |
///
/// It stands for exactly one record: the one with the sequence number it is stored under and the
/// journal's id, its other fields as written (``record(expanding:sequence:journalID:)``). What is signed,
/// hashed into the chain and the Merkle tree, exported and verified is always that record; the shortened
/// form is only how the store keeps it. Every record but the genesis (whose journal id is what the others
/// are expanded with) is stored shortened since 2026-12-05; journals written before hold full records,
/// and a journal may hold both.
public enum StoredRecord {
    /// The first byte of a shortened record.
    public static let shortenedTag: UInt8 = 0x01

    /// The event types a shortened record names by their position (from 1): AuthLedger's own. Frozen: a
    /// name is never removed or moved, new ones are only appended (stored records name them by
    /// position). Other types are written out.
    public static let typeNames: [String] = [
        "ledger.genesis", "ledger.key.rotated", "ledger.key.added", "ledger.key.removed", "ledger.archived",
        "auth.authorize.requested", "auth.authorize.decided", "auth.code.issued", "auth.token.issued",
        "auth.interaction.opened", "auth.login.succeeded", "auth.login.failed", "auth.consent.granted",
        "auth.consent.denied", "auth.consent.revoked", "auth.organization.chosen", "auth.invitation.accepted",
        "auth.logout", "auth.logout.decided", "auth.logout.backchannel", "auth.token.rejected", "auth.code.replayed",
        "auth.token.revoked", "auth.token.introspected", "auth.refresh.issued", "auth.refresh.family.revoked",
        "auth.token_keys.rotated", "auth.token_keys.published", "auth.projections.pruned",
        "auth.client_credentials.decided", "auth.client_assertion.used", "auth.par.pushed",
        "privacy.subject.erased", "privacy.retention.applied",
        "config.tenant.set", "config.api.set", "config.connection.set", "config.client.set", "config.user.set",
        "config.organization.set", "config.organization.member.added", "config.invitation.set",
        "config.retention.set", "config.client_grant.set",
    ]

    private static let typeCodes: [String: UInt8] = Dictionary(
        uniqueKeysWithValues: typeNames.enumerated().map { ($0.element, UInt8($0.offset + 1)) })

    /// Whether `stored` is a shortened record (else it is stored in full).
    public static func isShortened(_ stored: [UInt8]) -> Bool { stored.first == shortenedTag }

    /// The shortened form of `record`, a valid full record (as ``EventEnvelope/record`` writes it).
    public static func shortened(_ record: [UInt8]) -> [UInt8] {
        let typeLength = Int(record[RecordLayout.typeLengthOffset])
        let typeStart = RecordLayout.typeLengthOffset + 1
        let afterType = typeStart + typeLength
        let payloadStart = afterType + 2 + 8 + 4
        var stored: [UInt8] = []
        stored.reserveCapacity(record.count - payloadStart + 1 + 8 + 32 + 2 + 8 + 2 + typeLength)
        stored.append(shortenedTag)
        stored.append(contentsOf: record[RecordLayout.timeOffset..<RecordLayout.journalIDOffset])  // time and previous hash
        if let code = typeCodes[String(decoding: record[typeStart..<afterType], as: UTF8.self)] {
            stored.append(code)
        } else {
            stored.append(0)
            stored.append(contentsOf: record[RecordLayout.typeLengthOffset..<afterType])
        }
        stored.append(contentsOf: record[afterType..<afterType + 10])  // schema version and key id
        stored.append(contentsOf: record[payloadStart...])  // payload and signature
        return stored
    }

    /// The types of ``typeNames``, parsed once.
    private static let types: [EventType] = typeNames.map { EventType($0)! }

    /// The fields a shortened record keeps, read once for both of its readers (the event, the record).
    private struct Fields {
        var micros: Int64
        var previous: [UInt8]
        /// The type's position in ``typeNames``, or 0 when its name is written out in `name`.
        var code: UInt8
        var name: [UInt8]
        var schemaVersion: UInt16
        var keyID: [UInt8]
        var payload: [UInt8]
        var signature: [UInt8]

        /// The type's name as the full record writes it.
        var typeBytes: [UInt8] { code == 0 ? name : Array(typeNames[Int(code) - 1].utf8) }

        /// Checks the shortened form only: cut short, a position beyond the list, a listed name written out.
        init(_ stored: [UInt8]) throws(EnvelopeDecodingError) {
            var reader = ByteReader(stored)
            _ = reader.readUInt8()
            guard let micros = reader.readInt64(), let previous = reader.read(count: 32) else { throw .truncated("time or previous hash") }
            guard let code = reader.readUInt8() else { throw .truncated("type") }
            if code == 0 {
                guard let length = reader.readUInt8(), let name = reader.read(count: Int(length)) else { throw .truncated("type") }
                guard typeCodes[String(decoding: name, as: UTF8.self)] == nil else { throw .typeWrittenOut }
                self.name = name
            } else {
                guard Int(code) <= typeNames.count else { throw .invalidType }
                self.name = []
            }
            guard let schemaVersion = reader.readUInt16(), let keyID = reader.read(count: 8) else {
                throw .truncated("schema version or key id")
            }
            guard reader.remaining >= 64 else { throw .truncated("signature") }
            let payloadLength = reader.remaining - 64
            guard payloadLength <= EventEnvelope.maximumPayloadSize, let payload = reader.read(count: payloadLength),
                let signature = reader.read(count: 64)
            else { throw .truncated("payload") }
            (self.micros, self.previous, self.code, self.schemaVersion, self.keyID, self.payload, self.signature) =
                (micros, previous, code, schemaVersion, keyID, payload, signature)
        }
    }

    /// The event that `stored` stands for, read as ``record(expanding:sequence:journalID:)`` and
    /// ``EventEnvelope/init(record:)`` would read it — the same envelope, the same refusals — without
    /// making the full record first: readers that need the event but not its hash (a rebuild, a replay)
    /// take it from here.
    public static func envelope(expanding stored: [UInt8], sequence: UInt64, journalID: [UInt8]) throws(EnvelopeDecodingError) -> EventEnvelope {
        guard isShortened(stored) else { return try EventEnvelope(record: stored) }
        precondition(journalID.count == 16, "a journal id is 16 bytes")
        let fields = try Fields(stored)
        let type: EventType
        if fields.code == 0 {
            // As the full record's decoding checks a type it reads as text.
            guard let parsed = EventType(String(decoding: fields.name, as: UTF8.self)), parsed.name.utf8.count == fields.name.count else {
                throw .invalidType
            }
            type = parsed
        } else {
            type = types[Int(fields.code) - 1]
        }
        guard PayloadEncoding.payload(fields.payload, fits: fields.schemaVersion) else { throw .payloadNotCompact }
        return EventEnvelope(
            sequence: sequence, timestamp: LedgerTimestamp(microsecondsSinceEpoch: fields.micros),
            previousHash: SHA256Digest(unchecked: fields.previous),
            content: EventContent(
                journalID: journalID, type: type, schemaVersion: fields.schemaVersion, keyID: KeyID(bytes: fields.keyID)!,
                payload: fields.payload),
            signature: fields.signature)
    }

    /// The full record that `stored` stands for, stored under `sequence` in the journal whose id is
    /// `journalID` (16 bytes): `stored` itself when it is a full record. Checks the shortened form only;
    /// what it expands to is decoded by ``EventEnvelope/init(record:)`` as any record is.
    /// - Throws: ``EnvelopeDecodingError`` when the shortened form is cut short, names a type by a position
    ///   beyond ``typeNames``, or writes out a name that has one.
    public static func record(expanding stored: [UInt8], sequence: UInt64, journalID: [UInt8]) throws(EnvelopeDecodingError) -> [UInt8] {
        guard isShortened(stored) else { return stored }
        precondition(journalID.count == 16, "a journal id is 16 bytes")
        let fields = try Fields(stored)
        let type = fields.typeBytes
        var writer = ByteWriter(capacity: stored.count + 60 + type.count)
        writer.write(EventEnvelope.domainPrefix)
        writer.write(sequence)
        writer.write(fields.micros)
        writer.write(fields.previous)
        writer.write(journalID)
        writer.write(UInt8(type.count))
        writer.write(type)
        writer.write(fields.schemaVersion)
        writer.write(fields.keyID)
        writer.write(UInt32(fields.payload.count))
        writer.write(fields.payload)
        writer.write(fields.signature)
        return writer.bytes
    }
}
