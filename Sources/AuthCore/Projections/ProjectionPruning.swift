import LedgerCore

/// `auth.projections.pruned`: entries of one projection table that had expired by ``time`` were removed,
/// among the keys from ``fromKey`` through ``throughKey`` (bytewise order).
///
/// The event names a time and a key range, not the keys: applying it removes exactly the entries of that
/// range that ``ProjectionPruning/isExpired(_:key:value:at:beforeSequence:in:)`` says had expired, which
/// is the same set live and in a rebuild (the projections up to this event are the same), so projections
/// stay a pure function of the events while the event stays a few hundred bytes for a thousand entries.
public struct ProjectionsPruned: Codable, Sendable, Equatable {
    /// The table pruned.
    public var table: String
    /// The moment expiry is judged at.
    public var time: LedgerTimestamp
    /// The first and last key of the range pruned (inclusive).
    public var fromKey: String
    public var throughKey: String
    /// For `dpop_proofs` (whose entries hold the sequence number of the request that used the proof):
    /// proofs used before this sequence number are past every acceptance window.
    public var beforeSequence: UInt64?
    /// How many entries the run found expired in the range (for people; applying recomputes them).
    public var removed: Int

    public init(table: AuthTable, time: LedgerTimestamp, fromKey: String, throughKey: String, beforeSequence: UInt64? = nil, removed: Int) {
        self.table = table.rawValue
        self.time = time
        self.fromKey = fromKey
        self.throughKey = throughKey
        self.beforeSequence = beforeSequence
        self.removed = removed
    }

    enum CodingKeys: String, CodingKey {
        case table, time, removed
        case fromKey = "from_key", throughKey = "through_key", beforeSequence = "before_sequence"
    }
}

/// Which projection entries can go, and when: pure rules over an entry and a time, shared by the pruning
/// run (which finds ranges of expired entries) and the fold (which removes them).
///
/// Entries are kept for as long as anything can still depend on them: a code for the lifetime of the
/// refresh family its redemption may have started, so that a replay still revokes that family; a failed
/// login for a day, far beyond any throttle window; the rest until they expire.
public enum ProjectionPruning {
    /// The tables that are pruned, in the order a run prunes them.
    public static let tables: [AuthTable] = [
        .interactions, .sessions, .codes, .tokens, .refreshFamilies, .refreshTokens, .dpopProofs, .loginFailures, .clientAssertions,
        .pushedRequests, .sessionClients,
    ]

    /// How long a failed login is remembered after it happened.
    public static let loginFailureRetentionSeconds = 86_400
    /// How long a DPoP proof's use is remembered (far beyond the proof acceptance window).
    public static let dpopProofRetentionSeconds = 3600

    /// Whether the entry `key` → `value` of `table` had expired at `time` (for `dpop_proofs`: was used
    /// before `beforeSequence`). Entries that do not decode are kept: pruning never guesses.
    public static func isExpired(
        _ table: AuthTable, key: String, value: [UInt8], at time: LedgerTimestamp, beforeSequence: UInt64?, in store: some ProjectionStore
    ) throws -> Bool {
        switch table {
        case .interactions:
            return (try? ProjectionCoding.decode(InteractionRecord.self, from: value)).map { $0.expiresAt <= time } ?? false
        case .sessions:
            return (try? ProjectionCoding.decode(SessionSnapshot.self, from: value)).map { $0.expiresAt <= time } ?? false
        case .codes:
            guard let code = try? ProjectionCoding.decode(CodeRecord.self, from: value) else { return false }
            return code.grant.expiresAt.adding(seconds: TokenPolicy.refreshLifetimeSeconds) <= time
        case .tokens:
            return (try? ProjectionCoding.decode(TokenRecord.self, from: value)).map { $0.expiresAt <= time } ?? false
        case .refreshTokens:
            return (try? ProjectionCoding.decode(RefreshRecord.self, from: value)).map { $0.issued.expiresAt <= time } ?? false
        case .refreshFamilies:
            // A family lives as long as its newest token (rotation keeps the family's absolute expiry).
            guard let family = try? ProjectionCoding.decode(RefreshFamilyRecord.self, from: value) else { return false }
            guard let current = try store.value(RefreshRecord.self, .refreshTokens, family.current) else { return true }
            return current.issued.expiresAt <= time
        case .dpopProofs:
            guard let beforeSequence, let used = UInt64(bigEndianBytes: value) else { return false }
            return used < beforeSequence
        case .loginFailures:
            guard let failures = try? ProjectionCoding.decode([LedgerTimestamp].self, from: value) else { return false }
            return (failures.max() ?? .init(microsecondsSinceEpoch: 0)).adding(seconds: loginFailureRetentionSeconds) <= time
        case .clientAssertions:
            return (try? ProjectionCoding.decode(LedgerTimestamp.self, from: value)).map { $0 <= time } ?? false
        case .pushedRequests:
            return (try? ProjectionCoding.decode(PushedRequest.self, from: value)).map { $0.expiresAt <= time } ?? false
        case .sessionClients:
            // Kept as long as its session can be presented.
            return (try? ProjectionCoding.decode(LedgerTimestamp.self, from: value)).map { $0 <= time } ?? false
        case .configuration, .consents, .index, .tokenKeys:
            return false
        }
    }

    /// Applies a pruning event: removes the expired entries of its table in its key range.
    public static func apply(_ pruned: ProjectionsPruned, to store: some ProjectionStore) throws {
        guard let table = AuthTable(rawValue: pruned.table), tables.contains(table) else { return }
        var expired: [String] = []
        let through = Array(pruned.throughKey.utf8)
        try store.forEach(table, from: pruned.fromKey) { key, value in
            let bytes = Array(key.utf8)
            guard bytes.lexicographicallyPrecedes(through) || bytes == through else { return false }
            if try isExpired(table, key: key, value: value, at: pruned.time, beforeSequence: pruned.beforeSequence, in: store) {
                expired.append(key)
            }
            return true
        }
        for key in expired { try store.delete(table, key) }
    }
}

/// In-memory projection tables walked in the stores' order (bytewise by UTF-8), for rebuilds and tests.
public enum MemoryProjectionOrder {
    /// Calls `body` with the entries of `entries` from `start` on, in bytewise key order, until it returns `false`.
    public static func forEach(
        _ entries: [String: [UInt8]], from start: String, _ body: (String, [UInt8]) throws -> Bool
    ) rethrows {
        let lower = Array(start.utf8)
        let keys = entries.keys.map { Array($0.utf8) }.filter { !$0.lexicographicallyPrecedes(lower) }.sorted { $0.lexicographicallyPrecedes($1) }
        for key in keys {
            let text = String(decoding: key, as: UTF8.self)
            guard try body(text, entries[text]!) else { return }
        }
    }
}
