import Foundation
import LedgerJournal
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// A journal kept in PostgreSQL, shared by every process that opens it: several `authledger serve`
/// nodes append to one journal, and their batches form one hash chain.
///
/// The journal's tables are one PostgreSQL table, `authledger_entries (tbl, key, value)`, whose `bytea`
/// keys PostgreSQL orders bytewise, exactly as LMDB does. Every batch of every node runs in one
/// PostgreSQL transaction that first takes the journal's advisory lock (``PostgresTransaction/lockJournal()``),
/// so batches from all nodes are serialized and each one sees everything committed before it: a code
/// issued at one node is redeemed exactly once at any node.
///
/// The journal's writer is synchronous (a batch's bodies decide in microseconds on the writer thread, a
/// thread of its own), so this store waits for each PostgreSQL reply of a batch on that thread. Its
/// connections run on an event loop of their own, never one of the caller's, so that waiting cannot
/// deadlock. Writes are queued without waiting, and their replies are collected before the next read and
/// at commit (postgres-nio still sends each statement after the reply to the one before).
///
/// Request handlers' reads are awaited instead (``AwaitingStorage``): they run on connections leased from
/// a `PostgresClient` (postgres-nio's pool), and no thread waits for their replies; under load,
/// concurrent requests' statements go together (``ReadGathering``). Only a store of one
/// server whose role is not checked awaits its reads: a connection of the client is not asked whether its
/// server takes writes (`target_session_attrs`), so an address that lists several servers, or asks for a
/// primary, reads by waiting, on connections this store checked.
public final class PostgresStorage: AwaitingStorage {
    /// Where the journal is.
    public let address: PostgresAddress
    private let group: MultiThreadedEventLoopGroup
    /// One per server of the address's list, in its order.
    private let configurations: [PostgresConnection.Configuration]
    /// The server of the list that a connection was last made to: new connections try it first.
    private let currentEndpoint = Atomic<Int>(0)
    private let logger: Logger
    /// A pthread mutex (NIO's), not the standard library's `Mutex`: ThreadSanitizer sees its
    /// synchronization, so `tools/sanitizers` reports no false race on the pool.
    private let idle = NIOLockedValueBox<(connections: [PostgresConnection], closed: Bool)>(([], false))
    private let nextConnectionID = Atomic<Int>(1)

    /// How long a write transaction may sit idle (its writer gone) before PostgreSQL ends it.
    static let idleWriterSeconds = 30

    /// ``idleWriterSeconds`` as the value of PostgreSQL's idle timeouts.
    static var idleWriterTimeout: String { "\(idleWriterSeconds)s" }

    /// Sets, for the session of a connection the store makes, how long a transaction of it may sit idle
    /// before PostgreSQL ends it (``idleWriterSeconds``), once, when the connection is made: a batch that
    /// holds the journal lock for its session and must open a transaction (``BriefJournalLock``) then
    /// never has a transaction open without that timeout. It used to set it in a statement after its
    /// `BEGIN`; a connection gone silent between the two (half-open: a peer vanished, nothing closed)
    /// left PostgreSQL idle in a transaction with no timeout, holding the lock for good, and every other
    /// node's batches waiting (`tools/network_fault_test.py`, in a CI run of 2026-12-07). A read
    /// transaction lifts it for itself (``read(_:)``).
    static var idleTransactionSetting: PostgresQuery {
        "SELECT set_config('idle_in_transaction_session_timeout', \(idleWriterTimeout), false)"
    }

    /// Takes the journal's lock for the transaction, and sets the transaction's
    /// `idle_in_transaction_session_timeout` in the same statement (as `SET LOCAL` would; one round
    /// trip for both): a writer that dies (or is cut off) holding the lock has its transaction ended
    /// by PostgreSQL once it has been idle ``idleWriterSeconds``, and the other writers go on.
    static var journalLockStatement: PostgresQuery {
        """
        SELECT set_config('idle_in_transaction_session_timeout', \(idleWriterTimeout), true), \
        pg_advisory_xact_lock(\(journalLockKey))
        """
    }

    /// How many statements of requests' awaited reads are out at once by default: two, so that a slow
    /// one (a walk over pages) does not hold every request's reads behind it, and few enough that under
    /// load most requests' reads wait for one and go together (four or five requests a round trip in a
    /// capped node's `/authorize` runs). With one, a node capped at 0.3 CPU spent less CPU a request
    /// (8–12% alone), but a node with cores to spare served about a quarter fewer, against an LMDB node
    /// in the same run (docs/benchmarks.md, session 49).
    public static let defaultAwaitedStatementsInFlight = 2

    /// How long a statement of awaited reads may wait for its reply by default before its connection is
    /// given up as dead (and the requests it carries fail, or read by waiting): less than the writers'
    /// 40 s (``PostgresSession/replyDeadline``), which wait out a journal lock held by a writer that
    /// vanished. An awaited read never waits for that lock — lookups by key and a page of a walk — so a
    /// reply this late is a connection gone half-open, or a table locked whole by an operator, and a
    /// request (an HTTP client's, which gives up after about 30 s) is better answered 503 now than after
    /// 40 s.
    public static let defaultAwaitedReplyDeadline: TimeAmount = .seconds(10)

    /// The most connections one store has at once by default for its writer and the reads that wait,
    /// and again for the awaited reads' pool: size PostgreSQL's `max_connections` for twice this times
    /// the nodes. A taker beyond it waits for one to be given back.
    public static let defaultMaximumConnections = 24
    private let maximumConnections: Int
    /// How long a taker waits for a connection before the request fails (503).
    private let connectionWait: DispatchTimeInterval
    private let inUse: DispatchSemaphore
    /// The pool that awaited reads lease their connections from; `nil` when reads wait (see the type's
    /// documentation).
    let awaitedReads: AwaitedReadPool?
    /// Where concurrent requests' awaited reads are gathered into shared statements.
    private let gathering: ReadGathering
    /// How long a statement of awaited reads waits for its reply.
    private let awaitedReplyDeadline: TimeAmount
    /// The key of the journal's advisory lock (`pg_advisory_xact_lock`): "AuthLedg" in ASCII.
    static let journalLockKey: Int64 = 0x4175_7468_4C65_6467

    public var location: String { address.description }
    public var isShared: Bool { true }

    /// Connects to the database at `address` (the connection is checked now, so that a wrong address or
    /// password is reported at start-up).
    /// - Parameters:
    ///   - maximumConnections: the most connections in use at once, in each of the two pools (the
    ///     store's own, and the awaited reads'); more takers of the store's own wait up to
    ///     `connectionWait` for one, then fail.
    ///   - awaitedLeaseWait: how long an awaited read waits for a connection of its pool before it reads
    ///     by waiting instead (and the pool rests): a database that is down must fail requests at once,
    ///     not after postgres-nio's pool has tried to connect for a minute.
    ///   - awaitedStatementsInFlight: how many statements of requests' awaited reads may be out at once;
    ///     the reads asked meanwhile go together in the next (``ReadGathering``).
    ///   - awaitedReplyDeadline: how long such a statement waits for its reply before its connection is
    ///     given up as dead (``defaultAwaitedReplyDeadline``).
    ///   - briefLock: whether batches may hold the journal lock for one round trip to the node where the
    ///     server can (``BriefJournalLock``); `false` holds it for each batch's transaction.
    public init(
        address: PostgresAddress, maximumConnections: Int = defaultMaximumConnections, connectionWait: DispatchTimeInterval = .seconds(30),
        awaitedLeaseWait: TimeAmount = .seconds(1), awaitedStatementsInFlight: Int = defaultAwaitedStatementsInFlight,
        awaitedReplyDeadline: TimeAmount = defaultAwaitedReplyDeadline, briefLock: Bool = true,
        logger: Logger = Logger(label: "authledger.postgres")
    ) throws(JournalError) {
        self.address = address
        self.logger = logger
        self.awaitedReplyDeadline = awaitedReplyDeadline
        self.maximumConnections = max(1, maximumConnections)
        self.gathering = ReadGathering(
            maximumInFlight: max(1, awaitedStatementsInFlight), stallLimit: .nanoseconds(max(awaitedLeaseWait.nanoseconds, 1_000_000)))
        self.connectionWait = connectionWait
        self.inUse = DispatchSemaphore(value: max(1, maximumConnections))
        var configurations: [PostgresConnection.Configuration]
        var clientConfiguration: PostgresClient.Configuration
        if let directory = address.socketDirectory {
            let path = "\(directory)/.s.PGSQL.\(address.port)"
            configurations = [.init(unixSocketPath: path, username: address.user, password: address.password, database: address.database)]
            clientConfiguration = .init(unixSocketPath: path, username: address.user, password: address.password, database: address.database)
        } else {
            let tls = Self.tls(for: address)
            let context = try Self.context(for: tls, address: address)
            configurations = address.endpoints.map { endpoint in
                .init(
                    host: endpoint.host, port: endpoint.port, username: address.user, password: address.password,
                    database: address.database, tls: context)
            }
            clientConfiguration = .init(
                host: address.host, port: address.port, username: address.user, password: address.password, database: address.database,
                tls: tls.map { address.tlsMode == .prefer ? .prefer($0) : .require($0) } ?? .disable)
        }
        for index in configurations.indices { configurations[index].options.connectTimeout = .seconds(5) }
        self.configurations = configurations
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        if configurations.count == 1, address.sessionTarget == .any {
            clientConfiguration.options.connectTimeout = .seconds(5)
            clientConfiguration.options.maximumConnections = self.maximumConnections
            // Awaited reads are lookups by key (``ValueReads``, ``EntryQueries/together(_:)``), and a plan
            // a connection keeps must stay one as the table grows: made while the table was small, a
            // plan may scan it whole, and keep doing so at every read once it is large.
            clientConfiguration.options.additionalStartupParameters = [("enable_seqscan", "off")]
            awaitedReads = AwaitedReadPool(configuration: clientConfiguration, leaseWait: awaitedLeaseWait, logger: logger)
        } else {
            awaitedReads = nil
        }
        briefLockState = Mutex(briefLock ? .undecided : .transactions)
        do {
            give(back: try take())
        } catch {
            Self.shutDown(group, after: awaitedReads)
            throw .storage(error)
        }
    }

    public var awaitsReads: Bool { awaitedReads?.isAvailable ?? false }

    /// How many connections awaited reads have leased from the store's `PostgresClient` so far: a
    /// statement keeps its connection for the next one, and leases only when none is kept and free.
    public var awaitedReadLeases: Int { awaitedReads?.leasesTaken ?? 0 }

    /// Round trips made for awaited reads: one per statement of requests' reads gathered (``ReadGathering``).
    public var awaitedRoundTrips: Int? { gathering.statistics.statements }

    /// The awaited statements of requests since the store was opened, and the round trips that carried
    /// them (``ReadGathering``).
    public var gatheredReads: (roundTrips: Int, statements: Int) {
        let gathered = gathering.statistics
        return (gathered.statements, gathered.requests)
    }

    private let waits = WaitsInTasks()

    public var waitsInTasks: Int { waits.value }

    public func readAwaiting<R: Sendable>(_ body: (any AwaitedReadConnection) async throws -> R) async throws -> R {
        guard let awaitedReads, awaitedReads.isAvailable else { throw ReadNotAwaited() }
        // A statement that failed makes the pool rest (``PooledAwaitedRead``).
        return try await body(PooledAwaitedRead(pool: awaitedReads, gathering: gathering, replyDeadline: awaitedReplyDeadline, logger: logger))
    }

    /// The TLS of a connection to `address`, as its `sslmode` asks; `nil` when it asks for none.
    private static func tls(for address: PostgresAddress) -> TLSConfiguration? {
        guard address.tlsMode != .disable else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        switch address.tlsMode {
        // As libpq: `require` with a root certificate given verifies the chain, as `verify-ca` does.
        case .require where address.rootCertificates != nil: tls.certificateVerification = .noHostnameVerification
        case .disable, .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        if let roots = address.rootCertificates { tls.trustRoots = .file(roots) }
        return tls
    }

    /// The TLS of a connection made by this store to `address`, from ``tls(for:)``.
    private static func context(for tls: TLSConfiguration?, address: PostgresAddress) throws(JournalError) -> PostgresConnection.Configuration.TLS {
        guard let tls else { return .disable }
        do {
            let context = try NIOSSLContext(configuration: tls)
            return address.tlsMode == .prefer ? .prefer(context) : .require(context)
        } catch {
            throw .directory(path: address.description, reason: "TLS cannot be set up: \(error)")
        }
    }

    /// Opens the tables. Creating makes the journal's one PostgreSQL table if the database has none yet
    /// (under the journal lock, since several nodes may start at once); reading requires it.
    public func openTables(_ names: [String], create: Bool) throws -> [String: StorageTable] {
        try withConnection { session in
            if create {
                try Self.runUnderJournalLock(
                    [
                        """
                        CREATE TABLE IF NOT EXISTS authledger_entries (
                            tbl text NOT NULL, key bytea NOT NULL, value bytea NOT NULL, PRIMARY KEY (tbl, key))
                        """
                    ], on: session)
            } else {
                let rows = try session.run("SELECT to_regclass('authledger_entries') IS NOT NULL")
                guard try rows.first?.decode(Bool.self) == true else {
                    throw JournalError.directory(path: location, reason: "holds no journal (no authledger_entries table)")
                }
            }
        }
        return Dictionary(uniqueKeysWithValues: names.map { ($0, StorageTable(name: $0)) })
    }

    public func read<R>(_ body: (any StorageReadTransaction) throws -> R) throws -> R {
        let session = PostgresSession(connection: try take(), logger: logger, waitsInTasks: waits)
        let transaction = PostgresTransaction(storage: self, session: session)
        session.send("START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        // A reader may pause between its statements as long as its consumer likes (`timeline` piped to a
        // pager): no idle limit for this transaction, which holds no lock. Cut off before this statement
        // arrives, the transaction keeps the session's limit (``idleTransactionSetting``).
        session.send("SELECT set_config('idle_in_transaction_session_timeout', '0', true)")
        do {
            let result = try body(transaction)
            // A read-only transaction has nothing to make durable: its end is sent, not waited for (the
            // next query on this connection runs after it, and fails if the connection broke).
            session.send("COMMIT")
            give(back: session.connection)
            return result
        } catch {
            transaction.abort()
            throw error
        }
    }

    public func beginWrite() throws -> any StorageWriteTransaction {
        let connection = try take()
        let briefly: Bool
        do {
            briefly = try holdsLockBriefly(deciding: connection)
        } catch {
            discard(connection)
            throw error
        }
        let session = PostgresSession(connection: connection, logger: logger, waitsInTasks: waits, holdsLockBriefly: briefly)
        // A batch that holds the lock for its transaction: the lock's statement also bounds how long the
        // transaction may sit idle holding it (``PostgresTransaction/lockJournal()``). One that holds it
        // for the session opens a transaction only if it must (``BriefJournalLock``).
        // Read committed, whatever the database's default: a statement after the lock must see the last
        // holder's commit.
        if !briefly { session.send("BEGIN ISOLATION LEVEL READ COMMITTED") }
        return PostgresTransaction(storage: self, session: session)
    }

    /// Whether batches hold the journal lock for one round trip to the node (``BriefJournalLock``): the
    /// server is PostgreSQL 14 or later and has the store's function and procedure, and the store was
    /// not made with `briefLock: false`. Decided at the store's first batch (``beginWrite()``), so that
    /// a store that is only read (the replay tool's) creates nothing: `false` until then.
    public var holdsLockBriefly: Bool { briefLockState.withLock { $0 == .session } }

    /// How batches hold the journal lock: for their session (``BriefJournalLock``), for their
    /// transactions, or not known before the first batch.
    private enum BriefLockState {
        case undecided
        case session
        case transactions
    }

    private let briefLockState: Mutex<BriefLockState>

    /// Whether the batch about to begin on `connection` holds the lock briefly; the first batch decides
    /// it for the store (``briefLockAvailable(_:)``), once. Only batches call this, from the writer.
    /// - Throws: when `connection` fails while it is decided (nothing is decided then).
    private func holdsLockBriefly(deciding connection: PostgresConnection) throws -> Bool {
        switch briefLockState.withLock({ $0 }) {
        case .session: return true
        case .transactions: return false
        case .undecided:
            let briefly = try briefLockAvailable(PostgresSession(connection: connection, logger: logger))
            briefLockState.withLock { $0 = briefly ? .session : .transactions }
            return briefly
        }
    }

    /// Whether the server at the other end of `session` can hold the lock briefly: PostgreSQL 14 or
    /// later, with the objects of ``BriefJournalLock`` (created now, under the journal lock, if they are
    /// missing). A server where they cannot be created (no privilege, a standby) holds it for batches'
    /// transactions, as before.
    /// - Throws: when the connection fails (a server that answers, even with an error, has decided).
    private func briefLockAvailable(_ session: PostgresSession) throws -> Bool {
        do {
            guard let version = try session.run("SHOW server_version_num").first.map({ try $0.decode(String.self) }).flatMap(Int.init),
                version >= BriefJournalLock.oldestServer
            else { return false }
            // The function's reads see what the lock's last holder committed only in read committed: a
            // statement outside a transaction block runs at the database's default isolation.
            guard try session.run("SHOW default_transaction_isolation").first?.decode(String.self) == "read committed" else {
                logger.notice("batches hold the journal lock for their transactions: the database's default isolation is not read committed")
                return false
            }
            if try session.run(BriefJournalLock.objectsExist).first?.decode(Bool.self) == true { return true }
            try Self.runUnderJournalLock(BriefJournalLock.creation, on: session)
            return true
        } catch {
            // A connection that broke decides nothing: the batch fails, and the next one decides.
            _ = try session.run("SELECT 1")
            logger.notice(
                "batches hold the journal lock for their transactions: the store's function and procedure cannot be created",
                metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Runs `statements` in one transaction under the journal lock, with its idle timeout, as a batch
    /// takes it (several nodes may start at once); rolled back if one fails.
    private static func runUnderJournalLock(_ statements: [PostgresQuery], on session: PostgresSession) throws {
        try session.run("BEGIN")
        do {
            try session.run(journalLockStatement)
            for statement in statements { try session.run(statement) }
            try session.run("COMMIT")
        } catch {
            _ = try? session.run("ROLLBACK")
            throw error
        }
    }

    /// Closes `connection`, taken by ``take()``, instead of keeping it: it may hold the journal lock for
    /// its session (``BriefJournalLock``), which closing lets go of.
    func discard(_ connection: PostgresConnection) {
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
        inUse.signal()
    }

    /// Nothing to fix here: a failed batch is failed (the server answers 503 and the next batch tries
    /// again with a new connection).
    public func recover(from error: any Error) -> Bool { false }

    public func close() {
        let connections = takeAllIdle()
        for connection in connections { try? connection.close().wait() }
        try? group.syncShutdownGracefully()
        awaitedReads?.shutDown()
    }

    deinit {
        // A store dropped without close(): let its connections and event loop go without waiting.
        // Each connection is kept alive until it has closed (postgres-nio asserts that one is closed first).
        for connection in takeAllIdle() { connection.close().whenComplete { _ in withExtendedLifetime(connection) {} } }
        Self.shutDown(group, after: awaitedReads)
    }

    /// Lets the store's event loop go, and stops the awaited reads' pool if there is one, without waiting
    /// for either.
    private static func shutDown(_ group: MultiThreadedEventLoopGroup, after awaitedReads: AwaitedReadPool?) {
        group.shutdownGracefully { _ in }
        awaitedReads?.shutDown()
    }

    private func takeAllIdle() -> [PostgresConnection] {
        idle.withLockedValue { state in
            state.closed = true
            defer { state.connections = [] }
            return state.connections
        }
    }

    /// An idle connection, or a new one, once fewer than ``maximumConnections`` are in use. Every
    /// connection taken is handed to ``give(back:)`` exactly once.
    func take() throws -> PostgresConnection {
        guard inUse.wait(timeout: .now() + connectionWait) == .success else {
            throw PostgresStorageError(
                message: "all \(maximumConnections) connections stayed busy for \(connectionWait)", doing: "waiting for a connection")
        }
        do {
            let reused: PostgresConnection?? = idle.withLockedValue { state in
                if state.closed { return .some(nil) }
                return state.connections.popLast().map { .some($0) } ?? nil
            }
            switch reused {
            case .some(.some(let connection)) where !connection.isClosed: return connection
            case .some(.none): throw JournalError.closed
            default: return try connect()
            }
        } catch {
            inUse.signal()
            throw error
        }
    }

    /// Returns `connection` for reuse, or closes it if it is broken or the store is closed.
    ///
    /// Every healthy connection is kept: the store never has more than ``maximumConnections``, in use or
    /// idle, so keeping them all is bounded, and closing some while others are still busy made a store
    /// under load open (TLS handshake and authentication, on both sides) and close connections at the
    /// rate of its requests.
    func give(back connection: PostgresConnection) {
        let kept = idle.withLockedValue { state in
            guard !state.closed, !connection.isClosed else { return false }
            state.connections.append(connection)
            return true
        }
        if !kept { connection.close().whenComplete { _ in withExtendedLifetime(connection) {} } }
        inUse.signal()
    }

    /// How many connections this store has opened since it was made (a pool that keeps its connections
    /// opens at most ``maximumConnections`` while none breaks).
    public var connectionsOpened: Int { nextConnectionID.load(ordering: .relaxed) - 1 }

    /// A new connection to the first server of the list, from the one that last worked, that the
    /// address's `target_session_attrs` accepts; the error names what each server answered.
    private func connect() throws -> PostgresConnection {
        let start = currentEndpoint.load(ordering: .relaxed)
        var failures: [String] = []
        for offset in configurations.indices {
            let index = (start + offset) % configurations.count
            let server = configurations.count > 1 ? "\(address.endpoints[index])" : location
            let connection: PostgresConnection
            do {
                connection = try PostgresConnection.connect(
                    on: group.next(), configuration: configurations[index],
                    id: nextConnectionID.wrappingAdd(1, ordering: .relaxed).oldValue, logger: logger
                ).wait()
            } catch {
                failures.append("\(server): \(PostgresStorageError(error, doing: "connecting").message)")
                continue
            }
            do {
                if let refusal = try refusal(of: connection) {
                    failures.append("\(server): \(refusal)")
                    connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
                    continue
                }
                try PostgresSession(connection: connection, logger: logger, waitsInTasks: waits).run(Self.idleTransactionSetting)
            } catch {
                failures.append("\(server): \(error)")
                connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
                continue
            }
            if index != start {
                currentEndpoint.store(index, ordering: .relaxed)
                logger.notice("connected to another server of the list", metadata: ["server": "\(address.endpoints[index])"])
            }
            return connection
        }
        if configurations.count == 1, let only = failures.first {
            throw PostgresStorageError(message: String(only.dropFirst(location.count + 2)), doing: "connecting to \(location)")
        }
        throw PostgresStorageError(message: failures.joined(separator: "; "), doing: "connecting to \(location)")
    }

    /// Why the address's `target_session_attrs` does not accept the server of `connection`, or `nil`.
    private func refusal(of connection: PostgresConnection) throws -> String? {
        guard address.sessionTarget != .any else { return nil }
        let session = PostgresSession(connection: connection, logger: logger, waitsInTasks: waits)
        let row = try session.run("SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'").first
        guard let (inRecovery, readOnly) = try row?.decode((Bool, Bool).self) else { return "did not say whether it is a standby" }
        switch address.sessionTarget {
        case .any: return nil
        case .primary: return inRecovery ? "is a standby (in recovery)" : nil
        case .readWrite: return inRecovery || readOnly ? "does not take writes (\(inRecovery ? "a standby" : "read-only"))" : nil
        }
    }

    private func withConnection<R>(_ body: (PostgresSession) throws -> R) throws -> R {
        let session = PostgresSession(connection: try take(), logger: logger, waitsInTasks: waits)
        defer { give(back: session.connection) }
        return try body(session)
    }
}

/// A failure of PostgreSQL or of the connection to it, with the server's own message.
public struct PostgresStorageError: StorageFailure, CustomStringConvertible {
    /// What was being done.
    public let operation: String
    /// The server's message, or what went wrong with the connection.
    public let message: String
    /// The SQLSTATE code, when the server sent one.
    public let sqlState: String?

    public var isRequestFault: Bool { false }

    init(_ error: any Error, doing operation: String) {
        self.operation = operation
        if let error = error as? PSQLError {
            message = error.serverInfo?[.message] ?? "\(error.code)\(error.underlying.map { ": \($0)" } ?? "")"
            sqlState = error.serverInfo?[.sqlState]
        } else {
            message = "\(error)"
            sqlState = nil
        }
    }

    init(message: String, doing operation: String) {
        self.operation = operation
        self.message = message
        self.sqlState = nil
    }

    public var description: String {
        "PostgreSQL, \(operation): \(message)\(sqlState.map { " (SQLSTATE \($0))" } ?? "")"
    }
}
