import LedgerJournal
import Logging
import NIOCore
import PostgresNIO
import Tracing

/// Reads on a connection leased from the store's `PostgresClient`, each call one statement whose reply a
/// task awaits: no thread waits for PostgreSQL, and none is taken from the few that run every task.
///
/// Each statement reads everything it is asked at once, so its answers are of one snapshot (as every
/// PostgreSQL statement's are); no transaction is opened around the statements, so a reader costs one
/// round trip per statement and none to begin or end.
final class PostgresAwaitedRead: AwaitedReadConnection {
    private let connection: PostgresConnection
    private let replyDeadline: TimeAmount
    private let logger: Logger

    /// - Parameter replyDeadline: how long a statement's reply may take before the connection is given up
    ///   as dead (``PostgresStorage/defaultAwaitedReplyDeadline``).
    init(connection: PostgresConnection, replyDeadline: TimeAmount = PostgresStorage.defaultAwaitedReplyDeadline, logger: Logger) {
        self.connection = connection
        self.replyDeadline = replyDeadline
        self.logger = logger
    }

    func answers(to reads: [AwaitedRead]) async throws -> [AwaitedReadAnswer] {
        guard !reads.isEmpty else { return [] }
        if let values = EntryQueries.values(reads) {
            return try EntryQueries.answers(toValues: reads, in: await rows(of: values))
        }
        let query = EntryQueries.together(reads)
        return try EntryQueries.answers(to: reads, in: await run(query.sql) { [connection, logger] in connection.query(query, logger: logger) })
    }

    /// The rows of `values`: the statement prepared once on this connection.
    func rows(of values: ValueReads) async throws -> [ValueReads.Row] {
        try await run(ValueReads.sql) { [connection, logger] in Self.rows(of: values, on: connection, logger: logger) }
    }

    /// The rows of `values`, run as the statement prepared on `connection`. postgres-nio runs a
    /// prepared statement only as an async call; made a future here, its reply has the same deadline as
    /// every other read's (``answer(_:)``), instead of holding the task if none ever comes.
    private static func rows(of values: ValueReads, on connection: PostgresConnection, logger: Logger) -> EventLoopFuture<[ValueReads.Row]> {
        let rows = connection.eventLoop.makePromise(of: [ValueReads.Row].self)
        rows.completeWithTask {
            var collected: [ValueReads.Row] = []
            for try await row in try await connection.execute(values, logger: logger) { collected.append(row) }
            return collected
        }
        return rows.futureResult
    }

    /// Sends a statement of text `sql` (`send`) and awaits its reply; in a traced request, the round trip
    /// is a span (`postgres.round_trip`), as a waited one is.
    private func run<T: Sendable>(_ sql: String, _ send: @escaping @Sendable () -> EventLoopFuture<T>) async throws -> T {
        guard JournalTracing.isEnabled, ServiceContext.current != nil else { return try await roundTrip(send) }
        return try await withSpan("postgres.round_trip", ofKind: .client) { span in
            span.attributes["db.system.name"] = "postgresql"
            span.attributes["db.query.text"] = String(sql.prefix(200))
            span.attributes["authledger.postgres.awaited"] = true
            return try await roundTrip(send)
        }
    }

    private func roundTrip<T: Sendable>(_ send: @escaping @Sendable () -> EventLoopFuture<T>) async throws -> T {
        do {
            return try await answer(send)
        } catch let error as PostgresStorageError {
            throw error
        } catch {
            throw PostgresStorageError(error, doing: "reading")
        }
    }

    /// Sends the statement (`send`) and awaits its reply, or a failure once the reply deadline has passed:
    /// the connection is then closed, and the reply given up on — a query written to a connection that has
    /// just been reset is never answered nor failed by the driver (``PostgresSession`` says how that was
    /// found).
    ///
    /// One hop to the connection's event loop sends it, schedules the deadline and registers what takes
    /// the reply: made from a task's thread, each of those is a wake-up of the loop of its own (the
    /// reply's callback, the deadline's task, awaiting the future, cancelling the task), as the journal's
    /// writer found (``PostgresSession``).
    private func answer<T: Sendable>(_ send: @escaping @Sendable () -> EventLoopFuture<T>) async throws -> T {
        let connection = self.connection
        if connection.isClosed { throw PostgresStorageError(message: "the connection closed", doing: "waiting for a reply") }
        let deadline = replyDeadline
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let eventLoop = connection.eventLoop
            eventLoop.execute {
                // Only the loop settles it (the reply's callback and the deadline's task both run there).
                let settled = NIOLoopBoundBox(false, eventLoop: eventLoop)
                let timeout = eventLoop.scheduleTask(in: deadline) {
                    guard !settled.value else { return }
                    settled.value = true
                    continuation.resume(throwing: PostgresStorageError(message: "no reply within \(deadline)", doing: "waiting for a reply"))
                    connection.close().whenComplete { _ in }
                }
                send().hop(to: eventLoop).whenComplete { result in
                    timeout.cancel()
                    guard !settled.value else { return }
                    settled.value = true
                    continuation.resume(with: result)
                }
            }
        }
    }
}

/// The connection ``PostgresStorage/readAwaiting(_:)`` gives a reader: each statement gathered with
/// other requests' (``ReadGathering``), on a connection of the awaited reads' pool taken for that
/// statement.
final class PooledAwaitedRead: AwaitedReadConnection {
    private let pool: AwaitedReadPool
    private let gathering: ReadGathering
    private let replyDeadline: TimeAmount
    private let logger: Logger

    init(pool: AwaitedReadPool, gathering: ReadGathering, replyDeadline: TimeAmount, logger: Logger) {
        self.pool = pool
        self.gathering = gathering
        self.replyDeadline = replyDeadline
        self.logger = logger
    }

    func answers(to reads: [AwaitedRead]) async throws -> [AwaitedReadAnswer] {
        guard !reads.isEmpty else { return [] }
        return try await gathering.answers(to: reads) { gathered in
            // A pool that rests since this request began to wait (a statement failed) is not asked again.
            guard pool.isAvailable else { throw ReadNotAwaited() }
            do {
                return try await self.onConnection { try await $0.answers(to: gathered) }
            } catch {
                // A connection that failed, or that could not be leased: the next reads wait, on
                // connections the store makes, for a while. The pool rests before the gathering hands
                // the lead on, so that the next statement is not sent to it.
                let failure = (error as? StatementNotSent)?.error ?? error
                if failure is PostgresStorageError { pool.restAfterFailure("a read failed: \(failure)") }
                throw error
            }
        }
    }

    /// Runs `body` on a connection of the pool.
    /// - Throws: ``ReadNotAwaited`` when none came in time; ``StatementNotSent`` when the lease failed
    ///   otherwise (with a ``PostgresStorageError``) or was cancelled; what `body` threw.
    private func onConnection<T>(_ body: (PostgresAwaitedRead) async throws -> T) async throws -> T {
        do {
            return try await pool.withConnection { connection in
                do {
                    return try await body(PostgresAwaitedRead(connection: connection, replyDeadline: replyDeadline, logger: logger))
                } catch {
                    throw AwaitedReadFailed(error: error)
                }
            }
        } catch let failed as AwaitedReadFailed {
            throw failed.error
        } catch let error as ReadNotAwaited {
            throw error
        } catch is CancellationError {
            throw StatementNotSent(error: CancellationError())
        } catch {
            throw StatementNotSent(error: PostgresStorageError(error, doing: "leasing a connection"))
        }
    }
}

/// What an awaited read's statement threw, told apart from a failure to lease a connection.
private struct AwaitedReadFailed: Error {
    let error: any Error
}
