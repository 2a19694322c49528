import NIOCore
import PostgresNIO

/// The journal lock held for one round trip to the node: how a batch takes, uses and lets go of it on a
/// server that can (PostgreSQL 14 or later, where the store may create a function and a procedure).
///
/// A batch's statements go out one at a time (postgres-nio sends a statement after the reply to the one
/// before), and everything from the lock's grant to its release is time that every other node's batch
/// waits for. Held by the batch's transaction (`pg_advisory_xact_lock`), the lock lasts from its own
/// statement's reply through the catch-up read, the writes, and `COMMIT`: three round trips to the node
/// besides the node's own work, each one a wake-up of a node that may be short of CPU. Held by the
/// session instead (`pg_advisory_lock`), it needs no transaction around the batch, so:
///
/// 1. ``lockAndRead`` takes the lock and reads the catch-up's page and the batch's announced entries,
///    in one statement: a `VOLATILE` function, whose queries after the lock see a snapshot taken after
///    it (a plain statement's snapshot would be taken before the lock was granted, and miss the last
///    holder's commit).
/// 2. The node works out the batch.
/// 3. ``commitAndUnlock`` inserts the batch's rows, commits, and only then lets go of the lock: a
///    procedure called outside a transaction block may commit.
///
/// The lock is held from within the first statement to the end of the second: one round trip to the
/// node. A batch that must send a write before its end (a delete, a savepoint, more rows than one
/// statement holds) opens a transaction at that point and ends as before, with `COMMIT` and then an
/// unlock; a batch that fails closes its connection, which lets go of a session's lock at once.
///
/// A session lock outlives a transaction, so a node that stops while holding it (cut off, or frozen)
/// would hold it until its session ends: the lock's statement sets the session's
/// `idle_session_timeout` (PostgreSQL 14), and the unlock, once the lock is let go of, sets it back to
/// the session's own (its reset value), so that such a session is ended by PostgreSQL after
/// ``PostgresStorage/idleWriterSeconds``, as an idle transaction holding the lock is. A failure of the
/// function's reads lets go of the lock before the statement fails (its timeout setting is undone with
/// it); the procedure writes nothing unless its session holds the lock (a batch whose lock's statement
/// failed). The function's reads see the last holder's commit only in read committed, so a database
/// whose default isolation is another holds the lock for transactions (which begin read committed).
///
/// A session's lock needs the session: behind a pooler that hands a client's statements to whichever
/// server connection is free (PgBouncer's transaction mode), the lock and its release could land on
/// different connections. Connect to PostgreSQL directly, or through a pooler in session mode. Session and transaction locks of one key exclude each other, so nodes of either kind (an older
/// release, a server without the objects) share a journal safely.
///
/// The function's queries are planned at every call (`plan_cache_mode = force_custom_plan`), as the
/// store's own statements are: PL/pgSQL keeps a plan per session, and one made while the table was
/// small (a new journal) reads the batch's announced entries with a scan of the whole table, for the
/// life of the connection (measured: 12–26 ms a batch under the lock after 100,000 rows).
///
/// The objects' names carry a version: a release that changes one creates the next name, so that nodes
/// of the release before keep theirs while both run.
enum BriefJournalLock {
    static let lockAndReadFunction = "authledger_lock_read_v1"
    /// Version 2 lets go of the lock right after its commit, and then resets the idle timeout with `RESET`
    /// (version 1 read `pg_settings` for it first, under the lock: 0.42 ms of its 1.31 by
    /// `pg_stat_statements`), and skips an `INSERT` with no rows.
    static let commitProcedure = "authledger_commit_unlock_v2"

    /// The oldest server that has `idle_session_timeout` (`server_version_num`).
    static let oldestServer = 140_000

    /// Whether both objects exist (in the schema the connection's `search_path` finds).
    static var objectsExist: PostgresQuery {
        "SELECT to_regproc(\(lockAndReadFunction)) IS NOT NULL AND to_regproc(\(commitProcedure)) IS NOT NULL"
    }

    /// The statements that create the two objects (run under the journal lock, by the first node that
    /// finds them missing).
    static var creation: [PostgresQuery] {
        [
            PostgresQuery(
                unsafeSQL: """
                    CREATE OR REPLACE FUNCTION \(lockAndReadFunction)(
                        lock_key bigint, idle_timeout text, page_tbl text, page_from bytea, page_after boolean, page_limit bigint,
                        wanted_tbls text[], wanted_keys bytea[])
                    RETURNS TABLE (entry_tbl text, entry_key bytea, entry_value bytea)
                    LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_custom_plan AS $body$
                    BEGIN
                        PERFORM set_config('idle_session_timeout', idle_timeout, false);
                        PERFORM pg_advisory_lock(lock_key);
                        BEGIN
                            IF page_after THEN
                                RETURN QUERY SELECT NULL::text, e.key, e.value FROM authledger_entries e
                                    WHERE e.tbl = page_tbl AND e.key > page_from ORDER BY e.key LIMIT page_limit;
                            ELSE
                                RETURN QUERY SELECT NULL::text, e.key, e.value FROM authledger_entries e
                                    WHERE e.tbl = page_tbl AND e.key >= page_from ORDER BY e.key LIMIT page_limit;
                            END IF;
                            RETURN QUERY SELECT e.tbl, e.key, e.value FROM authledger_entries e
                                WHERE (e.tbl, e.key) IN (SELECT * FROM unnest(wanted_tbls, wanted_keys));
                        EXCEPTION WHEN OTHERS THEN
                            -- The statement fails and its timeout setting with it, but a session's lock
                            -- would stay: let go of it here.
                            PERFORM pg_advisory_unlock(lock_key);
                            RAISE;
                        END;
                    END
                    $body$
                    """),
            PostgresQuery(
                unsafeSQL: """
                    CREATE OR REPLACE PROCEDURE \(commitProcedure)(
                        lock_key bigint,
                        append_tbls text[], append_keys bytea[], append_values bytea[],
                        upsert_tbls text[], upsert_keys bytea[], upsert_values bytea[],
                        extend_tbls text[], extend_keys bytea[], extend_values bytea[])
                    LANGUAGE plpgsql AS $body$
                    BEGIN
                        -- Written only under the lock: a batch whose lock's statement failed stops here.
                        IF NOT EXISTS (
                            SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
                                AND classid = ((lock_key >> 32) & 4294967295)::oid AND objid = (lock_key & 4294967295)::oid AND objsubid = 1)
                        THEN
                            RAISE EXCEPTION 'the journal lock is not held by this session';
                        END IF;
                        IF cardinality(append_keys) > 0 THEN
                            INSERT INTO authledger_entries (tbl, key, value) SELECT * FROM unnest(append_tbls, append_keys, append_values);
                        END IF;
                        IF cardinality(upsert_keys) > 0 THEN
                            INSERT INTO authledger_entries (tbl, key, value) SELECT * FROM unnest(upsert_tbls, upsert_keys, upsert_values)
                                ON CONFLICT (tbl, key) DO UPDATE SET value = EXCLUDED.value;
                        END IF;
                        IF cardinality(extend_keys) > 0 THEN
                            INSERT INTO authledger_entries (tbl, key, value) SELECT * FROM unnest(extend_tbls, extend_keys, extend_values)
                                ON CONFLICT (tbl, key) DO UPDATE SET value = authledger_entries.value || EXCLUDED.value;
                        END IF;
                        COMMIT;
                        -- The lock first: the next holder waits for nothing but the commit.
                        PERFORM pg_advisory_unlock(lock_key);
                        -- Back to the session's own timeout (its reset value), as RESET does.
                        RESET idle_session_timeout;
                    END
                    $body$
                    """),
        ]
    }

    /// Takes the lock for the session (with its idle timeout) and reads, after it, the page of `table`
    /// from `start` (after it, when `after`) and the entries under `wanted`: rows `tbl, key, value`, the
    /// page's with no table (NULL), in key order, then the wanted entries that exist.
    static func lockAndRead(
        page table: String, from start: [UInt8], after: Bool, limit: Int, wanted: (tables: [String], keys: [ByteBuffer])
    ) -> PostgresQuery {
        """
        SELECT * FROM \(unescaped: lockAndReadFunction)(\(PostgresStorage.journalLockKey), \(PostgresStorage.idleWriterTimeout), \(table), \
        \(ByteBuffer(bytes: start)), \(after), \(limit), \(wanted.tables)::text[], \(wanted.keys)::bytea[])
        """
    }

    /// Takes the lock for the session, with its idle timeout: when the batch's first statement after the
    /// lock is not its catch-up's read.
    static var lock: PostgresQuery {
        "SELECT set_config('idle_session_timeout', \(PostgresStorage.idleWriterTimeout), false), pg_advisory_lock(\(PostgresStorage.journalLockKey))"
    }

    /// Lets go of the lock, and sets the idle timeout back to the session's own: after a batch that
    /// committed in a transaction of its own.
    static var unlock: PostgresQuery {
        // The lock first (a target list is evaluated in order): reading `pg_settings` takes a while.
        """
        SELECT pg_advisory_unlock(\(PostgresStorage.journalLockKey)), \
        (SELECT set_config('idle_session_timeout', reset_val, false) FROM pg_settings WHERE name = 'idle_session_timeout')
        """
    }

    /// Writes `rows` (each kind as one `unnest` of three arrays), commits, and lets go of the lock.
    static func commitAndUnlock(
        appends: ([String], [ByteBuffer], [ByteBuffer]), upserts: ([String], [ByteBuffer], [ByteBuffer]),
        extensions: ([String], [ByteBuffer], [ByteBuffer])
    ) -> PostgresQuery {
        """
        CALL \(unescaped: commitProcedure)(\(PostgresStorage.journalLockKey), \
        \(appends.0)::text[], \(appends.1)::bytea[], \(appends.2)::bytea[], \
        \(upserts.0)::text[], \(upserts.1)::bytea[], \(upserts.2)::bytea[], \
        \(extensions.0)::text[], \(extensions.1)::bytea[], \(extensions.2)::bytea[])
        """
    }
}
