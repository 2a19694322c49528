import Synchronization

/// A store whose reads are round trips that a task can await (PostgreSQL), rather than wait for on a
/// thread it blocks.
///
/// The journal's readers are synchronous code — projections, the decision's inputs, the snapshot's own
/// lookups — and stay so: they are shared with the replay tool and with LMDB, whose reads are lookups in
/// a memory map. ``JournalReader/read(awaiting:hint:otherwise:)`` runs such a reader against what one awaited
/// statement has answered: when the reader asks for something not answered yet, the attempt stops, and
/// the task awaits one statement that reads everything the attempt used and the read it missed, all from
/// one snapshot; the reader then runs again from the start on that statement's answers. The attempt that
/// answers has read nothing else, so its answer is consistent as of one moment. A reader of a request
/// that makes a few dependent reads costs as many statements, and no transaction around them.
public protocol AwaitingStorage: JournalStorage {
    /// Whether ``readAwaiting(_:)`` can be used (a store may await only some of its configurations).
    var awaitsReads: Bool { get }

    /// Runs `body` with a connection whose reads it awaits.
    func readAwaiting<R: Sendable>(_ body: (any AwaitedReadConnection) async throws -> R) async throws -> R

    /// Round trips this store has made for awaited reads since it was opened, when it counts them: fewer
    /// than the readers' statements when it sends several readers' statements as one (PostgreSQL gathers
    /// concurrent readers' statements); `nil` when every reader's statement is a round trip of its own.
    var awaitedRoundTrips: Int? { get }
}

extension AwaitingStorage {
    public var awaitedRoundTrips: Int? { nil }
}

/// What ``AwaitingStorage/readAwaiting(_:)`` throws when it cannot begin an awaited read now (PostgreSQL:
/// no connection of its pool came in time): the reader then reads by waiting instead.
public struct ReadNotAwaited: Error {
    public init() {}
}

/// One read of a table that an awaited statement answers.
public enum AwaitedRead: Hashable, Sendable {
    /// The value under `key`, or none.
    case value(table: StorageTable, key: [UInt8])
    /// At most `limit` entries in key order, from the first key at or after `start` (`[]`: from the
    /// table's first).
    case entries(table: StorageTable, start: [UInt8], limit: Int)
    /// The entry with the largest key, or none when the table is empty.
    case last(table: StorageTable)
    /// The number of entries.
    case count(table: StorageTable)
}

/// The answer to one ``AwaitedRead``, of the same kind.
public enum AwaitedReadAnswer: Sendable {
    case value([UInt8]?)
    case entries([([UInt8], [UInt8])])
    case last(([UInt8], [UInt8])?)
    case count(Int)
}

/// A connection of an ``AwaitingStorage`` whose reads a task awaits. Valid only within
/// ``AwaitingStorage/readAwaiting(_:)``.
public protocol AwaitedReadConnection: AnyObject {
    /// The answers to `reads`, in their order, all as of one moment (PostgreSQL: one statement, so one
    /// snapshot).
    func answers(to reads: [AwaitedRead]) async throws -> [AwaitedReadAnswer]
}

/// What a reader asked for and was not answered yet: the attempt ends here, and runs again once it is.
/// Thrown through the reader; noted in ``FetchedReads`` too, so that a reader that catches it (a
/// `try?` around a read) cannot turn it into an answer.
struct ReadNotFetched: Error {}

/// The answers of one awaited statement, read as a ``StorageReadTransaction`` by a synchronous reader:
/// an answer when the statement had it (the read is noted as used), else ``ReadNotFetched`` and the read
/// noted as ``missing``.
///
/// A range is read a page at a time, each page a read of its own: a walk that goes on past a page's end
/// asks for the next page, from the key after the page's last.
final class FetchedReads: StorageReadTransaction {
    private struct Key: Hashable {
        let table: StorageTable
        let key: [UInt8]
    }

    /// A fetched page of entries, the most it was asked for, and whether it reached the table's end
    /// (fewer than asked for).
    private struct Page {
        let entries: [([UInt8], [UInt8])]
        let limit: Int
        var reachesEnd: Bool { entries.count < limit }
    }

    /// Entries read per page.
    static let pageSize = 512

    private var values: [Key: [UInt8]?] = [:]
    /// Pages by where they start (the key asked for; `[]` for the table's first).
    private var pages: [Key: Page] = [:]
    private var lasts: [StorageTable: ([UInt8], [UInt8])?] = [:]
    private var counts: [StorageTable: Int] = [:]

    /// The reads the current attempt was answered, in the order it first made them.
    private(set) var used: [AwaitedRead] = []
    /// The first read of the current attempt that was not answered.
    private(set) var missing: AwaitedRead?

    /// Starts an attempt: nothing used or missing yet.
    func beginAttempt() {
        used = []
        missing = nil
    }

    private func notFetched(_ read: AwaitedRead) -> ReadNotFetched {
        if missing == nil { missing = read }
        return ReadNotFetched()
    }

    private func use(_ read: AwaitedRead) {
        // A few reads at most (``JournalReader/awaitedReadLimit``): a search of the list is enough.
        if !used.contains(read) { used.append(read) }
    }

    /// Replaces what is held by the answers to `reads`, of one statement through `connection`.
    func fetch(_ reads: [AwaitedRead], from connection: any AwaitedReadConnection) async throws {
        let answers = try await connection.answers(to: reads)
        guard answers.count == reads.count else { throw AwaitedReadMismatch(reads: reads.count, answers: answers.count) }
        values = [:]
        pages = [:]
        lasts = [:]
        counts = [:]
        for (read, answer) in zip(reads, answers) {
            switch (read, answer) {
            case (.value(let table, let key), .value(let value)):
                values[Key(table: table, key: key)] = .some(value)
            case (.entries(let table, let start, let limit), .entries(let entries)):
                pages[Key(table: table, key: start)] = Page(entries: entries, limit: limit)
            case (.last(let table), .last(let last)):
                lasts[table] = .some(last)
            case (.count(let table), .count(let count)):
                counts[table] = count
            default:
                throw AwaitedReadMismatch(reads: reads.count, answers: answers.count)
            }
        }
    }

    func get(_ key: [UInt8], in table: StorageTable) throws -> [UInt8]? {
        if missing != nil { throw ReadNotFetched() }
        let read = AwaitedRead.value(table: table, key: key)
        guard let value = values[Key(table: table, key: key)] else { throw notFetched(read) }
        use(read)
        return value
    }

    func forEach(in table: StorageTable, from start: [UInt8]?, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        try forEach(in: table, from: start, limit: .max, body)
    }

    func forEach(in table: StorageTable, from start: [UInt8]?, limit: Int, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        if missing != nil { throw ReadNotFetched() }
        var left = limit
        var from = start ?? []
        while left > 0 {
            guard let page = pages[Key(table: table, key: from)] else {
                throw notFetched(.entries(table: table, start: from, limit: min(left, Self.pageSize)))
            }
            // Used as it was read, whatever this walk's own limit: two walks from one key (one of a few
            // entries, one of many) share its page, and the next statement reads it once, the same.
            use(.entries(table: table, start: from, limit: page.limit))
            for (key, value) in page.entries.prefix(left) {
                left -= 1
                guard try body(key, value) else { return }
            }
            guard !page.reachesEnd, let lastKey = page.entries.last?.0 else { return }
            // The next page starts at the smallest key after the last one seen.
            from = lastKey + [0]
        }
    }

    func last(in table: StorageTable) throws -> ([UInt8], [UInt8])? {
        if missing != nil { throw ReadNotFetched() }
        guard let last = lasts[table] else { throw notFetched(.last(table: table)) }
        use(.last(table: table))
        return last
    }

    func count(in table: StorageTable) throws -> Int {
        if missing != nil { throw ReadNotFetched() }
        guard let count = counts[table] else { throw notFetched(.count(table: table)) }
        use(.count(table: table))
        return count
    }
}

/// An ``AwaitedReadConnection`` answered reads it was not asked, or not as many: a fault of the store.
public struct AwaitedReadMismatch: Error, CustomStringConvertible {
    public let reads: Int
    public let answers: Int

    public init(reads: Int, answers: Int) {
        self.reads = reads
        self.answers = answers
    }

    public var description: String { "an awaited statement of \(reads) reads was answered with \(answers) answers of other kinds" }
}

/// What a reader's awaited reads (``JournalReader/read(awaiting:hint:otherwise:)``) have cost since it
/// was made, on a store that awaits its reads; on one that does not (LMDB), every count stays zero.
public struct AwaitedReadStatistics: Sendable, Equatable {
    /// Statements sent: one per attempt of a reader, the first of a hinted one included.
    public var statements = 0
    /// Round trips to the store that carried them: as many as ``statements`` unless the store gathers
    /// concurrent readers' statements into one (``AwaitingStorage/awaitedRoundTrips``); counted by the
    /// store, for every reader of it.
    public var roundTrips = 0
    /// Readers answered by awaited statements.
    public var answered = 0
    /// Readers answered by waiting instead: they read past the limits, or the store could not begin an
    /// awaited read then (``ReadNotAwaited``: no connection came in time, or its pool rests after a failure).
    public var waited = 0

    public init() {}
}

/// Where an awaited read (``JournalReader/read(awaiting:hint:otherwise:)``) finds the reads to fetch in its
/// first statement, kept in ``AwaitedReadHints``.
public struct AwaitedReadHint: Hashable, Sendable {
    enum Use: Hashable, Sendable {
        case learned
        case expected
    }

    let key: [UInt8]
    let use: Use

    /// The reads the last answer under `key` made, remembered for the next: for a reader repeated from
    /// request to request with the same reads (a session's, then its user's consents and key).
    public static func learned(_ key: [UInt8]) -> Self { Self(key: key, use: .learned) }

    /// The reads set up under `key` ahead of the reader (``JournalReader/expect(_:under:)``), taken by the
    /// next read under it, and nothing remembered after: for a reader made once, whose reads an earlier
    /// request already knows (a code's redemption: the code, and the key of the user it was issued to,
    /// both known when the code is issued).
    public static func expected(_ key: [UInt8]) -> Self { Self(key: key, use: .expected) }
}

/// The reads awaited readers are expected to make, by ``AwaitedReadHint``: learned from a reader's last
/// answer under a key its caller chooses (the session a request presents, say), or set up ahead of a
/// reader made once (``JournalReader/expect(_:under:)``), so that the read fetches them all in its first
/// statement instead of learning them one statement at a time.
///
/// A hint only decides what the first statement fetches, never what is answered: the reader runs on the
/// statement's answers as it always does, a remembered read it does not make is ignored, and one it makes
/// that was not remembered costs a statement more, as without a hint. So a stale or wrong hint costs
/// bytes, not correctness. Only readers that needed more than one read are learned (a reader of one read
/// gains nothing from a hint), and at most ``capacity`` keys, any one of them forgotten to make room;
/// expected reads are kept for at most ``expectedCapacity`` keys, the oldest forgotten first (a code is
/// redeemed within seconds of its issue, or not at all).
public final class AwaitedReadHints: Sendable {
    /// The most keys learned at once.
    public let capacity: Int
    /// The most keys whose reads are expected at once.
    public let expectedCapacity: Int
    private let remembered = Mutex<[[UInt8]: [AwaitedRead]]>([:])
    private let expected: Mutex<OldestFirstMap<[UInt8], [AwaitedRead]>>

    public init(capacity: Int = 4_096, expectedCapacity: Int = 16_384) {
        self.capacity = capacity
        self.expectedCapacity = expectedCapacity
        expected = Mutex(OldestFirstMap(capacity: expectedCapacity))
    }

    /// The reads learned under `key` (none if it is not known).
    public func reads(for key: [UInt8]) -> [AwaitedRead] {
        remembered.withLock { $0[key] ?? [] }
    }

    /// The reads expected under `key`, left in place (none if none are).
    public func expectedReads(for key: [UInt8]) -> [AwaitedRead] {
        expected.withLock { $0[key] ?? [] }
    }

    /// The reads to fetch first under `hint`: learned ones stay, expected ones are taken.
    func reads(for hint: AwaitedReadHint) -> [AwaitedRead] {
        switch hint.use {
        case .learned: reads(for: hint.key)
        case .expected: expected.withLock { $0.take(hint.key) ?? [] }
        }
    }

    /// Remembers `reads` under `key`, or forgets the key when they are one read or none.
    func remember(_ reads: [AwaitedRead], for key: [UInt8]) {
        remembered.withLock { remembered in
            guard reads.count > 1 else {
                remembered[key] = nil
                return
            }
            if remembered[key] == nil, remembered.count >= capacity, let any = remembered.indices.first {
                remembered.remove(at: any)
            }
            remembered[key] = reads
        }
    }

    /// Sets up `reads` for the next read under `key`'s ``AwaitedReadHint/expected(_:)`` hint, forgetting
    /// the oldest expected key when ``expectedCapacity`` are kept; none forgets the key.
    func expect(_ reads: [AwaitedRead], for key: [UInt8]) {
        expected.withLock { expected in
            guard !reads.isEmpty else {
                _ = expected.take(key)
                return
            }
            expected.insert(reads, for: key)
        }
    }

    /// How many keys are learned now.
    public var count: Int { remembered.withLock { $0.count } }

    /// How many keys have reads expected now.
    public var expectedCount: Int { expected.withLock { $0.count } }
}

/// A snapshot that answers every read with nothing (no value, no entries, an empty table), and notes the
/// reads it was asked for: what a reader would fetch first, before what it reads has been written
/// (``JournalReader/expect(_:under:)``).
final class NotedReads: StorageReadTransaction {
    private(set) var reads: [AwaitedRead] = []

    private func note(_ read: AwaitedRead) {
        if !reads.contains(read) { reads.append(read) }
    }

    func get(_ key: [UInt8], in table: StorageTable) throws -> [UInt8]? {
        note(.value(table: table, key: key))
        return nil
    }

    func forEach(in table: StorageTable, from start: [UInt8]?, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        try forEach(in: table, from: start, limit: .max, body)
    }

    func forEach(in table: StorageTable, from start: [UInt8]?, limit: Int, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        note(.entries(table: table, start: start ?? [], limit: min(limit, FetchedReads.pageSize)))
    }

    func last(in table: StorageTable) throws -> ([UInt8], [UInt8])? {
        note(.last(table: table))
        return nil
    }

    func count(in table: StorageTable) throws -> Int {
        note(.count(table: table))
        return 0
    }
}

extension JournalReader {
    /// The most statements one awaited read makes before it gives up and reads by waiting instead: a
    /// reader runs once more for each, and each statement reads again what the one before it read, so
    /// a reader that makes many reads (a lookup per entry of a list) costs less waited for on a thread
    /// of its own.
    public static let awaitedReadLimit = 16

    /// The most pages of entries (512 entries each) one awaited statement reads: a walk
    /// over more is read by waiting, since every statement of the walk reads its pages again.
    public static let awaitedPageLimit = 4

    /// Runs `body` against a consistent snapshot, as ``read(_:)`` does, awaiting its reads when the store
    /// can (``AwaitingStorage``): `body` runs again from the start each time it asks for something not
    /// answered yet, on the answers of one statement that reads what it used and what it missed, so it
    /// must only read. When the store cannot await its reads, or `body` needs more than
    /// ``awaitedReadLimit`` statements or a statement of more than ``awaitedPageLimit`` pages, or the
    /// store cannot begin an awaited read now (``ReadNotAwaited``), `otherwise` answers instead (a read
    /// that waits, on a thread that may wait).
    ///
    /// With a `hint`, the reads ``hints`` holds for it are fetched by the first statement: a reader whose
    /// reads depend on each other (a session, then its user's consents) costs one statement instead of
    /// one per read, as long as they are the ones expected. A ``AwaitedReadHint/learned(_:)`` hint
    /// remembers the reads of this answer for the next; an ``AwaitedReadHint/expected(_:)`` one is used
    /// once.
    public func read<R: Sendable>(
        awaiting body: (JournalSnapshot) throws -> R, hint: AwaitedReadHint? = nil, otherwise: () async throws -> R
    ) async throws -> R {
        guard awaitsReads, let storage = storage as? any AwaitingStorage else { return try await otherwise() }
        let layout = self.layout
        let expected = hint.map { hints.reads(for: $0) } ?? []
        let answer: (result: R, used: [AwaitedRead])?
        do {
            answer = try await storage.readAwaiting { connection in
                try await Self.attempts(of: body, layout: layout, expecting: expected, on: connection) {
                    self.awaitedCounts.withLock { $0.statements += 1 }
                }
            }
        } catch is ReadNotAwaited {
            answer = nil
        }
        if let answer {
            awaitedCounts.withLock { $0.answered += 1 }
            if let hint, hint.use == .learned { hints.remember(answer.used, for: hint.key) }
            return answer.result
        }
        awaitedCounts.withLock { $0.waited += 1 }
        return try await otherwise()
    }

    /// Whether ``read(awaiting:hint:otherwise:)`` awaits its reads now: the store can
    /// (``AwaitingStorage``, PostgreSQL) and is set up to. On a store that reads in place (LMDB) it is
    /// `false`, and a read costs a lookup: nothing is worth keeping to save one.
    public var awaitsReads: Bool { (storage as? any AwaitingStorage)?.awaitsReads ?? false }

    /// What this reader's awaited reads have cost since it was made (``read(awaiting:hint:otherwise:)``).
    public var awaitedReadStatistics: AwaitedReadStatistics {
        var statistics = awaitedCounts.withLock { $0 }
        statistics.roundTrips = (storage as? any AwaitingStorage)?.awaitedRoundTrips ?? statistics.statements
        return statistics
    }

    /// Sets up the reads `body` makes — run now, on a snapshot that answers every read with nothing — for
    /// the next read under ``AwaitedReadHint/expected(_:)`` `key` to fetch in its first statement. For a
    /// reader whose reads a request knows before they can be read (the code it issues, and its user):
    /// `body` makes the reads that reader will make, given the keys it will find. Nothing is set up when
    /// the store does not await its reads (LMDB), nor when `body` reads more than one statement may.
    public func expect(_ body: (JournalSnapshot) throws -> Void, under key: [UInt8]) {
        guard awaitsReads else { return }
        let noted = NotedReads()
        // An error is one of `body`'s own (nothing it reads can fail here): what it noted until then is
        // as good a guess as any.
        try? body(JournalSnapshot(transaction: noted, layout: layout))
        guard Self.fetchableFirst(noted.reads) else { return }
        hints.expect(noted.reads, for: key)
    }

    /// Runs `body` on the answers of the latest statement through `connection`, until it answers having
    /// used only those (its answer, and the reads it used), or the limits are reached (`nil`). The first
    /// statement fetches the `expected` reads, if there are any; else `body` first runs on no answers.
    private static func attempts<R>(
        of body: (JournalSnapshot) throws -> R, layout: JournalLayout, expecting expected: [AwaitedRead],
        on connection: any AwaitedReadConnection, sending: () -> Void
    ) async throws -> (result: R, used: [AwaitedRead])? {
        let fetched = FetchedReads()
        var statements = 0
        if !expected.isEmpty, fetchableFirst(expected) {
            sending()
            try await fetched.fetch(expected, from: connection)
            statements = 1
        }
        while true {
            fetched.beginAttempt()
            do {
                let result = try body(JournalSnapshot(transaction: fetched, layout: layout))
                if fetched.missing == nil { return (result, fetched.used) }
            } catch {
                // A read not answered is the attempt's end, whatever `body` made of it.
                if fetched.missing == nil { throw error }
            }
            guard let read = fetched.missing, statements < awaitedReadLimit else { return nil }
            let reads = fetched.used + [read]
            guard pages(in: reads) <= awaitedPageLimit else { return nil }
            sending()
            try await fetched.fetch(reads, from: connection)
            statements += 1
        }
    }

    /// Whether a hint's `reads` may be the first statement's: no more reads than statements allowed, no
    /// more pages than one statement may hold.
    private static func fetchableFirst(_ reads: [AwaitedRead]) -> Bool {
        reads.count <= awaitedReadLimit && pages(in: reads) <= awaitedPageLimit
    }

    private static func pages(in reads: [AwaitedRead]) -> Int {
        reads.count { if case .entries = $0 { true } else { false } }
    }
}
