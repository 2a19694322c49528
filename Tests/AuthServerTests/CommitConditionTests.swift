import AuthCore
import AuthJournal
import LedgerCore
import Testing

@testable import AuthServer

/// A projection store that answers from a dictionary and records every key read.
private final class RecordingStore: ProjectionStore {
    var entries: [String: [UInt8]] = [:]
    var reads: [String] = []

    private func name(_ table: AuthTable, _ key: String) -> String { "\(table.rawValue)/\(key)" }

    func get(_ table: AuthTable, _ key: String) throws -> [UInt8]? {
        reads.append(name(table, key))
        return entries[name(table, key)]
    }

    func put(_ table: AuthTable, _ key: String, _ value: [UInt8]) throws { entries[name(table, key)] = value }
    func delete(_ table: AuthTable, _ key: String) throws { entries[name(table, key)] = nil }
    func forEach(_ table: AuthTable, from start: String, _ body: (String, [UInt8]) throws -> Bool) throws {}
}

@Suite("CommitCondition: what a request relied on, checked again in its commit")
struct CommitConditionTests {
    static let all: [CommitCondition] = [
        .interactionOpen("i"), .pushedRequestUnused("p"), .sessionActive("s"), .invitationUnspent("t"), .codeUnredeemed("c"),
        .refreshTokenActive(tokenHash: "r", family: "f"), .accessTokenActive("a"), .dpopProofUnused("d"), .clientAssertionUnused("x"),
    ]

    /// A store where every condition's entries exist and the checks get past their first read (an active
    /// refresh token, so that its family is read too).
    fileprivate static func filledStore() throws -> RecordingStore {
        let store = RecordingStore()
        let time = LedgerTimestamp(microsecondsSinceEpoch: 1_800_000_000_000_000)
        let issued = RefreshIssued(
            tokenHash: "r", family: "f", parentHash: nil, clientID: "app", userID: "auth0|bob", scopes: ["openid"], audience: nil,
            organizationID: nil, authTime: time, expiresAt: time, dpopJKT: nil, claims: nil)
        // The projection records have no public initializer: their stored JSON, as the projections write it.
        try store.put(.refreshTokens, "r", Array(#"{"issued":"#.utf8) + PayloadCoding.encode(issued) + Array(#","status":"active"}"#.utf8))
        try store.put(.refreshFamilies, "f", Array(#"{"current":"r","revoked":false}"#.utf8))
        for (table, key) in [(AuthTable.interactions, "i"), (.sessions, "s"), (.dpopProofs, "d"), (.clientAssertions, "x")] {
            try store.put(table, key, [1])
        }
        store.reads = []
        return store
    }

    @Test("every entry a check reads is one it announces (the writer fetches exactly those), but the configuration")
    func readsAreAnnounced() throws {
        for condition in Self.all {
            for store in [RecordingStore(), try Self.filledStore()] {
                _ = try condition.holds(in: store)
                let announced = Set(condition.reads.map { "\($0.0.rawValue)/\($0.1)" })
                let read = Set(store.reads).subtracting(["\(AuthTable.configuration.rawValue)/\(AuthProjection.configurationKey)"])
                #expect(read.isSubset(of: announced), "\(condition) reads \(read.subtracting(announced)) unannounced")
            }
        }
        let store = try Self.filledStore()
        #expect(try CommitCondition.refreshTokenActive(tokenHash: "r", family: "f").holds(in: store))
        #expect(Set(store.reads) == ["\(AuthTable.refreshTokens.rawValue)/r", "\(AuthTable.refreshFamilies.rawValue)/f"], "both entries read")
        for condition in Self.all {
            let store = RecordingStore()
            _ = try condition.holds(in: store)
            #expect(!store.reads.isEmpty, "\(condition) reads nothing")
        }
    }

    @Test("with nothing recorded, a condition on what must exist fails (fail closed) and one on what must not exist holds")
    func absentEntries() throws {
        let store = RecordingStore()
        let holding = try Self.all.filter { try $0.holds(in: store) }
        #expect(holding == [.pushedRequestUnused("p"), .invitationUnspent("t"), .dpopProofUnused("d"), .clientAssertionUnused("x")])
        #expect(try CommitCondition.firstFailing(Self.all, in: store) == .interactionOpen("i"))
        #expect(try CommitCondition.firstFailing([.dpopProofUnused("d")], in: store) == nil)
    }

    @Test("a recorded proof, assertion or interaction turns its condition over")
    func recordedEntries() throws {
        let store = RecordingStore()
        try store.put(.dpopProofs, "d", [1])
        try store.put(.clientAssertions, "x", [1])
        try store.put(.interactions, "i", [1])
        try store.put(.sessions, "s", [1])
        #expect(try !CommitCondition.dpopProofUnused("d").holds(in: store))
        #expect(try !CommitCondition.clientAssertionUnused("x").holds(in: store))
        #expect(try CommitCondition.interactionOpen("i").holds(in: store))
        #expect(try CommitCondition.sessionActive("s").holds(in: store))
        #expect(try CommitCondition.firstFailing([.sessionActive("s"), .dpopProofUnused("d"), .clientAssertionUnused("x")], in: store)
            == .dpopProofUnused("d"), "the first failing, in the order given")
    }

    @Test("tokens are issued on the DPoP proof's condition first: a replayed proof is refused as such, before the grant is spent")
    func dpopFirst() throws {
        let conditions = AuthorizationServer.issuanceConditions(proofID: "d", grantStillValid: [.codeUnredeemed("c")])
        #expect(conditions == [.dpopProofUnused("d"), .codeUnredeemed("c")])
        let store = RecordingStore()
        try store.put(.dpopProofs, "d", [1])  // the proof seen before, and the code not issued (both fail)
        #expect(try CommitCondition.firstFailing(conditions, in: store) == .dpopProofUnused("d"))
        #expect(AuthorizationServer.issuanceConditions(proofID: nil, grantStillValid: [.codeUnredeemed("c")]) == [.codeUnredeemed("c")])
    }
}
