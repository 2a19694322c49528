import CLMDB

/// An open LMDB transaction. Values returned by ``get(_:in:)`` are copied out, so they stay valid
/// after the transaction ends.
struct LMDBTransaction {
    let handle: OpaquePointer
    let readOnly: Bool

    /// Commits. Whether it succeeds or fails, the handle is gone afterwards (LMDB frees a transaction whose
    /// commit fails), so it must not be aborted after this call.
    func commit() throws(LMDBError) {
        try LMDBError.check(mdb_txn_commit(handle), "committing transaction")
    }

    func abort() {
        mdb_txn_abort(handle)
    }

    /// The value stored under `key`, or `nil`.
    func get(_ key: [UInt8], in database: LMDBDatabase) throws(LMDBError) -> [UInt8]? {
        var value = MDB_val()
        let code = key.withUnsafeBufferPointer { keyBuffer in
            var keyVal = MDB_val(mv_size: keyBuffer.count, mv_data: UnsafeMutableRawPointer(mutating: keyBuffer.baseAddress))
            return mdb_get(handle, database.dbi, &keyVal, &value)
        }
        if code == MDB_NOTFOUND { return nil }
        try LMDBError.check(code, "reading \(database.name)")
        return Self.bytes(value)
    }

    /// Stores `value` under `key`, replacing what was there.
    func put(_ value: [UInt8], for key: [UInt8], in database: LMDBDatabase, append: Bool = false) throws(LMDBError) {
        let code = key.withUnsafeBufferPointer { keyBuffer in
            value.withUnsafeBufferPointer { valueBuffer in
                var keyVal = MDB_val(mv_size: keyBuffer.count, mv_data: UnsafeMutableRawPointer(mutating: keyBuffer.baseAddress))
                var valueVal = MDB_val(
                    mv_size: valueBuffer.count, mv_data: UnsafeMutableRawPointer(mutating: valueBuffer.baseAddress))
                return mdb_put(handle, database.dbi, &keyVal, &valueVal, append ? UInt32(MDB_APPEND) : 0)
            }
        }
        try LMDBError.check(code, "writing \(database.name)")
    }

    /// Removes every entry of `database` (which stays open).
    func empty(_ database: LMDBDatabase) throws(LMDBError) {
        try LMDBError.check(mdb_drop(handle, database.dbi, 0), "emptying \(database.name)")
    }

    /// Deletes `key`; returns whether it was there.
    @discardableResult
    func delete(_ key: [UInt8], in database: LMDBDatabase) throws(LMDBError) -> Bool {
        let code = key.withUnsafeBufferPointer { keyBuffer in
            var keyVal = MDB_val(mv_size: keyBuffer.count, mv_data: UnsafeMutableRawPointer(mutating: keyBuffer.baseAddress))
            return mdb_del(handle, database.dbi, &keyVal, nil)
        }
        if code == MDB_NOTFOUND { return false }
        try LMDBError.check(code, "deleting from \(database.name)")
        return true
    }

    /// Visits entries in key order from the first key `>= start` (or the first entry), until `body` returns false.
    func forEach(
        in database: LMDBDatabase, from start: [UInt8]? = nil, _ body: ([UInt8], [UInt8]) throws -> Bool
    ) throws {
        var cursor: OpaquePointer?
        try LMDBError.check(mdb_cursor_open(handle, database.dbi, &cursor), "opening cursor on \(database.name)")
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val()
        var value = MDB_val()
        var code: Int32
        if let start {
            code = start.withUnsafeBufferPointer { buffer in
                key = MDB_val(mv_size: buffer.count, mv_data: UnsafeMutableRawPointer(mutating: buffer.baseAddress))
                return mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE)
            }
        } else {
            code = mdb_cursor_get(cursor, &key, &value, MDB_FIRST)
        }
        while code == 0 {
            guard try body(Self.bytes(key), Self.bytes(value)) else { return }
            code = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)
        }
        if code != MDB_NOTFOUND { try LMDBError.check(code, "iterating \(database.name)") }
    }

    /// The last entry's key and value, or `nil` when the database is empty.
    func last(in database: LMDBDatabase) throws(LMDBError) -> ([UInt8], [UInt8])? {
        var cursor: OpaquePointer?
        try LMDBError.check(mdb_cursor_open(handle, database.dbi, &cursor), "opening cursor on \(database.name)")
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val()
        var value = MDB_val()
        let code = mdb_cursor_get(cursor, &key, &value, MDB_LAST)
        if code == MDB_NOTFOUND { return nil }
        try LMDBError.check(code, "reading last entry of \(database.name)")
        return (Self.bytes(key), Self.bytes(value))
    }

    /// Number of entries.
    func count(in database: LMDBDatabase) throws(LMDBError) -> Int {
        var stat = MDB_stat()
        try LMDBError.check(mdb_stat(handle, database.dbi, &stat), "stat \(database.name)")
        return stat.ms_entries
    }

    private static func bytes(_ value: MDB_val) -> [UInt8] {
        guard value.mv_size > 0, let data = value.mv_data else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: value.mv_size))
    }
}
