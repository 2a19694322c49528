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
