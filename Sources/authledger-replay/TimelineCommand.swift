import ArgumentParser
import AuthCore
import AuthJournal
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerJournal

/// `authledger-replay timeline`: the events that concern a user, client, code, session or address, in order.
struct TimelineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timeline",
        abstract: "The events concerning a user, client, code, session, IP address or trace, in order, from the secondary indexes.",
        discussion: "Codes and session ids are hashed before lookup (only hashes are in the journal). Filters combine (AND).")

    @OptionGroup var journalOptions: JournalOptions
    @Option(help: "User id.") var user: String?
    @Option(help: "Client id.") var client: String?
    @Option(help: "An authorization code, as the client received it (write --code=VALUE: a code may start with '-').")
    var code: String?
    @Option(help: "A session id, as in the al_session cookie (write --session=VALUE).") var session: String?
    @Option(help: "A code by its hash, as events record it (code_hash): for a code known only from the journal.")
    var codeHash: String?
    @Option(help: "A session by its hash, as events record it (session_hash).") var sessionHash: String?
    @Option(help: "Client IP address.") var ip: String?
    @Option(help: "A trace id (32 hex digits, as in a traceparent header or a trace viewer): the events its request recorded.")
    var trace: String?
    @Option(help: "From this time (RFC 3339) or #sequence.") var from: String?
    @Option(help: "To this time (RFC 3339) or #sequence, inclusive.") var to: String?
    @Option(help: "At most this many events (the first of the range).") var limit: Int?
    @Option(help: "Output format.") var format: OutputFormat = .text
    @OptionGroup var dataKeyOptions: DataKeyOptions

    func run() async throws {
        if let limit, limit < 1 { throw CommandExit.badInput("--limit must be at least 1") }
        let limit = self.limit ?? Int.max
        let reader = try openReader(journalOptions, projections: AuthLedger.projections)
        defer { reader.close() }
        guard let range = try JournalPoint.range(from: from, to: to, in: reader) else { return }
        // With the data key, sealed personal values are shown opened, and --ip finds sealed events too: by the
        // pseudonym of the address under each subject's key that still exists (an erased subject's is gone).
        let dataKey = try dataKeyOptions.loadIfPresent(journalOptions)
        let ip = self.ip
        let trace = try self.trace.map { id in
            let lowered = id.lowercased()
            guard RequestTrace.isTraceID(lowered) else { throw CommandExit.badInput("--trace takes a trace id: 32 hex digits, not all zero") }
            return lowered
        }
        do {
            try reader.read { snapshot in
                let opener = SealedValueOpener(snapshot: snapshot, dataKey: dataKey)
                let filters: [(IndexKind, [String])] = [
                    user.map { (.user, [$0]) }, client.map { (.client, [$0]) }, code.map { (.code, [OpaqueToken.hash($0)]) },
                    session.map { (.session, [OpaqueToken.hash($0)]) }, codeHash.map { (.code, [$0]) }, sessionHash.map { (.session, [$0]) },
                    try ip.map { (.address, [$0] + (try opener.addressKeys($0))) }, trace.map { (.trace, [$0]) },
                ].compactMap { $0 }
                let store = SnapshotStore(snapshot: snapshot)
                if !filters.isEmpty, try ProjectionVersion.stored(in: snapshot) != ProjectionVersion.current {
                    // The filters read the index projection, which may be incomplete until a server rebuilds it.
                    throw CommandExit.badInput(
                        "the journal's projections are of another version, so its indexes may be incomplete; "
                            + "run without filters (every event), or open it once with a server of this version")
                }
                var selected: [UInt64]?
                for (kind, values) in filters {
                    let sequences = try Set(values.flatMap { try store.sequences(kind, $0) }).filter { range.contains($0) }.sorted()
                    selected = selected.map { current in
                        let wanted = Set(sequences)
                        return current.filter { wanted.contains($0) }
                    } ?? sequences
                }
                let emit: (EventEnvelope) throws -> Void = { envelope in
                    let event = try opener.event(envelope)
                    switch format {
                    case .text:
                        // Every recorded value is escaped: one event, one line, whatever a request put in it.
                        let detail: TerminalText = event.map { "  \(TimelineText.describe($0))" } ?? ""
                        let traced: TerminalText = RequestTrace.traceID(in: envelope.payload).map { "  [trace \($0)]" } ?? ""
                        printText("#\(envelope.sequence) \(envelope.timestamp.rfc3339) \(envelope.type.name)\(detail)\(traced)")
                    case .jsonl:
                        // Sealed values opened as in the text output (or shown as markers).
                        let opened = (try? PersonalData.open(envelope.payload, type: envelope.type, opener: opener.opener)) ?? envelope.payload
                        let payload = EventRendering.jsonObject(ofPayload: opened) ?? NSNull()
                        var line: [String: Any] = ["sequence": envelope.sequence, "time": envelope.timestamp.rfc3339, "type": envelope.type.name, "payload": payload]
                        // The text output's words for it (escaped as there), for readers that show both.
                        if let event, case let words = TimelineText.describe(event).description, !words.isEmpty { line["description"] = words }
                        printJSONLine(line)
                    }
                }
                if let selected {
                    for sequence in selected.prefix(limit) {
                        if let envelope = try snapshot.event(sequence) { try emit(envelope) }
                    }
                } else {
                    var emitted = 0
                    try snapshot.forEachEvent(from: range.lowerBound) { envelope in
                        guard envelope.sequence <= range.upperBound, emitted < limit else { return false }
                        try emit(envelope)
                        emitted += 1
                        return true
                    }
                }
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw CommandExit.badInput("cannot read the journal: \(error)")
        }
    }
}

/// One line per event, for people.
enum TimelineText {
    static func describe(_ event: AuthEvent) -> TerminalText {
        switch event {
        case .authorizeRequested(let requested):
            "client \(requested.parameters["client_id"] ?? "-") from \(requested.clientIP ?? "-")"
        case .authorizeDecided(let decided):
            "\(decided.decision.outcome.name) by rule \(decided.decision.rule)\(decided.input.session.map { " for \($0.userID)" } ?? "")"
        case .loginSucceeded(let login): "\(login.userID) logged in from \(login.clientIP ?? "-")"
        case .loginFailed(let failure): "login failed for \(failure.username) (\(failure.reason.rawValue)) from \(failure.clientIP ?? "-")"
        case .consentGranted(let answer): "\(answer.userID) consented to \(answer.clientID): \(answer.scopes.joined(separator: " "))"
        case .consentDenied(let answer): "\(answer.userID) denied consent to \(answer.clientID)"
        case .consentRevoked(let revoked): "consent of \(revoked.userID) for \(revoked.clientID) revoked"
        case .codeIssued(let issued): "code \(issued.codeHash.prefix(12))… for \(issued.grant.userID) to \(issued.grant.clientID)"
        case .tokenIssued(let issued): "tokens (\(issued.grantType)) for \(issued.userID) to \(issued.clientID)"
        case .tokenRejected(let rejected): "token request by \(rejected.clientID ?? "-") rejected: \(rejected.error.code.rawValue)"
        case .codeReplayed(let replay): "code \(replay.codeHash.prefix(12))… replayed; \(replay.revokedTokenIDs.count) tokens revoked"
        case .refreshFamilyRevoked(let revoked): "refresh family revoked (\(revoked.reason.rawValue))"
        case .loggedOut(let logout): "\(logout.userID) logged out\(logout.clientID.map { " (asked by \($0))" } ?? "")"
        case .projectionsPruned(let pruned): "\(pruned.removed) expired \(pruned.table) entries pruned"
        case .configuration(.userSet(let user)): "user \(user.userID) <\(user.email.description)> in \(user.connection)"
        case .configuration(.invitationSet(let invitation)):
            "invitation \(invitation.ticket) to \(invitation.organizationID) for <\(invitation.email.description)>"
        case .retentionApplied(let applied):
            "personal data of \(applied.subjectsForgotten) anonymous subjects before \(applied.before) forgotten (\(applied.personalDataDays) days)"
        case .subjectErased(let erased):
            "personal data of \(erased.userID) erased (\(erased.keysDestroyed) key destroyed)\(erased.reason.map { ": \($0)" } ?? "")"
        case .clientCredentialsDecided(let decided):
            "client credentials for \(decided.input.clientID): \(decided.decision.outcome.name) by rule \(decided.decision.rule)"
        case .clientAssertionUsed(let used): "\(used.clientID) authenticated with a signed assertion (private_key_jwt)"
        case .pushedRequest(let pushed):
            pushed.refusal.map { "authorization request pushed by \(pushed.clientID) from \(pushed.clientIP ?? "-") refused: \($0.error) by rule \($0.rule)" }
            ?? "authorization request pushed by \(pushed.clientID) from \(pushed.clientIP ?? "-"), usable until \(pushed.expiresAt.rfc3339)"
        case .tokenIntrospected(let introspected):
            "\(introspected.clientID) introspected \(introspected.kind.rawValue): \(introspected.active ? "active" : "inactive (\(introspected.reason ?? "-"))")"
        case .logoutDecided(let decided):
            "logout request\(decided.request.clientID.map { " from \($0)" } ?? ""): \(decided.decision.outcome.rawValue) by rule \(decided.decision.rule)\(decided.session.map { " (session of \($0.userID))" } ?? "")"
        case .backchannelLogout(let delivery):
            "back-channel logout of \(delivery.userID) to \(delivery.clientID): \(delivery.delivered ? "delivered" : "failed") after \(delivery.attempts) attempts\(delivery.status.map { " (HTTP \($0))" } ?? "")"
        case .configuration(.clientGrantSet(let grant)): "client grant: \(grant.clientID) for \(grant.audience): \(grant.scopes.joined(separator: " "))"
        default: ""
        }
    }
}
