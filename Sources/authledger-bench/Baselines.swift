import CLMDB
import CSodium
import Foundation

/// Raw rates measured in the same run as the journal, so that results are ratios on this machine.
///
/// These call libsodium and LMDB directly, not through the journal, because they are the baselines.
enum Baselines {
    /// Operations per second on `threads` threads for `seconds`: each thread makes its own operation
    /// with `makeOperation(thread)`, then runs it in batches of `batch` (so the clock is read rarely)
    /// until the time is up. A throwing operation fails the measurement.
    static func rate(
        threads: Int, seconds: Double, batch: Int, _ makeOperation: @Sendable (Int) -> () throws -> Void
    ) throws -> Double {
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: threads)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        let failures = UnsafeMutableBufferPointer<Int>.allocate(capacity: threads)
        failures.initialize(repeating: 0)
        defer { failures.deallocate() }
        // Each thread writes only its own slot, and they are read after concurrentPerform returns.
        nonisolated(unsafe) let (shared, failed) = (counts, failures)
        let start = Date()
        let deadline = start.addingTimeInterval(seconds)
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            let operation = makeOperation(thread)
            var done = 0
            while Date() < deadline {
                for _ in 0..<batch {
                    do { try operation() } catch { failed[thread] += 1 }
                }
                done += batch
            }
            shared[thread] = done
        }
        let elapsed = Date().timeIntervalSince(start)
        guard failures.reduce(0, +) == 0 else { throw BenchError("a baseline operation failed") }
        return Double(counts.reduce(0, +)) / elapsed
    }

    /// Ed25519 signatures per second over a `messageSize`-byte message, on `threads` threads.
    static func signingRate(threads: Int, seconds: Double, messageSize: Int = 256) throws -> Double {
        _ = sodium_init()
        var publicKey = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var secretKey = [UInt8](repeating: 0, count: Int(crypto_sign_SECRETKEYBYTES))
        crypto_sign_keypair(&publicKey, &secretKey)
        let key = secretKey
        return try rate(threads: threads, seconds: seconds, batch: 64) { thread in
            var message = [UInt8](repeating: UInt8(truncatingIfNeeded: thread), count: messageSize)
            var signature = [UInt8](repeating: 0, count: Int(crypto_sign_BYTES))
            return {
                message[0] &+= 1
                crypto_sign_detached(&signature, nil, message, UInt64(message.count), key)
            }
        }
    }

    /// LMDB commits per second when every event is its own write transaction (one fsync per event).
    static func oneFsyncPerEventRate(directory: String, seconds: Double, valueSize: Int = 400) throws -> Double {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var env: OpaquePointer?
        guard mdb_env_create(&env) == 0, mdb_env_set_mapsize(env, 1 << 30) == 0,
            mdb_env_open(env, directory, 0, 0o600) == 0
        else { throw BenchError("cannot open baseline LMDB environment at \(directory)") }
        defer { mdb_env_close(env) }
        let value = [UInt8](repeating: 0x5a, count: valueSize)
        var committed: UInt64 = 0
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            var txn: OpaquePointer?
            guard mdb_txn_begin(env, nil, 0, &txn) == 0 else { throw BenchError("mdb_txn_begin failed") }
            var dbi: MDB_dbi = 0
            mdb_dbi_open(txn, nil, 0, &dbi)
            var keyBytes = (committed + 1).bigEndian
            let status = withUnsafeMutableBytes(of: &keyBytes) { keyBuffer in
                value.withUnsafeBufferPointer { valueBuffer in
                    var key = MDB_val(mv_size: 8, mv_data: keyBuffer.baseAddress)
                    var data = MDB_val(mv_size: valueBuffer.count, mv_data: UnsafeMutableRawPointer(mutating: valueBuffer.baseAddress))
                    return mdb_put(txn, dbi, &key, &data, 0)
                }
            }
            guard status == 0, mdb_txn_commit(txn) == 0 else { throw BenchError("baseline commit failed") }
            committed += 1
        }
        return Double(committed) / Date().timeIntervalSince(start)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
