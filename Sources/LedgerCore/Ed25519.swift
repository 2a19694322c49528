import CSodium

/// An Ed25519 public key (32 bytes), as used to verify events and checkpoints.
public struct Ed25519PublicKey: Hashable, Sendable {
    /// The key's 32 bytes.
    public let bytes: [UInt8]

    /// Wraps 32 bytes; `nil` for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Int(crypto_sign_PUBLICKEYBYTES) else { return nil }
        self.bytes = bytes
    }

    /// The key's identifier inside the journal: see ``KeyID``.
    public var keyID: KeyID { KeyID(publicKey: self) }

    /// Whether `signature` is a valid Ed25519 signature by this key over `message`.
    public func isValidSignature(_ signature: [UInt8], for message: some ContiguousBytes) -> Bool {
        _ = Sodium.ready
        guard signature.count == Int(crypto_sign_BYTES) else { return false }
        return message.withUnsafeBytes { input in
            crypto_sign_verify_detached(
                signature, input.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(input.count), bytes) == 0
        }
    }
}

/// A journal signing key identifier: the first 8 bytes of
/// `SHA-256("AuthLedger/key/v1\n" || public key)`, written as 16 hex digits.
///
/// It is derived from the public key alone, so anyone holding the key can recompute it.
public struct KeyID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The 8 identifier bytes.
    public let bytes: [UInt8]

    static let domain = Array("AuthLedger/key/v1\n".utf8)

    /// The identifier of `publicKey`.
    public init(publicKey: Ed25519PublicKey) {
        bytes = Array(SHA256Digest.hash(parts: [KeyID.domain, publicKey.bytes]).bytes.prefix(8))
    }

    /// Wraps 8 bytes; `nil` for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 8 else { return nil }
        self.bytes = bytes
    }

    /// Parses 16 hex digits.
    public init?(hex: String) {
        guard let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes: bytes)
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    public static func < (lhs: KeyID, rhs: KeyID) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}

/// An Ed25519 signing key: the 32-byte seed and the key pair libsodium derives from it.
///
/// The seed is the only secret that needs storing; LedgerLMDB's `JournalKeyFile` keeps it on disk with
/// mode 0600.
public struct Ed25519SigningKey: Sendable {
    /// The 32-byte seed. Secret.
    public let seed: [UInt8]
    /// The public half.
    public let publicKey: Ed25519PublicKey
    private let secretKey: [UInt8]

    /// A fresh key from libsodium's CSPRNG.
    public static func generate() -> Ed25519SigningKey {
        _ = Sodium.ready
        var seed = [UInt8](repeating: 0, count: Int(crypto_sign_SEEDBYTES))
        randombytes_buf(&seed, seed.count)
        return Ed25519SigningKey(seed: seed)!
    }

    /// The key derived from a 32-byte seed; `nil` for any other length.
    public init?(seed: [UInt8]) {
        _ = Sodium.ready
        guard seed.count == Int(crypto_sign_SEEDBYTES) else { return nil }
        var publicBytes = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var secretBytes = [UInt8](repeating: 0, count: Int(crypto_sign_SECRETKEYBYTES))
        guard crypto_sign_seed_keypair(&publicBytes, &secretBytes, seed) == 0 else { return nil }
        self.seed = seed
        self.secretKey = secretBytes
        self.publicKey = Ed25519PublicKey(bytes: publicBytes)!
    }

    /// The key's identifier.
    public var keyID: KeyID { publicKey.keyID }

    /// A detached 64-byte Ed25519 signature over `message` (libsodium `crypto_sign_detached`).
    public func signature(for message: some ContiguousBytes) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: Int(crypto_sign_BYTES))
        message.withUnsafeBytes { input in
            _ = crypto_sign_detached(
                &signature, nil, input.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(input.count),
                secretKey)
        }
        return signature
    }
}
