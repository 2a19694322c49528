import Foundation
import LedgerCore
import Testing

@testable import LedgerJournal
@testable import LedgerLMDB

/// A journal with several signers (one key per cluster node): `ledger.key.added` events, and what
/// verification makes of them.
@Suite("Signers: keys added beside the journal key")
struct SignerTests {
    @Test("a key added by the journal key signs events too; the journal verifies pinned to the genesis key")
    func addedKeySigns() async throws {
        let directory = TemporaryDirectory()
        var journal = try openJournal(directory.journal)
        let genesisKey = try JournalKeyFile(path: directory.journal + ".key").load()
        let nodeKey = Ed25519SigningKey.generate()
        let addition = try await journal.addSigner(nodeKey)
        try await journal.append(testDraft("by the genesis key"))
        await journal.close()

        // The node opens the same journal with its own key file, and signs with it.
        let nodeKeyPath = directory.path + "/node.key"
        try JournalKeyFile(path: nodeKeyPath).create(nodeKey)
        journal = try Journal.open(directory: directory.journal, Journal.Configuration(keyFile: nodeKeyPath))
        #expect(journal.activeKeyID == nodeKey.keyID)
        let byNode = try await journal.append(testDraft("by the node key"))
        let signers = try journal.read { try $0.signers }
        await journal.close()

        #expect(Set(signers) == [genesisKey.publicKey, nodeKey.publicKey])
        let reader = try JournalReader(directory: directory.journal)
        defer { reader.close() }
        let report = try reader.verify(trust: .pinned([PinnedKey(genesisKey.publicKey)])).get()
        #expect(report.keyIDs == [genesisKey.keyID, nodeKey.keyID])
        let (added, signed) = try reader.read { (try $0.event(addition), try $0.event(byNode.sequence)) }
        #expect(added?.type == .keyAdded)
        #expect(added?.keyID == genesisKey.keyID)
        #expect(signed?.keyID == nodeKey.keyID)
        #expect(try reader.keyHistory().map(\.key) == [genesisKey.publicKey, nodeKey.publicKey])

        // The genesis key still signs beside it.
        journal = try openJournal(directory.journal)
        try await journal.append(testDraft("genesis key again"))
        await journal.close()
        #expect(try JournalReader(directory: directory.journal).verify(trust: .genesisKey).get().eventCount == byNode.sequence + 1)
    }

    @Test("a removed key can neither open the journal nor sign: the removal verifies, a later event by the removed key does not")
    func removedKeyStops() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        let genesisKey = try JournalKeyFile(path: directory.journal + ".key").load()
        let nodeKey = Ed25519SigningKey.generate()
        try await journal.addSigner(nodeKey)
        await #expect(throws: JournalError.self) { try await journal.removeSigner(genesisKey.keyID) }  // not itself
        let removal = try await journal.removeSigner(nodeKey.keyID)
        try await journal.append(testDraft("after the removal"))
        await journal.close()
        let nodeKeyPath = directory.path + "/node.key"
        try JournalKeyFile(path: nodeKeyPath).create(nodeKey)
        #expect(throws: JournalError.self) { try Journal.open(directory: directory.journal, Journal.Configuration(keyFile: nodeKeyPath)) }
        #expect(try JournalReader(directory: directory.journal).read { try $0.signers } == [genesisKey.publicKey])
        #expect(try JournalReader(directory: directory.journal).verify(trust: .pinned([PinnedKey(genesisKey.publicKey)])).get().eventCount == removal + 1)

        // The removed node's key signs the event after the removal: refused there.
        try resign(directory.journal, sequence: removal + 1, with: nodeKey)
        let failure = try #require(try JournalReader(directory: directory.journal).verify(trust: .genesisKey).failure)
        #expect(failure.sequence == removal + 1)
        #expect("\(failure)".contains(nodeKey.keyID.hex), "refused for its key: \(failure)")
    }

    @Test("a key that was never added cannot open the journal, nor can one added twice be added again")
    func unknownKeyRefused() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        let nodeKey = Ed25519SigningKey.generate()
        try await journal.addSigner(nodeKey)
        await #expect(throws: JournalError.self) { try await journal.addSigner(nodeKey) }
        await journal.close()
        let strangerPath = directory.path + "/stranger.key"
        try JournalKeyFile(path: strangerPath).create(.generate())
        #expect(throws: JournalError.self) {
            try Journal.open(directory: directory.journal, Journal.Configuration(keyFile: strangerPath))
        }
    }

    @Test("a key the chain ever had (rotated away) cannot be added back: the writer refuses what verification would")
    func rotatedKeyNotAddedBack() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        let original = try JournalKeyFile(path: directory.journal + ".key").load()
        _ = try await journal.rotateSigningKey()
        await #expect(throws: JournalError.self) { try await journal.addSigner(original) }
        await journal.close()
        #expect(try JournalReader(directory: directory.journal).verify(trust: .genesisKey).get().keyIDs.count == 2)
    }

    @Test("rotating an added key replaces it alone: the other signer still signs, the old node key no longer does")
    func rotateAddedKey() async throws {
        let directory = TemporaryDirectory()
        var journal = try openJournal(directory.journal)
        let genesisKey = try JournalKeyFile(path: directory.journal + ".key").load()
        let nodeKey = Ed25519SigningKey.generate()
        try await journal.addSigner(nodeKey)
        await journal.close()
        let nodeKeyPath = directory.path + "/node.key"
        try JournalKeyFile(path: nodeKeyPath).create(nodeKey)
        journal = try Journal.open(directory: directory.journal, Journal.Configuration(keyFile: nodeKeyPath))
        let rotated = try await journal.rotateSigningKey()
        await journal.close()
        let signers = try JournalReader(directory: directory.journal).read { try $0.signers }
        #expect(Set(signers.map(\.keyID)) == [genesisKey.keyID, rotated])
        #expect(try JournalReader(directory: directory.journal).read { try $0.activeKey } == genesisKey.publicKey)
        journal = try openJournal(directory.journal)
        try await journal.append(testDraft("genesis key after the node's rotation"))
        await journal.close()
        #expect(try JournalReader(directory: directory.journal).verify(trust: .pinned([PinnedKey(genesisKey.publicKey)])).get().keyIDs
            == [genesisKey.keyID, nodeKey.keyID, rotated])
    }

    @Test("an addition whose new key did not sign it, or that names another signer, fails verification there")
    func forgedAdditionsFail() async throws {
        for forge in [ForgedAddition.proofByAnotherKey, .namesAnotherSigner] {
            let directory = TemporaryDirectory()
            let journal = try openJournal(directory.journal)
            let journalID = journal.journalID
            let signer = journal.activeKeyID
            let claimed = Ed25519SigningKey.generate()
            var payload = KeyAdditionPayload(journalID: journalID, addedBy: signer, newKey: claimed)
            switch forge {
            case .proofByAnotherKey:
                // The attacker's key vouches for a key it does not hold.
                let other = KeyAdditionPayload(journalID: journalID, addedBy: signer, newKey: .generate())
                payload.newKeySignature = other.newKeySignature
            case .namesAnotherSigner:
                payload.addedBy = Ed25519SigningKey.generate().keyID.hex
            }
            let draft = try EventDraft(type: .keyAdded, encoding: payload)
            let forged = try await journal.transact { try $0.append(draft).sequence }
            await journal.close()
            let failure = try #require(try JournalReader(directory: directory.journal).verify(trust: .genesisKey).failure)
            #expect(failure.sequence == forged, "\(forge)")
            #expect("\(failure)".contains("invalid key addition"), "\(forge): \(failure)")
        }
    }

    @Test("events signed by a key that was never added fail verification, even with the journal's id and chain")
    func eventByOutsiderFails() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        try await journal.append(testDraft("one"))
        await journal.close()
        let outsider = Ed25519SigningKey.generate()
        // Re-sign event #2 with a key the journal never added (the record keeps its place in the chain).
        try resign(directory.journal, sequence: 2, with: outsider)
        let failure = try #require(try JournalReader(directory: directory.journal).verify(trust: .genesisKey).failure)
        #expect(failure.sequence == 2)
    }
}

/// Signs the stored event `sequence` again with `key`, in place, as someone holding that key and the
/// files would (its place in the chain, its content and time unchanged).
private func resign(_ journal: String, sequence: UInt64, with key: Ed25519SigningKey) throws {
    try withRawLMDB(journal) { transaction, layout in
        let record = try #require(try layout.record(sequence, in: transaction))
        let envelope = try EventEnvelope(record: record)
        var content = envelope.content
        content.keyID = key.keyID
        let resigned = EventEnvelope(
            sequence: envelope.sequence, timestamp: envelope.timestamp, previousHash: envelope.previousHash, content: content,
            signature: content.signature(with: key))
        try transaction.put(resigned.record, for: sequence.bigEndianBytes, in: layout.events)
    }
}

private enum ForgedAddition: CustomStringConvertible {
    case proofByAnotherKey, namesAnotherSigner
    var description: String { self == .proofByAnotherKey ? "proof by another key" : "names another signer" }
}

extension Result {
    var failure: Failure? { if case .failure(let failure) = self { failure } else { nil } }
}
