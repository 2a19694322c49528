import AuthCore
import LedgerCore
import LedgerJournal

/// What a pruning run removed (or, dry, would remove), per table, and how many events it recorded.
public struct PruningReport: Sendable, Equatable {
    /// Expired entries found, by table.
    public var removed: [AuthTable: Int] = [:]
    /// `auth.projections.pruned` events appended (none when dry).
    public var events = 0

    public init() {}

    /// Entries found over every table.
    public var total: Int { removed.values.reduce(0, +) }
}

extension AuthLedger {
    /// The most entries one pruning commit removes: a run over a large backlog is many short commits,
    /// each its own `auth.projections.pruned` event, so the writer is never held long.
    public static let pruningBatchSize = 1000

    /// Removes the projection entries that had expired by `now` (``ProjectionPruning``), table by table, in
    /// commits of at most `batchSize` entries, each recorded as one `auth.projections.pruned` event that
    /// names the table, the key range and the time, so that a rebuild removes exactly the same entries.
    ///
    /// Safe beside a running server and on a shared store: each event is applied in its own write
    /// transaction, where expiry is judged again against the projections as they are then; a concurrent
    /// run's events simply find less to remove.
    /// - Parameter dryRun: only count what would go; append nothing.
    public func pruneProjections(
        now: LedgerTimestamp, batchSize: Int = AuthLedger.pruningBatchSize, dryRun: Bool = false
    ) async throws -> PruningReport {
        precondition(batchSize > 0)
        var report = PruningReport()
        // DPoP proofs hold the sequence number of the request that used them: those used before the first
        // event of the retention window can no longer be presented within any acceptance window.
        let proofCutoff = now.adding(seconds: -ProjectionPruning.dpopProofRetentionSeconds)
        let beforeSequence = try await query { store in try store.snapshot.firstSequence(atOrAfter: proofCutoff) }
        for table in ProjectionPruning.tables {
            var start = ""
            while true {
                let from = start
                let chunk = try await query { store in
                    try Self.expiredRange(table, from: from, limit: batchSize, at: now, beforeSequence: beforeSequence, in: store)
                }
                guard let chunk else { break }
                report.removed[table, default: 0] += chunk.count
                if !dryRun {
                    let event = ProjectionsPruned(
                        table: table, time: now, fromKey: chunk.first, throughKey: chunk.last,
                        beforeSequence: table == .dpopProofs ? beforeSequence : nil, removed: chunk.count)
                    try await record { try $0.append(.projectionsPruned(event)) }
                    report.events += 1
                }
                guard let next = chunk.next else { break }
                start = next
            }
        }
        return report
    }

    /// A range of expired entries of `table` from `start` on: the first and last expired key among at most
    /// `limit` of them, how many, and the key where the next range starts (`nil`: the table ends first).
    static func expiredRange(
        _ table: AuthTable, from start: String, limit: Int, at time: LedgerTimestamp, beforeSequence: UInt64, in store: SnapshotStore
    ) throws -> (first: String, last: String, count: Int, next: String?)? {
        var first: String?
        var last = ""
        var count = 0
        var next: String?
        try store.forEach(table, from: start) { key, value in
            guard try ProjectionPruning.isExpired(table, key: key, value: value, at: time, beforeSequence: beforeSequence, in: store) else {
                return true
            }
            guard count < limit else {
                next = key
                return false
            }
            if first == nil { first = key }
            last = key
            count += 1
            return true
        }
        return first.map { ($0, last, count, next) }
    }
}
