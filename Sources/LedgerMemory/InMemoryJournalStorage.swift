import Dispatch
import LedgerJournal
import Synchronization

/// A ``JournalStorage`` in this process's memory, gone when it is released: for unit tests of the
/// layers above the store (the journal, projections, the server's routes), which then run without files
/// or a database. It keeps the protocol's whole contract — bytewise key order, snapshot reads, one
/// writer at a time, nested transactions — and the suites that check that contract run on it, on LMDB
/// and on PostgreSQL alike. Nothing is durable: never a journal's home.
public final class InMemoryJournalStorage: JournalStorage {
    /// The committed tables: each a sorted array of entries, copied on write, so that a reader's snapshot
    /// is the value it took.
    private let committed = Mutex<(tables: [String: MemoryTable], closed: Bool)>(([:], false))
    /// One write transaction at a time, from its beginning to its commit or abort.
    private let writer = DispatchSemaphore(value: 1)

    public var location: String { "memory" }
    public var isShared: Bool { false }

    public init() {}

    public func openTables(_ names: [String], create: Bool) throws -> [String: StorageTable] {
        try committed.withLock { state in
            guard !state.closed else { throw JournalError.closed }
            var opened: [String: StorageTable] = [:]
            for name in names {
                if state.tables[name] == nil {
                    guard create else { continue }
                    state.tables[name] = MemoryTable()
                }
                opened[name] = StorageTable(name: name)
            }
            return opened
        }
    }

    public func read<R>(_ body: (any StorageReadTransaction) throws -> R) throws -> R {
        let tables = try snapshot()
        return try body(MemoryTransaction(tables: tables))
    }

    public func beginWrite() throws -> any StorageWriteTransaction {
        writer.wait()
        do {
            return MemoryWriteTransaction(storage: self, tables: try snapshot(), parent: nil)
        } catch {
            writer.signal()
            throw error
        }
    }

    public func recover(from error: any Error) -> Bool { false }

    public func close() {
        committed.withLock { $0.closed = true }
    }

    private func snapshot() throws(JournalError) -> [String: MemoryTable] {
        try committed.withLock { state throws(JournalError) in
            guard !state.closed else { throw JournalError.closed }
            return state.tables
        }
    }

    /// Ends the write transaction, making `tables` the committed state when given.
    fileprivate func finishWrite(committing tables: [String: MemoryTable]?) throws {
        defer { writer.signal() }
        try committed.withLock { state throws(JournalError) in
            guard !state.closed else { throw JournalError.closed }
            if let tables { state.tables = tables }
        }
    }
}

/// One table's entries in bytewise key order.
struct MemoryTable: Sendable {
    private(set) var entries: [(key: [UInt8], value: [UInt8])] = []

    /// The index of the first entry whose key is at or after `key`.
    func lowerBound(_ key: [UInt8]) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].key.lexicographicallyPrecedes(key) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    func get(_ key: [UInt8]) -> [UInt8]? {
        let index = lowerBound(key)
        return index < entries.count && entries[index].key == key ? entries[index].value : nil
    }

    mutating func put(_ value: [UInt8], for key: [UInt8]) {
        let index = lowerBound(key)
        if index < entries.count && entries[index].key == key {
            entries[index].value = value
        } else {
            entries.insert((key, value), at: index)
        }
    }

    mutating func delete(_ key: [UInt8]) -> Bool {
        let index = lowerBound(key)
        guard index < entries.count && entries[index].key == key else { return false }
        entries.remove(at: index)
        return true
    }

    mutating func removeAll() { entries.removeAll() }
}

/// Reads of one state of the tables.
class MemoryTransaction: StorageReadTransaction {
    var tables: [String: MemoryTable]

    init(tables: [String: MemoryTable]) {
        self.tables = tables
    }

    func table(_ table: StorageTable) throws -> MemoryTable {
        guard let found = tables[table.name] else { throw JournalError.corrupt("table \(table.name) is not open") }
        return found
    }

    func get(_ key: [UInt8], in table: StorageTable) throws -> [UInt8]? {
        try self.table(table).get(key)
    }

    func forEach(in table: StorageTable, from start: [UInt8]?, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        // A copy: `body` may write to the table it reads.
        let entries = try self.table(table)
        var index = start.map(entries.lowerBound) ?? 0
        while index < entries.entries.count {
            let entry = entries.entries[index]
            guard try body(entry.key, entry.value) else { return }
            index += 1
        }
    }

    func last(in table: StorageTable) throws -> ([UInt8], [UInt8])? {
        try self.table(table).entries.last.map { ($0.key, $0.value) }
    }

    func count(in table: StorageTable) throws -> Int {
        try self.table(table).entries.count
    }
}

/// A write transaction: a private copy of the tables, given to its parent (or committed) when it commits.
final class MemoryWriteTransaction: MemoryTransaction, StorageWriteTransaction {
    private let storage: InMemoryJournalStorage
    private let parent: MemoryWriteTransaction?
    private var ended = false

    init(storage: InMemoryJournalStorage, tables: [String: MemoryTable], parent: MemoryWriteTransaction?) {
        self.storage = storage
        self.parent = parent
        super.init(tables: tables)
    }

    private func checkOpen() throws {
        guard !ended else { throw JournalError.corrupt("the transaction has ended") }
    }

    func put(_ value: [UInt8], for key: [UInt8], in table: StorageTable, append: Bool) throws {
        try checkOpen()
        _ = try self.table(table)
        tables[table.name]!.put(value, for: key)
    }

    @discardableResult
    func delete(_ key: [UInt8], in table: StorageTable) throws -> Bool {
        try checkOpen()
        _ = try self.table(table)
        return tables[table.name]!.delete(key)
    }

    func removeAll(in table: StorageTable) throws {
        try checkOpen()
        _ = try self.table(table)
        tables[table.name]!.removeAll()
    }

    func beginNested() throws -> any StorageWriteTransaction {
        try checkOpen()
        return MemoryWriteTransaction(storage: storage, tables: tables, parent: self)
    }

    /// One writer per store already: nothing to lock.
    func lockJournal() throws {}

    func commit() throws {
        try checkOpen()
        ended = true
        if let parent {
            parent.tables = tables
        } else {
            try storage.finishWrite(committing: tables)
        }
    }

    func abort() {
        guard !ended else { return }
        ended = true
        if parent == nil { try? storage.finishWrite(committing: nil) }
    }
}
