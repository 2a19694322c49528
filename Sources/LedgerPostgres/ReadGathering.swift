import LedgerJournal
import Synchronization

/// Awaited reads of concurrent requests sent to PostgreSQL together: while ``maximumInFlight``
/// statements of gathered reads are on their way, the reads asked meanwhile wait, and go in the next
/// statement, all of them at once (up to ``maximumReads``).
///
/// A statement costs the node a share of CPU however much it reads — a hop to its connection's event
/// loop and back, a write and a read of the socket, their TLS records, a deadline scheduled and
/// cancelled — and PostgreSQL a share too (its protocol messages, a statement's start and end). Under
/// load, a node that sends one statement per request spends that share per request; a node that gathers
/// spends it once per statement, for every request whose reads came while the statement before was out.
///
/// Each request's reads are still answered from one snapshot (a statement's), which is all an awaited
/// read asks (``AwaitedReadConnection/answers(to:)``): that the same statement also answers other
/// requests' reads changes nothing for it. A key asked by several requests is read once for each:
/// gathering saves round trips; it does not share answers between requests.
///
/// There is no thread or task of its own. The request whose reads find room sends the statement (it
/// leads): it first lets the tasks ready to run go ahead (`Task.yield()`: those that reach their reads
/// meanwhile wait for this statement, and go in it), then sends everything waiting. When the reply comes,
/// it hands each request its answers, and the lead to the first request still waiting, if any, which
/// sends the next statement. A statement that fails fails every request in it.
final class ReadGathering: Sendable {
    /// What a request waiting for its reads is resumed with: its answers, or the lead of the next
    /// statement, with the requests waiting then.
    private enum Turn: Sendable {
        case answered([AwaitedReadAnswer])
        case lead([Waiting])
    }

    private struct Waiting: Sendable {
        let reads: [AwaitedRead]
        let turn: CheckedContinuation<Turn, any Error>
    }

    private struct State: Sendable {
        var waiting: [Waiting] = []
        var inFlight = 0

        /// Takes the requests waiting first whose reads, with `count` already taken, are at most `limit`
        /// (the first always, whatever its number).
        mutating func takeWaiting(after count: Int, upTo limit: Int) -> [Waiting] {
            var total = count
            var taken = 0
            for request in waiting {
                guard taken == 0 && count == 0 || total + request.reads.count <= limit else { break }
                total += request.reads.count
                taken += 1
            }
            defer { waiting.removeFirst(taken) }
            return Array(waiting.prefix(taken))
        }
    }

    /// How many statements of gathered reads may be on their way at once.
    let maximumInFlight: Int
    /// The most reads one statement gathers (PostgreSQL takes at most 65,535 parameters a statement; a
    /// read binds at most two).
    let maximumReads: Int
    private let state = Mutex(State())
    private let counts = Mutex(Statistics())

    /// What the gathering has sent since it was made.
    struct Statistics: Sendable, Equatable {
        /// Statements sent.
        var statements = 0
        /// The requests' statements they carried (each answered as if sent alone).
        var requests = 0
    }

    init(maximumInFlight: Int, maximumReads: Int = 4_096) {
        precondition(maximumInFlight >= 1 && maximumReads >= 1)
        self.maximumInFlight = maximumInFlight
        self.maximumReads = maximumReads
    }

    var statistics: Statistics { counts.withLock { $0 } }

    /// Requests waiting for a statement to carry their reads now.
    var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// Statements of gathered reads out now (or about to be sent by the request given their lead).
    var inFlightCount: Int { state.withLock { $0.inFlight } }

    /// The answers to `reads`, in their order, from a statement sent by `send` — by this request, or by
    /// another one that gathered them with its own. `send` answers the reads it is given, in their order,
    /// from one snapshot.
    /// - Throws: what the statement that carried them threw.
    func answers(
        to reads: [AwaitedRead], sending send: ([AwaitedRead]) async throws -> [AwaitedReadAnswer]
    ) async throws -> [AwaitedReadAnswer] {
        let leads = state.withLock { state -> Bool in
            guard state.inFlight < maximumInFlight else { return false }
            state.inFlight += 1
            return true
        }
        guard !leads else {
            return try await lead(own: reads, with: [], sending: send)
        }
        let turn = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Turn, any Error>) in
            // Room may have been made since: then this request leads with whoever else is waiting.
            let waiting = state.withLock { state -> [Waiting]? in
                state.waiting.append(Waiting(reads: reads, turn: continuation))
                guard state.inFlight < maximumInFlight else { return nil }
                state.inFlight += 1
                return state.takeWaiting(after: 0, upTo: maximumReads)
            }
            if let waiting { Self.handOff(waiting) }
        }
        switch turn {
        case .answered(let answers): return answers
        case .lead(let others): return try await lead(own: reads, with: others, sending: send)
        }
    }

    /// Gives the lead of a statement carrying `waiting` (not empty) to its first request.
    private static func handOff(_ waiting: [Waiting]) {
        waiting[0].turn.resume(returning: .lead(Array(waiting.dropFirst())))
    }

    /// Sends one statement with `own` reads first and then those of `others` and of the requests that
    /// come while the tasks ready to run go first, answers them, and hands the lead on (or gives back its
    /// room when no request waits).
    private func lead(
        own: [AwaitedRead], with others: [Waiting], sending send: ([AwaitedRead]) async throws -> [AwaitedReadAnswer]
    ) async throws -> [AwaitedReadAnswer] {
        defer {
            let next = state.withLock { state -> [Waiting]? in
                guard !state.waiting.isEmpty else {
                    state.inFlight -= 1
                    return nil
                }
                return state.takeWaiting(after: 0, upTo: maximumReads)
            }
            if let next { Self.handOff(next) }
        }
        // The node's requests reach their reads one after another, and rarely during a round trip (a
        // round trip is shorter than a request's CPU): gathering only what came while the statement before
        // was out would gather little. With no other task ready, this goes on at once.
        await Task.yield()
        var others = others
        var reads = own
        for other in others { reads += other.reads }
        let joining = state.withLock { $0.takeWaiting(after: reads.count, upTo: maximumReads) }
        for other in joining { reads += other.reads }
        others += joining
        counts.withLock {
            $0.statements += 1
            $0.requests += 1 + others.count
        }
        let answers: [AwaitedReadAnswer]
        do {
            answers = try await send(reads)
            guard answers.count == reads.count else { throw AwaitedReadMismatch(reads: reads.count, answers: answers.count) }
        } catch {
            for other in others { other.turn.resume(throwing: error) }
            throw error
        }
        var start = own.count
        for other in others {
            let end = start + other.reads.count
            other.turn.resume(returning: .answered(Array(answers[start..<end])))
            start = end
        }
        return Array(answers[0..<own.count])
    }
}
