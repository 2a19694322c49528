import AuthCore
import AuthJournal
import AuthStreams
import Foundation
import LedgerCore
import LedgerJournal
import LedgerLMDB
import Synchronization
import Testing

/// A receiver in memory: records every batch it acknowledges, and refuses the first `failures` requests.
final class RecordingTransport: LogStreamTransport {
    private let state: Mutex<(batches: [LogStreamBatch], failuresLeft: Int, refused: Int)>

    init(failures: Int = 0) {
        state = Mutex(([], failures, 0))
    }

    func send(_ batch: LogStreamBatch) async throws(LogStreamError) {
        let refuse = state.withLock { state -> Bool in
            guard state.failuresLeft > 0 else {
                state.batches.append(batch)
                return false
            }
            state.failuresLeft -= 1
            state.refused += 1
            return true
        }
        if refuse { throw .refused(status: 503) }
    }

    var batches: [LogStreamBatch] { state.withLock { $0.batches } }
    var refused: Int { state.withLock { $0.refused } }
    /// Every sequence number received, in the order received.
    var sequences: [UInt64] { batches.flatMap { Array($0.first...$0.last) } }
    func lines() -> [[String: Any]] {
        batches.flatMap { batch in
            String(decoding: batch.body, as: UTF8.self).split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
    }
}

@Suite("Log streams: the journal's events pushed in order, at least once, resuming where they stopped")
struct LogStreamTests {
    static func configuration(_ format: LogStreamConfiguration.Format = .jsonl, batch: Int = 7) -> LogStreamConfiguration {
        var configuration = LogStreamConfiguration(url: "http://127.0.0.1:9/", format: format)
        configuration.batchSize = batch
        configuration.pollInterval = .milliseconds(10)
        configuration.retryDelays = (.milliseconds(5), .milliseconds(40))
        configuration.lease = .seconds(15)
        return configuration
    }

    /// Runs `delivery` until `done` holds (or 20 s pass), then stops it.
    static func deliver(_ delivery: LogStreamDelivery, until done: @escaping @Sendable () -> Bool) async throws {
        let task = Task { await delivery.run() }
        let deadline = ContinuousClock.now + .seconds(20)
        while !done() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        task.cancel()
        await task.value
        #expect(done(), "the stream did not get there within 20 s: \(delivery.status)")
    }

    /// A journal with a few flows in it (logins, consents, codes, tokens) and its data key.
    static func journalWithFlows(_ flows: Int = 3) async throws -> ServerHarness {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            for index in 0..<flows {
                let code = try await TokenEndpointTests.code(browser, nonce: "n-\(index)")
                _ = try await TokenEndpointTests.exchange(browser, code: code)
            }
        }
        return harness
    }

    static func open(_ harness: ServerHarness) async throws -> (AuthLedger, DataKey) {
        let ledger = try await AuthLedger.open(directory: harness.directory + "/journal")
        return (ledger, try JournalDataKeyFile(journal: harness.directory + "/journal").load())
    }

    @Test("every event once and in order, in batches, the position stored; personal fields as pseudonyms")
    func deliversInOrder() async throws {
        let harness = try await Self.journalWithFlows()
        let (ledger, dataKey) = try await Self.open(harness)
        let head = ledger.journal.head.sequence
        let transport = RecordingTransport()
        let delivery = LogStreamDelivery(journal: ledger.journal, configuration: Self.configuration(), transport: transport, dataKey: dataKey)
        try await Self.deliver(delivery) { transport.sequences.last == head }
        #expect(transport.sequences == Array(1...head))
        #expect(transport.batches.allSatisfy { $0.count <= 7 && $0.contentType == "application/x-ndjson" })
        let lines = transport.lines()
        #expect(lines.count == Int(head))
        #expect(lines.map { $0["sequence"] as? Int } == (1...head).map { Int($0) })
        #expect(lines.allSatisfy { ($0["origin"] as? String)?.hasPrefix("authledger/") == true })
        // The browser's address and the user's email are in the events, never in clear in the stream.
        let body = transport.batches.map { String(decoding: $0.body, as: UTF8.self) }.joined()
        #expect(!body.contains("127.0.0.1"))
        #expect(!body.contains("alice@example.com"))
        let logins = lines.filter { $0["type"] as? String == "auth.login.succeeded" }
        #expect(!logins.isEmpty)
        #expect(logins.allSatisfy { (($0["payload"] as? [String: Any])?["client_ip"] as? String)?.hasPrefix("hmac-sha256:") == true }, "a pseudonym: \(String(describing: logins.first?["payload"]))")
        let stored = try ledger.journal.read { LogStreamCursor.decode(try $0.consumerState("log_stream.default")) }
        #expect(stored.delivered == head)
        #expect(stored.holder == nil, "released when the delivery stopped")
        #expect(delivery.status.lag == 0 && delivery.status.eventsDelivered == Int(head))
        await ledger.journal.close()
    }

    @Test("a refusing receiver is retried; the position moves only after an acknowledgment; a restart carries on after it")
    func retriesAndResumes() async throws {
        let harness = try await Self.journalWithFlows(2)
        let (ledger, dataKey) = try await Self.open(harness)
        let firstHead = ledger.journal.head.sequence
        let failing = RecordingTransport(failures: 4)
        let first = LogStreamDelivery(journal: ledger.journal, configuration: Self.configuration(), transport: failing, dataKey: dataKey)
        try await Self.deliver(first) { failing.sequences.last == firstHead }
        #expect(failing.refused == 4 && first.status.requestsFailed == 4)
        #expect(failing.sequences == Array(1...firstHead), "nothing skipped or repeated for the refusals")
        await ledger.journal.close()

        // More events, then a new process: it starts after what was acknowledged.
        let restarted = try await ServerHarness(restarting: harness)
        try await restarted.run { browser in
            let code = try await TokenEndpointTests.code(browser, nonce: "after")
            _ = try await TokenEndpointTests.exchange(browser, code: code)
        }
        let (reopened, _) = try await Self.open(harness)
        let secondHead = reopened.journal.head.sequence
        #expect(secondHead > firstHead)
        let resumed = RecordingTransport()
        let second = LogStreamDelivery(journal: reopened.journal, configuration: Self.configuration(), transport: resumed, dataKey: dataKey)
        try await Self.deliver(second) { resumed.sequences.last == secondHead }
        #expect(resumed.sequences == Array((firstHead + 1)...secondHead))
        await reopened.journal.close()
    }

    @Test("two nodes: one delivers while its lease runs; when it lets go the other carries on, nothing lost")
    func oneNodeAtATime() async throws {
        let harness = try await Self.journalWithFlows(2)
        let (ledger, dataKey) = try await Self.open(harness)
        let head = ledger.journal.head.sequence
        let (receivedA, receivedB) = (RecordingTransport(), RecordingTransport())
        let nodeA = LogStreamDelivery(journal: ledger.journal, configuration: Self.configuration(batch: 3), transport: receivedA, dataKey: dataKey, node: "A")
        let nodeB = LogStreamDelivery(journal: ledger.journal, configuration: Self.configuration(batch: 3), transport: receivedB, dataKey: dataKey, node: "B")
        let runningB = Task { try await Task.sleep(for: .milliseconds(50)); await nodeB.run() }
        try await Self.deliver(nodeA) { receivedA.sequences.last == head }
        // A held it from the start: B, started after, delivered nothing while A's lease ran.
        #expect(receivedB.sequences.isEmpty)
        #expect(receivedA.sequences == Array(1...head))
        // A let go on stopping: B takes over the next events.
        let more = try await ledger.journal.append(EventDraft(type: "test.note", schemaVersion: 1, payload: Array(#"{"n":1}"#.utf8)))
        let deadline = ContinuousClock.now + .seconds(20)
        while receivedB.sequences.last != more.sequence && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        runningB.cancel()
        _ = await runningB.result
        #expect(receivedB.sequences == [more.sequence])
        await ledger.journal.close()
    }

    @Test("OCSF and Auth0 bodies: one record per event with the event inside, Auth0's type codes and log ids")
    func formats() async throws {
        let harness = try await Self.journalWithFlows(1)
        let (ledger, dataKey) = try await Self.open(harness)
        let head = ledger.journal.head.sequence
        let ocsf = RecordingTransport()
        try await Self.deliver(
            LogStreamDelivery(journal: ledger.journal, configuration: Self.configuration(.ocsf, batch: 100), transport: ocsf, dataKey: dataKey, node: "o")
        ) { ocsf.sequences.last == head }
        let records = ocsf.lines()
        #expect(records.count == Int(head))
        #expect(records.allSatisfy { $0["category_uid"] as? Int == 3 && (($0["unmapped"] as? [String: Any])?["authledger"] as? [String: Any])?["sequence"] != nil })

        // Another stream name: its own position, from the first event.
        func auth0Stream(_ name: String, batch: Int) async throws -> (batches: [LogStreamBatch], logs: [[String: Any]]) {
            var configuration = Self.configuration(.auth0, batch: batch)
            configuration.name = name
            let transport = RecordingTransport()
            try await Self.deliver(
                LogStreamDelivery(journal: ledger.journal, configuration: configuration, transport: transport, dataKey: dataKey, node: name)
            ) { transport.sequences.last == head }
            let logs = try transport.batches.flatMap { batch in
                try #require(try JSONSerialization.jsonObject(with: Data(batch.body)) as? [[String: Any]])
            }
            return (transport.batches, logs)
        }
        func codeLog(_ logs: [[String: Any]]) throws -> [String: Any] {
            try #require(logs.first { ($0["data"] as? [String: Any])?["description"] as? String == "auth.code.issued" }?["data"] as? [String: Any])
        }
        let (batches, logs) = try await auth0Stream("siem", batch: 100)
        #expect(batches.allSatisfy { $0.contentType == "application/json" })
        #expect(logs.count == Int(head))
        let types = logs.compactMap { ($0["data"] as? [String: Any])?["type"] as? String }
        #expect(types.contains("s") && types.contains("seacft"), "\(types)")
        #expect(logs.allSatisfy { ($0["log_id"] as? String)?.hasPrefix("authledger/") == true })
        let exchange = try #require(logs.first { ($0["data"] as? [String: Any])?["type"] as? String == "seacft" }?["data"] as? [String: Any])
        #expect(exchange["client_id"] as? String == "web-app")
        // A code leaves its grant to its decision: the log still names its client and user.
        let code = try codeLog(logs)
        #expect(code["client_id"] as? String == "web-app" && code["user_id"] != nil, "\(code)")

        // One event per batch: the code's decision and the decision's request are in earlier batches, and
        // read as the batch's context; the log still names its client and user.
        let (singleBatches, singles) = try await auth0Stream("one-by-one", batch: 1)
        #expect(singles.count == Int(head) && singleBatches.count == Int(head))
        let alone = try codeLog(singles)
        #expect(alone["client_id"] as? String == "web-app" && alone["user_id"] as? String == code["user_id"] as? String, "\(alone)")
        await ledger.journal.close()
    }
}

@Suite("Log stream positions: the lease protocol, pure")
struct LogStreamCursorTests {
    let now = LedgerTimestamp(microsecondsSinceEpoch: 1_000_000_000)

    @Test("a free stream is claimed; a running lease keeps others out until it runs out; the holder renews it")
    func claims() throws {
        let free = LogStreamCursor(delivered: 9)
        let held = try #require(free.claimed(by: "A", at: now, lease: .seconds(15)))
        #expect(held == LogStreamCursor(delivered: 9, holder: "A", leaseUntil: now.microseconds + 15_000_000))
        #expect(held.claimed(by: "B", at: now, lease: .seconds(15)) == nil)
        let later = LedgerTimestamp(microsecondsSinceEpoch: now.microseconds + 15_000_000)
        #expect(held.claimed(by: "B", at: later, lease: .seconds(15))?.holder == "B")
        #expect(held.claimed(by: "A", at: LedgerTimestamp(microsecondsSinceEpoch: now.microseconds + 5), lease: .seconds(15))?.leaseUntil == now.microseconds + 15_000_005)
    }

    @Test("only the holder moves the position, and only from where it found it; letting go frees it")
    func advances() throws {
        let held = LogStreamCursor(delivered: 9, holder: "A", leaseUntil: now.microseconds + 1)
        #expect(held.advanced(from: 9, to: 20, by: "A", at: now, lease: .seconds(1))?.delivered == 20)
        #expect(held.advanced(from: 9, to: 20, by: "B", at: now, lease: .seconds(1)) == nil)
        #expect(held.advanced(from: 5, to: 20, by: "A", at: now, lease: .seconds(1)) == nil, "moved meanwhile")
        #expect(held.released(by: "A") == LogStreamCursor(delivered: 9))
        #expect(held.released(by: "B") == held)
        #expect(LogStreamCursor.decode(held.encoded) == held)
        #expect(LogStreamCursor.decode(Array("not json".utf8)) == LogStreamCursor())
    }

    @Test("header lines: name and value, refused when malformed")
    func headers() throws {
        let header = try LogStreamConfiguration.header("Authorization: Splunk 1234-abcd")
        #expect(header.name == "Authorization" && header.value == "Splunk 1234-abcd")
        #expect(throws: LogStreamError.self) { try LogStreamConfiguration.header("no colon") }
        #expect(throws: LogStreamError.self) { try LogStreamConfiguration.header("Bad Name: x") }
        #expect(throws: LogStreamError.self) { try LogStreamConfiguration.header("X: a\r\nInjected: b") }
    }
}
