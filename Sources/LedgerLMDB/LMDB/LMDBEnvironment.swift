import CLMDB
import Foundation
import LedgerJournal

/// An LMDB environment: one directory holding `data.mdb` and `lock.mdb`.
///
/// A thin, safe wrapper: every call checks its return code and throws ``LMDBError``. Read
/// transactions may run on any thread (`MDB_NOTLS`), so async tasks can use them; write
/// transactions belong to the one thread that begins them.
///
/// Map growth needs every transaction of this process closed (an LMDB rule), so reads take
/// ``resizeLock`` shared and ``grow(to:)`` takes it exclusively.
final class LMDBEnvironment: @unchecked Sendable {
    let handle: OpaquePointer
    let path: String
    let readOnly: Bool
    private let resizeLock = ReadWriteLock()
    /// Set once, under the write lock, by ``close()``.
    nonisolated(unsafe) private var closed = false

    struct Options {
        var mapSize: Int = 64 << 20
        var maxDatabases: UInt32 = 32
        var maxReaders: UInt32 = 1024
        var readOnly = false
        /// No lock file (`MDB_NOLOCK`): for read-only media, where no writer can be running.
        var noLock = false
    }

    init(path: String, options: Options) throws(LMDBError) {
        var env: OpaquePointer?
        try LMDBError.check(mdb_env_create(&env), "mdb_env_create")
        guard let env else { throw LMDBError(ENOMEM, "mdb_env_create") }
        do throws(LMDBError) {
            try LMDBError.check(mdb_env_set_maxdbs(env, options.maxDatabases), "mdb_env_set_maxdbs")
            try LMDBError.check(mdb_env_set_maxreaders(env, options.maxReaders), "mdb_env_set_maxreaders")
            if !options.readOnly {
                try LMDBError.check(mdb_env_set_mapsize(env, options.mapSize), "mdb_env_set_mapsize")
            }
            var flags = UInt32(MDB_NOTLS)
            if options.readOnly { flags |= UInt32(MDB_RDONLY) }
            if options.noLock { flags |= UInt32(MDB_NOLOCK) }
            try LMDBError.check(mdb_env_open(env, path, flags, 0o600), "opening LMDB environment at \(path)")
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.handle = env
        self.path = path
        self.readOnly = options.readOnly
    }

    deinit {
        if !closed { mdb_env_close(handle) }
    }

    /// Closes the environment once every read in progress has finished; later reads fail.
    /// (LMDB forbids opening one environment twice in a process, so a journal that is reopened must
    /// really be closed first.)
    func close() {
        resizeLock.withWriteLock {
            if !closed {
                mdb_env_close(handle)
                closed = true
            }
        }
    }

    /// Clears reader slots left behind by dead processes; returns how many were cleared.
    @discardableResult
    func clearStaleReaders() throws(LMDBError) -> Int {
        var dead: Int32 = 0
        try LMDBError.check(mdb_reader_check(handle, &dead), "mdb_reader_check")
        return Int(dead)
    }

    /// The current map size in bytes.
    var mapSize: Int {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return info.me_mapsize
    }

    /// Drops this process's page mappings of the whole map (`madvise(MADV_DONTNEED)`). LMDB maps the file
    /// shared and read-only and writes with `pwrite`, so nothing is lost: the pages stay in the kernel's
    /// page cache, and a later read maps them again. This bounds the file-backed resident memory that
    /// reads of a large journal would otherwise leave mapped.
    func releaseMappedPages() {
        resizeLock.withReadLock {
            guard !closed else { return }
            // LMDB does not tell where it mapped the file (`me_mapaddr` is set only for MDB_FIXEDMAP):
            // the kernel's list of this process's mappings does.
            guard let resolved = realpath(path + "/data.mdb", nil) else { return }
            let file = String(cString: resolved)
            free(resolved)
            // Read to the end: `String(contentsOfFile:)` stops at the size procfs reports for the file.
            guard let handle = FileHandle(forReadingAtPath: "/proc/self/maps"), let data = try? handle.readToEnd() else { return }
            try? handle.close()
            let maps = String(decoding: data, as: UTF8.self)
            for line in maps.split(separator: "\n") where line.hasSuffix(" " + file) {
                let range = line.prefix { $0 != " " }.split(separator: "-")
                guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), end > start,
                    let address = UnsafeMutableRawPointer(bitPattern: start)
                else { continue }
                _ = madvise(address, Int(end - start), MADV_DONTNEED)
            }
        }
    }

    /// Grows the map to `size` bytes, waiting for this process's readers to finish first.
    func grow(to size: Int) throws(LMDBError) {
        try resizeLock.withWriteLock { () throws(LMDBError) in
            try LMDBError.check(mdb_env_set_mapsize(handle, size), "mdb_env_set_mapsize(\(size))")
        }
    }

    /// Adopts a map size another process has set (after `MDB_MAP_RESIZED`).
    func adoptResizedMap() throws(LMDBError) {
        try resizeLock.withWriteLock { () throws(LMDBError) in
            try LMDBError.check(mdb_env_set_mapsize(handle, 0), "mdb_env_set_mapsize(0)")
        }
    }

    /// Runs `body` in a read transaction: a consistent snapshot that no writer blocks or changes.
    ///
    /// When every reader slot is taken, the slots of dead processes are reclaimed and the read is tried
    /// again; if live readers hold them all, it fails with `MDB_READERS_FULL` (``LMDBError/isReadersFull``)
    /// rather than waiting.
    func withReadTransaction<R>(_ body: (LMDBTransaction) throws -> R) throws -> R {
        var reclaimedReaders = false
        while true {
            let result: R? = try resizeLock.withReadLock {
                guard !closed else { throw JournalError.closed }
                var txn: OpaquePointer?
                var code = mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn)
                if code == MDB_READERS_FULL, !reclaimedReaders {
                    reclaimedReaders = true
                    // Tried again even when this call cleared nothing: another process may just have.
                    try clearStaleReaders()
                    code = mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn)
                }
                if code == MDB_MAP_RESIZED { return nil }
                try LMDBError.check(code, "beginning read transaction")
                let transaction = LMDBTransaction(handle: txn!, readOnly: true)
                defer { mdb_txn_abort(txn) }
                return try body(transaction)
            }
            if let result { return result }
            try adoptResizedMap()
        }
    }

    /// Opens database handles in a read transaction that is then committed, which is what keeps the
    /// handles valid for later transactions (an aborted transaction closes the handles it opened).
    func openDatabasesForReading<R>(_ body: (LMDBTransaction) throws -> R) throws -> R {
        guard !closed else { throw JournalError.closed }
        var txn: OpaquePointer?
        try LMDBError.check(mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn), "beginning read transaction")
        let transaction = LMDBTransaction(handle: txn!, readOnly: true)
        let result: R
        do {
            result = try body(transaction)
        } catch {
            transaction.abort()
            throw error
        }
        try transaction.commit()
        return result
    }

    /// Begins a write transaction (or a nested one inside `parent`). The caller commits or aborts it.
    func beginWriteTransaction(parent: LMDBTransaction? = nil) throws(LMDBError) -> LMDBTransaction {
        while true {
            var txn: OpaquePointer?
            let code = mdb_txn_begin(handle, parent?.handle, 0, &txn)
            if code == MDB_MAP_RESIZED, parent == nil {
                try adoptResizedMap()
                continue
            }
            try LMDBError.check(code, "beginning write transaction")
            return LMDBTransaction(handle: txn!, readOnly: false)
        }
    }

    /// Opens (creating if allowed) the named database inside `transaction`.
    func openDatabase(_ name: String, in transaction: LMDBTransaction, create: Bool) throws(LMDBError) -> LMDBDatabase {
        var dbi: MDB_dbi = 0
        try LMDBError.check(
            mdb_dbi_open(transaction.handle, name, create ? UInt32(MDB_CREATE) : 0, &dbi), "opening database \(name)")
        return LMDBDatabase(dbi: dbi, name: name)
    }
}

/// A named database inside an environment.
struct LMDBDatabase: Sendable, Hashable {
    let dbi: MDB_dbi
    let name: String
}

/// A POSIX read-write lock.
final class ReadWriteLock: @unchecked Sendable {
    private var lock = pthread_rwlock_t()

    init() { pthread_rwlock_init(&lock, nil) }
    deinit { pthread_rwlock_destroy(&lock) }

    func withReadLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_rwlock_rdlock(&lock)
        defer { pthread_rwlock_unlock(&lock) }
        return try body()
    }

    func withWriteLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_rwlock_wrlock(&lock)
        defer { pthread_rwlock_unlock(&lock) }
        return try body()
    }
}
