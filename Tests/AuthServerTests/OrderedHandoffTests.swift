import AuthCore
import LedgerJournal
import Synchronization
import Testing

@testable import AuthJournal

@Suite("OrderedHandoff: a rebuild's decoding and folding on two threads, in order, errors in order")
struct OrderedHandoffTests {
    struct Failure: Error, Equatable {
        var at: Int
    }

    @Test("every batch reaches the consumer once, in order, and the consumer's state comes back", arguments: [1, 2, 4])
    func inOrder(capacity: Int) throws {
        let folded = try OrderedHandoff<Int>.run(capacity: capacity, state: [Int]()) { handOff in
            for start in stride(from: 0, to: 10_000, by: 7) {
                let backlog = try #require(handOff(Array(start..<min(start + 7, 10_000))))
                #expect((1...capacity).contains(backlog), "the batches waiting, this one included")
            }
            #expect(handOff([]) != nil, "an empty batch is no end")
        } consume: { seen, batch in
            seen.append(contentsOf: batch)
        }
        #expect(folded == Array(0..<10_000))
    }

    @Test("nothing produced: the consumer's state as it was")
    func empty() throws {
        let folded = try OrderedHandoff<Int>.run(state: 42) { _ in } consume: { state, _ in state = 0 }
        #expect(folded == 42)
    }

    @Test("the consumer fails: the producer is told to stop, nothing after the failing batch is consumed, and its error is thrown")
    func consumerFails() {
        let consumed = Mutex<[Int]>([])
        let refusedAfter = Mutex<Int?>(nil)
        #expect(throws: Failure(at: 50)) {
            _ = try OrderedHandoff<Int>.run(capacity: 2, state: ()) { handOff in
                for value in 0..<100_000 where handOff([value]) == nil {
                    refusedAfter.withLock { $0 = value }
                    return
                }
            } consume: { _, batch in
                if batch == [50] { throw Failure(at: 50) }
                consumed.withLock { $0.append(contentsOf: batch) }
            }
        }
        #expect(consumed.withLock { $0 } == Array(0..<50))
        let stoppedAt = refusedAfter.withLock { $0 }
        #expect(stoppedAt != nil, "the producer was told to stop")
    }

    @Test("the producer fails: what it handed off before is consumed, then its error is thrown")
    func producerFails() {
        let consumed = Mutex<[Int]>([])
        #expect(throws: Failure(at: 30)) {
            _ = try OrderedHandoff<Int>.run(capacity: 1, state: ()) { handOff in
                for value in 0..<30 { _ = handOff([value]) }
                throw Failure(at: 30)
            } consume: { _, batch in
                consumed.withLock { $0.append(contentsOf: batch) }
            }
        }
        #expect(consumed.withLock { $0 } == Array(0..<30))
    }

    @Test("both fail: the consumer's error, which concerns an earlier element, is the one thrown")
    func bothFail() {
        #expect(throws: Failure(at: 5)) {
            _ = try OrderedHandoff<Int>.run(capacity: 4, state: ()) { handOff in
                for value in 0..<10 { _ = handOff([value]) }
                throw Failure(at: 10)
            } consume: { _, batch in
                if batch == [5] { throw Failure(at: 5) }
            }
        }
    }

    @Test("the folding thread's share of decoding: one eighth more while it waits for work, one less while the decoder waits for room, within 0...8")
    func decodingShare() {
        let balanced = ProjectionRebuild.DecodingShare.balanced
        let full = OrderedHandoff<Int>.defaultCapacity
        #expect(balanced.initialEighths == 4)
        #expect(balanced.adjusted(4, backlog: 1) == 5)
        #expect(balanced.adjusted(8, backlog: 0) == 8)
        #expect(balanced.adjusted(4, backlog: full) == 3)
        #expect(balanced.adjusted(0, backlog: full) == 0)
        #expect(balanced.adjusted(4, backlog: 2) == 4)
        #expect(ProjectionRebuild.DecodingShare.fixed(3).adjusted(3, backlog: 0) == 3)
        #expect(ProjectionRebuild.DecodingShare.fixed(12).initialEighths == 8)
        #expect(ProjectionRebuild.DecodingShare.fixed(-1).initialEighths == 0)
    }

    @Test("the folding thread completes a request's decision and code from the events it folded just before, as the reader does; holding none, it says so")
    func recentSources() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            for state in ["one", "two"] {
                let page = try await browser.authorize(webAppParameters(state: state))
                #expect(page.location?.hasPrefix("https://client.test/callback?code=") == true)
            }
        }
        let reader = try JournalReader(directory: harness.directory + "/journal")
        defer { reader.close() }
        try reader.read { snapshot in
            var byReader = AuthEventReader(snapshot: snapshot)
            // The server's request, decision and code each take values from the one just before: one held
            // is enough, and the ring wraps at every request or decision with one or two.
            var held = [1, 2, ProjectionRebuild.RecentSources.defaultCapacity].map { ProjectionRebuild.RecentSources(capacity: $0) }
            var none = ProjectionRebuild.RecentSources(capacity: 0)
            var (completing, missing) = (0, 0)
            try snapshot.forEachEvent { envelope in
                let expected = try byReader.event(envelope)
                for index in held.indices {
                    #expect(try held[index].event(type: envelope.type, payload: envelope.payload, sequence: envelope.sequence) == expected)
                }
                if expected?.valuesFrom != nil { completing += 1 }
                do {
                    _ = try none.event(type: envelope.type, payload: envelope.payload, sequence: envelope.sequence)
                } catch is ProjectionRebuild.RecentSources.SourceNotHeld {
                    missing += 1
                }
                return true
            }
            // Two decisions that take their request's parameters, two codes their decision's grant.
            #expect(completing >= 4)
            #expect(missing == completing)
        }
    }

    @Test("the rebuild's store keeps index buckets by key whichever way they are written, and other keys as they are")
    func memoryStoreIndex() throws {
        let store = ProjectionRebuild.MemoryStore()
        let stored = IndexKind.user.key("alice", sequence: 300)
        try store.addIndexEntry(.user, "alice", sequence: 300)
        try store.extend(.index, stored, with: IndexBucket.entry(301))
        #expect(try store.get(.index, stored) == [44, 45])
        #expect(store.index.count == 1 && store.tables[.index] == nil, "a bucket's key goes to the index by bucket")
        try store.put(.index, stored, [1])
        #expect(try store.get(.index, stored) == [1])
        try store.put(.index, "not a bucket key", [9])
        #expect(store.tables[.index]?["not a bucket key"] == [9])
        var seen: [String: [UInt8]] = [:]
        try store.forEach(.index, from: "") { key, value in
            seen[key] = value
            return true
        }
        #expect(seen == [stored: [1], "not a bucket key": [9]])
        try store.delete(.index, stored)
        #expect(try store.get(.index, stored) == nil && store.index.count == 0)
    }
}
