import LedgerCore

extension JournalReader {
    /// What ``copy(to:projections:)`` copied.
    public struct CopyReport: Sendable, Equatable {
        /// The copied journal's last sequence number.
        public var head: UInt64
        /// Entries copied, over every table.
        public var entries: Int
    }

    /// Copies the journal, byte for byte, into the empty store `destination`: every event record,
    /// Merkle node, checkpoint and key-history entry exactly as stored, the data subjects' keys (still
    /// wrapped under the data key, which is not part of the journal), the consumers' positions (a log
    /// stream carries on from where it stood), and the projection tables named in
    /// `projections`, in one transaction (a failed copy leaves the destination as it was).
    ///
    /// The copy is of one snapshot, so a journal being written to is copied as it stood at one moment.
    /// Signatures, chain, checkpoints and proofs are those of the source, so the copy verifies exactly as
    /// the source does; verify the source first, and the copy after.
    /// - Throws: ``JournalError/directory(path:reason:)`` when `destination` already holds events.
    public func copy(to destination: any JournalStorage, projections: [String]) throws -> CopyReport {
        let target = try JournalLayout.open(in: destination, projections: projections, create: true)
        let source = try JournalLayout.open(in: storage, projections: projections, create: false)
        let transaction = try destination.beginWrite()
        var committed = false
        defer { if !committed { transaction.abort() } }
        // Checked under the journal lock: a writer starting on the destination meanwhile waits for the
        // copy, then finds a journal there and joins it.
        try transaction.lockJournal()
        for table in [target.events, target.meta] + Array(target.projections.values) {
            guard try transaction.last(in: table) == nil else {
                throw JournalError.directory(path: destination.location, reason: "already holds a journal; copy only into an empty one")
            }
        }
        let (head, entries) = try storage.read { snapshot in
            var entries = 0
            var pairs = [(source.events, target.events), (source.merkle, target.merkle), (source.checkpoints, target.checkpoints), (source.meta, target.meta)]
            if let from = source.subjectKeys, let to = target.subjectKeys { pairs.append((from, to)) }
            if let from = source.consumers, let to = target.consumers { pairs.append((from, to)) }
            for name in projections {
                if let from = source.projections[name], let to = target.projections[name] { pairs.append((from, to)) }
            }
            for (from, to) in pairs {
                try snapshot.forEach(in: from) { key, value in
                    try transaction.put(value, for: key, in: to, append: true)
                    entries += 1
                    return true
                }
            }
            return (try JournalHead.read(from: snapshot, layout: source).sequence, entries)
        }
        committed = true
        try transaction.commit()
        return CopyReport(head: head, entries: entries)
    }
}
