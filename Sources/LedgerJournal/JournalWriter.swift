import Foundation
import LedgerCore
import Synchronization
import Tracing

/// The journal's single writer: a dedicated thread that takes every request queued while the previous
/// batch was committing, and commits them together.
///
/// The state below the queue is touched only by the writer thread (and by `Journal.init` before the
/// thread starts), which is why the type is `@unchecked Sendable`.
final class JournalWriter: @unchecked Sendable {
    private let storage: any JournalStorage
    private let layout: JournalLayout
    private let configuration: Journal.Configuration
    private let journalID: String
    private let journalIDBytes: [UInt8]

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
    private var lastWitnessedSize: UInt64 = 0
    /// Set when the shared store lost events this writer appended or saw: every later batch fails with it.
    private var lostCommits: JournalError?

    // Published for readers on other threads.
    private let published: Mutex<(JournalHead, Ed25519SigningKey)>
    private let counters = Mutex(JournalStatistics())

    init(
        storage: any JournalStorage, layout: JournalLayout, configuration: Journal.Configuration, journalID: String,
        head: JournalHead, frontier: MerkleFrontier, signingKey: Ed25519SigningKey
    ) {
        self.storage = storage
        self.layout = layout
        self.configuration = configuration
        self.journalID = journalID
        self.journalIDBytes = Hex.decode(journalID) ?? []
        self.head = head
        self.frontier = frontier
        self.signingKey = signingKey
        self.published = Mutex((head, signingKey))
        self.lastWitnessedSize = configuration.witness?.latestWitnessedTreeSize() ?? 0
    }

    var publishedHead: JournalHead { published.withLock { $0.0 } }
    var clockTime: LedgerTimestamp { configuration.clock() }
    var statistics: JournalStatistics { counters.withLock { $0 } }
    var publishedKey: Ed25519SigningKey { published.withLock { $0.1 } }
    /// Why this writer stopped appending for good, if it has.
    var halted: JournalError? { haltReason.withLock { $0 } }
    private let haltReason = Mutex<JournalError?>(nil)

    /// The writer thread's name, as `top -H`, `ps -L` and `perf` show it.
    static let threadName = "journal-writer"

    func start() {
        let thread = Thread { [self] in
            // Named by the thread itself: Foundation passes a name to the system only for the current
            // thread. Linux keeps at most 15 bytes of it (`pthread_setname_np` refuses a longer one): this
            // one shows in `top -H`, `ps -L` and `perf` as it is.
            Thread.current.name = Self.threadName
            takeSchedulingPriority()
            run()
        }
        thread.start()
    }

    /// Asks the kernel for the writer's nice value (``Journal/Configuration/writerNiceValue``), and records
    /// the one it runs at.
    private func takeSchedulingPriority() {
        #if os(Linux)
            // A nice value belongs to a thread on Linux: PRIO_PROCESS with `who` 0 is the calling thread.
            let which = __priority_which_t(PRIO_PROCESS.rawValue)
            if configuration.writerNiceValue != 0 { _ = setpriority(which, 0, configuration.writerNiceValue) }
            errno = 0
            let nice = getpriority(which, 0)
            if errno == 0 { counters.withLock { $0.writerNiceValue = nice } }
        #endif
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
        if head.sequence > lastWitnessedSize {
            process([WriteRequest(work: .checkpoint) { _ in }])
        }
        condition.lock()
        stopped = true
        let waiters = stopWaiters
        stopWaiters = []
        condition.unlock()
        for waiter in waiters { waiter.resume() }
    }

    /// Commits one batch, retrying it when the store can fix what made it fail (LMDB grows a full map).
    ///
    /// When requests of the batch are traced, the commit is a span (`journal.commit`), a child of the
    /// first traced request's span and linked to the others'; the store's round trips (PostgreSQL) are
    /// its children.
    private func process(_ batch: [WriteRequest]) {
        let traced = batch.compactMap(\.context)
        guard let parent = traced.first else { return commitBatch(batch) }
        withSpan("journal.commit", context: parent, ofKind: .internal) { span in
            span.attributes["authledger.batch.requests"] = batch.count
            for context in traced.dropFirst().prefix(32) { span.addLink(SpanLink(context: context, attributes: [:])) }
            commitBatch(batch)
            span.attributes["authledger.journal.head"] = Int(truncatingIfNeeded: head.sequence)
        }
    }

    private func commitBatch(_ batch: [WriteRequest]) {
        if let lostCommits {
            fail(batch, with: lostCommits)
            return
        }
        var retries = 0
        // What a successful commit confirmed. A batch's catch-up moves the head over other processes'
        // events before it commits; if the commit fails, those events are not known to be durable (with
        // synchronous replication, a commit is visible on the primary before the standby has it), so the
        // head goes back: only what a commit of this writer confirmed must survive a failover.
        let confirmedHead = head
        let confirmedFrontier = frontier
        // The writer's own CPU time for the batch, retries included: on a shared journal, most of it is
        // spent holding the journal lock.
        let cpuBefore = Self.threadCPUTime()
        defer { counters.withLock { $0.writerCPUTime += Self.threadCPUTime() - cpuBefore } }
        while true {
            do {
                let outcome = try commit(batch)
                head = outcome.head
                frontier = outcome.frontier
                signingKey = outcome.signingKey

                published.withLock { $0 = (outcome.head, outcome.signingKey) }
                counters.withLock {
                    $0.batchesCommitted += 1
                    $0.requestsCommitted += batch.count
                    $0.storageRetries += retries
                    $0.largestBatch = max($0.largestBatch, batch.count)
                    if let (untilCaughtUp, thenCommitted) = outcome.shared {
                        $0.lockWaitAndCatchUp += untilCaughtUp
                        $0.underLockAfterCatchUp += thenCommitted
                    }
                }
                for (request, result) in zip(batch, outcome.results) { request.complete(result) }
                if let checkpoint = outcome.checkpoint {
                    witnessIfDue(checkpoint, requested: outcome.witnessRequested)
                }
                return
            } catch {
                head = confirmedHead
                frontier = confirmedFrontier
                if retries < 40 && storage.recover(from: error) {
                    retries += 1
                    continue
                }
                switch error {
                case let failure as any StorageFailure:
                    fail(batch, with: .storage(failure))
                case let error as JournalError:
                    if case .lostCommits = error {
                        lostCommits = error
                        haltReason.withLock { $0 = error }
                    }
                    fail(batch, with: error)
                default:
                    fail(batch, with: .corrupt("\(error)"))
                }
                return
            }
        }
    }

    /// The CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`); zero where it cannot be read.
    private static func threadCPUTime() -> Duration {
        var now = timespec()
        guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now) == 0 else { return .zero }
        return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
    }

    /// Hands a checkpoint to the witness when asked to, or when enough events have passed since the
    /// last witnessed one.
    private func witnessIfDue(_ checkpoint: SignedCheckpoint, requested: Bool) {
        let size = checkpoint.checkpoint.treeSize
        guard let witness = configuration.witness, size > lastWitnessedSize,
            requested || size - lastWitnessedSize >= configuration.witnessInterval
        else { return }
        do {
            try witness.witness(checkpoint)
            lastWitnessedSize = size
        } catch {
            FileHandle.standardError.write(Data("authledger: checkpoint witness failed: \(error)\n".utf8))
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
        /// On shared storage: from the lock's request to the end of the catch-up (the wait for the lock,
        /// and the catch-up's read), and from there to the end of the commit (the batch's work and its
        /// commit, all under the lock).
        var shared: (untilCaughtUp: Duration, thenCommitted: Duration)?
        var signingKey: Ed25519SigningKey
        var checkpoint: SignedCheckpoint?
        var witnessRequested: Bool
    }

    /// Assembles the batch in one write transaction: runs each request in its own nested transaction,
    /// chains the (already signed) events in order, writes records, Merkle nodes and head, seals the batch
    /// with a signed checkpoint of the new tree, and commits. Throws only storage errors; a request's own
    /// error becomes its result.
    private func commit(_ batch: [WriteRequest]) throws -> Outcome {
        let transaction = try storage.beginWrite()
        var finished = false
        defer { if !finished { transaction.abort() } }
        let clock = ContinuousClock()
        let started = clock.now
        var caughtUp: ContinuousClock.Instant?
        if storage.isShared {
            try transaction.lockJournal()
            // The entries the batch's requests announced they read, fetched at once: sent behind the lock and
            // answered with the catch-up's read, in the same round trip. (A store of its own reads in place,
            // and has nothing to gain from them: the writer does not gather them there.)
            let reads = Set(batch.flatMap(\.reads)).compactMap { read in
                layout.projections[read.projection].map { (table: $0, key: read.key) }
            }
            if !reads.isEmpty { try transaction.prefetch(reads) }
            try catchUp(transaction)
            caughtUp = clock.now
        }

        let now = max(configuration.clock(), head.lastTime)
        var context = JournalWriteTransaction(
            transaction: transaction, layout: layout,
            cursor: ChainCursor(
                nextSequence: head.sequence + 1, lastHash: head.lastHash, signingKey: signingKey,
                journalID: journalIDBytes, timestamp: now))
        var results: [Result<any Sendable, any Error>] = []
        var checkpointRequested = false
        results.reserveCapacity(batch.count)

        for request in batch {
            switch request.work {
            case .append(let events):
                do {
                    var cursor = context.cursor
                    var appended: [AppendedEvent] = []
                    var records: [(sequence: UInt64, record: [UInt8])] = []
                    for event in events {
                        let (envelope, record) = try cursor.chain(event)
                        records.append((envelope.sequence, record))
                        appended.append(AppendedEvent(sequence: envelope.sequence, timestamp: now, eventHash: cursor.lastHash))
                    }
                    context.cursor = cursor
                    context.records += records
                    results.append(.success(appended))
                } catch {
                    results.append(.failure(error))
                }
            case .transact(let body):
                results.append(try runNested(&context) { try body(&$0) })
            case .rotate(let newKey):
                results.append(try runNested(&context) { try $0.rotate(to: newKey, journalID: journalID) })
            case .addSigner(let newKey):
                results.append(try runNested(&context) { try $0.addSigner(newKey, journalID: journalID) })
            case .removeSigner(let keyID):
                results.append(try runNested(&context) { try $0.removeSigner(keyID) })
            case .genesis:
                guard head.sequence == 0 else {
                    results.append(.failure(JournalError.createdConcurrently))
                    continue
                }
                let payload = GenesisPayload(journalID: journalID, publicKey: signingKey.publicKey)
                try transaction.put(Array(JournalLayout.formatVersion.utf8), for: JournalLayout.MetaKey.format, in: layout.meta)
                try transaction.put(Array(journalID.utf8), for: JournalLayout.MetaKey.journalID, in: layout.meta)
                try transaction.put(signingKey.publicKey.bytes, for: JournalLayout.MetaKey.activeKey, in: layout.meta)
                try transaction.put(signingKey.publicKey.bytes, for: JournalLayout.MetaKey.keyHistory(1), in: layout.meta)
                try transaction.put(signingKey.publicKey.bytes, for: JournalLayout.MetaKey.signer(signingKey.keyID), in: layout.meta)
                results.append(.success(try context.append(EventDraft(type: .genesis, encoding: payload))))
            case .checkpoint:
                checkpointRequested = true
                results.append(.success(()))  // replaced by the checkpoint below
            }
        }

        var newFrontier = frontier
        var nodeError: (any Error)?
        for (sequence, record) in context.records {
            // Shortened (journal format §6), but the genesis: the others are expanded with its journal id.
            let stored = sequence > 1 ? StoredRecord.shortened(record) : record
            try transaction.put(stored, for: sequence.bigEndianBytes, in: layout.events, append: true)
            newFrontier.append(MerkleHashing.leafHash(record)) { level, index, hash in
                guard nodeError == nil, JournalLayout.storesMerkleNode(level: level) else { return }
                do {
                    try transaction.put(
                        hash.bytes, for: JournalLayout.merkleKey(level: level, index: index), in: layout.merkle, append: true)
                } catch {
                    nodeError = error
                }
            }
            if let nodeError { throw nodeError }
        }

        var newHead = head
        var checkpoint: SignedCheckpoint?
        if let last = context.records.last {
            newHead = JournalHead(sequence: last.sequence, lastHash: context.cursor.lastHash, lastTime: now)
            // Every batch is sealed by a checkpoint: it signs the order and time of the batch's events.
            let signed = Checkpoint(
                origin: "authledger/\(journalID)", treeSize: newHead.sequence, rootHash: newFrontier.root, timestamp: now
            ).signed(with: context.cursor.signingKey)
            // Shortened (journal format §6): the origin, size and root are the journal's own.
            try transaction.put(StoredCheckpoint.shortened(signed), for: newHead.sequence.bigEndianBytes, in: layout.checkpoints, append: true)
            checkpoint = signed
        } else if checkpointRequested, let latest = try transaction.last(in: layout.checkpoints) {
            // Every batch of events stores one, so the latest is at the head, whose root the frontier has.
            guard let size = UInt64(bigEndianBytes: latest.0) else { throw JournalError.corrupt("checkpoint key of \(latest.0.count) bytes") }
            let root = size == newHead.sequence
                ? newFrontier.root : try StoredMerkleNodes(transaction: transaction, layout: layout).subtreeRoot(start: 0, end: size)
            checkpoint = try StoredCheckpoint.signed(expanding: latest.1, treeSize: size, origin: "authledger/\(journalID)", rootHash: root)
        }
        if checkpointRequested, let checkpoint {
            for index in results.indices {
                if case .checkpoint = batch[index].work { results[index] = .success(checkpoint) }
            }
        }

        // Committing ends the transaction either way (LMDB frees it when the commit fails): never abort after.
        finished = true
        try transaction.commit()
        return Outcome(
            results: results, head: newHead, frontier: newFrontier,
            shared: caughtUp.map { ($0 - started, clock.now - $0) }, signingKey: context.cursor.signingKey,
            checkpoint: checkpoint, witnessRequested: checkpointRequested)
    }

    /// On shared storage, once the journal lock is taken, moves this writer's view of the journal's end to
    /// where the other processes left it: the events appended since this writer's last batch are read
    /// (one query per page of them) and their leaves added to the Merkle frontier; the key that must
    /// sign is still among the signers.
    /// The events whose batches change the keys that may sign (`meta`'s `signer.` entries).
    private static let signerEvents: Set<EventType> = [.genesis, .keyRotated, .keyAdded, .keyRemoved]

    private func catchUp(_ transaction: any StorageWriteTransaction) throws {
        var caughtUp = head
        var caughtUpFrontier = frontier
        // The last record read: the chain's next link is its hash, the only one needed of the page.
        var lastRecord: [UInt8]?
        var sawHead = head.sequence == 0
        // Whether another writer changed the keys that may sign: only events that say so do.
        var signersMayHaveChanged = false
        // From this writer's last event itself: it must still be there, unchanged (a restore or a failover
        // that lost commits would otherwise be chained over).
        // The writer knows its journal's id: no read of `meta` under the lock.
        var expander = RecordExpander(layout: layout, journalID: journalIDBytes.count == 16 ? journalIDBytes : nil)
        try transaction.forEach(in: layout.events, from: max(head.sequence, 1).bigEndianBytes) { key, stored in
            let record = try expander.record(stored, sequence: UInt64(bigEndianBytes: key) ?? 0, in: transaction)
            if head.sequence > 0, UInt64(bigEndianBytes: key) == head.sequence {
                guard SHA256Digest.hash(record) == head.lastHash else {
                    throw JournalError.lostCommits(sequence: head.sequence, reason: "has been replaced by another event")
                }
                sawHead = true
                return true
            }
            guard UInt64(bigEndianBytes: key) == caughtUp.sequence + 1 else {
                throw JournalError.corrupt("the shared journal has a gap or a stray key after #\(caughtUp.sequence)")
            }
            caughtUpFrontier.append(MerkleHashing.leafHash(record))
            // Its layout checked and its type and time read, without decoding it: the full record is
            // what is hashed, and verification decodes it.
            let (type, timestamp) = try EventEnvelope.typeAndTime(ofRecord: record)
            if Self.signerEvents.contains(type) { signersMayHaveChanged = true }
            caughtUp.sequence += 1
            caughtUp.lastTime = timestamp
            lastRecord = record
            return true
        }
        guard sawHead else { throw JournalError.lostCommits(sequence: head.sequence, reason: "is gone") }
        // A record is kept exactly when the sequence moved past the head: none, nothing new.
        guard let lastRecord else { return }
        caughtUp.lastHash = SHA256Digest.hash(lastRecord)
        head = caughtUp
        frontier = caughtUpFrontier
        published.withLock { $0.0 = caughtUp }
        // Read under the lock only when needed: on a shared journal, most batches follow another writer's,
        // and the read would be one more round trip for each. A batch that fails here is retried from its
        // head before the catch-up, so the event that removed this writer's key is seen, and refused, again.
        guard signersMayHaveChanged else { return }
        let signers = try layout.signers(in: transaction)
        if !signers.contains(signingKey.publicKey), let active = signers.first {
            // Rotated away by another process: this one must be restarted with the new key file.
            throw JournalError.signingKeyMismatch(keyFile: signingKey.keyID, journal: active.keyID)
        }
    }

    /// Runs `body` in a nested transaction; keeps its changes if it returns, discards them if it throws.
    /// Storage errors abort the whole batch (rethrown); any other error is the request's result.
    private func runNested(
        _ context: inout JournalWriteTransaction, _ body: (inout JournalWriteTransaction) throws -> any Sendable
    ) throws -> Result<any Sendable, any Error> {
        let child = try context.transaction.beginNested()
        var nested = JournalWriteTransaction(transaction: child, layout: layout, cursor: context.cursor)
        let value: any Sendable
        do {
            value = try body(&nested)
        } catch {
            child.abort()
            // A key or value too large is the request's fault: it fails alone, the batch goes on.
            if let failure = error as? any StorageFailure, !failure.isRequestFault { throw failure }
            if case .storage(let failure) = error as? JournalError, (failure as? any StorageFailure)?.isRequestFault != true {
                throw failure
            }
            return .failure(error)
        }
        // Committing a nested transaction ends it either way; a failure here is the batch's.
        try child.commit()
        context.cursor = nested.cursor
        context.records += nested.records
        return .success(value)
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
    /// Batches tried again after the store fixed what made them fail (LMDB's map grown when full).
    public var storageRetries = 0
    /// On shared storage, the committed batches' time from asking for the journal lock to the end of
    /// the catch-up: the wait for other nodes' batches, and the first statement under the lock.
    public var lockWaitAndCatchUp: Duration = .zero
    /// On shared storage, the committed batches' time from the end of the catch-up to the end of the
    /// commit: the rest of each batch's hold of the journal lock (its requests, chaining, checkpoint,
    /// and the statement that commits), as this node sees it.
    public var underLockAfterCatchUp: Duration = .zero
    /// The CPU time the writer thread spent on batches (storage retries included; waits for the lock, the
    /// disk or the database are not CPU time). On shared storage, most of it is under the journal lock:
    /// divided by ``batchesCommitted``, it is a node's own share of each batch's hold.
    public var writerCPUTime: Duration = .zero
    /// The nice value the writer thread runs at (``Journal/Configuration/writerNiceValue`` if the process
    /// may take it), once the writer has started; `nil` before, or where the system does not say.
    public var writerNiceValue: Int32?
}
