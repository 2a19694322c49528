import Testing

@testable import LedgerCore

/// Builds journals in memory the way the writer does, so the verifier can be tested without storage.
private struct LedgerBuilder {
    let journalID = "000102030405060708090a0b0c0d0e0f"
    var key = Ed25519SigningKey(seed: Array(repeating: 1, count: 32))!
    var records: [[UInt8]] = []
    var checkpoints: [SignedCheckpoint] = []
    var lastHash = SHA256Digest.zero
    var tree = MerkleFrontier()
    var time: Int64 = 1_000_000

    init() {
        append(EventDraftLike(type: .genesis, payload: try! PayloadCoding.encode(GenesisPayload(journalID: journalID, publicKey: key.publicKey))))
        seal()
    }

    struct EventDraftLike {
        var type: EventType
        var payload: [UInt8]
    }

    mutating func append(_ draft: EventDraftLike, time override: Int64? = nil) {
        let content = EventContent(
            journalID: Hex.decode(journalID)!, type: draft.type, schemaVersion: 1, keyID: key.keyID, payload: draft.payload)
        time += 1
        let envelope = EventEnvelope(
            sequence: UInt64(records.count + 1), timestamp: LedgerTimestamp(microsecondsSinceEpoch: override ?? time),
            previousHash: lastHash, content: content, signature: content.signature(with: key))
        let record = envelope.record
        records.append(record)
        lastHash = SHA256Digest.hash(record)
        tree.append(MerkleHashing.leafHash(record))
    }

    mutating func append(_ marker: String) {
        append(EventDraftLike(type: "test.event", payload: Array(marker.utf8)))
    }

    mutating func seal() {
        checkpoints.append(
            Checkpoint(origin: "authledger/\(journalID)", treeSize: tree.size, rootHash: tree.root,
                       timestamp: LedgerTimestamp(microsecondsSinceEpoch: time)).signed(with: key))
    }

    mutating func rotate() {
        let newKey = Ed25519SigningKey(seed: Array(repeating: UInt8(records.count + 2), count: 32))!
        let payload = KeyRotationPayload(journalID: journalID, previousKeyID: key.keyID, newKey: newKey)
        append(EventDraftLike(type: .keyRotated, payload: try! PayloadCoding.encode(payload)))
        key = newKey
    }

    func verify(
        trust: JournalVerifier.Trust = .genesisKey, records override: [[UInt8]]? = nil,
        checkpoints extra: [SignedCheckpoint]? = nil
    ) -> Result<VerificationReport, VerificationFailure> {
        var verifier = JournalVerifier(trust: trust, checkpoints: (extra ?? checkpoints).map { ($0, .journal) })
        do throws(VerificationFailure) {
            for (index, record) in (override ?? records).enumerated() {
                try verifier.verify(storedKey: UInt64(index + 1), record: record)
            }
            return .success(try verifier.finish())
        } catch {
            return .failure(error)
        }
    }
}

private func failure(_ result: Result<VerificationReport, VerificationFailure>) -> VerificationFailure? {
    if case .failure(let failure) = result { return failure }
    return nil
}

@Suite("JournalVerifier (pure)")
struct VerifierTests {
    private func sealedLedger(events: Int = 10) -> LedgerBuilder {
        var ledger = LedgerBuilder()
        for index in 0..<events {
            ledger.append("event-\(index)")
            if index % 4 == 3 { ledger.seal() }
        }
        ledger.seal()
        return ledger
    }

    @Test("an intact journal verifies and reports its size, root and keys")
    func intact() throws {
        let ledger = sealedLedger()
        let report = try ledger.verify().get()
        #expect(report.eventCount == 11)
        #expect(report.rootHash == ledger.tree.root)
        #expect(report.checkpointsVerified == ledger.checkpoints.count)
        #expect(report.keyIDs == [ledger.key.keyID])
    }

    @Test("events after the last signed checkpoint are reported as not covered")
    func uncoveredTail() {
        var ledger = sealedLedger()
        ledger.append("unsealed")
        let result = failure(ledger.verify())
        #expect(result?.sequence == 12)
        guard case .notCoveredByCheckpoint = result?.problem else { Issue.record("got \(String(describing: result))"); return }
    }

    @Test("time going backwards is caught at that event")
    func timeBackwards() {
        var ledger = sealedLedger(events: 3)
        ledger.append(LedgerBuilder.EventDraftLike(type: "test.event", payload: [1]), time: 5)
        ledger.seal()
        let result = failure(ledger.verify())
        #expect(result?.sequence == 5)
        guard case .timeWentBackwards = result?.problem else { Issue.record("got \(String(describing: result))"); return }
    }

    @Test("a re-linked reorder is caught by the checkpoint, naming the first event it no longer proves")
    func relinkedReorder() throws {
        let ledger = sealedLedger(events: 8)  // checkpoints at 1, 5, 9
        // The attacker swaps events 6 and 7 and rewrites sequence numbers, times and links (none of which
        // the event signatures cover) so that the chain looks intact.
        let original = try ledger.records.map { try EventEnvelope(record: $0) }
        var envelopes = original
        envelopes.swapAt(5, 6)
        var previous = SHA256Digest.zero
        var forged: [[UInt8]] = []
        for (index, var envelope) in envelopes.enumerated() {
            envelope.sequence = UInt64(index + 1)
            envelope.timestamp = original[index].timestamp
            envelope.previousHash = previous
            forged.append(envelope.record)
            previous = envelope.eventHash
        }
        let result = failure(ledger.verify(records: forged))
        #expect(result?.sequence == 6)
        guard case .checkpointRootMismatch(_, let size) = result?.problem else {
            Issue.record("got \(String(describing: result))")
            return
        }
        #expect(size == 9)
    }

    @Test("an event signed for another journal is rejected")
    func foreignEvent() throws {
        var ledger = sealedLedger(events: 2)
        var envelope = try EventEnvelope(record: ledger.records[2])
        envelope.content.journalID = Array(repeating: 9, count: 16)
        envelope.signature = envelope.content.signature(with: ledger.key)
        ledger.records[2] = envelope.record
        let result = failure(ledger.verify())
        #expect(result?.sequence == 3)
        guard case .foreignEvent = result?.problem else { Issue.record("got \(String(describing: result))"); return }
    }

    @Test("rotated keys verify; an event signed by the old key after rotation does not")
    func rotation() throws {
        var ledger = sealedLedger(events: 2)
        let oldKey = ledger.key
        ledger.rotate()
        ledger.append("after")
        ledger.seal()
        let report = try ledger.verify(trust: .pinned([PinnedKey(oldKey.publicKey)])).get()
        #expect(report.keyIDs == [oldKey.keyID, ledger.key.keyID])
        #expect(try ledger.verify(trust: .pinned([PinnedKey(ledger.key.publicKey)])).get().pinned)

        var stale = ledger
        var envelope = try EventEnvelope(record: stale.records[4])
        envelope.content.keyID = oldKey.keyID
        envelope.signature = envelope.content.signature(with: oldKey)
        stale.records[4] = envelope.record
        let result = failure(stale.verify())
        #expect(result?.sequence == 5)
        guard case .wrongKey = result?.problem else { Issue.record("got \(String(describing: result))"); return }
    }

    @Test("pinning a key the journal never used fails at the genesis event")
    func pinnedMismatch() {
        let ledger = sealedLedger()
        let stranger = Ed25519SigningKey(seed: Array(repeating: 99, count: 32))!
        let result = failure(ledger.verify(trust: .pinned([PinnedKey(stranger.publicKey)])))
        #expect(result?.sequence == 1)
        guard case .untrustedKeyChain = result?.problem else { Issue.record("got \(String(describing: result))"); return }
    }

    @Test("a checkpoint beyond the end reports truncation at the first missing event")
    func truncation() {
        let ledger = sealedLedger()
        let result = failure(ledger.verify(records: Array(ledger.records.prefix(7))))
        #expect(result?.sequence == 8)
        guard case .truncated(let size, _, let journalSize) = result?.problem else {
            Issue.record("got \(String(describing: result))")
            return
        }
        #expect(size == 9)
        #expect(journalSize == 7)
    }

    @Test("a checkpoint signed by a stranger is rejected")
    func strangerCheckpoint() {
        var ledger = sealedLedger(events: 4)
        let stranger = Ed25519SigningKey(seed: Array(repeating: 42, count: 32))!
        let forged = ledger.checkpoints.last!.checkpoint.signed(with: stranger)
        ledger.checkpoints[ledger.checkpoints.count - 1] = forged
        let result = failure(ledger.verify())
        #expect(result?.sequence == 5)
        guard case .checkpointSignatureInvalid = result?.problem else { Issue.record("got \(String(describing: result))"); return }
    }
}
