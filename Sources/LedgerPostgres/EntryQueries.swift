import NIOCore
import PostgresNIO

/// The statements that read the journal's one table, `authledger_entries`, and what their rows hold:
/// one text for the batches' waited reads (``PostgresTransaction``) and the requests' awaited ones
/// (``PostgresAwaitedRead``).
enum EntryQueries {
    /// The value under `key` in `table` (no row when there is none).
    static func value(in table: String, key: [UInt8]) -> PostgresQuery {
        "SELECT value FROM authledger_entries WHERE tbl = \(table) AND key = \(ByteBuffer(bytes: key))"
    }

    /// At most `limit` entries of `table` in key order, from `start` (after it, when `after`).
    static func page(in table: String, from start: [UInt8], after: Bool = false, limit: Int) -> PostgresQuery {
        """
        SELECT key, value FROM authledger_entries WHERE tbl = \(table) AND key \(unescaped: after ? ">" : ">=") \(ByteBuffer(bytes: start)) \
        ORDER BY key LIMIT \(limit)
        """
    }

    /// The entry of `table` with the largest key.
    static func last(in table: String) -> PostgresQuery {
        "SELECT key, value FROM authledger_entries WHERE tbl = \(table) ORDER BY key DESC LIMIT 1"
    }

    /// How many entries `table` has.
    static func count(in table: String) -> PostgresQuery {
        "SELECT count(*) FROM authledger_entries WHERE tbl = \(table)"
    }

    /// The value a ``value(in:key:)`` found.
    static func value(of rows: PostgresQueryResult) throws -> [UInt8]? {
        try rows.first.map { bytes(try $0.decode(ByteBuffer.self)) }
    }

    /// The entries a ``page(in:from:after:limit:)`` or ``last(in:)`` found.
    static func entries(of rows: PostgresQueryResult) throws -> [([UInt8], [UInt8])] {
        try rows.map { row in
            let (key, value) = try row.decode((ByteBuffer, ByteBuffer).self)
            return (bytes(key), bytes(value))
        }
    }

    /// The number a ``count(in:)`` found.
    static func count(of rows: PostgresQueryResult) throws -> Int {
        Int(try rows.first?.decode(Int64.self) ?? 0)
    }

    static func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }
}
