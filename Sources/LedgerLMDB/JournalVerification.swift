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
            for (key, value) in try Self.rawCheckpoints(snapshot) {
                guard let signed = try? SignedCheckpoint(text: String(decoding: value, as: UTF8.self)) else {
                    return .failure(VerificationFailure(sequence: max(key, 1), problem: .checkpointSignatureInvalid(source: .journal)))
                }
                checkpoints.append((signed, .journal))
            }
            checkpoints += witnessed.map { ($0.0, .witness($0.1)) }
            var verifier = JournalVerifier(trust: trust, checkpoints: checkpoints)
            var failure: VerificationFailure?
            try snapshot.forEachRecord { key, record in
                do throws(VerificationFailure) {
                    try verifier.verify(storedKey: key, record: record)
                    return true
                } catch {
                    failure = error
                    return false
                }
            }
            if let failure { return .failure(failure) }
            do throws(VerificationFailure) {
                return .success(try verifier.finish())
            } catch {
                return .failure(error)
            }
        }
    }

    private static func rawCheckpoints(_ snapshot: JournalSnapshot) throws -> [(UInt64, [UInt8])] {
        var result: [(UInt64, [UInt8])] = []
        try snapshot.transaction.forEach(in: snapshot.layout.checkpoints) { key, value in
            result.append((UInt64(bigEndianBytes: key) ?? 0, value))
            return true
        }
        return result
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
