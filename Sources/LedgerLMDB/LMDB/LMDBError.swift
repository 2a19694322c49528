import CLMDB
import Foundation

/// An error returned by LMDB, with its code and LMDB's own message.
public struct LMDBError: Error, Equatable, CustomStringConvertible {
    /// The LMDB or errno code.
    public let code: Int32
    /// What was being done.
    public let operation: String

    init(_ code: Int32, _ operation: String) {
        self.code = code
        self.operation = operation
    }

    /// The map (the file's maximum size) is full: grow it and retry.
    public var isMapFull: Bool { code == MDB_MAP_FULL }
    /// Another process grew the map: adopt the new size and retry.
    public var isMapResized: Bool { code == MDB_MAP_RESIZED }
    /// A key or value is larger than LMDB allows (a request's own fault, not the store's).
    public var isBadSize: Bool { code == MDB_BAD_VALSIZE }
    /// All reader slots are taken.
    public var isReadersFull: Bool { code == MDB_READERS_FULL }

    public var description: String {
        "\(operation): \(String(cString: mdb_strerror(code))) (\(code))"
    }

    @inline(__always)
    static func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(LMDBError) {
        if code != 0 { throw LMDBError(code, operation()) }
    }
}
