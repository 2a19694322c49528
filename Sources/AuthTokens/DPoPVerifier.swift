import AuthCore
import Foundation
import JWTKit
import LedgerCore

/// Claims of a DPoP proof (RFC 9449 §4.2).
public struct DPoPClaims: JWTPayload, Equatable {
    public var jti: String
    public var htm: String
    public var htu: String
    public var iat: Int64
    public var ath: String?

    public init(jti: String, htm: String, htu: String, iat: Int64, ath: String? = nil) {
        self.jti = jti
        self.htm = htm
        self.htu = htu
        self.iat = iat
        self.ath = ath
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// A checked DPoP proof: the thumbprint of its key (what tokens are bound to) and its `jti` (which may
/// be used once).
public struct DPoPProof: Sendable, Equatable {
    public var thumbprint: String
    public var proofID: String
    /// The proof's `ath`: base64url SHA-256 of the access token it accompanies (resource requests).
    public var accessTokenHash: String?
}

/// Why a DPoP proof was refused (`invalid_dpop_proof`, RFC 9449 §7.1).
public struct DPoPError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Checks DPoP proofs (RFC 9449 §4.3): the header (`typ` `dpop+jwt`, an asymmetric `alg`, a public `jwk`),
/// the signature by that key (with jwt-kit), and the claims (`htm`, `htu`, `iat` within the window).
/// Whether the `jti` was seen before is for the journal to answer.
public enum DPoPVerifier {
    /// The proof algorithms accepted (advertised as `dpop_signing_alg_values_supported`).
    public static let algorithms: [String] = ["ES256", "ES384", "RS256", "EdDSA"]
    static let privateMembers: Set<String> = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]

    public static func verify(
        _ proof: String, method: String, url: String, now: LedgerTimestamp, windowSeconds: Int64 = 60
    ) async throws(DPoPError) -> DPoPProof {
        let parts = proof.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(String(parts[0])),
            let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any]
        else { throw DPoPError("The DPoP proof is not a JWS.") }
        guard header["typ"] as? String == "dpop+jwt" else { throw DPoPError("The DPoP proof's typ must be dpop+jwt.") }
        guard let alg = header["alg"] as? String, algorithms.contains(alg) else {
            throw DPoPError("The DPoP proof must be signed with an asymmetric algorithm.")
        }
        guard let jwk = header["jwk"] as? [String: Any], let kty = jwk["kty"] as? String else {
            throw DPoPError("The DPoP proof carries no jwk.")
        }
        guard privateMembers.isDisjoint(with: jwk.keys) else { throw DPoPError("The DPoP proof's jwk contains private key material.") }
        let thumbprint: String
        switch kty {
        case "EC": thumbprint = try JWKThumbprint.make(jwk, members: ["crv", "kty", "x", "y"])
        case "RSA": thumbprint = try JWKThumbprint.make(jwk, members: ["e", "kty", "n"])
        case "OKP": thumbprint = try JWKThumbprint.make(jwk, members: ["crv", "kty", "x"])
        default: throw DPoPError("Unsupported jwk key type.")
        }
        let keys = JWTKeyCollection()
        do {
            switch (alg, kty, jwk["crv"] as? String) {
            case ("ES256", "EC", "P-256"):
                await keys.add(ecdsa: try ES256PublicKey(parameters: (try member(jwk, "x"), try member(jwk, "y"))))
            case ("ES384", "EC", "P-384"):
                await keys.add(ecdsa: try ES384PublicKey(parameters: (try member(jwk, "x"), try member(jwk, "y"))))
            case ("RS256", "RSA", _):
                await keys.add(rsa: try Insecure.RSA.PublicKey(modulus: try member(jwk, "n"), exponent: try member(jwk, "e")), digestAlgorithm: .sha256)
            case ("EdDSA", "OKP", "Ed25519"):
                await keys.add(eddsa: try EdDSA.PublicKey(x: try member(jwk, "x"), curve: .ed25519))
            default:
                throw DPoPError("The DPoP proof's alg does not fit its jwk.")
            }
        } catch let error as DPoPError {
            throw error
        } catch {
            throw DPoPError("The DPoP proof's jwk is not a valid public key.")
        }
        let claims: DPoPClaims
        do {
            claims = try await keys.verify(proof, as: DPoPClaims.self)
        } catch {
            throw DPoPError("The DPoP proof's signature does not verify with its jwk.")
        }
        guard claims.htm == method else { throw DPoPError("The DPoP proof's htm is not \(method).") }
        guard normalized(claims.htu) == normalized(url) else { throw DPoPError("The DPoP proof's htu is not \(url).") }
        let (age, overflow) = now.secondsSinceEpoch.subtractingReportingOverflow(claims.iat)
        guard !overflow, age.magnitude <= UInt64(windowSeconds) else {
            throw DPoPError("The DPoP proof's iat is outside the accepted window.")
        }
        guard !claims.jti.isEmpty, claims.jti.utf8.count <= 256 else { throw DPoPError("The DPoP proof needs a jti.") }
        return DPoPProof(thumbprint: thumbprint, proofID: claims.jti, accessTokenHash: claims.ath)
    }

    private static func member(_ jwk: [String: Any], _ name: String) throws(DPoPError) -> String {
        guard let value = jwk[name] as? String, !value.isEmpty else { throw DPoPError("The jwk has no \(name).") }
        return value
    }

    /// RFC 9449 §4.3: compared without query and fragment; scheme and host case-insensitively.
    static func normalized(_ url: String) -> String {
        var base = url
        if let cut = base.firstIndex(where: { $0 == "?" || $0 == "#" }) { base = String(base[..<cut]) }
        guard let schemeEnd = base.range(of: "://") else { return base }
        let afterScheme = base[schemeEnd.upperBound...]
        let hostEnd = afterScheme.firstIndex(of: "/") ?? afterScheme.endIndex
        return base[..<hostEnd].lowercased() + afterScheme[hostEnd...]
    }
}

/// RFC 7638 JWK thumbprints. Hand-written because jwt-kit 5 has none: SHA-256 over the required members,
/// in lexicographic order, as compact JSON.
public enum JWKThumbprint {
    public static func make(_ jwk: [String: Any], members: [String]) throws(DPoPError) -> String {
        var parts: [String] = []
        for member in members.sorted() {
            guard let value = jwk[member] as? String, value.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw DPoPError("The jwk member \(member) is missing or not base64url.")
            }
            parts.append("\"\(member)\":\"\(value)\"")
        }
        return Base64URL.encode(SHA256Digest.hash(Array(("{" + parts.joined(separator: ",") + "}").utf8)).bytes)
    }
}
