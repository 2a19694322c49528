import Foundation

/// Runs a sequential consumer on a thread of its own beside the calling thread: the caller produces
/// batches in order, the consumer takes them in the same order, and at most `capacity` batches wait
/// between them.
///
/// Used where one ordered walk has two halves that each take a good part of its time (a rebuild decodes
/// events, then folds them into projections) and must each stay in order. The caller's half stays on
/// the caller's thread, which matters for LMDB: a read transaction belongs to the thread that opened it.
///
/// Hand-written because neither Dispatch nor the standard library offers a bounded, blocking hand-off
/// between two threads; `AsyncStream` would put the consumer on the cooperative pool, which must not
/// run a walk of millions of events. It locks with `NSCondition` (a pthread mutex and condition
/// variable), which ThreadSanitizer sees order the two threads, where it does not see the standard
/// library's futex-based `Mutex` do so.
final class OrderedHandoff<Element: Sendable>: @unchecked Sendable {
    // Unchecked: every stored variable below is read and written only with `condition` locked.
    private let condition = NSCondition()
    private let capacity: Int
    private var waiting: [[Element]] = []
    /// Batches consumed, for the producer to release: memory is given back on the thread that
    /// allocated it, since a thread freeing another's allocations contends for the allocator's lock of
    /// the other's arena (glibc; a seventh of the producer's time in a rebuild).
    private var consumed: [[Element]] = []
    private var ended = false
    private var finished = false
    private var consumerError: (any Error)?

    /// Batches that may wait between the two threads unless told otherwise.
    static var defaultCapacity: Int { 4 }

    private init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Calls `produce` on this thread with a function that hands one batch to `consume`, which runs on
    /// a thread of its own, batch by batch in order, with `state` for its own; returns the state when
    /// both are done.
    ///
    /// The hand-off function returns how many batches wait for `consume` once it has queued its batch
    /// (for a producer that balances work between the two), or `nil` once `consume` has thrown:
    /// `produce` should stop then.
    /// - Throws: the error of the earlier half — `consume`'s error before `produce`'s, since it
    ///   concerns an element handed off before the one `produce` failed on.
    static func run<State>(
        capacity: Int = defaultCapacity,
        state: State,
        produce: (_ handOff: ([Element]) -> Int?) throws -> Void,
        consume fold: @escaping @Sendable (inout State, [Element]) throws -> Void
    ) throws -> State {
        let handoff = OrderedHandoff(capacity: capacity)
        let owned = Owned(state)
        let consumer = Thread {
            // Named by the thread itself (Foundation names only the current thread), in at most 15 bytes
            // (Linux refuses a longer name).
            Thread.current.name = "ordered-handoff"
            while let batch = handoff.take() {
                do {
                    try fold(&owned.value, batch)
                    handoff.giveBack(batch)
                } catch {
                    handoff.fail(error)
                }
            }
            handoff.finish()
        }
        consumer.start()
        var producerError: (any Error)?
        do {
            try produce { batch in handoff.put(batch) }
        } catch {
            producerError = error
        }
        if let error = handoff.end() { throw error }
        if let producerError { throw producerError }
        return owned.value
    }

    /// The consumer's state. Unchecked: the consumer thread alone touches it between `start()` and
    /// `finish()`, and the caller only after `end()` saw it finish, under the same lock.
    private final class Owned<Value>: @unchecked Sendable {
        var value: Value
        init(_ value: Value) { self.value = value }
    }

    /// Queues `batch` (unless empty), waiting for room; the batches waiting then, or `nil` (and nothing
    /// queued) once the consumer has failed.
    private func put(_ batch: [Element]) -> Int? {
        condition.lock()
        while !batch.isEmpty && waiting.count >= capacity && consumerError == nil { condition.wait() }
        guard consumerError == nil else {
            condition.unlock()
            return nil
        }
        if !batch.isEmpty { waiting.append(batch) }
        let backlog = waiting.count
        let released = consumed
        consumed = []
        condition.unlock()
        // Signalled after unlocking (allowed: the consumer checks `waiting` with the lock held before
        // it waits), so that it does not wake only to wait for the lock this thread still holds.
        condition.broadcast()
        withExtendedLifetime(released) {}  // freed here, on this thread, with the lock given up
        return backlog
    }

    /// Marks the end and waits for the consumer to finish; its error, if it failed.
    private func end() -> (any Error)? {
        condition.lock()
        defer { condition.unlock() }
        ended = true
        condition.broadcast()
        while !finished { condition.wait() }
        return consumerError
    }

    /// The next batch, or `nil` once the producer has ended and every batch was taken.
    private func take() -> [Element]? {
        condition.lock()
        defer { condition.unlock() }
        while waiting.isEmpty && !ended { condition.wait() }
        guard !waiting.isEmpty else { return nil }
        condition.broadcast()
        return waiting.removeFirst()
    }

    private func giveBack(_ batch: [Element]) {
        condition.lock()
        consumed.append(batch)
        condition.unlock()
    }

    /// Records the consumer's failure: batches still queued are dropped, the producer stops.
    private func fail(_ error: any Error) {
        condition.lock()
        consumerError = error
        waiting.removeAll()
        condition.broadcast()
        condition.unlock()
    }

    private func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }
}
