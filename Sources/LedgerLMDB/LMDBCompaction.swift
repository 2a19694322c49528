import CLMDB
import Foundation
import LedgerJournal

extension LMDBStorage {
    /// What ``compact(directory:)`` did: the size of `data.mdb` before and after.
    public struct Compaction: Sendable, Equatable {
        public var bytesBefore: Int
        public var bytesAfter: Int
    }

    /// Rewrites the journal in `directory` without the pages LMDB has freed, and replaces its `data.mdb`
    /// with the result: what was deleted — a destroyed subject key above all — is then no longer anywhere
    /// in the file. (LMDB never overwrites a page in place: a deleted entry's bytes stay in a freed page
    /// until a later write happens to reuse it.)
    ///
    /// Takes the journal's writer lock, and refuses while any other process has the journal open (a reader
    /// too: it would go on pairing the old lock file with the new data file). The new file is mode 0600.
    /// The old file's blocks are released to the filesystem; a filesystem snapshot, a backup or the device
    /// itself may still hold them.
    /// - Throws: `JournalError.lockedByAnotherWriter` while a writer has the journal open;
    ///   `JournalError.directory` while another process reads it.
    @discardableResult
    public static func compact(directory: String) throws(JournalError) -> Compaction {
        let dataPath = directory + "/data.mdb"
        guard FileManager.default.fileExists(atPath: dataPath) else {
            throw .directory(path: directory, reason: "holds no journal (no data.mdb)")
        }
        let lock = try WriterLock(directory: directory)
        defer { lock.release() }
        // No other process may have the journal open, readers included: every process with the environment
        // open holds a shared lock on lock.mdb's first byte (LMDB's own rule), so an exclusive one fails.
        let lockFile = open(directory + "/lock.mdb", O_RDWR | O_CLOEXEC)
        if lockFile >= 0 {
            var exclusive = flock()
            exclusive.l_type = Int16(F_WRLCK)
            exclusive.l_whence = Int16(SEEK_SET)
            exclusive.l_start = 0
            exclusive.l_len = 1
            guard fcntl(lockFile, F_SETLK, &exclusive) == 0 else {
                Foundation.close(lockFile)
                throw .directory(path: directory, reason: "is open in another process (a reader): close it, then compact")
            }
        }
        defer { if lockFile >= 0 { Foundation.close(lockFile) } }
        let staging = directory + "/compacting"
        try? FileManager.default.removeItem(atPath: staging)
        guard mkdir(staging, 0o700) == 0 else {
            throw .directory(path: directory, reason: "cannot create \(staging): \(String(cString: strerror(errno)))")
        }
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let before = Self.fileSize(dataPath)
        do {
            var options = LMDBEnvironment.Options()
            options.maxDatabases = UInt32(baseTableCount + 64)
            let environment = try LMDBEnvironment(path: directory, options: options)
            defer { environment.close() }
            try LMDBError.check(mdb_env_copy2(environment.handle, staging, UInt32(MDB_CP_COMPACT)), "mdb_env_copy2 (compact)")
        } catch {
            throw .storage(error)
        }
        let copy = staging + "/data.mdb"
        let fd = open(copy, O_RDONLY)
        guard fd >= 0, fchmod(fd, 0o600) == 0, fsync(fd) == 0 else {
            if fd >= 0 { Foundation.close(fd) }
            throw .directory(path: directory, reason: "cannot sync the compacted copy: \(String(cString: strerror(errno)))")
        }
        Foundation.close(fd)
        guard rename(copy, dataPath) == 0 else {
            throw .directory(path: directory, reason: "cannot replace data.mdb: \(String(cString: strerror(errno)))")
        }
        // The lock file describes the old file's transactions: the next process to open the journal makes
        // a new one (processes still reading the old file keep theirs).
        unlink(directory + "/lock.mdb")
        let directoryFD = open(directory, O_RDONLY)
        if directoryFD >= 0 {
            fsync(directoryFD)
            Foundation.close(directoryFD)
        }
        return Compaction(bytesBefore: before, bytesAfter: Self.fileSize(dataPath))
    }

    private static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }
}
