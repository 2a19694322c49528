import AuthCore
import Foundation
import LedgerCore
import LedgerJournal
import Tracing
import Synchronization

/// The authorization server's state in the journal: it appends ``AuthEvent``s together with their
/// projection updates (one LMDB transaction, one durable commit), and reads projections from snapshots.
///
/// The current configuration is also kept in memory, because every request reads it; it is replaced
/// after every committed configuration change, from the very state that was written to the projection.
public final class AuthLedger: Sendable {
    public let journal: Journal
    private let cachedConfiguration: Mutex<ConfigurationState>
    private let sealingKey = Mutex<DataKey?>(nil)

    /// The journal's data key, with which appended events have their personal values sealed (see
    /// ``PersonalData``) and the configuration's are opened. Without one, appending an event that holds
    /// personal values fails (they are never stored in clear), and the configuration's email addresses
    /// read as unavailable.
    public var dataKey: DataKey? {
        get { sealingKey.withLock { $0 } }
        set {
            sealingKey.withLock { $0 = newValue }
            // Open the configuration's personal values with it.
            if let configuration = try? read({ try $0.openedConfiguration(dataKey: newValue) }) {
                cachedConfiguration.withLock { $0 = configuration }
            }
        }
    }
    private let lastConfigurationRead = Mutex(ContinuousClock.now)
    /// Codes this node issued, kept for their redemption where reads are awaited
    /// (``expectRedemption(ofCode:grant:issuedAt:readAhead:now:)``).
    private let keptCodes = Mutex(OldestFirstMap<String, KeptCode>(capacity: AuthLedger.keptCodeCapacity))

    /// The most codes kept for their redemption at once (``expectRedemption(ofCode:grant:issuedAt:readAhead:now:)``),
    /// the oldest forgotten first. Each is forgotten when it expires anyway (the tenant's code lifetime, a
    /// minute by default), so this bounds the memory of a node that issues more than 270 codes a second
    /// (a client redeems its code within a second or two of its issue; one redeemed later is read as
    /// another node's).
    public static let keptCodeCapacity = 16_384

    /// The projection tables a journal must be opened with (and the table of their version).
    public static let projections = AuthTable.allCases.map(\.projectionName) + [ProjectionVersion.table]

    /// Serves from `journal`, whose projections must be at ``ProjectionVersion/current`` (``open(_:storage:)``
    /// brings them there).
    public init(journal: Journal) throws {
        self.journal = journal
        let configuration = try journal.read { snapshot in
            guard try ProjectionVersion.stored(in: snapshot) == ProjectionVersion.current else {
                throw JournalError.unsupportedFormat("projections of another version: open the journal with AuthLedger.open")
            }
            return try SnapshotStore(snapshot: snapshot).openedConfiguration(dataKey: nil)
        }
        cachedConfiguration = Mutex(configuration)
    }

    /// Opens (or creates) the journal in `storage` with the authorization server's projections, rebuilding
    /// them from the events first when another version of ``AuthProjection`` wrote them
    /// (``ProjectionVersion``). On shared storage (PostgreSQL) several servers open the same journal and
    /// serve from the same projections. Make `storage` for ``withProjections(_:)`` of `configuration`
    /// (an LMDB store sizes its tables by it): `LMDBStorage(writingTo: directory, for: AuthLedger.withProjections(configuration))`.
    public static func open(_ configuration: Journal.Configuration, storage: any JournalStorage) async throws -> AuthLedger {
        let journal = try Journal.open(withProjections(configuration), storage: storage)
        do {
            try await ProjectionVersion.upgrade(journal)
            return try AuthLedger(journal: journal)
        } catch {
            await journal.close()
            throw error
        }
    }

    /// `configuration` with the authorization server's projection tables (``projections``) added.
    public static func withProjections(_ configuration: Journal.Configuration) -> Journal.Configuration {
        var configuration = configuration
        configuration.projections = Array(Set(configuration.projections + projections)).sorted()
        return configuration
    }

    /// How long a server on shared storage serves a configuration before reading it again: another
    /// server may have changed it (a tenant applied, an invitation accepted).
    public static let sharedConfigurationLifetime: Duration = .seconds(1)

    /// The configuration in force now, its personal values opened with ``dataKey``. On shared storage it is read again from the projections once it
    /// is older than ``sharedConfigurationLifetime``: by a task of its own, awaited as ``query(_:)``
    /// reads (the caller does not wait for the database; it and the callers after it serve the
    /// configuration they have until the new one is in).
    public var configuration: ConfigurationState {
        if journal.isShared {
            // One caller claims the refresh; the others serve the configuration they have meanwhile.
            let due = lastConfigurationRead.withLock { last in
                guard last.duration(to: .now) > Self.sharedConfigurationLifetime else { return false }
                last = .now
                return true
            }
            if due { Task { try? await self.refreshConfigurationAwaiting() } }
        }
        return cachedConfiguration.withLock { $0 }
    }

    /// Reads the configuration from the projections, keeping it if it is newer than the one in memory.
    public func refreshConfiguration() throws {
        let dataKey = self.dataKey
        keep(try read { try $0.openedConfiguration(dataKey: dataKey) })
    }

    /// Reads the configuration as ``refreshConfiguration()`` does, awaited as ``query(_:)`` reads.
    public func refreshConfigurationAwaiting() async throws {
        let dataKey = self.dataKey
        keep(try await query { try $0.openedConfiguration(dataKey: dataKey) })
    }

    private func keep(_ stored: ConfigurationState) {
        lastConfigurationRead.withLock { $0 = .now }
        cachedConfiguration.withLock { current in
            if stored.version >= current.version { current = stored }
        }
    }

    /// Appends the events `body` produces, with their projection updates, durably and atomically, and
    /// returns what `body` returns. `body` runs on the journal's writer: keep it short and pure.
    @discardableResult
    public func record<R: Sendable>(_ body: @escaping @Sendable (inout AuthRecorder) throws -> R) async throws -> R {
        try await record(announcing: []) { recorder in try body(&recorder) }
    }

    /// Appends the events `body` produces, as ``record(_:)`` does, once `conditions` are checked against the
    /// projections as they stand in that commit: `body` is handed the first of them that does not hold
    /// (`nil` when all do) and decides what to record then — nothing, or what the conflict itself means
    /// (a code presented twice revokes what it issued).
    ///
    /// What the conditions read is announced, so that the journal's writer fetches the entries of its whole
    /// batch at once (on PostgreSQL, one query answered with the catch-up read under the journal's lock,
    /// instead of a round trip per check).
    @discardableResult
    public func record<R: Sendable>(
        checking conditions: [CommitCondition],
        _ body: @escaping @Sendable (inout AuthRecorder, CommitCondition?) throws -> R
    ) async throws -> R {
        try await record(announcing: conditions.flatMap(\.reads)) { recorder in
            try body(&recorder, try CommitCondition.firstFailing(conditions, in: recorder.store))
        }
    }

    private func record<R: Sendable>(
        announcing reads: [(AuthTable, String)], _ body: @escaping @Sendable (inout AuthRecorder) throws -> R
    ) async throws -> R {
        let announced = reads.map { ProjectionRead(projection: $0.0.projectionName, key: Array($0.1.utf8)) }
        let trace = RequestTrace.traceID  // `body` runs on the writer's thread: the request's trace goes with it
        let (result, changedConfiguration) = try await journal.transact(prefetching: announced) { transaction in
            try RequestTrace.$traceID.withValue(trace) {
                var recorder = AuthRecorder(transaction: transaction, dataKey: self.dataKey)
                let result = try body(&recorder)
                transaction = recorder.transaction
                return (result, recorder.changedConfiguration)
            }
        }
        // The projection holds the new configuration's personal values sealed: read it back committed, and
        // open them there (configuration changes are rare).
        if changedConfiguration { try refreshConfiguration() }
        return result
    }

    /// Applies a tenant file: appends exactly the configuration events that make the configuration match
    /// it (none when it already does). Returns them.
    @discardableResult
    public func applyTenant(_ tenant: TenantConfiguration, hasher: any SecretHasher) async throws -> [ConfigurationEvent] {
        struct ConfigurationChanged: Error {}
        // Hashing is slow (Argon2id), so plan outside the writer; commit only if nothing changed meanwhile.
        while true {
            let base = configuration
            let events = try TenantPlanner(hasher: hasher).plan(tenant, against: base)
            if events.isEmpty { return [] }
            do {
                try await record { recorder in
                    guard try AuthProjection.configuration(in: recorder.store).version == base.version else {
                        throw ConfigurationChanged()
                    }
                    for event in events { try recorder.append(.configuration(event)) }
                }
                return events
            } catch is ConfigurationChanged {
                // Changed meanwhile, here or (on shared storage) by another server: plan again against it.
                try refreshConfiguration()
                continue
            }
        }
    }

    /// Reads projections from one consistent snapshot.
    public func read<R>(_ body: (SnapshotStore) throws -> R) throws -> R {
        try journal.read { snapshot in try body(SnapshotStore(snapshot: snapshot)) }
    }

    /// Reads projections from one consistent snapshot, as ``read(_:)`` does, for request handlers: an
    /// LMDB read is a memory-mapped lookup, and runs in place; on PostgreSQL each read `body` asks for is
    /// a statement, awaited (``JournalReader/read(awaiting:hint:otherwise:)``: `body` runs again, from the
    /// start, on the answers of a statement that reads what it used and what it asked for, so it must
    /// only read), or — when the store cannot await, or `body` reads too much — waited for on a thread of
    /// its own, not one of the few that run every task.
    ///
    /// - Parameter hint: where the reads `body` will make are kept (``LedgerJournal/AwaitedReadHints``),
    ///   for a reader whose reads depend on each other: learned from one query to the next, or expected
    ///   (``expectRedemption(ofCode:issuedTo:)``). With the reads expected, PostgreSQL answers in one
    ///   statement instead of one per read.
    public func query<R: Sendable>(hint: AwaitedReadHint? = nil, _ body: @escaping @Sendable (SnapshotStore) throws -> R) async throws -> R {
        try await journal.reader.read(awaiting: { try body(SnapshotStore(snapshot: $0)) }, hint: hint) {
            try await readingStore { try self.read(body) }
        }
    }

    /// The journal's end as the store holds it now, read as ``query(_:)`` reads: a read that fails tells
    /// that the store cannot be reached.
    public func storedHead() async throws -> JournalHead {
        try await journal.reader.read(awaiting: { try $0.head }) {
            try await readingStore { try self.journal.read { try $0.head } }
        }
    }

    /// Runs `work`, which reads the store: in place on a store of this process's own (LMDB: lookups in a
    /// memory map), and on shared storage — where it waits for the database — on a thread of its own,
    /// not one of the few that run every task, with the task's trace (the trace id its events carry, the
    /// span context its round trips' spans belong to) carried there: task-locals do not cross to a
    /// Dispatch thread by themselves.
    func readingStore<R: Sendable>(_ work: @escaping @Sendable () throws -> R) async throws -> R {
        guard journal.isShared else { return try work() }
        let (trace, context) = (RequestTrace.traceID, ServiceContext.current)
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(
                    with: Result { try ServiceContext.$current.withValue(context) { try RequestTrace.$traceID.withValue(trace) { try work() } } })
            }
        }
    }
}

/// What ``AuthLedger/record(_:)`` bodies use: append typed events; read projections as they stand in
/// the transaction (including this transaction's own changes).
public struct AuthRecorder {
    var transaction: JournalWriteTransaction
    var changedConfiguration = false
    let dataKey: DataKey?

    init(transaction: JournalWriteTransaction, dataKey: DataKey?) {
        self.transaction = transaction
        self.dataKey = dataKey
    }

    /// Projections inside the transaction.
    public var store: TransactionStore { TransactionStore(transaction: transaction) }

    /// The time the batch is stamped with.
    public var timestamp: LedgerTimestamp { transaction.timestamp }

    /// Appends `event` and applies it to the projections; returns its sequence number.
    ///
    /// Its personal values are sealed first, under the key of their data subject (made in this
    /// transaction if the subject has none): the journal never holds them in clear. The projections are
    /// then updated from the event as stored — sealed values unread, as a rebuild will see them.
    /// Prefer events prepared beforehand (``AuthLedger/prepare(_:)``): this encodes, seals and signs on the
    /// journal's writer, where every other request waits.
    @discardableResult
    public mutating func append(_ event: AuthEvent) throws -> UInt64 {
        let transaction = self.transaction
        let encoded = try JournalEncoding.encode(event, time: transaction.timestamp, dataKey: dataKey) { subject, dataKey in
            try transaction.subjectKey(for: subject, dataKey: dataKey)
        }
        let appended = try self.transaction.append(EventDraft(type: event.eventType, schemaVersion: encoded.schemaVersion, payload: encoded.payload))
        return try fold(event, stored: encoded.stored, traceID: encoded.traceID, at: appended.sequence, to: store)
    }

    /// Appends an event prepared outside the writer (``AuthLedger/prepare(_:)``): it is only chained here,
    /// and applied to the projections; returns its sequence number.
    @discardableResult
    public mutating func append(_ event: PreparedAuthEvent) throws -> UInt64 {
        try append(event, to: store)
    }

    private mutating func append(_ event: PreparedAuthEvent, to store: some ProjectionStore) throws -> UInt64 {
        let appended = try transaction.append(event.prepared)
        return try fold(event.event, stored: event.stored, traceID: event.traceID, at: appended.sequence, to: store)
    }

    /// Appends `events`: as `prepared` (``AuthLedger/prepare(_:)`` of the same events) when there is that,
    /// else encoding, sealing and signing them here. Returns their sequence numbers.
    @discardableResult
    public mutating func append(_ events: [AuthEvent], preparedAs prepared: [PreparedAuthEvent]?) throws -> [UInt64] {
        guard let prepared else { return try events.map { try append($0) } }
        assert(prepared.map(\.event) == events, "prepared from other events")
        // A request's events: their index entries written once a bucket, after the last (``GatheredIndexStore``).
        let gathering = GatheredIndexStore(store)
        let sequences = try prepared.map { try append($0, to: gathering) }
        try gathering.writeIndexEntries()
        return sequences
    }

    private mutating func fold(
        _ event: AuthEvent, stored: AuthEvent, traceID: String?, at sequence: UInt64, to store: some ProjectionStore
    ) throws -> UInt64 {
        try AuthProjection.apply(stored.resolved(at: sequence), sequence: sequence, traceID: traceID, to: store)
        switch event {
        case .configuration, .invitationAccepted: changedConfiguration = true
        default: break
        }
        return sequence
    }
}

/// The keys of data subjects, read ahead with a request's other reads (``AuthLedger/readAhead(subjects:in:)``)
/// so that preparing its events (``AuthLedger/prepare(_:readAhead:)``) reads nothing more.
public struct SubjectKeysReadAhead: Sendable {
    let keys: [String: SubjectKey]

    /// No key: every subject is read when the events are prepared.
    public init() { keys = [:] }

    init(keys: [String: SubjectKey]) { self.keys = keys }
}

/// A code kept by the node that issued it for its redemption there
/// (``AuthLedger/expectRedemption(ofCode:grant:issuedAt:readAhead:now:)``): its record as issued, and the key
/// of its user.
struct KeptCode: Sendable {
    let record: CodeRecord
    let readAhead: SubjectKeysReadAhead

    /// Whether the code has expired at `now`: no longer redeemable, nor worth keeping.
    func hasExpired(at now: LedgerTimestamp) -> Bool { record.grant.expiresAt <= now }
}

extension OldestFirstMap where Value == KeptCode {
    /// Forgets the codes that expired by `now`: the oldest first, as they were issued with one lifetime.
    mutating func forgetExpired(at now: LedgerTimestamp) {
        removeOldest { $0.hasExpired(at: now) }
    }
}

/// An authorization event made ready for the journal outside its writer (``AuthLedger/prepare(_:)``):
/// encoded, its personal values sealed, signed. ``AuthRecorder/append(_:)-(PreparedAuthEvent)`` then only
/// chains it and folds it into the projections.
public struct PreparedAuthEvent: Sendable {
    let event: AuthEvent
    /// As a rebuild will read it: sealed values unopened.
    let stored: AuthEvent
    let prepared: PreparedEvent
    /// The trace id written into its payload, if any.
    let traceID: String?
}

/// How an ``AuthEvent`` becomes a payload: encoded in its type's schema version, its personal values
/// sealed under their subjects' keys.
enum JournalEncoding {
    struct Encoded {
        var schemaVersion: UInt16
        var payload: [UInt8]
        /// The event as a rebuild will read it (sealed values unopened).
        var stored: AuthEvent
        /// The trace id written into the payload (``RequestTrace``), if the event was recorded in a traced request.
        var traceID: String?
    }

    static func encode(
        _ event: AuthEvent, time: LedgerTimestamp, dataKey: DataKey?, key: @escaping (String, DataKey) throws -> SubjectKey
    ) throws -> Encoded {
        let encoding = AuthEvent.payloadEncoding
        // The request's trace, a member beside the event's own.
        let traceID = RequestTrace.traceID.flatMap { RequestTrace.isTraceID($0) ? $0 : nil }
        let traceMember: [(name: String, value: any Encodable)] = traceID.map { [(RequestTrace.member, $0)] } ?? []
        let schemaVersion = AuthEvent.schemaVersion(of: event.eventType)
        guard PersonalData.schemaVersion(of: event.eventType) != nil else {
            return Encoded(schemaVersion: schemaVersion, payload: try event.payload(encoding, adding: traceMember), stored: event, traceID: traceID)
        }
        // The events of every flow are sealed from their typed values, encoded once; the others through their payload.
        if let sealed = try PersonalData.sealedWithoutParsing(event, time: time, dataKey: dataKey, encoding: encoding, adding: traceMember, key: key) {
            return Encoded(schemaVersion: schemaVersion, payload: sealed.payload, stored: sealed.unopened, traceID: traceID)
        }
        var payload = try event.payload(encoding, adding: traceMember)
        var stored = event
        if let sealed = try PersonalData.sealed(payload, type: event.eventType, time: time, dataKey: dataKey, key: key) {
            payload = sealed.payload
            // As a rebuild will read it: unopened (the same bytes `AuthEvent(type:payload:)` would make of it),
            // with what it leaves to an earlier event of its commit as it is in that event (this one's own).
            stored = try AuthEvent(type: event.eventType, payload: sealed.unopened)?.completed(like: event) ?? event
        }
        return Encoded(schemaVersion: schemaVersion, payload: payload, stored: stored, traceID: traceID)
    }
}

extension AuthLedger {
    /// Encodes, seals and signs `events` in the calling task — on every core, rather than on the journal's
    /// one writer — for ``AuthRecorder/append(_:)-(PreparedAuthEvent)``. Returns `nil` when one of them has
    /// a personal value of a data subject that has no key yet: keys are made only in the transaction that
    /// stores them, so such events are appended as they are (``AuthRecorder/append(_:)-(AuthEvent)``).
    ///
    /// Events that refer to each other within their commit do so by offset (``AuthorizeDecided/requestOffset``),
    /// so nothing here depends on where the writer puts them. Day subjects are chosen by the journal's time
    /// now, which the batch's time can pass by the time it commits (a value sealed a moment before
    /// midnight UTC may be kept with the day before's). On shared storage the subjects' keys are read from
    /// the database on a thread of its own (as ``query(_:)`` does), outside the journal's lock.
    public func prepare(_ events: [AuthEvent]) async throws -> [PreparedAuthEvent]? {
        // Events that seal nothing (no personal value, or no data key) need no subject's key: on shared
        // storage they are prepared here, without a read — a round trip and a thread hop saved.
        if journal.isShared, let prepared = try prepareNow(events, keys: { _, _ in nil }) { return prepared }
        return try await readingStore { try self.prepareNow(events) }
    }

    /// Prepares `events` as ``prepare(_:)`` does, with the keys of their data subjects taken from
    /// `readAhead` (read with the request's other reads, ``readAhead(subjects:in:)``): no read of its own
    /// then, and on shared storage no hop to another thread. A subject `readAhead` lacks is read as
    /// ``prepare(_:)`` reads it.
    /// `nil` reads every subject's key, as ``prepare(_:)`` does.
    public func prepare(_ events: [AuthEvent], readAhead: SubjectKeysReadAhead?) async throws -> [PreparedAuthEvent]? {
        if let readAhead, let prepared = try prepareNow(events, keys: { subject, _ in readAhead.keys[subject] }) { return prepared }
        return try await prepare(events)
    }

    /// The keys of `subjects` that have one, read from `store` (a snapshot the request reads anyway) for
    /// ``prepare(_:readAhead:)``. Empty when the journal seals nothing (no data key).
    public func readAhead(subjects: [String], in store: SnapshotStore) throws -> SubjectKeysReadAhead {
        guard let dataKey else { return SubjectKeysReadAhead() }
        var keys: [String: SubjectKey] = [:]
        for subject in subjects {
            keys[subject] = try store.snapshot.subjectKey(subject, dataKey: dataKey)
        }
        return SubjectKeysReadAhead(keys: keys)
    }

    /// The code with this hash, if one was issued, and the key its user's personal values are sealed
    /// under (``prepare(_:readAhead:)``): what redeeming it reads, in one query. On PostgreSQL that is
    /// two statements (the user is known from the code), or one after ``expectRedemption(ofCode:issuedTo:)``
    /// on this node — or none for a code this node issued and kept, not yet expired at `now`
    /// (``expectRedemption(ofCode:grant:issuedAt:readAhead:now:)``): then the record is the code as it was
    /// issued, which may have been redeemed since at another node, so the commit that redeems it must
    /// check that it is still unredeemed (``CommitCondition/codeUnredeemed(_:)``), as every redemption does
    /// for the redemptions that race it. An expired code is read from the store, which tells a code
    /// redeemed before (presented again: a replay, which revokes what it issued) from one that only
    /// expired.
    public func redeemableCode(_ codeHash: String, now: LedgerTimestamp) async throws -> (code: CodeRecord?, readAhead: SubjectKeysReadAhead?) {
        // Taken, so that a code presented again (a replay, here) is read from the store, as it stands.
        let kept = keptCodes.withLock { kept in
            kept.forgetExpired(at: now)
            return kept.take(codeHash)
        }
        if let kept, !kept.hasExpired(at: now) { return (kept.record, kept.readAhead) }
        return try await query(hint: .expected(Self.redemptionHint(codeHash))) { store in try self.redemption(of: codeHash, in: store) }
    }

    /// Keeps the code with this hash, just issued at `sequence` for `grant`, with the key of its user from
    /// `readAhead` (the issuing request's), for its redemption at this node (``redeemableCode(_:now:)``),
    /// which then reads nothing: on PostgreSQL a statement saved, which cost a capped node about 40% of
    /// an exchange's CPU. Kept only where reads are awaited (on LMDB a read is a lookup in a memory map,
    /// not worth the memory), until the code expires, at most ``keptCodeCapacity`` codes, the oldest
    /// forgotten first. When `readAhead` lacks the user's key (the user had none before this request: it
    /// was made in the commit), the reads are set up instead (``expectRedemption(ofCode:issuedTo:)``).
    ///
    /// The user's key is then in this process's memory until the code is taken or expires (and
    /// ``forgetExpiredCodes(now:)`` runs): the tenant's code lifetime, a minute by default. The process
    /// holds the journal's data key, which opens every subject key the store holds; what that minute
    /// adds is a key erased meanwhile (by `authledger subject erase`, or at another node): an exchange
    /// here then seals its values under the destroyed key, and they read as erased, as those of any
    /// request that read the key just before an erasure do. Erased through this ledger
    /// (``eraseSubject(userID:reason:)``), the codes it keeps are forgotten at once.
    public func expectRedemption(
        ofCode codeHash: String, grant: CodeGrant, issuedAt sequence: UInt64, readAhead: SubjectKeysReadAhead?, now: LedgerTimestamp
    ) {
        guard journal.reader.awaitsReads else { return }
        let subject = PersonalData.userSubject(grant.userID)
        let keptKeys: SubjectKeysReadAhead
        if dataKey == nil {
            keptKeys = SubjectKeysReadAhead()  // nothing is sealed: no key is read
        } else if let key = readAhead?.keys[subject] {
            keptKeys = SubjectKeysReadAhead(keys: [subject: key])
        } else {
            expectRedemption(ofCode: codeHash, issuedTo: grant.userID)
            return
        }
        keptCodes.withLock { kept in
            kept.forgetExpired(at: now)
            kept.insert(KeptCode(record: .issued(grant, at: sequence), readAhead: keptKeys), for: codeHash)
        }
    }

    /// How many codes are kept for their redemption now (``expectRedemption(ofCode:grant:issuedAt:readAhead:now:)``).
    public var keptCodeCount: Int { keptCodes.withLock { $0.count } }

    /// Forgets the kept codes that expired by `now`, with their users' keys (`authledger serve` calls it
    /// every second: a node that stops issuing codes forgets them too).
    public func forgetExpiredCodes(now: LedgerTimestamp) {
        keptCodes.withLock { $0.forgetExpired(at: now) }
    }

    /// Forgets every code kept for its redemption: their redemptions read the store again.
    func forgetKeptCodes() {
        keptCodes.withLock { $0.removeAll() }
    }

    /// Sets up what ``redeemableCode(_:now:)`` will read for the code with this hash, issued to `userID`, so
    /// that on PostgreSQL it reads the code and its user's key in one statement. Called once the code is
    /// issued; nothing is read now, and nothing is kept on a store whose reads are not awaited (LMDB).
    public func expectRedemption(ofCode codeHash: String, issuedTo userID: String) {
        journal.reader.expect({ snapshot in
            _ = try self.redemption(of: codeHash, in: SnapshotStore(snapshot: snapshot), issuedTo: userID)
        }, under: Self.redemptionHint(codeHash))
    }

    /// The reads of a redemption, shared by ``redeemableCode(_:now:)`` and ``expectRedemption(ofCode:issuedTo:)``
    /// so that what is set up is what is read: the code, then the key of its user — the one it names, or
    /// `issuedTo` before the code can be read.
    private func redemption(
        of codeHash: String, in store: SnapshotStore, issuedTo userID: String? = nil
    ) throws -> (code: CodeRecord?, readAhead: SubjectKeysReadAhead?) {
        let record = try store.code(codeHash)
        guard let user = record?.grant.userID ?? userID else { return (record, nil) }
        return (record, try readAhead(subjects: [PersonalData.userSubject(user)], in: store))
    }

    private static func redemptionHint(_ codeHash: String) -> [UInt8] { Array("code:".utf8) + Array(codeHash.utf8) }

    private func prepareNow(_ events: [AuthEvent]) throws -> [PreparedAuthEvent]? {
        try journal.read { snapshot in
            try prepareNow(events) { subject, dataKey in try snapshot.subjectKey(subject, dataKey: dataKey) }
        }
    }

    /// Encodes, seals and signs `events` with the subjects' keys `key` gives; `nil` when it gives none
    /// for one of them.
    private func prepareNow(_ events: [AuthEvent], keys key: @escaping (String, DataKey) throws -> SubjectKey?) throws -> [PreparedAuthEvent]? {
        struct NoSubjectKey: Error {}
        let dataKey = self.dataKey
        let time = journal.currentTime
        let encoded: [(event: AuthEvent, encoding: JournalEncoding.Encoded)]
        do {
            // All encoded before any is signed: an attempt that lacks a key gives up before signing anything.
            encoded = try events.map { event in
                let encoding = try JournalEncoding.encode(event, time: time, dataKey: dataKey) { subject, dataKey in
                    guard let found = try key(subject, dataKey) else { throw NoSubjectKey() }
                    return found
                }
                return (event, encoding)
            }
        } catch is NoSubjectKey {
            return nil
        }
        let prepared = try journal.prepareAll(encoded.map { event, encoding in
            EventDraft(type: event.eventType, schemaVersion: encoding.schemaVersion, payload: encoding.payload)
        })
        return zip(encoded, prepared).map { item, prepared in
            PreparedAuthEvent(event: item.event, stored: item.encoding.stored, prepared: prepared, traceID: item.encoding.traceID)
        }
    }

    /// Appends `events` in one durable commit if `conditions` hold in it (``record(checking:_:)``), and
    /// returns their sequence numbers. They are encoded, sealed and signed before the commit
    /// (``prepare(_:)``) when they can be; the writer then only checks, chains and folds.
    ///
    /// - Throws: ``CommitConditionFailed`` naming the first condition that did not hold (nothing appended).
    @discardableResult
    public func record(
        _ events: [AuthEvent], readAhead: SubjectKeysReadAhead? = nil, requiring conditions: [CommitCondition] = []
    ) async throws -> [UInt64] {
        // Encoded, sealed and signed here, before the writer: a span of its own when the request is traced.
        let prepared = try await withSpan("events.sign") { span in
            span.attributes["authledger.events"] = events.count
            return try await prepare(events, readAhead: readAhead)
        }
        return try await record(checking: conditions) { recorder, failed in
            if let failed { throw CommitConditionFailed(condition: failed) }
            return try recorder.append(events, preparedAs: prepared)
        }
    }
}

extension AuthTable {
    /// The name of this table's projection in the journal's store.
    var projectionName: String { "auth.\(rawValue)" }
}

/// Projection tables inside a journal write transaction.
public struct TransactionStore: ProjectionStore {
    let transaction: JournalWriteTransaction

    public func get(_ table: AuthTable, _ key: String) throws -> [UInt8]? {
        try transaction.projection(table.projectionName).get(Array(key.utf8))
    }

    public func put(_ table: AuthTable, _ key: String, _ value: [UInt8]) throws {
        try transaction.projection(table.projectionName).put(value, for: Array(key.utf8))
    }

    public func delete(_ table: AuthTable, _ key: String) throws {
        try transaction.projection(table.projectionName).delete(Array(key.utf8))
    }

    public func extend(_ table: AuthTable, _ key: String, with bytes: [UInt8]) throws {
        try transaction.projection(table.projectionName).extend(bytes, for: Array(key.utf8))
    }

    public func forEach(_ table: AuthTable, from start: String, _ body: (String, [UInt8]) throws -> Bool) throws {
        try transaction.projection(table.projectionName).forEach(from: start.isEmpty ? nil : Array(start.utf8)) { key, value in
            try body(String(decoding: key, as: UTF8.self), value)
        }
    }
}

/// Projection tables inside the transaction while one request's events are applied, their index entries
/// gathered by bucket and written once a bucket (``writeIndexEntries()``).
///
/// A request's events mostly concern the same user, client and session, whose entries fall in one bucket
/// (256 sequence numbers): written as each event was applied, each was a read and a write of that bucket
/// (on LMDB), three times an `/authorize` for the same key. Written together,
/// the bucket's value ends the same, its entries in the same order. Applying an event does not read the
/// index; should anything touch it meanwhile, what was gathered is written first.
final class GatheredIndexStore: ProjectionStore {
    private let base: TransactionStore
    /// The buckets' keys in the order first written, and the entries gathered for each.
    private var gathered: [(key: String, entries: [UInt8])] = []

    init(_ base: TransactionStore) {
        self.base = base
    }

    func get(_ table: AuthTable, _ key: String) throws -> [UInt8]? {
        if table == .index { try writeIndexEntries() }
        return try base.get(table, key)
    }

    func put(_ table: AuthTable, _ key: String, _ value: [UInt8]) throws {
        if table == .index { try writeIndexEntries() }
        try base.put(table, key, value)
    }

    func delete(_ table: AuthTable, _ key: String) throws {
        if table == .index { try writeIndexEntries() }
        try base.delete(table, key)
    }

    func extend(_ table: AuthTable, _ key: String, with bytes: [UInt8]) throws {
        if table == .index { try writeIndexEntries() }
        try base.extend(table, key, with: bytes)
    }

    func forEach(_ table: AuthTable, from start: String, _ body: (String, [UInt8]) throws -> Bool) throws {
        if table == .index { try writeIndexEntries() }
        try base.forEach(table, from: start, body)
    }

    func addIndexEntry(_ kind: IndexKind, _ value: String, sequence: UInt64) throws {
        let key = kind.key(value, sequence: sequence)
        let entry = IndexBucket.entry(sequence)
        if let at = gathered.firstIndex(where: { $0.key == key }) {
            gathered[at].entries += entry
        } else {
            gathered.append((key, entry))
        }
    }

    /// Writes the entries gathered, a bucket at a time.
    func writeIndexEntries() throws {
        let buckets = gathered
        gathered.removeAll()
        for bucket in buckets { try base.extend(.index, bucket.key, with: bucket.entries) }
    }
}

/// Projection tables in a read snapshot (writes are refused).
public struct SnapshotStore: ProjectionStore {
    let snapshot: JournalSnapshot

    /// Projections of `snapshot` (opened with ``AuthLedger/projections``).
    public init(snapshot: JournalSnapshot) {
        self.snapshot = snapshot
    }

    public func get(_ table: AuthTable, _ key: String) throws -> [UInt8]? {
        try snapshot.projection(table.projectionName).get(Array(key.utf8))
    }

    public func put(_ table: AuthTable, _ key: String, _ value: [UInt8]) throws { throw JournalError.readOnly }
    public func delete(_ table: AuthTable, _ key: String) throws { throw JournalError.readOnly }

    public func forEach(_ table: AuthTable, from start: String, _ body: (String, [UInt8]) throws -> Bool) throws {
        try snapshot.projection(table.projectionName).forEach(from: start.isEmpty ? nil : Array(start.utf8)) { key, value in
            try body(String(decoding: key, as: UTF8.self), value)
        }
    }

    /// Every entry of `table` whose key starts with `prefix`.
    public func entries(_ table: AuthTable, prefix: String) throws -> [(String, [UInt8])] {
        var result: [(String, [UInt8])] = []
        let start = Array(prefix.utf8)
        // LMDB has no zero-length keys: an empty prefix starts at the first entry.
        try snapshot.projection(table.projectionName).forEach(from: start.isEmpty ? nil : start) { key, value in
            guard key.starts(with: start) else { return false }
            result.append((String(decoding: key, as: UTF8.self), value))
            return true
        }
        return result
    }

    /// The configuration as the projection holds it, with its personal values opened with `dataKey` as far
    /// as the subjects' keys allow (``PersonalText/erased`` where one was destroyed; ``PersonalText/unavailable``
    /// without a data key).
    public func openedConfiguration(dataKey: DataKey?) throws -> ConfigurationState {
        guard let stored = try get(.configuration, AuthProjection.configurationKey) else { return ConfigurationState() }
        let opener = SealedValueOpener(snapshot: snapshot, dataKey: dataKey)
        let opened = try PersonalData.open(stored, contextType: AuthProjection.configurationEventType, opener: opener.opener)
        return try ProjectionCoding.decode(ConfigurationState.self, from: opened)
    }

    /// The interaction with this hash, its `login_hint` opened with `dataKey` (see ``openedConfiguration(dataKey:)``).
    public func interaction(_ hash: String, dataKey: DataKey?) throws -> InteractionRecord? {
        guard let stored = try get(.interactions, hash) else { return nil }
        let opener = SealedValueOpener(snapshot: snapshot, dataKey: dataKey)
        let opened = try PersonalData.open(stored, contextType: { _ in AuthEvent.interactionOpenedType }, opener: opener.opener)
        return try ProjectionCoding.decode(InteractionRecord.self, from: opened)
    }

    /// The pushed authorization request with this `request_uri` hash, its `login_hint` opened with `dataKey`.
    public func pushedRequest(_ hash: String, dataKey: DataKey?) throws -> PushedRequest? {
        guard let stored = try get(.pushedRequests, hash) else { return nil }
        let opener = SealedValueOpener(snapshot: snapshot, dataKey: dataKey)
        let opened = try PersonalData.open(stored, contextType: { _ in AuthEvent.pushedRequestType }, opener: opener.opener)
        return try ProjectionCoding.decode(PushedRequest.self, from: opened)
    }

    /// The sequence numbers the timeline index holds for `value` of `kind`, in order.
    public func sequences(_ kind: IndexKind, _ value: String) throws -> [UInt64] {
        try entries(.index, prefix: kind.prefix(value)).flatMap { key, value in try IndexBucket.storedSequences(inKey: key.utf8, value: value) }
    }

    /// Every consent `userID` has given `clientID`, keyed as ``AuthorizationInput/consents`` expects.
    public func consents(userID: String, clientID: String) throws -> [String: [String]] {
        let prefix = "\(userID)\u{1F}\(clientID)\u{1F}"
        var result: [String: [String]] = [:]
        for (key, value) in try entries(.consents, prefix: prefix) {
            result[String(key.dropFirst(userID.count + 1))] = try ProjectionCoding.decode([String].self, from: value)
        }
        return result
    }
}

extension IndexBucket {
    /// The sequence numbers of an index entry as the journal stores it, which must be a bucket.
    /// - Throws: ``JournalError/corrupt(_:)`` when it is not.
    static func storedSequences(inKey key: some BidirectionalCollection<UInt8>, value: [UInt8]) throws -> [UInt64] {
        guard let sequences = sequences(inKey: key, value: value) else {
            throw JournalError.corrupt("the index entry \(String(decoding: key, as: UTF8.self)) is not a bucket of sequence numbers")
        }
        return sequences
    }
}

/// The projections' entries by name, for reads in a snapshot and checks inside a commit alike.
extension ProjectionStore {
    /// The session with this hash.
    public func session(_ hash: String) throws -> SessionSnapshot? { try value(SessionSnapshot.self, .sessions, hash) }

    /// The interaction with this hash.
    public func interaction(_ hash: String) throws -> InteractionRecord? { try value(InteractionRecord.self, .interactions, hash) }

    /// The code with this hash.
    public func code(_ hash: String) throws -> CodeRecord? { try value(CodeRecord.self, .codes, CodeRecord.key(hash)) }

    /// The refresh token with this hash, and its family.
    public func refresh(_ hash: String) throws -> (RefreshRecord, RefreshFamilyRecord)? {
        guard let record = try value(RefreshRecord.self, .refreshTokens, hash),
            let family = try value(RefreshFamilyRecord.self, .refreshFamilies, record.issued.family)
        else { return nil }
        return (record, family)
    }

    /// Whether the refresh family is revoked — or gone: a family is pruned only once its lifetime is over
    /// (``ProjectionPruning``), and an access token of a pruned family must not outlive a revocation it can
    /// no longer be checked against, so a missing family counts as revoked (fail closed).
    public func isFamilyRevoked(_ family: String) throws -> Bool {
        try value(RefreshFamilyRecord.self, .refreshFamilies, family)?.revoked ?? true
    }

    /// The access token with this id (`jti`).
    public func token(_ id: String) throws -> TokenRecord? { try value(TokenRecord.self, .tokens, TokenRecord.key(id)) }

    /// The recent failed logins counted under a throttle key (``LoginThrottle/Key/name``), oldest first.
    public func recentLoginFailures(_ key: String) throws -> [LedgerTimestamp] {
        try value([LedgerTimestamp].self, .loginFailures, key) ?? []
    }
}
