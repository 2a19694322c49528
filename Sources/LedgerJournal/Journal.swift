import Foundation
import LedgerCore
import Tracing
import Synchronization

/// An append-only, Ed25519-signed, hash-chained, Merkle-committed event journal, kept in a
/// ``JournalStorage`` (LMDB embedded in this process, or PostgreSQL shared by several).
///
/// - Many concurrent callers append; one writer thread commits. Requests that arrive while a batch is
///   being committed form the next batch: one write transaction and one durable commit for all of them.
///   Each caller resumes only after its batch is durable.
/// - Events are signed by their callers (in parallel, on every core), then chained, stamped and written
///   in order by the writer, which seals every batch with a signed checkpoint of the new Merkle tree.
/// - ``transact(_:)`` lets a caller update projection tables in the same transaction as its events.
/// - Reads (``read(_:)``) are snapshots of the store and run concurrently with the writer.
/// - Signed checkpoints (C2SP tlog-checkpoint) are written with every batch; every
///   ``Configuration/witnessInterval`` events, on demand (``checkpoint()``) and on ``close()`` one is also
///   handed to an optional witness outside the journal.
///
/// Call ``close()`` when done: it commits what is pending, writes a final checkpoint and stops the writer.
public final class Journal: Sendable {
    /// How to open a journal, whatever stores it. Where it is kept is the store's business
    /// (``JournalStorage``): an LMDB journal's directory and map size belong to `LMDBStorage`, a shared
    /// journal's database to `PostgresStorage`.
    public struct Configuration: Sendable {
        /// The signing key file (created, mode 0600, when a new journal is opened without one).
        public var keyFile: String
        /// Projection tables that ``transact(_:)`` bodies and snapshots may use.
        public var projections: [String] = []
        /// The witness is handed a checkpoint whenever this many events have been appended since the
        /// last one it got (and on ``Journal/checkpoint()`` and ``Journal/close()``).
        public var witnessInterval: UInt64 = 4096
        /// The most requests one batch takes.
        public var maximumBatchSize: Int = 4096
        /// The nice value the writer thread asks for (Linux); zero, the default, leaves it at the process's.
        ///
        /// Every append waits for the writer's next commit. An application whose many tasks append and wait
        /// (an embedded audit log) gains from −20: the writer then does not wait for a core behind the
        /// callers signing their next events (64 appenders on two cores: 64,423–70,437 → 76,497–79,698
        /// events/s, `tools/bench ledger`). The authorization server keeps zero: there a raised writer
        /// commits smaller batches, more often, and `GET /authorize` cost a quarter more CPU. It takes
        /// effect only if the process may lower a nice value (`CAP_SYS_NICE` or `RLIMIT_NICE`);
        /// ``JournalStatistics/writerNiceValue`` says what the writer got.
        public var writerNiceValue: Int32 = 0
        /// Where each new checkpoint is also recorded, outside the journal.
        public var witness: (any CheckpointWitness)?
        /// The clock that stamps events (tests inject their own).
        public var clock: @Sendable () -> LedgerTimestamp = Journal.systemClock

        /// A journal signed with the key in `keyFile`.
        public init(keyFile: String) {
            self.keyFile = keyFile
        }
    }

    /// The process's clock: the wall clock, never going backwards and never slower than real time
    /// (``SteadyClock/system``).
    public static let systemClock: @Sendable () -> LedgerTimestamp = { SteadyClock.system.now() }

    /// Read access, shared with the writer's environment.
    public let reader: JournalReader
    /// The journal's identity (32 hex digits).
    public let journalID: String
    private let journalIDBytes: [UInt8]
    /// The checkpoint origin, `authledger/<journal id>`.
    public var origin: String { "authledger/\(journalID)" }

    private let writer: JournalWriter
    private let keyFile: JournalKeyFile

    /// Opens the journal in `storage`, creating it (with a genesis event, a first checkpoint and, if
    /// needed, a new signing key) when the store holds none. The journal owns `storage` from then on and
    /// closes it in ``close()``.
    ///
    /// On shared storage several processes may open the same journal and append to it together, each
    /// with a key that is among the journal's signers (``addSigner(_:)``).
    public static func open(_ configuration: Configuration, storage: any JournalStorage) throws(JournalError) -> Journal {
        do {
            return try Journal(configuration: configuration, storage: storage)
        } catch {
            storage.close()
            throw error
        }
    }

    private init(configuration: Configuration, storage: any JournalStorage) throws(JournalError) {
        let keyFile = JournalKeyFile(path: configuration.keyFile)
        do {
            let layout = try JournalLayout.open(in: storage, projections: configuration.projections, create: true)
            let reader = JournalReader(storage: storage, layout: layout)
            // On shared storage another process may create the journal between our look and our genesis:
            // the genesis is then refused under the journal lock, and the journal it created is opened.
            var attempt = 0
            while true {
                attempt += 1
                let (head, storedID, signers) = try reader.read { snapshot in
                    try layout.checkFormat(in: snapshot.transaction)
                    return (try snapshot.head, try snapshot.journalID, try snapshot.signers)
                }
                let signingKey: Ed25519SigningKey
                let journalID: String
                if head.sequence == 0 {
                    // A new journal: use the key file if one is there, else make one.
                    if keyFile.exists {
                        signingKey = try keyFile.load()
                    } else {
                        signingKey = Ed25519SigningKey.generate()
                        try keyFile.create(signingKey)
                    }
                    journalID = Hex.encode(SecureRandom.bytes(16))
                } else {
                    guard let storedID, let activeKey = signers.first else {
                        throw JournalError.corrupt("journal has events but no identity")
                    }
                    try Self.finishInterruptedRotation(keyFile: keyFile, signers: signers)
                    guard keyFile.exists else {
                        throw JournalError.keyFile(path: keyFile.path, reason: "is missing; the journal's active key is \(activeKey.keyID)")
                    }
                    signingKey = try keyFile.load()
                    guard signers.contains(signingKey.publicKey) else {
                        throw JournalError.signingKeyMismatch(keyFile: signingKey.keyID, journal: activeKey.keyID)
                    }
                    journalID = storedID
                }
                let frontier = try reader.read { snapshot in
                    try MerkleFrontier(size: head.sequence, nodes: StoredMerkleNodes(transaction: snapshot.transaction, layout: layout))
                }
                let writer = JournalWriter(
                    storage: storage, layout: layout, configuration: configuration, journalID: journalID,
                    head: head, frontier: frontier, signingKey: signingKey)
                if head.sequence == 0 {
                    do {
                        try writer.writeGenesis()
                    } catch JournalError.createdConcurrently where attempt == 1 {
                        continue
                    }
                }
                self.writer = writer
                self.reader = reader
                self.journalID = journalID
                self.journalIDBytes = Hex.decode(journalID) ?? []
                self.keyFile = keyFile
                writer.start()
                return
            }
        } catch let error as JournalError {
            throw error
        } catch let error as any StorageFailure {
            throw .storage(error)
        } catch {
            throw .corrupt("\(error)")
        }
    }

    /// A rotation that crashed between committing its event and renaming the key file is finished here;
    /// one that crashed before committing is abandoned.
    private static func finishInterruptedRotation(keyFile: JournalKeyFile, signers: [Ed25519PublicKey]) throws(JournalError) {
        guard FileManager.default.fileExists(atPath: keyFile.stagingPath) else { return }
        // Committed: the staged key signs and the key file's key no longer does.
        if let staged = try? JournalKeyFile.load(from: keyFile.stagingPath), signers.contains(staged.publicKey),
            (try? keyFile.load()).map({ !signers.contains($0.publicKey) }) ?? true
        {
            try keyFile.promoteStagedKey()
        } else {
            keyFile.discardStagedKey()
        }
    }

    /// The last event this process committed or saw (on shared storage, other processes may have
    /// appended since).
    public var head: JournalHead { writer.publishedHead }

    /// The journal's time now: its clock, never earlier than the last event's (what the next batch
    /// would be stamped with if it were committed now).
    public var currentTime: LedgerTimestamp { max(writer.clockTime, writer.publishedHead.lastTime) }

    /// Whether other processes append to this journal too (shared storage).
    public var isShared: Bool { reader.storage.isShared }

    /// How many times a caller running a Swift task waited on its thread for the store's I/O
    /// (``JournalStorage/waitsInTasks``).
    public var storeWaitsInTasks: Int { reader.storage.waitsInTasks }

    /// Counters of the writer since the journal was opened.
    public var statistics: JournalStatistics { writer.statistics }

    /// Why this journal stopped appending for good, if it has: the shared store lost events it had
    /// appended or seen (``JournalError/lostCommits(sequence:reason:)``). Every append fails from then on.
    public var appendingStopped: JournalError? { writer.halted }

    /// The key id that signs new events.
    public var activeKeyID: KeyID { writer.publishedKey.keyID }

    /// Signs `draft` now, in the calling task, with the active key, ready for ``JournalWriteTransaction``
    /// to append. (If the key is rotated before it is appended, the writer signs it again.)
    public func prepare(_ draft: EventDraft) throws -> PreparedEvent {
        try PreparedEvent(draft: draft, journalID: journalIDBytes, key: writer.publishedKey)
    }

    /// Signs `drafts` now, in the calling task, as ``prepare(_:)`` does each: the active key and its id
    /// are taken once for all of them (a request's events).
    public func prepareAll(_ drafts: [EventDraft]) throws -> [PreparedEvent] {
        guard !drafts.isEmpty else { return [] }
        let key = writer.publishedKey
        let keyID = key.keyID
        return try drafts.map { try PreparedEvent(draft: $0, journalID: journalIDBytes, key: key, keyID: keyID) }
    }

    /// Appends one event and returns once it is durable.
    @discardableResult
    public func append(_ draft: EventDraft) async throws -> AppendedEvent {
        try await appendAll([draft])[0]
    }

    /// Appends several events, contiguously and atomically, and returns once they are durable. They are
    /// signed in the calling task, so many concurrent callers sign on every core.
    @discardableResult
    public func appendAll(_ drafts: [EventDraft]) async throws -> [AppendedEvent] {
        let prepared = try prepareAll(drafts)
        return try await submit(.append(prepared)) as! [AppendedEvent]
    }

    /// Runs `body` on the writer inside the next batch's write transaction, and returns its result once
    /// the events it appended and the projection changes it made are durable. If `body` throws, none of
    /// its changes are kept and the error is rethrown here.
    public func transact<R: Sendable>(_ body: @escaping @Sendable (inout JournalWriteTransaction) throws -> R) async throws -> R {
        try await transact(prefetching: [], body)
    }

    /// Runs `body` as ``transact(_:)`` does, with the projection entries it is going to read announced:
    /// the writer fetches those of every request of its batch at once, right after taking the journal's
    /// lock, so that on shared storage the checks made under the lock cost no round trip each.
    /// - Parameters:
    ///   - reads: (projection, key) pairs `body` reads; a key it does not read costs a little, one it
    ///     reads without announcing it is read as usual.
    ///   - body: the transaction's work, run on the journal's writer, as with ``transact(_:)``.
    public func transact<R: Sendable>(
        prefetching reads: [ProjectionRead], _ body: @escaping @Sendable (inout JournalWriteTransaction) throws -> R
    ) async throws -> R {
        try await submit(.transact({ transaction in try body(&transaction) }), reads: reads) as! R
    }

    /// Writes a signed checkpoint of the journal as it is now (or returns the latest one if nothing was
    /// appended since), and hands it to the witness.
    public func checkpoint() async throws -> SignedCheckpoint {
        try await submit(.checkpoint) as! SignedCheckpoint
    }

    /// Rotates the signing key: a new key is staged beside the key file, a `ledger.key.rotated` event
    /// signed by the old key is committed, and the new key then replaces the old one in the key file.
    /// - Returns: the new key's id.
    public func rotateSigningKey() async throws -> KeyID {
        let newKey = Ed25519SigningKey.generate()
        try JournalKeyFile.write(newKey, to: keyFile.stagingPath)
        do {
            _ = try await submit(.rotate(newKey))
        } catch JournalError.storage(let failure) {
            // The store failed: the rotation may have committed (a connection lost after COMMIT), so the
            // staged key is kept; the next open promotes it if the journal names it, or discards it.
            throw JournalError.storage(failure)
        } catch {
            keyFile.discardStagedKey()
            throw error
        }
        try keyFile.promoteStagedKey()
        return newKey.keyID
    }

    /// Adds `newKey` to the keys that may sign this journal: a `ledger.key.added` event signed by this
    /// journal's key, carrying `newKey`'s signature as proof that it is held. A cluster node can then open
    /// the journal with `newKey` as its own key, and verification follows the addition.
    /// - Returns: the sequence number of the addition.
    @discardableResult
    public func addSigner(_ newKey: Ed25519SigningKey) async throws -> UInt64 {
        try await submit(.addSigner(newKey)) as! UInt64
    }

    /// Removes the key `keyID` from the keys that may sign this journal: a `ledger.key.removed` event
    /// signed by this journal's key (which must be another signer). A node still running with the removed
    /// key can append nothing more: on shared storage its next batch is refused.
    /// - Returns: the sequence number of the removal.
    @discardableResult
    public func removeSigner(_ keyID: KeyID) async throws -> UInt64 {
        try await submit(.removeSigner(keyID)) as! UInt64
    }

    /// Lets go of the store's resident pages this process does not need now (``JournalStorage/releaseResidentPages()``).
    public func releaseResidentPages() {
        reader.storage.releaseResidentPages()
    }

    /// Runs `body` against a consistent snapshot of the journal.
    public func read<R>(_ body: (JournalSnapshot) throws -> R) throws -> R {
        try reader.read(body)
    }

    /// Commits everything pending, hands the final checkpoint to the witness, stops the writer and closes
    /// the files. Appends and reads after this fail with ``JournalError/closed``.
    public func close() async {
        await writer.stop()
        reader.close()
    }

    private func submit(_ work: WriteWork, reads: [ProjectionRead] = []) async throws -> any Sendable {
        try await withCheckedThrowingContinuation { continuation in
            writer.enqueue(WriteRequest(work: work, reads: reads) { continuation.resume(with: $0) })
        }
    }
}

/// A projection entry a transaction is going to read (``Journal/transact(prefetching:_:)``).
public struct ProjectionRead: Sendable, Hashable {
    /// The projection's name, as the journal was opened with it.
    public var projection: String
    /// The entry's key.
    public var key: [UInt8]

    public init(projection: String, key: [UInt8]) {
        self.projection = projection
        self.key = key
    }
}

enum WriteWork: Sendable {
    case append([PreparedEvent])
    case transact(@Sendable (inout JournalWriteTransaction) throws -> any Sendable)
    case checkpoint
    case rotate(Ed25519SigningKey)
    case addSigner(Ed25519SigningKey)
    case removeSigner(KeyID)
    case genesis
}

struct WriteRequest: Sendable {
    let work: WriteWork
    /// Projection entries the work reads, fetched with the whole batch's before it runs.
    let reads: [ProjectionRead]
    let complete: @Sendable (Result<any Sendable, any Error>) -> Void
    /// The trace the request was made in, if it is traced: the commit's span is its child.
    let context: ServiceContext?

    init(work: WriteWork, reads: [ProjectionRead] = [], complete: @escaping @Sendable (Result<any Sendable, any Error>) -> Void) {
        self.work = work
        self.reads = reads
        self.complete = complete
        self.context = JournalTracing.isEnabled ? ServiceContext.current : nil
    }
}

