import AuthCore
import LedgerCore
import LedgerJournal

/// Which version of ``AuthProjection`` wrote a journal's projection tables, and the rebuild that brings
/// them to the current one.
///
/// Projections are a pure function of the events, so when that function changes (a new table, new keys),
/// a journal opened for writing has its projections emptied and folded again from its events — in
/// batches of commits, the version written last, so that a crash part-way leaves no version and the
/// next open starts the rebuild over. Readers (the replay tool) only report a version that is not
/// current: they never write.
public enum ProjectionVersion {
    /// The current version. 2: login failures also counted per account and address (``LoginThrottle``).
    /// 3: IPv6 addresses counted by their /64. 4: a request's `login_hint` kept apart from its other
    /// parameters, and email addresses held sealed (``PersonalText``). 5: the clients that took part in
    /// each session (for back-channel logout), folded from earlier decisions too; and the tables of client
    /// assertions and pushed requests (which earlier events leave empty). 6: index entries for the
    /// configuration's changes, each user's consent changes and each refresh family's events
    /// (``AuthProjection/historyEntries(_:)``), which the forensics tools answer from (``JournalHistory``).
    /// 7: index keys hold a digest of the value instead of the value, and the sequence in fewer
    /// characters: 34 bytes each, where they took about 85. 8: index entries kept by the bucket of 256
    /// sequence numbers, a byte per entry under one key per value and bucket (``IndexBucket``), where each
    /// entry had a key of its own. 9: codes and access tokens keyed by 128 bits of their hash or id
    /// (``CodeRecord/key(_:)``, ``TokenRecord/key(_:)``), and a token's entry without the code hash that
    /// nothing read.
    public static let current = 9
    /// The table that holds the version (outside ``AuthTable``: it is not a function of the events).
    public static let table = "auth.projection_version"
    static let key = Array("version".utf8)

    /// The journal's projections were written by a newer AuthLedger, which may fold events this one does
    /// not know: it must not rebuild or write them.
    public struct NewerVersion: Error, CustomStringConvertible {
        public var stored: Int
        public var description: String {
            "the journal's projections are version \(stored), newer than this AuthLedger's (\(ProjectionVersion.current)): use a newer release"
        }
    }

    /// The version stored in a snapshot: `nil` when none is (a journal from before versions, or one
    /// whose rebuild did not finish).
    public static func stored(in snapshot: JournalSnapshot) throws -> Int? {
        guard let projection = try? snapshot.projection(table), let value = try projection.get(key) else { return nil }
        return Int(String(decoding: value, as: UTF8.self))
    }

    /// A journal on shared storage whose projections need a rebuild while other servers may be using
    /// them: rebuilding under them would lose what they append meanwhile, so it is left to an operator
    /// who has stopped them (`authledger journal rebuild-projections`).
    public struct RebuildNeeded: Error, CustomStringConvertible {
        public var stored: Int?
        public var description: String {
            "the shared journal's projections are version \(stored.map(String.init) ?? "none"), not \(ProjectionVersion.current): "
                + "stop every server on it, then run `authledger journal rebuild-projections` with this release"
        }
    }

    /// Whether any event of the journal is one the projections fold (a new journal holds only its genesis
    /// and key events, whoever created it: a server, or `authledger keys add`).
    static func holdsAuthorizationEvents(_ transaction: JournalWriteTransaction) throws -> Bool {
        guard transaction.nextSequence > 1 else { return false }
        if try transaction.archivedPrefix() != nil { return true }  // it had events enough to archive
        for sequence in 1..<transaction.nextSequence {
            guard let event = try transaction.event(sequence) else { throw JournalError.corrupt("event #\(sequence) is missing") }
            if !event.type.name.hasPrefix("ledger.") { return true }
        }
        return false
    }

    /// Rebuilds every projection of `journal` from its events unless they are at ``current``; returns
    /// whether it did. `eventsPerCommit` bounds each write transaction.
    ///
    /// On shared storage a rebuild is refused (``RebuildNeeded``) unless `allowOnSharedStorage`: the
    /// caller must know that no other server uses the journal. A new shared journal (nothing but its
    /// genesis) only gets its version, decided under the journal lock.
    @discardableResult
    public static func upgrade(_ journal: Journal, eventsPerCommit: UInt64 = 20_000, allowOnSharedStorage: Bool = false) async throws -> Bool {
        let (version, head) = try journal.read { snapshot in (try stored(in: snapshot), try snapshot.head.sequence) }
        guard version != current else { return false }
        if let version, version > current { throw NewerVersion(stored: version) }
        if journal.isShared, !allowOnSharedStorage {
            // Decided in one batch, under the lock: another server may be creating the journal right now.
            let recorded = try await journal.transact { transaction -> Bool in
                let now = try transaction.projection(table).get(key).flatMap { Int(String(decoding: $0, as: UTF8.self)) }
                if now == current { return false }
                guard now == nil, try !holdsAuthorizationEvents(transaction) else { throw RebuildNeeded(stored: now) }
                try transaction.projection(table).put(Array(String(current).utf8), for: key)
                return true
            }
            return recorded
        }
        // Emptied, then (after archival) set to what the archived events left — as the release that archived
        // them folded them: the archive is not read here.
        let first = try await journal.transact { transaction -> UInt64 in
            for name in AuthLedger.projections { try transaction.projection(name).removeAll() }
            for name in AuthLedger.projections {
                let projection = try transaction.projection(name)
                try transaction.archivedProjection(name) { key, value in
                    try projection.put(value, for: key)
                    return true
                }
            }
            return (try transaction.archivedPrefix()?.size ?? 0) + 1
        }
        var next = first
        while next <= head {
            let start = next
            let last = min(head, start + eventsPerCommit - 1)
            try await journal.transact { transaction in
                let store = TransactionStore(transaction: transaction)
                for sequence in start...last {
                    guard let envelope = try transaction.event(sequence) else { throw JournalError.corrupt("event #\(sequence) is missing") }
                    let event = try AuthEvent(envelope, reading: { try transaction.event($0) })
                    if let event {
                        try AuthProjection.apply(event, sequence: sequence, traceID: RequestTrace.traceID(in: envelope.payload), to: store)
                    }
                }
            }
            next = last + 1
        }
        try await journal.transact { transaction in
            try transaction.projection(table).put(Array(String(current).utf8), for: key)
        }
        return true
    }
}
