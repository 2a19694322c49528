import Foundation
import CSodium
import LedgerCore

/// Hashes and checks passwords and client secrets with Argon2id (libsodium `crypto_pwhash_str`).
///
/// The hash string carries its own salt and parameters (`$argon2id$v=19$m=...`), so it is all that
/// is stored; verification runs in constant time with respect to the secret.
public protocol SecretHasher: Sendable {
    func hash(_ secret: String) -> String
    func verify(_ secret: String, against hash: String) -> Bool
}

/// Argon2id with libsodium's "interactive" limits by default; tests may use the minimum.
public struct Argon2idHasher: SecretHasher {
    public let opsLimit: UInt64
    public let memLimit: Int

    /// libsodium's interactive limits (2 passes, 64 MiB).
    public static let interactive = Argon2idHasher(
        opsLimit: UInt64(crypto_pwhash_OPSLIMIT_INTERACTIVE), memLimit: Int(crypto_pwhash_MEMLIMIT_INTERACTIVE))
    /// The smallest limits libsodium accepts: for tests only.
    public static let minimal = Argon2idHasher(opsLimit: UInt64(crypto_pwhash_OPSLIMIT_MIN), memLimit: Int(crypto_pwhash_MEMLIMIT_MIN))

    public init(opsLimit: UInt64, memLimit: Int) {
        self.opsLimit = opsLimit
        self.memLimit = memLimit
    }

    public func hash(_ secret: String) -> String {
        _ = sodium_init()
        var out = [CChar](repeating: 0, count: Int(crypto_pwhash_STRBYTES))
        let bytes = Array(secret.utf8CString.dropLast())
        let status = crypto_pwhash_str_alg(
            &out, bytes, UInt64(bytes.count), opsLimit, memLimit, crypto_pwhash_ALG_ARGON2ID13)
        precondition(status == 0, "Argon2id hashing failed (out of memory)")
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func verify(_ secret: String, against hash: String) -> Bool {
        _ = sodium_init()
        guard hash.hasPrefix("$argon2id$") else { return false }
        let bytes = Array(secret.utf8CString.dropLast())
        return hash.withCString { crypto_pwhash_str_verify($0, bytes, UInt64(bytes.count)) == 0 }
    }
}

/// Constant-time comparison of two byte strings (libsodium `sodium_memcmp` for equal lengths).
public func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    return sodium_memcmp(lhs, rhs, lhs.count) == 0
}

/// Identifiers of things the server signs (a JWT's `jti`): 128 random bits, base64url without padding
/// (22 characters).
///
/// An identifier is not a secret — it is in the signed token for anyone holding the token to read — so it
/// needs only to be unique, and 128 random bits are (as a version 4 UUID's 122 are, which Keycloak and
/// Hydra use). The journal records every one, and the code's and the token's projection entries hold it,
/// so half of a secret's 256 bits is half the bytes in each. Tokens issued before carry 256-bit ids, and
/// are read as they are.
public enum TokenIdentifier {
    public static func generate() -> String {
        Base64URL.encode(SecureRandom.bytes(16))
    }
}

/// Secrets that are handed out once and kept only as hashes: authorization codes, session ids,
/// interaction ids, CSRF tokens. 256 random bits, base64url without padding.
public enum OpaqueToken {
    public static func generate() -> String {
        Base64URL.encode(SecureRandom.bytes(32))
    }

    /// The stored form: hex SHA-256 of the token's text.
    public static func hash(_ token: String) -> String {
        SHA256Digest.hash(Array(token.utf8)).hex
    }
}

/// base64url without padding (RFC 4648 §5), as used in URLs, cookies and JOSE.
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        Base64.encode(bytes, variant: .urlSafeUnpadded)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        Base64.decode(text, variant: .urlSafeUnpadded)
    }
}
