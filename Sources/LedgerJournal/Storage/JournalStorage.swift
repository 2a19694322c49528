/// Where a journal's bytes live: ordered key-value tables with atomic, durable write transactions.
///
/// The journal itself (chaining, signing, the Merkle tree, checkpoints, batching, verification) is
/// written once, above this protocol, so that every store holds byte-identical records made by the same
/// code. A store only keeps bytes under keys: `LedgerLMDB` embeds them in one process with LMDB,
/// `LedgerPostgres` shares them between processes on other machines through PostgreSQL.
///
/// Keys are ordered bytewise (as `memcmp` orders them) in every store, which is what makes sequence
/// numbers stored big-endian iterate in order.
public protocol JournalStorage: AnyObject, Sendable {
    /// Where the journal is, for messages (a directory, or a database address without its password).
    var location: String { get }

    /// Whether other processes may append to the same journal at the same time. A writer on shared
    /// storage takes ``StorageWriteTransaction/lockJournal()`` first in every batch and then reads the
    /// journal's end again, since another process may have moved it.
    var isShared: Bool { get }

    /// Opens the named tables, creating the missing ones when `create` is true. Tables that do not exist
    /// and are not created are left out of the result.
    func openTables(_ names: [String], create: Bool) throws -> [String: StorageTable]

    /// Runs `body` in a consistent read-only snapshot.
    func read<R>(_ body: (any StorageReadTransaction) throws -> R) throws -> R

    /// Begins a write transaction. The caller commits or aborts it, on the thread that began it.
    func beginWrite() throws -> any StorageWriteTransaction

    /// Called when a batch failed with `error`: returns true when the store fixed the cause and the batch
    /// should be tried again (LMDB grows a full map), false when the failure stands.
    func recover(from error: any Error) -> Bool

    /// Releases the store's files or connections. Later reads and writes fail with ``JournalError/closed``.
    func close()

    /// Lets go of the store's pages this process holds resident but does not need now (LMDB: its
    /// memory map's pages, which stay in the kernel's page cache and are mapped again when read), so
    /// that the process's resident memory does not grow with the journal. Safe while reads and writes go on.
    func releaseResidentPages()

    /// How many times, since the store was made, a caller running a Swift task waited on its thread for
    /// the store's I/O (PostgreSQL: a reply). Each such wait holds one of the few threads that run every
    /// task; request handlers read awaited instead (``AwaitingStorage``), so this counts what is left.
    var waitsInTasks: Int { get }
}

extension JournalStorage {
    /// Stores that map nothing have nothing to release.
    public func releaseResidentPages() {}

    /// Stores whose reads are lookups in place never wait for I/O in a task.
    public var waitsInTasks: Int { 0 }
}

/// A table of a ``JournalStorage``, as the store opened it.
public struct StorageTable: Sendable, Hashable {
    /// The table's name in the journal layout (`events`, `merkle`, `checkpoints`, `meta`, `p.<projection>`).
    public let name: String
    /// A number the store gave the table when it opened it, meaningful to that store alone (the journal
    /// only carries it back); 0 for a store that finds its tables by name.
    public let handle: UInt32

    public init(name: String, handle: UInt32 = 0) {
        self.name = name
        self.handle = handle
    }
}

/// Reads inside one transaction of a ``JournalStorage``. Valid only while the transaction is open.
public protocol StorageReadTransaction {
    /// The value stored under `key`, or `nil`.
    func get(_ key: [UInt8], in table: StorageTable) throws -> [UInt8]?

    /// Visits entries in key order from the first key at or after `start` (the first entry when `nil`)
    /// until `body` returns false.
    func forEach(in table: StorageTable, from start: [UInt8]?, _ body: ([UInt8], [UInt8]) throws -> Bool) throws

    /// Visits at most `limit` entries in key order from the first key at or after `start`, until `body`
    /// returns false. A store whose reads are round trips fetches no more than that (PostgreSQL: one query
    /// for a short range, where an open-ended walk fetches a page); the default walks and stops.
    func forEach(in table: StorageTable, from start: [UInt8]?, limit: Int, _ body: ([UInt8], [UInt8]) throws -> Bool) throws

    /// The entry with the largest key, or `nil` when the table is empty.
    func last(in table: StorageTable) throws -> ([UInt8], [UInt8])?

    /// The number of entries.
    func count(in table: StorageTable) throws -> Int
}

/// A write transaction of a ``JournalStorage``: everything in it becomes durable together at
/// ``commit()``, or not at all.
public protocol StorageWriteTransaction: StorageReadTransaction {
    /// Stores `value` under `key`. `append` promises that `key` sorts after every key in the table (a
    /// store may use it to write faster; it must still store the entry correctly).
    func put(_ value: [UInt8], for key: [UInt8], in table: StorageTable, append: Bool) throws

    /// Appends `bytes` to the value stored under `key` (stores `bytes` when there is none). A store whose
    /// reads are round trips appends on its side, without reading the value (PostgreSQL: an upsert that
    /// concatenates); one that reads in place reads and writes it (the default).
    func extend(_ bytes: [UInt8], for key: [UInt8], in table: StorageTable) throws

    /// Removes the entry under `key`; returns whether there was one.
    @discardableResult
    func delete(_ key: [UInt8], in table: StorageTable) throws -> Bool

    /// Removes every entry of `table`.
    func removeAll(in table: StorageTable) throws

    /// Begins a transaction nested in this one: its changes join this transaction when it commits and
    /// vanish when it aborts. This transaction must not be used until the nested one has ended.
    func beginNested() throws -> any StorageWriteTransaction

    /// Announces keys the transaction is about to read with ``StorageReadTransaction/get(_:in:)``, so that
    /// a store whose reads are round trips fetches them all at once (PostgreSQL: one query, sent behind
    /// what is already on its way); a store whose reads are lookups in place ignores it (the default).
    /// What it fetched answers later reads of those keys, unless the transaction changed them since.
    func prefetch(_ keys: [(table: StorageTable, key: [UInt8])]) throws

    /// Takes the journal's append lock for the rest of this transaction. Writers on shared storage hold
    /// it while they extend the chain, so that appends from every process form one sequence.
    func lockJournal() throws

    /// Makes the transaction's changes durable. The transaction has ended afterwards, whether or not the
    /// commit succeeded.
    func commit() throws

    /// Discards the transaction's changes.
    func abort()
}

extension StorageReadTransaction {
    /// Visits every entry in key order until `body` returns false.
    public func forEach(in table: StorageTable, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        try forEach(in: table, from: nil, body)
    }

    /// Walks from `start` and stops after `limit` entries.
    public func forEach(in table: StorageTable, from start: [UInt8]?, limit: Int, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        guard limit > 0 else { return }
        var visited = 0
        try forEach(in: table, from: start) { key, value in
            visited += 1
            return try body(key, value) && visited < limit
        }
    }
}

extension StorageWriteTransaction {
    /// Reads in place are as cheap as a prefetch: nothing to do.
    public func prefetch(_ keys: [(table: StorageTable, key: [UInt8])]) throws {}

    /// Stores `value` under `key`.
    public func put(_ value: [UInt8], for key: [UInt8], in table: StorageTable) throws {
        try put(value, for: key, in: table, append: false)
    }

    /// Reads the value under `key` and stores it with `bytes` appended.
    public func extend(_ bytes: [UInt8], for key: [UInt8], in table: StorageTable) throws {
        try put((try get(key, in: table) ?? []) + bytes, for: key, in: table, append: false)
    }
}

/// An error of a store itself (its files, its database server), as opposed to an error of the journal's
/// contents or of a request. A batch that meets one is not committed, and the error is reported as
/// ``JournalError/storage(_:)``.
public protocol StorageFailure: Error {
    /// Whether the failure is a request's own fault (a key or value too large for the store), so that
    /// the request fails alone and the rest of its batch goes on.
    var isRequestFault: Bool { get }
}
