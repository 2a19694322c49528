import Foundation
import LedgerCore
import Testing
@testable import LedgerJournal
@testable import LedgerLMDB

/// Tampering with a closed journal's real LMDB file, as an attacker with file access would, is found by
/// `JournalReader.verify(trust:witnessed:)`, which names the first affected sequence number and what is
/// wrong with it.
///
/// Every journal here has the genesis event at #1, then 20 events with markers "evt-001"..."evt-020" at
/// #2...#21. Signatures cover an event's content; its place (sequence, time, previous hash) is bound by the
/// hash chain and by the checkpoint the writer signs with every commit. So the batching matters:
/// - one batch (the default): checkpoints at #1 and #21, and each record is written to `data.mdb` exactly
///   once. LMDB copies pages on write, so events committed over several transactions leave stale copies in
///   free pages, and a byte flip by plain file I/O could hit a copy nothing reads; every such flip below is
///   followed by a check that the stored record itself changed.
/// - batches of 5: checkpoints at #1, #6, #11, #16 and #21, for the tests about what checkpoints prove.
@Suite("Tampering with the journal file is detected")
struct TamperTests {
    @Test("an untouched journal verifies: 21 events with the genesis at #1 and its checkpoints, TOFU and pinned")
    func untouchedJournalVerifies() async throws {
        let temp = TemporaryDirectory("tamper")
        defer { withExtendedLifetime(temp) {} }
        let built = try await buildJournal(temp.journal)

        let report = try requireReport(temp.journal)
        #expect(report.eventCount == 21)
        #expect(report.checkpointsVerified == 2)  // the genesis commit's (#1) and the batch's (#21)
        #expect(report.keyIDs == [built.genesisKey.keyID])
        #expect(report.origin == built.origin)
        #expect(!report.pinned)

        let (firstType, storedRoot) = try JournalReader(directory: temp.journal).read { snapshot in
            (try snapshot.event(1)?.type, try snapshot.rootHash(treeSize: 21))
        }
        #expect(firstType == EventType.genesis)
        #expect(report.rootHash == storedRoot)  // the root recomputed from the records is the stored tree's

        let pinned = try requireReport(temp.journal, trust: .pinned([PinnedKey(built.genesisKey)]))
        #expect(pinned.pinned)
        #expect(pinned.eventCount == 21)
    }

    @Test("a byte flipped in an event's payload in data.mdb fails at that event with a bad signature")
    func byteFlipInPayload() async throws {
        let temp = TemporaryDirectory("tamper")
        defer { withExtendedLifetime(temp) {} }
        _ = try await buildJournal(temp.journal)

        try flipMarkerInDataFile(temp.journal, marker: "evt-007", storedAt: 8)

        let failure = try requireFailure(temp.journal)
        #expect(failure.sequence == 8)
        switch failure.problem {
        case .badSignature: break
        default: Issue.record("expected a bad signature, got: \(failure)")
        }
    }

    @Test("deleting a middle event fails at its sequence number as a missing event")
    func deletedEvent() async throws {
        let temp = TemporaryDirectory("tamper")
        defer { withExtendedLifetime(temp) {} }
        _ = try await buildJournal(temp.journal)

        let deleted: UInt64 = 11
        try withRawLMDB(temp.journal) { transaction, layout in
            let existed = try transaction.delete(deleted.bigEndianBytes, in: layout.events)
            try #require(existed)
        }

        let failure = try requireFailure(temp.journal)
        #expect(failure.sequence == 11)
        switch failure.problem {
        case .missingEvent(let nextStored): #expect(nextStored == 12)
        default: Issue.record("expected a missing event, got: \(failure)")
        }
    }

    @Test("swapping two events' records fails at the lower sequence number as a sequence mismatch")
    func swappedEvents() async throws {
        let temp = TemporaryDirectory("tamper")
        defer { withExtendedLifetime(temp) {} }
        _ = try await buildJournal(temp.journal)

        let (lower, upper): (UInt64, UInt64) = (8, 14)
        try withRawLMDB(temp.journal) { transaction, layout in
            let lowerRecord = try storedRecord(lower, transaction, layout)
            let upperRecord = try storedRecord(upper, transaction, layout)
            try transaction.put(upperRecord, for: lower.bigEndianBytes, in: layout.events)
            try transaction.put(lowerRecord, for: upper.bigEndianBytes, in: layout.events)
        }

        let failure = try requireFailure(temp.journal)
        #expect(failure.sequence == 8)
        switch failure.problem {
        case .sequenceMismatch(let recorded): #expect(recorded == 14)
        default: Issue.record("expected a sequence mismatch, got: \(failure)")
        }
    }

    @Test("swapping two events' shortened records as stored fails at the lower sequence number as a broken chain")
    func swappedShortenedRecords() async throws {
        let temp = TemporaryDirectory("tamper")
        defer { withExtendedLifetime(temp) {} }
        _ = try await buildJournal(temp.journal)

        let (lower, upper): (UInt64, UInt64) = (8, 14)
        try withRawLMDB(temp.journal) { transaction, layout in
            let lowerStored = try #require(try transaction.get(lower.bigEndianBytes, in: layout.events))
            let upperStored = try #require(try transaction.get(upper.bigEndianBytes, in: layout.events))
            #expect(StoredRecord.isShortened(lowerStored) && StoredRecord.isShortened(upperStored))
            try transaction.put(upperStored, for: lower.bigEndianBytes, in: layout.events)
            try transaction.put(lowerStored, for: upper.bigEndianBytes, in: layout.events)
        }

        // A shortened record takes the sequence number of the key it is stored under: moved, it no longer
        // follows the event before it.
        let failure = try requireFailure(temp.journal)
        #expect(failure.sequence == 8)
        switch failure.problem {
        case .brokenChain: break
        default: Issue.record("expected a broken chain, got: \(failure)")
        }
    }

    @Test("a re-linked reorder (positions rewritten) fails at the first event the last good checkpoint does not prove")
    func relinkedReorder() async throws {
        let temp = TemporaryDirectory("tamper")
        defer { withExtendedLifetime(temp) {} }
        _ = try await buildJournal(temp.journal, batchSize: 5)  // checkpoints at 1, 6, 11, 16, 21

        // Swap #8 and #9, then rewrite the unsigned place of every event from #8 on (sequence number and
        // previous hash) so that each one is validly signed and the hash chain is unbroken.
        try withRawLMDB(temp.journal) { transaction, layout in
            var envelopes = try (8...21).map { try EventEnvelope(record: try storedRecord(UInt64($0), transaction, layout)) }
            envelopes.swapAt(0, 1)
            var previous = try EventEnvelope(record: try storedRecord(7, transaction, layout)).eventHash
            for (offset, var envelope) in envelopes.enumerated() {
                envelope.sequence = UInt64(8 + offset)
                envelope.previousHash = previous
                try transaction.put(envelope.record, for: envelope.sequence.bigEndianBytes, in: layout.events)
                previous = envelope.eventHash
            }
        }

        let failure = try requireFailure(temp.journal)
        #expect(failure.sequence == 7)  // #1...#6 are proven by the checkpoint at 6; the one at 11 no longer matches
        switch failure.problem {
        case .checkpointRootMismatch(let source, let treeSize):
            #expect(source == .journalShortened, "stored shortened: signed over the root the verifier computed")
            #expect(treeSize == 11)
        default: Issue.record("expected a checkpoint root mismatch, got: \(failure)")
        }

        // Deleting the checkpoints that no longer match leaves the reordered events proven by none.
        try withRawLMDB(temp.journal) { transaction, layout in
            for size: UInt64 in [11, 16, 21] {
                let existed = try transaction.delete(size.bigEndianBytes, in: layout.checkpoints)
                try #require(existed)
            }
        }
        let uncovered = try requireFailure(temp.journal)
        #expect(uncovered.sequence == 7)
        switch uncovered.problem {
        case .notCoveredByCheckpoint(let journalSize): #expect(journalSize == 21)
        default: Issue.record("expected events not covered by a checkpoint, got: \(uncovered)")
        }
    }

    @Test("an event inserted mid-journal, claiming the journal's key but signed by an attacker, fails there")
    func insertedEventClaimingJournalKey() async throws {
        let temp = TemporaryDirectory("tamper")
        defer { withExtendedLifetime(temp) {} }
        let built = try await buildJournal(temp.journal)

        // Right journal id, key id, sequence, link and time: only the signature can give the forgery away.
        try insertForgedEvent(temp.journal, at: 11, last: 21, claimedKeyID: built.genesisKey.keyID)

        let failure = try requireFailure(temp.journal)
        #expect(failure.sequence == 11)
        switch failure.problem {
        case .badSignature: break
        default: Issue.record("expected a bad signature, got: \(failure)")
        }
    }

    @Test("an event inserted mid-journal under the attacker's own key id fails there as the wrong key")
    func insertedEventUnderAttackerKey() async throws {
        let temp = TemporaryDirectory("tamper")
        defer { withExtendedLifetime(temp) {} }
        let built = try await buildJournal(temp.journal)

        let attacker = try insertForgedEvent(temp.journal, at: 11, last: 21, claimedKeyID: nil)

        let failure = try requireFailure(temp.journal)
        #expect(failure.sequence == 11)
        switch failure.problem {
        case .wrongKey(let expected, let found):
            #expect(expected == built.genesisKey.keyID)
            #expect(found == attacker)
        default: Issue.record("expected the wrong key, got: \(failure)")
        }
    }

    @Test("a tail truncated to a checkpoint, head rewritten, verifies alone but fails against the witness")
    func truncatedTail() async throws {
        let temp = TemporaryDirectory("tamper")
        defer { withExtendedLifetime(temp) {} }
        let log = temp.path + "/witness.log"
        _ = try await buildJournal(temp.journal, batchSize: 5, witness: CheckpointLogFile(path: log))
        let witnessed = try CheckpointLogFile(path: log).read()
        #expect(witnessed.map(\.checkpoint.treeSize) == [1, 21])

        // Drop #17...#21 and the journal's checkpoints beyond #16 (the head is read from the last record).
        let newSize: UInt64 = 16
        try withRawLMDB(temp.journal) { transaction, layout in
            for sequence in (newSize + 1)...21 {
                let existed = try transaction.delete(sequence.bigEndianBytes, in: layout.events)
                try #require(existed)
            }
            var beyond: [[UInt8]] = []
            try transaction.forEach(in: layout.checkpoints) { key, _ in
                if let size = UInt64(bigEndianBytes: key), size > newSize { beyond.append(key) }
                return true
            }
            try #require(beyond == [UInt64(21).bigEndianBytes])
            for key in beyond { try transaction.delete(key, in: layout.checkpoints) }
        }

        // The journal alone is consistent: nothing in it shows what is gone.
        let alone = try requireReport(temp.journal)
        #expect(alone.eventCount == 16)
        #expect(alone.checkpointsVerified == 4)  // 1, 6, 11, 16

        let failure = try requireFailure(temp.journal, witnessed: witnessed.map { ($0, log) })
        #expect(failure.sequence == 17)
        switch failure.problem {
        case .truncated(let checkpointSize, let source, let journalSize):
            #expect(checkpointSize == 21)
            #expect(source == .witness(log))
            #expect(journalSize == 16)
        default: Issue.record("expected truncation, got: \(failure)")
        }
    }

    @Test("a look-alike journal under another key fails pinned verification at #1; TOFU cannot tell")
    func substitutedKey() async throws {
        let original = TemporaryDirectory("tamper-original")
        let forged = TemporaryDirectory("tamper-forged")
        defer { withExtendedLifetime((original, forged)) {} }
        let real = try await buildJournal(original.journal)
        // The attacker cannot re-sign the real journal, so they write a whole new one with the same
        // content under a key of their own.
        let fake = try await buildJournal(forged.journal)
        #expect(fake.genesisKey != real.genesisKey)

        let failure = try requireFailure(forged.journal, trust: .pinned([PinnedKey(real.genesisKey)]))
        #expect(failure.sequence == 1)
        switch failure.problem {
        case .untrustedKeyChain(let keys): #expect(keys == [fake.genesisKey.keyID])
        default: Issue.record("expected an untrusted key chain, got: \(failure)")
        }

        // Trust on first use accepts the forgery: it is a perfectly consistent journal. Only pinning the
        // real key (from `authledger keys export-public`, obtained out of band) tells them apart.
        let tofu = try requireReport(forged.journal)
        #expect(tofu.eventCount == 21)
        #expect(tofu.keyIDs == [fake.genesisKey.keyID])

        let genuine = try requireReport(original.journal, trust: .pinned([PinnedKey(real.genesisKey)]))
        #expect(genuine.pinned)
        #expect(genuine.eventCount == 21)
    }

    @Test("a stored checkpoint whose root hash was changed fails at its size: signature invalid")
    func alteredStoredCheckpoint() async throws {
        let temp = TemporaryDirectory("tamper")
        defer { withExtendedLifetime(temp) {} }
        _ = try await buildJournal(temp.journal)

        let size: UInt64 = 21
        try withRawLMDB(temp.journal) { transaction, layout in
            // Stored shortened; written back as the note's text, over another root.
            let stored = try #require(try transaction.get(size.bigEndianBytes, in: layout.checkpoints), "no checkpoint at \(size)")
            let origin = "authledger/" + String(decoding: try #require(try transaction.get(Array("journal_id".utf8), in: layout.meta)), as: UTF8.self)
            let signed = try StoredCheckpoint.signed(
                expanding: stored, treeSize: size, origin: origin, rootHash: SHA256Digest.hash(Array("another history".utf8)))
            try transaction.put(Array(signed.text.utf8), for: size.bigEndianBytes, in: layout.checkpoints)
        }

        let failure = try requireFailure(temp.journal)
        #expect(failure.sequence == 21)
        switch failure.problem {
        case .checkpointSignatureInvalid(let source): #expect(source == .journal)
        default: Issue.record("expected an invalid checkpoint signature, got: \(failure)")
        }
    }

    @Test("a shortened stored checkpoint whose signature was changed proves nothing: it fails after the last proven event")
    func alteredShortenedCheckpoint() async throws {
        let temp = TemporaryDirectory("tamper")
        defer { withExtendedLifetime(temp) {} }
        _ = try await buildJournal(temp.journal, batchSize: 5)  // checkpoints at 1, 6, 11, 16, 21

        let size: UInt64 = 16
        try withRawLMDB(temp.journal) { transaction, layout in
            var stored = try #require(try transaction.get(size.bigEndianBytes, in: layout.checkpoints), "no checkpoint at \(size)")
            #expect(StoredCheckpoint.isShortened(stored))
            stored[stored.count - 1] ^= 0x01
            try transaction.put(stored, for: size.bigEndianBytes, in: layout.checkpoints)
        }

        let failure = try requireFailure(temp.journal)
        #expect(failure.sequence == 12, "#1…#11 are proven by the checkpoint at 11")
        switch failure.problem {
        case .checkpointRootMismatch(let source, let treeSize):
            #expect(source == .journalShortened)
            #expect(treeSize == 16)
        default: Issue.record("expected a checkpoint that does not hold over the events' root, got: \(failure)")
        }
    }

    @Test("a witnessed checkpoint signed by the real key over another root fails after the last proven event")
    func witnessedCheckpointOverAnotherRoot() async throws {
        let temp = TemporaryDirectory("tamper")
        defer { withExtendedLifetime(temp) {} }
        let built = try await buildJournal(temp.journal, batchSize: 5)  // checkpoints at 1, 6, 11, 16, 21
        let realKey = try JournalKeyFile(path: temp.journal + ".key").load()
        #expect(realKey.publicKey == built.genesisKey)

        // What a witness holds if the history it saw at size 10 was later rewritten by the key holder.
        let forged = Checkpoint(
            origin: built.origin, treeSize: 10, rootHash: SHA256Digest.hash(Array("another history".utf8)),
            timestamp: Journal.systemClock()
        ).signed(with: realKey)
        let log = temp.path + "/witness.log"
        try CheckpointLogFile(path: log).witness(forged)
        let witnessed = try CheckpointLogFile(path: log).read()
        #expect(witnessed == [forged])

        let failure = try requireFailure(temp.journal, witnessed: witnessed.map { ($0, log) })
        #expect(failure.sequence == 7)  // #1...#6 are proven by the journal's checkpoint at 6
        switch failure.problem {
        case .checkpointRootMismatch(let source, let treeSize):
            #expect(source == .witness(log))
            #expect(treeSize == 10)
        default: Issue.record("expected a checkpoint root mismatch, got: \(failure)")
        }
    }

    @Test("a rotated key chain verifies TOFU and pinned to either key; a flipped rotation event fails there")
    func keyRotation() async throws {
        let temp = TemporaryDirectory("tamper")
        defer { withExtendedLifetime(temp) {} }
        let built = try await buildJournal(temp.journal, rotateKeyAfter: 10)
        let rotation = try #require(built.rotationSequence)
        #expect(rotation == 12)
        try #require(built.keys.count == 2)
        let (original, rotated) = (built.keys[0], built.keys[1])
        let rotationType = try JournalReader(directory: temp.journal).read { try $0.event(rotation)?.type }
        #expect(rotationType == EventType.keyRotated)

        let tofu = try requireReport(temp.journal)
        #expect(tofu.eventCount == 22)
        #expect(tofu.keyIDs == [original.keyID, rotated.keyID])
        for key in [original, rotated] {
            let pinned = try requireReport(temp.journal, trust: .pinned([PinnedKey(key)]))
            #expect(pinned.pinned)
            #expect(pinned.eventCount == 22)
        }
        // Pinning is really checked here: an unrelated key is refused.
        let unrelated = try requireFailure(temp.journal, trust: .pinned([PinnedKey(Ed25519SigningKey.generate().publicKey)]))
        #expect(unrelated.sequence == 1)

        // Corrupt the incoming key in the rotation event's stored record.
        try flipByteInStoredEvent(temp.journal, sequence: rotation, after: "\"new_public_key\":\"")

        let failure = try requireFailure(temp.journal)
        #expect(failure.sequence == rotation)
        switch failure.problem {
        case .badSignature: break
        default: Issue.record("expected a bad signature, got: \(failure)")
        }
    }
}

// MARK: - Helpers

private let markerCount = 20

/// "evt-001" ... "evt-020".
/// A retired key that leaks: whatever it signs after its retirement must be refused (issue: key trust in
/// verification). The attacker holds the old key and the journal's files, not the new key.
@Suite("A retired key is trusted only within its tenure")
struct RetiredKeyTests {
    @Test("a checkpoint signed by the retired key after the rotation is refused, in the journal and from a witness")
    func checkpointAfterRetirement() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        for index in 0..<3 { try await journal.append(testDraft(marker(index))) }
        let oldKey = try JournalKeyFile(path: directory.journal + ".key").load()
        _ = try await journal.rotateSigningKey()
        for index in 3..<6 { try await journal.append(testDraft(marker(index))) }
        await journal.close()
        let report = try requireReport(directory.journal)
        #expect(report.tenures.count == 2)
        let rotation = try #require(report.tenures.first?.last)
        #expect(report.tenures == [KeyTenure(first: 1, last: rotation), KeyTenure(first: rotation + 1)])

        // The latest checkpoint's body, re-signed by the retired key: same root, same size, wrong signer.
        let genuine = try #require(try JournalReader(directory: directory.journal).read { try $0.latestCheckpoint() })
        #expect(genuine.checkpoint.treeSize > rotation)
        let forged = genuine.checkpoint.signed(with: oldKey)
        let fromWitness = try requireFailure(directory.journal, witnessed: [(forged, "witness.log")])
        #expect(fromWitness.sequence == genuine.checkpoint.treeSize)
        #expect(fromWitness.problem == .checkpointSignedOutsideTenure(source: .witness("witness.log"), key: oldKey.keyID))
        // Stored in the journal instead of the genuine one.
        try withRawLMDB(directory.journal) { transaction, layout in
            try transaction.put(Array(forged.text.utf8), for: genuine.checkpoint.treeSize.bigEndianBytes, in: layout.checkpoints)
        }
        let stored = try requireFailure(directory.journal)
        #expect(stored.problem == .checkpointSignedOutsideTenure(source: .journal, key: oldKey.keyID))
        // A checkpoint from before the rotation, by the old key, is still good.
        #expect(KeyTenure(first: 1, last: rotation).allowsCheckpoint(size: rotation))
    }

    @Test("a history rewritten by the retired key, never rotating, is refused against pinned tenures; a bare pin cannot tell")
    func rewrittenHistory() async throws {
        let directory = TemporaryDirectory()
        var journal = try openJournal(directory.journal)
        for index in 0..<3 { try await journal.append(testDraft(marker(index))) }
        await journal.close()
        // The attacker's copy of the journal and of the old key, taken before the rotation.
        let forgedDirectory = TemporaryDirectory("forged")
        try FileManager.default.removeItem(atPath: forgedDirectory.path)
        try FileManager.default.copyItem(atPath: directory.path, toPath: forgedDirectory.path)
        journal = try openJournal(directory.journal)
        _ = try await journal.rotateSigningKey()
        for index in 3..<6 { try await journal.append(testDraft(marker(index))) }
        await journal.close()
        let genuine = try requireReport(directory.journal)
        let origin = try #require(genuine.origin)
        let pins = zip(genuine.keys, genuine.tenures).map { PinnedKey(NoteVerifierKey(name: origin, publicKey: $0), tenure: $1) }
        let rotation = try #require(genuine.tenures[0].last)

        // Cut short where the old key's tenure ended (the rotation gone): the pins say the journal reached further.
        let truncated = try requireFailure(forgedDirectory.journal, trust: .pinned(pins))
        guard case .endsBeforePinnedTenure(_, let reached) = truncated.problem else {
            Issue.record("expected the journal to be found cut short, got \(truncated)")
            return
        }
        #expect(reached == rotation)
        #expect(truncated.sequence == rotation)
        // The old key goes on signing, as if it had never been retired.
        let forgedJournal = try openJournal(forgedDirectory.journal)
        for index in 0..<6 { try await forgedJournal.append(testDraft("forged-\(index)")) }
        await forgedJournal.close()
        #expect(try requireReport(directory.journal, trust: .pinned(pins)).eventCount == genuine.eventCount, "the genuine journal verifies")
        let refused = try requireFailure(forgedDirectory.journal, trust: .pinned(pins))
        #expect(refused.sequence == rotation + 1)
        #expect(refused.problem == .outsidePinnedTenure(genuine.keys[0].keyID))
        // Pinning only the current key (with its tenure) refuses it too: the old key is not pinned before #rotation+1.
        #expect(try requireFailure(forgedDirectory.journal, trust: .pinned([pins[1]])).sequence == 1)
        // Pin files of earlier releases (keys without tenures) cannot tell; that is why tenures are exported now.
        _ = try requireReport(forgedDirectory.journal, trust: .pinned(pins.map { PinnedKey($0.verifierKey) }))
        // The pin file format round-trips.
        #expect(try pins.map { try PinnedKey(parsing: $0.description) } == pins)
        #expect(pins[0].description.hasSuffix(" #1-#\(rotation)"))
        #expect(pins[1].description.hasSuffix(" #\(rotation + 1)-"))
    }
}

private func marker(_ index: Int) -> String {
    let digits = String(index)
    return "evt-" + String(repeating: "0", count: max(0, 3 - digits.count)) + digits
}

/// What a test needs to know about the journal it built .
private struct BuiltJournal {
    /// Signing keys, oldest first: the genesis key, then the key a rotation introduced, if any.
    var keys: [Ed25519PublicKey]
    var origin: String
    var rotationSequence: UInt64?

    var genesisKey: Ed25519PublicKey { keys[0] }
}

/// Creates a journal in `directory` and closes it: genesis at #1, then `evt-001`...`evt-020` appended
/// `batchSize` at a time (each batch one commit, sealed by its own checkpoint).
/// With a witness, a checkpoint is requested after the last append (so the witness holds #1 and #21).
/// With `rotateKeyAfter: n`, the key is rotated right after `evt-n`, in a commit of its own.
private func buildJournal(
    _ directory: String, batchSize: Int = markerCount, witness: CheckpointLogFile? = nil, rotateKeyAfter: Int? = nil
) async throws -> BuiltJournal {
    let keyFile = JournalKeyFile(path: directory + ".key")
    let built: BuiltJournal
    do {
        let journal = try openJournal(directory, witness: witness)
        var keys = [try keyFile.load().publicKey]
        var rotationSequence: UInt64?

        var next = 1
        while next <= markerCount {
            var end = min(next + batchSize - 1, markerCount)
            if let rotateKeyAfter, (next...end).contains(rotateKeyAfter) { end = rotateKeyAfter }
            try await journal.appendAll((next...end).map { testDraft(marker($0)) })
            if end == rotateKeyAfter {
                rotationSequence = journal.head.sequence + 1
                let newKeyID = try await journal.rotateSigningKey()
                let newKey = try keyFile.load().publicKey
                #expect(newKey.keyID == newKeyID)
                keys.append(newKey)
            }
            next = end + 1
        }
        if witness != nil { _ = try await journal.checkpoint() }
        built = BuiltJournal(keys: keys, origin: journal.origin, rotationSequence: rotationSequence)
        await journal.close()
    }
    return built
}

/// Verifies the journal in `directory` and returns the report, recording an issue if it fails.
private func requireReport(
    _ directory: String, trust: JournalVerifier.Trust = .genesisKey, witnessed: [(SignedCheckpoint, String)] = [],
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> VerificationReport {
    let result = try JournalReader(directory: directory).verify(trust: trust, witnessed: witnessed)
    let report: VerificationReport? = if case .success(let report) = result { report } else { nil }
    return try #require(report, "expected the journal to verify, got: \(result)", sourceLocation: sourceLocation)
}

/// Verifies the journal in `directory` and returns the failure, recording an issue if it verifies.
private func requireFailure(
    _ directory: String, trust: JournalVerifier.Trust = .genesisKey, witnessed: [(SignedCheckpoint, String)] = [],
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> VerificationFailure {
    let result = try JournalReader(directory: directory).verify(trust: trust, witnessed: witnessed)
    let failure: VerificationFailure? = if case .failure(let failure) = result { failure } else { nil }
    return try #require(failure, "expected verification to fail, but it passed: \(result)", sourceLocation: sourceLocation)
}

/// The record stored under `sequence`, in full (expanded when it is stored shortened: an attacker may
/// write either form); fails the test if there is none.
private func storedRecord(_ sequence: UInt64, _ transaction: any StorageWriteTransaction, _ layout: JournalLayout) throws -> [UInt8] {
    let record = try layout.record(sequence, in: transaction)
    return try #require(record, "event #\(sequence) is not stored")
}

/// Flips one bit of the first byte after `marker` in the record stored under `sequence` (raw LMDB).
private func flipByteInStoredEvent(_ directory: String, sequence: UInt64, after marker: String) throws {
    try withRawLMDB(directory) { transaction, layout in
        var record = try storedRecord(sequence, transaction, layout)
        let range = try #require(record.firstRange(of: Array(marker.utf8)), "\(marker) is not in event #\(sequence)")
        record[range.upperBound] ^= 0x01
        try transaction.put(record, for: sequence.bigEndianBytes, in: layout.events)
    }
}

/// Inserts a forged event at `position`, moving the events `position...last` up by one, as an attacker
/// without the journal's key would: right journal id, sequence number, link to the event before and time,
/// but signed by a fresh key of the attacker's. The forged event claims `claimedKeyID`, or the attacker's
/// own key id when it is `nil`.
/// - Returns: the attacker's key id.
@discardableResult
private func insertForgedEvent(_ directory: String, at position: UInt64, last: UInt64, claimedKeyID: KeyID?) throws -> KeyID {
    let attacker = Ed25519SigningKey.generate()
    try withRawLMDB(directory) { transaction, layout in
        for sequence in (position...last).reversed() {
            try transaction.put(
                try storedRecord(sequence, transaction, layout), for: (sequence + 1).bigEndianBytes, in: layout.events)
        }
        let previous = try EventEnvelope(record: try storedRecord(position - 1, transaction, layout))
        let content = EventContent(
            journalID: previous.content.journalID, type: "test.event", schemaVersion: 1,
            keyID: claimedKeyID ?? attacker.keyID, payload: Array(#"{"marker":"forged"}"#.utf8))
        let forged = EventEnvelope(
            sequence: position, timestamp: previous.timestamp, previousHash: previous.eventHash, content: content,
            signature: attacker.signature(for: content.signingBytes))
        try transaction.put(forged.record, for: position.bigEndianBytes, in: layout.events)
    }
    return attacker.keyID
}
