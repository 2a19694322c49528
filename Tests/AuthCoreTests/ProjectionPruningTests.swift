import LedgerCore
import Testing

@testable import AuthCore

@Suite("ProjectionPruning: which entries have expired, and a pruning event removes exactly those in its range")
struct ProjectionPruningTests {
    static let now = LedgerTimestamp(microsecondsSinceEpoch: 1_800_000_000_000_000)

    static func session(_ hash: String, expiresIn seconds: Int) -> SessionSnapshot {
        SessionSnapshot(sessionHash: hash, userID: "auth0|alice", connection: "db", authTime: now.adding(seconds: -7200),
                        expiresAt: now.adding(seconds: seconds))
    }

    @Test("sessions, login failures and DPoP proofs: expired ones in the range go; live ones and those outside the range stay")
    func rangeAndExpiry() throws {
        let store = MemoryProjectionStore()
        for (hash, seconds) in [("a", -10), ("b", 10), ("c", -1), ("d", -100), ("e", -5)] {
            try store.put(.sessions, hash, try PayloadCoding.encode(Self.session(hash, expiresIn: seconds)))
        }
        try ProjectionPruning.apply(ProjectionsPruned(table: .sessions, time: Self.now, fromKey: "b", throughKey: "d", removed: 2), to: store)
        #expect(Set(store.tables[.sessions]!.keys) == ["a", "b", "e"], "c and d expired within b…d; a and e are outside it; b is live")

        try store.put(.loginFailures, "old", try PayloadCoding.encode([Self.now.adding(seconds: -90_000), Self.now.adding(seconds: -86_401)]))
        try store.put(.loginFailures, "recent", try PayloadCoding.encode([Self.now.adding(seconds: -90_000), Self.now.adding(seconds: -60)]))
        try ProjectionPruning.apply(ProjectionsPruned(table: .loginFailures, time: Self.now, fromKey: "", throughKey: "zzz", removed: 1), to: store)
        #expect(Array(store.tables[.loginFailures]!.keys) == ["recent"], "kept while its newest failure is under a day old")

        try store.put(.dpopProofs, "p1", Array(UInt64(41).bigEndianBytes))
        try store.put(.dpopProofs, "p2", Array(UInt64(42).bigEndianBytes))
        try ProjectionPruning.apply(
            ProjectionsPruned(table: .dpopProofs, time: Self.now, fromKey: "p", throughKey: "p9", beforeSequence: 42, removed: 1), to: store)
        #expect(Array(store.tables[.dpopProofs]!.keys) == ["p2"])
    }

    @Test("a code stays for the lifetime of a refresh family its redemption could have started; a family goes with its newest token")
    func codesAndRefreshFamilies() throws {
        let grant = CodeGrant(
            clientID: "web-app", redirectURI: "https://client.test/cb", userID: "auth0|alice", scopes: ["openid"], audience: nil,
            organizationID: nil, nonce: nil, codeChallenge: nil, codeChallengeMethod: nil, dpopJKT: nil, authTime: Self.now,
            expiresAt: Self.now.adding(seconds: -86_400), invitation: nil, redirectURIGiven: true)
        let code = try PayloadCoding.encode(CodeRecord(grant: grant, status: .redeemed, issuedSequence: 7, tokenIDs: nil, refreshFamily: nil))
        let store = MemoryProjectionStore()
        try store.put(.codes, "k", code)
        #expect(try !ProjectionPruning.isExpired(.codes, key: "k", value: code, at: Self.now, beforeSequence: nil, in: store))
        #expect(try ProjectionPruning.isExpired(
            .codes, key: "k", value: code, at: Self.now.adding(seconds: TokenPolicy.refreshLifetimeSeconds), beforeSequence: nil, in: store))

        let issued = RefreshIssued(
            tokenHash: "t2", family: "f", parentHash: "t1", clientID: "web-app", userID: "auth0|alice", scopes: ["offline_access"],
            audience: nil, organizationID: nil, authTime: Self.now, expiresAt: Self.now.adding(seconds: 60), dpopJKT: nil)
        try store.put(.refreshTokens, "t2", try PayloadCoding.encode(RefreshRecord(issued: issued, status: .active)))
        let family = try PayloadCoding.encode(RefreshFamilyRecord(revoked: false, current: "t2"))
        #expect(try !ProjectionPruning.isExpired(.refreshFamilies, key: "f", value: family, at: Self.now, beforeSequence: nil, in: store))
        #expect(try ProjectionPruning.isExpired(.refreshFamilies, key: "f", value: family, at: Self.now.adding(seconds: 60), beforeSequence: nil, in: store))
        let orphan = try PayloadCoding.encode(RefreshFamilyRecord(revoked: true, current: "gone"))
        #expect(try ProjectionPruning.isExpired(.refreshFamilies, key: "g", value: orphan, at: Self.now, beforeSequence: nil, in: store))
        // What does not decode is kept: pruning never guesses.
        #expect(try !ProjectionPruning.isExpired(.sessions, key: "x", value: Array("junk".utf8), at: Self.now, beforeSequence: nil, in: store))
        // Configuration, consents, indexes and token keys are never pruned.
        try store.put(.consents, "c", try PayloadCoding.encode(["openid"]))
        try ProjectionPruning.apply(ProjectionsPruned(table: .consents, time: Self.now, fromKey: "", throughKey: "z", removed: 1), to: store)
        #expect(store.tables[.consents]?["c"] != nil)
    }

    @Test("the event round-trips through its payload and the projection applies it")
    func eventRoundTrip() throws {
        let event = AuthEvent.projectionsPruned(
            ProjectionsPruned(table: .interactions, time: Self.now, fromKey: "a", throughKey: "b", removed: 3))
        #expect(event.eventType == "auth.projections.pruned")
        #expect(try AuthEvent(type: event.eventType, payload: try event.payload()) == event)
    }
}
