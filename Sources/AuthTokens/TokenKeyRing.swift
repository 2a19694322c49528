import AuthCore
import Crypto
import Foundation
import JWTKit
import LedgerCore
import _CryptoExtras

/// A JWT signing algorithm this server uses.
public enum TokenAlgorithm: String, Codable, Sendable, CaseIterable {
    case rs256 = "RS256"
    case edDSA = "EdDSA"
}

/// One token signing key: its `kid` (the RFC 7638 JWK thumbprint), algorithm and public JWK.
public struct TokenSigningKey: Sendable {
    public let kid: String
    public let algorithm: TokenAlgorithm
    /// The public JWK members, as published in JWKS.
    public let publicJWK: [String: String]
    /// When a rotation replaced it; `nil` while it signs.
    public let retiredAt: LedgerTimestamp?
}

/// The token signing keys, kept in a key file beside the journal with mode 0600 (`<journal>.tokenkeys`),
/// generated on first use: one active RS256 and one active EdDSA key, plus retired keys that stay in the
/// JWKS until every token they signed has expired.
///
/// The private keys are PEM (RSA) and base64url (Ed25519) in a small JSON document; jwt-kit signs and
/// verifies with them.
public final class TokenKeyRing: Sendable {
    public let keys: [TokenSigningKey]
    public let path: String
    let collection: JWTKeyCollection

    private struct StoredKey: Codable {
        var kid: String
        var alg: TokenAlgorithm
        var key: String
        var retiredAt: LedgerTimestamp?

        enum CodingKeys: String, CodingKey {
            case kid, alg, key
            case retiredAt = "retired_at"
        }
    }

    private struct StoredFile: Codable {
        var format = "AuthLedger token keys v1"
        var keys: [StoredKey]
    }

    private init(keys: [TokenSigningKey], collection: JWTKeyCollection, path: String) {
        self.keys = keys
        self.collection = collection
        self.path = path
    }

    /// Loads the key file at `path`, creating it with fresh keys when it does not exist.
    public static func loadOrCreate(path: String) async throws -> TokenKeyRing {
        if let bytes = try readKeyFile(path) {
            let stored = try JSONDecoder().decode(StoredFile.self, from: Data(bytes))
            return try await make(stored.keys, path: path)
        }
        let stored = try freshKeys()
        try write(StoredFile(keys: stored), to: path, replacing: false)
        return try await make(stored, path: path)
    }

    /// Replaces the active keys with new ones. The old ones are marked retired at `now` and stay published
    /// for `retention` seconds (the longest lifetime of a token they may have signed); keys retired longer
    /// ago are dropped. The file is replaced atomically. Returns the ring with the new keys.
    public func rotated(now: LedgerTimestamp, retentionSeconds: Int) async throws -> TokenKeyRing {
        guard let bytes = try Self.readKeyFile(path) else { throw TokenKeyError.unreadable(path, reason: "does not exist") }
        var stored = try JSONDecoder().decode(StoredFile.self, from: Data(bytes)).keys
        stored = stored.compactMap { key in
            var key = key
            if key.retiredAt == nil { key.retiredAt = now }
            return key.retiredAt!.adding(seconds: retentionSeconds) > now ? key : nil
        }
        stored = try Self.freshKeys() + stored
        try Self.write(StoredFile(keys: stored), to: path, replacing: true)
        return try await Self.make(stored, path: path)
    }

    /// The key file's bytes (see LedgerCore's `PrivateKeyFile`), or `nil` when there is none.
    private static func readKeyFile(_ path: String) throws(TokenKeyError) -> [UInt8]? {
        do {
            return try PrivateKeyFile.read(path)
        } catch .missing {
            return nil
        } catch .exposed(let mode) {
            throw .notPrivate(path, mode: mode_t(mode))
        } catch {
            throw .unreadable(path, reason: "\(error)")
        }
    }

    private static func freshKeys() throws -> [StoredKey] {
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let ed = Curve25519.Signing.PrivateKey()
        let rsaJWK = try rsaPublicJWK(rsa)
        let edJWK = edPublicJWK(ed)
        return [
            StoredKey(kid: thumbprint(rsaJWK, members: ["e", "kty", "n"]), alg: .rs256, key: rsa.pemRepresentation),
            StoredKey(kid: thumbprint(edJWK, members: ["crv", "kty", "x"]), alg: .edDSA, key: Base64URL.encode(Array(ed.rawRepresentation))),
        ]
    }

    /// Writes the file with mode 0600, durably; when `replacing`, through a temporary file and a rename.
    private static func write(_ file: StoredFile, to path: String, replacing: Bool) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes = try encoder.encode(file)
        let target = replacing ? path + ".new" : path
        if replacing { unlink(target) }
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw TokenKeyError.cannotWrite(target) }
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced else { throw TokenKeyError.cannotWrite(target) }
        if replacing {
            guard rename(target, path) == 0 else { throw TokenKeyError.cannotWrite(path) }
        }
    }

    private static func rsaPublicJWK(_ key: _RSA.Signing.PrivateKey) throws -> [String: String] {
        let primitives = try key.publicKey.getKeyPrimitives()
        return ["kty": "RSA", "n": Base64URL.encode(Array(primitives.modulus)), "e": Base64URL.encode(Array(primitives.publicExponent))]
    }

    private static func edPublicJWK(_ key: Curve25519.Signing.PrivateKey) -> [String: String] {
        ["kty": "OKP", "crv": "Ed25519", "x": Base64URL.encode(Array(key.publicKey.rawRepresentation))]
    }

    private static func make(_ stored: [StoredKey], path: String) async throws -> TokenKeyRing {
        let collection = JWTKeyCollection()
        var keys: [TokenSigningKey] = []
        for entry in stored {
            let jwk: [String: String]
            switch entry.alg {
            case .rs256:
                let backing = try _RSA.Signing.PrivateKey(pemRepresentation: entry.key)
                jwk = try rsaPublicJWK(backing)
                await collection.add(rsa: try Insecure.RSA.PrivateKey(backing: backing), digestAlgorithm: .sha256, kid: JWKIdentifier(string: entry.kid))
            case .edDSA:
                guard let raw = Base64URL.decode(entry.key) else { throw TokenKeyError.malformed }
                let backing = try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
                jwk = edPublicJWK(backing)
                await collection.add(eddsa: EdDSA.PrivateKey(backing: backing), kid: JWKIdentifier(string: entry.kid))
            }
            let members = entry.alg == .rs256 ? ["e", "kty", "n"] : ["crv", "kty", "x"]
            guard thumbprint(jwk, members: members) == entry.kid else { throw TokenKeyError.malformed }
            keys.append(
                TokenSigningKey(
                    kid: entry.kid, algorithm: entry.alg,
                    publicJWK: jwk.merging(["alg": entry.alg.rawValue, "use": "sig", "kid": entry.kid]) { $1 }, retiredAt: entry.retiredAt))
        }
        return TokenKeyRing(keys: keys, collection: collection, path: path)
    }

    /// The RFC 7638 thumbprint of one of our own public keys (see ``JWKThumbprint``).
    static func thumbprint(_ jwk: [String: String], members: [String]) -> String {
        (try? JWKThumbprint.make(jwk, members: members)) ?? ""
    }

    /// The active key for `algorithm`.
    public func key(for algorithm: TokenAlgorithm) -> TokenSigningKey {
        keys.first { $0.algorithm == algorithm && $0.retiredAt == nil }!
    }

    /// The JWKS document: public keys only, active and retired ones whose tokens may still be valid.
    public var jwks: [[String: String]] { keys.map(\.publicJWK) }

    /// Signs `payload` with the active key for `algorithm`, with header `typ`.
    public func sign(_ payload: some JWTPayload, algorithm: TokenAlgorithm, type: String) async throws -> String {
        var header = JWTHeader()
        header.typ = type
        header.alg = algorithm.rawValue
        return try await collection.sign(payload, kid: JWKIdentifier(string: key(for: algorithm).kid), header: header)
    }

    /// Verifies a token signed by one of these keys, active or retired (for tests and `/userinfo`).
    public func verify<Payload: JWTPayload>(_ token: String, as type: Payload.Type) async throws -> Payload {
        guard Self.isCanonical(token) else { throw TokenKeyError.nonCanonical }
        return try await collection.verify(token, as: type)
    }

    /// Whether `token` is a JWS in its one canonical spelling: three base64url segments without padding,
    /// each exactly the encoding of the bytes it decodes to.
    ///
    /// JWTKit's decoder also accepts `=` padding and non-zero spare bits in a segment's last character,
    /// so one token would have several spellings — and anything keyed by the token's text (a cache, a
    /// deny list, a log search) would miss all but one.
    static func isCanonical(_ token: String) -> Bool {
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        return segments.count == 3
            && segments.allSatisfy { segment in
                guard let bytes = Base64URL.decode(String(segment)) else { return false }
                return Base64URL.encode(bytes).utf8.elementsEqual(segment.utf8)
            }
    }
}

public enum TokenKeyError: Error, CustomStringConvertible {
    case cannotWrite(String)
    case malformed
    /// The file is open to group or others; signing keys must be mode 0600.
    case notPrivate(String, mode: mode_t)
    /// A token that is not in its canonical spelling (padding, or spare bits set).
    case nonCanonical
    /// The key file could not be read, or is not a regular file of this user.
    case unreadable(String, reason: String)
    /// A token signed with a key that is neither this node's nor one a node of its cluster published.
    case unknownKey(String)

    public var description: String {
        switch self {
        case .cannotWrite(let path): "token key file \(path) cannot be written"
        case .malformed: "token key file is malformed (a key does not match its kid)"
        case .nonCanonical: "the token is not a canonical JWS (base64url without padding or spare bits)"
        case .unreadable(let path, let reason): "token key file \(path) \(reason)"
        case .unknownKey(let kid): "the token is signed with an unknown key (kid \(kid))"
        case .notPrivate(let path, let mode):
            "token key file \(path) is open to group or others (mode \(String(mode, radix: 8))); it must be mode 0600: chmod 600 '\(path)'"
        }
    }
}
