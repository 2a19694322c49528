import LedgerJournal
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO

/// The connections awaited reads run on: postgres-nio's `PostgresClient` (its pool), run by a task of
/// its own, with a connection leased only if one comes within ``leaseWait``.
///
/// A connection leased is kept for the next reads, not given back after each: a lease is a task of its
/// own, a deadline scheduled on the connection's event loop and a hand-off between them, several thread
/// wake-ups a read that a kept connection does without. At most ``maximumKept`` are kept (the client's
/// connections, all of which only awaited reads use), none while a read waits for the client to lease
/// it one, and none unused for longer than ``keptIdle``; one that closed, or whose read failed, goes back
/// to the client, which makes a new one when asked.
///
/// The client queues a lease it cannot serve and keeps trying to connect, for a minute before it fails
/// its queue. A request must not wait that long for a database that is down, so a lease that takes
/// longer than ``leaseWait`` is given up (``ReadNotAwaited``), and the pool rests for ``rest``: its reads
/// wait for the store's own connections meanwhile, which fail at once when PostgreSQL refuses them (the
/// server answers 503), and serve when it is back.
///
/// The pool's connections run on an event loop thread of its own, not the one of the store's
/// connections: under load that thread decrypts every read's reply, and a batch that holds the journal
/// lock must not wait behind them for the reply that lets it write.
final class AwaitedReadPool: Sendable {
    private let client: PostgresClient
    private let group: MultiThreadedEventLoopGroup
    private let running: Task<Void, Never>
    /// Whether `running` has begun to run the client (a lease asked of a client not running yet is
    /// logged as a warning).
    private let started = NIOLockedValueBox(false)
    private let restingUntil = NIOLockedValueBox<NIODeadline?>(nil)
    private let logger: Logger
    /// Connections leased and kept between reads, the most recently used last, and whether the pool shut down.
    private let kept = NIOLockedValueBox(KeptConnections())
    /// How many connections are kept at most.
    let maximumKept: Int
    /// How many leases the client granted reads (a read on a kept connection takes none).
    private let leases = NIOLockedValueBox(0)

    private struct KeptConnections {
        /// In the order they were kept: the longest idle first.
        var idle: [(connection: PostgresConnection, lease: LeaseHandoff, since: NIODeadline)] = []
        /// Reads waiting for the client to lease them a connection: while there are any, a connection a
        /// read is done with goes back to the client, which gives it to one of them. (Kept instead, it
        /// would serve the next read to come, and a read in the client's queue could wait out its lease.)
        var leasesWaiting = 0
        var shutDown = false

        /// Takes out the connections kept since before `oldest`, and returns their leases to end.
        mutating func removeIdle(since oldest: NIODeadline) -> [LeaseHandoff] {
            let count = idle.prefix { $0.since <= oldest }.count
            defer { idle.removeFirst(count) }
            return idle.prefix(count).map(\.lease)
        }
    }

    /// The longest a read waits for a connection before it reads by waiting instead.
    let leaseWait: TimeAmount
    /// How long reads wait instead of being awaited after a lease was given up or a connection failed.
    static let rest: TimeAmount = .seconds(2)

    init(configuration: PostgresClient.Configuration, leaseWait: TimeAmount, logger: Logger) {
        self.leaseWait = leaseWait
        self.logger = logger
        maximumKept = configuration.options.maximumConnections
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        let client = PostgresClient(configuration: configuration, eventLoopGroup: group, backgroundLogger: logger)
        self.client = client
        running = Task { [started] in
            started.withLockedValue { $0 = true }
            await client.run()
        }
    }

    /// Whether reads are awaited now (not while resting after a failure).
    var isAvailable: Bool {
        restingUntil.withLockedValue { until in
            guard let deadline = until else { return true }
            if deadline > .now() { return false }
            until = nil
            return true
        }
    }

    /// Reads are not awaited for ``rest`` from now, because of `reason` (logged as a warning: an operator
    /// sees why reads waited, and a test that expected them awaited says so).
    func restAfterFailure(_ reason: String) {
        restingUntil.withLockedValue { $0 = .now() + Self.rest }
        logger.warning("awaited reads rest; reads wait on the store's own connections meanwhile", metadata: [
            "reason": "\(reason)", "rest_seconds": "\(Self.rest.nanoseconds / 1_000_000_000)",
        ])
    }

    /// How many leases the client has granted reads so far.
    var leasesTaken: Int { leases.withLockedValue { $0 } }

    /// Runs `body` with a kept connection of the pool, or one leased within ``leaseWait``; kept
    /// afterwards unless it closed or `body` threw.
    /// - Throws: ``ReadNotAwaited`` when none came in time (the pool then rests); what `body` threw.
    func withConnection<R>(_ body: (PostgresConnection) async throws -> R) async throws -> R {
        let (connection, lease) = try await takeConnection()
        let result: R
        do {
            result = try await body(connection)
        } catch {
            // A read that failed may leave its connection unusable (a reply never read, a deadline
            // passed): the client gets it back, and decides.
            lease.release()
            throw error
        }
        keep(connection, lease)
        return result
    }

    /// The connection used last, if it is still open and was not idle too long (``keptIdle``); else one
    /// leased now. Taking a kept one and counting a lease as waiting are one step, so that a connection
    /// a read is done with in between goes to the client, which gives it to the lease.
    private func takeConnection() async throws -> (PostgresConnection, LeaseHandoff) {
        let oldest = NIODeadline.now() - Self.keptIdle
        while true {
            let (taken, stale, isShutDown) = kept.withLockedValue { kept -> ((PostgresConnection, LeaseHandoff)?, [LeaseHandoff], Bool) in
                // A pool shut down leases nothing: its event loop may be gone (a statement led after the
                // store closed, by a request that waited for another's).
                guard !kept.shutDown else { return (nil, [], true) }
                let stale = kept.removeIdle(since: oldest)
                if let entry = kept.idle.popLast() { return ((entry.connection, entry.lease), stale, false) }
                kept.leasesWaiting += 1
                return (nil, stale, false)
            }
            if isShutDown { throw ReadNotAwaited() }
            for lease in stale { lease.release() }
            guard let (connection, lease) = taken else {
                defer { kept.withLockedValue { $0.leasesWaiting -= 1 } }
                return try await self.lease()
            }
            if !connection.isClosed { return (connection, lease) }
            lease.release()
        }
    }

    /// Keeps `connection` for the next read, unless it closed, the pool shut down, it keeps enough or a
    /// read waits for the client to lease it one; gives back those kept longer than ``keptIdle`` ago.
    private func keep(_ connection: PostgresConnection, _ lease: LeaseHandoff) {
        let now = NIODeadline.now()
        let isOpen = !connection.isClosed
        let (isKept, stale) = kept.withLockedValue { kept -> (Bool, [LeaseHandoff]) in
            let stale = kept.removeIdle(since: now - Self.keptIdle)
            guard isOpen, !kept.shutDown, kept.leasesWaiting == 0, kept.idle.count < maximumKept else { return (false, stale) }
            kept.idle.append((connection, lease, now))
            return (true, stale)
        }
        for lease in stale { lease.release() }
        if !isKept { lease.release() }
    }

    /// How long a connection is kept unused before it goes back to the client. Less than the client's
    /// keep-alive period (30 s), which it runs only on connections it holds: a kept connection has no
    /// traffic of its own, and one a middlebox or the server dropped while idle would be found only by a
    /// read's reply deadline. It also lets the pool shrink after a burst.
    static let keptIdle: TimeAmount = .seconds(10)

    /// A connection leased from the client within ``leaseWait``, and its lease (ended by
    /// ``LeaseHandoff/release()``). The caller counts it in ``KeptConnections/leasesWaiting`` meanwhile.
    private func lease() async throws -> (PostgresConnection, LeaseHandoff) {
        while !started.withLockedValue({ $0 }) { await Task.yield() }
        let handoff = LeaseHandoff()
        let leasing = Task { [client] in
            do {
                try await client.withConnection { connection in
                    guard handoff.give(connection) else { return }
                    await handoff.released()
                }
            } catch {
                handoff.fail(error)
            }
        }
        // A task, not a task scheduled on the pool's event loop: the loop may shut down meanwhile, and a
        // task scheduled on a loop shut down is dropped with its promise (a crash in a debug build).
        let leaseWait = self.leaseWait
        let deadline = Task {
            try? await Task.sleep(for: .nanoseconds(leaseWait.nanoseconds))
            guard !Task.isCancelled else { return }
            if handoff.abandon() { leasing.cancel() }
        }
        // Ended however the wait ends: a lease that failed would otherwise leave it asleep for the lease wait.
        defer { deadline.cancel() }
        let connection: PostgresConnection
        do {
            connection = try await handoff.connection()
            leases.withLockedValue { $0 += 1 }
        } catch is ReadNotAwaited {
            restAfterFailure("no connection of the pool within \(leaseWait.nanoseconds / 1_000_000) ms")
            throw ReadNotAwaited()
        }
        return (connection, handoff)
    }

    /// Stops the client, and lets its event loop go once the client has closed its connections (which
    /// run on it), without waiting for either: a thread that waited here might be one the client's task
    /// needs.
    func shutDown() {
        let idle = kept.withLockedValue { kept in
            kept.shutDown = true
            defer { kept.idle.removeAll() }
            return kept.idle
        }
        for entry in idle { entry.lease.release() }
        running.cancel()
        Task.detached { [running, group] in
            await running.value
            group.shutdownGracefully { _ in }
        }
    }
}

/// A connection passed from the task that leased it to the read that uses it, which may have given up
/// waiting by then (the lease then ends at once); and the read's end, passed back (the lease ends).
private final class LeaseHandoff: Sendable {
    private enum State {
        case waiting(CheckedContinuation<PostgresConnection, any Error>?)
        case leased(PostgresConnection)
        case taken
        case failed(any Error)
        case abandoned
    }

    private let state = NIOLockedValueBox(State.waiting(nil))
    private let end = AsyncStream<Never>.makeStream()

    /// The leased connection, once given; ``ReadNotAwaited`` if abandoned first.
    func connection() async throws -> PostgresConnection {
        try await withCheckedThrowingContinuation { continuation in
            let outcome: Result<PostgresConnection, any Error>? = state.withLockedValue { state in
                switch state {
                case .waiting:
                    state = .waiting(continuation)
                    return nil
                case .leased(let connection):
                    state = .taken
                    return .success(connection)
                case .failed(let error): return .failure(error)
                case .abandoned, .taken: return .failure(ReadNotAwaited())
                }
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// Hands `connection` to the read; false when the read gave up waiting.
    func give(_ connection: PostgresConnection) -> Bool {
        let waiter: CheckedContinuation<PostgresConnection, any Error>?? = state.withLockedValue { state in
            guard case .waiting(let waiter) = state else { return .none }
            state = waiter == nil ? .leased(connection) : .taken
            return .some(waiter)
        }
        guard let waiter else { return false }
        waiter?.resume(returning: connection)
        return true
    }

    /// The lease failed: the read is told.
    func fail(_ error: any Error) {
        let waiter: CheckedContinuation<PostgresConnection, any Error>? = state.withLockedValue { state in
            guard case .waiting(let waiter) = state else { return nil }
            state = .failed(error)
            return waiter
        }
        waiter?.resume(throwing: error)
    }

    /// The read gives up waiting, unless its connection came first; true when it gave up.
    func abandon() -> Bool {
        let outcome: (gaveUp: Bool, waiter: CheckedContinuation<PostgresConnection, any Error>?) = state.withLockedValue { state in
            guard case .waiting(let waiter) = state else { return (false, nil) }
            state = .abandoned
            return (true, waiter)
        }
        outcome.waiter?.resume(throwing: ReadNotAwaited())
        return outcome.gaveUp
    }

    /// The read is done with the connection.
    func release() { end.continuation.finish() }

    /// Returns once the read is done with the connection.
    func released() async {
        for await _ in end.stream {}
    }
}
