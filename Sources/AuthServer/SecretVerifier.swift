import AuthCore
import LedgerCore
import NIOConcurrencyHelpers
import NIOPosix
import Synchronization

/// Password and client-secret checks against their Argon2id hashes, off the request threads and bounded.
///
/// One Argon2id verification costs tens of milliseconds of a core and 64 MiB. Run on the event loops, a
/// burst of wrong passwords or client secrets would stall every other request with them; so they run on
/// NIO's blocking thread pool (one thread per core), and at most ``capacity`` may be running or waiting
/// at once. A check beyond that is refused at once with ``Overloaded`` — the caller answers 503 or
/// `temporarily_unavailable` — rather than queuing without bound.
///
/// Client secrets that verified are remembered (see ``VerifiedSecretCache``), so a client's every token
/// request does not pay for Argon2id, and these answers need no pool slot. Concurrent checks of the same
/// client secret share one Argon2id run: a client that opens many connections at once (after a restart,
/// with a cold cache) costs one slot, not one per connection.
final class SecretVerifier: Sendable {
    /// Too many checks are running or waiting.
    struct Overloaded: Error {}

    let hasher: any SecretHasher
    /// How many checks may be running or waiting at once.
    let capacity: Int
    private let pool: NIOThreadPool
    private let admitted = Mutex(0)
    private let verifiedClientSecrets = VerifiedSecretCache()
    /// Client-secret checks running now, by the digest of hash and secret (see ``VerifiedSecretCache``).
    ///
    /// A pthread mutex (NIO's lock), not `Synchronization.Mutex`: ThreadSanitizer does not see the futex
    /// behind the latter, and reported the insertion here and the check task's own removal as a race.
    private let clientSecretChecks = NIOLockedValueBox<[[UInt8]: Task<Bool, any Error>]>([:])

    init(hasher: any SecretHasher, capacity: Int, pool: NIOThreadPool = .singleton) {
        self.hasher = hasher
        self.capacity = max(1, capacity)
        self.pool = pool
    }

    /// Whether `secret` matches `hash`, checked on the pool.
    func verify(_ secret: String, against hash: String) async throws(Overloaded) -> Bool {
        let admittedNow = admitted.withLock { count in
            guard count < capacity else { return false }
            count += 1
            return true
        }
        guard admittedNow else { throw Overloaded() }
        defer { admitted.withLock { $0 -= 1 } }
        let hasher = self.hasher
        do {
            return try await pool.runIfActive { hasher.verify(secret, against: hash) }
        } catch {
            // The pool only fails when it has been shut down, which is the process ending.
            throw Overloaded()
        }
    }

    /// Like ``verify(_:against:)``, answered from the cache of secrets that verified before when it can,
    /// and sharing the run of an identical check already in progress.
    func verifyClientSecret(_ secret: String, against hash: String) async throws(Overloaded) -> Bool {
        if verifiedClientSecrets.contains(secret, for: hash) { return true }
        let key = VerifiedSecretCache.digest(secret, hash)
        let check = clientSecretChecks.withLockedValue { running in
            if let shared = running[key] { return shared }
            // Unstructured on purpose: the check belongs to every caller waiting for it, not to the first.
            let check = Task { [self] in
                defer { _ = clientSecretChecks.withLockedValue { $0.removeValue(forKey: key) } }
                let matches = try await verify(secret, against: hash)
                if matches { verifiedClientSecrets.remember(secret, for: hash) }
                return matches
            }
            running[key] = check
            return check
        }
        do {
            return try await check.value
        } catch {
            throw Overloaded()
        }
    }
}

/// Client secrets that passed Argon2id verification, remembered as SHA-256 digests for the stored hash they
/// matched.
///
/// Only successes are remembered; a changed secret hash (a new tenant file) misses the cache, and a wrong
/// secret always goes to Argon2id. Comparisons are constant-time.
final class VerifiedSecretCache: Sendable {
    private let entries = Mutex<[String: [UInt8]]>([:])
    private let limit = 10_000

    static func digest(_ secret: String, _ hash: String) -> [UInt8] {
        SHA256Digest.hash(Array(hash.utf8) + [0] + Array(secret.utf8)).bytes
    }

    func contains(_ secret: String, for hash: String) -> Bool {
        guard let known = entries.withLock({ $0[hash] }) else { return false }
        return constantTimeEquals(known, Self.digest(secret, hash))
    }

    func remember(_ secret: String, for hash: String) {
        let digest = Self.digest(secret, hash)
        entries.withLock { cache in
            if cache.count >= limit { cache.removeAll() }
            cache[hash] = digest
        }
    }
}
