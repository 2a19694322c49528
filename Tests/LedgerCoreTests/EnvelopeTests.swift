import Foundation
import Testing

@testable import LedgerCore

@Suite("Event envelope: canonical encoding and signatures")
struct EnvelopeTests {
    static let key = Ed25519SigningKey(seed: Array(repeating: 7, count: 32))!
    static let journalID = Array(0..<16 as Range<UInt8>)

    static func sample(sequence: UInt64 = 42, payload: String = #"{"user":"alice"}"#) -> EventEnvelope {
        let content = EventContent(
            journalID: journalID, type: "auth.code.issued", schemaVersion: 3, keyID: key.keyID, payload: Array(payload.utf8))
        return EventEnvelope(
            sequence: sequence, timestamp: LedgerTimestamp(microsecondsSinceEpoch: 1_795_000_000_123_456),
            previousHash: SHA256Digest(bytes: Array(repeating: 0xab, count: 32))!, content: content,
            signature: content.signature(with: key))
    }

    @Test("the record layout is exactly the documented one")
    func documentedLayout() throws {
        let envelope = Self.sample()
        let record = envelope.record
        var expected: [UInt8] = Array("AuthLedger/event/v1\n".utf8)
        expected += [0, 0, 0, 0, 0, 0, 0, 42]
        expected += UInt64(1_795_000_000_123_456).bigEndianBytes
        expected += Array(repeating: 0xab, count: 32)
        expected += Self.journalID
        expected += [16] + Array("auth.code.issued".utf8)
        expected += [0, 3]
        expected += Self.key.keyID.bytes
        expected += [0, 0, 0, 16] + Array(#"{"user":"alice"}"#.utf8)
        #expect(Array(record.prefix(expected.count)) == expected)
        #expect(record.count == expected.count + 64)
        #expect(Array(record.suffix(64)) == envelope.signature)
        // The signature covers the prefix and the content only.
        let content = Array(expected.dropFirst(20 + 48))
        #expect(envelope.content.signingBytes == Array("AuthLedger/event/v1\n".utf8) + content)
        #expect(Self.key.publicKey.isValidSignature(envelope.signature, for: envelope.content.signingBytes))
    }

    @Test("encoding is deterministic and decoding gives the same envelope back")
    func roundTrip() throws {
        let envelope = Self.sample()
        #expect(envelope.record == Self.sample().record)
        #expect(envelope.signature == Self.sample().signature, "Ed25519 signatures are deterministic")
        let decoded = try EventEnvelope(record: envelope.record)
        #expect(decoded == envelope)
        #expect(decoded.eventHash == SHA256Digest.hash(envelope.record))
    }

    enum Mutation: String, CaseIterable {
        case badPrefix, trailingByte, missingSignatureByte, cutInHeader, empty

        func apply(_ record: [UInt8]) -> [UInt8] {
            switch self {
            case .badPrefix: [UInt8(ascii: "X")] + record.dropFirst()
            case .trailingByte: record + [0]
            case .missingSignatureByte: Array(record.dropLast())
            case .cutInHeader: Array(record.prefix(30))
            case .empty: []
            }
        }
    }

    @Test("decoding is strict", arguments: Mutation.allCases)
    func strictDecoding(_ mutation: Mutation) {
        #expect(throws: EnvelopeDecodingError.self) { try EventEnvelope(record: mutation.apply(Self.sample().record)) }
    }

    @Test("a payload length that runs past the record is rejected, not trusted")
    func lyingLength() throws {
        var record = Self.sample().record
        let lengthOffset = 20 + 48 + 16 + 17 + 2 + 8
        record[lengthOffset] = 0x7f
        #expect(throws: EnvelopeDecodingError.self) { try EventEnvelope(record: record) }
    }

    @Test("a record cut short anywhere is refused naming the field it ends in; a damaged field by its fault")
    func refusalNamesTheField() {
        func refusal(_ bytes: [UInt8]) -> EnvelopeDecodingError? {
            do throws(EnvelopeDecodingError) {
                _ = try EventEnvelope(record: bytes)
                return nil
            } catch { return error }
        }
        let record = Self.sample().record
        // The fields' ends in the sample (the documented layout, counted here, not taken from the decoder):
        // prefix 20; sequence, time, previous hash 48; journal id 16; the type's length and its 16
        // characters; schema version and key id 10; payload length 4; payload 16; signature 64.
        let ends: [(end: Int, refusal: EnvelopeDecodingError)] = [
            (20, .unknownFormat), (68, .truncated("sequence, time or previous hash")), (84, .truncated("journal id")),
            (101, .truncated("type")), (111, .truncated("schema version or key id")), (115, .truncated("payload length")),
            (131, .truncated("payload")), (195, .truncated("signature")),
        ]
        #expect(record.count == 195)
        for length in 0..<record.count {
            let expected = ends.first { length < $0.end }!.refusal
            #expect(refusal(Array(record.prefix(length))) == expected, "cut at \(length) bytes")
        }
        #expect(refusal(record + [0, 0]) == .trailingBytes(2))
        var wrongPrefix = record
        wrongPrefix[19] = UInt8(ascii: " ")
        #expect(refusal(wrongPrefix) == .unknownFormat)
        var badType = record
        badType[85] = UInt8(ascii: "A")
        #expect(refusal(badType) == .invalidType)
        var compactFlag = record
        compactFlag[101] |= 0x80
        #expect(refusal(compactFlag) == .payloadNotCompact)
        var payloadTooLong = record
        payloadTooLong[111] = 0x7f
        #expect(refusal(payloadTooLong) == .truncated("payload"))
        #expect(refusal(record) == nil)
    }

    @Test("a record's type and time are read without decoding it, as decoding reads them")
    func typeAndTime() throws {
        for envelope in [Self.sample(), Self.sample(sequence: 1, payload: "")] {
            let (type, timestamp) = try EventEnvelope.typeAndTime(ofRecord: envelope.record)
            #expect(type == envelope.type)
            #expect(timestamp == envelope.timestamp)
        }
    }

    @Test("reading a record's type and time refuses every record that decoding refuses, with the same reason")
    func typeAndTimeRefusesAsDecodingDoes() {
        func outcome(_ body: () throws(EnvelopeDecodingError) -> EventType) -> Result<EventType, EnvelopeDecodingError> {
            do throws(EnvelopeDecodingError) { return .success(try body()) } catch { return .failure(error) }
        }
        let record = Self.sample().record
        let typeLengthOffset = 20 + 48 + 16
        var invalidType = record
        invalidType[typeLengthOffset + 1] = UInt8(ascii: "A")
        var typeTooLong = record
        typeTooLong[typeLengthOffset] = 0xff
        var lyingLength = record
        lyingLength[typeLengthOffset + 1 + 16 + 2 + 8] = 0x7f
        // A compact schema version (the top bit) over a JSON payload.
        var notCompact = record
        notCompact[typeLengthOffset + 1 + 16] |= 0x80
        var cases = [invalidType, typeTooLong, lyingLength, notCompact, record + [0], [UInt8(ascii: "X")] + record.dropFirst()]
        // Every truncation, from nothing to the record less its last byte.
        cases += (0..<record.count).map { Array(record.prefix($0)) }
        for bytes in cases {
            let peeked = outcome { () throws(EnvelopeDecodingError) in try EventEnvelope.typeAndTime(ofRecord: bytes).type }
            let decoded = outcome { () throws(EnvelopeDecodingError) in try EventEnvelope(record: bytes).type }
            #expect(peeked == decoded, "\(bytes.count) bytes")
            if case .success = decoded { Issue.record("a damaged record decoded: \(bytes.count) bytes") }
        }
    }

    @Test("changing any content byte breaks the signature; the place is not signed but is hashed")
    func signatureCoversContent() throws {
        let envelope = Self.sample()
        var tampered = envelope
        tampered.content.payload[3] ^= 1
        #expect(!tampered.hasValidSignature(by: Self.key.publicKey))
        var moved = envelope
        moved.sequence += 1
        #expect(moved.hasValidSignature(by: Self.key.publicKey))
        #expect(moved.eventHash != envelope.eventHash)
        let other = Ed25519SigningKey(seed: Array(repeating: 8, count: 32))!
        #expect(!envelope.hasValidSignature(by: other.publicKey))
    }

    @Test("event types are validated")
    func eventTypes() {
        func valid(_ name: String) -> Bool { EventType(name) != nil }
        #expect(valid("auth.code.issued"))
        #expect(valid("a1_b-c"))
        #expect(!valid(""))
        #expect(!valid(".starts-with-dot"))
        #expect(!valid("Upper.Case"))
        #expect(!valid("has space"))
        #expect(!valid(String(repeating: "a", count: 129)))
    }

    @Test("key ids are derived from the public key")
    func keyIDs() {
        let expected = Array(SHA256Digest.hash(Array("AuthLedger/key/v1\n".utf8) + Self.key.publicKey.bytes).bytes.prefix(8))
        #expect(Self.key.keyID.bytes == expected)
        #expect(KeyID(hex: Self.key.keyID.hex) == Self.key.keyID)
    }
}

@Suite("Timestamps in RFC 3339")
struct TimestampTests {
    @Test("formats UTC with microseconds", arguments: [
        (Int64(0), "1970-01-01T00:00:00.000000Z"),
        (Int64(1_795_000_000_123_456), "2026-11-18T11:06:40.123456Z"),
        (Int64(-1), "1969-12-31T23:59:59.999999Z"),
        (Int64(951_782_400_000_000), "2000-02-29T00:00:00.000000Z"),
    ])
    func formats(_ micros: Int64, _ text: String) {
        let time = LedgerTimestamp(microsecondsSinceEpoch: micros)
        #expect(time.rfc3339 == text)
        #expect(LedgerTimestamp(rfc3339: text) == time)
    }

    @Test("20,000 moments from 0001 to 9999 are 27 characters that read back as them, and agree with Foundation's formatter from 1900 to 2199")
    func formatsEveryYear() throws {
        var state: UInt64 = 2026
        let first: Int64 = -62_135_596_800_000_000  // 0001-01-01T00:00:00Z
        let last: Int64 = 253_402_300_799_999_999  // 9999-12-31T23:59:59.999999Z
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        let modern = LedgerTimestamp(rfc3339: "1900-01-01T00:00:00Z")!.microseconds..<LedgerTimestamp(rfc3339: "2200-01-01T00:00:00Z")!.microseconds
        for index in 0..<20_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let micros = index < 2 ? [first, last][index] : first + Int64(state % UInt64(last - first + 1))
            let time = LedgerTimestamp(microsecondsSinceEpoch: micros)
            let text = time.rfc3339
            #expect(text.utf8.count == 27 && text.hasSuffix("Z"), "\(text)")
            #expect(LedgerTimestamp(rfc3339: text) == time, "\(text)")
            if modern.contains(micros) {
                let seconds = micros.floorDiv(1_000_000)
                let fraction = String(micros - seconds * 1_000_000)
                let expected = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))).dropLast()
                    + "." + String(repeating: "0", count: 6 - fraction.count) + fraction + "Z"
                #expect(text == expected)
            }
        }
        // Beyond four digits of year, the year takes the width it needs.
        #expect(LedgerTimestamp(microsecondsSinceEpoch: last + 1).rfc3339 == "10000-01-01T00:00:00.000000Z")
        #expect(LedgerTimestamp(microsecondsSinceEpoch: first - 1).rfc3339 == "0000-12-31T23:59:59.999999Z")
        // The ends of the range (where a saturating addition stops) are written, not trapped on.
        #expect(LedgerTimestamp(microsecondsSinceEpoch: .min).rfc3339.hasSuffix(".224192Z"))
        #expect(LedgerTimestamp(microsecondsSinceEpoch: .max).rfc3339.hasSuffix(".775807Z"))
    }

    @Test("parses offsets and short fractions")
    func parses() {
        #expect(LedgerTimestamp(rfc3339: "2026-11-27T12:00:00+01:00")?.rfc3339 == "2026-11-27T11:00:00.000000Z")
        #expect(LedgerTimestamp(rfc3339: "2026-11-27T11:00:00.5Z")?.microseconds == 1_795_777_200_500_000)
        #expect(LedgerTimestamp(rfc3339: "2026-11-27T11:00:00Z")?.microseconds == 1_795_777_200_000_000)
    }

    @Test("rejects what is not RFC 3339", arguments: [
        "", "2026-11-27", "2026-13-01T00:00:00Z", "2026-11-27T25:00:00Z", "2026-11-27T11:00:00", "2026-11-27T11:00:00.Z",
        "2026-11-27T11:00:00Zjunk", "yesterday",
    ])
    func rejects(_ text: String) {
        #expect(LedgerTimestamp(rfc3339: text) == nil)
    }
}
