import LedgerJournal
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import Synchronization
import Tracing

/// One connection's queries, waited for on the calling thread, with writes queued: ``send(_:)`` returns
/// at once, and the replies of everything sent are collected by ``flush()`` (which every read of a range
/// does first), so the caller waits once for many writes. On the wire each statement is still a round
/// trip of its own (postgres-nio sends a statement after the reply to the one before): fewer statements,
/// not more queuing, is what makes a batch shorter.
///
/// Upserts are staged (``stage(_:_:_:append:)``) and go out together as one multi-row `INSERT … SELECT
/// FROM unnest(…)` when a statement needs them on the server: a batch writes tens of rows per request
/// (records, Merkle nodes, projections), and one statement for all of them costs both ends far less than
/// one each.
///
/// Writes are staged in layers, one per open transaction level: the batch's transaction, then each
/// request's nested one. A nested level's `SAVEPOINT` is sent only when something of it must reach the
/// server before it ends (its staged writes, ahead of a range read; a delete): most requests only read
/// single keys and stage writes, so they end without a savepoint — committed by merging their layer into
/// the one below, undone by dropping it — and their writes go out with the batch's. A single-key read
/// is answered from the stage when the key was written there, else by the server (which has every
/// write sent so far, and no staged write of that key, so the answer is the same).
final class PostgresSession {
    let connection: PostgresConnection
    let logger: Logger
    private var pending: [PendingReply] = []
    /// The staged writes of each open level, the batch's transaction first.
    private var layers: [StagedLayer] = [StagedLayer(savepoint: nil)]
    /// How many writes are staged in all layers.
    private var stagedCount = 0
    /// A failure among replies already collected, reported by the next ``flush()``.
    private var deferredError: (any Error)?
    /// Entries fetched ahead of their reads (``prefetch(_:)``), by key; a `nil` value: no such entry.
    /// A statement that changes rows on the server drops what it may change.
    private var prefetched: [StagedKey: [UInt8]?] = [:]
    /// Keys to prefetch with the next statement that reads (``prefetch(_:)``), not sent yet.
    private var unsentPrefetch: [StagedKey]?

    /// Writes sent before the session waits for their replies, which bounds what is held in memory.
    static let maximumPending = 256

    /// Counts this session's waits made by a caller running a Swift task (``JournalStorage/waitsInTasks``).
    private let waitsInTasks: WaitsInTasks?

    /// Whether this session's batch holds the journal lock for the session rather than for a transaction
    /// (``BriefJournalLock``): it then opens a transaction only when a write must go out before its end.
    let holdsLockBriefly: Bool
    /// The session's lock was asked for (``lockBriefly()``) and its statement not sent yet: it goes out
    /// with the next statement, or as part of the catch-up's read (``runRange(in:from:after:limit:)``).
    private var lockPending = false
    /// The session's lock statement was sent: the connection may hold the lock, and is not reused unless
    /// the unlock succeeded.
    private(set) var lockSent = false
    /// Whether a transaction is open: from `BEGIN`, sent by the store for a batch that holds the lock for
    /// its transaction, and by this session before the first write that must go out early otherwise.
    private(set) var transactionOpen: Bool

    init(connection: PostgresConnection, logger: Logger, waitsInTasks: WaitsInTasks? = nil, holdsLockBriefly: Bool = false) {
        self.connection = connection
        self.logger = logger
        self.waitsInTasks = waitsInTasks
        self.holdsLockBriefly = holdsLockBriefly
        self.transactionOpen = !holdsLockBriefly
    }

    /// Asks for the journal lock for the session; taken by the next statement.
    func lockBriefly() {
        precondition(holdsLockBriefly && !lockSent)
        lockPending = true
    }

    /// Sends what must precede a statement: the session's lock, if asked for and not sent; and, before a
    /// statement that writes, `BEGIN` when no transaction is open. The transaction's idle timeout is the
    /// session's, set when the store made the connection (``PostgresStorage/idleTransactionSetting``), so
    /// that no moment passes with the lock held, a transaction open and no timeout.
    private func prepare(writing: Bool) {
        if claimPendingLock() {
            pending.append(submit(BriefJournalLock.lock))
        }
        if writing, !transactionOpen {
            transactionOpen = true
            pending.append(submit("BEGIN"))
        }
    }

    /// Whether the session's lock was asked for and not sent yet; if so, the caller sends the statement
    /// that takes it, and from now on the connection may hold it.
    private func claimPendingLock() -> Bool {
        guard lockPending else { return false }
        lockPending = false
        lockSent = true
        return true
    }

    /// A key of a table. Hashed by its key's bytes and its table name's length only: the writer looks
    /// staged and prefetched entries up several times for each read and write of a batch, and hashing the
    /// name's characters each time was most of that (`perf` on a node's writer: dictionary lookups a
    /// quarter of its CPU). Equal keys in tables whose names are as long collide, and are told apart by
    /// `==`, which compares the name too.
    private struct StagedKey: Hashable {
        let table: String
        let key: [UInt8]

        func hash(into hasher: inout Hasher) {
            hasher.combine(table.utf8.count)
            key.withUnsafeBytes { hasher.combine(bytes: $0) }
        }

        static func == (lhs: StagedKey, rhs: StagedKey) -> Bool {
            lhs.key == rhs.key && lhs.table == rhs.table
        }
    }

    /// What one transaction level has written and not sent.
    private struct StagedLayer {
        /// The level's savepoint (`nil` for the batch's transaction), and whether it was sent.
        let savepoint: String?
        var savepointSent = false
        /// Upserts, the last value per key (one statement cannot upsert one row twice).
        var upserts: [StagedKey: [UInt8]] = [:]
        /// Appends (records, Merkle nodes, checkpoints): plain inserts, so that writing a key twice fails
        /// the batch instead of replacing history.
        var appends: [(StagedKey, [UInt8])] = []
        /// Bytes to append to the value on the server (``PostgresSession/stageExtension(_:_:_:)``), all of
        /// this level's per key; a key is never in both `upserts` and `extensions` (an upsert of it takes
        /// in what was to be appended after it, and replaces what was to be appended before).
        var extensions: [StagedKey: [UInt8]] = [:]

        init(savepoint: String?) { self.savepoint = savepoint }

        var isEmpty: Bool { upserts.isEmpty && appends.isEmpty && extensions.isEmpty }
        var count: Int { upserts.count + appends.count + extensions.count }
    }

    /// Staged writes sent at once, which bounds what is held in memory.
    static let maximumStaged = 2048

    /// Stages a write of `value` under `key` in `table` at the innermost level, sent when needed: an
    /// insert that must not meet an existing key when `append`, else an upsert.
    func stage(_ table: String, _ key: [UInt8], _ value: [UInt8], append: Bool) {
        let entry = StagedKey(table: table, key: key)
        if append {
            layers[layers.count - 1].appends.append((entry, value))
        } else {
            layers[layers.count - 1].upserts[entry] = value
            if layers[layers.count - 1].extensions.removeValue(forKey: entry) != nil { stagedCount -= 1 }
        }
        stagedCount += 1
        sendWhenStagedEnough()
    }

    /// Stages appending `bytes` to the value under `key` in `table` (to nothing, when there is none) at
    /// the innermost level: sent as an upsert that concatenates, so that it needs no read of the value.
    func stageExtension(_ table: String, _ key: [UInt8], _ bytes: [UInt8]) {
        let entry = StagedKey(table: table, key: key)
        let innermost = layers.count - 1
        if layers[innermost].upserts[entry] != nil {
            layers[innermost].upserts[entry]! += bytes
            return
        }
        if layers[innermost].extensions[entry] == nil { stagedCount += 1 }
        layers[innermost].extensions[entry, default: []] += bytes
        sendWhenStagedEnough()
    }

    private func sendWhenStagedEnough() {
        if stagedCount >= Self.maximumStaged {
            sendStaged()
            if pending.count >= Self.maximumPending {
                do { try flush() } catch { deferredError = deferredError ?? error }
            }
        }
    }

    /// The value staged for `key` in `table` at any open level, the innermost first (with the bytes staged
    /// to be appended to it since); `nil` when none is. Bytes staged to be appended to a value only the
    /// server holds are not a value (``hasStagedExtension(_:_:)``).
    func stagedValue(_ table: String, _ key: [UInt8]) -> [UInt8]? {
        let entry = StagedKey(table: table, key: key)
        var suffix: [UInt8] = []
        for layer in layers.reversed() {
            if let value = layer.upserts[entry] { return value + suffix }
            if let (_, value) = layer.appends.last(where: { $0.0 == entry }) { return value + suffix }
            if let bytes = layer.extensions[entry] { suffix = bytes + suffix }
        }
        return nil
    }

    /// Whether bytes are staged to be appended to the value under `key` in `table` on the server: then
    /// only the server knows the value, once they are sent.
    func hasStagedExtension(_ table: String, _ key: [UInt8]) -> Bool {
        let entry = StagedKey(table: table, key: key)
        return layers.contains { $0.extensions[entry] != nil }
    }

    /// Keeps `keys` to be fetched with one query, which answers their next reads
    /// (``prefetchedValue(_:_:)``). The query goes out with the transaction's next range read, as part of
    /// the same statement (``runRange(_:)``), or alone before a read of one key or a change:
    /// postgres-nio sends a connection's statements one at a time (each after the reply to the one
    /// before; `ConnectionStateMachine.enqueue` queues them while a query is in progress), so every
    /// statement is a round trip, and a batch's announced reads cost none of their own when they ride on
    /// its catch-up read.
    func prefetch(_ keys: [(table: String, key: [UInt8])]) {
        unsentPrefetch = (unsentPrefetch ?? []) + keys.map { StagedKey(table: $0.table, key: $0.key) }
    }

    /// The entries under `entries`' keys that exist, `tbl, key, value`: the prefetch, bound after
    /// `bindsBefore` other values (a statement it is part of).
    private static func prefetchSQL(bindsBefore: Int) -> String {
        """
        SELECT tbl, key, value FROM authledger_entries
        WHERE (tbl, key) IN (SELECT * FROM unnest($\(bindsBefore + 1)::text[], $\(bindsBefore + 2)::bytea[]))
        """
    }

    /// `query` with the prefetch of `entries` added to its SQL by `combine` and to its binds.
    private static func adding(_ entries: [StagedKey], to query: PostgresQuery, _ combine: (String, String) -> String) -> PostgresQuery {
        let (tables, keyColumn, _) = columns(entries.map { ($0, []) })
        var combined = PostgresQuery(unsafeSQL: combine(query.sql, prefetchSQL(bindsBefore: query.binds.count)), binds: query.binds)
        combined.binds.append(tables)
        combined.binds.append(keyColumn)
        return combined
    }

    /// The entry under `key` in `table` as a prefetch found it: `.some(nil)` when there is none, `nil`
    /// when it was not prefetched (or may have changed since).
    func prefetchedValue(_ table: String, _ key: [UInt8]) throws -> [UInt8]?? {
        try runPrefetch()
        return prefetched[StagedKey(table: table, key: key)]
    }

    /// Runs the prefetch still unsent, alone, and takes its rows into ``prefetched``.
    private func runPrefetch() throws {
        guard let entries = unsentPrefetch else { return }
        unsentPrefetch = nil
        let rows = try run(Self.adding(entries, to: PostgresQuery(unsafeSQL: "")) { _, prefetch in prefetch })
        keep(prefetched: entries, rows: try rows.map { try $0.decode((String, ByteBuffer, ByteBuffer).self) })
    }

    /// Records what a prefetch of `keys` found: `found`'s entries, and that the others do not exist.
    private func keep(prefetched keys: [StagedKey], rows found: [(String, ByteBuffer, ByteBuffer)]) {
        for key in keys { prefetched[key] = .some(nil) }
        for (table, key, value) in found {
            prefetched[StagedKey(table: table, key: Array(key.readableBytesView))] = .some(Array(value.readableBytesView))
        }
    }

    /// Runs a range read (``EntryQueries/page(in:from:after:limit:)``) after everything sent, and returns
    /// its entries; a prefetch still unsent goes in the same statement (`UNION ALL`), and its rows are
    /// kept. When the session's lock is still to be taken, the statement takes it first, and reads after
    /// it (``BriefJournalLock/lockAndRead(page:from:after:limit:wanted:)``).
    func runRange(in table: String, from start: [UInt8], after: Bool, limit: Int) throws -> [([UInt8], [UInt8])] {
        let page = EntryQueries.page(in: table, from: start, after: after, limit: limit)
        let combined: PostgresQuery
        let entries = unsentPrefetch ?? []
        if claimPendingLock() {
            unsentPrefetch = nil
            let (tables, keys, _) = Self.columns(entries.map { ($0, []) })
            combined = BriefJournalLock.lockAndRead(page: table, from: start, after: after, limit: limit, wanted: (tables, keys))
        } else if unsentPrefetch != nil {
            unsentPrefetch = nil
            // The page's rows have no table (NULL); the prefetched entries name theirs.
            combined = Self.adding(entries, to: page) { page, prefetch in
                "SELECT NULL::text, key, value FROM (\(page)) AS page UNION ALL \(prefetch)"
            }
        } else {
            return try EntryQueries.entries(of: run(page))
        }
        var pageRows: [([UInt8], [UInt8])] = []
        var found: [(String, ByteBuffer, ByteBuffer)] = []
        for row in try run(combined) {
            let (table, key, value) = try row.decode((String?, ByteBuffer, ByteBuffer).self)
            if let table { found.append((table, key, value)) } else { pageRows.append((EntryQueries.bytes(key), EntryQueries.bytes(value))) }
        }
        keep(prefetched: entries, rows: found)
        return pageRows
    }

    /// Drops what was prefetched of `table` (of its entry under `key` only, when given): a statement is
    /// about to change it on the server. A prefetch not sent yet goes out after the change, and reads it.
    func forgetPrefetched(_ table: String, key: [UInt8]? = nil) {
        guard !prefetched.isEmpty else { return }
        if let key {
            prefetched[StagedKey(table: table, key: key)] = nil
        } else {
            prefetched = prefetched.filter { $0.key.table != table }
        }
    }

    /// Opens a nested level whose savepoint is `savepoint`; nothing is sent yet.
    func beginLevel(savepoint: String) {
        layers.append(StagedLayer(savepoint: savepoint))
    }

    /// Ends the innermost nested level, keeping its writes: they join the level below (and its savepoint,
    /// if it was sent, is released).
    func commitLevel() {
        precondition(layers.count > 1, "no nested level is open")
        let layer = layers.removeLast()
        if let savepoint = layer.savepoint, layer.savepointSent {
            // Its writes staged since the savepoint stay staged: they are the enclosing level's now.
            pending.append(submit("RELEASE SAVEPOINT \(unescaped: savepoint)"))
        }
        for (key, value) in layer.upserts {
            layers[layers.count - 1].upserts[key] = value
            if layers[layers.count - 1].extensions.removeValue(forKey: key) != nil { stagedCount -= 1 }
        }
        for (key, bytes) in layer.extensions {
            if layers[layers.count - 1].upserts[key] != nil {
                layers[layers.count - 1].upserts[key]! += bytes
                stagedCount -= 1
            } else if layers[layers.count - 1].extensions[key] != nil {
                layers[layers.count - 1].extensions[key]! += bytes
                stagedCount -= 1
            } else {
                layers[layers.count - 1].extensions[key] = bytes
            }
        }
        // An append after an upsert of the same key keeps failing as it must: both are sent in that order.
        layers[layers.count - 1].appends += layer.appends
    }

    /// Ends the innermost nested level, undoing its writes; returns whether the server had to be told
    /// (its savepoint had been sent), in which case the caller rolls back to it.
    func abortLevel() -> (savepoint: String, sent: Bool) {
        precondition(layers.count > 1, "no nested level is open")
        let layer = layers.removeLast()
        stagedCount -= layer.count
        return (layer.savepoint ?? "", layer.savepointSent)
    }

    /// Forgets every staged write (the transaction is being rolled back).
    func discardStaged() {
        layers = [StagedLayer(savepoint: nil)]
        stagedCount = 0
    }

    /// Sends the staged writes of every level, each level's after its savepoint (sent now if it was not),
    /// without waiting for their replies. With `throughInnermost`, every open level's savepoint is sent
    /// even without writes: a statement that changes the server's rows follows, and must be undoable
    /// with its level.
    private func sendStaged(throughInnermost: Bool = false) {
        guard stagedCount > 0 || throughInnermost else { return }
        prepare(writing: true)
        let lastWithWrites = layers.lastIndex { !$0.isEmpty } ?? 0
        let through = throughInnermost ? layers.count - 1 : lastWithWrites
        for index in layers.indices where index <= through {
            if let savepoint = layers[index].savepoint, !layers[index].savepointSent {
                pending.append(submit("SAVEPOINT \(unescaped: savepoint)"))
                layers[index].savepointSent = true
            }
            let layer = layers[index]
            // Sent, these writes are the server's: what a prefetch found of their keys is out of date.
            if !prefetched.isEmpty {
                for (key, _) in layer.appends { forgetPrefetched(key.table, key: key.key) }
                for key in layer.upserts.keys { forgetPrefetched(key.table, key: key.key) }
                for key in layer.extensions.keys { forgetPrefetched(key.table, key: key.key) }
            }
            if !layer.appends.isEmpty {
                let (tables, keys, values) = Self.columns(layer.appends)
                pending.append(
                    submit("INSERT INTO authledger_entries (tbl, key, value) SELECT * FROM unnest(\(tables)::text[], \(keys)::bytea[], \(values)::bytea[])"))
            }
            if !layer.upserts.isEmpty {
                let (tables, keys, values) = Self.columns(layer.upserts.map { ($0.key, $0.value) })
                pending.append(
                    submit("""
                        INSERT INTO authledger_entries (tbl, key, value) SELECT * FROM unnest(\(tables)::text[], \(keys)::bytea[], \(values)::bytea[])
                        ON CONFLICT (tbl, key) DO UPDATE SET value = EXCLUDED.value
                        """))
            }
            if !layer.extensions.isEmpty {
                let (tables, keys, values) = Self.columns(layer.extensions.map { ($0.key, $0.value) })
                pending.append(
                    submit("""
                        INSERT INTO authledger_entries (tbl, key, value) SELECT * FROM unnest(\(tables)::text[], \(keys)::bytea[], \(values)::bytea[])
                        ON CONFLICT (tbl, key) DO UPDATE SET value = authledger_entries.value || EXCLUDED.value
                        """))
            }
            layers[index].appends = []
            layers[index].upserts = [:]
            layers[index].extensions = [:]
        }
        stagedCount = 0
    }

    private static func columns(_ rows: [(StagedKey, [UInt8])]) -> ([String], [ByteBuffer], [ByteBuffer]) {
        var tables: [String] = []
        var keys: [ByteBuffer] = []
        var values: [ByteBuffer] = []
        tables.reserveCapacity(rows.count)
        keys.reserveCapacity(rows.count)
        values.reserveCapacity(rows.count)
        for (entry, value) in rows {
            tables.append(entry.table)
            keys.append(ByteBuffer(bytes: entry.key))
            values.append(ByteBuffer(bytes: value))
        }
        return (tables, keys, values)
    }

    /// Sends `query`, which changes rows, behind every staged write and every open level's savepoint,
    /// without waiting for its reply.
    func sendWrite(_ query: PostgresQuery) {
        sendStaged(throughInnermost: true)
        sendNow(query)
    }

    /// Runs `query`, which changes rows, behind every staged write and every open level's savepoint, and
    /// returns its rows.
    @discardableResult
    func runWrite(_ query: PostgresQuery) throws -> PostgresQueryResult {
        sendStaged(throughInnermost: true)
        return try run(query)
    }

    /// Runs `query`, a read of one key that is not staged, at once: the writes still staged cannot change
    /// its answer, so they stay staged.
    func runKeyRead(_ query: PostgresQuery) throws -> PostgresQueryResult {
        try runAfterPending(query)
    }

    /// Sends `query` (after the staged writes) without waiting for its reply.
    func send(_ query: PostgresQuery) {
        sendStaged()
        sendNow(query)
    }

    private func sendNow(_ query: PostgresQuery) {
        prepare(writing: false)
        pending.append(submit(query))
        if pending.count >= Self.maximumPending {
            do { try flush() } catch { deferredError = deferredError ?? error }
        }
    }

    /// How long a reply may take before the connection is given up as dead (a half-open connection to a
    /// database host that is gone would otherwise be waited on forever, holding up every request).
    ///
    /// The longest a healthy reply waits is for the journal lock, and a lock held by a writer that vanished
    /// is released by PostgreSQL once its transaction has been idle ``PostgresStorage/idleWriterSeconds``:
    /// so that, plus a margin for the batch after it. `tools/network_fault_test.py` (half-open connections)
    /// measures a node serving again within this of losing its connections.
    static let replyDeadline: TimeAmount = .seconds(Int64(PostgresStorage.idleWriterSeconds) + 10)

    /// How long undoing a failed transaction may take: a rollback waits for no lock, so only a dead
    /// connection makes it slow — and a rollback sent while a reset connection was closing was seen never
    /// to be answered (`tools/network_fault_test.py`, connections cut). The connection is then closed, and
    /// PostgreSQL rolls back what it had of the transaction itself.
    static let rollbackDeadline: TimeAmount = .seconds(5)

    /// Sends `query` on the connection and returns its reply to wait for (``answer(_:)``).
    ///
    /// One hop to the connection's event loop sends the statement and registers what takes its reply, so
    /// that waiting needs nothing more of the loop. Each call from this thread into the loop wakes it (an
    /// `eventfd` write and a context switch): sending with `PostgresConnection.query`, then registering a
    /// callback, scheduling the deadline's task, waiting with `EventLoopFuture.wait()` and cancelling the
    /// task were five such wake-ups a statement, a tenth of a node's journal writer in `perf`'s samples,
    /// most of it under the journal lock. Statements go out in the order submitted (the loop runs its
    /// tasks in order).
    private func submit(_ query: PostgresQuery) -> PendingReply {
        let reply = PendingReply()
        let connection = self.connection
        let logger = self.logger
        connection.eventLoop.execute {
            connection.query(query, logger: logger).whenComplete { reply.settle($0) }
        }
        return reply
    }

    /// Waits for a reply of this session's connection, giving up on it at the current deadline
    /// (``withinDeadline(_:_:)``): the connection is then closed.
    ///
    /// A query written to a connection that has just been reset is never answered nor failed by the driver
    /// (its task is dropped with the channel's pipeline), and closing the connection cannot fail it either —
    /// it is closed already — so waiting for the reply alone waited forever: the node's writer hung
    /// (`tools/network_fault_test.py`, connections cut, found it; `SharedJournalTests.connectionClosedUnderWriter`).
    /// So a connection seen closed fails at once, and a reply not given by the deadline fails, closing the
    /// connection (which fails every other reply the driver still holds).
    private func answer(_ reply: PendingReply) throws -> PostgresQueryResult {
        waitsInTasks?.countIfInTask()
        if connection.isClosed { throw PostgresStorageError(message: "the connection closed", doing: "waiting for a reply") }
        // Outside ``withinDeadline(_:_:)`` (none of the session's waits are), the reply deadline from now.
        let deadline = currentDeadline == .distantFuture ? .now() + Self.replyDeadline : currentDeadline
        guard let result = reply.wait(until: deadline) else {
            connection.close().whenComplete { _ in }
            throw PostgresStorageError(message: "no reply within \(currentDeadlineAmount)", doing: "waiting for a reply")
        }
        return try result.get()
    }

    /// The deadline of the waits in progress (``withinDeadline(_:_:)``), and how long it gave them.
    private var currentDeadline: NIODeadline = .distantFuture
    private var currentDeadlineAmount: TimeAmount = replyDeadline

    /// Runs `body`, which waits for replies (``answer(_:)``); a reply not given within `amount` from now
    /// fails, and the connection is closed.
    private func withinDeadline<R>(_ amount: TimeAmount = replyDeadline, _ body: () throws -> R) rethrows -> R {
        let (outer, outerAmount) = (currentDeadline, currentDeadlineAmount)
        (currentDeadline, currentDeadlineAmount) = (.now() + amount, amount)
        defer { (currentDeadline, currentDeadlineAmount) = (outer, outerAmount) }
        return try body()
    }

    /// Sends what is staged and waits for the replies of everything sent; throws the first failure among
    /// them.
    func flush() throws {
        sendStaged()
        try withinDeadline { try collectReplies() }
    }

    private func collectReplies() throws {
        let futures = pending
        pending = []
        var firstError = deferredError
        deferredError = nil
        for future in futures {
            do {
                _ = try answer(future)
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if let failure = firstError as? PostgresStorageError { throw failure }
        if let firstError { throw PostgresStorageError(firstError, doing: "writing") }
    }

    /// Ends a batch that holds the journal lock for the session (``holdsLockBriefly``): when no
    /// transaction had to be opened, its staged writes, its commit and the lock's release are one
    /// statement (``BriefJournalLock/commitAndUnlock(appends:upserts:extensions:)``); else `COMMIT`, then
    /// the unlock. Any failure leaves the lock held: the caller closes the connection.
    ///
    /// The lock is outside the batch's transaction, so a failure of its statement would not undo the
    /// batch's writes as a failed statement in a transaction does: every reply sent before is taken
    /// (and a failure among them thrown) before the statement that commits goes out. A batch's catch-up
    /// has taken them already; only a batch that wrote without reading after its lock waits a round trip.
    ///
    /// - Returns: whether the connection may be kept: `false` when the batch committed but its lock was
    ///   not let go of (the unlock's reply failed), so that closing the connection lets go of it.
    func commitBriefly() throws -> Bool {
        precondition(holdsLockBriefly && layers.count == 1, "only the batch's own level is left at its commit")
        prepare(writing: false)
        if !transactionOpen, lockSent {
            try withinDeadline { try collectReplies() }
            let layer = layers[0]
            let query = BriefJournalLock.commitAndUnlock(
                appends: Self.columns(layer.appends), upserts: Self.columns(layer.upserts.map { ($0.key, $0.value) }),
                extensions: Self.columns(layer.extensions.map { ($0.key, $0.value) }))
            discardStaged()
            _ = try runAfterPending(query)
            lockSent = false
            return true
        }
        try flush()
        // COMMIT of a transaction that failed is answered ROLLBACK, not an error.
        guard try run("COMMIT").metadata.command == "COMMIT" else {
            throw PostgresStorageError(message: "the transaction was rolled back by the server", doing: "committing")
        }
        transactionOpen = false
        guard lockSent else { return true }
        do {
            try run(BriefJournalLock.unlock)
        } catch {
            // Committed: the batch succeeded. Its lock goes with the connection.
            return false
        }
        lockSent = false
        return true
    }

    /// Forgets a lock asked for and not sent: the batch ends without having held it.
    func forgetPendingLock() {
        lockPending = false
    }

    private var savepoints = 0

    /// A savepoint number not used before in this session.
    func nextSavepoint() -> Int {
        savepoints += 1
        return savepoints
    }

    /// Waits for the replies of everything sent; returns the first failure among them (and forgets it).
    /// What is staged stays staged.
    func takeFailure() -> (any Error)? {
        do {
            try withinDeadline { try collectReplies() }
            return nil
        } catch {
            return error
        }
    }

    /// Keeps `failure` for the next ``flush()`` to throw.
    func keep(_ failure: any Error) {
        deferredError = deferredError ?? failure
    }

    /// Waits for the replies of everything sent, ignoring failures (they belong to work being undone).
    func discardPending() {
        let futures = pending
        pending = []
        deferredError = nil
        withinDeadline(Self.rollbackDeadline) {
            for future in futures { _ = try? answer(future) }
        }
    }

    /// Runs `query` after everything sent, and returns its rows. The query is sent at once, behind the
    /// writes still in flight, so that a read costs one round trip however many writes precede it
    /// (PostgreSQL answers in order; if an earlier write failed, that failure is the one reported).
    @discardableResult
    func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
        sendStaged()
        return try runAfterPending(query)
    }

    /// Runs `query` behind what was sent (not what is staged), and returns its rows; the connection is
    /// closed if the replies take longer than `deadline`.
    ///
    /// In a traced request (or a traced journal commit), each round trip is a span (`postgres.round_trip`).
    func runAfterPending(_ query: PostgresQuery, deadline: TimeAmount = replyDeadline) throws -> PostgresQueryResult {
        guard JournalTracing.isEnabled, ServiceContext.current != nil else { return try roundTrip(query, deadline: deadline) }
        return try withSpan("postgres.round_trip", ofKind: .client) { span in
            span.attributes["db.system.name"] = "postgresql"
            span.attributes["db.query.text"] = String(query.sql.prefix(200))
            span.attributes["authledger.postgres.pipelined"] = pending.count
            return try roundTrip(query, deadline: deadline)
        }
    }

    private func roundTrip(_ query: PostgresQuery, deadline: TimeAmount) throws -> PostgresQueryResult {
        prepare(writing: false)
        let reply = submit(query)
        return try withinDeadline(deadline) {
            try collectReplies()
            do {
                return try answer(reply)
            } catch {
                throw PostgresStorageError(error, doing: "querying")
            }
        }
    }
}

/// A PostgreSQL transaction seen through the store protocol: the journal's read snapshots (`REPEATABLE
/// READ, READ ONLY`) and its batches (`READ COMMITTED` under the journal lock, nested requests as
/// savepoints).
final class PostgresTransaction: StorageWriteTransaction {
    private let storage: PostgresStorage
    private let session: PostgresSession
    /// 0 for the transaction itself, more for one nested in it.
    private let depth: Int
    /// The savepoint of a nested transaction: named once per session, so that rolling back to it can
    /// never reach another request's savepoint.
    private let savepoint: String
    private var ended = false

    /// Rows fetched per query while iterating a table.
    static let pageSize = 512

    init(storage: PostgresStorage, session: PostgresSession, depth: Int = 0) {
        self.storage = storage
        self.session = session
        self.depth = depth
        self.savepoint = depth > 0 ? "request_\(session.nextSavepoint())" : ""
    }

    func get(_ key: [UInt8], in table: StorageTable) throws -> [UInt8]? {
        if let staged = session.stagedValue(table.name, key) { return staged }
        if session.hasStagedExtension(table.name, key) {
            // Only the server knows what the staged bytes extend: sent first, then read.
            return try EntryQueries.value(of: session.run(EntryQueries.value(in: table.name, key: key)))
        }
        if let fetched = try session.prefetchedValue(table.name, key) { return fetched }
        return try EntryQueries.value(of: session.runKeyRead(EntryQueries.value(in: table.name, key: key)))
    }

    func forEach(in table: StorageTable, from start: [UInt8]?, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        try forEach(in: table, from: start, limit: .max, body)
    }

    func forEach(in table: StorageTable, from start: [UInt8]?, limit: Int, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        // Pages in key order, none longer than what is left of `limit`; each page is fetched whole before
        // `body` sees it, so `body` may query too.
        var left = limit
        var page = min(left, Self.pageSize)
        guard page > 0 else { return }
        var from = start ?? []
        var after = false
        while true {
            let rows = try session.runRange(in: table.name, from: from, after: after, limit: page)
            for (key, value) in rows {
                from = key
                guard try body(key, value) else { return }
            }
            left -= rows.count
            guard rows.count == page, left > 0 else { return }
            page = min(left, Self.pageSize)
            after = true
        }
    }

    func last(in table: StorageTable) throws -> ([UInt8], [UInt8])? {
        try EntryQueries.entries(of: session.run(EntryQueries.last(in: table.name))).first
    }

    func count(in table: StorageTable) throws -> Int {
        try EntryQueries.count(of: session.run(EntryQueries.count(in: table.name)))
    }

    func put(_ value: [UInt8], for key: [UInt8], in table: StorageTable, append: Bool) throws {
        session.stage(table.name, key, value, append: append)
    }

    func extend(_ bytes: [UInt8], for key: [UInt8], in table: StorageTable) throws {
        session.stageExtension(table.name, key, bytes)
    }

    func prefetch(_ keys: [(table: StorageTable, key: [UInt8])]) throws {
        session.prefetch(keys.map { (table: $0.table.name, key: $0.key) })
    }

    @discardableResult
    func delete(_ key: [UInt8], in table: StorageTable) throws -> Bool {
        session.forgetPrefetched(table.name, key: key)
        let rows = try session.runWrite("DELETE FROM authledger_entries WHERE tbl = \(table.name) AND key = \(ByteBuffer(bytes: key)) RETURNING 1")
        return rows.count > 0
    }

    func removeAll(in table: StorageTable) throws {
        session.forgetPrefetched(table.name)
        session.sendWrite("DELETE FROM authledger_entries WHERE tbl = \(table.name)")
    }

    func beginNested() throws -> any StorageWriteTransaction {
        // Its SAVEPOINT is sent only if something of it must reach the server before it ends (see
        // PostgresSession); a failed write before it aborts the whole PostgreSQL transaction anyway, and
        // the next read reports it (as the batch's failure, which it is).
        let nested = PostgresTransaction(storage: storage, session: session, depth: depth + 1)
        session.beginLevel(savepoint: nested.savepoint)
        return nested
    }

    /// Sent, not waited for: the writer's next query (reading what other writers appended) runs after the
    /// lock is granted, and waiting for both costs one round trip. The statement also bounds how long the
    /// transaction may sit idle holding the lock (``PostgresStorage/journalLockStatement``). Only a
    /// transaction that holds the lock: a reader may pause between pages as long as its consumer likes.
    func lockJournal() throws {
        if session.holdsLockBriefly {
            session.lockBriefly()
        } else {
            session.send(PostgresStorage.journalLockStatement)
        }
    }

    func commit() throws {
        guard !ended else { return }
        ended = true
        if depth > 0 {
            session.commitLevel()
            return
        }
        if session.holdsLockBriefly {
            let keep: Bool
            do {
                keep = try session.commitBriefly()
            } catch {
                // The lock may still be the session's: it goes with the connection.
                storage.discard(session.connection)
                throw error
            }
            if keep { storage.give(back: session.connection) } else { storage.discard(session.connection) }
            return
        }
        do {
            // COMMIT of a transaction that failed is answered ROLLBACK, not an error.
            let reply = try session.run("COMMIT")
            guard reply.metadata.command == "COMMIT" else {
                throw PostgresStorageError(message: "the transaction was rolled back by the server", doing: "committing")
            }
        } catch {
            // The transaction is over either way; a connection that failed is not reused.
            _ = try? session.run("ROLLBACK")
            storage.give(back: session.connection)
            throw error
        }
        storage.give(back: session.connection)
    }

    func abort() {
        guard !ended else { return }
        ended = true
        if depth > 0 {
            // Its staged writes go; the server is told only if its savepoint was sent.
            let level = session.abortLevel()
            guard level.sent else { return }
            // What failed before this request's savepoint stays the batch's failure (kept for the next
            // flush): rolling back to the savepoint must not make a broken transaction look whole.
            let earlier = session.takeFailure()
            _ = try? session.runAfterPending("ROLLBACK TO SAVEPOINT \(unescaped: level.savepoint)", deadline: PostgresSession.rollbackDeadline)
            if let earlier { session.keep(earlier) }
            return
        }
        session.discardStaged()
        if session.holdsLockBriefly, session.lockSent || session.transactionOpen {
            // The session's lock, and its transaction if one was opened, go with the connection: closing
            // it lets go of both at once, where a rollback would leave the lock held.
            storage.discard(session.connection)
            return
        }
        // A lock asked for and not sent is not sent now: the batch ends without having held it.
        session.forgetPendingLock()
        session.discardPending()
        // Nothing to roll back where no transaction is open (a batch that holds the lock briefly and
        // sent nothing), or on a connection that broke: PostgreSQL did it when it went.
        if session.transactionOpen, !session.connection.isClosed {
            _ = try? session.runAfterPending("ROLLBACK", deadline: PostgresSession.rollbackDeadline)
        }
        storage.give(back: session.connection)
    }

}

/// A count of the waits for PostgreSQL made on a thread that was running a Swift task.
final class WaitsInTasks: Sendable {
    private let count = Atomic<Int>(0)

    var value: Int { count.load(ordering: .relaxed) }

    /// Counts one wait if the calling thread is running a task now.
    func countIfInTask() {
        if withUnsafeCurrentTask(body: { $0 != nil }) { count.add(1, ordering: .relaxed) }
    }
}

/// The reply to one statement of a ``PostgresSession``, settled on the connection's event loop and waited
/// for on the session's thread: a condition variable, not an `EventLoopFuture`, whose `wait()` would
/// register a callback through the loop and wake it once more.
final class PendingReply: @unchecked Sendable {
    /// 0 until settled, then 1; `result` is written once, under the lock, before it turns 1.
    private let state = ConditionLock<Int>(value: 0)
    private var result: Result<PostgresQueryResult, any Error>?

    /// Keeps the first result given (the reply, or its failure).
    func settle(_ outcome: Result<PostgresQueryResult, any Error>) {
        state.lock()
        guard result == nil else {
            state.unlock()
            return
        }
        result = outcome
        state.unlock(withValue: 1)
    }

    /// The result, once settled; `nil` if `deadline` passes first.
    func wait(until deadline: NIODeadline) -> Result<PostgresQueryResult, any Error>? {
        let left = deadline - .now()
        guard left > .zero else {
            state.lock()
            defer { state.unlock() }
            return result
        }
        guard state.lock(whenValue: 1, timeoutSeconds: Double(left.nanoseconds) / 1e9) else { return nil }
        defer { state.unlock() }
        return result
    }
}
