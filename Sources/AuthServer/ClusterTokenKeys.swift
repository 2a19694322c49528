import AuthCore
import AuthJournal
import AuthTokens
import JWTKit
import LedgerCore
import Synchronization

/// The token keys of a cluster's other nodes, loaded from what they published in the journal, so that
/// this node's JWKS lists them and its resource endpoints accept their tokens.
///
/// Loaded again when older than ``lifetime``, and when a token names a key this node does not know —
/// at most once per ``lifetime`` for unknown keys, so that tokens with made-up `kid`s cannot make every
/// request read the journal.
final class ClusterTokenKeys: Sendable {
    let peers = PeerTokenKeys()
    private let lastLoad = Mutex<ContinuousClock.Instant?>(nil)
    static let lifetime: Duration = .seconds(1)

    /// Loads the published keys now if due (`force`: a token named an unknown key).
    func refresh(ledger: AuthLedger, own: TokenKeyRing, force: Bool = false) async throws {
        let due = lastLoad.withLock { last in
            guard last.map({ $0.duration(to: .now) > Self.lifetime }) ?? true else { return false }
            last = .now
            return true
        }
        guard due || (force && lastLoad.withLock({ $0 == nil })) else { return }
        let ownKids = Set(own.keys.map(\.kid))
        let published = try await ledger.query { store in
            try store.entries(.tokenKeys, prefix: "").flatMap { _, value in try PayloadCoding.decode([[String: String]].self, from: value) }
        }
        var seen = ownKids
        await peers.replace(with: published.filter { key in key["kid"].map { seen.insert($0).inserted } ?? false })
    }
}

extension AuthorizationServer {
    /// Verifies an access token minted by this node or by another node of the cluster.
    func verifyAccessToken(_ token: String) async throws -> AccessTokenClaims {
        guard let kid = PeerTokenKeys.keyID(of: token), !tokenKeys.keys.contains(where: { $0.kid == kid }) else {
            return try await tokenKeys.verify(token, as: AccessTokenClaims.self)
        }
        if !clusterKeys.peers.knows(kid) {
            try? await clusterKeys.refresh(ledger: ledger, own: tokenKeys, force: true)
        }
        return try await clusterKeys.peers.verify(token, as: AccessTokenClaims.self)
    }

    /// Publishes this node's public token keys in the journal, unless they are published already: the
    /// other nodes of a cluster then list them in their JWKS and accept the tokens they sign.
    public func publishTokenKeys() async throws {
        let published = TokenKeysPublished(node: ledger.journal.activeKeyID.hex, keys: tokenKeys.jwks)
        try await ledger.record { recorder in
            let stored = try recorder.store.get(.tokenKeys, published.node).map { try PayloadCoding.decode([[String: String]].self, from: $0) }
            if stored != published.keys { try recorder.append(.tokenKeysPublished(published)) }
        }
    }
}
