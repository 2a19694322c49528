@testable import AuthCore
@testable import AuthJournal
import Foundation
import LedgerCore
@testable import LedgerJournal
import LedgerMemory
@testable import LedgerPostgres
import Logging
import NIOCore
import PostgresNIO
import Synchronization
import Testing

/// Awaited reads (`JournalReader.read(awaiting:otherwise:)`): a synchronous reader runs against what an
/// awaited transaction fetched, again after each read it asks for, and answers as a read that waits does.
/// Checked in memory (through a store that awaits each read as a separate lookup) and on PostgreSQL (the
/// store's own awaited transactions, on connections of its `PostgresClient`).
@Suite("Awaited reads answer as waited reads do, in memory and on PostgreSQL")
struct AwaitedReadTests {
    @Test("a reader of a key, a walk over three pages, the head and a count: the same answers, one statement per read, the last one holding every read", arguments: ["memory", "PostgreSQL"])
    func sameAnswers(store: String) async throws {
        try await withFilledJournal(store) { reader, counting in
            let read: @Sendable (JournalSnapshot) throws -> Answers = { snapshot in
                let markers = try snapshot.projection("markers")
                var walked: [String] = []
                try markers.forEach(from: nil) { key, _ in
                    walked.append(String(decoding: key, as: UTF8.self))
                    return true
                }
                return Answers(
                    head: try snapshot.head.sequence, marker: try markers.get(Array("m0007".utf8)), walked: walked, count: try markers.count)
            }
            let waited = try reader.read(read)
            let awaited = try await awaitedAnswer(of: read, by: reader, counting: counting)
            #expect(awaited == waited)
            #expect(awaited.walked.count == markerCount)
            // A statement for each read the reader asks for, each reading again what the ones before read.
            #expect(counting.statements == counting.latestReads.count)
            #expect(Set(counting.latestReads).count == counting.latestReads.count, "no read twice in a statement")
            // 1,300 entries in pages of 512: three pages.
            #expect(counting.latestReads(of: "entries") == 3)
            #expect(counting.latestReads(of: "value") >= 1)
            #expect(counting.latestReads(of: "count") == 1)
        }
    }

    @Test("values only, in one statement (on PostgreSQL the prepared one): values and a missing key each answered as they are, in the order asked, the same when read again", arguments: ["memory", "PostgreSQL"])
    func valuesOnly(store: String) async throws {
        try await withFilledJournal(store) { reader, counting in
            let read: @Sendable (JournalSnapshot) throws -> [[UInt8]?] = { snapshot in
                let markers = try snapshot.projection("markers")
                return try [marker(1_299), "m9999", marker(3), marker(0)].map { try markers.get(Array($0.utf8)) }
            }
            let waited = try reader.read(read)
            #expect(waited == [Array("seen 1299".utf8), nil, Array("seen 3".utf8), Array("seen 0".utf8)])
            let key = Array("values".utf8)
            #expect(try await awaitedAnswer(of: read, by: reader, counting: counting, hint: .learned(key)) == waited)
            #expect(counting.statements == 4, "one statement per read the first time")
            for _ in 0..<3 {
                #expect(try await awaitedAnswer(of: read, by: reader, counting: counting, hint: .learned(key)) == waited)
                #expect(counting.statements == 1, "then all four in one")
                #expect(counting.latestReads(of: "value") == 4)
            }
        }
    }

    @Test("a reader that swallows a read not fetched yet (try?) still answers from the fetched value", arguments: ["memory", "PostgreSQL"])
    func swallowedMissIsNotAnAnswer(store: String) async throws {
        try await withFilledJournal(store) { reader, counting in
            let value = try await awaitedAnswer(of: { snapshot in
                (try? snapshot.projection("markers").get(Array("m0042".utf8))) ?? nil
            }, by: reader, counting: counting)
            #expect(value == Array("seen 42".utf8))
        }
    }

    @Test("a reader that needs more statements than the limit is answered by the waited read instead, after the limit's statements", arguments: ["memory", "PostgreSQL"])
    func tooManyReadsWait(store: String) async throws {
        try await withFilledJournal(store) { reader, counting in
            let read: @Sendable (JournalSnapshot) throws -> Int = { snapshot in
                let markers = try snapshot.projection("markers")
                return try (0..<40).filter { try markers.get(Array(marker($0).utf8)) != nil }.count
            }
            let (answer, didWait) = try await answerPastTheLimits(of: read, by: reader, counting: counting)
            #expect(answer == 40)
            #expect(didWait)
            #expect(counting.statements == JournalReader.awaitedReadLimit, "it gave up at the limit")
            #expect(counting.latestReads(of: "value") == JournalReader.awaitedReadLimit)
        }
    }

    @Test("a reader's awaited reads are counted: every statement sent, the readers answered awaited, and those answered by waiting", arguments: ["memory", "PostgreSQL"])
    func statisticsCounted(store: String) async throws {
        try await withFilledJournal(store) { reader, counting in
            #expect(reader.awaitedReadStatistics == AwaitedReadStatistics())
            _ = try await awaitedAnswer(of: markerChain(from: 7), by: reader, counting: counting)
            var counted = reader.awaitedReadStatistics
            #expect(counted.statements == 3 && counted.answered == 1)
            // A read the store could not begin (a busy machine: see attemptsOnABusyMachine) was answered
            // by waiting, and counted so; on its own, the store never refuses one.
            if store == "memory" { #expect(counted.waited == 0) }

            let waitedBefore = counted.waited
            let (_, didWait) = try await answerPastTheLimits(of: { snapshot in
                try (0..<40).filter { try snapshot.projection("markers").get(Array(marker($0).utf8)) != nil }.count
            }, by: reader, counting: counting)
            #expect(didWait)
            counted = reader.awaitedReadStatistics
            #expect(counted.statements == 3 + JournalReader.awaitedReadLimit, "the statements sent before it gave up count")
            #expect(counted.answered == 1)
            #expect(counted.waited >= waitedBefore + 1)
            if store == "memory" { #expect(counted.waited == 1) }
        }
    }

    @Test("two walks from one key, one of all entries and one of ten, then a key: answered awaited, each page read once a statement", arguments: ["memory", "PostgreSQL"])
    func twoWalksFromOneKey(store: String) async throws {
        try await withFilledJournal(store) { reader, counting in
            let read: @Sendable (JournalSnapshot) throws -> [Int] = { snapshot in
                // The store's own limited walk (as the Merkle tree's readers make), beside a whole one.
                let table = try #require(snapshot.layout.projections["markers"])
                var all = 0
                try snapshot.transaction.forEach(in: table, from: nil) { _, _ in
                    all += 1
                    return true
                }
                var few = 0
                try snapshot.transaction.forEach(in: table, from: nil, limit: 10) { _, _ in
                    few += 1
                    return true
                }
                return [all, few, try snapshot.projection("markers").get(Array("m0042".utf8))?.count ?? -1]
            }
            let answer = try await awaitedAnswer(of: read, by: reader, counting: counting)
            #expect(answer == [markerCount, 10, "seen 42".utf8.count])
            // Three pages and the key: before, the walk of ten noted a page of its own from the same key,
            // which replaced the whole walk's first page, and the reader swung between the two.
            #expect(counting.statements == 4)
            #expect(counting.latestReads.count == 4)
        }
    }

    @Test("a hinted reader of three dependent keys: three statements the first time, one the next; another chain under the same hint answers right, one statement more per read it did not expect", arguments: ["memory", "PostgreSQL"])
    func hintedReads(store: String) async throws {
        try await withFilledJournal(store) { reader, counting in
            let key = Array("chain".utf8)
            let hint = AwaitedReadHint.learned(key)
            let first = try await awaitedAnswer(of: markerChain(from: 7), by: reader, counting: counting, hint: hint)
            #expect(first == ["seen 7", "seen 14", "seen 28"])
            #expect(counting.statements == 3, "one statement per dependent read: nothing remembered yet")
            #expect(reader.hints.reads(for: key).count == 3)

            let again = try await awaitedAnswer(of: markerChain(from: 7), by: reader, counting: counting, hint: hint)
            #expect(again == first)
            #expect(counting.statements == 1, "the remembered reads in the first statement")

            // What the hint names is not what this reader reads: answered right, as if there were no hint
            // (a statement per read), and what it read replaces what was remembered.
            let other = try await awaitedAnswer(of: markerChain(from: 9), by: reader, counting: counting, hint: hint)
            #expect(other == ["seen 9", "seen 18", "seen 36"])
            #expect(counting.statements == 4, "the remembered reads (unused), then one statement per read")
            #expect(counting.latestReads.count == 3, "the remembered reads it did not use are not read again")
            _ = try await awaitedAnswer(of: markerChain(from: 9), by: reader, counting: counting, hint: hint)
            #expect(counting.statements == 1)

            // A reader of one read gains nothing from a hint, and is not remembered.
            let single = Array("single".utf8)
            _ = try await awaitedAnswer(of: { try $0.projection("markers").get(Array(marker(1).utf8)) }, by: reader, counting: counting, hint: .learned(single))
            #expect(reader.hints.reads(for: single).isEmpty)
            #expect(reader.hints.count == 1)
        }
    }

    @Test("hints are bounded: past their capacity, a key is forgotten for each one remembered")
    func hintsBounded() {
        let hints = AwaitedReadHints(capacity: 3)
        let table = StorageTable(name: "t")
        let reads = [AwaitedRead.value(table: table, key: [1]), .value(table: table, key: [2])]
        for key in 0..<10 { hints.remember(reads, for: [UInt8(key)]) }
        #expect(hints.count == 3)
        #expect(hints.reads(for: [9]) == reads, "the newest is kept")
        hints.remember(reads, for: [9])
        #expect(hints.count == 3, "remembering a known key again makes no room")
        hints.remember([reads[0]], for: [9])
        #expect(hints.reads(for: [9]).isEmpty, "one read: forgotten")
        #expect(hints.count == 2)
    }

    @Test("reads expected ahead of a reader of three dependent keys: one statement, used once and not learned; a wrong expectation costs a statement, not the answer", arguments: ["memory", "PostgreSQL"])
    func expectedReads(store: String) async throws {
        try await withFilledJournal(store) { reader, counting in
            let chain = markerChain(from: 7)
            func expect(_ indices: [Int], under key: [UInt8]) {
                reader.expect({ snapshot in
                    for index in indices { _ = try snapshot.projection("markers").get(Array(marker(index).utf8)) }
                }, under: key)
            }
            let key = Array("code:a".utf8)
            expect([7, 14, 28], under: key)
            #expect(reader.hints.expectedReads(for: key).count == 3, "set up without reading: nothing answered, every read noted")
            #expect(counting.statements == 0)

            // Set up again before each attempt: an attempt the store could not begin awaited took them.
            let answer = try await awaitedAnswer(of: chain, by: reader, counting: counting, hint: .expected(key)) {
                expect([7, 14, 28], under: key)
            }
            #expect(answer == ["seen 7", "seen 14", "seen 28"])
            #expect(counting.statements == 1, "the expected reads in the first statement")
            #expect(reader.hints.expectedReads(for: key).isEmpty, "used once")
            #expect(reader.hints.reads(for: key).isEmpty && reader.hints.count == 0, "and nothing learned from it")

            _ = try await awaitedAnswer(of: chain, by: reader, counting: counting, hint: .expected(key))
            #expect(counting.statements == 3, "nothing expected any more: a statement per dependent read")

            // Expected wrong (the chain from 9): the same answer, one statement more per read not expected.
            let wrong = try await awaitedAnswer(of: chain, by: reader, counting: counting, hint: .expected(key)) {
                expect([9, 18, 36], under: key)
            }
            #expect(wrong == answer)
            #expect(counting.statements == 4)
            #expect(counting.latestReads.count == 3, "the expected reads it did not use are not read again")
        }
    }

    @Test("expected reads are bounded: past their capacity the oldest key is forgotten; a key taken or set up again is not forgotten in another's place")
    func expectedBounded() {
        let hints = AwaitedReadHints(capacity: 3, expectedCapacity: 3)
        let table = StorageTable(name: "t")
        func reads(_ marker: UInt8) -> [AwaitedRead] { [.value(table: table, key: [marker])] }
        for key in 0..<10 { hints.expect(reads(UInt8(key)), for: [UInt8(key)]) }
        #expect(hints.expectedCount == 3)
        #expect((7...9).allSatisfy { hints.expectedReads(for: [UInt8($0)]) == reads(UInt8($0)) }, "the newest three are kept")
        #expect(hints.reads(for: .expected([8])) == reads(8), "taken")
        #expect(hints.expectedCount == 2)
        hints.expect(reads(10), for: [10])
        #expect(hints.expectedReads(for: [7]).isEmpty, "the oldest goes first")
        hints.expect(reads(11), for: [11])
        #expect(hints.expectedCount == 3, "the slot of the key taken made room, and forgot nothing else")
        hints.expect(reads(12), for: [10])  // set up again: its first slot is the next to go
        hints.expect(reads(13), for: [13])
        #expect(hints.expectedReads(for: [10]) == reads(12), "a key set up again outlives its first slot")
        #expect(hints.expectedReads(for: [9]).isEmpty)
        #expect(hints.expectedCount == 3)
        hints.expect([], for: [10])
        #expect(hints.expectedReads(for: [10]).isEmpty, "no reads: forgotten")
        #expect(hints.count == 0, "nothing learned meanwhile")
    }

    @Test("the map that forgets its oldest key first (expected reads, kept codes): emptied, it fills and forgets again from the start")
    func oldestFirstMapEmptied() {
        var map = OldestFirstMap<Int, String>(capacity: 2)
        map.insert("a", for: 1)
        map.insert("b", for: 2)
        map.insert("c", for: 3)
        #expect(map[1] == nil && map[2] == "b" && map[3] == "c")
        map.removeAll()
        #expect(map.count == 0 && map[3] == nil)
        map.insert("d", for: 4)
        map.insert("e", for: 5)
        map.insert("f", for: 6)
        #expect(map.count == 2 && map[4] == nil && map[5] == "e" && map[6] == "f", "the oldest since it was emptied goes first")
        #expect(map.take(5) == "e" && map.take(5) == nil)
        #expect(OldestFirstMap<Int, Int>(capacity: 0).capacity == 1)
    }

    @Test("the oldest keys are forgotten while their values are done with, past keys taken or set again, and no further")
    func oldestFirstMapRemovesOldest() {
        var map = OldestFirstMap<Int, Int>(capacity: 5_000)
        for key in 0..<3_000 { map.insert(key, for: key) }
        _ = map.take(1)  // a stale slot among the oldest
        map.insert(5, for: 2)  // set again: its first slot is stale, and its value is newer
        map.removeOldest { $0 < 1_500 }
        #expect(map.count == 1_501, "keys 1,500 to 2,999, and key 2 set again")
        #expect(map[0] == nil && map[1_499] == nil && map[1_500] == 1_500 && map[2] == 5)
        map.removeOldest { $0 < 10 }
        #expect(map.count == 1_501, "stops at the first value it is not done with")
        // The slots that left make room: the capacity counts the queue, not the slots behind it.
        for key in 3_000..<6_000 { map.insert(key, for: key) }
        #expect(map.count == 4_501 && map[1_500] == 1_500, "no key forgotten: 1,501 + 3,000 slots, under 5,000")
        for key in 6_000..<6_499 { map.insert(key, for: key) }
        #expect(map.count == 5_000 && map[1_500] == 1_500)
        map.insert(6_499, for: 6_499)
        #expect(map.count == 5_000 && map[1_500] == nil && map[1_501] == 1_501, "past the capacity, the oldest goes first")
        // Far enough that the slots behind the queue are dropped from its array: still in order after.
        map.removeOldest { $0 < 4_000 }
        #expect(map.count == 2_500 && map[2] == nil && map[3_999] == nil && map[4_000] == 4_000)
        map.insert(7_000, for: 7_000)
        map.removeOldest { $0 < 5_000 }
        #expect(map.count == 1_501 && map[5_000] == 5_000 && map[7_000] == 7_000)
        map.removeOldest { _ in true }
        #expect(map.count == 0)
        map.insert(1, for: 1)
        #expect(map[1] == 1)
    }

    @Test("a code's redemption, expected when it is issued, reads the code and its user's key in one statement; unexpected, in two", arguments: ["memory", "PostgreSQL"])
    func redemptionExpected(store: String) async throws {
        guard let storage = try await awaitingStorage(store) else { return }
        let counting = CountingStorage(storage)
        let key = TemporaryKey()
        let ledger = try await AuthLedger.open(Journal.Configuration(keyFile: key.path), storage: counting)
        ledger.dataKey = DataKey.generate()
        let now = Journal.systemClock()
        func grant(_ userID: String) -> CodeGrant {
            CodeGrant(
                clientID: "web-app", redirectURI: "https://app.example/callback", userID: userID, scopes: ["openid"], authTime: now,
                expiresAt: now.adding(seconds: 60))
        }
        let codes = ["code-a": "auth0|alice", "code-b": "auth0|bob"]
        for (code, user) in codes.sorted(by: { $0.key < $1.key }) {
            // A login first: its address is sealed under a key of the user's own.
            let session = SessionSnapshot(sessionHash: OpaqueToken.hash(code + "-session"), userID: user, connection: "db", authTime: now, expiresAt: now.adding(seconds: 3_600))
            try await ledger.record([
                .loginSucceeded(LoginSucceeded(userID: user, connection: "db", session: session, interaction: nil, clientIP: "198.51.100.7")),
                .codeIssued(CodeIssued(codeHash: OpaqueToken.hash(code), grant: grant(user), decisionSequence: 1)),
            ])
        }

        let (expected, readAhead) = try await awaitedAnswer(counting: counting) {
            try await ledger.redeemableCode(OpaqueToken.hash("code-a"), now: now)
        } setUp: {
            ledger.expectRedemption(ofCode: OpaqueToken.hash("code-a"), issuedTo: "auth0|alice")
        }
        #expect(expected?.grant.userID == "auth0|alice")
        #expect(readAhead?.keys[PersonalData.userSubject("auth0|alice")] != nil, "its user's key, read ahead")
        #expect(counting.statements == 1, "the code and its user's key in one statement")

        let (unexpected, _) = try await awaitedAnswer(counting: counting) { try await ledger.redeemableCode(OpaqueToken.hash("code-b"), now: now) }
        #expect(unexpected?.grant.userID == "auth0|bob")
        #expect(counting.statements == 2, "the code, then its user's key")

        let (none, noKey) = try await awaitedAnswer(counting: counting) { try await ledger.redeemableCode(OpaqueToken.hash("no such code"), now: now) }
        #expect(none == nil && noKey == nil)
        #expect(counting.statements == 1)
        await ledger.journal.close()
    }

    @Test(
        "a code kept by the node that issued it is redeemed there reading nothing, as the store holds it; taken once; redeemed meanwhile at another node, its commit's check refuses it; forgotten when its user is erased; set up as reads without its user's key",
        arguments: ["memory", "PostgreSQL"])
    func keptCode(store: String) async throws {
        // Another node on the same database redeems a code this one keeps (in memory, the same node: the
        // store is its own).
        let database = store == "PostgreSQL" && testServer != nil ? try await TestDatabase() : nil
        guard let storage: any AwaitingStorage = store == "memory" ? MemoryAwaitingStorage() : try database?.storage() else { return }
        let counting = CountingStorage(storage)
        let key = TemporaryKey()
        let ledger = try await AuthLedger.open(Journal.Configuration(keyFile: key.path), storage: counting)
        let dataKey = DataKey.generate()
        ledger.dataKey = dataKey
        var otherNode = ledger
        if let database { otherNode = try await AuthLedger.open(Journal.Configuration(keyFile: key.path), storage: try database.storage()) }
        otherNode.dataKey = dataKey
        let now = Journal.systemClock()

        /// Issues `code` to `user` after a login (its address sealed under a key of the user's own), as
        /// `/authorize` does, and keeps it with the readAhead a request would have.
        func issue(_ code: String, to user: String, keeping keys: SubjectKeysReadAhead? = nil) async throws -> UInt64 {
            let session = SessionSnapshot(
                sessionHash: OpaqueToken.hash(code + "-session"), userID: user, connection: "db", authTime: now, expiresAt: now.adding(seconds: 3_600))
            let grant = CodeGrant(
                clientID: "web-app", redirectURI: "https://app.example/callback", userID: user, scopes: ["openid"], authTime: now,
                expiresAt: now.adding(seconds: 60))
            let sequences = try await ledger.record([
                .loginSucceeded(LoginSucceeded(userID: user, connection: "db", session: session, interaction: nil, clientIP: "198.51.100.7")),
                .codeIssued(CodeIssued(codeHash: OpaqueToken.hash(code), grant: grant, decisionSequence: 1)),
            ])
            let readAhead = try await ledger.query { try ledger.readAhead(subjects: [PersonalData.userSubject(user)], in: $0) }
            ledger.expectRedemption(ofCode: OpaqueToken.hash(code), grant: grant, issuedAt: sequences[1], readAhead: keys ?? readAhead, now: now)
            return sequences[1]
        }
        func redemption(of code: String, to user: String) -> AuthEvent {
            .tokenIssued(
                TokenIssued(
                    grantType: "authorization_code", clientID: "web-app", userID: user, codeHash: OpaqueToken.hash(code), decisionSequence: nil,
                    accessTokenID: "jti-" + code, idTokenID: nil, scopes: ["openid"], audience: nil, organizationID: nil,
                    expiresAt: now.adding(seconds: 3_600), clientIP: "198.51.100.8"))
        }

        // Kept: redeemed reading nothing, and what it answers is what the store holds.
        let issuedAt = try await issue("code-a", to: "auth0|alice")
        #expect(ledger.keptCodeCount == 1)
        counting.reset()
        let (kept, keptKeys) = try await ledger.redeemableCode(OpaqueToken.hash("code-a"), now: now)
        #expect(counting.statements == 0, "a kept code is redeemed without a read")
        #expect(kept == CodeRecord.issued(try #require(kept?.grant), at: issuedAt))
        #expect(ledger.keptCodeCount == 0, "taken")
        let (stored, storedKeys) = try await awaitedAnswer(counting: counting) { try await ledger.redeemableCode(OpaqueToken.hash("code-a"), now: now) }
        #expect(counting.statements == 2, "presented again, it is read from the store: the code, then its user's key")
        #expect(kept == stored, "the kept record is the stored one")
        let alice = PersonalData.userSubject("auth0|alice")
        #expect(keptKeys?.keys[alice] != nil && keptKeys?.keys[alice] == storedKeys?.keys[alice], "with its user's key, as stored")
        #expect(keptKeys?.keys.count == 1, "only its user's key")

        // Redeemed meanwhile (at another node, on PostgreSQL): the kept record still says issued, and the
        // commit's check, against the projections as they stand then, refuses a second redemption.
        _ = try await issue("code-b", to: "auth0|bob")
        try await otherNode.record([redemption(of: "code-b", to: "auth0|bob")], requiring: [CommitCondition.codeUnredeemed(OpaqueToken.hash("code-b"))])
        let (stale, staleKeys) = try await ledger.redeemableCode(OpaqueToken.hash("code-b"), now: now)
        #expect(stale?.status == .issued, "kept as issued")
        await #expect(throws: CommitConditionFailed.self) {
            try await ledger.record(
                [redemption(of: "code-b", to: "auth0|bob")], readAhead: staleKeys, requiring: [.codeUnredeemed(OpaqueToken.hash("code-b"))])
        }
        let (spent, _) = try await awaitedAnswer(counting: counting) { try await ledger.redeemableCode(OpaqueToken.hash("code-b"), now: now) }
        #expect(spent?.status == .redeemed && spent?.tokenIDs == ["jti-code-b"], "one redemption recorded")

        // Its user erased at this node: forgotten, and read again (the user's key gone with the erasure).
        _ = try await issue("code-c", to: "auth0|carol")
        #expect(ledger.keptCodeCount == 1)
        try await ledger.eraseSubject(userID: "auth0|carol", reason: nil)
        #expect(ledger.keptCodeCount == 0, "forgotten")
        let (erased, erasedKeys) = try await awaitedAnswer(counting: counting) { try await ledger.redeemableCode(OpaqueToken.hash("code-c"), now: now) }
        #expect(counting.statements >= 1 && erased?.status == .issued)
        #expect(erasedKeys?.keys[PersonalData.userSubject("auth0|carol")] == nil, "no key: the redemption makes a new one in its commit")

        // Past its expiry a kept code is read from the store: redeemed at another node and presented
        // again here after it expired, it is a replay (which revokes what it issued), not just expired.
        _ = try await issue("code-e", to: "auth0|erin")
        try await otherNode.record([redemption(of: "code-e", to: "auth0|erin")], requiring: [CommitCondition.codeUnredeemed(OpaqueToken.hash("code-e"))])
        let later = now.adding(seconds: 61)
        let (replayed, _) = try await awaitedAnswer(counting: counting) { try await ledger.redeemableCode(OpaqueToken.hash("code-e"), now: later) }
        #expect(counting.statements >= 1, "read from the store")
        #expect(replayed?.status == .redeemed)
        if case .replayed = TokenPolicy.checkRedemption(
            record: replayed, clientID: "web-app", redirectURI: "https://app.example/callback", codeVerifier: nil, now: later)
        {} else {
            Issue.record("a code redeemed elsewhere and presented after its expiry is a replay")
        }

        // Expired codes are forgotten, with their users' keys, when the node is told the time.
        _ = try await issue("code-f", to: "auth0|frank")
        #expect(ledger.keptCodeCount == 1)
        ledger.forgetExpiredCodes(now: now.adding(seconds: 30))
        #expect(ledger.keptCodeCount == 1, "not expired yet")
        ledger.forgetExpiredCodes(now: later)
        #expect(ledger.keptCodeCount == 0, "forgotten once expired")

        // Without its user's key (the user had none before the request): its reads are set up instead.
        let expectedBefore = ledger.journal.reader.hints.expectedCount
        _ = try await issue("code-d", to: "auth0|dave", keeping: SubjectKeysReadAhead())
        #expect(ledger.keptCodeCount == 0)
        #expect(ledger.journal.reader.hints.expectedCount == expectedBefore + 1)

        if otherNode !== ledger { await otherNode.journal.close() }
        await ledger.journal.close()
    }

    @Test("a node whose reads are not awaited (a store read in place) keeps no code: its redemption reads as cheaply")
    func noCodeKeptInPlace() async throws {
        let key = TemporaryKey()
        let ledger = try await AuthLedger.open(Journal.Configuration(keyFile: key.path), storage: InMemoryJournalStorage())
        let now = Journal.systemClock()
        let grant = CodeGrant(
            clientID: "web-app", redirectURI: "https://app.example/callback", userID: "auth0|alice", scopes: ["openid"], authTime: now,
            expiresAt: now.adding(seconds: 60))
        let sequences = try await ledger.record([.codeIssued(CodeIssued(codeHash: OpaqueToken.hash("code-a"), grant: grant, decisionSequence: 1))])
        ledger.expectRedemption(ofCode: OpaqueToken.hash("code-a"), grant: grant, issuedAt: sequences[0], readAhead: SubjectKeysReadAhead(), now: now)
        #expect(ledger.keptCodeCount == 0)
        #expect(try await ledger.redeemableCode(OpaqueToken.hash("code-a"), now: now).code == CodeRecord.issued(grant, at: sequences[0]))
        await ledger.journal.close()
    }

    @Test("a reader of more pages than one statement may hold is answered by the waited read instead", arguments: ["memory", "PostgreSQL"])
    func tooManyPagesWait(store: String) async throws {
        try await withFilledJournal(store) { reader, counting in
            // Five walks of one entry each, from five places: five pages.
            let read: @Sendable (JournalSnapshot) throws -> [String] = { snapshot in
                let markers = try snapshot.projection("markers")
                var seen: [String] = []
                for start in stride(from: 0, to: 500, by: 100) {
                    try markers.forEach(from: Array(marker(start).utf8)) { key, _ in
                        seen.append(String(decoding: key, as: UTF8.self))
                        return false
                    }
                }
                return seen
            }
            let (answer, didWait) = try await answerPastTheLimits(of: read, by: reader, counting: counting)
            #expect(answer == ["m0000", "m0100", "m0200", "m0300", "m0400"])
            #expect(didWait)
            #expect(counting.statements == JournalReader.awaitedPageLimit, "a statement for each page up to the limit")
            #expect(counting.latestReads(of: "entries") == JournalReader.awaitedPageLimit)
        }
    }

    @Test("what the reader throws is thrown, not answered by the waited read", arguments: ["memory", "PostgreSQL"])
    func readerErrorsPropagate(store: String) async throws {
        struct Refused: Error {}
        try await withFilledJournal(store) { reader, counting in
            await #expect(throws: Refused.self) {
                try await awaitedAnswer(of: { snapshot -> Int in
                    _ = try snapshot.projection("markers").get(Array("m0001".utf8))
                    throw Refused()
                }, by: reader, counting: counting)
            }
        }
    }

    @Test("a store that cannot await its reads is read by waiting")
    func storeThatWaits() async throws {
        let key = TemporaryKey()
        let storage = InMemoryJournalStorage()
        let journal = try Journal.open(Journal.Configuration(keyFile: key.path), storage: storage)
        try await journal.append(EventDraft(type: "test.event", payload: Array("{}".utf8)))
        let answer = try await journal.reader.read(awaiting: { try $0.head.sequence }) { 99 }
        #expect(answer == 99)
        await journal.close()
    }
}

/// Awaited reads on PostgreSQL only: one snapshot across round trips; stores that must not await.
@Suite(
    "PostgreSQL: awaited reads see one snapshot, and only a one-server store awaits",
    .enabled(if: testServer != nil, "AUTHLEDGER_TEST_POSTGRES names no PostgreSQL server"))
struct PostgresAwaitedReadTests {
    @Test("an answer is of one snapshot: a write committed between a reader's statements is read whole by the next, and a dependent read follows it")
    func oneSnapshot() async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        var configuration = Journal.Configuration(keyFile: key.path)
        configuration.projections = ["markers"]
        let journal = try Journal.open(configuration, storage: try database.storage())
        // `pointer` names the key to read next; each key holds a value.
        func write(_ entries: [(String, String)]) async throws {
            _ = try await journal.transact { transaction in
                for (key, value) in entries { try transaction.projection("markers").put(Array(value.utf8), for: Array(key.utf8)) }
                return try transaction.append(EventDraft(type: "test.event", payload: Array("{}".utf8))).sequence
            }
        }
        try await write([("pointer", "x"), ("x", "x1"), ("y", "y1")])
        let writer = journal
        let counting = CountingStorage(try database.storage()) { statements in
            // After the reader's first statement (it read the pointer), another writer moves the pointer and
            // changes both values.
            guard statements == 1 else { return }
            _ = try await writer.transact { transaction in
                let markers = try transaction.projection("markers")
                try markers.put(Array("y".utf8), for: Array("pointer".utf8))
                try markers.put(Array("x2".utf8), for: Array("x".utf8))
                try markers.put(Array("y2".utf8), for: Array("y".utf8))
                return try transaction.append(EventDraft(type: "test.event", payload: Array("{}".utf8))).sequence
            }
        }
        let reader = try JournalReader(storage: counting, projections: ["markers"])
        defer { reader.close() }
        let read: @Sendable (JournalSnapshot) throws -> [String] = { snapshot in
            let markers = try snapshot.projection("markers")
            let pointer = String(decoding: try markers.get(Array("pointer".utf8)) ?? [], as: UTF8.self)
            return [pointer, String(decoding: try markers.get(Array(pointer.utf8)) ?? [], as: UTF8.self)]
        }
        let seen = try await awaitedAnswer(of: read, by: reader, counting: counting)
        // Read apart, the pointer of before and the value of after would be ["x", "x2"].
        #expect(seen == ["y", "y2"], "the pointer and the value it points to, both as of the write")
        #expect(counting.statements == 3, "the pointer; it and x (the pointer moved: x unused); it and y")
        #expect(counting.latestReads.count == 2)
        await journal.close()
    }

    @Test("a store of several servers, or one that asks for a primary, does not await its reads; a one-server store does")
    func whichStoresAwait() async throws {
        let database = try await TestDatabase()
        let storage = try database.storage()
        #expect(storage.awaitsReads)
        storage.close()
        var address = database.address
        address.endpoints.append(address.endpoints[0])
        let listed = try PostgresStorage(address: address)
        #expect(!listed.awaitsReads)
        listed.close()
        address = database.address
        address.sessionTarget = .primary
        let primary = try PostgresStorage(address: address)
        #expect(!primary.awaitsReads)
        primary.close()
    }

    @Test("a statement of awaited reads whose reply does not come within the awaited reply deadline fails the read, and the pool rests; its connection is let go of, and once the rest is over reads are awaited again")
    func replyDeadline() async throws {
        let key = TemporaryKey()
        let (database, journal) = try await journalOfOneEvent(key: key)
        let storage = try database.storage(awaitedReplyDeadline: .seconds(1))
        let reader = try JournalReader(storage: storage)
        defer { reader.close() }
        let head: @Sendable (JournalSnapshot) throws -> UInt64 = { try $0.head.sequence }
        let waited = Mutex(0)
        let readByWaiting: () async throws -> UInt64 = {
            waited.withLock { $0 += 1 }
            return try reader.read(head)
        }
        #expect(try await reader.read(awaiting: head, otherwise: readByWaiting) == 2, "awaited, with a connection kept for the next")
        #expect(waited.withLock { $0 } == 0)
        // Another session locks the journal's table whole: a read of it waits for the lock, and no reply
        // comes (as on a connection gone half-open, which a test on one host cannot make).
        var configuration = PostgresConnection.Configuration(
            host: database.address.host, port: database.address.port, username: database.address.user,
            password: database.address.password, database: database.address.database, tls: .disable)
        configuration.options.connectTimeout = .seconds(5)
        let locker = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Logger(label: "test"))
        try await locker.query("BEGIN", logger: Logger(label: "test"))
        try await locker.query("LOCK TABLE authledger_entries IN ACCESS EXCLUSIVE MODE", logger: Logger(label: "test"))
        let started = ContinuousClock.now
        var failure: (any Error)?
        do {
            _ = try await reader.read(awaiting: head, otherwise: readByWaiting)
        } catch {
            failure = error
        }
        let took = ContinuousClock.now - started
        let resting = !storage.awaitsReads
        try await locker.query("ROLLBACK", logger: Logger(label: "test"))
        try await locker.close()
        let error = try #require(failure, "the read was answered, though its table was locked")
        #expect("\(error)".contains("no reply within"), "\(error)")
        #expect(took >= .milliseconds(950), "not before the deadline: \(took)")
        #expect(took < .seconds(30), "at the awaited reads' deadline (1 s here), not the writers' 40 s: \(took)")
        #expect(waited.withLock { $0 } == 0, "the request that led the statement fails; it does not read again by waiting")
        #expect(resting, "the pool rests")
        try await Task.sleep(for: .seconds(2.2))
        #expect(storage.awaitsReads, "and serves again after its rest")
        #expect(try await reader.read(awaiting: head, otherwise: readByWaiting) == 2, "on a new connection")
        #expect(waited.withLock { $0 } == 0)
        await journal.close()
    }

    @Test("no connection of the pool within the lease wait: the read waits instead, at once, and the pool rests")
    func leaseGivenUp() async throws {
        let key = TemporaryKey()
        let (database, journal) = try await journalOfOneEvent(key: key)
        let storage = try PostgresStorage(address: database.address, maximumConnections: 1)
        let reader = try JournalReader(storage: storage)
        let pool = try #require(storage.awaitedReads)
        defer { reader.close() }
        // The pool's one connection, opened first (on a busy machine that may take longer than the lease
        // wait, and a lease given up makes the pool rest), then held for 3 s.
        let opening = ContinuousClock.now
        while (try? await pool.withConnection { _ in true }) != true, ContinuousClock.now - opening < .seconds(20) {
            try await Task.sleep(for: .milliseconds(200))
        }
        // The connection is held until the read below has been answered: a read that waited for it to come
        // back would never be (the test would hang, and fail at the holder's 60 s).
        let (released, release) = AsyncStream<Void>.makeStream()
        let timeLimit = Task {
            try await Task.sleep(for: .seconds(60))
            release.finish()
        }
        // A lease given up on a busy machine (the pool then rests) is tried again; a holder that ends
        // without its connection ends its stream, so that the test never waits for it for good.
        var holding: Task<Bool, any Error>?
        for _ in 1...attemptsOnABusyMachine {
            let (held, holder) = AsyncStream<Void>.makeStream()
            let attempt = Task {
                defer { holder.finish() }
                // As a statement holds it: a reader takes a connection for each statement, not for its read.
                return try await pool.withConnection { _ in
                    holder.yield()
                    for await _ in released.prefix(1) {}
                    return true
                }
            }
            var leased = false
            for await _ in held.prefix(1) { leased = true }
            if leased {
                holding = attempt
                break
            }
            _ = try? await attempt.value
            try await Task.sleep(for: .milliseconds(2_100))
        }
        let holder = try #require(holding, "the pool's one connection was never leased")
        // A lease given up while the connection was opened (above) leaves the pool resting for 2 s, though
        // a later lease succeeded: a read begun then would not wait for the pool at all.
        let resting = ContinuousClock.now
        while !storage.awaitsReads, ContinuousClock.now - resting < .seconds(5) {
            try await Task.sleep(for: .milliseconds(50))
        }
        try #require(storage.awaitsReads, "the pool still rests 5 s after its one connection was leased")
        let started = ContinuousClock.now
        let gaveUp = Mutex<(after: Duration, resting: Bool)?>(nil)
        let head = try await reader.read(awaiting: { try $0.head.sequence }) {
            gaveUp.withLock { $0 = (ContinuousClock.now - started, !storage.awaitsReads) }
            return try reader.read { try $0.head.sequence }
        }
        release.finish()
        timeLimit.cancel()
        #expect(head == 2)
        let gaveUpAfter = try #require(gaveUp.withLock { $0 }, "read on the store's own connection, while the pool's one was held")
        // Not before the lease wait (a timer does not fire early); the upper bound is the holder's release.
        #expect(gaveUpAfter.after >= .milliseconds(950), "given up after the lease wait (1 s): \(gaveUpAfter.after)")
        #expect(gaveUpAfter.resting, "the pool rests")
        #expect(try await holder.value)
        try await Task.sleep(for: .seconds(2))
        #expect(storage.awaitsReads, "and serves again after its rest")
        await journal.close()
    }

    @Test("a tenant applied at one node is served by another without a restart, read by a task of its own")
    func configurationReachesOtherNode() async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let nodeA = try await AuthLedger.open(Journal.Configuration(keyFile: key.path), storage: try database.storage())
        let nodeB = try await AuthLedger.open(Journal.Configuration(keyFile: key.path), storage: try database.storage())
        let dataKey = DataKey.generate()  // the users' personal values are sealed, and both nodes open them
        nodeA.dataKey = dataKey
        nodeB.dataKey = dataKey
        #expect(nodeB.configuration.clients[DemoTenant.clientID] == nil)
        try await nodeA.applyTenant(DemoTenant.configuration(issuer: "https://a.example/"), hasher: Argon2idHasher.minimal)
        // The configuration lives 1 s, then a read of it: 1.1 s measured alone. The bound is generous, so
        // that the test holds on a busy machine (several seconds under ThreadSanitizer with every suite
        // running); what it checks is that node B is told at all, with nothing restarted.
        let applied = ContinuousClock.now
        var seen = false
        while !seen, ContinuousClock.now - applied < .seconds(60) {
            seen = nodeB.configuration.clients[DemoTenant.clientID] != nil
            if !seen { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(seen, "node B serves the new tenant")
        await nodeA.journal.close()
        await nodeB.journal.close()
    }

    @Test("waits for PostgreSQL on a task's thread are counted: none for a query or a commit, one for each reply a task waits for")
    func waitsInTasksCounted() async throws {
        let database = try await TestDatabase()
        let key = TemporaryKey()
        let storage = try database.storage()
        let ledger = try await AuthLedger.open(Journal.Configuration(keyFile: key.path), storage: storage)
        ledger.dataKey = DataKey.generate()
        let before = storage.waitsInTasks
        _ = try await ledger.query { try $0.session("no such session") }
        _ = try await ledger.storedHead()
        try await ledger.record { recorder in
            try recorder.append(
                .loginFailed(
                    LoginFailed(
                        username: "hmac-sha256:0", connection: "db", reason: .unknownUser, interaction: nil, clientIP: "198.51.100.1",
                        at: Journal.systemClock())))
        }
        #expect(storage.waitsInTasks == before, "awaited reads, and the writer's waits on its own thread")
        _ = try ledger.read { try $0.session("no such session") }  // a synchronous read, from this test's task
        #expect(storage.waitsInTasks > before)
        await ledger.journal.close()
    }

    @Test("reads of many requests at once share round trips: every request is answered its own values and counts, as a waited read answers them")
    func valueReadsGathered() async throws {
        let database = try await TestDatabase()
        let storage = try database.storage()
        let (journal, key) = try await filledJournal(on: storage)
        defer { _ = key }
        // Not closed: the journal closes the store.
        let reader = try JournalReader(storage: storage, projections: ["markers"])
        let awaited = try await withThrowingTaskGroup(of: Int.self) { group in
            for request in 0..<32 {
                group.addTask {
                    var awaited = 0
                    for round in 0..<5 {
                        let indexes = (0..<3).map { (request * 37 + round * 11 + $0 * 101) % markerCount }
                        // Values, and for every other request a count: statements of values only and of
                        // other reads, gathered alike.
                        let counts = request % 2 == 1
                        let read: @Sendable (JournalSnapshot) throws -> [String] = { snapshot in
                            let markers = try snapshot.projection("markers")
                            let values = try indexes.map { String(decoding: try markers.get(Array(marker($0).utf8)) ?? [], as: UTF8.self) }
                            return counts ? values + ["\(try markers.count)"] : values
                        }
                        do {
                            // Known ahead, as a request's reads are (a hint): one statement of three values.
                            let values = try await reader.read(awaiting: read, hint: .learned(Array("r\(request)".utf8))) { throw AnsweredByWaiting() }
                            #expect(values == indexes.map { "seen \($0)" } + (counts ? ["\(markerCount)"] : []))
                            awaited += 1
                        } catch is AnsweredByWaiting {
                            // A busy machine: no connection in time (the pool rests); not what is tested.
                        }
                    }
                    return awaited
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(awaited > 0)
        let gathered = storage.gatheredReads
        #expect(gathered.statements >= awaited)
        #expect(gathered.roundTrips < gathered.statements, "\(gathered.roundTrips) round trips carried \(gathered.statements) statements")
        #expect(storage.awaitedRoundTrips == gathered.roundTrips)
        await journal.close()
    }

    @Test("a connection is kept between statements: one after another lease one connection, statements at once lease one each, and no more are leased after")
    func connectionsKept() async throws {
        try await withStoreOfOneEvent(maximumConnections: 4) { storage in
            // One after another: the first read leases, the others take the connection it kept. (A lease not
            // granted in time on a busy machine makes the pool rest; the read is then tried again.)
            var answered = 0
            for _ in 0..<(10 + attemptsOnABusyMachine) where answered < 10 {
                do {
                    #expect(try await storage.readAwaiting(readHead))
                    answered += 1
                } catch is ReadNotAwaited {
                    try await Task.sleep(for: .milliseconds(2_100))
                }
            }
            #expect(answered == 10)
            #expect(storage.awaitedReadLeases == 1, "\(storage.awaitedReadLeases) leases for 10 reads in turn")
            // Three at once, each holding a connection of the pool until all three have one (a reader takes one
            // for a statement, not for its whole read: the pool is held here as a statement holds it): three
            // connections, two of them leased now; afterwards the three are kept, and reads in turn lease
            // nothing more. (A lease given up on a busy machine is not counted: only those the client granted.)
            let pool = try #require(storage.awaitedReads)
            let (gate, open) = AsyncStream<Void>.makeStream()
            let holding = HeldCount()
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        // A read that never got a connection opens the gate too: the others must not wait for it.
                        defer { open.finish() }
                        for _ in 1..<attemptsOnABusyMachine {
                            do {
                                return try await pool.withConnection { connection in
                                    if holding.count.withLock({ $0 += 1; return $0 }) == 3 { open.finish() }
                                    for await _ in gate {}
                                    return try await readHead(PostgresAwaitedRead(connection: connection, logger: Logger(label: "test")))
                                }
                            } catch is ReadNotAwaited {
                                try await Task.sleep(for: .milliseconds(2_100))
                            }
                        }
                        return false
                    }
                }
                for try await answer in group { #expect(answer) }
            }
            #expect(storage.awaitedReadLeases == 3)
            for _ in 0..<5 { #expect(try await storage.readAwaiting(readHead)) }
            #expect(storage.awaitedReadLeases == 3, "kept connections serve the reads after")
        }
    }

    @Test("more statements at once than connections: those waiting for the client get the connections given back, and none gives up")
    func moreReadsThanConnections() async throws {
        // The lease wait long enough that only a read the client never serves gives up: a busy machine
        // (ThreadSanitizer, every suite at once) can take more than the default second to hand a
        // connection on.
        try await withStoreOfOneEvent(maximumConnections: 2, awaitedLeaseWait: .seconds(20)) { storage in
            // Six readers, five statements each, on two connections (the pool used as statements use it:
            // the store gathers its requests' reads into fewer statements than requests). Kept by whichever
            // statement came next, a connection would never reach those queued at the client, which would
            // give up.
            let pool = try #require(storage.awaitedReads)
            let givenUp = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        var givenUp = 0
                        for _ in 0..<5 {
                            do {
                                let answered = try await pool.withConnection { connection in
                                    try await readHead(PostgresAwaitedRead(connection: connection, logger: Logger(label: "test")))
                                }
                                #expect(answered)
                            } catch is ReadNotAwaited {
                                givenUp += 1
                            }
                        }
                        return givenUp
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(givenUp == 0, "\(givenUp) reads gave up waiting for a connection")
            #expect(storage.awaitedReadLeases > 2, "connections went back to the client for the reads waiting there")
        }
    }

    @Test("connections the server closed: an awaited read fails or succeeds at once, and the next one is served")
    func connectionsClosed() async throws {
        let key = TemporaryKey()
        let (database, journal) = try await journalOfOneEvent(key: key)
        // A reply deadline longer than the bound below: a read held until it would fail the test.
        let storage = try database.storage(awaitedReplyDeadline: .seconds(30))
        let reader = try JournalReader(storage: storage)
        defer { reader.close() }
        let head: @Sendable (JournalSnapshot) throws -> UInt64 = { try $0.head.sequence }
        #expect(try await reader.read(awaiting: head) { 0 } == 2)
        try await database.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        try await Task.sleep(for: .milliseconds(500))
        let started = ContinuousClock.now
        _ = try? await reader.read(awaiting: head) { 0 }
        // Not held until the reply deadline (30 s here), nor for good; 20 s leaves room for a busy machine.
        #expect(ContinuousClock.now - started < .seconds(20))
        // A read that failed makes the pool rest (2 s): the reads meanwhile wait (the 0 of `otherwise`).
        var served: UInt64 = 0
        let failedAt = ContinuousClock.now
        while served == 0, ContinuousClock.now - failedAt < .seconds(15) {
            served = (try? await reader.read(awaiting: head) { 0 }) ?? 0
            if served == 0 { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(served == 2, "a new connection of the pool serves, awaited")
        await journal.close()
    }
}

/// How many reads hold a connection at once, counted from their tasks.
private final class HeldCount: Sendable {
    let count = Mutex(0)
}

/// A read of a journal's last event, on an awaited connection: true when there is one.
private let readHead: @Sendable (any AwaitedReadConnection) async throws -> Bool = { connection in
    try await connection.answers(to: [.last(table: StorageTable(name: "events"))]).count == 1
}

/// Runs `body` with a store of `maximumConnections` (and the lease wait of its awaited reads) on a
/// journal of one event.
private func withStoreOfOneEvent(
    maximumConnections: Int, awaitedLeaseWait: TimeAmount = .seconds(1), _ body: (PostgresStorage) async throws -> Void
) async throws {
    let key = TemporaryKey()
    let (database, journal) = try await journalOfOneEvent(key: key)
    let storage = try PostgresStorage(address: database.address, maximumConnections: maximumConnections, awaitedLeaseWait: awaitedLeaseWait)
    defer { storage.close() }
    try await body(storage)
    await journal.close()
}

/// How many times a test asks for an awaited read that the store could not begin (``ReadNotAwaited``):
/// on a machine busy enough (ThreadSanitizer, every suite at once on 2 cores), a lease can take longer
/// than the store's wait for it, or a connection fail, and the pool then rests 2 s (a warning logged says
/// why). A store that never awaits still fails every attempt.
private let attemptsOnABusyMachine = 5

/// The way the waited read is told apart in the tests: an awaited read answered by it throws this.
private struct AnsweredByWaiting: Error {}

/// `body`'s answer, read awaiting: a read the store could not begin awaited is tried again after the
/// pool's rest (``attemptsOnABusyMachine``), with `counting`'s counts reset and `setUp` run again before
/// each attempt (what an attempt took, such as expected reads, is gone after it); one never awaited is an
/// issue.
private func awaitedAnswer<R: Sendable>(
    of body: @Sendable (JournalSnapshot) throws -> R, by reader: JournalReader, counting: CountingStorage, hint: AwaitedReadHint? = nil,
    setUp: () -> Void = {}
) async throws -> R {
    try await awaitedAnswer(counting: counting) {
        try await reader.read(awaiting: body, hint: hint) { throw AnsweredByWaiting() }
    } setUp: {
        setUp()
    }
}

/// What `read` answers, tried again as ``awaitedAnswer(of:by:counting:hint:setUp:)`` tries, when one of
/// its reads could not begin awaited (`counting` saw ``ReadNotAwaited``, or `read` threw
/// ``AnsweredByWaiting``): for a read made by a layer above the reader, which answers by waiting then.
private func awaitedAnswer<R: Sendable>(
    counting: CountingStorage, _ read: () async throws -> R, setUp: () -> Void = {}
) async throws -> R {
    for attempt in 1...attemptsOnABusyMachine {
        setUp()
        counting.reset()
        do {
            let answer = try await read()
            if counting.readsNotBegun == 0 { return answer }
        } catch is AnsweredByWaiting {}
        guard attempt < attemptsOnABusyMachine else { break }
        try await Task.sleep(for: .milliseconds(2_100))
    }
    Issue.record("never read awaiting, in \(attemptsOnABusyMachine) attempts")
    throw AnsweredByWaiting()
}

/// `body`'s answer, read awaiting, and whether the waited read gave it (as it must when `body` reads past
/// the limits): tried again, after the pool's rest, while the store could not begin an awaited read at
/// all (no statement made; see ``attemptsOnABusyMachine``).
private func answerPastTheLimits<R: Sendable>(
    of body: @escaping @Sendable (JournalSnapshot) throws -> R, by reader: JournalReader, counting: CountingStorage
) async throws -> (answer: R, waited: Bool) {
    func attempt() async throws -> (answer: R, waited: Bool) {
        counting.reset()
        let waitedFor = Atomic<Bool>(false)
        let answer = try await reader.read(awaiting: body) {
            waitedFor.store(true, ordering: .relaxed)
            return try reader.read(body)
        }
        return (answer, waitedFor.load(ordering: .relaxed))
    }
    for _ in 1..<attemptsOnABusyMachine {
        let answered = try await attempt()
        if counting.statements > 0 { return answered }
        try await Task.sleep(for: .milliseconds(2_100))
    }
    return try await attempt()
}

/// A new database of the test server holding a journal of two events (its genesis and one more), and
/// the journal, open.
private func journalOfOneEvent(key: TemporaryKey) async throws -> (TestDatabase, Journal) {
    let database = try await TestDatabase()
    let journal = try database.openJournal(key: key.path)
    try await journal.append(EventDraft(type: "test.event", payload: Array("{}".utf8)))
    return (database, journal)
}

private let markerCount = 1_300

/// A reader of three dependent keys, each key's value naming the next: m(n), then m(2n), then m(4n).
private func markerChain(from start: Int) -> @Sendable (JournalSnapshot) throws -> [String] {
    { snapshot in
        let markers = try snapshot.projection("markers")
        var index = start
        var seen: [String] = []
        for _ in 0..<3 {
            let value = String(decoding: try markers.get(Array(marker(index).utf8)) ?? [], as: UTF8.self)
            seen.append(value)
            index = 2 * (Int(value.split(separator: " ").last ?? "") ?? 0)
        }
        return seen
    }
}

private func marker(_ index: Int) -> String { "m" + String(repeating: "0", count: 4 - String(index).count) + String(index) }

private struct Answers: Equatable, Sendable {
    let head: UInt64
    let marker: [UInt8]?
    let walked: [String]
    let count: Int
}

/// A journal on `storage` with 1,300 entries in projection `markers` ("seen N" under ``marker(_:)`` N), and
/// the key it signs with (removed when released).
private func filledJournal(on storage: any JournalStorage) async throws -> (Journal, TemporaryKey) {
    let key = TemporaryKey()
    var configuration = Journal.Configuration(keyFile: key.path)
    configuration.projections = ["markers"]
    let journal = try Journal.open(configuration, storage: storage)
    _ = try await journal.transact { transaction in
        for index in 0..<markerCount {
            try transaction.projection("markers").put(Array("seen \(index)".utf8), for: Array(marker(index).utf8))
        }
        return try transaction.append(EventDraft(type: "test.event", payload: Array("{}".utf8))).sequence
    }
    return (journal, key)
}

/// A journal with 1,300 entries in projection `markers` on a new store, read through a ``CountingStorage``.
private func withFilledJournal(
    _ store: String, _ body: (JournalReader, CountingStorage) async throws -> Void
) async throws {
    guard let storage = try await awaitingStorage(store) else { return }
    let (journal, key) = try await filledJournal(on: storage)
    defer { _ = key }
    let counting = CountingStorage(storage)
    // Not closed: the journal closes the store.
    let reader = try JournalReader(storage: counting, projections: ["markers"])
    try await body(reader, counting)
    await journal.close()
}

/// A new, empty awaiting store: in memory, or on the PostgreSQL test server (`nil` when none is named).
private func awaitingStorage(_ store: String) async throws -> (any AwaitingStorage)? {
    switch store {
    case "memory": return MemoryAwaitingStorage()
    default:
        guard testServer != nil else { return nil }
        return try await TestDatabase().storage()
    }
}

/// An awaiting store that keeps its bytes in `base`.
private protocol ForwardingStorage: AwaitingStorage {
    var base: any JournalStorage { get }
}

extension ForwardingStorage {
    var location: String { base.location }
    var isShared: Bool { base.isShared }
    func openTables(_ names: [String], create: Bool) throws -> [String: StorageTable] { try base.openTables(names, create: create) }
    func read<R>(_ body: (any StorageReadTransaction) throws -> R) throws -> R { try base.read(body) }
    func beginWrite() throws -> any StorageWriteTransaction { try base.beginWrite() }
    func recover(from error: any Error) -> Bool { base.recover(from: error) }
    func close() { base.close() }
}

/// A store in memory whose reads are awaited: each statement's reads in one read transaction of it.
private final class MemoryAwaitingStorage: ForwardingStorage, @unchecked Sendable {
    let inner = InMemoryJournalStorage()
    var base: any JournalStorage { inner }
    var awaitsReads: Bool { true }

    func readAwaiting<R: Sendable>(_ body: (any AwaitedReadConnection) async throws -> R) async throws -> R {
        try await body(Lookups(inner: inner))
    }

    /// Every statement's reads in one read transaction of the store.
    private final class Lookups: AwaitedReadConnection {
        let inner: InMemoryJournalStorage
        init(inner: InMemoryJournalStorage) { self.inner = inner }
        func answers(to reads: [AwaitedRead]) async throws -> [AwaitedReadAnswer] {
            try inner.read { transaction in
                try reads.map { read -> AwaitedReadAnswer in
                    switch read {
                    case .value(let table, let key): return .value(try transaction.get(key, in: table))
                    case .entries(let table, let start, let limit):
                        var entries: [([UInt8], [UInt8])] = []
                        try transaction.forEach(in: table, from: start.isEmpty ? nil : start, limit: limit) {
                            entries.append(($0, $1))
                            return true
                        }
                        return .entries(entries)
                    case .last(let table): return .last(try transaction.last(in: table))
                    case .count(let table): return .count(try transaction.count(in: table))
                    }
                }
            }
        }
    }
}

/// Wraps an awaiting store: counts its awaited statements and keeps the reads of the latest, and runs
/// `afterStatement` (with the number of statements so far) after each.
private final class CountingStorage: ForwardingStorage, @unchecked Sendable {
    let inner: any AwaitingStorage
    let afterStatement: @Sendable (Int) async throws -> Void
    private let counts = Mutex<(statements: Int, latest: [AwaitedRead], notBegun: Int)>((0, [], 0))

    init(_ inner: any AwaitingStorage, afterStatement: @escaping @Sendable (Int) async throws -> Void = { _ in }) {
        self.inner = inner
        self.afterStatement = afterStatement
    }

    /// The statements made since the last ``reset()``.
    var statements: Int { counts.withLock { $0.statements } }

    /// The reads of the latest statement.
    var latestReads: [AwaitedRead] { counts.withLock { $0.latest } }

    /// How many reads of the latest statement are of `kind` (`value`, `entries`, `last`, `count`).
    func latestReads(of kind: String) -> Int {
        latestReads.count { read in
            switch read {
            case .value: kind == "value"
            case .entries: kind == "entries"
            case .last: kind == "last"
            case .count: kind == "count"
            }
        }
    }

    /// The awaited reads the store could not begin (``ReadNotAwaited``) since the last ``reset()``.
    var readsNotBegun: Int { counts.withLock { $0.notBegun } }

    func reset() { counts.withLock { $0 = (0, [], 0) } }

    fileprivate func counted(_ reads: [AwaitedRead]) async throws {
        let total = counts.withLock { counts in
            counts.statements += 1
            counts.latest = reads
            return counts.statements
        }
        try await afterStatement(total)
    }

    var base: any JournalStorage { inner }
    var awaitsReads: Bool { inner.awaitsReads }

    func readAwaiting<R: Sendable>(_ body: (any AwaitedReadConnection) async throws -> R) async throws -> R {
        do {
            return try await inner.readAwaiting { connection in try await body(Counted(inner: connection, storage: self)) }
        } catch let error as ReadNotAwaited {
            counts.withLock { $0.notBegun += 1 }
            throw error
        }
    }

    private final class Counted: AwaitedReadConnection {
        let inner: any AwaitedReadConnection
        let storage: CountingStorage
        init(inner: any AwaitedReadConnection, storage: CountingStorage) {
            self.inner = inner
            self.storage = storage
        }
        func answers(to reads: [AwaitedRead]) async throws -> [AwaitedReadAnswer] {
            let answers = try await inner.answers(to: reads)
            try await storage.counted(reads)
            return answers
        }
    }
}
