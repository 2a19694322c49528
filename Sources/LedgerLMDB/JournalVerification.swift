import LedgerCore

extension JournalReader {
    /// Verifies the whole journal from a single snapshot: every record, signature and chain link in
    /// order, every checkpoint stored in the journal, and every `witnessed` checkpoint from outside it.
    ///
    /// - Returns: the report, or the first failure with the sequence number it concerns.
    /// - Throws: only when the journal cannot be read at all.
    public func verify(
        trust: JournalVerifier.Trust, witnessed: [(SignedCheckpoint, String)] = []
    ) throws -> Result<VerificationReport, VerificationFailure> {
        try read { snapshot in
            var checkpoints: [(SignedCheckpoint, JournalVerifier.CheckpointSource)] = []
            var unreadableCheckpoint: UInt64?
            try snapshot.transaction.forEach(in: snapshot.layout.checkpoints) { key, value in
                if let signed = try? SignedCheckpoint(text: String(decoding: value, as: UTF8.self)) {
                    checkpoints.append((signed, .journal))
                } else {
                    unreadableCheckpoint = unreadableCheckpoint ?? max(UInt64(bigEndianBytes: key) ?? 1, 1)
                }
                return true
            }
            checkpoints += witnessed.map { ($0.0, .witness($0.1)) }
            var verifier = JournalVerifier(trust: trust, checkpoints: checkpoints)
            var failure: VerificationFailure?
            var expected: UInt64 = 1
            // Every key of the events database, from the very first: a record stored under a key that is
            // not a sequence number is as much a finding as a bad record.
            try snapshot.transaction.forEach(in: snapshot.layout.events) { key, record in
                do throws(VerificationFailure) {
                    guard let storedKey = UInt64(bigEndianBytes: key) else {
                        throw VerificationFailure(sequence: expected, problem: .malformedStorageKey)
                    }
                    try verifier.verify(storedKey: storedKey, record: record)
                    expected += 1
                    return true
                } catch {
                    failure = error
                    return false
                }
            }
            if failure == nil {
                do throws(VerificationFailure) {
                    let report = try verifier.finish()
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
