import CLMDB
import Foundation
import LedgerCore
import LedgerJournal

/// A journal stored in one LMDB environment: a directory holding `data.mdb` and `lock.mdb`, embedded in
/// this process. The default store, and the fastest: reads are memory-mapped snapshots, and a batch is
/// one write transaction and one `fsync`.
///
/// One process writes at a time: a writable store holds an exclusive lock on `<directory>/writer.lock`,
/// since two writers would each extend the hash chain from their own idea of its end.
public final class LMDBStorage: JournalStorage {
    /// The journal's own tables besides its projections (`events`, `merkle`, `checkpoints`, `meta`,
    /// `subject_keys`, `archived_projections`), with room to spare for tables a later release adds.
    static let baseTableCount = 8

    let environment: LMDBEnvironment
    private let writerLock: WriterLock?

    public var location: String { environment.path }
    public var isShared: Bool { false }

    /// Opens (creating it when missing, with mode 0700) the journal directory for writing.
    /// - Parameters:
    ///   - directory: the journal directory.
    ///   - initialMapSize: the map size to start with; it doubles whenever it fills.
    ///   - tables: how many tables (base tables and projections) the journal will open.
    public init(writingTo directory: String, initialMapSize: Int, tables: Int) throws(JournalError) {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw .directory(path: directory, reason: "cannot be created: \(error.localizedDescription)")
            }
        } else if !isDirectory.boolValue {
            throw .directory(path: directory, reason: "is not a directory")
        }
        let writerLock = try WriterLock(directory: directory)
        do {
            var options = LMDBEnvironment.Options()
            options.mapSize = initialMapSize
            options.maxDatabases = UInt32(Self.baseTableCount + tables)
            environment = try LMDBEnvironment(path: directory, options: options)
            try environment.clearStaleReaders()
        } catch {
            writerLock.release()
            throw .storage(error)
        }
        self.writerLock = writerLock
    }

    /// The map size an LMDB journal starts with; it doubles whenever it fills.
    public static let defaultInitialMapSize = 256 << 20

    /// Opens (or creates) for writing the LMDB journal in `directory`, with room for the projections of
    /// `configuration`.
    public convenience init(
        writingTo directory: String, for configuration: Journal.Configuration, initialMapSize: Int = defaultInitialMapSize
    ) throws(JournalError) {
        try self.init(writingTo: directory, initialMapSize: initialMapSize, tables: configuration.projections.count)
    }

    /// The key file kept beside the LMDB journal in `directory`: `<directory>.key`.
    public static func keyFile(beside directory: String) -> String {
        JournalSideFile.path(beside: directory, suffix: ".key")
    }

    /// Opens the journal in `directory` for reading, alongside a running writer or on read-only media.
    public init(readingFrom directory: String, tables: Int) throws(JournalError) {
        guard FileManager.default.fileExists(atPath: directory + "/data.mdb") else {
            throw .directory(path: directory, reason: "holds no journal (no data.mdb)")
        }
        do {
            var options = LMDBEnvironment.Options()
            options.maxDatabases = UInt32(Self.baseTableCount + tables)
            if access(directory, W_OK) != 0 {
                // A copy on read-only media: no writer can be running, and no lock file can be written.
                options.readOnly = true
                options.noLock = true
            }
            environment = try LMDBEnvironment(path: directory, options: options)
            if !options.noLock { try environment.clearStaleReaders() }
        } catch {
            throw .storage(error)
        }
        writerLock = nil
    }

    public func openTables(_ names: [String], create: Bool) throws -> [String: StorageTable] {
        var tables: [String: StorageTable] = [:]
        if create {
            let transaction = try environment.beginWriteTransaction()
            do {
                for name in names {
                    tables[name] = StorageTable(name: name, handle: try environment.openDatabase(name, in: transaction, create: true).dbi)
                }
            } catch {
                transaction.abort()
                throw error
            }
            try transaction.commit()
        } else {
            try environment.openDatabasesForReading { transaction in
                for name in names {
                    if let database = try? environment.openDatabase(name, in: transaction, create: false) {
                        tables[name] = StorageTable(name: name, handle: database.dbi)
                    }
                }
            }
        }
        return tables
    }

    public func read<R>(_ body: (any StorageReadTransaction) throws -> R) throws -> R {
        try environment.withReadTransaction { transaction in try body(LMDBStorageTransaction(environment: environment, transaction: transaction)) }
    }

    public func beginWrite() throws -> any StorageWriteTransaction {
        LMDBStorageTransaction(environment: environment, transaction: try environment.beginWriteTransaction())
    }

    /// A full map is grown to twice its size, and the batch tried again.
    public func recover(from error: any Error) -> Bool {
        guard let error = error as? LMDBError, error.isMapFull else { return false }
        do {
            try environment.grow(to: environment.mapSize * 2)
            return true
        } catch {
            return false
        }
    }

    public func releaseResidentPages() {
        environment.releaseMappedPages()
    }

    public func close() {
        environment.close()
        writerLock?.release()
    }
}

extension LMDBError: StorageFailure {
    public var isRequestFault: Bool { isBadSize }
}

/// An LMDB transaction seen through the store protocol.
struct LMDBStorageTransaction: StorageWriteTransaction {
    let environment: LMDBEnvironment
    let transaction: LMDBTransaction

    private func database(_ table: StorageTable) -> LMDBDatabase { LMDBDatabase(dbi: table.handle, name: table.name) }

    func get(_ key: [UInt8], in table: StorageTable) throws -> [UInt8]? {
        try transaction.get(key, in: database(table))
    }

    func forEach(in table: StorageTable, from start: [UInt8]?, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        try transaction.forEach(in: database(table), from: start, body)
    }

    func last(in table: StorageTable) throws -> ([UInt8], [UInt8])? {
        try transaction.last(in: database(table))
    }

    func count(in table: StorageTable) throws -> Int {
        try transaction.count(in: database(table))
    }

    func put(_ value: [UInt8], for key: [UInt8], in table: StorageTable, append: Bool) throws {
        try transaction.put(value, for: key, in: database(table), append: append)
    }

    @discardableResult
    func delete(_ key: [UInt8], in table: StorageTable) throws -> Bool {
        try transaction.delete(key, in: database(table))
    }

    func removeAll(in table: StorageTable) throws {
        try transaction.empty(database(table))
    }

    func beginNested() throws -> any StorageWriteTransaction {
        LMDBStorageTransaction(environment: environment, transaction: try environment.beginWriteTransaction(parent: transaction))
    }

    /// Nothing to take: only one process writes an LMDB journal (``WriterLock``).
    func lockJournal() throws {}

    func commit() throws {
        try transaction.commit()
    }

    func abort() {
        transaction.abort()
    }
}

extension Journal.Configuration {
    /// A journal signed with the key file beside the LMDB journal in `directory` (`<directory>.key`), or
    /// with `keyFile` when given.
    public init(keyBeside directory: String, keyFile: String? = nil) {
        self.init(keyFile: keyFile ?? LMDBStorage.keyFile(beside: directory))
    }
}

extension Journal {
    /// Opens (or creates) the LMDB journal in `directory` for writing.
    /// - Parameters:
    ///   - directory: the journal directory (created with mode 0700 when missing).
    ///   - configuration: by default, a journal signed with the key file beside the directory.
    ///   - initialMapSize: the map size to start with; it doubles whenever it fills.
    public static func open(
        directory: String, _ configuration: Configuration? = nil, initialMapSize: Int = LMDBStorage.defaultInitialMapSize
    ) throws(JournalError) -> Journal {
        let configuration = configuration ?? Configuration(keyBeside: directory)
        return try open(configuration, storage: try LMDBStorage(writingTo: directory, for: configuration, initialMapSize: initialMapSize))
    }
}

extension JournalReader {
    /// Opens the LMDB journal in `directory` for reading.
    /// - Parameters:
    ///   - directory: the journal directory (the one holding `data.mdb`).
    ///   - projections: projection tables to make readable; ones the journal lacks are skipped.
    public convenience init(directory: String, projections: [String] = []) throws {
        try self.init(storage: try LMDBStorage(readingFrom: directory, tables: projections.count), projections: projections)
    }
}
