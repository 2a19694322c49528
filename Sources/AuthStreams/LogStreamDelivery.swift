import AuthJournal
import Foundation
import LedgerCore
import LedgerJournal
import Logging
import Synchronization

/// How a log stream is doing, for `/metrics` and the log.
public struct LogStreamStatus: Sendable, Equatable {
    /// The last event the receiver acknowledged, as this node last saw it stored.
    public var delivered: UInt64 = 0
    /// The journal's last event, as this node last read it.
    public var head: UInt64 = 0
    /// Events this node delivered since it started (a batch delivered twice counts twice).
    public var eventsDelivered: Int = 0
    /// Requests that failed (refused, unreachable or timed out) since start.
    public var requestsFailed: Int = 0
    /// Events archived away before they were delivered: the stream went on after them.
    public var eventsSkipped: UInt64 = 0
    /// Whether this node holds the stream (on a shared journal, one node delivers at a time).
    public var holding: Bool = false
    /// When the receiver last acknowledged a batch from this node (journal time).
    public var lastDelivery: LedgerTimestamp?
    /// Why the last request failed, while it has not succeeded since.
    public var lastError: String?

    /// Events committed but not yet acknowledged by the receiver.
    public var lag: UInt64 { head > delivered ? head - delivered : 0 }
}

/// Delivers the journal's events, in order, to a log stream's receiver, at least once: reads the events
/// after the stream's stored position, renders a batch, sends it, and only once the receiver
/// acknowledged it moves the position on — in the journal's store, so that a restart carries on there.
///
/// It runs beside the server (``run()``), never in a request's path: it reads snapshots and writes one
/// small state change per delivered batch through the journal's writer. A receiver that fails or stalls
/// only makes the stream lag (``status``); requests are retried with a doubling delay.
///
/// On a shared journal every node runs it, and one node at a time delivers: the stored position carries
/// a lease (``LogStreamCursor``) that its holder renews with each batch, and that another node takes
/// over once it runs out. A node that delivered a batch but lost the lease meanwhile sees the position
/// moved and does not move it again: the receiver may get a batch twice, never miss one.
public final class LogStreamDelivery: Sendable {
    public let configuration: LogStreamConfiguration
    /// This process, as the stream's lease names it.
    public let node: String
    private let journal: Journal
    private let transport: any LogStreamTransport
    private let dataKey: DataKey?
    private let logger: Logger
    private let state = Mutex(LogStreamStatus())

    public init(
        journal: Journal, configuration: LogStreamConfiguration, transport: any LogStreamTransport, dataKey: DataKey?,
        node: String = UUID().uuidString, logger: Logger = Logger(label: "authledger.log-stream")
    ) {
        self.journal = journal
        self.configuration = configuration
        self.transport = transport
        self.dataKey = dataKey
        self.node = node
        self.logger = logger
    }

    /// The stream as of now.
    public var status: LogStreamStatus { state.withLock { $0 } }

    /// Delivers until the task is cancelled, then lets go of the stream so that another node takes it
    /// at once.
    public func run() async {
        var held: LogStreamCursor?
        var failuresInARow = 0
        while !Task.isCancelled {
            do {
                if held.map(needsRenewal) ?? true {
                    held = try await claim()
                    state.withLock { $0.holding = held != nil }
                }
                guard let cursor = held else {
                    try await Task.sleep(for: configuration.pollInterval * 5)  // another node delivers
                    continue
                }
                guard let batch = try nextBatch(after: cursor.delivered) else {
                    try await Task.sleep(for: configuration.pollInterval)
                    continue
                }
                try await transport.send(batch)
                held = try await advance(from: cursor.delivered, to: batch.last)
                if failuresInARow > 0 {
                    logger.notice("log stream delivers again", metadata: ["stream": "\(configuration.name)", "after_failures": "\(failuresInARow)"])
                }
                failuresInARow = 0
                let now = journal.currentTime
                state.withLock { status in
                    status.eventsDelivered += batch.count
                    status.lastDelivery = now
                    status.lastError = nil
                    status.holding = held != nil
                    if let held { status.delivered = held.delivered }
                }
            } catch is CancellationError {
                break
            } catch {
                failuresInARow += 1
                state.withLock {
                    $0.requestsFailed += 1
                    $0.lastError = "\(error)"
                }
                if failuresInARow == 1 || failuresInARow % 10 == 0 {
                    logger.warning(
                        "log stream delivery failed; retrying",
                        metadata: ["stream": "\(configuration.name)", "error": "\(error)", "failures": "\(failuresInARow)"])
                }
                do {
                    try await Task.sleep(for: retryDelay(after: failuresInARow))
                } catch {
                    break
                }
            }
        }
        if held != nil { await release() }
    }

    /// The wait after `failures` failed requests in a row: the first delay, doubled each time up to the
    /// longest, with up to a quarter more at random so that nodes and streams do not retry in step.
    func retryDelay(after failures: Int) -> Duration {
        let (first, longest) = configuration.retryDelays
        var delay = first
        for _ in 1..<max(1, min(failures, 32)) where delay < longest { delay *= 2 }
        delay = min(delay, longest)
        return delay + delay * Double.random(in: 0..<0.25)
    }

    /// Whether the lease held runs out within two thirds of its length: it is renewed before then.
    private func needsRenewal(_ cursor: LogStreamCursor) -> Bool {
        cursor.leaseUntil - journal.currentTime.microseconds < configuration.lease.microseconds * 2 / 3
    }

    /// Takes (or renews) the stream for this node, from the state stored; `nil` while another node's
    /// lease runs.
    private func claim() async throws -> LogStreamCursor? {
        let (name, node, lease) = (configuration.consumerName, node, configuration.lease)
        let claimed: LogStreamCursor? = try await journal.transact { transaction in
            let stored = LogStreamCursor.decode(try transaction.consumerState(name))
            guard let claimed = stored.claimed(by: node, at: transaction.timestamp, lease: lease) else { return nil }
            try transaction.setConsumerState(claimed.encoded, for: name)
            return claimed
        }
        if let claimed { state.withLock { $0.delivered = claimed.delivered } }
        return claimed
    }

    /// Moves the stored position to `sequence` if it still stands where this node found it.
    private func advance(from previous: UInt64, to sequence: UInt64) async throws -> LogStreamCursor? {
        let (name, node, lease) = (configuration.consumerName, node, configuration.lease)
        let advanced: LogStreamCursor? = try await journal.transact { transaction in
            let stored = LogStreamCursor.decode(try transaction.consumerState(name))
            guard let advanced = stored.advanced(from: previous, to: sequence, by: node, at: transaction.timestamp, lease: lease) else {
                return nil
            }
            try transaction.setConsumerState(advanced.encoded, for: name)
            return advanced
        }
        if advanced == nil {
            logger.notice("log stream taken over by another node", metadata: ["stream": "\(configuration.name)"])
        }
        return advanced
    }

    private func release() async {
        let (name, node) = (configuration.consumerName, node)
        _ = try? await journal.transact { transaction in
            let stored = LogStreamCursor.decode(try transaction.consumerState(name))
            guard stored.holder == node else { return false }
            try transaction.setConsumerState(stored.released(by: node).encoded, for: name)
            return true
        }
        state.withLock { $0.holding = false }
    }

    /// The events after `delivered`, at most a batch of them, rendered; `nil` when there are none.
    /// Events archived before they were delivered are skipped (and counted).
    private func nextBatch(after delivered: UInt64) throws -> LogStreamBatch? {
        let (handling, dataKey, size, format) = (configuration.personalData, dataKey, configuration.batchSize, configuration.format)
        let (batch, head, skipped) = try journal.read { snapshot -> (LogStreamBatch?, UInt64, UInt64) in
            let first = try snapshot.firstSequence
            let start = max(delivered + 1, first)
            let opener = handling == .keep ? nil : SealedValueOpener(snapshot: snapshot, dataKey: dataKey)
            func rendered(_ envelope: EventEnvelope) -> (envelope: EventEnvelope, payload: Any) {
                (envelope, handling.payload(of: envelope, opener: opener, dataKey: dataKey, domain: "log_stream"))
            }
            // One walk: the events just before the batch that its first events may take values from (the
            // context, not delivered, rendered only when there is a batch), then the batch.
            let lookback = format == .auth0 ? min(start - first, LogStreamBatch.valuesLookback) : 0
            var before: [EventEnvelope] = []
            var events: [(envelope: EventEnvelope, payload: Any)] = []
            try snapshot.forEachEvent(from: start - lookback) { envelope in
                guard envelope.sequence >= start else {
                    before.append(envelope)
                    return true
                }
                events.append(rendered(envelope))
                return events.count < size
            }
            let context = events.isEmpty ? [] : before.map(rendered)
            let batch = LogStreamBatch.render(events, format: format, origin: try snapshot.origin ?? "authledger", context: context)
            return (batch, try snapshot.head.sequence, start - (delivered + 1))
        }
        if skipped > 0 {
            logger.warning(
                "log stream: events archived before they were delivered are skipped",
                metadata: ["stream": "\(configuration.name)", "first_undelivered": "\(delivered + 1)", "skipped": "\(skipped)"])
        }
        state.withLock {
            $0.head = head
            $0.eventsSkipped += skipped
        }
        return batch
    }
}
