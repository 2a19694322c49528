import LedgerJournal
import Synchronization
import Testing

@testable import LedgerPostgres

/// The gathering of concurrent requests' awaited reads into shared statements, against a stand-in for
/// the statement (no PostgreSQL: what is tested is who sends what, and who is answered what). The real
/// statement is tested with it in `PostgresAwaitedReadTests`.
@Suite("Awaited reads of concurrent requests go to PostgreSQL together")
struct ReadGatheringTests {
    @Test("with no statement out, each read goes at once, alone")
    func aloneWithoutLoad() async throws {
        let gathering = ReadGathering(maximumInFlight: 1, stallLimit: noStall)
        let statements = StatementLog()
        for index in 0..<3 {
            let rows = try await gathering.answers(to: reads(["k\(index)"])) { try await statements.answer($0) }
            #expect(answered(rows) == ["k\(index)": "value of k\(index)"])
        }
        #expect(statements.sent.map(\.count) == [1, 1, 1])
        #expect(gathering.statistics.statements == 3)
        #expect(gathering.statistics.requests == 3)
    }

    @Test("reads asked while a statement is out wait, and go together in the next: each request answered its own reads, in its order, a missing key with none")
    func gatheredWhileOut() async throws {
        let gathering = ReadGathering(maximumInFlight: 1, stallLimit: noStall)
        let statements = StatementLog()
        let gate = Gate()
        try await withThrowingTaskGroup(of: (String, [String: String]).self) { group in
            // Opened however the test ends: a child waiting on it would hold the group.
            defer { gate.open() }
            group.addTask {
                let rows = try await gathering.answers(to: reads(["a"])) { values in
                    try await statements.answer(values, after: gate)
                }
                return ("first", answered(rows))
            }
            try await until { statements.sent.count == 1 }
            let others: [(String, [String])] = [("second", ["b1", "b2"]), ("third", ["missing", "c", "count"]), ("fourth", ["d"])]
            for (name, keys) in others {
                group.addTask {
                    let rows = try await gathering.answers(to: reads(keys)) { try await statements.answer($0) }
                    #expect(rows.count == keys.count, "an answer for each of the request's own reads")
                    return (name, answered(rows, keys: keys))
                }
            }
            try await until { gathering.waitingCount == 3 }
            gate.open()
            var answers: [String: [String: String]] = [:]
            for try await (name, rows) in group { answers[name] = rows }
            #expect(answers["first"] == ["a": "value of a"])
            #expect(answers["second"] == ["b1": "value of b1", "b2": "value of b2"])
            #expect(answers["third"] == ["c": "value of c", "count": "7"], "a key with no value has none, a count its number")
            #expect(answers["fourth"] == ["d": "value of d"])
        }
        // The first alone; the three that waited for it in one statement, in the order they came.
        #expect(statements.sent.count == 2)
        #expect(statements.sent.first == ["a"])
        #expect(Set(statements.sent.last ?? []) == ["b1", "b2", "missing", "c", "count", "d"])
        #expect(gathering.statistics.statements == 2)
        #expect(gathering.statistics.requests == 4)
        #expect(gathering.waitingCount == 0)
        #expect(gathering.inFlightCount == 0, "the room given back once nothing waits")
    }

    @Test("with two statements allowed out, a second read goes at once; a third waits for either")
    func twoInFlight() async throws {
        let gathering = ReadGathering(maximumInFlight: 2, stallLimit: noStall)
        let statements = StatementLog()
        let gate = Gate()
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Opened however the test ends: a child waiting on it would hold the group.
            defer { gate.open() }
            for key in ["a", "b"] {
                group.addTask {
                    _ = try await gathering.answers(to: reads([key])) { values in
                        try await statements.answer(values, after: gate)
                    }
                }
            }
            try await until { statements.sent.count == 2 }
            group.addTask {
                let rows = try await gathering.answers(to: reads(["c"])) { try await statements.answer($0) }
                #expect(answered(rows) == ["c": "value of c"])
            }
            try await until { gathering.waitingCount == 1 }
            gate.open()
            try await group.waitForAll()
        }
        #expect(statements.sent.count == 3)
        #expect(statements.sent.last == ["c"])
    }

    @Test("a statement that fails fails the request that led it with its error, and the others in it as not awaited (they read by waiting); the reads that waited meanwhile are sent after it, and the room is given back")
    func failureFailsItsStatementOnly() async throws {
        let gathering = ReadGathering(maximumInFlight: 1, stallLimit: noStall)
        let statements = StatementLog()
        let gate = Gate()
        let failNext = Flag(true)
        /// How a request ended: "answered", "failed" (the statement's error) or "not awaited".
        @Sendable func outcome(_ read: () async throws -> Void) async -> String {
            do {
                try await read()
                return "answered"
            } catch is StatementFailed {
                return "failed"
            } catch is ReadNotAwaited {
                return "not awaited"
            } catch {
                return "\(error)"
            }
        }
        try await withThrowingTaskGroup(of: (String, String).self) { group in
            // Opened however the test ends: a child waiting on it would hold the group.
            defer { gate.open() }
            group.addTask {
                ("first", await outcome {
                    _ = try await gathering.answers(to: reads(["a"])) { values in
                        _ = try await statements.answer(values, after: gate)
                        throw StatementFailed()
                    }
                })
            }
            try await until { statements.sent.count == 1 }
            for key in ["b", "c"] {
                group.addTask {
                    (key, await outcome {
                        _ = try await gathering.answers(to: reads([key])) { values in
                            _ = try await statements.answer(values)
                            if failNext.isSet { throw StatementFailed() }
                            return values.map { _ in .value(nil) }
                        }
                    })
                }
            }
            try await until { gathering.waitingCount == 2 }
            gate.open()
            var outcomes: [String: String] = [:]
            for try await (name, ended) in group { outcomes[name] = ended }
            #expect(outcomes["first"] == "failed", "the first statement failed the read that led it")
            #expect([outcomes["b"], outcomes["c"]].compactMap { $0 }.sorted() == ["failed", "not awaited"], "the second: its leader failed, the other not awaited")
        }
        #expect(gathering.statistics.statements == 2, "both statements were round trips")
        #expect(statements.sent.count == 2, "the reads that waited went in a statement of their own")
        #expect(gathering.inFlightCount == 0)
        failNext.isSet = false
        let rows = try await gathering.answers(to: reads(["d"])) { try await statements.answer($0) }
        #expect(answered(rows) == ["d": "value of d"], "a read after the failures goes at once, and is answered")
    }

    @Test("a statement that never went out (its connection's lease failed) fails its leader with the lease's error, and is not counted as a round trip")
    func unsentNotCounted() async throws {
        let gathering = ReadGathering(maximumInFlight: 1, stallLimit: noStall)
        await #expect(throws: StatementFailed.self) {
            _ = try await gathering.answers(to: reads(["a"])) { _ in throw StatementNotSent(error: StatementFailed()) }
        }
        await #expect(throws: ReadNotAwaited.self) {
            _ = try await gathering.answers(to: reads(["b"])) { _ in throw ReadNotAwaited() }
        }
        #expect(gathering.statistics == ReadGathering.Statistics(), "no statement went out")
        #expect(gathering.inFlightCount == 0, "and the room was given back")
        let statements = StatementLog()
        let rows = try await gathering.answers(to: reads(["c"])) { try await statements.answer($0) }
        #expect(answered(rows) == ["c": "value of c"])
        #expect(gathering.statistics.statements == 1)
    }

    @Test("a statement gathers at most its limit of reads: the requests beyond it wait for the next, in the order they came")
    func limitOfReads() async throws {
        let gathering = ReadGathering(maximumInFlight: 1, maximumWeight: 3, stallLimit: noStall)
        let statements = StatementLog()
        try await whileAStatementIsOut(gathering, statements) { group in
            for name in ["x", "y", "z"] {
                group.addTask {
                    let keys = ["\(name)1", "\(name)2"]
                    let answers = try await gathering.answers(to: reads(keys)) { try await statements.answer($0) }
                    #expect(answered(answers, keys: keys) == ["\(name)1": "value of \(name)1", "\(name)2": "value of \(name)2"])
                }
            }
            try await until { gathering.waitingCount == 3 }
        }
        #expect(statements.sent.map(\.count) == [1, 2, 2, 2], "two requests of two reads never in one statement of three")
    }

    @Test("while the statements out make no progress for longer than the limit, a request does not wait for them: it is not awaited (it reads by waiting); once one is answered, requests wait again")
    func stalledStatements() async throws {
        let gathering = ReadGathering(maximumInFlight: 1, stallLimit: .milliseconds(50))
        let statements = StatementLog()
        try await whileAStatementIsOut(gathering, statements) { _ in
            try await Task.sleep(for: .milliseconds(120))
            await #expect(throws: ReadNotAwaited.self, "no progress for 120 ms: not queued behind the statement") {
                _ = try await gathering.answers(to: reads(["b"])) { try await statements.answer($0) }
            }
            #expect(gathering.waitingCount == 0)
        }
        let answers = try await gathering.answers(to: reads(["c"])) { try await statements.answer($0) }
        #expect(answered(answers) == ["c": "value of c"])
        #expect(statements.sent == [["a"], ["c"]])
    }

    @Test("a walk weighs the entries it may answer, the other reads one each")
    func weights() {
        let walk = AwaitedRead.entries(table: table, start: [], limit: 512)
        #expect(ReadGathering.weight(of: [.value(table: table, key: [1]), walk, .count(table: table), .last(table: table)]) == 515)
    }

    @Test("a reply with more or fewer answers than reads fails every request in the statement")
    func mismatchFails() async throws {
        let gathering = ReadGathering(maximumInFlight: 1, stallLimit: noStall)
        await #expect(throws: AwaitedReadMismatch.self) {
            _ = try await gathering.answers(to: reads(["a", "b"])) { _ in [.value(nil)] }
        }
        #expect(gathering.inFlightCount == 0)
    }

    @Test("many requests at once, again and again: every request answered exactly its own keys, in fewer statements than requests")
    func manyAtOnce() async throws {
        let gathering = ReadGathering(maximumInFlight: 1, stallLimit: noStall)
        let statements = StatementLog()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for request in 0..<64 {
                group.addTask {
                    for round in 0..<10 {
                        let keys = (0..<(1 + request % 3)).map { "r\(request)-\(round)-\($0)" }
                        let rows = try await gathering.answers(to: reads(keys)) { values in
                            await Task.yield()
                            return try await statements.answer(values)
                        }
                        #expect(answered(rows, keys: keys) == Dictionary(uniqueKeysWithValues: keys.map { ($0, "value of \($0)") }))
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(gathering.statistics.requests == 640)
        #expect(gathering.statistics.statements == statements.sent.count)
        #expect(gathering.statistics.statements < 640, "\(gathering.statistics.statements) statements for 640 requests")
        #expect(gathering.inFlightCount == 0)
        #expect(gathering.waitingCount == 0)
    }
}

/// One request's reads of `keys`, all in one table (a key "count" is a count of the table instead).
private func reads(_ keys: [String]) -> [AwaitedRead] {
    keys.map { key in
        key == "count" ? .count(table: table) : .value(table: table, key: Array(key.utf8))
    }
}

private let table = StorageTable(name: "t")

/// A stall limit no test's statement reaches, however busy the machine (every suite at once, under a
/// sanitizer, can hold a task for seconds): only the test of stalls has one it means to reach.
private let noStall: Duration = .seconds(600)

/// A request's answers as key and value, its keys given, or as the value's own text ("value of KEY")
/// when none are (no key then may be missing).
private func answered(_ answers: [AwaitedReadAnswer], keys: [String]? = nil) -> [String: String] {
    var found: [String: String] = [:]
    for (index, answer) in answers.enumerated() {
        switch answer {
        case .value(let value?):
            let text = String(decoding: value, as: UTF8.self)
            found[keys?[index] ?? String(text.dropFirst("value of ".count))] = text
        case .count(let count): found[keys?[index] ?? "count"] = "\(count)"
        default: break
        }
    }
    return found
}

/// The statements sent, as their keys; each answered as PostgreSQL would: "value of KEY" for each key
/// but "missing", which has none, and 7 for a count.
private final class StatementLog: Sendable {
    private let log = Mutex<[[String]]>([])

    var sent: [[String]] { log.withLock { $0 } }

    /// Answers `reads`, noted as sent at once, once `gate` (if any) opens.
    func answer(_ reads: [AwaitedRead], after gate: Gate? = nil) async throws -> [AwaitedReadAnswer] {
        let keys = reads.map { read -> String in
            switch read {
            case .value(_, let key): return String(decoding: key, as: UTF8.self)
            default: return "count"
            }
        }
        log.withLock { $0.append(keys) }
        await gate?.wait()
        return keys.map { key in
            switch key {
            case "missing": return .value(nil)
            case "count": return .count(7)
            default: return .value(Array("value of \(key)".utf8))
            }
        }
    }
}

private struct StatementFailed: Error {}

private final class Flag: Sendable {
    private let value: Mutex<Bool>

    init(_ value: Bool) { self.value = Mutex(value) }

    var isSet: Bool {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

/// Held shut until opened; whoever waits then goes on.
private final class Gate: Sendable {
    private let state = Mutex<(isOpen: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let isOpen = state.withLock { state -> Bool in
                if !state.isOpen { state.waiting.append(continuation) }
                return state.isOpen
            }
            if isOpen { continuation.resume() }
        }
    }

    func open() {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.isOpen = true
            defer { state.waiting.removeAll() }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }
}

/// Runs `body` while a statement of one read ("a") that `gathering` sent is out, its reply held until
/// `body` returns; then waits for the tasks `body` added to `group`.
private func whileAStatementIsOut(
    _ gathering: ReadGathering, _ statements: StatementLog, _ body: (inout ThrowingTaskGroup<Void, any Error>) async throws -> Void
) async throws {
    let gate = Gate()
    try await withThrowingTaskGroup(of: Void.self) { group in
        // Opened however the test ends: a child waiting on it would hold the group.
        defer { gate.open() }
        group.addTask {
            _ = try await gathering.answers(to: reads(["a"])) { try await statements.answer($0, after: gate) }
        }
        try await until { statements.sent.count == 1 }
        try await body(&group)
        gate.open()
        try await group.waitForAll()
    }
}

/// Returns once `condition` holds, or fails after two minutes (a sanitizer with every suite at once can hold a task for seconds).
private func until(_ condition: () -> Bool) async throws {
    let started = ContinuousClock.now
    while !condition() {
        try #require(ContinuousClock.now - started < .seconds(120), "the condition never held")
        try await Task.sleep(for: .milliseconds(1))
    }
}
