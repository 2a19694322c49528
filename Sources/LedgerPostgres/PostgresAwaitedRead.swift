import LedgerJournal
import Logging
import NIOCore
import PostgresNIO
import Tracing

/// A read snapshot (`REPEATABLE READ, READ ONLY`) on a connection leased from the store's
/// `PostgresClient`, whose reads a task awaits: no thread waits for PostgreSQL, and none is taken from
/// the few that run every task.
///
/// The transaction's start is queued ahead of its first read and its reply checked with that read's (it
/// is still a round trip of its own: postgres-nio sends a statement after the reply to the one before);
/// its end is sent and not waited for, since a read-only transaction has nothing to make durable (the
/// connection's next query runs after it, and fails if the connection broke).
final class PostgresAwaitedRead: AwaitedReadTransaction {
    private let connection: PostgresConnection
    private let logger: Logger
    /// The reply to `START TRANSACTION`, checked with the first read's.
    private var start: EventLoopFuture<PostgresQueryResult>?

    init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
        start = connection.query("START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
    }

    /// Ends the transaction: committed after reads that all succeeded, rolled back otherwise.
    func end(succeeded: Bool) {
        let end: PostgresQuery = succeeded ? "COMMIT" : "ROLLBACK"
        let reply: EventLoopFuture<PostgresQueryResult> = connection.query(end, logger: logger)
        reply.whenComplete { _ in }
    }

    func get(_ key: [UInt8], in table: StorageTable) async throws -> [UInt8]? {
        try EntryQueries.value(of: await run(EntryQueries.value(in: table.name, key: key)))
    }

    func entries(in table: StorageTable, from start: [UInt8]?, limit: Int) async throws -> [([UInt8], [UInt8])] {
        guard limit > 0 else { return [] }
        return try EntryQueries.entries(of: await run(EntryQueries.page(in: table.name, from: start ?? [], limit: limit)))
    }

    func last(in table: StorageTable) async throws -> ([UInt8], [UInt8])? {
        try EntryQueries.entries(of: await run(EntryQueries.last(in: table.name))).first
    }

    func count(in table: StorageTable) async throws -> Int {
        try EntryQueries.count(of: await run(EntryQueries.count(in: table.name)))
    }

    /// Sends `query` and awaits its rows (and, the first time, the transaction's start); in a traced
    /// request, the round trip is a span (`postgres.round_trip`), as a waited one is.
    private func run(_ query: PostgresQuery) async throws -> PostgresQueryResult {
        guard JournalTracing.isEnabled, ServiceContext.current != nil else { return try await roundTrip(query) }
        return try await withSpan("postgres.round_trip", ofKind: .client) { span in
            span.attributes["db.system.name"] = "postgresql"
            span.attributes["db.query.text"] = String(query.sql.prefix(200))
            span.attributes["authledger.postgres.awaited"] = true
            return try await roundTrip(query)
        }
    }

    private func roundTrip(_ query: PostgresQuery) async throws -> PostgresQueryResult {
        let reply: EventLoopFuture<PostgresQueryResult> = connection.query(query, logger: logger)
        do {
            if let start {
                self.start = nil
                _ = try await answer(start)
            }
            return try await answer(reply)
        } catch let error as PostgresStorageError {
            throw error
        } catch {
            throw PostgresStorageError(error, doing: "reading")
        }
    }

    /// The reply, or a failure once ``PostgresSession/replyDeadline`` has passed: the connection is then
    /// closed, and the reply given up on — a query written to a connection that has just been reset is
    /// never answered nor failed by the driver (``PostgresSession`` says how that was found).
    private func answer(_ reply: EventLoopFuture<PostgresQueryResult>) async throws -> PostgresQueryResult {
        let connection = self.connection
        let deadline = PostgresSession.replyDeadline
        let (settled, abandon) = try PostgresSession.settled(reply, on: connection, failingAfter: deadline + .seconds(1))
        let close = connection.eventLoop.scheduleTask(in: deadline) { connection.close().whenComplete { _ in } }
        defer {
            close.cancel()
            abandon.cancel()
        }
        return try await settled.get()
    }
}
