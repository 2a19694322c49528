import Foundation
import LedgerJournal
import LedgerLMDB
import LedgerMemory
import LedgerPostgres
import Testing

/// The storage contract the journal relies on, checked with the same code on every store: in memory
/// (what unit tests of the layers above may use instead of a real store), LMDB and PostgreSQL.
///
/// Nested transactions (a batch's requests): a request's writes are seen by itself and by the batch once
/// it commits, and are gone when it aborts, whatever it did in between (single-key reads, range reads,
/// deletes, requests nested in it). The journal: concurrent appends make one chain that verifies.
@Suite("Every store keeps the storage contract: in memory, LMDB, PostgreSQL")
struct StoreContractTests {
    @Test("nested transactions, in memory")
    func nestedInMemory() throws {
        let storage = InMemoryJournalStorage()
        defer { storage.close() }
        try checkNestedSemantics(storage)
    }

    @Test("nested transactions, LMDB")
    func nestedLMDB() throws {
        let directory = NSTemporaryDirectory() + "authledger-nested-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let storage = try LMDBStorage(writingTo: directory, initialMapSize: 8 << 20, tables: 1)
        defer { storage.close() }
        try checkNestedSemantics(storage)
    }

    @Test("nested transactions, PostgreSQL (savepoints sent only when needed; the journal lock held briefly, or for transactions)",
          .enabled(if: testServer != nil, "AUTHLEDGER_TEST_POSTGRES names no PostgreSQL server"), arguments: [true, false])
    func nestedPostgres(briefly: Bool) async throws {
        let database = try await TestDatabase()
        let storage = try database.storage(briefLock: briefly)
        defer { storage.close() }
        try checkNestedSemantics(storage)
    }

    @Test("prefetched reads answer as reads would, after the transaction's own writes and deletes too", arguments: ["memory", "LMDB", "PostgreSQL", transactionLockStore])
    func prefetch(store: String) async throws {
        try await withStore(named: store, check: checkPrefetch)
    }

    @Test("extended values: bytes appended to what is stored, staged, written or absent, in requests kept and undone", arguments: ["memory", "LMDB", "PostgreSQL", transactionLockStore])
    func extend(store: String) async throws {
        try await withStore(named: store, check: checkExtend)
    }

    @Test("a range read of at most a number of entries: from a key, in key order, stopped by its limit or by the body", arguments: ["memory", "LMDB", "PostgreSQL", transactionLockStore])
    func limitedRange(store: String) async throws {
        try await withStore(named: store, check: checkLimitedRange)
    }

    @Test("the journal in memory: concurrent appends, one chain that verifies, every event where its receipt says")
    func journalInMemory() async throws {
        let key = TemporaryKey()
        try await checkJournal(storage: InMemoryJournalStorage(), keyFile: key.path)
    }

    @Test("the journal on LMDB: concurrent appends, one chain that verifies, every event where its receipt says")
    func journalLMDB() async throws {
        let key = TemporaryKey()
        let directory = NSTemporaryDirectory() + "authledger-contract-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await checkJournal(storage: try LMDBStorage(writingTo: directory, initialMapSize: 8 << 20, tables: 0), keyFile: key.path)
    }

    @Test("the journal on PostgreSQL: concurrent appends, one chain that verifies, every event where its receipt says (the lock held briefly, or for transactions)",
          .enabled(if: testServer != nil, "AUTHLEDGER_TEST_POSTGRES names no PostgreSQL server"), arguments: [true, false])
    func journalPostgres(briefly: Bool) async throws {
        let key = TemporaryKey()
        try await checkJournal(storage: try TestDatabase().storage(briefLock: briefly), keyFile: key.path)
    }
}

/// Appends 4 × 25 events from concurrent tasks, each with a projection write, then verifies the journal
/// and reads every event and projection entry back through a reader of the same store.
private func checkJournal(storage: any JournalStorage, keyFile: String) async throws {
    var configuration = Journal.Configuration(keyFile: keyFile)
    configuration.projections = ["markers"]
    let journal = try Journal.open(configuration, storage: storage)
    let receipts = try await withThrowingTaskGroup(of: [(String, UInt64)].self) { group in
        for task in 0..<4 {
            group.addTask {
                var sequences: [(String, UInt64)] = []
                for index in 0..<25 {
                    let marker = "\(task)-\(index)"
                    let sequence = try await journal.transact { transaction in
                        try transaction.projection("markers").put(bytes("seen"), for: bytes(marker))
                        return try transaction.append(EventDraft(type: "test.event", payload: bytes("{\"marker\":\"\(marker)\"}"))).sequence
                    }
                    sequences.append((marker, sequence))
                }
                return sequences
            }
        }
        return try await group.reduce(into: []) { $0 += $1 }
    }
    #expect(Set(receipts.map(\.1)).count == 100)
    let reader = try JournalReader(storage: storage, projections: ["markers"])
    let report = try reader.verify(trust: .genesisKey).get()
    #expect(report.eventCount == 101)
    try reader.read { snapshot in
        for (marker, sequence) in receipts {
            let event = try #require(try snapshot.event(sequence))
            #expect(event.payload == bytes("{\"marker\":\"\(marker)\"}"))
            #expect(try snapshot.projection("markers").get(bytes(marker)) == bytes("seen"))
        }
    }
    await journal.close()
}

/// Runs `check` on a new store: `memory`, `LMDB` (in a temporary directory), or `PostgreSQL` (a new
/// database of the test server; nothing is checked without one).
private func withStore(named store: String, check: (any JournalStorage) throws -> Void) async throws {
    let directory = NSTemporaryDirectory() + "authledger-store-\(UUID().uuidString.prefix(8))"
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let storage: any JournalStorage
    switch store {
    case "memory": storage = InMemoryJournalStorage()
    case "LMDB": storage = try LMDBStorage(writingTo: directory, initialMapSize: 8 << 20, tables: 1)
    default:
        guard testServer != nil else { return }
        storage = try await TestDatabase().storage(briefLock: store != transactionLockStore)
    }
    defer { storage.close() }
    try check(storage)
}

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// The name of a PostgreSQL store whose batches hold the journal lock for their transactions, beside
/// `PostgreSQL`, which holds it briefly (``BriefJournalLock``) on a server that can.
private let transactionLockStore = "PostgreSQL, lock held by transactions"

private func contents(_ transaction: any StorageReadTransaction, _ table: StorageTable) throws -> [String: String] {
    var found: [String: String] = [:]
    try transaction.forEach(in: table) { key, value in
        found[String(decoding: key, as: UTF8.self)] = String(decoding: value, as: UTF8.self)
        return true
    }
    return found
}

private func checkNestedSemantics(_ storage: any JournalStorage) throws {
    let table = try #require(try storage.openTables(["t"], create: true)["t"])
    let batch = try storage.beginWrite()
    try batch.put(bytes("base"), for: bytes("base"), in: table)
    try batch.put(bytes("doomed"), for: bytes("doomed"), in: table)

    // Writes and commits: its writes are the batch's.
    let kept = try batch.beginNested()
    try kept.put(bytes("a"), for: bytes("a"), in: table)
    #expect(try kept.get(bytes("a"), in: table) == bytes("a"))
    #expect(try kept.get(bytes("base"), in: table) == bytes("base"), "the batch's own writes, seen from a request")
    try kept.commit()
    #expect(try batch.get(bytes("a"), in: table) == bytes("a"))

    // Writes, reads its own writes by key, aborts: nothing of it stays (no savepoint was needed).
    let undone = try batch.beginNested()
    try undone.put(bytes("b"), for: bytes("b"), in: table)
    try undone.put(bytes("changed"), for: bytes("a"), in: table)
    #expect(try undone.get(bytes("a"), in: table) == bytes("changed"))
    #expect(try undone.get(bytes("nothing"), in: table) == nil)
    undone.abort()
    #expect(try batch.get(bytes("a"), in: table) == bytes("a"))
    #expect(try batch.get(bytes("b"), in: table) == nil)

    // Writes, reads a range (its writes must reach the server first), aborts.
    let ranged = try batch.beginNested()
    try ranged.put(bytes("c"), for: bytes("c"), in: table)
    #expect(try contents(ranged, table) == ["a": "a", "base": "base", "c": "c", "doomed": "doomed"])
    #expect(try ranged.count(in: table) == 4)
    ranged.abort()
    #expect(try contents(batch, table) == ["a": "a", "base": "base", "doomed": "doomed"])

    // Deletes (a change on the server at once), aborts: the row is back.
    let deleting = try batch.beginNested()
    try deleting.put(bytes("d"), for: bytes("d"), in: table)
    #expect(try deleting.delete(bytes("base"), in: table))
    #expect(try deleting.get(bytes("base"), in: table) == nil)
    deleting.abort()
    #expect(try batch.get(bytes("base"), in: table) == bytes("base"))
    #expect(try batch.get(bytes("d"), in: table) == nil)

    // Deletes and commits: gone.
    let deleted = try batch.beginNested()
    #expect(try deleted.delete(bytes("doomed"), in: table))
    try deleted.commit()
    #expect(try batch.get(bytes("doomed"), in: table) == nil)

    // A request nested in a request: its writes follow its parent's fate.
    let outer = try batch.beginNested()
    try outer.put(bytes("outer"), for: bytes("outer"), in: table)
    let inner = try outer.beginNested()
    try inner.put(bytes("inner"), for: bytes("inner"), in: table)
    try inner.commit()
    #expect(try outer.get(bytes("inner"), in: table) == bytes("inner"))
    outer.abort()
    #expect(try batch.get(bytes("inner"), in: table) == nil && batch.get(bytes("outer"), in: table) == nil)

    // An inner request undone inside an outer one that is kept, after a range read sent the outer's savepoint.
    let keeper = try batch.beginNested()
    try keeper.put(bytes("kept"), for: bytes("kept"), in: table)
    let dropped = try keeper.beginNested()
    try dropped.put(bytes("dropped"), for: bytes("dropped"), in: table)
    _ = try contents(dropped, table)
    dropped.abort()
    try keeper.put(bytes("after"), for: bytes("after"), in: table)
    try keeper.commit()

    try batch.commit()
    let stored = try storage.read { try contents($0, table) }
    #expect(stored == ["a": "a", "after": "after", "base": "base", "kept": "kept"])
}

private func checkLimitedRange(_ storage: any JournalStorage) throws {
    let table = try #require(try storage.openTables(["t"], create: true)["t"])
    let setup = try storage.beginWrite()
    for number in 0..<20 { try setup.put(bytes("v\(number)"), for: [UInt8(number)], in: table) }
    try setup.commit()
    let read = try storage.beginWrite()
    defer { read.abort() }
    func keys(from start: UInt8?, limit: Int, until stop: UInt8 = .max) throws -> [UInt8] {
        var found: [UInt8] = []
        try read.forEach(in: table, from: start.map { [$0] }, limit: limit) { key, value in
            #expect(value == bytes("v\(key[0])"))
            found.append(key[0])
            return key[0] < stop
        }
        return found
    }
    #expect(try keys(from: 5, limit: 3) == [5, 6, 7])
    #expect(try keys(from: nil, limit: 2) == [0, 1])
    #expect(try keys(from: 17, limit: 10) == [17, 18, 19], "fewer left than the limit")
    #expect(try keys(from: 3, limit: 0) == [])
    #expect(try keys(from: 3, limit: 10, until: 4) == [3, 4], "the body stops first")
    #expect(try keys(from: 0, limit: 1_000).count == 20)
}

private func checkExtend(_ storage: any JournalStorage) throws {
    let table = try #require(try storage.openTables(["t"], create: true)["t"])
    let setup = try storage.beginWrite()
    try setup.put(bytes("s"), for: bytes("stored"), in: table)
    try setup.put(bytes("p"), for: bytes("prefetched"), in: table)
    try setup.commit()

    let batch = try storage.beginWrite()
    try batch.prefetch([(table: table, key: bytes("prefetched"))])
    // A value stored before, one prefetched, and none: each gains the bytes.
    try batch.extend(bytes("1"), for: bytes("stored"), in: table)
    try batch.extend(bytes("1"), for: bytes("prefetched"), in: table)
    try batch.extend(bytes("1"), for: bytes("new"), in: table)
    #expect(try batch.get(bytes("stored"), in: table) == bytes("s1"))
    #expect(try batch.get(bytes("prefetched"), in: table) == bytes("p1"))
    #expect(try batch.get(bytes("new"), in: table) == bytes("1"))
    // Extended twice before a read; written, then extended; extended, then written.
    try batch.extend(bytes("2"), for: bytes("stored"), in: table)
    try batch.extend(bytes("3"), for: bytes("stored"), in: table)
    try batch.put(bytes("w"), for: bytes("written"), in: table)
    try batch.extend(bytes("1"), for: bytes("written"), in: table)
    try batch.extend(bytes("x"), for: bytes("replaced"), in: table)
    try batch.put(bytes("r"), for: bytes("replaced"), in: table)
    #expect(try batch.get(bytes("written"), in: table) == bytes("w1"))
    #expect(try batch.get(bytes("replaced"), in: table) == bytes("r"))

    // A request that extends and commits: its bytes join; nested in it, one that extends and aborts.
    let kept = try batch.beginNested()
    try kept.extend(bytes("4"), for: bytes("stored"), in: table)
    try kept.extend(bytes("2"), for: bytes("written"), in: table)
    let dropped = try kept.beginNested()
    try dropped.extend(bytes("!"), for: bytes("stored"), in: table)
    #expect(try dropped.get(bytes("stored"), in: table) == bytes("s1234!"))
    dropped.abort()
    try kept.extend(bytes("5"), for: bytes("stored"), in: table)
    try kept.commit()
    // A request that extends, reads a range (sending its bytes to the server), and aborts.
    let ranged = try batch.beginNested()
    try ranged.extend(bytes("?"), for: bytes("new"), in: table)
    #expect(try contents(ranged, table)["new"] == "1?")
    ranged.abort()
    #expect(try batch.get(bytes("new"), in: table) == bytes("1"))
    try batch.extend(bytes("6"), for: bytes("stored"), in: table)
    try batch.commit()

    let stored = try storage.read { try contents($0, table) }
    #expect(stored == ["stored": "s123456", "prefetched": "p1", "new": "1", "written": "w12", "replaced": "r"])
}

private func checkPrefetch(_ storage: any JournalStorage) throws {
    let table = try #require(try storage.openTables(["t"], create: true)["t"])
    let setup = try storage.beginWrite()
    for name in ["a", "b", "c", "d"] { try setup.put(bytes(name), for: bytes(name), in: table) }
    try setup.commit()

    let batch = try storage.beginWrite()
    try batch.prefetch(["a", "b", "c", "d", "missing"].map { (table: table, key: bytes($0)) })
    #expect(try batch.get(bytes("a"), in: table) == bytes("a"))
    #expect(try batch.get(bytes("missing"), in: table) == nil)

    // Written by a request that commits, its write sent to the server by a range read: read anew.
    let writer = try batch.beginNested()
    try writer.put(bytes("a2"), for: bytes("a"), in: table)
    _ = try contents(writer, table)
    try writer.commit()
    #expect(try batch.get(bytes("a"), in: table) == bytes("a2"))

    // Deleted: gone. Deleted by a request that aborts: back.
    #expect(try batch.delete(bytes("b"), in: table))
    #expect(try batch.get(bytes("b"), in: table) == nil)
    let undone = try batch.beginNested()
    #expect(try undone.delete(bytes("c"), in: table))
    #expect(try undone.get(bytes("c"), in: table) == nil)
    undone.abort()
    #expect(try batch.get(bytes("c"), in: table) == bytes("c"))

    // Written (staged) by a request that aborts: the prefetched value again.
    let staged = try batch.beginNested()
    try staged.put(bytes("d2"), for: bytes("d"), in: table)
    #expect(try staged.get(bytes("d"), in: table) == bytes("d2"))
    staged.abort()
    #expect(try batch.get(bytes("d"), in: table) == bytes("d"))

    // Cleared: everything prefetched of the table is gone with it.
    try batch.removeAll(in: table)
    #expect(try batch.get(bytes("d"), in: table) == nil && batch.get(bytes("a"), in: table) == nil)
    batch.abort()
    #expect(try storage.read { try contents($0, table) } == ["a": "a", "b": "b", "c": "c", "d": "d"])

    // Prefetched, then a range read first (PostgreSQL: both in one statement): the range is whole and
    // only its own, and the prefetched entries answer their reads.
    let other = try #require(try storage.openTables(["u"], create: true)["u"])
    let ranged = try storage.beginWrite()
    try ranged.put(bytes("x"), for: bytes("x"), in: other)
    try ranged.prefetch(["a", "b", "missing"].map { (table: table, key: bytes($0)) } + [(table: other, key: bytes("x"))])
    #expect(try contents(ranged, table) == ["a": "a", "b": "b", "c": "c", "d": "d"])
    var after: [String] = []
    try ranged.forEach(in: table, from: bytes("b"), limit: 2) { key, _ in
        after.append(String(decoding: key, as: UTF8.self))
        return true
    }
    #expect(after == ["b", "c"])
    #expect(try ranged.get(bytes("b"), in: table) == bytes("b"))
    #expect(try ranged.get(bytes("missing"), in: table) == nil)
    #expect(try ranged.get(bytes("x"), in: other) == bytes("x"), "written in the transaction before the prefetch went out")
    ranged.abort()
}
