import Foundation
import LedgerCore

extension JournalReader {
    /// Verifies the whole journal from a single snapshot: every record, signature and chain link in
    /// order, every checkpoint stored in the journal, and every `witnessed` checkpoint from outside it.
    /// A journal whose oldest events were archived is verified from the state they left (its
    /// ``JournalSnapshot/archivedPrefix``). `continued`: the journal is an archive, which the history
    /// after it continues, so it may end before a pinned tenure does.
    ///
    /// - Returns: the report, or the first failure with the sequence number it concerns.
    /// - Throws: only when the journal cannot be read at all.
    public func verify(
        trust: JournalVerifier.Trust, witnessed: [(SignedCheckpoint, String)] = [], continued: Bool = false,
        progress: ((UInt64) -> Void)? = nil
    ) throws -> Result<VerificationReport, VerificationFailure> {
        try read { snapshot in
            var checkpoints: [(SignedCheckpoint, JournalVerifier.CheckpointSource)] = []
            var unreadableCheckpoint: UInt64?
            try snapshot.transaction.forEach(in: snapshot.layout.checkpoints) { key, value in
                if StoredCheckpoint.isShortened(value), let size = UInt64(bigEndianBytes: key),
                    let unresolved = try? StoredCheckpoint.unresolved(value, treeSize: size)
                {
                    checkpoints.append((unresolved, .journalShortened))
                } else if !StoredCheckpoint.isShortened(value), let signed = try? SignedCheckpoint(text: String(decoding: value, as: UTF8.self)) {
                    checkpoints.append((signed, .journal))
                } else {
                    unreadableCheckpoint = unreadableCheckpoint ?? max(UInt64(bigEndianBytes: key) ?? 1, 1)
                }
                return true
            }
            checkpoints += witnessed.map { ($0.0, .witness($0.1)) }
            var verifier: JournalVerifier
            var expected: UInt64 = 1
            // A journal whose oldest events were archived resumes from the state they left, anchored by its
            // signed checkpoint at the cut (the archive holds them: `verify --archive`).
            if let prefix = try snapshot.archivedPrefix {
                do throws(VerificationFailure) {
                    verifier = try JournalVerifier(trust: trust, checkpoints: checkpoints, resumingAfter: prefix)
                } catch {
                    return .failure(error)
                }
                expected = prefix.size + 1
            } else {
                verifier = JournalVerifier(trust: trust, checkpoints: checkpoints)
            }
            var failure: VerificationFailure?
            var pending: [DeferredSignature] = []
            pending.reserveCapacity(Self.signatureBatch)
            // Signatures are checked a batch at a time on every core; everything else in order. The first
            // failure reported is the one with the lowest sequence number, as if checked one by one.
            func checkPending() {
                guard let bad = Self.firstInvalid(pending) else { pending.removeAll(keepingCapacity: true); return }
                if bad < (failure?.sequence ?? .max) { failure = VerificationFailure(sequence: bad, problem: .badSignature) }
                pending.removeAll(keepingCapacity: true)
            }
            // Every key of the events database, from the very first (after an archived prefix: from the first
            // after it): a record stored under a key that is not a sequence number is as much a finding as a
            // bad record.
            try snapshot.transaction.forEach(in: snapshot.layout.events, from: expected == 1 ? nil : expected.bigEndianBytes) { key, record in
                do throws(VerificationFailure) {
                    guard let storedKey = UInt64(bigEndianBytes: key) else {
                        throw VerificationFailure(sequence: expected, problem: .malformedStorageKey)
                    }
                    pending.append(try verifier.verifyDeferringSignature(storedKey: storedKey, record: record))
                    expected += 1
                    progress?(expected - 1)
                    if pending.count == Self.signatureBatch {
                        checkPending()
                        if failure != nil { return false }
                    }
                    return true
                } catch {
                    failure = error
                    return false
                }
            }
            checkPending()
            if failure == nil {
                do throws(VerificationFailure) {
                    let report = try verifier.finish(continued: continued)
                    if unreadableCheckpoint == nil { return .success(report) }
                } catch {
                    failure = error
                }
            }
            // Report whichever problem comes first in the sequence.
            if let size = unreadableCheckpoint, size <= failure?.sequence ?? .max {
                return .failure(VerificationFailure(sequence: size, problem: .malformedCheckpoint(source: .journal)))
            }
            return .failure(failure!)
        }
    }

    static let signatureBatch = 4096

    /// The lowest sequence number among `signatures` whose signature is invalid, checking on every core.
    static func firstInvalid(_ signatures: [DeferredSignature]) -> UInt64? {
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, signatures.count / 64))
        let results = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: workers)
        results.initialize(repeating: .max)
        defer { results.deallocate() }
        nonisolated(unsafe) let shared = results
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var index = worker
            while index < signatures.count {
                if !signatures[index].isValid() {
                    shared[worker] = signatures[index].sequence
                    return
                }
                index += workers
            }
        }
        let first = results.min()!
        return first == .max ? nil : first
    }

    /// The journal's key chain as the journal's own index records it, oldest first: the genesis key and
    /// each key it was rotated to, with the sequence number of the event that introduced it. (Verification
    /// does not use this index; it follows the signed events.)
    public func keyHistory() throws -> [(sequence: UInt64, key: Ed25519PublicKey)] {
        try read { snapshot in
            var keys: [(sequence: UInt64, key: Ed25519PublicKey)] = []
            let prefix = JournalLayout.MetaKey.keyHistoryPrefix
            try snapshot.transaction.forEach(in: snapshot.layout.meta, from: prefix) { name, value in
                guard name.starts(with: prefix) else { return false }
                if let sequence = UInt64(bigEndianBytes: name.dropFirst(prefix.count)), let key = Ed25519PublicKey(bytes: value) {
                    keys.append((sequence, key))
                }
                return true
            }
            return keys
        }
    }
}
