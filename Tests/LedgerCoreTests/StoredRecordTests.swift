import Foundation
import Testing

@testable import LedgerCore

@Suite("Shortened records: what the store keeps of a record, and the one record it stands for")
struct StoredRecordTests {
    static func envelope(type: EventType, sequence: UInt64 = 42, payload: [UInt8] = Array(#"{"user":"alice"}"#.utf8)) -> EventEnvelope {
        let content = EventContent(
            journalID: EnvelopeTests.journalID, type: type, schemaVersion: 3, keyID: EnvelopeTests.key.keyID, payload: payload)
        return EventEnvelope(
            sequence: sequence, timestamp: LedgerTimestamp(microsecondsSinceEpoch: 1_795_000_000_123_456),
            previousHash: SHA256Digest(bytes: Array(repeating: 0xab, count: 32))!, content: content,
            signature: content.signature(with: EnvelopeTests.key))
    }

    @Test("the documented layout: tag, time, previous hash, type by position, schema, key id, payload, signature")
    func documentedLayout() throws {
        let record = Self.envelope(type: "auth.code.issued").record
        let stored = StoredRecord.shortened(record)
        var expected: [UInt8] = [0x01]
        expected += UInt64(1_795_000_000_123_456).bigEndianBytes
        expected += Array(repeating: 0xab, count: 32)
        expected += [UInt8(StoredRecord.typeNames.firstIndex(of: "auth.code.issued")! + 1)]
        expected += [0, 3] + EnvelopeTests.key.keyID.bytes
        expected += Array(#"{"user":"alice"}"#.utf8)
        #expect(Array(stored.prefix(expected.count)) == expected)
        #expect(Array(stored.suffix(64)) == Array(record.suffix(64)))
        #expect(stored.count == expected.count + 64)
        #expect(record.count - stored.count == 20 + 8 + 16 + 17 + 4 - 1 - 1, "prefix, sequence, journal id, type, length")
    }

    @Test("every type, known or written out, and payloads of every size expand back to the very record", arguments: [0, 1, 200, 70_000])
    func roundTrip(payloadSize: Int) throws {
        let payload = (0..<payloadSize).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        for type in StoredRecord.typeNames + ["test.event", "x"] {
            let envelope = Self.envelope(type: EventType(type)!, sequence: 7, payload: payload)
            let stored = StoredRecord.shortened(envelope.record)
            #expect(StoredRecord.isShortened(stored))
            let expanded = try StoredRecord.record(expanding: stored, sequence: 7, journalID: EnvelopeTests.journalID)
            #expect(expanded == envelope.record, "\(type)")
            #expect(try EventEnvelope(record: expanded) == envelope)
            #expect(try StoredRecord.envelope(expanding: stored, sequence: 7, journalID: EnvelopeTests.journalID) == envelope)
        }
        // A full record is its own stored form.
        let full = Self.envelope(type: "auth.code.issued").record
        #expect(!StoredRecord.isShortened(full))
        #expect(try StoredRecord.record(expanding: full, sequence: 1, journalID: EnvelopeTests.journalID) == full)
    }

    @Test("the sequence number and the journal id are the ones it is read with: moved or copied, it stands for another record")
    func place() throws {
        let envelope = Self.envelope(type: "auth.token.issued", sequence: 9)
        let stored = StoredRecord.shortened(envelope.record)
        let moved = try EventEnvelope(record: try StoredRecord.record(expanding: stored, sequence: 10, journalID: EnvelopeTests.journalID))
        #expect(moved.sequence == 10 && moved.eventHash != envelope.eventHash)
        let otherJournal = try EventEnvelope(record: try StoredRecord.record(expanding: stored, sequence: 9, journalID: Array(repeating: 9, count: 16)))
        #expect(!otherJournal.hasValidSignature(by: EnvelopeTests.key.publicKey), "the journal id is signed")
        #expect(envelope.hasValidSignature(by: EnvelopeTests.key.publicKey))
    }

    @Test("cut short, a position beyond the table, a known name written out: refused")
    func refusals() throws {
        let stored = StoredRecord.shortened(Self.envelope(type: "auth.code.issued").record)
        func expand(_ bytes: [UInt8]) throws(EnvelopeDecodingError) -> [UInt8] {
            try StoredRecord.record(expanding: bytes, sequence: 1, journalID: EnvelopeTests.journalID)
        }
        for length in [1, 9, 41, 42, 50, 51 + 63] {
            #expect(throws: EnvelopeDecodingError.self, "\(length) bytes") { try expand(Array(stored.prefix(length))) }
        }
        var beyond = stored
        beyond[41] = UInt8(StoredRecord.typeNames.count + 1)
        #expect(throws: EnvelopeDecodingError.invalidType) { try expand(beyond) }
        let writtenOut = Array(stored.prefix(41)) + [0, 16] + Array("auth.code.issued".utf8) + Array(stored.dropFirst(42))
        #expect(throws: EnvelopeDecodingError.typeWrittenOut) { try expand(writtenOut) }
        // Decoded straight into an event, the same bytes are refused alike: every cut, every damage.
        let damaged = [beyond, writtenOut, Array(stored.prefix(41)) + [0, 1, 0x2E] + Array(stored.dropFirst(42))]
        for bytes in (1..<stored.count).map({ Array(stored.prefix($0)) }) + damaged {
            let viaRecord = Result { () throws(EnvelopeDecodingError) in try EventEnvelope(record: try expand(bytes)) }
            let direct = Result { () throws(EnvelopeDecodingError) in
                try StoredRecord.envelope(expanding: bytes, sequence: 1, journalID: EnvelopeTests.journalID)
            }
            switch (viaRecord, direct) {
            case (.success(let left), .success(let right)): #expect(left == right)
            case (.failure, .failure): break
            default: Issue.record("\(bytes.count) bytes: \(viaRecord) through the record, \(direct) directly")
            }
        }
        // An unknown name written out is what the writer does.
        let unknown = StoredRecord.shortened(Self.envelope(type: "test.event").record)
        #expect(unknown[41] == 0 && unknown[42] == 10)
        #expect(throws: Never.self) { try expand(unknown) }
    }

    @Test("the verifier expands shortened records with the journal id of the genesis it verified, and refuses one before it")
    func verifierRefusesShortenedGenesis() throws {
        var verifier = JournalVerifier(trust: .genesisKey, checkpoints: [])
        let stored = StoredRecord.shortened(Self.envelope(type: "ledger.genesis", sequence: 1).record)
        #expect(throws: VerificationFailure.self) { try verifier.verify(storedKey: 1, record: stored) }
        do {
            try verifier.verify(storedKey: 1, record: stored)
        } catch {
            guard case .malformedRecord(.shortenedBeforeGenesis) = error.problem else {
                Issue.record("expected a shortened record before the genesis, got \(error)")
                return
            }
        }
    }

    @Test("the type table is frozen: names are only ever appended")
    func frozenTable() throws {
        // The first 44 (2026-12-05) are pinned: new names go after them.
        #expect(StoredRecord.typeNames.count >= 44)
        #expect(Set(StoredRecord.typeNames).count == StoredRecord.typeNames.count)
        #expect(StoredRecord.typeNames.allSatisfy { EventType($0) != nil })
        let digest = SHA256Digest.hash(Array(StoredRecord.typeNames.prefix(44).joined(separator: "\n").utf8))
        #expect(Hex.encode(Array(digest.bytes.prefix(8))) == "69afb9ba30436f2f")
        // The journal format lists them, in order.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let format = try String(contentsOf: root.appendingPathComponent("docs/journal-format.md"), encoding: .utf8)
        let documented = try #require(format.components(separatedBy: "<!-- type names -->").dropFirst().first?.components(separatedBy: "\n\n").first)
        let inOrder = documented.split(separator: "`").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        #expect(inOrder == StoredRecord.typeNames)
    }
}
