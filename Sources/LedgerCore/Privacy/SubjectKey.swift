import CSodium

/// The key of one data subject: everything personal about a person (or, for what belongs to no known
/// person, about one day's anonymous requests) is sealed under it, so that destroying it erases all of it
/// at once while the signed ciphertext — and so every signature, the hash chain and the Merkle tree —
/// stays intact (crypto-shredding).
///
/// Each key has a random 8-byte id, recorded with everything it seals: a value sealed under a key that was
/// destroyed is told apart from a tampered one, also after a new key was made for the same subject.
public struct SubjectKey: Sendable, Equatable {
    /// The key's id (random, 8 bytes).
    public let id: [UInt8]
    let bytes: [UInt8]

    /// The key length (XChaCha20-Poly1305).
    public static let length = Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES)
    static let idLength = 8

    /// A key from its id and bytes, or `nil` if their lengths are wrong.
    public init?(id: [UInt8], bytes: [UInt8]) {
        guard id.count == Self.idLength, bytes.count == Self.length else { return nil }
        self.id = id
        self.bytes = bytes
    }

    /// A new random key.
    public static func generate() -> SubjectKey {
        SubjectKey(id: SecureRandom.bytes(idLength), bytes: SecureRandom.bytes(length))!
    }

    /// `plaintext` sealed for `subject`: XChaCha20-Poly1305 (libsodium, IETF variant) under a random
    /// 24-byte nonce, with ``SealedValue/associatedData(subject:keyID:context:)`` as associated data, so
    /// that the ciphertext opens only for this subject, key and context (an event type and field name).
    public func seal(_ plaintext: [UInt8], subject: String, context: String) -> SealedValue {
        _ = Sodium.ready
        let nonce = SecureRandom.bytes(Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES))
        let associated = SealedValue.associatedData(subject: subject, keyID: id, context: context)
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + Int(crypto_aead_xchacha20poly1305_ietf_ABYTES))
        var length: UInt64 = 0
        let status = crypto_aead_xchacha20poly1305_ietf_encrypt(
            &ciphertext, &length, plaintext, UInt64(plaintext.count), associated, UInt64(associated.count), nil, nonce, bytes)
        precondition(status == 0, "crypto_aead_xchacha20poly1305_ietf_encrypt failed")
        return SealedValue(subject: subject, keyID: id, nonce: nonce, ciphertext: Array(ciphertext.prefix(Int(length))))
    }

    /// A keyed pseudonym of `value` under this subject's key: `hmac-sha256:` and the hex of HMAC-SHA-256,
    /// keyed with the key's `crypto_kdf` subkey 1 (context `AuthSubj`), over `domain` LF `value`. It can be
    /// found again only while the key exists: once the subject is erased, no guess can be tested against it.
    public func pseudonym(_ value: String, domain: String) -> String {
        KeyDerivation.pseudonym(value, domain: domain, key: KeyDerivation.subkey(of: bytes, id: 1, context: "AuthSubj"))
    }

    /// Opens `sealed` (sealed under this key for `context`).
    /// - Throws: ``SealedValue/OpenError/otherKey`` when it was sealed under another key of the subject (a
    ///   destroyed one); ``SealedValue/OpenError/forged`` when it does not authenticate (altered, or moved to
    ///   another subject, field or event type).
    public func open(_ sealed: SealedValue, context: String) throws(SealedValue.OpenError) -> [UInt8] {
        guard sealed.keyID == id else { throw .otherKey }
        _ = Sodium.ready
        guard sealed.nonce.count == Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES),
            sealed.ciphertext.count >= Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)
        else { throw .forged }
        let associated = SealedValue.associatedData(subject: sealed.subject, keyID: id, context: context)
        var plaintext = [UInt8](repeating: 0, count: sealed.ciphertext.count)
        var length: UInt64 = 0
        let status = crypto_aead_xchacha20poly1305_ietf_decrypt(
            &plaintext, &length, nil, sealed.ciphertext, UInt64(sealed.ciphertext.count), associated, UInt64(associated.count),
            sealed.nonce, bytes)
        guard status == 0 else { throw .forged }
        return Array(plaintext.prefix(Int(length)))
    }
}

/// A personal value sealed under its subject's key (``SubjectKey/seal(_:subject:context:)``): what a journal
/// keeps instead of the value. In JSON: `{"ct":"<base64>","key":"<16 hex>","nonce":"<base64>","sealed":1,"subject":"<id>"}`.
public struct SealedValue: Codable, Sendable, Hashable {
    /// Whose value it is: the subject whose key sealed it.
    public var subject: String
    /// The id of the subject key that sealed it.
    public var keyID: [UInt8]
    public var nonce: [UInt8]
    /// Ciphertext and Poly1305 tag.
    public var ciphertext: [UInt8]

    public init(subject: String, keyID: [UInt8], nonce: [UInt8], ciphertext: [UInt8]) {
        self.subject = subject
        self.keyID = keyID
        self.nonce = nonce
        self.ciphertext = ciphertext
    }

    /// Why a sealed value did not open.
    public enum OpenError: Error, Sendable, Equatable {
        /// Sealed under another key of the subject (a destroyed one: the value is erased).
        case otherKey
        /// It does not authenticate under the key: altered, or moved to another subject or context.
        case forged
    }

    /// `AuthLedger/sealed/v1` LF subject LF key id (hex) LF context: what the AEAD authenticates besides
    /// the ciphertext.
    public static func associatedData(subject: String, keyID: [UInt8], context: String) -> [UInt8] {
        Array("AuthLedger/sealed/v1\n\(subject)\n\(Hex.encode(keyID))\n\(context)".utf8)
    }

    enum CodingKeys: String, CodingKey {
        case sealed, subject, keyID = "key", nonce, ciphertext = "ct"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard try container.decode(Int.self, forKey: .sealed) == 1 else {
            throw DecodingError.dataCorruptedError(forKey: .sealed, in: container, debugDescription: "unknown sealed-value version")
        }
        subject = try container.decode(String.self, forKey: .subject)
        guard let keyID = Hex.decode(try container.decode(String.self, forKey: .keyID)), keyID.count == SubjectKey.idLength,
            let nonce = Base64.decode(try container.decode(String.self, forKey: .nonce)),
            let ciphertext = Base64.decode(try container.decode(String.self, forKey: .ciphertext))
        else {
            throw DecodingError.dataCorruptedError(forKey: .ciphertext, in: container, debugDescription: "malformed sealed value")
        }
        self.keyID = keyID
        self.nonce = nonce
        self.ciphertext = ciphertext
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(1, forKey: .sealed)
        try container.encode(subject, forKey: .subject)
        try container.encode(Hex.encode(keyID), forKey: .keyID)
        try container.encode(Base64.encode(nonce), forKey: .nonce)
        try container.encode(Base64.encode(ciphertext), forKey: .ciphertext)
    }
}
