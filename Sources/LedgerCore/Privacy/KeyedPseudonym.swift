import CSodium

/// What ``DataKey`` and ``SubjectKey`` share: deriving a subkey for one purpose (libsodium's `crypto_kdf`,
/// BLAKE2b), and a keyed pseudonym under such a subkey.
enum KeyDerivation {
    /// The 32-byte subkey `id` of `master` in `context` (8 ASCII characters), `crypto_kdf_derive_from_key`.
    static func subkey(of master: [UInt8], id: UInt64, context: StaticString) -> [UInt8] {
        _ = Sodium.ready
        var subkey = [UInt8](repeating: 0, count: 32)
        let status = context.withUTF8Buffer { name in
            name.withMemoryRebound(to: CChar.self) { crypto_kdf_derive_from_key(&subkey, subkey.count, id, $0.baseAddress!, master) }
        }
        precondition(status == 0, "crypto_kdf_derive_from_key failed")
        return subkey
    }

    /// `hmac-sha256:` and the hex of HMAC-SHA-256 under `key` over `domain`, a newline and `value`.
    static func pseudonym(_ value: String, domain: String, key: [UInt8]) -> String {
        let message = Array(domain.utf8) + [0x0A] + Array(value.utf8)
        var mac = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        let status = crypto_auth_hmacsha256(&mac, message, UInt64(message.count), key)
        precondition(status == 0, "crypto_auth_hmacsha256 failed")
        return DataKey.pseudonymPrefix + Hex.encode(mac)
    }
}
