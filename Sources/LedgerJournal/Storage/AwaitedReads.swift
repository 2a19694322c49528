/// A store whose reads are round trips that a task can await (PostgreSQL), rather than wait for on a
/// thread it blocks.
///
/// The journal's readers are synchronous code — projections, the decision's inputs, the snapshot's own
/// lookups — and stay so: they are shared with the replay tool and with LMDB, whose reads are lookups in
/// a memory map. ``JournalReader/read(awaiting:otherwise:)`` runs such a reader against what an awaited
/// transaction has fetched: when the reader asks for something not fetched yet, the attempt stops, the
/// task awaits that one read, and the reader runs again from the start on everything fetched so far.
/// Every fetch is made in the same read transaction, so every attempt sees one consistent snapshot; a
/// reader of a request makes a few reads, each one round trip, as it made them waiting.
public protocol AwaitingStorage: JournalStorage {
    /// Whether ``readAwaiting(_:)`` can be used (a store may await only some of its configurations).
    var awaitsReads: Bool { get }

    /// Runs `body` in one consistent read-only snapshot whose reads are awaited.
    func readAwaiting<R: Sendable>(_ body: (any AwaitedReadTransaction) async throws -> R) async throws -> R
}

/// What ``AwaitingStorage/readAwaiting(_:)`` throws when it cannot begin an awaited read now (PostgreSQL:
/// no connection of its pool came in time): the reader then reads by waiting instead.
public struct ReadNotAwaited: Error {
    public init() {}
}

/// Reads inside one read transaction of an ``AwaitingStorage``, each one awaited. Valid only while the
/// transaction is open.
public protocol AwaitedReadTransaction: AnyObject {
    /// The value stored under `key`, or `nil`.
    func get(_ key: [UInt8], in table: StorageTable) async throws -> [UInt8]?

    /// At most `limit` entries in key order, from the first key at or after `start` (the first entry when
    /// `nil`).
    func entries(in table: StorageTable, from start: [UInt8]?, limit: Int) async throws -> [([UInt8], [UInt8])]

    /// The entry with the largest key, or `nil` when the table is empty.
    func last(in table: StorageTable) async throws -> ([UInt8], [UInt8])?

    /// The number of entries.
    func count(in table: StorageTable) async throws -> Int
}

/// One read a reader asked for that ``FetchedReads`` does not hold yet.
enum PendingRead: Hashable {
    case value(table: StorageTable, key: [UInt8])
    /// Entries from the first key at or after `start` (`[]`: from the first), at most `limit`.
    case entries(table: StorageTable, start: [UInt8], limit: Int)
    case last(table: StorageTable)
    case count(table: StorageTable)
}

/// What a reader asked for and was not fetched yet: the attempt ends here, and runs again once it is.
/// Thrown through the reader; noted in ``FetchedReads`` too, so that a reader that catches it (a
/// `try?` around a read) cannot turn it into an answer.
struct ReadNotFetched: Error {}

/// The reads an awaited transaction has fetched, read as a ``StorageReadTransaction`` by a synchronous
/// reader: an answer when fetched, else ``ReadNotFetched`` and the read noted as ``missing``.
///
/// A range is fetched a page at a time, each page its own read: a walk that goes on past a page's end
/// asks for the next page, from the key after the page's last.
final class FetchedReads: StorageReadTransaction {
    private struct Key: Hashable {
        let table: StorageTable
        let key: [UInt8]
    }

    /// A fetched page of entries, and whether it reached the table's end (fewer than asked for).
    private struct Page {
        let entries: [([UInt8], [UInt8])]
        let reachesEnd: Bool
    }

    /// Entries fetched per range read.
    static let pageSize = 512

    private var values: [Key: [UInt8]?] = [:]
    /// Pages by where they start (the key asked for; `[]` for the table's first).
    private var pages: [Key: Page] = [:]
    private var lasts: [StorageTable: ([UInt8], [UInt8])?] = [:]
    private var counts: [StorageTable: Int] = [:]

    /// The first read of the current attempt that was not fetched.
    private(set) var missing: PendingRead?

    /// Starts an attempt: nothing missing yet.
    func beginAttempt() { missing = nil }

    private func notFetched(_ read: PendingRead) -> ReadNotFetched {
        if missing == nil { missing = read }
        return ReadNotFetched()
    }

    /// Fetches `read` through `transaction` and keeps its answer.
    func fetch(_ read: PendingRead, from transaction: any AwaitedReadTransaction) async throws {
        switch read {
        case .value(let table, let key):
            values[Key(table: table, key: key)] = .some(try await transaction.get(key, in: table))
        case .entries(let table, let start, let limit):
            let entries = try await transaction.entries(in: table, from: start.isEmpty ? nil : start, limit: limit)
            pages[Key(table: table, key: start)] = Page(entries: entries, reachesEnd: entries.count < limit)
        case .last(let table):
            lasts[table] = .some(try await transaction.last(in: table))
        case .count(let table):
            counts[table] = try await transaction.count(in: table)
        }
    }

    func get(_ key: [UInt8], in table: StorageTable) throws -> [UInt8]? {
        if missing != nil { throw ReadNotFetched() }
        guard let value = values[Key(table: table, key: key)] else { throw notFetched(.value(table: table, key: key)) }
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
        return last
    }

    func count(in table: StorageTable) throws -> Int {
        if missing != nil { throw ReadNotFetched() }
        guard let count = counts[table] else { throw notFetched(.count(table: table)) }
        return count
    }
}

extension JournalReader {
    /// The most reads one awaited read fetches before it gives up and reads by waiting instead: a reader
    /// runs once more for each, so one that makes many (a walk over many pages, a lookup per entry of a
    /// list) costs less waited for on a thread of its own.
    public static let awaitedReadLimit = 16

    /// Runs `body` against a consistent snapshot, as ``read(_:)`` does, awaiting each read when the store
    /// can (``AwaitingStorage``): `body` runs again from the start each time it asks for something not
    /// fetched yet, so it must only read. When the store cannot await its reads, or `body` asks for more
    /// than sixteen reads, or the store cannot begin an awaited read now (``ReadNotAwaited``),
    /// `otherwise` answers instead (a read that waits, on a thread that may wait).
    public func read<R: Sendable>(
        awaiting body: (JournalSnapshot) throws -> R, otherwise: () async throws -> R
    ) async throws -> R {
        guard let storage = storage as? any AwaitingStorage, storage.awaitsReads else { return try await otherwise() }
        let layout = self.layout
        let answer: R?
        do {
            answer = try await storage.readAwaiting { transaction in try await Self.attempts(of: body, layout: layout, on: transaction) }
        } catch is ReadNotAwaited {
            answer = nil
        }
        if let answer { return answer }
        return try await otherwise()
    }

    /// Runs `body` on what is fetched through `transaction`, fetching what it asks for, until it answers
    /// without asking for more (its answer) or has asked for `awaitedReadLimit` reads (`nil`).
    private static func attempts<R>(
        of body: (JournalSnapshot) throws -> R, layout: JournalLayout, on transaction: any AwaitedReadTransaction
    ) async throws -> R? {
        let fetched = FetchedReads()
        for attempt in 0...awaitedReadLimit {
            fetched.beginAttempt()
            do {
                let result = try body(JournalSnapshot(transaction: fetched, layout: layout))
                if fetched.missing == nil { return result }
            } catch {
                // A read not fetched is the attempt's end, whatever `body` made of it.
                if fetched.missing == nil { throw error }
            }
            guard let read = fetched.missing, attempt < awaitedReadLimit else { break }
            try await fetched.fetch(read, from: transaction)
        }
        return nil
    }
}
