import Foundation
import LedgerCore
import Synchronization

/// The journal's single writer: a dedicated thread that takes every request queued while the previous
/// batch was committing, and commits them together.
///
/// The state below the queue is touched only by the writer thread (and by `Journal.init` before the
/// thread starts), which is why the type is `@unchecked Sendable`.
final class JournalWriter: @unchecked Sendable {
    private let environment: LMDBEnvironment
    private let layout: JournalLayout
    private let configuration: Journal.Configuration
    private let journalID: String

    // Request queue, guarded by `condition`.
    private let condition = NSCondition()
    private var pending: [WriteRequest] = []
    private var stopping = false
    private var stopped = false
    private var stopWaiters: [CheckedContinuation<Void, Never>] = []

    // Writer-thread state.
    private var head: JournalHead
    private var frontier: MerkleFrontier
    private var signingKey: Ed25519SigningKey
    private var lastCheckpointSize: UInt64

    // Published for readers on other threads.
    private let published: Mutex<(JournalHead, KeyID)>
    private let counters = Mutex(JournalStatistics())

    init(
        environment: LMDBEnvironment, layout: JournalLayout, configuration: Journal.Configuration, journalID: String,
        head: JournalHead, frontier: MerkleFrontier, signingKey: Ed25519SigningKey, lastCheckpointSize: UInt64
    ) {
        self.environment = environment
        self.layout = layout
        self.configuration = configuration
        self.journalID = journalID
        self.head = head
        self.frontier = frontier
        self.signingKey = signingKey
        self.lastCheckpointSize = lastCheckpointSize
        self.published = Mutex((head, signingKey.keyID))
    }

    var publishedHead: JournalHead { published.withLock { $0.0 } }
    var statistics: JournalStatistics { counters.withLock { $0 } }
    var publishedKeyID: KeyID { published.withLock { $0.1 } }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "authledger-journal-writer"
        thread.start()
    }

    func enqueue(_ request: WriteRequest) {
        condition.lock()
        guard !stopping else {
            condition.unlock()
            request.complete(.failure(JournalError.closed))
            return
        }
        pending.append(request)
        condition.signal()
        condition.unlock()
    }

    func stop() async {
        await withCheckedContinuation { continuation in
            condition.lock()
            if stopped {
                condition.unlock()
                continuation.resume()
                return
            }
            stopping = true
            stopWaiters.append(continuation)
            condition.signal()
            condition.unlock()
        }
    }

    /// Writes the genesis event and the first checkpoint, on the calling thread, before the writer starts.
    func writeGenesis() throws {
        let result = Mutex<Result<any Sendable, any Error>?>(nil)
        process([WriteRequest(work: .genesis) { outcome in result.withLock { $0 = outcome } }, WriteRequest(work: .checkpoint) { _ in }])
        if case .failure(let error) = result.withLock({ $0 }) { throw error }
    }

    private func run() {
        while true {
            condition.lock()
            while pending.isEmpty && !stopping { condition.wait() }
            if pending.isEmpty {
                condition.unlock()
                break
            }
            let count = min(pending.count, configuration.maximumBatchSize)
            let batch = Array(pending.prefix(count))
            pending.removeFirst(count)
            condition.unlock()
            process(batch)
        }
        if head.sequence > lastCheckpointSize {
            process([WriteRequest(work: .checkpoint) { _ in }])
        }
        condition.lock()
        stopped = true
        let waiters = stopWaiters
        stopWaiters = []
        condition.unlock()
        for waiter in waiters { waiter.resume() }
    }

    /// Commits one batch, retrying it with a larger map when LMDB reports the map full.
    private func process(_ batch: [WriteRequest]) {
        var growths = 0
        while true {
            do {
                let outcome = try commit(batch)
                head = outcome.head
                frontier = outcome.frontier
                signingKey = outcome.signingKey
                if let checkpoint = outcome.checkpoint { lastCheckpointSize = checkpoint.checkpoint.treeSize }
                published.withLock { $0 = (outcome.head, outcome.signingKey.keyID) }
                counters.withLock {
                    $0.batchesCommitted += 1
                    $0.requestsCommitted += batch.count
                    $0.mapGrowths += growths
                    $0.largestBatch = max($0.largestBatch, batch.count)
                }
                for (request, result) in zip(batch, outcome.results) { request.complete(result) }
                if outcome.checkpointIsNew, let checkpoint = outcome.checkpoint, let witness = configuration.witness {
                    do {
                        try witness.witness(checkpoint)
                    } catch {
                        FileHandle.standardError.write(Data("authledger: checkpoint witness failed: \(error)\n".utf8))
                    }
                }
                return
            } catch let error as LMDBError where error.isMapFull && growths < 40 {
                growths += 1
                do {
                    try environment.grow(to: environment.mapSize * 2)
                } catch {
                    fail(batch, with: .storage(error))
                    return
                }
            } catch let error as LMDBError {
                fail(batch, with: .storage(error))
                return
            } catch let error as JournalError {
                fail(batch, with: error)
                return
            } catch {
                fail(batch, with: .corrupt("\(error)"))
                return
            }
        }
    }

    private func fail(_ batch: [WriteRequest], with error: JournalError) {
        counters.withLock { $0.batchesFailed += 1 }
        for request in batch { request.complete(.failure(error)) }
    }

    private struct Outcome {
        var results: [Result<any Sendable, any Error>]
        var head: JournalHead
        var frontier: MerkleFrontier
        var signingKey: Ed25519SigningKey
        var checkpoint: SignedCheckpoint?
        var checkpointIsNew: Bool
    }

    /// Assembles the batch in one write transaction: runs each request in its own nested transaction,
    /// chains the events in order, signs them in parallel, writes records, Merkle nodes, head and any
    /// checkpoint, and commits. Throws only storage errors; a request's own error becomes its result.
    private func commit(_ batch: [WriteRequest]) throws -> Outcome {
        let transaction = try environment.beginWriteTransaction()
        var finished = false
        defer { if !finished { transaction.abort() } }

        let now = max(configuration.clock(), head.lastTime)
        var context = JournalWriteTransaction(
            transaction: transaction, layout: layout,
            cursor: ChainCursor(nextSequence: head.sequence + 1, lastHash: head.lastHash, signingKey: signingKey, timestamp: now))
        var results: [Result<any Sendable, any Error>] = []
        var checkpointRequests: [Int] = []
        results.reserveCapacity(batch.count)

        for (index, request) in batch.enumerated() {
            switch request.work {
            case .append(let drafts):
                do {
                    var cursor = context.cursor
                    let chained = try drafts.map { draft throws(JournalError) in try cursor.chain(draft) }
                    context.cursor = cursor
                    context.appended += chained
                    context.signers += Array(repeating: cursor.signingKey, count: chained.count)
                    results.append(.success(chained.map {
                        AppendedEvent(sequence: $0.sequence, timestamp: $0.timestamp, eventHash: $0.eventHash)
                    }))
                } catch {
                    results.append(.failure(error))
                }
            case .transact(let body):
                results.append(try runNested(&context) { try body(&$0) })
            case .rotate(let newKey):
                results.append(try runNested(&context) { try $0.rotate(to: newKey, journalID: journalID) })
            case .genesis:
                let payload = GenesisPayload(journalID: journalID, publicKey: signingKey.publicKey)
                try transaction.put(Array(JournalLayout.formatVersion.utf8), for: JournalLayout.MetaKey.format, in: layout.meta)
                try transaction.put(Array(journalID.utf8), for: JournalLayout.MetaKey.journalID, in: layout.meta)
                try transaction.put(signingKey.publicKey.bytes, for: JournalLayout.MetaKey.activeKey, in: layout.meta)
                try transaction.put(signingKey.publicKey.bytes, for: JournalLayout.MetaKey.keyHistory(1), in: layout.meta)
                results.append(.success(try context.append(EventDraft(type: .genesis, encoding: payload))))
            case .checkpoint:
                checkpointRequests.append(index)
                results.append(.failure(JournalError.closed))  // replaced below
            }
        }

        var events = context.appended
        Self.sign(&events, with: context.signers)

        var newFrontier = frontier
        for event in events {
            let record = event.record
            try transaction.put(record, for: event.sequence.bigEndianBytes, in: layout.events, append: true)
            var nodeError: LMDBError?
            newFrontier.append(MerkleHashing.leafHash(record)) { level, index, hash in
                guard nodeError == nil else { return }
                do throws(LMDBError) {
                    try transaction.put(hash.bytes, for: JournalLayout.merkleKey(level: level, index: index), in: layout.merkle)
                } catch {
                    nodeError = error
                }
            }
            if let nodeError { throw nodeError }
        }
        let newHead = events.last.map {
            JournalHead(sequence: $0.sequence, lastHash: context.cursor.lastHash, lastTime: $0.timestamp)
        } ?? head
        if !events.isEmpty {
            try transaction.put(newHead.encoded, for: JournalLayout.MetaKey.head, in: layout.meta)
        }

        var checkpoint: SignedCheckpoint?
        var checkpointIsNew = false
        let dueByInterval = newHead.sequence - lastCheckpointSize >= configuration.checkpointInterval
        if !checkpointRequests.isEmpty || dueByInterval {
            if newHead.sequence == lastCheckpointSize, let latest = try transaction.last(in: layout.checkpoints) {
                checkpoint = try SignedCheckpoint(text: String(decoding: latest.1, as: UTF8.self))
            } else {
                let signed = Checkpoint(
                    origin: "authledger/\(journalID)", treeSize: newHead.sequence, rootHash: newFrontier.root, timestamp: now
                ).signed(with: context.cursor.signingKey)
                try transaction.put(Array(signed.text.utf8), for: newHead.sequence.bigEndianBytes, in: layout.checkpoints)
                checkpoint = signed
                checkpointIsNew = true
            }
            for index in checkpointRequests { results[index] = .success(checkpoint!) }
        }

        try transaction.commit()
        finished = true
        return Outcome(
            results: results, head: newHead, frontier: newFrontier, signingKey: context.cursor.signingKey,
            checkpoint: checkpoint, checkpointIsNew: checkpointIsNew)
    }

    /// Runs `body` in a nested transaction; keeps its changes if it returns, discards them if it throws.
    /// Storage errors abort the whole batch (rethrown); any other error is the request's result.
    private func runNested(
        _ context: inout JournalWriteTransaction, _ body: (inout JournalWriteTransaction) throws -> any Sendable
    ) throws -> Result<any Sendable, any Error> {
        let child = try environment.beginWriteTransaction(parent: context.transaction)
        var nested = JournalWriteTransaction(transaction: child, layout: layout, cursor: context.cursor)
        do {
            let value = try body(&nested)
            try child.commit()
            context.cursor = nested.cursor
            context.appended += nested.appended
            context.signers += nested.signers
            return .success(value)
        } catch {
            child.abort()
            if let storage = error as? LMDBError { throw storage }
            if case .storage(let storage) = error as? JournalError { throw storage }
            return .failure(error)
        }
    }

    /// Signs every event with its signer, spread over all cores when the batch is large enough to pay
    /// for it. Order does not matter here: chaining is already done.
    private static func sign(_ events: inout [EventEnvelope], with signers: [Ed25519SigningKey]) {
        let count = events.count
        let workers = min(ProcessInfo.processInfo.activeProcessorCount, max(1, count / 8))
        if workers <= 1 {
            for index in events.indices { events[index].sign(with: signers[index]) }
            return
        }
        events.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let shared = buffer
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for index in stride(from: worker, to: count, by: workers) {
                    shared[index].sign(with: signers[index])
                }
            }
        }
    }
}

/// Counters of the journal's writer since it was opened.
public struct JournalStatistics: Sendable, Equatable {
    /// Write transactions committed (each one fsync).
    public var batchesCommitted = 0
    /// Requests (appends, transactions, checkpoints, rotations) those batches carried.
    public var requestsCommitted = 0
    /// The most requests one batch carried.
    public var largestBatch = 0
    /// Batches that failed with a storage error and were not committed.
    public var batchesFailed = 0
    /// Times the LMDB map was grown because it was full.
    public var mapGrowths = 0
}
