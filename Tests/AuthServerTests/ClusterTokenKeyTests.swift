import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import HTTPTypes
import LedgerJournal
import Testing

@testable import AuthServer

/// The token keys of a cluster's other nodes: published in the journal, listed in every node's JWKS,
/// and their tokens accepted by every node's resource endpoints.
@Suite("Cluster token keys: published in the journal, listed and accepted by every node")
struct ClusterTokenKeyTests {
    static func ring(_ label: String) async throws -> (TokenKeyRing, String) {
        let directory = FileManager.default.temporaryDirectory.path + "/authledger-peer-\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return (try await TokenKeyRing.loadOrCreate(path: directory + "/peer.tokenkeys"), directory)
    }

    /// An access token for alice signed by `ring`, recorded in the journal as the node that minted it
    /// would have (a token the journal does not hold is refused by every node, whoever signed it).
    static func token(_ ring: TokenKeyRing, issuer: String, ledger: AuthLedger) async throws -> String {
        let now = Journal.systemClock()
        let grant = TokenRequestGrant(
            clientID: "web-app", userID: "auth0|alice", user: nil, scopes: ["openid", "email"], audience: nil, organizationID: nil,
            nonce: nil, authTime: now)
        let minted = try await TokenMinter(keys: ring, issuer: issuer).mint(grant, api: nil, now: now, includeIDToken: false)
        let issued = TokenIssued(
            grantType: "authorization_code", clientID: "web-app", userID: "auth0|alice", codeHash: nil, decisionSequence: nil,
            accessTokenID: minted.accessTokenID, idTokenID: nil, scopes: grant.scopes, audience: nil, organizationID: nil,
            expiresAt: minted.expiresAt, clientIP: nil)
        try await ledger.record { try $0.append(.tokenIssued(issued)) }
        return minted.accessToken
    }

    @Test("a peer's published keys are in the JWKS and its tokens pass /userinfo; a token by an unpublished key gets 401")
    func peerTokensAccepted() async throws {
        let harness = try await ServerHarness()
        let (peer, peerDirectory) = try await Self.ring("peer")
        let (stranger, strangerDirectory) = try await Self.ring("stranger")
        defer {
            try? FileManager.default.removeItem(atPath: peerDirectory)
            try? FileManager.default.removeItem(atPath: strangerDirectory)
        }
        try await harness.ledger.record { try $0.append(.tokenKeysPublished(TokenKeysPublished(node: "peer-node", keys: peer.jwks))) }
        let issuer = harness.server.issuer
        try await harness.run { browser in
            let jwks = try await browser.get("/.well-known/jwks.json")
            let kids = (jsonObject(jwks)["keys"] as? [[String: String]] ?? []).compactMap { $0["kid"] }
            #expect(Set(kids) == Set(harness.server.tokenKeys.keys.map(\.kid) + peer.keys.map(\.kid)))
            #expect(kids.count == Set(kids).count, "no key listed twice")

            let byPeer = try await browser.send("/userinfo", method: .get, headers: ResourceEndpointTests.bearer(try await Self.token(peer, issuer: issuer, ledger: harness.ledger)))
            #expect(byPeer.status == .ok)
            #expect(jsonObject(byPeer)["sub"] as? String == "auth0|alice")

            let byStranger = try await browser.send(
                "/userinfo", method: .get, headers: ResourceEndpointTests.bearer(try await Self.token(stranger, issuer: issuer, ledger: harness.ledger)))
            #expect(byStranger.status == .unauthorized)
        }
    }

    @Test("a token must match its record: a signing key cannot give a recorded token another user or a longer life")
    func tokenMustMatchItsRecord() async throws {
        let harness = try await ServerHarness()
        let (peer, peerDirectory) = try await Self.ring("peer")
        defer { try? FileManager.default.removeItem(atPath: peerDirectory) }
        try await harness.ledger.record { try $0.append(.tokenKeysPublished(TokenKeysPublished(node: "peer-node", keys: peer.jwks))) }
        let issuer = harness.server.issuer
        let genuine = try await Self.token(peer, issuer: issuer, ledger: harness.ledger)
        let claims = try await peer.verify(genuine, as: AccessTokenClaims.self)
        try await harness.run { browser in
            #expect(try await browser.send("/userinfo", method: .get, headers: ResourceEndpointTests.bearer(genuine)).status == .ok)
            var otherUser = claims
            otherUser.sub = "auth0|bob"
            var longer = claims
            longer.exp += 86_400
            for forged in [otherUser, longer] {
                let token = try await peer.sign(forged, algorithm: .rs256, type: "at+jwt")
                let answer = try await browser.send("/userinfo", method: .get, headers: ResourceEndpointTests.bearer(token))
                #expect(answer.status == .unauthorized)
            }
            var unrecordedClaims = claims
            unrecordedClaims.jti = "never-recorded"
            let unrecorded = try await peer.sign(unrecordedClaims, algorithm: .rs256, type: "at+jwt")
            #expect(try await browser.send("/userinfo", method: .get, headers: ResourceEndpointTests.bearer(unrecorded)).status == .unauthorized)
        }
    }

    @Test("keys a node dropped leave every JWKS, and their tokens are refused")
    func droppedKeysLeave() async throws {
        let harness = try await ServerHarness()
        let (peer, peerDirectory) = try await Self.ring("peer")
        defer { try? FileManager.default.removeItem(atPath: peerDirectory) }
        try await harness.ledger.record { try $0.append(.tokenKeysPublished(TokenKeysPublished(node: "peer-node", keys: peer.jwks))) }
        let token = try await Self.token(peer, issuer: harness.server.issuer, ledger: harness.ledger)
        try await harness.ledger.record {
            try $0.append(.tokenKeysPublished(TokenKeysPublished(node: "peer-node", keys: [], dropped: peer.keys.map(\.kid))))
        }
        try await Task.sleep(for: .milliseconds(1100))  // past the published keys' cache lifetime
        try await harness.run { browser in
            let kids = (jsonObject(try await browser.get("/.well-known/jwks.json"))["keys"] as? [[String: String]] ?? []).compactMap { $0["kid"] }
            #expect(Set(kids).isDisjoint(with: peer.keys.map(\.kid)))
            #expect(try await browser.send("/userinfo", method: .get, headers: ResourceEndpointTests.bearer(token)).status == .unauthorized)
        }
    }

    @Test("a node publishes its keys once: publishing unchanged keys again appends nothing, and its own keys are not listed twice")
    func publishOnce() async throws {
        let harness = try await ServerHarness()
        try await harness.server.publishTokenKeys()
        try await harness.server.publishTokenKeys()
        try await harness.run { browser in
            let kids = (jsonObject(try await browser.get("/.well-known/jwks.json"))["keys"] as? [[String: String]] ?? []).compactMap { $0["kid"] }
            #expect(kids.sorted() == harness.server.tokenKeys.keys.map(\.kid).sorted())
        }
        let published = try harness.events().filter { if case .tokenKeysPublished = $0.1 { true } else { false } }
        #expect(published.count == 1)
    }
}
