import Foundation
import AuthCore
import AuthJournal
import LedgerCore
import LedgerJournal
import LedgerLMDB
import LedgerPostgres
import Logging
import NIOPosix
import PostgresNIO
import Synchronization
import Testing

/// The PostgreSQL server these tests run against: `AUTHLEDGER_TEST_POSTGRES` (tools/test starts a private
/// one and sets it). Without it the suite is skipped.
let testServer = ProcessInfo.processInfo.environment["AUTHLEDGER_TEST_POSTGRES"]

@Suite(
    "PostgreSQL: several journals on one database form one chain",
    .enabled(if: testServer != nil, "AUTHLEDGER_TEST_POSTGRES names no PostgreSQL server"),
    .serialized)
struct SharedJournalTests {
    @Test(
        "two writers on one database append concurrently: one gap-free chain that verifies, every event once (each holding the lock briefly, for its transactions, or one of each)",
        arguments: [(true, true), (false, false), (true, false)])
    func twoWritersOneChain(briefly: (Bool, Bool)) async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let nodeA = try database.openJournal(key: key.path, briefLock: briefly.0)
        let nodeB = try database.openJournal(key: key.path, briefLock: briefly.1)
        #expect(nodeA.journalID == nodeB.journalID)

        let receipts = try await withThrowingTaskGroup(of: [(String, UInt64)].self) { group in
            for (name, journal) in [("a", nodeA), ("b", nodeB)] {
                for task in 0..<4 {
                    group.addTask {
                        var sequences: [(String, UInt64)] = []
                        for index in 0..<25 {
                            let marker = "\(name)-\(task)-\(index)"
                            sequences.append((marker, try await journal.append(draft(marker)).sequence))
                        }
                        return sequences
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        await nodeA.close()
        await nodeB.close()

        #expect(receipts.count == 200)
        #expect(Set(receipts.map(\.1)).count == 200)
        let reader = try JournalReader(storage: try database.storage())
        defer { reader.close() }
        let report = try reader.verify(trust: .genesisKey).get()
        #expect(report.eventCount == 201)
        // Every receipt names the event that carries its marker.
        try reader.read { snapshot in
            for (marker, sequence) in receipts {
                let event = try #require(try snapshot.event(sequence))
                #expect(event.payload == draft(marker).payload)
            }
        }
    }

    @Test("a claim made in a projection at one writer is seen by the other: exactly one of many concurrent claims wins (the lock held briefly, or for transactions)", arguments: [true, false])
    func exactlyOnceAcrossWriters(briefly: Bool) async throws {
        struct AlreadyClaimed: Error {}
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let writers = try (0..<3).map { _ in try database.openJournal(key: key.path, projections: ["claims"], briefLock: briefly) }
        for round in 0..<5 {
            let claim = Array("code-\(round)".utf8)
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for writer in writers {
                    for _ in 0..<3 {
                        group.addTask {
                            do {
                                try await writer.transact { transaction in
                                    let claims = try transaction.projection("claims")
                                    guard try claims.get(claim) == nil else { throw AlreadyClaimed() }
                                    try claims.put([1], for: claim)
                                    try transaction.append(draft("claimed \(round)"))
                                }
                                return true
                            } catch is AlreadyClaimed {
                                return false
                            }
                        }
                    }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(wins == 1, "round \(round): \(wins) claims won")
        }
        for writer in writers { await writer.close() }
        #expect(try database.verified().eventCount == 6)
    }

    @Test("a second writer that starts on the same empty database at the same time joins the first one's journal")
    func concurrentCreation() async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let journals = try await withThrowingTaskGroup(of: Journal.self) { group in
            for _ in 0..<3 { group.addTask { try database.openJournal(key: key.path) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(journals.map(\.journalID)).count == 1)
        for journal in journals { await journal.close() }
        #expect(try database.verified().eventCount == 1)
    }

    @Test("a writer with another key is refused, and appends nothing")
    func otherKeyRefused() async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let first = try database.openJournal(key: key.path)
        try await first.append(draft("first"))
        let otherKey = TemporaryKey()
        #expect(throws: JournalError.self) { try database.openJournal(key: otherKey.path) }
        await first.close()
        #expect(try database.verified().eventCount == 2)
    }

    @Test("each writer signs with a key of its own, added by the first: one chain, every event by its writer's key")
    func keyPerWriter() async throws {
        let database = try await TestDatabase()
        let first = TemporaryKey()
        let nodeA = try database.openJournal(key: first.path)
        var keys: [TemporaryKey] = []
        for _ in 0..<2 {
            let key = TemporaryKey()
            let signing = Ed25519SigningKey.generate()
            try JournalKeyFile(path: key.path).create(signing)
            try await nodeA.addSigner(signing)
            keys.append(key)
        }
        let nodes = [nodeA] + (try keys.map { try database.openJournal(key: $0.path) })
        #expect(Set(nodes.map(\.activeKeyID)).count == 3)
        let written = try await withThrowingTaskGroup(of: [(UInt64, KeyID)].self) { group in
            for node in nodes {
                group.addTask {
                    var sequences: [(UInt64, KeyID)] = []
                    for index in 0..<20 { sequences.append((try await node.append(draft("\(node.activeKeyID) \(index)")).sequence, node.activeKeyID)) }
                    return sequences
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        for node in nodes { await node.close() }
        let genesisKey = try JournalKeyFile(path: first.path).load().publicKey
        let report = try database.verified(trust: .pinned([PinnedKey(genesisKey)]))
        #expect(report.eventCount == 63)
        #expect(Set(report.keyIDs) == Set(nodes.map(\.activeKeyID)))
        let reader = try JournalReader(storage: try database.storage())
        defer { reader.close() }
        let signedBy = try reader.read { snapshot in try written.map { try snapshot.event($0.0)?.keyID } }
        #expect(signedBy == written.map(\.1))
    }

    @Test("a writer whose last event is gone from the database (a restore, a failover that lost commits) stops appending, and leaves the lock free (held briefly, or for transactions)", arguments: [true, false])
    func lostCommitDetected(briefly: Bool) async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let journal = try database.openJournal(key: key.path, briefLock: briefly)
        let last = try await journal.append(draft("will be lost"))
        try await database.execute("DELETE FROM authledger_entries WHERE tbl = 'events' AND key = '\\x\(Hex.encode(last.sequence.bigEndianBytes))'::bytea")
        #expect(journal.appendingStopped == nil)
        let refused = await #expect(throws: JournalError.self) { try await journal.append(draft("would chain over a lost event")) }
        guard case .lostCommits(let sequence, _) = refused else {
            Issue.record("expected lostCommits, got \(String(describing: refused))")
            return
        }
        #expect(sequence == last.sequence)
        #expect(journal.appendingStopped != nil)
        // For good: another append fails the same way without asking the store.
        await #expect(throws: JournalError.self) { try await journal.append(draft("still refused")) }
        // The failed batches let go of the lock (a brief one with its connection, as PostgreSQL sees it close).
        var held = try await database.texts(Self.heldAdvisoryLocks)
        for _ in 0..<50 where !held.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            held = try await database.texts(Self.heldAdvisoryLocks)
        }
        #expect(held.isEmpty)
        await journal.close()
    }

    @Test("a host list: a server that refuses connections is passed over, the one that answers is kept and written to")
    func hostListSkipsDeadServer() async throws {
        let database = try await TestDatabase()
        var address = database.address
        address.endpoints.insert(.init(host: "127.0.0.1", port: 1), at: 0)  // nothing listens on port 1
        address.sessionTarget = .readWrite
        let key = TemporaryKey()
        var configuration = Journal.Configuration(keyFile: key.path)
        configuration.projections = []
        let journal = try Journal.open(configuration, storage: try PostgresStorage(address: address))
        try await journal.append(draft("through the second server"))
        await journal.close()
        #expect(try database.verified().eventCount == 2)
    }

    @Test("read-write passes over a server that does not take writes and says so; any accepts it")
    func readWriteTarget() async throws {
        let database = try await TestDatabase()
        try await database.execute("ALTER DATABASE \(database.address.database) SET default_transaction_read_only = on")
        var address = database.address
        address.endpoints.append(address.endpoints[0])
        address.sessionTarget = .readWrite
        do {
            _ = try PostgresStorage(address: address)
            Issue.record("a read-only server was accepted for writing")
        } catch {
            #expect("\(error)".contains("does not take writes (read-only)"), "\(error)")
        }
        address.sessionTarget = .any
        try PostgresStorage(address: address).close()
    }

    @Test("a node whose key another node removed appends nothing more, while it is still running")
    func removedNodeFenced() async throws {
        let database = try await TestDatabase()
        let first = TemporaryKey()
        let nodeA = try database.openJournal(key: first.path)
        let second = TemporaryKey()
        let nodeKey = Ed25519SigningKey.generate()
        try JournalKeyFile(path: second.path).create(nodeKey)
        try await nodeA.addSigner(nodeKey)
        let nodeB = try database.openJournal(key: second.path)
        try await nodeB.append(draft("B, still a signer"))
        try await nodeA.removeSigner(nodeKey.keyID)
        await #expect(throws: JournalError.self) { try await nodeB.append(draft("B, removed")) }
        try await nodeA.append(draft("A goes on"))
        await nodeA.close()
        await nodeB.close()
        #expect(try database.verified().eventCount == 5)
    }

    @Test("a store uses at most its maximum of connections: a taker beyond it waits, then fails cleanly; one given back serves it")
    func connectionCap() async throws {
        let database = try await TestDatabase()
        let storage = try PostgresStorage(address: database.address, maximumConnections: 2, connectionWait: .milliseconds(300))
        defer { storage.close() }
        _ = try storage.openTables(["events"], create: true)
        let first = try storage.beginWrite()
        let second = try storage.beginWrite()
        #expect(throws: PostgresStorageError.self) { try storage.beginWrite() }
        second.abort()
        let third = try storage.beginWrite()
        third.abort()
        first.abort()
        #expect(try storage.read { _ in true })
    }

    @Test("a write transaction whose connection the server closed fails at once: it does not wait out the reply deadline, and the store serves again")
    func connectionClosedUnderWriter() async throws {
        let database = try await TestDatabase()
        let storage = try PostgresStorage(address: database.address, maximumConnections: 2)
        defer { storage.close() }
        let table = try #require(try storage.openTables(["events"], create: true)["events"])
        let transaction = try storage.beginWrite()
        try transaction.put([1], for: [1], in: table)
        // The server ends every other session of the database (as a reset connection, or a restart, would).
        try await database.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        try await Task.sleep(for: .milliseconds(500))  // the node has seen its connection close
        let started = ContinuousClock.now
        #expect(throws: (any Error).self) { try transaction.commit() }
        // Before: a query written to the closed connection was never answered nor failed: it hung for good.
        // Not held until the reply deadline (40 s) either; 20 s leaves room for a busy machine.
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(try storage.read { _ in true }, "a new connection serves")
    }

    /// How the silent writer of ``silentLockHolderEnded(_:)`` holds the journal lock.
    enum SilentHolder: CaseIterable, Sendable {
        /// For its session, idle outside a transaction.
        case session
        /// For its session, idle in a transaction it opened after the lock (for a delete): its `BEGIN` goes
        /// alone, and the transaction's idle limit is the one the connection was given when it was made.
        case sessionInTransaction
        /// For its transaction, idle in it.
        case transaction
    }

    @Test("a writer gone silent while holding the journal lock is ended by PostgreSQL after the writers' idle timeout (30 s): another writer then commits, and the silent one's commit fails (the lock held for the session, idle; for the session, idle in a transaction it opened; or for its transaction, idle in it)", arguments: SilentHolder.allCases)
    func silentLockHolderEnded(_ kind: SilentHolder) async throws {
        let briefly = kind != .transaction
        let database = try await TestDatabase()
        let holderStore = try database.storage(briefLock: briefly)
        let otherStore = try database.storage(briefLock: briefly)
        defer {
            holderStore.close()
            otherStore.close()
        }
        let table = try #require(try holderStore.openTables(["events"], create: true)["events"])
        let holder = try holderStore.beginWrite()
        #expect(holderStore.holdsLockBriefly == briefly, "the test server runs PostgreSQL 14 or later")
        try holder.lockJournal()
        if kind == .sessionInTransaction {
            _ = try holder.delete([9], in: table)  // a write that goes out at once: BEGIN first
        }
        _ = try holder.get([0], in: table)  // the lock is held once this read is answered; then nothing more
        let started = ContinuousClock.now
        // The other writer waits for the lock on a thread of its own (not one that runs the tests' tasks).
        let committed = Task {
            try await Self.onThread {
                let other = try otherStore.beginWrite()
                try other.lockJournal()
                try other.put([2], for: [2], in: table, append: true)
                try other.commit()
            }
        }
        let limit = Task {
            try await Task.sleep(for: .seconds(60))
            // Without the timeout, the lock would be held for good: the test ends it, and fails.
            Issue.record("the silent writer still held the lock after 60 s")
            try await database.execute(
                """
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND state IN ('idle', 'idle in transaction')
                """)
        }
        try await committed.value
        limit.cancel()
        let waited = ContinuousClock.now - started
        #expect(waited >= .seconds(25), "it waited for the silent writer: \(waited)")
        #expect(waited < .seconds(40), "no longer than the idle timeout and a margin: \(waited)")
        #expect(throws: (any Error).self, "the silent writer's transaction was ended") {
            try holder.put([1], for: [1], in: table, append: true)
            try holder.commit()
        }
        #expect(try otherStore.read { try $0.get([2], in: table) } == [2])
        #expect(try otherStore.read { try $0.get([1], in: table) } == nil)
    }

    @Test("a read transaction may sit idle longer than the writers' idle timeout: a reader pauses between statements as long as its consumer likes (the connection's own limit, 30 s, is lifted for it)")
    func readTransactionMayPause() async throws {
        let database = try await TestDatabase()
        let storage = try database.storage(maximumConnections: 1)  // the read's connection is the store's only one
        defer { storage.close() }
        let table = try #require(try storage.openTables(["events"], create: true)["events"])
        let secondRead = Mutex<Result<[UInt8]?, any Error>?>(nil)
        // On a thread of its own: the read blocks it for longer than the timeout.
        try await Self.onThread {
            _ = try? storage.read { transaction in
                _ = try transaction.get([1], in: table)  // the transaction is open, and then idle
                Thread.sleep(forTimeInterval: 33)
                let value = Result { try transaction.get([2], in: table) }  // another key: a statement goes
                secondRead.withLock { $0 = value }
                return true
            }
        }
        let outcome = try #require(secondRead.withLock { $0 })
        #expect(try outcome.get() == nil, "answered after 33 s idle")
        #expect(storage.connectionsOpened == 1, "on the same connection")
    }

    @Test("the brief lock's function and procedure are made by a store's first batch, not by a store that is only read")
    func briefLockObjectsMadeByFirstBatch() async throws {
        let database = try await TestDatabase()
        let objectsExist = "SELECT (to_regproc('authledger_lock_read_v1') IS NOT NULL AND to_regproc('authledger_commit_unlock_v2') IS NOT NULL)::text"
        let key = TemporaryKey()
        let journal = try database.openJournal(key: key.path, briefLock: false)  // its genesis, without them
        await journal.close()
        #expect(try await database.texts(objectsExist) == ["false"])

        let reader = try JournalReader(storage: try database.storage())
        let head = try reader.read { try $0.head.sequence }
        #expect(head >= 1, "its genesis")
        #expect(try reader.verify(trust: .genesisKey).get().eventCount == head, "read and verified")
        reader.close()
        #expect(try await database.texts(objectsExist) == ["false"], "a store only read creates nothing")

        let store = try database.storage()
        defer { store.close() }
        #expect(!store.holdsLockBriefly, "not decided before a batch")
        let table = try #require(try store.openTables(["events"], create: true)["events"])
        let batch = try store.beginWrite()
        #expect(store.holdsLockBriefly, "the test server runs PostgreSQL 14 or later")
        try batch.lockJournal()
        try batch.put([1], for: [1], in: table, append: true)
        try batch.commit()
        #expect(try await database.texts(objectsExist) == ["true"])
        #expect(try store.read { try $0.get([1], in: table) } == [1])

        // One session, as a batch uses them: the function takes the lock and sets the idle timeout; the
        // procedure (no rows) commits, lets go of the lock and sets the timeout back to the session's own.
        let lockKey = 0x4175_7468_4C65_6467
        let none = "'{}'::text[], '{}'::bytea[], '{}'::bytea[]"
        let seen = try await database.texts(inOneSession: [
            "SELECT count(*)::text FROM authledger_lock_read_v1(\(lockKey), '30s', 'events', '\\x'::bytea, false, 1, '{}'::text[], '{}'::bytea[])",
            "SHOW idle_session_timeout",
            "SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted",
            "CALL authledger_commit_unlock_v2(\(lockKey), \(none), \(none), \(none))",
            "SHOW idle_session_timeout",
            "SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
        ])
        #expect(seen == [["1"], ["30s"], ["1"], [], ["0"], ["0"]], "locked with the timeout; then unlocked, the timeout the session's own")
    }

    @Test("a batch holding the lock briefly: while the writer works it out, the lock is its session's and no transaction is open; after its commit no one holds the lock")
    func briefLockHeldBetweenStatements() async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let journal = try database.openJournal(key: key.path, projections: ["claims"])
        let lockQuery = Self.heldAdvisoryLocks
        let seenInBatch = try await journal.transact { transaction -> [String] in
            try transaction.projection("claims").put([1], for: [1])
            try transaction.append(draft("claimed"))
            // The writer's own thread: it may wait here for the other connection's answer.
            let answer = Mutex<Result<[String], any Error>?>(nil)
            let done = DispatchSemaphore(value: 0)
            Task {
                let result: Result<[String], any Error>
                do { result = .success(try await database.texts(lockQuery)) } catch { result = .failure(error) }
                answer.withLock { $0 = result }
                done.signal()
            }
            done.wait()
            return try answer.withLock { $0! }.get()
        }
        #expect(seenInBatch == ["advisory idle"], "held by a session with no transaction open")
        #expect(try await database.texts(lockQuery).isEmpty, "let go of with the commit")
        // The function plans its reads at every call: a plan kept from when the table was small scans all of it.
        #expect(try await database.texts("SELECT array_to_string(proconfig, ',') FROM pg_proc WHERE proname = 'authledger_lock_read_v1'")
            == ["plan_cache_mode=force_custom_plan"])
        #expect(try database.verified().eventCount == 2)
        // The writer timed the batch's wait and catch-up, and its time under the lock after (the wait above, at least).
        #expect(journal.statistics.lockWaitAndCatchUp > .zero)
        #expect(journal.statistics.underLockAfterCatchUp > .zero)
        #expect(journal.statistics.writerCPUTime > .zero, "the writer's own CPU time on the batch")
        await journal.close()
    }

    @Test("a batch whose lock's statement fails (lock_timeout, another session holding the lock) writes nothing, though it read nothing after the lock", arguments: [true, false])
    func failedLockWritesNothing(briefly: Bool) async throws {
        let database = try await TestDatabase()
        let holderStore = try database.storage(briefLock: false)
        let table = try #require(try holderStore.openTables(["events"], create: true)["events"])
        try await database.execute("ALTER DATABASE \(database.address.database) SET lock_timeout = '300ms'")
        let writerStore = try database.storage(briefLock: briefly)
        defer {
            holderStore.close()
            writerStore.close()
        }
        let holder = try holderStore.beginWrite()
        try holder.lockJournal()
        _ = try holder.get([0], in: table)  // the lock is held once this read is answered
        #expect(throws: (any Error).self, "the lock was not granted within lock_timeout") {
            let writer = try writerStore.beginWrite()
            try writer.lockJournal()
            try writer.put([7], for: [7], in: table, append: true)
            try writer.commit()
        }
        holder.abort()
        #expect(try writerStore.read { try $0.get([7], in: table) } == nil, "nothing written without the lock")
    }

    /// The advisory locks held in the test's database now, each with the state of the session holding it.
    static let heldAdvisoryLocks = """
        SELECT l.locktype || ' ' || a.state FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
        WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()
        """

    /// Runs `body`, which may wait long, on a thread of its own.
    private static func onThread(_ body: @escaping @Sendable () throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    @Test("connections given back are kept: many concurrent readers, again and again, open no more than the maximum")
    func connectionsReused() async throws {
        let database = try await TestDatabase()
        let storage = try PostgresStorage(address: database.address, maximumConnections: 12)
        defer { storage.close() }
        _ = try storage.openTables(["events"], create: true)
        for _ in 0..<5 {
            // Twelve readers at once, each on a thread of its own, holding its connection until all twelve
            // have one.
            let holding = Atomic<Int>(0)
            let failures = Atomic<Int>(0)
            let done = DispatchGroup()
            for _ in 0..<12 {
                done.enter()
                Thread.detachNewThread {
                    defer { done.leave() }
                    do {
                        try storage.read { _ in
                            holding.add(1, ordering: .relaxed)
                            while holding.load(ordering: .relaxed) < 12 { usleep(1000) }
                        }
                    } catch {
                        failures.add(1, ordering: .relaxed)
                    }
                }
            }
            await withCheckedContinuation { continuation in done.notify(queue: .global()) { continuation.resume() } }
            #expect(failures.load(ordering: .relaxed) == 0)
        }
        // Opened at start-up (the check), then at most twelve, however often they were taken and given back.
        #expect(storage.connectionsOpened <= 13)
        #expect(storage.connectionsOpened >= 12)
    }

    @Test("LMDB to PostgreSQL and back: every stored byte is the same, and the copy is refused into a journal")
    func copyRoundTrip() async throws {
        let directory = NSTemporaryDirectory() + "authledger-pg-copy-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = Journal.Configuration(keyBeside: directory + "/source")
        configuration.projections = ["orders"]
        let source = try Journal.open(directory: directory + "/source", configuration)
        for index in 0..<300 {
            try await source.transact { transaction in
                try transaction.projection("orders").put(Array("placed".utf8), for: Array("order-\(index)".utf8))
                try transaction.append(draft("order \(index)"))
            }
        }
        await source.close()

        let database = try await TestDatabase()
        let lmdb = try JournalReader(directory: directory + "/source", projections: ["orders"])
        defer { lmdb.close() }
        let report = try lmdb.copy(to: try database.storage(), projections: ["orders"])
        #expect(report.head == 301)
        #expect(throws: JournalError.self) { try lmdb.copy(to: try database.storage(), projections: ["orders"]) }

        let postgres = try JournalReader(storage: try database.storage(), projections: ["orders"])
        defer { postgres.close() }
        let back = try LMDBStorage(writingTo: directory + "/back", initialMapSize: 8 << 20, tables: 1)
        _ = try postgres.copy(to: back, projections: ["orders"])
        back.close()
        let returned = try JournalReader(directory: directory + "/back", projections: ["orders"])
        defer { returned.close() }
        for reader in [postgres, returned] {
            #expect(try dump(reader) == (try dump(lmdb)))
            #expect(try reader.verify(trust: .genesisKey).get().rootHash == (try lmdb.verify(trust: .genesisKey).get().rootHash))
        }
    }
}

/// Every event record, checkpoint and projection entry, as stored.
private func dump(_ reader: JournalReader) throws -> [[UInt8]] {
    try reader.read { snapshot in
        var entries: [[UInt8]] = []
        try snapshot.forEachRecord { sequence, record in
            entries.append(sequence.bigEndianBytes + record)
            return true
        }
        entries += try snapshot.checkpoints().map { Array($0.text.utf8) }
        try snapshot.projection("orders").forEach { key, value in
            entries.append(key + [0] + value)
            return true
        }
        return entries
    }
}

private func draft(_ marker: String) -> EventDraft {
    EventDraft(type: "test.event", payload: Array("{\"marker\":\"\(marker)\"}".utf8))
}

/// A signing key file path in a fresh temporary directory (the file is created by the first journal).
final class TemporaryKey: Sendable {
    let directory = NSTemporaryDirectory() + "authledger-pg-key-\(UUID().uuidString.prefix(8))"
    var path: String { directory + "/journal.key" }

    init() {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }
}

/// A new, empty database on the test server, for one test.
struct TestDatabase: Sendable {
    let address: PostgresAddress

    init() async throws {
        let server = try PostgresAddress(url: try #require(testServer))
        let name = "authledger_test_\(UUID().uuidString.prefix(8).lowercased())"
        var configuration = PostgresConnection.Configuration(
            host: server.host, port: server.port, username: server.user, password: server.password, database: server.database,
            tls: .disable)
        configuration.options.connectTimeout = .seconds(5)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Logger(label: "test"))
        try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Logger(label: "test"))
        try await connection.close()
        var address = server
        address.database = name
        self.address = address
    }

    /// A store of this database. Its awaited reads wait up to 30 s for a connection (not 1 s): the
    /// suites run in parallel on 2 cores, and a lease that gives up makes a read wait instead, which the
    /// awaited reads' tests would see as a failure. With `briefLock: false`, its batches hold the
    /// journal lock for their transactions even where the server could let them hold it briefly;
    /// `awaitedReplyDeadline` is how long a statement of awaited reads waits for its reply.
    func storage(
        briefLock: Bool = true, maximumConnections: Int = PostgresStorage.defaultMaximumConnections,
        awaitedReplyDeadline: TimeAmount = PostgresStorage.defaultAwaitedReplyDeadline
    ) throws -> PostgresStorage {
        try PostgresStorage(
            address: address, maximumConnections: maximumConnections, awaitedLeaseWait: .seconds(30),
            awaitedReplyDeadline: awaitedReplyDeadline, briefLock: briefLock)
    }

    /// The report of verifying this database's journal with `trust` (a failure throws).
    func verified(trust: JournalVerifier.Trust = .genesisKey) throws -> VerificationReport {
        let reader = try JournalReader(storage: try storage())
        defer { reader.close() }
        return try reader.verify(trust: trust).get()
    }

    func openJournal(key: String, projections: [String] = [], briefLock: Bool = true) throws -> Journal {
        var configuration = Journal.Configuration(keyFile: key)
        configuration.projections = projections
        return try Journal.open(configuration, storage: try storage(briefLock: briefLock))
    }
}

/// The scratch CA that signed the test server's certificate (tools/postgres writes it as DIR/ca.crt).
let testServerCA = ProcessInfo.processInfo.environment["AUTHLEDGER_TEST_POSTGRES_CA"]

@Suite(
    "PostgreSQL over TLS: sslmode as libpq spells it",
    .enabled(if: testServer != nil && testServerCA != nil, "AUTHLEDGER_TEST_POSTGRES(_CA) name no TLS-enabled server"),
    .serialized)
struct PostgresTLSTests {
    @Test("verify-full against the server's CA connects over TLS, and the journal works")
    func verifiedConnection() async throws {
        let database = try await TestDatabase()
        let before = try await database.encryptedConnections()
        var address = database.address
        address.tlsMode = .verifyFull
        address.rootCertificates = testServerCA
        let key = TemporaryKey()
        var configuration = Journal.Configuration(keyFile: key.path)
        configuration.projections = []
        let journal = try Journal.open(configuration, storage: try PostgresStorage(address: address))
        try await journal.append(draft("over TLS"))
        #expect(try await database.encryptedConnections() > before)
        await journal.close()
        let parsed = try PostgresAddress(url: "\(testServer!)?sslmode=verify-full&sslrootcert=\(testServerCA!)")
        #expect(parsed.tlsMode == .verifyFull && parsed.rootCertificates == testServerCA)
        #expect(parsed.description.hasSuffix("?sslmode=verify-full"))
    }

    @Test("verify-full refuses a server whose certificate does not chain to the trusted roots, and accepts it by name with its CA")
    func unverifiedServerRefused() async throws {
        let database = try await TestDatabase()
        var address = database.address
        address.tlsMode = .verifyFull
        address.rootCertificates = nil  // the system's roots: the scratch CA is not among them
        #expect(throws: JournalError.self) { try PostgresStorage(address: address) }
        // With the server's CA, by either name its certificate carries.
        address.rootCertificates = testServerCA
        address.host = "localhost"
        let byName = try PostgresStorage(address: address)
        byName.close()
    }

    @Test("a bad sslmode is refused with the modes it accepts")
    func badMode() {
        #expect(throws: JournalError.self) { try PostgresAddress(url: "postgres://u@h/db?sslmode=allow-maybe") }
    }
}

extension TestDatabase {
    /// Runs `sql` on this test's database, as someone with direct access to it would.
    /// The first column of `sql`'s rows, as text, on a connection of its own.
    func texts(_ sql: String) async throws -> [String] {
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: address.host, port: address.port, username: address.user, password: address.password, database: address.database,
                tls: .disable),
            id: 4, logger: Logger(label: "test"))
        var texts: [String] = []
        for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test")) {
            texts.append(try row.decode(String.self))
        }
        try await connection.close()
        return texts
    }

    /// The first column of each statement's rows, as text, the statements run in order on one connection
    /// (one session).
    func texts(inOneSession statements: [String]) async throws -> [[String]] {
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: address.host, port: address.port, username: address.user, password: address.password, database: address.database,
                tls: .disable),
            id: 5, logger: Logger(label: "test"))
        var results: [[String]] = []
        do {
            for sql in statements {
                var texts: [String] = []
                for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test")) {
                    texts.append(try row.decode(String.self))
                }
                results.append(texts)
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
        return results
    }

    func execute(_ sql: String) async throws {
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: address.host, port: address.port, username: address.user, password: address.password, database: address.database,
                tls: .disable),
            id: 3, logger: Logger(label: "test"))
        try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test"))
        try await connection.close()
    }

    /// Connections to this test's database that use TLS, as PostgreSQL counts them.
    func encryptedConnections() async throws -> Int {
        let server = try PostgresAddress(url: try #require(testServer))
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: server.host, port: server.port, username: server.user, password: server.password, database: server.database,
                tls: .disable),
            id: 2, logger: Logger(label: "test"))
        defer { Task { try? await connection.close() } }
        // Only this test's database: other tests open and close connections meanwhile.
        let rows = try await connection.query(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE ssl AND datname = \(address.database)", logger: Logger(label: "test"))
        for try await count in rows.decode(Int64.self) { return Int(count) }
        return 0
    }
}

@Suite(
    "PostgreSQL: projections of another version are not rebuilt under running servers",
    .enabled(if: testServer != nil, "AUTHLEDGER_TEST_POSTGRES names no PostgreSQL server"))
struct SharedProjectionVersionTests {
    @Test("a server refuses a shared journal whose projections need a rebuild; rebuild-projections (servers stopped) does it")
    func rebuildRefusedUnderServers() async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let configuration = Journal.Configuration(keyFile: key.path)
        var ledger = try await AuthLedger.open(configuration, storage: try database.storage())
        try await ledger.journal.append(draft("something beyond the genesis"))
        // As if an older release had written the projections.
        try await ledger.journal.transact { transaction in
            try transaction.projection(ProjectionVersion.table).put(Array("2".utf8), for: Array("version".utf8))
        }
        await ledger.journal.close()

        await #expect(throws: ProjectionVersion.RebuildNeeded.self) {
            _ = try await AuthLedger.open(configuration, storage: try database.storage())
        }
        var withProjections = configuration
        withProjections.projections = AuthLedger.projections
        let journal = try Journal.open(withProjections, storage: try database.storage())
        #expect(try await ProjectionVersion.upgrade(journal, allowOnSharedStorage: true))
        await journal.close()
        ledger = try await AuthLedger.open(configuration, storage: try database.storage())
        await ledger.journal.close()
    }

    @Test("a journal created by `keys add` (genesis and a key, no projections yet) is opened by a server without a rebuild")
    func createdByKeysAdd() async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let journal = try database.openJournal(key: key.path)
        try await journal.addSigner(.generate())
        await journal.close()
        let ledger = try await AuthLedger.open(Journal.Configuration(keyFile: key.path), storage: try database.storage())
        #expect(try ledger.journal.read { try ProjectionVersion.stored(in: $0) } == ProjectionVersion.current)
        await ledger.journal.close()
    }
}

@Suite(
    "PostgreSQL: expired projection entries are pruned on a shared journal, and a rebuild agrees",
    .enabled(if: testServer != nil, "AUTHLEDGER_TEST_POSTGRES names no PostgreSQL server"))
struct SharedPruningTests {
    @Test("failed logins and sessions past their time are pruned in bounded commits; live ones stay; rebuilt equals live")
    func pruneShared() async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let ledger = try await AuthLedger.open(Journal.Configuration(keyFile: key.path), storage: try database.storage())
        ledger.dataKey = DataKey.generate()  // the failures' addresses are sealed
        let now = Journal.systemClock()
        try await ledger.record { recorder in
            for index in 0..<5 {
                try recorder.append(
                    .loginFailed(
                        LoginFailed(
                            username: "hmac-sha256:\(index)", connection: "db", reason: .unknownUser, interaction: nil,
                            clientIP: "198.51.100.\(index)", at: now.adding(seconds: -2 * 86_400))))
            }
            let session = SessionSnapshot(
                sessionHash: "live-session", userID: "auth0|alice", connection: "db", authTime: now, expiresAt: now.adding(seconds: 3600))
            try recorder.append(.loginSucceeded(LoginSucceeded(userID: "auth0|alice", connection: "db", session: session, interaction: nil, clientIP: nil)))
        }
        let report = try await ledger.pruneProjections(now: now, batchSize: 4)
        #expect(report.removed[.loginFailures] == 15, "5 failures, each under its account, account-and-address and address keys")
        #expect(report.events == 4, "commits of at most 4")
        let left = try ledger.read { store in
            (try store.entries(.loginFailures, prefix: "").count, try store.session("live-session") != nil)
        }
        #expect(left.0 == 0)
        #expect(left.1, "a live session stays")
        await ledger.journal.close()

        let reader = try JournalReader(storage: try database.storage(), projections: AuthLedger.projections)
        defer { reader.close() }
        let (rebuilt, live, _) = try ProjectionRebuild.rebuiltAndLive(from: reader)
        #expect(ProjectionRebuild.compare(rebuilt: rebuilt, live: live).isEmpty)
        _ = try database.verified()
    }
}

@Suite(
    "PostgreSQL: subject keys are kept wrapped in the shared store, and destroyed",
    .enabled(if: testServer != nil, "AUTHLEDGER_TEST_POSTGRES names no PostgreSQL server"))
struct SharedSubjectKeyTests {
    @Test("two writers on one database see one key per subject; destroying it is seen by both")
    func sharedKeys() async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let dataKey = DataKey.generate()
        let first = try database.openJournal(key: key.path)
        let second = try database.openJournal(key: key.path)
        let made = try await first.transact { try $0.subjectKey(for: "u:auth0|alice", dataKey: dataKey) }
        #expect(try await second.transact { try $0.subjectKey(for: "u:auth0|alice", dataKey: dataKey) } == made)
        #expect(try await second.transact { try $0.destroySubjectKey("u:auth0|alice") })
        #expect(try first.read { try $0.subjectKey("u:auth0|alice", dataKey: dataKey) } == nil)
        await first.close()
        await second.close()
    }
}

@Suite(
    "PostgreSQL: a user's sealed personal data is erased on a shared journal",
    .enabled(if: testServer != nil, "AUTHLEDGER_TEST_POSTGRES names no PostgreSQL server"))
struct SharedErasureTests {
    @Test("an address sealed under alice's key reads [erased] after eraseSubject; the journal verifies and rebuilds; bob's stays")
    func eraseShared() async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let dataKey = DataKey.generate()
        let ledger = try await AuthLedger.open(Journal.Configuration(keyFile: key.path), storage: try database.storage())
        ledger.dataKey = dataKey
        let now = Journal.systemClock()
        try await ledger.record { recorder in
            for (user, address) in [("auth0|alice", "203.0.113.10"), ("auth0|bob", "198.51.100.20")] {
                let session = SessionSnapshot(sessionHash: "s-" + user, userID: user, connection: "db", authTime: now, expiresAt: now.adding(seconds: 3600))
                try recorder.append(.loginSucceeded(LoginSucceeded(userID: user, connection: "db", session: session, interaction: nil, clientIP: address)))
            }
        }
        #expect(try await ledger.eraseSubject(userID: "auth0|alice", reason: "test").keysDestroyed == 1)
        #expect(try await ledger.eraseSubject(userID: "auth0|alice", reason: nil).keysDestroyed == 0)
        await ledger.journal.close()

        let reader = try JournalReader(storage: try database.storage(), projections: AuthLedger.projections)
        defer { reader.close() }
        let addresses = try reader.read { snapshot -> [String: String] in
            let opener = SealedValueOpener(snapshot: snapshot, dataKey: dataKey)
            var addresses: [String: String] = [:]
            try snapshot.forEachEvent { envelope in
                if case .loginSucceeded(let login) = try opener.event(envelope) { addresses[login.userID] = login.clientIP }
                return true
            }
            return addresses
        }
        #expect(addresses == ["auth0|alice": PersonalData.erased, "auth0|bob": "198.51.100.20"])
        let (rebuilt, live, _) = try ProjectionRebuild.rebuiltAndLive(from: reader)
        #expect(ProjectionRebuild.compare(rebuilt: rebuilt, live: live).isEmpty)
        _ = try database.verified()
    }
}

@Suite(
    "PostgreSQL: a shared journal's oldest events archived",
    .enabled(if: testServer != nil, "AUTHLEDGER_TEST_POSTGRES names no PostgreSQL server"))
struct SharedArchiveTests {
    @Test("archived to a directory: the bodies leave the database; the journal verifies from the cut, continues the archive, rebuilds, appends")
    func archiveShared() async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let ledger = try await AuthLedger.open(Journal.Configuration(keyFile: key.path), storage: try database.storage())
        ledger.dataKey = DataKey.generate()
        let now = Journal.systemClock()
        for round in 0..<5 {
            try await ledger.record { recorder in
                let user = "auth0|user\(round)"
                let session = SessionSnapshot(sessionHash: "s-\(round)", userID: user, connection: "db", authTime: now, expiresAt: now.adding(seconds: 3600))
                try recorder.append(.loginSucceeded(LoginSucceeded(userID: user, connection: "db", session: session, interaction: nil, clientIP: "203.0.113.\(round)")))
            }
        }
        let head = ledger.journal.head.sequence
        let directory = FileManager.default.temporaryDirectory.path + "/authledger-archive-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let summary = try await ledger.archive(before: head, to: try LMDBStorage(writingTo: directory, for: Journal.Configuration(keyBeside: directory)))
        #expect(summary.first == 1 && summary.through < head && summary.removed > summary.through)
        // The journal goes on after the cut.
        try await ledger.record { recorder in
            let session = SessionSnapshot(sessionHash: "s-late", userID: "auth0|late", connection: "db", authTime: now, expiresAt: now.adding(seconds: 3600))
            try recorder.append(.loginSucceeded(LoginSucceeded(userID: "auth0|late", connection: "db", session: session, interaction: nil, clientIP: "198.51.100.9")))
        }
        await ledger.journal.close()

        let reader = try JournalReader(storage: try database.storage(), projections: AuthLedger.projections)
        defer { reader.close() }
        let (prefix, first) = try reader.read { (try $0.archivedPrefix, try $0.record(1)) }
        #expect(prefix?.size == summary.through && first == nil, "the archived bodies left the database")
        let live = try reader.verify(trust: .genesisKey).get()
        #expect(live.archivedBefore == summary.through + 1)
        let archive = try JournalReader(directory: directory)
        defer { archive.close() }
        let archived = try archive.verify(trust: .genesisKey, continued: true).get()
        #expect(archived.prefix == prefix, "the journal continues its archive")
        #expect(ArchivedProjections.digest(try ArchivedState.stored(in: reader)) == ArchivedProjections.digest(try ArchivedState.projections(after: archive)))
        let (rebuilt, current, _) = try ProjectionRebuild.rebuiltAndLive(from: reader)
        #expect(ProjectionRebuild.compare(rebuilt: rebuilt, live: current).isEmpty)
    }
}
