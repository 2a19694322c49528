import AuthCore
import Foundation
import JWTKit
import LedgerCore
import Synchronization

/// The public token signing keys of the other nodes of a cluster, as they published them in the journal
/// (`auth.token_keys.published`): tokens a node minted verify at every node, and every node's JWKS lists
/// every node's keys.
///
/// Only public keys are held; they verify, never sign. A token whose `kid` is neither this node's nor a
/// known peer's is refused (the caller may load the published keys again first: ``replace(with:)``).
public final class PeerTokenKeys: Sendable {
    private struct Loaded: Sendable {
        var jwks: [[String: String]] = []
        var kids: Set<String> = []
        var collection = JWTKeyCollection()
    }

    private let loaded = Mutex(Loaded())

    public init() {}

    /// The peers' public JWKs.
    public var jwks: [[String: String]] { loaded.withLock { $0.jwks } }

    /// Whether `kid` is a peer's key.
    public func knows(_ kid: String) -> Bool { loaded.withLock { $0.kids.contains(kid) } }

    /// Replaces the peers' keys with `jwks` (RS256 and EdDSA public JWKs, each with its `kid`). Keys of
    /// another type or algorithm, private ones, or ones without a `kid` are skipped.
    public func replace(with jwks: [[String: String]]) async {
        let collection = JWTKeyCollection()
        var accepted: [[String: String]] = []
        for member in jwks {
            // Only the public key types this server signs with, each with its own algorithm: never a
            // symmetric ("oct") key, whose "public" value would be an HMAC secret anyone could read.
            guard member["kid"] != nil, let alg = member["alg"].flatMap(TokenAlgorithm.init(rawValue:)),
                alg == .rs256 ? (member["kty"] == "RSA" && member["d"] == nil)
                    : (member["kty"] == "OKP" && member["crv"] == "Ed25519" && member["d"] == nil),
                let data = try? JSONSerialization.data(withJSONObject: member), let jwk = try? JSONDecoder().decode(JWK.self, from: data),
                (try? await collection.add(jwk: jwk)) != nil
            else { continue }
            accepted.append(member)
        }
        let kids = Set(accepted.compactMap { $0["kid"] })
        loaded.withLock { $0 = Loaded(jwks: accepted, kids: kids, collection: collection) }
    }

    /// Verifies a token signed by a peer's key (canonical spelling, as ``TokenKeyRing/verify(_:as:)``).
    public func verify<Payload: JWTPayload>(_ token: String, as type: Payload.Type) async throws -> Payload {
        guard TokenKeyRing.isCanonical(token) else { throw TokenKeyError.nonCanonical }
        let collection = loaded.withLock { $0.collection }
        return try await collection.verify(token, as: type)
    }

    /// The `kid` in the header of `token`, if it has one (the signature is not checked here).
    public static func keyID(of token: String) -> String? {
        guard let header = token.split(separator: ".", maxSplits: 1).first, let bytes = Base64URL.decode(String(header)),
            let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        else { return nil }
        return object["kid"] as? String
    }
}
