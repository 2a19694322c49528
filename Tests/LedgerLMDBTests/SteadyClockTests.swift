import Foundation
import LedgerCore
import LedgerJournal
import Synchronization
import Testing

/// The process clock (``SteadyClock``) under a wall clock that jumps: faked wall and monotonic clocks.
@Suite("SteadyClock: the wall clock's time, never backwards, never slower than real time")
struct SteadyClockTests {
    /// A wall clock and a monotonic clock that a test moves.
    final class FakeClocks: Sendable {
        let wall = Mutex<Int64>(1_800_000_000_000_000)
        let monotonic = Mutex<Int64>(5_000_000)
        func pass(seconds: Int64) {
            wall.withLock { $0 += seconds * 1_000_000 }
            monotonic.withLock { $0 += seconds * 1_000_000 }
        }
        func setWall(by seconds: Int64) { wall.withLock { $0 += seconds * 1_000_000 } }
        func clock() -> SteadyClock {
            SteadyClock(
                wall: { [self] in LedgerTimestamp(microsecondsSinceEpoch: wall.withLock { $0 }) },
                monotonic: { [self] in monotonic.withLock { $0 } })
        }
    }

    @Test("a wall clock set back an hour is not followed: time goes on at the real rate, 61 s after is 61 s later")
    func backwards() {
        let fake = FakeClocks()
        let clock = fake.clock()
        let start = clock.now()
        fake.setWall(by: -3600)
        fake.pass(seconds: 61)
        #expect(clock.now().microseconds - start.microseconds == 61_000_000)
        #expect(clock.wallClockLag == 3_600_000_000)
        // Once the wall clock is past the steady time again, it is followed again.
        fake.setWall(by: 3700)
        let caughtUp = clock.now()
        #expect(caughtUp.microseconds == fake.wall.withLock { $0 })
        #expect(clock.wallClockLag == 0)
    }

    @Test("a wall clock set forward is followed at once (what was issued before expires early: the safe side)")
    func forwards() {
        let fake = FakeClocks()
        let clock = fake.clock()
        let start = clock.now()
        fake.setWall(by: 3600)
        #expect(clock.now().microseconds - start.microseconds == 3_600_000_000)
    }

    @Test("under random jumps of the wall clock either way, readings never decrease and never fall behind the real time elapsed")
    func randomJumps() {
        let fake = FakeClocks()
        let clock = fake.clock()
        var generator = SystemRandomNumberGenerator()
        var previous = clock.now().microseconds
        var elapsed: Int64 = 0
        let first = previous
        for _ in 0..<2000 {
            if Int.random(in: 0..<10, using: &generator) == 0 { fake.setWall(by: Int64.random(in: -7200...7200, using: &generator)) }
            let step = Int64.random(in: 0...3, using: &generator)
            fake.pass(seconds: step)
            elapsed += step * 1_000_000
            let now = clock.now().microseconds
            #expect(now >= previous)
            #expect(now - first >= elapsed)
            previous = now
        }
    }

    @Test("a journal stamped by it keeps its events in time order across a backward jump")
    func journalTimes() async throws {
        let fake = FakeClocks()
        let clock = fake.clock()
        let directory = TemporaryDirectory()
        var configuration = Journal.Configuration(keyBeside: directory.journal)
        configuration.clock = clock.read
        let journal = try Journal.open(directory: directory.journal, configuration)
        try await journal.append(testDraft("before"))
        fake.setWall(by: -86_400)
        fake.pass(seconds: 1)
        try await journal.append(testDraft("after the wall clock went back a day"))
        await journal.close()
        let reader = try JournalReader(directory: directory.journal)
        defer { reader.close() }
        let times = try reader.read { snapshot in
            var times: [LedgerTimestamp] = []
            try snapshot.forEachEvent { times.append($0.timestamp); return true }
            return times
        }
        #expect(times == times.sorted())
        #expect(times.last!.microseconds - times[times.count - 2].microseconds == 1_000_000)
    }
}
