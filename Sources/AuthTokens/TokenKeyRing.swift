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
    let privateMaterial: String
}

/// The token signing keys (one RS256 and one EdDSA), kept in a key file beside the journal with mode 0600
/// (`<journal>.tokenkeys`), generated on first use, and published as JWKS.
///
/// The private keys are PEM (RSA) and base64url (Ed25519) in a small JSON document; jwt-kit signs with them.
public final class TokenKeyRing: Sendable {
    public let keys: [TokenSigningKey]
    let collection: JWTKeyCollection

    private struct StoredKey: Codable {
        var kid: String
        var alg: TokenAlgorithm
        var key: String
    }

    private struct StoredFile: Codable {
        var format = "AuthLedger token keys v1"
        var keys: [StoredKey]
    }

    private init(keys: [TokenSigningKey], collection: JWTKeyCollection) {
        self.keys = keys
        self.collection = collection
    }

    /// Loads the key file at `path`, creating it with fresh keys when it does not exist.
    public static func loadOrCreate(path: String) async throws -> TokenKeyRing {
        if let data = FileManager.default.contents(atPath: path) {
            let stored = try JSONDecoder().decode(StoredFile.self, from: data)
            return try await make(stored.keys)
        }
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let ed = Curve25519.Signing.PrivateKey()
        let keys = [
            StoredKey(kid: "", alg: .rs256, key: rsa.pemRepresentation),
            StoredKey(kid: "", alg: .edDSA, key: Base64URL.encode(Array(ed.rawRepresentation))),
        ]
        let ring = try await make(keys)
        let file = StoredFile(keys: zip(keys, ring.keys).map { StoredKey(kid: $1.kid, alg: $0.alg, key: $0.key) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes = try encoder.encode(file)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw TokenKeyError.cannotWrite(path) }
        defer { close(fd) }
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count, fsync(fd) == 0 else {
            throw TokenKeyError.cannotWrite(path)
        }
        return ring
    }

    private static func make(_ stored: [StoredKey]) async throws -> TokenKeyRing {
        let collection = JWTKeyCollection()
        var keys: [TokenSigningKey] = []
        for entry in stored {
            switch entry.alg {
            case .rs256:
                let backing = try _RSA.Signing.PrivateKey(pemRepresentation: entry.key)
                let primitives = try backing.publicKey.getKeyPrimitives()
                let jwk = [
                    "kty": "RSA", "n": Base64URL.encode(Array(primitives.modulus)),
                    "e": Base64URL.encode(Array(primitives.publicExponent)),
                ]
                let kid = thumbprint(jwk, members: ["e", "kty", "n"])
                await collection.add(rsa: try Insecure.RSA.PrivateKey(backing: backing), digestAlgorithm: .sha256, kid: JWKIdentifier(string: kid))
                keys.append(TokenSigningKey(kid: kid, algorithm: .rs256, publicJWK: jwk.merging(["alg": "RS256", "use": "sig", "kid": kid]) { $1 }, privateMaterial: entry.key))
            case .edDSA:
                guard let raw = Base64URL.decode(entry.key) else { throw TokenKeyError.malformed }
                let backing = try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
                let jwk = ["kty": "OKP", "crv": "Ed25519", "x": Base64URL.encode(Array(backing.publicKey.rawRepresentation))]
                let kid = thumbprint(jwk, members: ["crv", "kty", "x"])
                await collection.add(eddsa: EdDSA.PrivateKey(backing: backing), kid: JWKIdentifier(string: kid))
                keys.append(TokenSigningKey(kid: kid, algorithm: .edDSA, publicJWK: jwk.merging(["alg": "EdDSA", "use": "sig", "kid": kid]) { $1 }, privateMaterial: entry.key))
            }
        }
        return TokenKeyRing(keys: keys, collection: collection)
    }

    /// The RFC 7638 thumbprint of one of our own public keys (see ``JWKThumbprint``).
    static func thumbprint(_ jwk: [String: String], members: [String]) -> String {
        (try? JWKThumbprint.make(jwk, members: members)) ?? ""
    }

    /// The key used for `algorithm`.
    public func key(for algorithm: TokenAlgorithm) -> TokenSigningKey {
        keys.first { $0.algorithm == algorithm }!
    }

    /// The JWKS document (public keys only).
    public var jwks: [[String: String]] { keys.map(\.publicJWK) }

    /// Signs `payload` with the key for `algorithm`, with header `typ`.
    public func sign(_ payload: some JWTPayload, algorithm: TokenAlgorithm, type: String) async throws -> String {
        var header = JWTHeader()
        header.typ = type
        header.alg = algorithm.rawValue
        let key = key(for: algorithm)
        return try await collection.sign(payload, kid: JWKIdentifier(string: key.kid), header: header)
    }

    /// Verifies a token signed by one of these keys (for tests and `/userinfo`).
    public func verify<Payload: JWTPayload>(_ token: String, as type: Payload.Type) async throws -> Payload {
        try await collection.verify(token, as: type)
    }
}

public enum TokenKeyError: Error, CustomStringConvertible {
    case cannotWrite(String)
    case malformed

    public var description: String {
        switch self {
        case .cannotWrite(let path): "token key file \(path) cannot be written"
        case .malformed: "token key file is malformed"
        }
    }
}
