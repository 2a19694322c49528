/// Checks a journal's events one by one, in storage order, without trusting anything it has not checked:
/// the strict envelope encoding, the sequence numbers, the hash chain, monotonic time, every event's
/// signature against the key chain, every checkpoint's signature and Merkle root once the tree reaches
/// its size, and that a signed checkpoint proves the position of every event (the writer commits one
/// with every batch).
///
/// Pure: it reads no file and no clock. `authledger-replay verify` feeds it from LMDB; an auditor's tool
/// could feed it from anywhere.
public struct JournalVerifier: Sendable {
    /// Which keys may have signed the journal.
    public enum Trust: Sendable {
        /// Trust on first use: the key named by the genesis event, and every key it rotates to.
        case genesisKey
        /// Only a key chain that contains one of these keys (an auditor's pinned keys), each trusted only
        /// within its pinned tenure, if it has one. Up to the last sequence number the pinned tenures
        /// speak of (the pins' horizon), every event and checkpoint must be signed by a pinned key within
        /// its tenure; beyond it, keys the verified chain introduced are trusted as the chain says.
        case pinned([PinnedKey])
    }

    /// Where a checkpoint came from.
    public enum CheckpointSource: Sendable, Equatable, CustomStringConvertible {
        case journal
        /// A checkpoint the journal stores shortened (``StoredCheckpoint``): its origin and root are left
        /// out, and the verifier checks its signature over the genesis's origin and the root it computed.
        case journalShortened
        case witness(String)

        public var description: String {
            switch self {
            case .journal, .journalShortened: "journal checkpoint"
            case .witness(let name): "witnessed checkpoint (\(name))"
            }
        }
    }

    private let trust: Trust
    /// The pinned keys and their tenures (`nil`: pinned without one), when pinned.
    private let pins: [Ed25519PublicKey: KeyTenure?]
    /// The last sequence number a pinned tenure speaks of (its last, or the first of an open one); 0 if none.
    private let pinHorizon: UInt64
    private var checkpoints: [(SignedCheckpoint, CheckpointSource)]
    private var nextCheckpoint = 0

    private var count: UInt64 = 0
    private var lastHash = SHA256Digest.zero
    private var lastTime = LedgerTimestamp(microsecondsSinceEpoch: .min)
    private var frontier = MerkleFrontier()
    /// Every key the journal introduced, in order (genesis, rotations, additions).
    private var keyChain: [Ed25519PublicKey] = []
    /// The tenure of each key of ``keyChain`` (same order), as far as the events read so far tell it.
    private var tenures: [KeyTenure] = []
    /// The keys that may sign the next event: the genesis key, or what rotations and additions made of it.
    private var signers: [Ed25519PublicKey] = []
    private var genesis: GenesisPayload?
    private var journalID: [UInt8] = []
    private var checkpointsVerified = 0
    /// The largest tree size proven by a verified checkpoint so far.
    private var provenSize: UInt64 = 0
    /// The size of the archived prefix verification resumed after (0: from the genesis event).
    private var resumedAfter: UInt64 = 0

    /// - Parameters:
    ///   - trust: which signing keys to accept.
    ///   - checkpoints: checkpoints to hold the journal to, from the journal itself and from witnesses.
    public init(trust: Trust, checkpoints: [(SignedCheckpoint, CheckpointSource)]) {
        self.trust = trust
        self.checkpoints = checkpoints.sorted { $0.0.checkpoint.treeSize < $1.0.checkpoint.treeSize }
        var pins: [Ed25519PublicKey: KeyTenure?] = [:]
        if case .pinned(let pinned) = trust {
            for pin in pinned { pins[pin.key] = pin.tenure }
        }
        self.pins = pins
        self.pinHorizon = pins.values.compactMap { $0.map { $0.last ?? $0.first } }.max() ?? 0
    }

    /// Resumes verification after `prefix`, the verified state of a journal's archived events: the next
    /// record must be event `prefix.size + 1`. The journal's checkpoint at `prefix.size` must be among
    /// `checkpoints`: it is checked now (signed by a key entitled there, pinned if pinning; its root the
    /// prefix's), and anchors everything that follows. Checkpoints of smaller sizes are the archive's and
    /// are not looked at.
    public init(trust: Trust, checkpoints: [(SignedCheckpoint, CheckpointSource)], resumingAfter prefix: VerifiedPrefix) throws(VerificationFailure) {
        self.init(trust: trust, checkpoints: checkpoints.filter { $0.0.checkpoint.treeSize >= prefix.size })
        guard let frontier = MerkleFrontier(size: prefix.size, subtreeRoots: prefix.subtreeRoots) else {
            throw VerificationFailure(sequence: prefix.size, problem: .badArchivePrefix)
        }
        count = prefix.size
        lastHash = prefix.lastHash
        lastTime = prefix.lastTime
        self.frontier = frontier
        genesis = prefix.genesis
        journalID = Hex.decode(prefix.genesis.journalID) ?? []
        keyChain = prefix.keys
        tenures = prefix.tenures
        signers = prefix.signers
        resumedAfter = prefix.size
        guard self.checkpoints.first?.0.checkpoint.treeSize == prefix.size else {
            throw VerificationFailure(sequence: prefix.size, problem: .badArchivePrefix)
        }
        try checkCheckpoints(upTo: prefix.size)
    }

    /// The state after the events verified so far, from which verification of the events after them can
    /// resume (``init(trust:checkpoints:resumingAfter:)``); `nil` before the genesis event.
    public var prefix: VerifiedPrefix? {
        guard let genesis else { return nil }
        return VerifiedPrefix(
            size: count, lastHash: lastHash, lastTime: lastTime, subtreeRoots: frontier.subtreeRoots, genesis: genesis, keys: keyChain,
            tenures: tenures, signers: signers)
    }

    /// Whether the pins let `key` sign at `position` (an event, or a checkpoint's size), `allows` saying
    /// what its pinned tenure allows there. Without pins: yes (the chain decides).
    private func pinsAllow(_ key: Ed25519PublicKey, at position: UInt64, _ allows: (KeyTenure) -> Bool) -> Bool {
        guard case .pinned = trust else { return true }
        if let pinned = pins[key] { return pinned.map(allows) ?? true }
        return position > pinHorizon
    }

    /// Checks the record stored under sequence key `storedKey`, which must be the next one.
    /// - Throws: the first problem found, with the sequence number it concerns.
    public mutating func verify(storedKey: UInt64, record: [UInt8]) throws(VerificationFailure) {
        let pending = try verifyDeferringSignature(storedKey: storedKey, record: record)
        guard pending.isValid() else { throw VerificationFailure(sequence: pending.sequence, problem: .badSignature) }
    }

    /// Checks everything about the record except its Ed25519 signature, which it returns for the caller to
    /// check — in parallel with others' (the sequence of checks stays as ``verify(storedKey:record:)``'s: the
    /// caller reports whichever failure has the lower sequence number).
    public mutating func verifyDeferringSignature(storedKey: UInt64, record stored: [UInt8]) throws(VerificationFailure) -> DeferredSignature {
        let expected = count + 1
        guard storedKey >= expected else {
            throw VerificationFailure(sequence: expected, problem: .unexpectedRecord(storedKey: storedKey))
        }
        guard storedKey == expected else {
            throw VerificationFailure(sequence: expected, problem: .missingEvent(nextStored: storedKey))
        }
        let record: [UInt8]
        let envelope: EventEnvelope
        do throws(EnvelopeDecodingError) {
            // A shortened record (journal format §6) is expanded with the journal id of the verified genesis
            // (or archived prefix): never with one the store's other tables claim.
            guard !StoredRecord.isShortened(stored) || journalID.count == 16 else { throw EnvelopeDecodingError.shortenedBeforeGenesis }
            record = try StoredRecord.record(expanding: stored, sequence: expected, journalID: journalID)
            envelope = try EventEnvelope(record: record)
        } catch {
            throw VerificationFailure(sequence: expected, problem: .malformedRecord(error))
        }
        guard envelope.sequence == expected else {
            throw VerificationFailure(sequence: expected, problem: .sequenceMismatch(recorded: envelope.sequence))
        }
        guard envelope.previousHash == lastHash else {
            throw VerificationFailure(sequence: expected, problem: .brokenChain)
        }
        guard envelope.timestamp >= lastTime else {
            throw VerificationFailure(sequence: expected, problem: .timeWentBackwards(previous: lastTime, found: envelope.timestamp))
        }
        let (key, genesisPayload) = try signer(of: envelope)
        guard pinsAllow(key, at: expected, { $0.allowsEvent(expected) }) else {
            throw VerificationFailure(sequence: expected, problem: .outsidePinnedTenure(key.keyID))
        }
        if envelope.type == .genesis || envelope.type == .keyRotated || envelope.type == .keyAdded || envelope.type == .keyRemoved {
            // The key chain changes here: check the signature before trusting the payload.
            guard envelope.hasValidSignature(by: key) else {
                throw VerificationFailure(sequence: expected, problem: .badSignature)
            }
        }
        try applyLedgerEvent(envelope, signedBy: key, genesis: genesisPayload)

        count = expected
        lastHash = SHA256Digest.hash(record)
        lastTime = envelope.timestamp
        frontier.append(MerkleHashing.leafHash(record))
        try checkCheckpoints(upTo: count)
        return DeferredSignature(sequence: expected, key: key, message: envelope.content.signingBytes, signature: envelope.signature)
    }

    /// Ends verification: checks that no checkpoint claims more events than were read, that a signed
    /// checkpoint proves the position of every event, and that the key chain is trusted.
    /// - Parameter continued: the events read are an archive, which the journal's later history continues:
    ///   they may end before a pinned tenure does (that history must then reach it).
    /// - Returns: a summary of what was verified.
    public mutating func finish(continued: Bool = false) throws(VerificationFailure) -> VerificationReport {
        if nextCheckpoint < checkpoints.count {
            let (signed, source) = checkpoints[nextCheckpoint]
            throw VerificationFailure(
                sequence: count + 1,
                problem: .truncated(checkpointSize: signed.checkpoint.treeSize, source: source, journalSize: count))
        }
        if count > provenSize {
            throw VerificationFailure(sequence: provenSize + 1, problem: .notCoveredByCheckpoint(journalSize: count))
        }
        if count > 0, case .pinned = trust, !keyChain.contains(where: { pins[$0] != nil }) {
            throw VerificationFailure(sequence: 1, problem: .untrustedKeyChain(keyChain.map(\.keyID)))
        }
        // The pins say how far the journal reached when they were taken: a journal that ends before a pinned
        // tenure does was cut short (a leaked retired key could otherwise rewrite its own tenure and stop there).
        let reaches = pins.compactMap { key, pinned in pinned.map { (key: key.keyID, reached: $0.last ?? ($0.first - 1)) } }
        if !continued, let furthest = reaches.max(by: { ($0.reached, $1.key) < ($1.reached, $0.key) }), count < furthest.reached {
            throw VerificationFailure(sequence: count + 1, problem: .endsBeforePinnedTenure(furthest.key, reached: furthest.reached))
        }
        return VerificationReport(
            eventCount: count, rootHash: frontier.root, lastEventHash: lastHash,
            keys: keyChain, tenures: tenures, checkpointsVerified: checkpointsVerified,
            origin: genesis?.origin, pinned: { if case .pinned = trust { true } else { false } }(), archivedBefore: resumedAfter + 1,
            prefix: prefix)
    }

    /// The key that must have signed `envelope` (its id is checked; the signature is the caller's to check),
    /// and for event #1 the genesis payload that names that key.
    private mutating func signer(
        of envelope: EventEnvelope
    ) throws(VerificationFailure) -> (key: Ed25519PublicKey, genesis: GenesisPayload?) {
        let key: Ed25519PublicKey
        var genesisPayload: GenesisPayload?
        if envelope.sequence == 1 {
            guard envelope.type == .genesis, let payload = try? PayloadCoding.decode(GenesisPayload.self, from: envelope.payload),
                let bytes = Base64.decode(payload.publicKey), let genesisKey = Ed25519PublicKey(bytes: bytes),
                payload.origin == "authledger/\(payload.journalID)", Hex.decode(payload.journalID) == envelope.content.journalID
            else { throw VerificationFailure(sequence: 1, problem: .badGenesis) }
            key = genesisKey
            genesisPayload = payload
            journalID = envelope.content.journalID
        } else {
            guard let first = signers.first else { throw VerificationFailure(sequence: envelope.sequence, problem: .badGenesis) }
            // Any of the signers may sign (one per cluster node); with one signer, only it.
            key = signers.first { $0.keyID == envelope.keyID } ?? first
        }
        guard envelope.content.journalID == journalID else {
            throw VerificationFailure(sequence: envelope.sequence, problem: .foreignEvent)
        }
        guard envelope.keyID == key.keyID else {
            throw VerificationFailure(sequence: envelope.sequence, problem: .wrongKey(expected: key.keyID, found: envelope.keyID))
        }
        return (key, genesisPayload)
    }

    /// Applies a signature-checked ledger event to the key chain; `genesis` is what ``signer(of:)`` decoded.
    private mutating func applyLedgerEvent(
        _ envelope: EventEnvelope, signedBy key: Ed25519PublicKey, genesis genesisPayload: GenesisPayload?
    ) throws(VerificationFailure) {
        switch envelope.type {
        case .genesis:
            guard envelope.sequence == 1, let genesisPayload else {
                throw VerificationFailure(sequence: envelope.sequence, problem: .badGenesis)
            }
            genesis = genesisPayload
            keyChain = [key]
            tenures = [KeyTenure(first: 1)]
            signers = [key]
        case .keyRotated:
            // Signed by the outgoing key (the signer), which the incoming key replaces among the signers.
            let previous = key
            guard let genesis,
                let payload = try? PayloadCoding.decode(KeyRotationPayload.self, from: envelope.payload),
                payload.previousKeyID == previous.keyID.hex,
                let newBytes = Base64.decode(payload.newPublicKey), let newKey = Ed25519PublicKey(bytes: newBytes),
                !keyChain.contains(newKey),
                let proof = Base64.decode(payload.newKeySignature),
                newKey.isValidSignature(
                    proof, for: KeyRotationPayload.statement(journalID: genesis.journalID, previousKeyID: previous.keyID, newKey: newKey))
            else { throw VerificationFailure(sequence: envelope.sequence, problem: .badKeyRotation) }
            keyChain.append(newKey)
            tenures.append(KeyTenure(first: envelope.sequence + 1))
            closeTenure(of: previous, at: envelope.sequence)
            signers = signers.map { $0 == previous ? newKey : $0 }
        case .keyAdded:
            // Signed by a signer, which vouches for the new key; the new key proves it is held.
            guard let genesis,
                let payload = try? PayloadCoding.decode(KeyAdditionPayload.self, from: envelope.payload),
                payload.addedBy == key.keyID.hex,
                let newBytes = Base64.decode(payload.newPublicKey), let newKey = Ed25519PublicKey(bytes: newBytes),
                !keyChain.contains(newKey), !signers.contains(where: { $0.keyID == newKey.keyID }),
                let proof = Base64.decode(payload.newKeySignature),
                newKey.isValidSignature(proof, for: KeyAdditionPayload.statement(journalID: genesis.journalID, addedBy: key.keyID, newKey: newKey))
            else { throw VerificationFailure(sequence: envelope.sequence, problem: .badKeyAddition) }
            keyChain.append(newKey)
            tenures.append(KeyTenure(first: envelope.sequence + 1))
            signers.append(newKey)
        case .keyRemoved:
            // Signed by a signer, removing another one; at least one signer stays.
            guard let payload = try? PayloadCoding.decode(KeyRemovalPayload.self, from: envelope.payload),
                payload.removedBy == key.keyID.hex, payload.removedKeyID != key.keyID.hex,
                signers.contains(where: { $0.keyID.hex == payload.removedKeyID })
            else { throw VerificationFailure(sequence: envelope.sequence, problem: .badKeyRemoval) }
            if let removed = signers.first(where: { $0.keyID.hex == payload.removedKeyID }) {
                closeTenure(of: removed, at: envelope.sequence - 1)
            }
            signers.removeAll { $0.keyID.hex == payload.removedKeyID }
        default:
            break
        }
    }

    /// Ends the tenure of `key` at `last`, the last sequence number it may sign.
    private mutating func closeTenure(of key: Ed25519PublicKey, at last: UInt64) {
        guard let index = keyChain.firstIndex(of: key) else { return }
        tenures[index].last = last
    }

    private mutating func checkCheckpoints(upTo size: UInt64) throws(VerificationFailure) {
        while nextCheckpoint < checkpoints.count, checkpoints[nextCheckpoint].0.checkpoint.treeSize <= size {
            var (signed, source) = checkpoints[nextCheckpoint]
            let rootless = source == .journalShortened
            if rootless {
                // Signed over the root of the events read, or over nothing they make.
                signed.resolve(origin: genesis?.origin ?? "", rootHash: frontier.root)
            }
            let checkpoint = signed.checkpoint
            let at = checkpoint.treeSize
            guard checkpoint.origin == genesis?.origin else {
                throw VerificationFailure(sequence: at, problem: .checkpointOriginMismatch(source: source))
            }
            // Only a key whose tenure covers this size may have signed it (and, pinned, its pinned tenure).
            let entitled = keyChain.indices.filter { index in
                tenures[index].allowsCheckpoint(size: at) && pinsAllow(keyChain[index], at: at, { $0.allowsCheckpoint(size: at) })
            }.map { keyChain[$0] }
            guard signed.verify(with: entitled) != nil else {
                if let outsider = signed.verify(with: keyChain) {
                    throw VerificationFailure(sequence: at, problem: .checkpointSignedOutsideTenure(source: source, key: outsider.keyID))
                }
                if rootless {
                    // Its root is the events': they are not the ones it signed (or it was never signed).
                    throw VerificationFailure(sequence: provenSize + 1, problem: .checkpointRootMismatch(source: source, treeSize: at))
                }
                throw VerificationFailure(sequence: at, problem: .checkpointSignatureInvalid(source: source))
            }
            guard checkpoint.rootHash == frontier.root, checkpoint.treeSize == size else {
                // The events since the last proven size are not the ones this checkpoint signed.
                throw VerificationFailure(sequence: provenSize + 1, problem: .checkpointRootMismatch(source: source, treeSize: at))
            }
            provenSize = max(provenSize, at)
            checkpointsVerified += 1
            nextCheckpoint += 1
        }
    }
}

/// An event signature whose check ``JournalVerifier/verifyDeferringSignature(storedKey:record:)`` left to
/// the caller.
public struct DeferredSignature: Sendable {
    public let sequence: UInt64
    let key: Ed25519PublicKey
    let message: [UInt8]
    let signature: [UInt8]

    /// Whether the signature is valid.
    public func isValid() -> Bool { key.isValidSignature(signature, for: message) }
}

/// What a successful verification established.
public struct VerificationReport: Sendable, Equatable {
    public var eventCount: UInt64
    public var rootHash: SHA256Digest
    public var lastEventHash: SHA256Digest
    /// The verified key chain, oldest first.
    public var keys: [Ed25519PublicKey]
    /// The tenure of each key of ``keys`` (same order): the sequence numbers it may sign.
    public var tenures: [KeyTenure]
    public var keyIDs: [KeyID] { keys.map(\.keyID) }
    public var checkpointsVerified: Int
    public var origin: String?
    /// Whether the key chain was checked against pinned keys (rather than trusted on first use).
    public var pinned: Bool
    /// The first event verified: 1, or the first after an archived prefix (whose events an archive holds).
    public var archivedBefore: UInt64 = 1
    /// The state verification ended in, from which the events after these can be verified.
    public var prefix: VerifiedPrefix?
}

/// The first problem verification found: the sequence number it concerns, and what is wrong.
public struct VerificationFailure: Error, Sendable, CustomStringConvertible {
    public var sequence: UInt64
    public var problem: Problem

    public init(sequence: UInt64, problem: Problem) {
        self.sequence = sequence
        self.problem = problem
    }

    public enum Problem: Sendable, Equatable {
        case missingEvent(nextStored: UInt64)
        case unexpectedRecord(storedKey: UInt64)
        case malformedStorageKey
        case malformedCheckpoint(source: JournalVerifier.CheckpointSource)
        case malformedRecord(EnvelopeDecodingError)
        case sequenceMismatch(recorded: UInt64)
        case brokenChain
        case timeWentBackwards(previous: LedgerTimestamp, found: LedgerTimestamp)
        case badGenesis
        case wrongKey(expected: KeyID, found: KeyID)
        case badSignature
        case badKeyRotation
        case checkpointOriginMismatch(source: JournalVerifier.CheckpointSource)
        case checkpointSignatureInvalid(source: JournalVerifier.CheckpointSource)
        case checkpointRootMismatch(source: JournalVerifier.CheckpointSource, treeSize: UInt64)
        case notCoveredByCheckpoint(journalSize: UInt64)
        case foreignEvent
        case truncated(checkpointSize: UInt64, source: JournalVerifier.CheckpointSource, journalSize: UInt64)
        case untrustedKeyChain([KeyID])
        /// A key addition event that is not signed by a signer, names another signer, or whose new key
        /// did not sign the addition (or is already in the chain).
        case badKeyAddition
        /// A key removal event not signed by a signer, removing its own signer, or naming no signer.
        case badKeyRemoval
        /// Signed by a key the pins do not trust here: outside its pinned tenure, or not pinned at a
        /// sequence number the pins speak of.
        case outsidePinnedTenure(KeyID)
        /// A checkpoint signed by a key of the chain, but not one entitled to sign at its size (a retired
        /// or removed key, or one not yet introduced).
        case checkpointSignedOutsideTenure(source: JournalVerifier.CheckpointSource, key: KeyID)
        /// The journal ends before a pinned tenure says it reached (truncated, or rolled back).
        case endsBeforePinnedTenure(KeyID, reached: UInt64)
        /// The stored prefix of archived events is malformed, or has no checkpoint of its size.
        case badArchivePrefix
        /// An archive and the journal after it are not one history (the journal's prefix is not the state
        /// its archive's verification ends in).
        case archiveMismatch
    }

    public var description: String {
        "event #\(sequence): " + {
            switch problem {
            case .missingEvent(let next): "missing (the next stored event is #\(next))"
            case .unexpectedRecord(let key): "a record stored under #\(key) does not belong in the sequence (inserted)"
            case .malformedStorageKey: "a record is stored under a key that is not a sequence number (inserted)"
            case .malformedCheckpoint(let source): "\(source) of this size cannot be read"
            case .malformedRecord(let error): "malformed record: \(error)"
            case .sequenceMismatch(let recorded): "stored at #\(sequence) but records sequence #\(recorded) (events reordered or moved)"
            case .brokenChain: "previous-event hash does not match the event before it (hash chain broken)"
            case .timeWentBackwards(let previous, let found): "time \(found) is earlier than the previous event's \(previous)"
            case .badGenesis: "not a valid genesis event"
            case .wrongKey(let expected, let found): "signed with key \(found), but the active key is \(expected)"
            case .badSignature: "signature does not verify"
            case .badKeyRotation: "invalid key rotation"
            case .badKeyAddition: "invalid key addition"
            case .badKeyRemoval: "invalid key removal"
            case .outsidePinnedTenure(let key): "signed by key \(key), which the pinned keys do not trust here (outside its pinned tenure, or not pinned)"
            case .endsBeforePinnedTenure(let key, let reached):
                "missing: the pinned tenure of key \(key) reaches #\(reached), but the journal ends at #\(sequence - 1) (truncated or rolled back)"
            case .checkpointSignedOutsideTenure(let source, let key):
                "\(source) at this size is signed by key \(key), which could not sign at this size (retired, removed or not yet introduced)"
            case .badArchivePrefix: "the prefix of archived events that ends here is malformed or has no signed checkpoint of its size"
            case .archiveMismatch: "the archive ending here is not the history the journal after it continues (another journal, or altered)"
            case .checkpointOriginMismatch(let source): "\(source) names another journal"
            case .checkpointSignatureInvalid(let source): "\(source) at this size has no valid signature by the journal's keys"
            case .checkpointRootMismatch(let source, let size):
                "events #\(sequence)…#\(size) do not match the Merkle root of the \(source) of size \(size) (history rewritten: changed, inserted, removed or reordered)"
            case .notCoveredByCheckpoint(let size):
                "events #\(sequence)…#\(size) are not covered by any signed checkpoint (appended outside the journal's writer)"
            case .foreignEvent: "belongs to another journal (journal id differs)"
            case .truncated(let size, let source, let journalSize):
                "missing: \(source) covers \(size) events but the journal ends at #\(journalSize) (truncated or rolled back)"
            case .untrustedKeyChain(let keys):
                "key chain \(keys.map(\.hex).joined(separator: ", ")) contains no pinned key (keys substituted)"
            }
        }()
    }
}
