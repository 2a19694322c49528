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
    private struct State {
        var loadedAt: ContinuousClock.Instant?
        var forcedAt: ContinuousClock.Instant?
        /// Loads started, and the newest applied: an older load finishing late is not applied.
        var started = 0
        var applied = 0
    }
    private let state = Mutex(State())
    static let lifetime: Duration = .seconds(1)

    /// Loads the published keys again when due; `force` (a token named an unknown key) also when the last
    /// forced load is older than ``lifetime``.
    func refresh(ledger: AuthLedger, own: TokenKeyRing, force: Bool = false) async throws {
        let load: Int? = state.withLock { state in
            let now = ContinuousClock.now
            let stale = state.loadedAt.map { $0.duration(to: now) > Self.lifetime } ?? true
            let forced = force && (state.forcedAt.map { $0.duration(to: now) > Self.lifetime } ?? true)
            guard stale || forced else { return nil }
            if forced { state.forcedAt = now }
            state.loadedAt = now
            state.started += 1
            return state.started
        }
        guard let load else { return }
        let ownKids = Set(own.keys.map(\.kid))
        let published = try await ledger.query { store in
            try store.entries(.tokenKeys, prefix: "").map { _, value in try ProjectionCoding.decode([String: String].self, from: value) }
        }
        let peerKeys = published.filter { key in key["kid"].map { !ownKids.contains($0) } ?? false }
        let apply = state.withLock { state in
            guard load > state.applied else { return false }
            state.applied = load
            return true
        }
        if apply { await peers.replace(with: peerKeys) }
    }
}

extension AuthorizationServer {
    /// Verifies an access token minted by this node or by another node of the cluster (a key this node
    /// does not know, even after reading the published keys again, is refused).
    func verifyAccessToken(_ token: String) async throws -> AccessTokenClaims {
        try await verifyToken(token, as: AccessTokenClaims.self)
    }

    /// Verifies a token signed by this node or by another node of the cluster, as `Payload` (the signature
    /// only: the caller checks the claims).
    func verifyToken<Payload: JWTPayload>(_ token: String, as type: Payload.Type) async throws -> Payload {
        guard let kid = PeerTokenKeys.keyID(of: token), !tokenKeys.keys.contains(where: { $0.kid == kid }) else {
            return try await tokenKeys.verify(token, as: type)
        }
        if !clusterKeys.peers.knows(kid) {
            try? await clusterKeys.refresh(ledger: ledger, own: tokenKeys, force: true)
        }
        guard clusterKeys.peers.knows(kid) else { throw TokenKeyError.unknownKey(kid) }
        return try await clusterKeys.peers.verify(token, as: type)
    }

    /// Publishes this node's public token keys in the journal unless every one of them is published
    /// already: the other nodes of a cluster then list them in their JWKS and accept the tokens they sign.
    public func publishTokenKeys() async throws {
        let published = TokenKeysPublished(node: ledger.journal.activeKeyID.hex, keys: tokenKeys.jwks)
        try await ledger.record { recorder in
            let current = try published.keys.allSatisfy { key in
                guard let kid = key["kid"], let stored = try recorder.store.get(.tokenKeys, kid) else { return false }
                return try ProjectionCoding.decode([String: String].self, from: stored) == key
            }
            if !current { try recorder.append(.tokenKeysPublished(published)) }
        }
    }
}
