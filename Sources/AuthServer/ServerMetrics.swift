import AuthCore
import AuthStreams
import LedgerJournal
import Prometheus

/// The server's Prometheus metrics (`GET /metrics`): decisions by outcome, logins by result, how long
/// durable appends take, and the journal's group commit.
///
/// Kept in the server's own registry (not the global `MetricsSystem`), so several servers — as in the
/// tests — never share counters.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let appendDuration: DurationHistogram

    private static func name(_ subsystem: String, _ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "authledger", subsystem: subsystem, metricName: metric, unitName: unit, helpText: help)
    }

    private static var decisions: MetricNameDescriptor { name("authorize", "decisions", "total", "Authorization decisions by outcome and error.") }
    private static var logins: MetricNameDescriptor { name("login", "attempts", "total", "Login attempts by result.") }
    private static var clientCredentials: MetricNameDescriptor {
        name("client_credentials", "decisions", "total", "Client credentials decisions by outcome and error.")
    }
    private static var pushedRequests: MetricNameDescriptor {
        name("par", "requests", "total", "Pushed authorization requests by result (accepted, or the error).")
    }
    private static var introspections: MetricNameDescriptor {
        name("introspection", "requests", "total", "Token introspection requests by answer (active or not).")
    }

    init() {
        appendDuration = registry.makeDurationHistogram(
            descriptor: Self.name("journal", "append_duration", "seconds", "Time from handing events to the journal until they are durable."),
            labels: [],
            buckets: [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                      .milliseconds(10), .milliseconds(25), .milliseconds(100), .seconds(1)])
    }

    func decided(_ outcome: AuthorizationOutcome) {
        let label = String(outcome.name.prefix { $0 != ":" })
        let error: String = {
            switch outcome {
            case .errorPage(let code, _), .errorRedirect(let code, _, _): code.rawValue
            default: ""
            }
        }()
        registry.makeCounter(descriptor: Self.decisions, labels: [("outcome", label), ("error", error)]).increment()
    }

    func clientCredentialsDecided(_ outcome: ClientCredentialsOutcome) {
        let (label, error): (String, String) =
            switch outcome {
            case .issue: ("token_issued", "")
            case .refuse(let refusal): ("error", refusal.code.rawValue)
            }
        registry.makeCounter(descriptor: Self.clientCredentials, labels: [("outcome", label), ("error", error)]).increment()
    }

    func pushed(error: String?) {
        registry.makeCounter(descriptor: Self.pushedRequests, labels: [("result", error ?? "accepted")]).increment()
    }

    func introspected(active: Bool) {
        registry.makeCounter(descriptor: Self.introspections, labels: [("active", active ? "true" : "false")]).increment()
    }

    private static var backchannel: MetricNameDescriptor {
        name("logout", "backchannel_deliveries", "total", "Back-channel logout deliveries by result (after retries).")
    }

    private static var logouts: MetricNameDescriptor { name("logout", "sessions_ended", "total", "Sessions ended, by the rule that ended them.") }

    func loggedOut(rule: String?) {
        registry.makeCounter(descriptor: Self.logouts, labels: [("rule", rule ?? "logout.confirmed")]).increment()
    }

    func backchannelLogout(delivered: Bool) {
        registry.makeCounter(descriptor: Self.backchannel, labels: [("result", delivered ? "delivered" : "failed")]).increment()
    }

    func login(succeeded: Bool) {
        registry.makeCounter(descriptor: Self.logins, labels: [("result", succeeded ? "success" : "failure")]).increment()
    }

    /// The journal's mapped pages were let go of (``AuthServerSettings/mappedMemoryLimit``).
    func releasedMappedPages() {
        registry.makeCounter(descriptor: Self.name("process", "mapped_pages_released", "total",
            "Times the journal's mapped pages were let go of to keep file-backed resident memory under --max-mapped-memory.")).increment()
    }

    func appended(after duration: Duration) {
        appendDuration.record(duration)
    }

    /// The exposition text, with the journal's writer counters as of now.
    func render(
        journal: JournalStatistics, sequence: UInt64, storeWaitsInTasks: Int = 0, awaitedReads: AwaitedReadStatistics = .init(),
        wallClockLag: Int64 = 0, logStream: (name: String, status: LogStreamStatus)? = nil
    ) -> String {
        func gauge(_ metric: String, _ unit: String, _ help: String, _ value: Double) {
            registry.makeGauge(descriptor: Self.name("journal", metric, unit, help)).set(value)
        }
        gauge("sequence", "", "Sequence number of the last event.", Double(sequence))
        gauge("commits", "", "Write transactions committed since start (one fsync each).", Double(journal.batchesCommitted))
        gauge("committed_requests", "", "Append requests committed since start.", Double(journal.requestsCommitted))
        gauge("batch_size", "mean", "Requests per commit since start (group commit).",
              journal.batchesCommitted == 0 ? 0 : Double(journal.requestsCommitted) / Double(journal.batchesCommitted))
        gauge("batch_size", "max", "Most requests in one commit since start.", Double(journal.largestBatch))
        gauge("failed_commits", "", "Commits that failed (nothing from them was issued).", Double(journal.batchesFailed))
        func seconds(_ duration: Duration) -> Double { Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18 }
        gauge("lock_wait_and_catch_up", "seconds", "Shared journal: committed batches' time from asking for the journal lock to the end of the catch-up read.",
              seconds(journal.lockWaitAndCatchUp))
        gauge("under_lock_after_catch_up", "seconds", "Shared journal: committed batches' time under the journal lock after the catch-up read (their work and commit).",
              seconds(journal.underLockAfterCatchUp))
        gauge("writer_cpu", "seconds", "CPU time the journal's writer thread spent on batches since start (on a shared journal, mostly under the journal lock).",
              seconds(journal.writerCPUTime))
        gauge("store_waits_in_tasks", "", "Times a task waited on its thread for the store's I/O (PostgreSQL) since start: each held a thread that runs every task.",
              Double(storeWaitsInTasks))
        gauge("awaited_statements", "", "Shared journal: statements sent by awaited reads since start (one per attempt of a request's read; a request whose reads were known ahead reads in one).",
              Double(awaitedReads.statements))
        gauge("awaited_round_trips", "", "Shared journal: round trips to the store that carried the awaited statements since start (fewer when concurrent requests' statements go together).",
              Double(awaitedReads.roundTrips))
        gauge("awaited_reads", "", "Shared journal: requests' reads answered by awaited statements since start.", Double(awaitedReads.answered))
        gauge("waited_reads", "", "Shared journal: requests' reads answered by waiting on a thread instead of awaited (they read too much, or no connection came in time) since start.",
              Double(awaitedReads.waited))
        if let nice = journal.writerNiceValue {
            gauge("writer_nice", "", "Nice value of the journal's writer thread.", Double(nice))
        }
        if let (stream, status) = logStream {
            func streamGauge(_ metric: String, _ unit: String, _ help: String, _ value: Double) {
                registry.makeGauge(descriptor: Self.name("log_stream", metric, unit, help), labels: [("stream", stream)]).set(value)
            }
            streamGauge("lag", "events", "Events committed but not yet acknowledged by the log stream's receiver.", Double(status.lag))
            streamGauge("delivered_sequence", "", "The last event the receiver acknowledged.", Double(status.delivered))
            streamGauge("delivered_events", "", "Events this node delivered since start (at least once: a batch may count twice).", Double(status.eventsDelivered))
            streamGauge("failed_requests", "", "Deliveries refused, unreachable or timed out since start.", Double(status.requestsFailed))
            streamGauge("skipped_events", "", "Events archived before they were delivered.", Double(status.eventsSkipped))
            streamGauge("holding", "", "1 when this node delivers the stream (one node of a cluster at a time).", status.holding ? 1 : 0)
            streamGauge("last_delivery", "timestamp_seconds", "When the receiver last acknowledged a batch from this node (0: never).",
                        status.lastDelivery.map { Double($0.microseconds) / 1e6 } ?? 0)
        }
        registry.makeGauge(descriptor: Self.name(
            "process", "wall_clock_lag", "seconds",
            "How far the wall clock is behind the server's clock (it was set back; 0 otherwise): times go on at the real rate until it catches up.")
        ).set(Double(wallClockLag) / 1e6)
        if let memory = ResidentMemory.current() {
            for (kind, bytes) in [("anonymous", memory.anonymous), ("file", memory.fileBacked)] {
                registry.makeGauge(
                    descriptor: Self.name("process", "resident_memory", "bytes", "Resident memory by kind: anonymous (heap) or file-backed (mapped journal, libraries)."),
                    labels: [("kind", kind)]
                ).set(Double(bytes))
            }
        }
        return registry.emitToString()
    }
}
