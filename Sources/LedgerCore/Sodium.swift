import CSodium

/// One-time libsodium initialisation, shared by every type that calls into libsodium.
///
/// `sodium_init()` is idempotent and thread-safe; reading ``Sodium/ready`` makes sure it has run.
enum Sodium {
    static let ready: Void = {
        guard sodium_init() >= 0 else {
            fatalError("libsodium failed to initialise (sodium_init returned an error)")
        }
    }()
}

/// Cryptographically secure random bytes from libsodium.
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        _ = Sodium.ready
        var bytes = [UInt8](repeating: 0, count: count)
        randombytes_buf(&bytes, count)
        return bytes
    }
}
