import CSodium

/// The journal's data key: a 32-byte secret kept beside the signing key (`<journal>.datakey`, mode 0600),
/// never in the journal, so that a copy of the journal — an export, a backup of the store, an auditor's
/// copy — holds nothing it can undo.
///
/// Today it keys the pseudonyms of values that are recorded only to be compared or counted: a login
/// name typed for no known account (often a password typed in the wrong field) is kept as
/// `hmac-sha256:<hex>`, not as an unsalted hash that a word list reverses in seconds. Each use has a
/// subkey of its own, derived with libsodium's `crypto_kdf` (BLAKE2b), so later uses (wrapping the keys of
/// data subjects) never share key material with this one.
public struct DataKey: Sendable, Equatable {
    /// The key's length in bytes.
    public static let length = 32

    let bytes: [UInt8]

    /// A key from its bytes, or `nil` if they are not ``length`` long.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.length else { return nil }
        self.bytes = bytes
    }

    /// A new random key.
    public static func generate() -> DataKey {
        DataKey(bytes: SecureRandom.bytes(length))!
    }

    /// The key's bytes, for its file.
    public var rawBytes: [UInt8] { bytes }

    /// What a subkey is for: its `crypto_kdf` subkey id. Never reuse an id for another purpose.
    public enum Purpose: UInt64, Sendable {
        /// Pseudonyms of values kept only to be compared or counted.
        case pseudonyms = 1
        /// Wrapping the keys of data subjects (``SubjectKey``) where the journal's store keeps them.
        case subjectKeys = 2
    }

    /// The subkey for `purpose` (`crypto_kdf_derive_from_key`, context `AuthLdgr`).
    func subkey(_ purpose: Purpose) -> [UInt8] {
        KeyDerivation.subkey(of: bytes, id: purpose.rawValue, context: "AuthLdgr")
    }

    /// A keyed pseudonym of `value`: `hmac-sha256:` and the hex of HMAC-SHA-256 under the pseudonym subkey
    /// over `domain`, a newline and `value`. Equal values in one domain give equal pseudonyms, so they can
    /// still be counted and compared; without the key, no guess can be checked against one.
    public func pseudonym(_ value: String, domain: String) -> String {
        KeyDerivation.pseudonym(value, domain: domain, key: subkey(.pseudonyms))
    }

    /// How a keyed pseudonym starts.
    public static let pseudonymPrefix = "hmac-sha256:"

    /// `key` wrapped for storage: a 24-byte nonce, then XChaCha20-Poly1305 under the subject-key subkey of
    /// the key's id and bytes, authenticated with `AuthLedger/subject-key/v1` LF `subject` — so a wrapped
    /// key cannot be moved to another subject, and without the data key (never in the journal) a copy of
    /// the store opens nothing.
    public func wrap(_ key: SubjectKey, subject: String) -> [UInt8] {
        _ = Sodium.ready
        let nonce = SecureRandom.bytes(Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES))
        let plaintext = key.id + key.bytes
        let associated = Self.wrapContext(subject)
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + Int(crypto_aead_xchacha20poly1305_ietf_ABYTES))
        var length: UInt64 = 0
        let status = crypto_aead_xchacha20poly1305_ietf_encrypt(
            &ciphertext, &length, plaintext, UInt64(plaintext.count), associated, UInt64(associated.count), nil, nonce, subkey(.subjectKeys))
        precondition(status == 0, "crypto_aead_xchacha20poly1305_ietf_encrypt failed")
        return nonce + ciphertext.prefix(Int(length))
    }

    /// The subject key `wrapped` holds, or `nil` when it does not open for `subject` under this data key
    /// (another journal's data key, another subject's entry, or altered).
    public func unwrap(_ wrapped: [UInt8], subject: String) -> SubjectKey? {
        _ = Sodium.ready
        let nonceLength = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
        guard wrapped.count == nonceLength + SubjectKey.idLength + SubjectKey.length + Int(crypto_aead_xchacha20poly1305_ietf_ABYTES) else {
            return nil
        }
        let nonce = Array(wrapped.prefix(nonceLength))
        let ciphertext = Array(wrapped.dropFirst(nonceLength))
        let associated = Self.wrapContext(subject)
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count)
        var length: UInt64 = 0
        let status = crypto_aead_xchacha20poly1305_ietf_decrypt(
            &plaintext, &length, nil, ciphertext, UInt64(ciphertext.count), associated, UInt64(associated.count), nonce, subkey(.subjectKeys))
        guard status == 0, Int(length) == SubjectKey.idLength + SubjectKey.length else { return nil }
        return SubjectKey(id: Array(plaintext.prefix(SubjectKey.idLength)), bytes: Array(plaintext[SubjectKey.idLength..<Int(length)]))
    }

    static func wrapContext(_ subject: String) -> [UInt8] {
        Array("AuthLedger/subject-key/v1\n\(subject)".utf8)
    }
}
