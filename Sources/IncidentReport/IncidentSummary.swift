import AuthCore
import LedgerCore

/// What a responder wants from a stretch of the journal, counted in one pass: decisions over time by
/// outcome, failed logins by user and address, codes issued, redeemed and replayed, consent given and
/// withdrawn, and the anomalies worth a closer look.
///
/// Pure: events in, counts out. ``record(sequence:timestamp:event:)`` is called for each event of the
/// range in order; the time buckets are fixed up front from the range's first and last timestamps.
public struct IncidentSummary: Sendable {
    /// How a stretch of time is cut into the buckets of the charts.
    public struct Buckets: Sendable, Equatable {
        /// When the first bucket starts.
        public let start: LedgerTimestamp
        /// Microseconds per bucket: whole seconds, at least one.
        public let width: Int64
        /// How many buckets there are (at least one).
        public let count: Int

        /// `count` equal buckets of whole seconds covering `start...end`, fewer when the range is shorter
        /// than `count` seconds. Any timestamps are accepted (a journal that does not verify may hold
        /// absurd ones): the arithmetic saturates instead of overflowing.
        public init(start: LedgerTimestamp, end: LedgerTimestamp, count: Int) {
            self.start = start
            let (difference, overflow) = end.microseconds.subtractingReportingOverflow(start.microseconds)
            let spanSeconds = overflow ? Int64.max / 1_000_000 : max(0, difference) / 1_000_000 + 1
            let count = Int(min(Int64(max(1, count)), spanSeconds))
            self.count = count
            let seconds = spanSeconds / Int64(count) + (spanSeconds % Int64(count) == 0 ? 0 : 1)
            width = seconds.multipliedReportingOverflow(by: 1_000_000).overflow ? Int64.max : seconds * 1_000_000
        }

        /// The bucket `timestamp` falls in, clamped to the first and last.
        public func index(of timestamp: LedgerTimestamp) -> Int {
            let (difference, overflow) = timestamp.microseconds.subtractingReportingOverflow(start.microseconds)
            guard !overflow else { return timestamp < start ? 0 : count - 1 }
            return Int(min(max(0, difference / width), Int64(count - 1)))
        }

        /// When bucket `index` starts.
        public func start(of index: Int) -> LedgerTimestamp {
            let (offset, overflow) = Int64(index).multipliedReportingOverflow(by: width)
            let (time, late) = start.microseconds.addingReportingOverflow(offset)
            return LedgerTimestamp(microsecondsSinceEpoch: overflow || late ? Int64.max : time)
        }
    }

    /// Counts per bucket for a few named series (for example issued, redeemed, replayed).
    public struct Series: Sendable, Equatable {
        /// The series' names, in drawing order.
        public let names: [String]
        /// `counts[series][bucket]`.
        public private(set) var counts: [[Int]]

        init(names: [String], buckets: Int) {
            self.names = names
            counts = Array(repeating: Array(repeating: 0, count: buckets), count: names.count)
        }

        mutating func add(_ series: Int, at bucket: Int) { counts[series][bucket] += 1 }

        /// The total of one series over all buckets.
        public func total(_ series: Int) -> Int { counts[series].reduce(0, +) }
    }

    /// Something a responder should look at, with where to start.
    public struct Anomaly: Sendable, Equatable {
        /// What kind of anomaly; the raw value is how the report names it.
        public enum Kind: String, Sendable {
            case codeReplay = "code replay"
            case refreshReuse = "refresh token reuse"
            case bruteForce = "failed-login burst"
        }

        /// What kind of anomaly it is.
        public var kind: Kind
        /// The event that shows it (for a burst, its first failure).
        public var sequence: UInt64
        public var time: LedgerTimestamp
        /// For a burst, the last failure.
        public var lastSequence: UInt64
        /// How many events it spans (for a burst, its failures).
        public var occurrences = 1
        /// A sentence for the table.
        public var summary: String
        /// The authorization decision at the root of it, for `authledger-replay explain`; `nil` when that
        /// decision is outside the report's range, too far back (see `RecentRoots`), or there is none.
        public var decisionSequence: UInt64?
        /// The `timeline` filter that shows the surrounding events, such as `--user=auth0|bob`; `nil` when
        /// the anomaly names no one (an unknown client).
        public var timelineFilter: String?

        /// The arguments of `authledger-replay timeline` for this anomaly, each one word: the filter, over
        /// the burst, or from the root decision to the event.
        public var timelineArguments: [String] {
            let start = kind == .bruteForce ? sequence : decisionSequence
            return (timelineFilter.map { [$0] } ?? []) + (start.map { ["--from=#\($0)"] } ?? []) + ["--to=#\(lastSequence)"]
        }
    }

    /// When a run of failed logins for one account or from one address is called a burst.
    public struct BurstRule: Sendable, Equatable {
        /// Failures that make a burst…
        public var failures: Int
        /// …within this many microseconds.
        public var windowMicroseconds: Int64

        /// `failures` within `windowSeconds`.
        public init(failures: Int, windowSeconds: Int64) {
            self.failures = failures
            windowMicroseconds = windowSeconds * 1_000_000
        }

        /// Five failures within ten minutes: half the server's throttle (ten in fifteen minutes), so a
        /// burst shows before the throttle stops it.
        public static let standard = BurstRule(failures: 5, windowSeconds: 600)
    }

    /// The series of ``decisions``: codes or tokens issued, a page asked for, an error.
    public static let decisionSeries = ["issued", "login or consent asked", "refused"]
    /// The series of ``codes``.
    public static let codeSeries = ["issued", "redeemed", "replayed"]
    /// The series of ``consent``.
    public static let consentSeries = ["granted", "denied", "revoked"]

    /// The time buckets of every series.
    public let buckets: Buckets
    /// When failed logins count as a burst.
    public let burstRule: BurstRule
    /// How many events were recorded, and the first and last of them.
    public private(set) var events = 0
    public private(set) var firstSequence: UInt64?
    public private(set) var lastSequence: UInt64?
    /// Authorization decisions per bucket, by ``decisionSeries``.
    public private(set) var decisions: Series
    /// Decisions by outcome name (`code_issued`, `login`, `error:invalid_request`, …).
    public private(set) var outcomes: [String: Int] = [:]
    /// Codes per bucket, by ``codeSeries``.
    public private(set) var codes: Series
    /// Consent answers and revocations per bucket, by ``consentSeries``.
    public private(set) var consent: Series
    /// Failed logins by the user they named (or the name typed, when it named none)…
    public private(set) var failedLoginsByUser: [String: Int] = [:]
    /// …and by client address.
    public private(set) var failedLoginsByAddress: [String: Int] = [:]
    /// What a responder should look at, in journal order.
    public private(set) var anomalies: [Anomaly] = []

    private var decisionOfCode = RecentRoots()
    private var decisionOfFamily = RecentRoots()
    private var decisionOfInteraction = RecentRoots()

    /// The root decisions of the most recent codes, refresh families or interactions: between `limit` and
    /// twice that many, in two generations, so that a report over a whole large journal stays bounded.
    /// An anomaly whose root is older than that gets no `explain` link, only its timeline.
    struct RecentRoots: Sendable {
        static let limit = 250_000
        private var current: [String: UInt64] = [:]
        private var previous: [String: UInt64] = [:]

        subscript(key: String) -> UInt64? {
            get { current[key] ?? previous[key] }
            set {
                if current.count >= Self.limit {
                    previous = current
                    current = [:]
                }
                current[key] = newValue
            }
        }
    }
    private var openBursts: [String: BurstTracker] = [:]

    /// A run of failures for one subject: the recent ones (within the window) and the anomaly it became.
    private struct BurstTracker: Sendable {
        var recent: [(sequence: UInt64, time: LedgerTimestamp)] = []
        var anomaly: Int?
    }

    public init(buckets: Buckets, burstRule: BurstRule = .standard) {
        self.buckets = buckets
        self.burstRule = burstRule
        decisions = Series(names: Self.decisionSeries, buckets: buckets.count)
        codes = Series(names: Self.codeSeries, buckets: buckets.count)
        consent = Series(names: Self.consentSeries, buckets: buckets.count)
    }

    /// Counts one event. Events must come in journal order.
    public mutating func record(sequence: UInt64, timestamp: LedgerTimestamp, event: AuthEvent?) {
        events += 1
        firstSequence = firstSequence ?? sequence
        lastSequence = sequence
        guard let event else { return }
        let bucket = buckets.index(of: timestamp)
        switch event {
        case .authorizeDecided(let decided):
            let outcome = decided.decision.outcome
            outcomes[outcome.name, default: 0] += 1
            switch outcome {
            case .issueCode, .issueTokens: decisions.add(0, at: bucket)
            case .login, .consent, .chooseOrganization: decisions.add(1, at: bucket)
            case .errorPage, .errorRedirect: decisions.add(2, at: bucket)
            }
        case .clientCredentialsDecided(let decided):
            // Machine-to-machine decisions count with the others: issued, or refused.
            outcomes["client_credentials:" + decided.decision.outcome.name, default: 0] += 1
            switch decided.decision.outcome {
            case .issue: decisions.add(0, at: bucket)
            case .refuse: decisions.add(2, at: bucket)
            }
        case .pushedRequest(let pushed):
            outcomes["pushed_request:" + (pushed.refusal.map { "error:" + $0.error } ?? "accepted"), default: 0] += 1
        case .logoutDecided(let decided):
            outcomes["logout:" + decided.decision.outcome.rawValue, default: 0] += 1
        case .tokenIntrospected(let introspected):
            outcomes["introspection:" + (introspected.active ? "active" : "inactive"), default: 0] += 1
        case .backchannelLogout(let delivery):
            outcomes["backchannel_logout:" + (delivery.delivered ? "delivered" : "failed"), default: 0] += 1
        case .interactionOpened(let opened):
            decisionOfInteraction[opened.interaction] = opened.decisionSequence
        case .codeIssued(let issued):
            codes.add(0, at: bucket)
            decisionOfCode[issued.codeHash] = issued.decisionSequence
        case .tokenIssued(let issued):
            if issued.codeHash != nil { codes.add(1, at: bucket) }
            if let family = issued.refreshFamily, let decision = issued.decisionSequence ?? issued.codeHash.flatMap({ decisionOfCode[$0] }) {
                decisionOfFamily[family] = decision
            }
        case .codeReplayed(let replay):
            codes.add(2, at: bucket)
            anomalies.append(
                Anomaly(
                    kind: .codeReplay, sequence: sequence, time: timestamp, lastSequence: sequence,
                    summary: "code \(replay.codeHash.prefix(12))… presented again by \(replay.clientID ?? "an unknown client"); "
                        + "\(replay.revokedTokenIDs.count) token(s) revoked",
                    decisionSequence: decisionOfCode[replay.codeHash],
                    timelineFilter: replay.clientID.map { "--client=" + $0 }))
        case .refreshFamilyRevoked(let revoked) where revoked.reason == .reuse:
            anomalies.append(
                Anomaly(
                    kind: .refreshReuse, sequence: sequence, time: timestamp, lastSequence: sequence,
                    summary: "a rotated refresh token of family \(revoked.family.prefix(12))… was used again by "
                        + "\(revoked.clientID ?? "an unknown client"); the family is revoked",
                    decisionSequence: decisionOfFamily[revoked.family],
                    timelineFilter: revoked.clientID.map { "--client=" + $0 }))
        case .consentGranted: consent.add(0, at: bucket)
        case .consentDenied: consent.add(1, at: bucket)
        case .consentRevoked: consent.add(2, at: bucket)
        case .loginFailed(let failure):
            let user = failure.userID ?? failure.username
            failedLoginsByUser[user, default: 0] += 1
            let decision = failure.interaction.flatMap { decisionOfInteraction[$0] }
            trackBurst("user", user, filter: "--user=" + user, sequence, timestamp, decision)
            // A sealed address that cannot be opened here (no data key, or erased) is grouped by its keyed
            // pseudonym, so that different addresses are never one "attacker".
            let address = failure.clientIP.flatMap { PersonalData.isMarker($0) ? failure.clientIPKey.map { "address " + $0.suffix(12) } : $0 }
            if let address {
                failedLoginsByAddress[address, default: 0] += 1
                trackBurst("address", address, filter: "--ip=" + address, sequence, timestamp, decision)
            }
        default:
            break
        }
    }

    /// Adds a failure to its subject's run; at `burstRule.failures` within the window the run becomes an
    /// anomaly, which later failures inside the window extend rather than repeat.
    private mutating func trackBurst(
        _ kind: String, _ subject: String, filter: String, _ sequence: UInt64, _ time: LedgerTimestamp, _ decision: UInt64?
    ) {
        let key = kind + " " + subject
        var tracker = openBursts[key] ?? BurstTracker()
        tracker.recent.removeAll { time.microseconds - $0.time.microseconds > burstRule.windowMicroseconds }
        if tracker.recent.isEmpty { tracker.anomaly = nil }
        tracker.recent.append((sequence, time))
        if let index = tracker.anomaly {
            anomalies[index].lastSequence = sequence
            anomalies[index].occurrences += 1
            anomalies[index].summary = Self.burstSummary(anomalies[index].occurrences, kind, subject)
        } else if tracker.recent.count >= burstRule.failures, let first = tracker.recent.first {
            tracker.anomaly = anomalies.count
            var burst = Anomaly(
                kind: .bruteForce, sequence: first.sequence, time: first.time, lastSequence: sequence,
                summary: Self.burstSummary(tracker.recent.count, kind, subject), decisionSequence: decision,
                timelineFilter: filter)
            burst.occurrences = tracker.recent.count
            anomalies.append(burst)
        }
        openBursts[key] = tracker
    }

    private static func burstSummary(_ count: Int, _ kind: String, _ subject: String) -> String {
        "\(count) failed logins for \(kind) \(subject)"
    }
}
