import AuthCore
import LedgerCore
import LedgerJournal

/// Projections rebuilt from the events alone, and compared with the live ones (`authledger-replay
/// rebuild --check`): the proof that the projections are a pure function of the journal.
public enum ProjectionRebuild {
    /// Every projection table, as table → key → value bytes.
    public typealias Tables = [AuthTable: [String: [UInt8]]]

    /// Projections rebuilt in memory: every table as key → value bytes, but the timeline's index by
    /// bucket (``IndexBuckets``), which ``stored`` spells out.
    public struct Rebuilt: Sendable {
        /// Every table but the index (whose keys are only here if they are not an index bucket's).
        public var tables: Tables
        /// The timeline's index (``AuthTable/index``).
        public var index: IndexBuckets

        /// Every table as the journal stores it.
        public var stored: Tables {
            var stored = tables
            stored[.index, default: [:]].merge(index.stored) { $1 }
            return stored
        }

        /// How many entries `table` holds.
        public func count(of table: AuthTable) -> Int {
            (tables[table]?.count ?? 0) + (table == .index ? index.count : 0)
        }

        /// The bytes of `table`'s keys and values together.
        public func bytes(of table: AuthTable) -> Int {
            let indexBytes = table == .index ? index.count * IndexBucketKey.storedLength + index.entryCount : 0
            return (tables[table]?.reduce(0) { $0 + $1.key.utf8.count + $1.value.count } ?? 0) + indexBytes
        }
    }

    /// Folds every authorization event of the journal into fresh, in-memory projections (after archived
    /// events, into the projections they left).
    public static func rebuild(from reader: JournalReader, progress: ((UInt64) -> Void)? = nil) throws -> Rebuilt {
        try reader.read { try rebuild(from: $0, progress: progress) }
    }

    /// The rebuilt and the live projections and the live projections' version, all from one snapshot
    /// (so a server writing meanwhile cannot make them differ).
    public static func rebuiltAndLive(
        from reader: JournalReader, progress: ((UInt64) -> Void)? = nil
    ) throws -> (rebuilt: Rebuilt, live: Tables, liveVersion: Int?) {
        try reader.read { snapshot in
            (try rebuild(from: snapshot, progress: progress), try live(from: snapshot), try ProjectionVersion.stored(in: snapshot))
        }
    }

    /// ``rebuild(from:progress:)`` with the folding thread's share of the decoding fixed, and the number of
    /// earlier events it holds to complete the events it decodes (``RecentSources``): for tests.
    static func rebuild(
        from reader: JournalReader, sharing: DecodingShare, recentCapacity: Int = RecentSources.defaultCapacity
    ) throws -> Rebuilt {
        try reader.read { try rebuild(from: $0, progress: nil, sharing: sharing, recentCapacity: recentCapacity) }
    }

    static func rebuild(
        from snapshot: JournalSnapshot, progress: ((UInt64) -> Void)?, sharing: DecodingShare = .balanced,
        recentCapacity: Int = RecentSources.defaultCapacity
    ) throws -> Rebuilt {
        do {
            return try rebuild(once: snapshot, progress: progress, sharing: sharing, recentCapacity: recentCapacity)
        } catch is RecentSources.SourceNotHeld {
            // An event handed over takes values from one the folding thread no longer holds (a request far
            // back in a very large commit): the reading thread, which can read any event, decodes every
            // event this time (the progress starts over from the first).
            return try rebuild(once: snapshot, progress: progress, sharing: .fixed(0), recentCapacity: recentCapacity)
        }
    }

    private static func rebuild(
        once snapshot: JournalSnapshot, progress: ((UInt64) -> Void)?, sharing: DecodingShare, recentCapacity: Int
    ) throws -> Rebuilt {
        let store = MemoryStore()
        // A journal whose oldest events were archived starts from the projections they left (the index is
        // not among them; were it, its buckets would go where the rebuild folds the index).
        store.tables = try ArchivedState.start(in: snapshot)
        for (key, value) in store.tables.removeValue(forKey: .index) ?? [:] { try store.put(.index, key, value) }
        // The indexes gain a bucket for most values an event concerns: grown by doubling, their table was
        // rehashed about twenty times on a large journal (4% of a rebuild), and still twice from half the
        // events' count on a journal of a million (8%, nearly all of it hashing the keys again). The live
        // index holds about as many keys as the rebuild will (fewer only where pruned since), and the
        // store counts them without reading them.
        let events = Int(clamping: try snapshot.head.sequence)
        let liveIndexKeys = (try? snapshot.projection(AuthTable.index.projectionName).count) ?? 0
        // (A count beyond four keys an event is not believed: it would only reserve memory.)
        let plausibleKeys = events <= Int.max / 4 ? 4 * events : Int.max
        store.index.reserveCapacity(min(max(events / 2, liveIndexKeys), plausibleKeys))
        // Decoding the events and folding them into the projections each take a good part of a rebuild,
        // and each must go in order: this thread decodes (it holds the snapshot's read transaction) while
        // another folds what was decoded before. Decoding is the longer half, so some events are handed
        // over still encoded, for the folding thread to decode first (`DecodingShare`): events that decode
        // alone one by one, and requests whole — the request, then its decision and code, which take
        // values from it and from each other, and which the folding thread completes from the events it
        // folded just before (`RecentSources`).
        let folded = try OrderedHandoff<PendingEvent>.run(state: FoldState(store: store, recent: RecentSources(capacity: recentCapacity))) { handOff in
            var reader = AuthEventReader(snapshot: snapshot)
            var share = sharing.initialEighths
            var (requests, handingRequest) = (0, false)
            var batch: [PendingEvent] = []
            batch.reserveCapacity(Self.batchSize)
            try snapshot.forEachEvent { envelope in
                progress?(envelope.sequence)
                let traceID = RequestTrace.traceID(in: envelope.payload)
                let handOver: Bool
                switch envelope.type {
                case AuthEvent.authorizeRequestedType:
                    handingRequest = requests % 8 < share
                    requests &+= 1
                    handOver = handingRequest
                case AuthEvent.authorizeDecidedType, AuthEvent.codeIssuedType:
                    handOver = handingRequest
                default:
                    handOver = batch.count % 8 < share
                }
                if handOver {
                    batch.append(PendingEvent(form: .encoded(envelope.type, envelope.payload), sequence: envelope.sequence, traceID: traceID))
                } else if let event = try reader.event(envelope) {
                    batch.append(PendingEvent(form: .decoded(event), sequence: envelope.sequence, traceID: traceID))
                }
                if batch.count == Self.batchSize {
                    guard let backlog = handOff(batch) else { return false }
                    share = sharing.adjusted(share, backlog: backlog)
                    batch.removeAll(keepingCapacity: true)
                }
                return true
            }
            _ = handOff(batch)
        } consume: { fold, batch in
            // By index, not `for … in`: the elements are borrowed from the batch, not copied (a copy of
            // an event retains each of its strings).
            for index in batch.indices {
                let (sequence, traceID) = (batch[index].sequence, batch[index].traceID)
                switch batch[index].form {
                case .decoded(let event):
                    fold.recent.note(event, at: sequence)
                    try AuthProjection.apply(event, sequence: sequence, traceID: traceID, to: fold.store)
                case .encoded(let type, let payload):
                    guard let event = try fold.recent.event(type: type, payload: payload, sequence: sequence) else { continue }
                    try AuthProjection.apply(event, sequence: sequence, traceID: traceID, to: fold.store)
                }
            }
        }
        return Rebuilt(tables: folded.store.tables, index: folded.store.index)
    }

    /// What the folding thread holds: the projections, and the events it folded last that later ones
    /// take values from.
    struct FoldState {
        let store: MemoryStore
        var recent: RecentSources
    }

    /// The last events folded that later events take values from (requests and decisions,
    /// ``AuthEventReader/givesValues(_:)``), for the folding thread to complete the events it decodes
    /// (``AuthEvent/valuesFrom``), as ``AuthEventReader`` does on the reading thread, but without a
    /// snapshot to read an event it no longer holds from.
    ///
    /// An event takes values only from an earlier event of its own commit, in practice the one or two
    /// just before it. One whose source is not among the last ``defaultCapacity`` requests and decisions
    /// folded throws ``SourceNotHeld`` when decoded, and the rebuild starts over with every event decoded
    /// on the reading thread.
    struct RecentSources {
        static let defaultCapacity = 64

        /// An event handed over takes values from one no longer held.
        struct SourceNotHeld: Error {}

        private var ring: [(sequence: UInt64, event: AuthEvent)?]
        private var next = 0

        init(capacity: Int) {
            ring = Array(repeating: nil, count: max(0, capacity))
        }

        /// Holds `event`, folded at `sequence`, if later events may take values from it.
        mutating func note(_ event: AuthEvent, at sequence: UInt64) {
            guard !ring.isEmpty, AuthEventReader.givesValues(event) else { return }
            ring[next] = (sequence, event)
            next = (next + 1) % ring.count
        }

        /// The event held for `sequence`, newest first: the one wanted is nearly always one of the last two.
        func held(_ sequence: UInt64) throws(SourceNotHeld) -> AuthEvent {
            guard !ring.isEmpty else { throw SourceNotHeld() }
            for step in 1...ring.count {
                if let entry = ring[(next - step + ring.count) % ring.count], entry.sequence == sequence { return entry.event }
            }
            throw SourceNotHeld()
        }

        /// The event of `type` in `payload`, stored at `sequence`, decoded and completed as the reader
        /// would (sealed values unopened), and held if later events may take values from it; `nil` for
        /// types that are not the authorization server's.
        /// - Throws: what decoding throws; ``SourceNotHeld`` when it takes values from an event not held.
        mutating func event(type: EventType, payload: [UInt8], sequence: UInt64) throws -> AuthEvent? {
            let event = try AuthEvent(type: type, payload: payload, sequence: sequence) { try held($0) }
            if let event { note(event, at: sequence) }
            return event
        }
    }

    /// Events handed from the decoding to the folding thread at a time: enough that the hand-off costs
    /// nothing per event, few enough that the two threads start together.
    static let batchSize = 256

    /// How many of the events the folding thread decodes, in eighths: of the requests (each with the
    /// decision and code that follow it), and of the other events.
    enum DecodingShare {
        /// Adjusted batch by batch from the backlog between the threads: one eighth more while the folding
        /// thread waits for work, one less while the decoding thread waits for room.
        case balanced
        /// A fixed share (0 to 8 eighths): for tests, which hold every share to the same projections.
        case fixed(Int)

        var initialEighths: Int {
            switch self {
            case .balanced: 4
            case .fixed(let eighths): min(8, max(0, eighths))
            }
        }

        func adjusted(_ eighths: Int, backlog: Int) -> Int {
            guard case .balanced = self else { return eighths }
            if backlog <= 1 { return min(8, eighths + 1) }
            if backlog >= OrderedHandoff<PendingEvent>.defaultCapacity { return max(0, eighths - 1) }
            return eighths
        }
    }

    /// An event for the folding thread: decoded, or as stored for it to decode.
    struct PendingEvent: Sendable {
        enum Form: Sendable {
            case decoded(AuthEvent)
            case encoded(EventType, [UInt8])
        }

        var form: Form
        var sequence: UInt64
        var traceID: String?
    }

    /// The live projection tables of the journal.
    public static func live(from reader: JournalReader) throws -> Tables {
        try reader.read { try live(from: $0) }
    }

    static func live(from snapshot: JournalSnapshot) throws -> Tables {
        var tables: Tables = [:]
            for table in AuthTable.allCases {
                var entries: [String: [UInt8]] = [:]
                // A journal written before a table existed simply has none of its entries.
                guard let projection = try? snapshot.projection(table.projectionName) else {
                    tables[table] = [:]
                    continue
                }
                try projection.forEach { key, value in
                    entries[String(decoding: key, as: UTF8.self)] = value
                    return true
                }
                tables[table] = entries
            }
            return tables
    }

    /// One difference between rebuilt and live projections.
    public struct Difference: Sendable, Equatable, CustomStringConvertible {
        public var table: AuthTable
        public var key: String
        public var rebuilt: [UInt8]?
        public var live: [UInt8]?

        public var description: String {
            switch (rebuilt, live) {
            case (nil, _): "\(table.rawValue) \(key): live has it, the events do not"
            case (_, nil): "\(table.rawValue) \(key): the events have it, live does not"
            default: "\(table.rawValue) \(key): live value differs from the events'"
            }
        }
    }

    /// The differences between `rebuilt` and `live`, table by table, key by key.
    public static func compare(rebuilt: Rebuilt, live: Tables) -> [Difference] {
        compare(rebuilt: rebuilt.stored, live: live)
    }

    /// The differences between `rebuilt` and `live`, table by table, key by key.
    public static func compare(rebuilt: Tables, live: Tables) -> [Difference] {
        var differences: [Difference] = []
        for table in AuthTable.allCases {
            let left = rebuilt[table] ?? [:]
            let right = live[table] ?? [:]
            // Compared as values: live entries may have been written by an earlier release, whose JSON
            // encoder ordered members differently.
            for key in Set(left.keys).union(right.keys).sorted() where !sameValue(left[key], right[key]) {
                differences.append(Difference(table: table, key: key, rebuilt: left[key], live: right[key]))
            }
        }
        return differences
    }

    static func sameValue(_ left: [UInt8]?, _ right: [UInt8]?) -> Bool {
        guard let left, let right else { return left == nil && right == nil }
        return left == right || PayloadCoding.canonical(left) == PayloadCoding.canonical(right)
    }

    /// Projections in memory: tables of key → value bytes, but the timeline's index by bucket.
    final class MemoryStore: ProjectionStore {
        /// Every table but the index (whose keys are only here if they are not an index bucket's).
        var tables: Tables = [:]
        var index = IndexBuckets()

        func get(_ table: AuthTable, _ key: String) throws -> [UInt8]? {
            if table == .index, let bucket = IndexBucketKey(storedKey: key.utf8) { return index.entries(under: bucket) }
            return tables[table]?[key]
        }

        func put(_ table: AuthTable, _ key: String, _ value: [UInt8]) throws {
            if table == .index, let bucket = IndexBucketKey(storedKey: key.utf8) { return index.set(value, under: bucket) }
            tables[table, default: [:]][key] = value
        }

        func delete(_ table: AuthTable, _ key: String) throws {
            if table == .index, let bucket = IndexBucketKey(storedKey: key.utf8) { return index.set(nil, under: bucket) }
            tables[table]?[key] = nil
        }

        func extend(_ table: AuthTable, _ key: String, with bytes: [UInt8]) throws {
            if table == .index, let bucket = IndexBucketKey(storedKey: key.utf8) { return index.append(contentsOf: bytes, under: bucket) }
            tables[table, default: [:]][key, default: []].append(contentsOf: bytes)
        }

        func addIndexEntry(_ kind: IndexKind, _ value: String, sequence: UInt64) throws {
            index.append(entryOf: sequence, under: IndexBucketKey(kind: kind, value: value, sequence: sequence))
        }

        func forEach(_ table: AuthTable, from start: String, _ body: (String, [UInt8]) throws -> Bool) throws {
            var entries = tables[table] ?? [:]
            if table == .index { entries.merge(index.stored) { $1 } }
            try MemoryProjectionOrder.forEach(entries, from: start, body)
        }
    }
}
