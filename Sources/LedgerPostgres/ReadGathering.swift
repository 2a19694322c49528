import LedgerJournal
import NIOConcurrencyHelpers

/// Awaited reads of concurrent requests sent to PostgreSQL together: while ``maximumInFlight``
/// statements of gathered reads are on their way, the reads asked meanwhile wait, and go in the next
/// statement, all of them at once (up to ``maximumWeight``).
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
/// sends the next statement.
///
/// A statement that fails fails the request that led it with its error; the others in it are told that
/// their reads were not awaited (``ReadNotAwaited``), and read by waiting instead, as they would have if
/// no connection had come for them: one failure is then one error, one warning and one rest of the
/// pool, not one for each request it carried. While the statements out have made no progress (none
/// sent or answered) for longer than ``stallLimit``, a request does not wait for them either: on a
/// connection that hangs (a host gone half-open, a reply that never comes until its deadline), every
/// request would otherwise queue behind it.
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
        /// When a statement was last sent or answered.
        var progressAt = ContinuousClock.now

        /// Takes the requests waiting first whose reads, with `weight` already taken, weigh at most
        /// `limit` (``ReadGathering/weight(of:)``; the first always, whatever it weighs).
        mutating func takeWaiting(after weight: Int, upTo limit: Int) -> [Waiting] {
            var total = weight
            var taken = 0
            for request in waiting {
                let next = ReadGathering.weight(of: request.reads)
                guard taken == 0 && weight == 0 || total + next <= limit else { break }
                total += next
                taken += 1
            }
            defer { waiting.removeFirst(taken) }
            return Array(waiting.prefix(taken))
        }
    }

    /// How many statements of gathered reads may be on their way at once.
    let maximumInFlight: Int
    /// The most one statement gathers, by ``weight(of:)``: PostgreSQL takes at most 65,535 parameters a
    /// statement (a read binds at most two), and one statement's reply has one deadline.
    let maximumWeight: Int
    /// How long the statements out may make no progress before a request stops waiting for them.
    let stallLimit: Duration
    /// Pthread mutexes (NIO's), not the standard library's `Mutex`: ThreadSanitizer sees their
    /// synchronization. With `Mutex`, a `tools/sanitizers thread` run of 2026-12-07 reported a false race
    /// between two requests' turns at ``State``, each taken under the lock (`halt_on_error`: CI failed).
    private let state = NIOLockedValueBox(State())
    private let counts = NIOLockedValueBox(Statistics())

    /// What the gathering has sent since it was made.
    struct Statistics: Sendable, Equatable {
        /// Statements sent.
        var statements = 0
        /// The requests' statements they carried (each answered as if sent alone).
        var requests = 0
    }

    init(maximumInFlight: Int, maximumWeight: Int = 4_096, stallLimit: Duration = .seconds(1)) {
        precondition(maximumInFlight >= 1 && maximumWeight >= 1)
        self.maximumInFlight = maximumInFlight
        self.maximumWeight = maximumWeight
        self.stallLimit = stallLimit
    }

    /// What `reads` weigh against ``maximumWeight``: one for each read of a value, the last entry or a
    /// count, and the most entries a walk may answer for a walk (a page is 512).
    static func weight(of reads: [AwaitedRead]) -> Int {
        reads.reduce(0) { total, read in
            if case .entries(_, _, let limit) = read { return total + max(1, limit) }
            return total + 1
        }
    }

    var statistics: Statistics { counts.withLockedValue { $0 } }

    /// Requests waiting for a statement to carry their reads now.
    var waitingCount: Int { state.withLockedValue { $0.waiting.count } }

    /// Statements of gathered reads out now (or about to be sent by the request given their lead).
    var inFlightCount: Int { state.withLockedValue { $0.inFlight } }

    /// The answers to `reads`, in their order, from a statement sent by `send` — by this request, or by
    /// another one that gathered them with its own. `send` answers the reads it is given, in their order,
    /// from one snapshot.
    /// - Throws: what the statement threw, when this request led it; ``ReadNotAwaited`` when another
    ///   request's statement carrying them failed, or the statements out made no progress for longer than
    ///   ``stallLimit``.
    func answers(
        to reads: [AwaitedRead], sending send: ([AwaitedRead]) async throws -> [AwaitedReadAnswer]
    ) async throws -> [AwaitedReadAnswer] {
        let now = ContinuousClock.now
        let leads = state.withLockedValue { state -> Bool in
            guard state.inFlight < maximumInFlight else { return false }
            state.inFlight += 1
            // Its statement is under way from now: a request that comes while this one yields must not
            // take the time since the last statement before it (an idle node's) for a stall.
            state.progressAt = now
            return true
        }
        guard !leads else {
            return try await lead(own: reads, with: [], sending: send)
        }
        let turn = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Turn, any Error>) in
            // Room may have been made since: then this request leads with whoever else is waiting.
            let now = ContinuousClock.now
            let (waiting, stalled) = state.withLockedValue { state -> ([Waiting]?, Bool) in
                if state.inFlight >= maximumInFlight, now - state.progressAt > stallLimit { return (nil, true) }
                state.waiting.append(Waiting(reads: reads, turn: continuation))
                guard state.inFlight < maximumInFlight else { return (nil, false) }
                state.inFlight += 1
                state.progressAt = now
                return (state.takeWaiting(after: 0, upTo: maximumWeight), false)
            }
            if stalled { continuation.resume(throwing: ReadNotAwaited()) }
            if let waiting { Self.handOff(waiting) }
        }
        switch turn {
        case .answered(let answers): return answers
        case .lead(let others): return try await lead(own: reads, with: others, sending: send)
        }
    }

    private func count(requests: Int) {
        counts.withLockedValue {
            $0.statements += 1
            $0.requests += requests
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
            let now = ContinuousClock.now
            let next = state.withLockedValue { state -> [Waiting]? in
                state.progressAt = now
                guard !state.waiting.isEmpty else {
                    state.inFlight -= 1
                    return nil
                }
                return state.takeWaiting(after: 0, upTo: maximumWeight)
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
        let now = ContinuousClock.now
        let joining = state.withLockedValue { state in
            state.progressAt = now
            return state.takeWaiting(after: Self.weight(of: reads), upTo: maximumWeight)
        }
        for other in joining { reads += other.reads }
        others += joining
        let answers: [AwaitedReadAnswer]
        var counted = false
        do {
            answers = try await send(reads)
            count(requests: 1 + others.count)
            counted = true
            guard answers.count == reads.count else { throw AwaitedReadMismatch(reads: reads.count, answers: answers.count) }
        } catch {
            // A statement that was sent is a round trip, answered or not (a reply that did not match its
            // reads too); one that never went out (no connection came, or its lease failed:
            // ``StatementNotSent``, ``ReadNotAwaited``) is not.
            let unsent = error as? StatementNotSent
            if !counted && unsent == nil && !(error is ReadNotAwaited) { count(requests: 1 + others.count) }
            for other in others { other.turn.resume(throwing: ReadNotAwaited()) }
            throw unsent?.error ?? error
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

/// What a statement's `send` (``ReadGathering/answers(to:sending:)``) throws when the statement never
/// went out — its connection's lease failed or was cancelled — so that it is not counted as a round
/// trip. The request that led it gets `error`.
struct StatementNotSent: Error {
    let error: any Error
}
