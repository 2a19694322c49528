/// Where each field of a full version-1 record (journal format §1) lies in the record's bytes: the layout
/// walked once, strictly, without copying a field.
///
/// This is the one reading of the record's layout. ``EventEnvelope/init(record:)`` copies the event's
/// fields out of the ranges it finds; ``EventEnvelope/typeAndTime(ofRecord:)`` (a writer catching up on
/// other processes' events, which needs two fields and must not chain over a record that is not an event)
/// reads only the type and time; ``StoredRecord`` shortens a record with the fixed offsets below. So a
/// record is refused for the same reason, the first wrong field, whichever of them reads it.
struct RecordLayout {
    /// The fields at fixed offsets: the domain prefix, then these.
    static let sequenceOffset = EventEnvelope.domainPrefix.count
    static let timeOffset = sequenceOffset + 8
    static let previousHashOffset = timeOffset + 8
    static let journalIDOffset = previousHashOffset + 32
    /// The type name's length (one byte); the name follows it.
    static let typeLengthOffset = journalIDOffset + 16

    let sequence: UInt64
    let timestamp: LedgerTimestamp
    let previousHash: Range<Int>
    let journalID: Range<Int>
    let type: EventType
    let schemaVersion: UInt16
    let keyID: Range<Int>
    let payload: Range<Int>
    let signature: Range<Int>

    /// Walks `record`'s layout.
    /// - Throws: ``EnvelopeDecodingError`` naming the first field that is wrong.
    init(of record: [UInt8]) throws(EnvelopeDecodingError) {
        var reader = ByteReader(record)
        guard let prefix = reader.range(count: EventEnvelope.domainPrefix.count),
            record[prefix].elementsEqual(EventEnvelope.domainPrefix)
        else { throw .unknownFormat }
        guard let sequence = reader.readUInt64(), let micros = reader.readInt64(), let previousHash = reader.range(count: 32)
        else { throw .truncated("sequence, time or previous hash") }
        guard let journalID = reader.range(count: 16) else { throw .truncated("journal id") }
        guard let typeLength = reader.readUInt8(), let typeName = reader.range(count: Int(typeLength)) else {
            throw .truncated("type")
        }
        guard let type = EventType(String(decoding: record[typeName], as: UTF8.self)), type.name.utf8.count == typeName.count
        else { throw .invalidType }
        guard let schemaVersion = reader.readUInt16(), let keyID = reader.range(count: 8) else {
            throw .truncated("schema version or key id")
        }
        guard let payloadLength = reader.readUInt32() else { throw .truncated("payload length") }
        guard Int(payloadLength) <= EventEnvelope.maximumPayloadSize, let payload = reader.range(count: Int(payloadLength))
        else { throw .truncated("payload") }
        // A compact schema version declares a compact payload (journal format §17), whose first byte is a tag.
        guard PayloadEncoding.payload(startingWith: payload.isEmpty ? nil : record[payload.lowerBound], fits: schemaVersion)
        else { throw .payloadNotCompact }
        guard let signature = reader.range(count: 64) else { throw .truncated("signature") }
        guard reader.remaining == 0 else { throw .trailingBytes(reader.remaining) }
        self.sequence = sequence
        self.timestamp = LedgerTimestamp(microsecondsSinceEpoch: micros)
        self.previousHash = previousHash
        self.journalID = journalID
        self.type = type
        self.schemaVersion = schemaVersion
        self.keyID = keyID
        self.payload = payload
        self.signature = signature
    }
}
