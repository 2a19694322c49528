import LedgerJournal
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

    /// One statement that answers every read of `reads` (from one snapshot, as every statement does):
    /// rows `read, key, value, count`, where `read` is the read's index in `reads`, ordered by it and then
    /// by key. A value read has a row when there is a value, a page one per entry, a last one when the
    /// table has an entry, and a count one with its number.
    static func together(_ reads: [AwaitedRead]) -> PostgresQuery {
        var binds = PostgresBindings(capacity: reads.count * 2)
        func bind(_ text: String) -> String {
            binds.append(text)
            return "$\(binds.count)"
        }
        func bind(_ bytes: [UInt8]) -> String {
            binds.append(ByteBuffer(bytes: bytes))
            return "$\(binds.count)"
        }
        // The read's index is the statement's own number; the values are bound.
        let branches = reads.enumerated().map { index, read -> String in
            switch read {
            case .value(let table, let key):
                return "(SELECT \(index), key, value, NULL::int8 FROM authledger_entries WHERE tbl = \(bind(table.name)) AND key = \(bind(key)))"
            case .entries(let table, let start, let limit):
                return """
                    (SELECT \(index), key, value, NULL::int8 FROM authledger_entries WHERE tbl = \(bind(table.name)) AND key >= \(bind(start)) \
                    ORDER BY key LIMIT \(limit))
                    """
            case .last(let table):
                return "(SELECT \(index), key, value, NULL::int8 FROM authledger_entries WHERE tbl = \(bind(table.name)) ORDER BY key DESC LIMIT 1)"
            case .count(let table):
                return "(SELECT \(index), NULL::bytea, NULL::bytea, count(*) FROM authledger_entries WHERE tbl = \(bind(table.name)))"
            }
        }
        let sql = "SELECT * FROM (\(branches.joined(separator: " UNION ALL "))) AS reads (read, key, value, n) ORDER BY read, key"
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    /// The reads of `reads` as one ``ValueReads`` statement, when every one of them is a value's.
    static func values(_ reads: [AwaitedRead]) -> ValueReads? {
        var tables: [String] = []
        var keys: [ByteBuffer] = []
        tables.reserveCapacity(reads.count)
        keys.reserveCapacity(reads.count)
        for read in reads {
            guard case .value(let table, let key) = read else { return nil }
            tables.append(table.name)
            keys.append(ByteBuffer(bytes: key))
        }
        return ValueReads(tables: tables, keys: keys)
    }

    /// The answers to `reads` (all values', ``values(_:)``) in the rows of their ``ValueReads``.
    static func answers(toValues reads: [AwaitedRead], in rows: [ValueReads.Row]) throws -> [AwaitedReadAnswer] {
        var answers = [AwaitedReadAnswer](repeating: .value(nil), count: reads.count)
        for (read, value) in rows {
            guard read >= 1, read <= reads.count else { throw AwaitedReadMismatch(reads: reads.count, answers: Int(read)) }
            answers[Int(read) - 1] = .value(bytes(value))
        }
        return answers
    }

    /// The answers to `reads` in the rows of their ``together(_:)``.
    static func answers(to reads: [AwaitedRead], in rows: PostgresQueryResult) throws -> [AwaitedReadAnswer] {
        var found: [[(key: [UInt8]?, value: [UInt8]?, count: Int64?)]] = Array(repeating: [], count: reads.count)
        for row in rows {
            let (index, key, value, count) = try row.decode((Int32, ByteBuffer?, ByteBuffer?, Int64?).self)
            guard found.indices.contains(Int(index)) else { throw AwaitedReadMismatch(reads: reads.count, answers: Int(index) + 1) }
            found[Int(index)].append((key.map(bytes), value.map(bytes), count))
        }
        return try zip(reads, found).map { read, rows -> AwaitedReadAnswer in
            func entries() throws -> [([UInt8], [UInt8])] {
                try rows.map { row in
                    guard let key = row.key, let value = row.value else { throw AwaitedReadMismatch(reads: reads.count, answers: found.count) }
                    return (key, value)
                }
            }
            switch read {
            case .value: return .value(rows.first?.value)
            case .entries: return .entries(try entries())
            case .last: return .last(try entries().first)
            case .count: return .count(Int(rows.first?.count ?? 0))
            }
        }
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

/// Reads of values, any number of them, in one statement whose text never changes, so that it is
/// prepared once on each connection: PostgreSQL parses and plans it once, where the text of
/// ``EntryQueries/together(_:)`` depends on the reads and is parsed and planned at every statement
/// (parsing and planning were a third of PostgreSQL's CPU in a run of code exchanges, 2026-12-06). A
/// request's reads are most often values only: a session, its user's consents and key; a code and its
/// user's key.
///
/// Rows: the read's number in the arrays (from 1) and the value; a key with no value has no row.
///
/// Each key is looked up by the primary key, one at a time: the lookup is a `LATERAL` subquery with a
/// `LIMIT`, which PostgreSQL cannot fold into a join. As a plain join, the plan made once for every
/// call (not knowing how many keys come) hashed the whole table instead, and PostgreSQL's CPU per code
/// exchange went from 0.3 ms to 0.75 ms.
struct ValueReads: PostgresPreparedStatement {
    static let name = "authledger_value_reads_v2"
    static let sql = """
        SELECT r.read::int4, e.value FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS r (tbl, key, read), \
        LATERAL (SELECT value FROM authledger_entries WHERE tbl = r.tbl AND key = r.key LIMIT 1) AS e
        """

    typealias Row = (Int32, ByteBuffer)

    let tables: [String]
    let keys: [ByteBuffer]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(tables)
        bindings.append(keys)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}
