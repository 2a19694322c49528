import ArgumentParser
import AuthCore
import AuthJournal
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerJournal

/// `authledger-replay replay [--from T] [--to T] [--tenant FILE]`.
struct ReplayDecisionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Re-decide every recorded authorization request with the server's own decision function.",
        discussion: """
            Each request is decided again against the state recorded with it and the configuration in force at its \
            moment; any decision that comes out differently is reported (exit 1). A decision that read personal \
            data since erased (or sealed, without the data key) is re-decided on what remains; if it comes out \
            differently it is reported as not re-decidable, which is not a difference. A decision whose \
            configuration version is not in the journal (archived before it) is reported as not re-derivable, \
            with why, and never re-decided against another configuration (exit 1). With --tenant, the \
            configuration of that file is used instead: the report lists the decisions that would have changed, \
            and how (exit 0).
            """)

    @OptionGroup var journalOptions: JournalOptions
    @OptionGroup var dataKeyOptions: DataKeyOptions
    @Option(help: "From this time (RFC 3339) or #sequence.") var from: String?
    @Option(help: "To this time (RFC 3339) or #sequence, inclusive.") var to: String?
    @Option(help: ArgumentHelp("What if this tenant file had been in force?", valueName: "file")) var tenant: String?
    @Option(help: "Output format.") var format: OutputFormat = .text

    /// Secrets do not take part in decisions, so the what-if configuration is built without hashing.
    struct NoHashing: SecretHasher {
        func hash(_ secret: String) -> String { "" }
        func verify(_ secret: String, against hash: String) -> Bool { true }
    }

    func run() async throws {
        let dataKey = try dataKeyOptions.loadIfPresent(journalOptions)
        let reader = try openReader(journalOptions)
        defer { reader.close() }
        var whatIf: ConfigurationState?
        if let tenant {
            do {
                let events = try TenantPlanner(hasher: NoHashing()).plan(try TenantFile.load(path: tenant), against: ConfigurationState())
                var state = ConfigurationState()
                for (index, event) in events.enumerated() { state.apply(event, at: UInt64(index + 1)) }
                whatIf = state
            } catch {
                throw CommandExit.badInput("\(error)")
            }
        }
        guard let range = try JournalPoint.range(from: from, to: to, in: reader) else {
            if format == .text { printText("no events in that range") }
            return
        }
        var total = 0
        var changed: [String: Int] = [:]
        var differences = 0
        var notReDecidable = 0
        var notReDerivable = 0
        /// Reports a decision whose configuration the journal does not hold: it is not re-decided.
        func unavailable(_ sequence: UInt64, _ time: LedgerTimestamp, _ what: String, version: UInt64?) {
            notReDerivable += 1
            let reason = version.map { ConfigurationUnavailable(version: $0).description }
                ?? "it was recorded without the configuration version it was checked against: it cannot be re-derived"
            switch format {
            case .text: printText("#\(sequence) \(time.rfc3339) (\(what)): not re-derivable: \(reason)")
            case .jsonl: printJSONLine(["sequence": sequence, "time": time.rfc3339, "request": what, "not_re_derivable": reason])
            }
        }
        do {
            let clientCredentials = { (decision: RecordedClientCredentialsDecision) in
                total += 1
                let recorded = decision.decided.decision
                guard let configuration = whatIf ?? decision.configuration else {
                    return unavailable(decision.sequence, decision.timestamp, "client credentials", version: decision.decided.configurationVersion)
                }
                let recomputed = ClientCredentialsPolicy.decide(decision.decided.input, configuration: configuration)
                guard !recomputed.isSameDecision(as: recorded) else { return }
                differences += 1
                changed["client_credentials \(recorded.outcome.name) -> \(recomputed.outcome.name) (\(recomputed.rule))", default: 0] += 1
                switch format {
                case .text:
                    printText("#\(decision.sequence) \(decision.timestamp.rfc3339) client \(decision.decided.input.clientID) (client credentials): recorded \(recorded.outcome.name) by \(recorded.rule); \(whatIf == nil ? "recomputed" : "would be") \(recomputed.outcome.name) by \(recomputed.rule)")
                case .jsonl:
                    printJSONLine([
                        "sequence": decision.sequence, "time": decision.timestamp.rfc3339, "client_id": decision.decided.input.clientID,
                        "grant_type": "client_credentials",
                        "recorded": ["outcome": recorded.outcome.name, "rule": recorded.rule],
                        "recomputed": ["outcome": recomputed.outcome.name, "rule": recomputed.rule],
                    ])
                }
            }
            let pushes = { (decision: RecordedPushDecision) in
                if whatIf == nil, decision.pushed.input != nil, decision.configuration == nil {
                    total += 1
                    return unavailable(decision.sequence, decision.timestamp, "pushed request", version: decision.pushed.configurationVersion)
                }
                guard let (agrees, recomputed) = decision.recheck(against: whatIf) else { return }
                total += 1
                guard !agrees else { return }
                differences += 1
                let recorded = decision.pushed.refusal.map { "refused \($0.error) (\($0.rule))" } ?? "accepted"
                let now = recomputed.map { "refused \($0.error) (\($0.rule))" } ?? "accepted"
                changed["pushed request \(recorded) -> \(now)", default: 0] += 1
                switch format {
                case .text:
                    printText("#\(decision.sequence) \(decision.timestamp.rfc3339) client \(decision.pushed.clientID) (pushed request): recorded \(recorded); \(whatIf == nil ? "recomputed" : "would be") \(now)")
                case .jsonl:
                    printJSONLine([
                        "sequence": decision.sequence, "time": decision.timestamp.rfc3339, "client_id": decision.pushed.clientID,
                        "request": "pushed", "recorded": recorded, "recomputed": now,
                    ])
                }
            }
            let logouts = { (decision: RecordedLogoutDecision) in
                total += 1
                let recorded = decision.decided.decision
                guard let recomputed = decision.recomputed(against: whatIf) else {
                    return unavailable(decision.sequence, decision.timestamp, "logout request", version: decision.decided.configurationVersion)
                }
                guard recomputed != recorded else { return }
                differences += 1
                changed["logout \(recorded.outcome.rawValue) -> \(recomputed.outcome.rawValue) (\(recomputed.rule))", default: 0] += 1
                switch format {
                case .text:
                    printText("#\(decision.sequence) \(decision.timestamp.rfc3339) (logout request): recorded \(recorded.outcome.rawValue) by \(recorded.rule); \(whatIf == nil ? "recomputed" : "would be") \(recomputed.outcome.rawValue) by \(recomputed.rule)")
                case .jsonl:
                    printJSONLine([
                        "sequence": decision.sequence, "time": decision.timestamp.rfc3339, "request": "logout",
                        "recorded": ["outcome": recorded.outcome.rawValue, "rule": recorded.rule],
                        "recomputed": ["outcome": recomputed.outcome.rawValue, "rule": recomputed.rule],
                    ])
                }
            }
            try DecisionHistory.forEachDecision(
                in: reader, range: range, dataKey: dataKey, clientCredentials: clientCredentials, pushes: pushes, logouts: logouts
            ) { decision, _ in
                total += 1
                let recorded = decision.decided.decision
                guard let configuration = whatIf ?? decision.configuration else {
                    return unavailable(decision.sequence, decision.timestamp, "authorization", version: decision.decided.configurationVersion)
                }
                let recomputed = AuthorizationPolicy.decide(decision.decided.input, configuration: configuration)
                guard !recomputed.isSameDecision(as: recorded) else { return }
                if let withheld = decision.decided.input.withheldPersonalValues(in: configuration) {
                    notReDecidable += 1
                    let reason = withheld == .erased ? "inputs erased" : "inputs sealed (no data key)"
                    switch format {
                    case .text: printText("#\(decision.sequence) \(decision.timestamp.rfc3339): not re-decidable: \(reason)")
                    case .jsonl: printJSONLine(["sequence": decision.sequence, "time": decision.timestamp.rfc3339, "not_re_decidable": reason])
                    }
                    return
                }
                differences += 1
                changed["\(recorded.outcome.name) -> \(recomputed.outcome.name) (\(recomputed.rule))", default: 0] += 1
                switch format {
                case .text:
                    printText("#\(decision.sequence) \(decision.timestamp.rfc3339) client \(decision.decided.input.parameters["client_id"] ?? "-"): recorded \(recorded.outcome.name) by \(recorded.rule); \(whatIf == nil ? "recomputed" : "would be") \(recomputed.outcome.name) by \(recomputed.rule)")
                case .jsonl:
                    printJSONLine([
                        "sequence": decision.sequence, "time": decision.timestamp.rfc3339,
                        "client_id": decision.decided.input.parameters["client_id"] ?? "",
                        "recorded": ["outcome": recorded.outcome.name, "rule": recorded.rule],
                        "recomputed": ["outcome": recomputed.outcome.name, "rule": recomputed.rule],
                    ])
                }
            }
            // Introspections: asked again of the projections as they stood (a tenant file changes nothing here).
            if whatIf == nil {
                try DecisionHistory.forEachIntrospection(in: reader, range: range) { sequence, time, introspected, recomputed in
                    guard let recomputed else { return }
                    total += 1
                    guard recomputed.active != introspected.active || recomputed.reason != introspected.reason else { return }
                    differences += 1
                    changed["introspection \(introspected.active) -> \(recomputed.active) (\(recomputed.reason ?? "active"))", default: 0] += 1
                    switch format {
                    case .text:
                        printText("#\(sequence) \(time.rfc3339) client \(introspected.clientID) (introspection): recorded active \(introspected.active); recomputed \(recomputed.active) (\(recomputed.reason ?? "-"))")
                    case .jsonl:
                        printJSONLine([
                            "sequence": sequence, "time": time.rfc3339, "client_id": introspected.clientID, "request": "introspection",
                            "recorded": ["active": introspected.active], "recomputed": ["active": recomputed.active],
                        ])
                    }
                }
            }
        } catch {
            throw CommandExit.badInput("cannot read the journal: \(error)")
        }
        switch format {
        case .text:
            let withheld = notReDecidable > 0 ? "; \(notReDecidable) not re-decidable (inputs erased)" : ""
            let underived = notReDerivable > 0 ? "; \(notReDerivable) not re-derivable (configuration not in the journal)" : ""
            printText("\(total) decisions re-decided in #\(range.lowerBound)…#\(range.upperBound); \(differences) \(whatIf == nil ? "differ from the record" : "would change")\(withheld)\(underived)")
            for (change, count) in changed.sorted(by: { $0.key < $1.key }) { printText("  \(count) × \(change)") }
        case .jsonl:
            printJSONLine([
                "decisions": total, "differences": differences, "not_re_decidable": notReDecidable, "not_re_derivable": notReDerivable,
                "what_if": whatIf != nil,
            ])
        }
        if whatIf == nil && differences > 0 {
            throw CommandExit.checkFailed("\(differences) decisions differ when re-decided")
        }
        if notReDerivable > 0 {
            throw CommandExit.checkFailed("\(notReDerivable) decisions cannot be re-derived: the configuration they were decided against is not in the journal")
        }
    }
}
