import ArgumentParser
import AuthCore
import AuthJournal
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerJournal

/// `authledger-replay explain SEQ`: one decision, with everything it was decided against.
struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain one authorization decision: the request, the state it met, the rule that decided, what followed.")

    @OptionGroup var journalOptions: JournalOptions
    @OptionGroup var dataKeyOptions: DataKeyOptions
    @Argument(help: "Sequence number of an auth.authorize.decided (or auth.authorize.requested) event.") var sequence: UInt64
    @Option(help: "Output format.") var format: OutputFormat = .text

    func run() async throws {
        let dataKey = try dataKeyOptions.loadIfPresent(journalOptions)
        // With the projections, the event and what it depends on are found through the indexes
        // (``JournalHistory``): no walk of the journal from its start.
        let reader = try openReader(journalOptions, projections: AuthLedger.projections)
        defer { reader.close() }
        let found: (RecordedDecisionKind?, [(UInt64, AuthEvent)])
        do {
            found = try reader.read { snapshot in
                let history = try JournalHistory(snapshot: snapshot, dataKey: dataKey)
                let decision = try history.decision(at: sequence)
                guard case .authorization(let authorization)? = decision else { return (decision, []) }
                return (decision, try history.consequences(of: authorization))
            }
        } catch {
            throw CommandExit.badInput("cannot read the journal: \(error)")
        }
        let consequences = found.1
        let decision: RecordedDecision
        switch found.0 {
        case .authorization(let authorization)?: decision = authorization
        case .clientCredentials(let grant)?: return try explain(grant)
        case .push(let push)?: return try explain(push)
        case .logout(let logout)?: return try explain(logout)
        case nil:
            // An introspection is asked again of the projections as they stood: folded from the events.
            var question: (TokenIntrospected, IntrospectionAnswer?)?
            try? DecisionHistory.forEachIntrospection(in: reader, range: sequence...sequence) { _, _, asked, answer in question = (asked, answer) }
            if let (asked, answer) = question {
                return explain(introspection: asked, at: sequence, recomputed: answer)
            }
            throw CommandExit.badInput("event #\(sequence) is not an authorization request or decision")
        }
        // Never against another configuration than the one it was decided against: without it, no replay.
        let recomputed = decision.configuration.map { AuthorizationPolicy.decide(decision.decided.input, configuration: $0) }
        let unavailable = decision.configuration == nil ? ConfigurationUnavailable(version: decision.decided.configurationVersion) : nil
        switch format {
        case .jsonl:
            var object: [String: Any] = [
                "sequence": decision.sequence, "time": decision.timestamp.rfc3339, "request_sequence": decision.decided.requestSequence,
                "rule": decision.decided.decision.rule, "outcome": decision.decided.decision.outcome.name,
                "configuration_version": decision.decided.configurationVersion,
                "followed_by": consequences.map { ["sequence": $0.0, "type": $0.1.eventType.name] },
            ]
            if let recomputed, let configuration = decision.configuration {
                object["replay_agrees"] = recomputed.isSameDecision(as: decision.decided.decision)
                object["re_decidable"] =
                    recomputed.isSameDecision(as: decision.decided.decision)
                    || decision.decided.input.withheldPersonalValues(in: configuration) == nil
            } else {
                object["replay_agrees"] = NSNull()
                object["re_decidable"] = false
                object["not_re_derivable"] = unavailable?.description ?? ""
            }
            if let input = try? JSONSerialization.jsonObject(with: Data(PayloadCoding.encode(decision.decided.input))) {
                object["input"] = input
            }
            printJSONLine(object)
        case .text:
            printText(Explanation.render(decision, recomputed: recomputed, consequences: consequences))
        }
        try Self.failIfUnavailable(unavailable)
    }

    /// Exit 1 when the decision could not be re-derived (its explanation, printed, says why).
    static func failIfUnavailable(_ unavailable: ConfigurationUnavailable?) throws {
        if let unavailable { throw CommandExit.checkFailed("not re-derivable: \(unavailable)") }
    }
}

extension ExplainCommand {
    /// A client credentials decision: the request, the client's grants it met, the rule, the outcome.
    func explain(_ decision: RecordedClientCredentialsDecision) throws {
        let decided = decision.decided
        let recomputed = decision.recomputed
        let agrees = recomputed?.isSameDecision(as: decided.decision)
        let unavailable = recomputed == nil ? ConfigurationUnavailable(version: decided.configurationVersion) : nil
        switch format {
        case .jsonl:
            var object: [String: Any] = [
                "sequence": decision.sequence, "time": decision.timestamp.rfc3339, "grant_type": "client_credentials",
                "rule": decided.decision.rule, "outcome": decided.decision.outcome.name, "configuration_version": decided.configurationVersion,
                "replay_agrees": agrees ?? NSNull(), "re_decidable": agrees != nil,
            ]
            if let unavailable { object["not_re_derivable"] = unavailable.description }
            if let input = try? JSONSerialization.jsonObject(with: Data(PayloadCoding.encode(decided.input))) { object["input"] = input }
            printJSONLine(object)
        case .text:
            let input = decided.input
            var lines: [TerminalText] = ["Client credentials decision #\(decision.sequence) at \(decision.timestamp.rfc3339)", ""]
            lines.append("Request as received: client \(input.clientID), audience \(input.audience ?? "-"), resource \(input.resource ?? "-"), scope \(input.scope ?? "-")")
            lines.append("")
            lines.append("State it met (decided at \(input.now.rfc3339)), configuration version #\(decided.configurationVersion):")
            if let configuration = decision.configuration {
                let grants = configuration.clientGrants.values.filter { $0.clientID == input.clientID }.sorted { $0.audience < $1.audience }
                if grants.isEmpty { lines.append("  client grants of \(input.clientID): none") }
                for grant in grants { lines.append("  client grant for \(grant.audience): \(grant.scopes.joined(separator: " "))") }
            } else {
                lines.append("  that configuration is not in this journal")
            }
            lines.append("")
            lines.append("Rule that decided: \(decided.decision.rule)")
            switch decided.decision.outcome {
            case .issue(let grant): lines.append("Outcome: access token for \(grant.audience), scopes \(grant.scopes.joined(separator: " "))")
            case .refuse(let error): lines.append("Outcome: refused \(error.code.rawValue): \(error.description)")
            }
            let replay: TerminalText =
                switch (agrees, recomputed) {
                case (true?, _): "the same decision function gives the same outcome today"
                case (false?, let recomputed?): "DIFFERENT today: \(recomputed.rule) -> \(recomputed.outcome.name)"
                default: "not re-derivable: \(unavailable?.description ?? "")"
                }
            lines.append("Replay: \(replay)")
            printText(TerminalText.joined(lines, separator: "\n"))
        }
        try Self.failIfUnavailable(unavailable)
    }
}

extension ExplainCommand {
    /// A pushed authorization request: its parameters, the check they met, and what became of it.
    func explain(_ decision: RecordedPushDecision) throws {
        let pushed = decision.pushed
        let recheck = decision.recheck()
        let unavailable = pushed.input != nil && decision.configuration == nil
        let outcome = pushed.refusal.map { "refused \($0.error) by rule \($0.rule): \($0.description)" } ?? "accepted (request_uri until \(pushed.expiresAt.rfc3339))"
        switch format {
        case .jsonl:
            var object: [String: Any] = [
                "sequence": decision.sequence, "time": decision.timestamp.rfc3339, "request": "pushed", "client_id": pushed.clientID,
                "accepted": pushed.refusal == nil, "replay_agrees": recheck?.agrees ?? NSNull(),
            ]
            if let refusal = pushed.refusal { object["rule"] = refusal.rule; object["error"] = refusal.error }
            printJSONLine(object)
        case .text:
            var lines: [TerminalText] = ["Pushed authorization request #\(decision.sequence) at \(decision.timestamp.rfc3339) by \(pushed.clientID)", ""]
            lines.append("Parameters as pushed:")
            var parameters = pushed.parameters.values.mapValues(\.description)
            parameters["login_hint"] = pushed.parameters.loginHint?.description
            for (name, value) in parameters.sorted(by: { $0.key < $1.key }) { lines.append("  \(name) = \(value)") }
            lines.append("")
            lines.append("Checked by the authorization rules (rule set \(pushed.policy.map(String.init) ?? "-"), configuration #\(pushed.configurationVersion.map(String.init) ?? "-")), before any login:")
            lines.append("Outcome: \(outcome)")
            let replay: TerminalText =
                switch recheck {
                case nil where unavailable:
                    "not re-derivable: \(pushed.configurationVersion.map { ConfigurationUnavailable(version: $0).description } ?? "recorded without its configuration version")"
                case nil: "not re-decidable (recorded before its inputs were)"
                case let (agrees, _)? where agrees: "the same rules give the same outcome today"
                case let (_, recomputed)?: "DIFFERENT today: \(recomputed.map { "refused \($0.error) by \($0.rule)" } ?? "accepted")"
                }
            lines.append("Replay: \(replay)")
            printText(TerminalText.joined(lines, separator: "\n"))
        }
        if unavailable {
            throw CommandExit.checkFailed("not re-derivable: \(pushed.configurationVersion.map { ConfigurationUnavailable(version: $0).description } ?? "recorded without its configuration version")")
        }
    }
}

extension ExplainCommand {
    /// A logout request: what it presented, the session it met, the rule, and what the rules give today.
    func explain(_ decision: RecordedLogoutDecision) throws {
        let decided = decision.decided
        let recomputed = decision.recomputed()
        let unavailable = recomputed == nil ? ConfigurationUnavailable(version: decided.configurationVersion) : nil
        switch format {
        case .jsonl:
            printJSONLine([
                "sequence": decision.sequence, "time": decision.timestamp.rfc3339, "request": "logout", "rule": decided.decision.rule,
                "outcome": decided.decision.outcome.rawValue, "replay_agrees": recomputed.map { $0 == decided.decision } ?? NSNull(),
                "configuration_version": decided.configurationVersion,
            ])
        case .text:
            let request = decided.request
            var lines: [TerminalText] = ["Logout request #\(decision.sequence) at \(decision.timestamp.rfc3339)", ""]
            let hint: String =
                if let hint = request.hint { "of \(hint.subject) for \(hint.clientID), logged in at \(hint.authTime)" }
                else if request.invalidHint { "not an ID token of this server" } else { "none" }
            lines.append("Request as received: id_token_hint \(hint); client_id \(request.clientID ?? "-"); post_logout_redirect_uri \(request.postLogoutRedirectURI ?? "-")")
            lines.append(
                "Session it met: \(decided.session.map { "user \($0.userID), authenticated \($0.authTime.rfc3339)" } ?? "none"); configuration version #\(decided.configurationVersion)")
            lines.append("")
            lines.append("Rule that decided: \(decided.decision.rule)")
            lines.append("Outcome: \(decided.decision.outcome.rawValue)\(decided.decision.redirect.map { ", then to \($0)" } ?? "")")
            let replay: TerminalText =
                if let recomputed {
                    recomputed == decided.decision
                        ? "the same rules give the same outcome today" : "DIFFERENT today: \(recomputed.rule) -> \(recomputed.outcome.rawValue)"
                } else {
                    "not re-derivable: \(unavailable?.description ?? "")"
                }
            lines.append("Replay: \(replay)")
            printText(TerminalText.joined(lines, separator: "\n"))
        }
        try Self.failIfUnavailable(unavailable)
    }

    /// An introspection: the question, the answer given, and the answer the projections of that moment give.
    func explain(introspection asked: TokenIntrospected, at sequence: UInt64, recomputed: IntrospectionAnswer?) {
        let agrees = recomputed.map { $0.active == asked.active && $0.reason == asked.reason }
        switch format {
        case .jsonl:
            printJSONLine([
                "sequence": sequence, "request": "introspection", "client_id": asked.clientID, "kind": asked.kind.rawValue,
                "active": asked.active, "reason": asked.reason ?? "", "replay_agrees": agrees ?? NSNull(),
            ])
        case .text:
            var lines: [TerminalText] = ["Introspection #\(sequence) by \(asked.clientID)", ""]
            lines.append("Token: \(asked.kind.rawValue) \(asked.token.map { String($0.prefix(16)) + "…" } ?? "-")\(asked.subject.map { " of \($0)" } ?? "")\(asked.tokenClientID.map { " issued to \($0)" } ?? "")")
            lines.append("Answer: \(asked.active ? "active" : "inactive (\(asked.reason ?? "-"))")")
            let replay: TerminalText =
                switch agrees {
                case nil: "not re-decidable (recorded before its inputs were)"
                case true?: "the projections of that moment give the same answer"
                case false?: "DIFFERENT: \(recomputed!.active ? "active" : "inactive (\(recomputed!.reason ?? "-"))")"
                }
            lines.append("Replay: \(replay)")
            printText(TerminalText.joined(lines, separator: "\n"))
        }
    }
}

/// The human-readable explanation of a decision.
enum Explanation {
    static func render(_ decision: RecordedDecision, recomputed: AuthorizationDecision?, consequences: [(UInt64, AuthEvent)]) -> TerminalText {
        let decided = decision.decided
        let input = decided.input
        var lines: [TerminalText] = []
        lines.append("Decision #\(decision.sequence) at \(decision.timestamp.rfc3339) (request #\(decided.requestSequence))")
        lines.append("")
        lines.append("Request as received:")
        var parameters = input.parameters.values.mapValues(\.description)
        parameters["login_hint"] = input.parameters.loginHint?.description
        for (name, value) in parameters.sorted(by: { $0.key < $1.key }) { lines.append("  \(name) = \(value)") }
        if !input.parameters.repeated.isEmpty { lines.append("  repeated: \(input.parameters.repeated.joined(separator: ", "))") }
        lines.append("")
        lines.append("State it met (decided at \(input.now.rfc3339)):")
        if let session = input.session {
            lines.append("  session: user \(session.userID), connection \(session.connection), authenticated \(session.authTime.rfc3339), expires \(session.expiresAt.rfc3339)")
        } else {
            lines.append("  session: none")
        }
        if input.consents.isEmpty {
            lines.append("  consents of that user for the client: none")
        } else {
            for (key, scopes) in input.consents.sorted(by: { $0.key < $1.key }) {
                let audience = key.split(separator: "\u{1F}", omittingEmptySubsequences: false).last.map(String.init) ?? ""
                lines.append("  consent for audience '\(audience)': \(scopes.joined(separator: " "))")
            }
        }
        let progress = input.progress
        if progress != .fresh {
            lines.append(
                "  in this interaction: logged in \(progress.authenticatedAt?.rfc3339 ?? "no"), consent \(progress.consent?.rawValue ?? "not asked"), organization \(progress.organizationID ?? "none")")
        }
        lines.append("  configuration version #\(decided.configurationVersion)\(decision.configuration == nil ? ": not in this journal" : "")")
        let configuration = decision.configuration ?? ConfigurationState()
        if decision.configuration == nil {
            // Nothing stands in for it: the client and API as they were are unknown here.
        } else if let clientID = input.parameters["client_id"], let client = configuration.clients[clientID] {
            lines.append(
                "  client \(client.clientID) (\(client.appType.rawValue), \(client.firstParty ? "first" : "third") party): redirect URIs \(client.redirectURIs.joined(separator: ", ")); connections \(client.connections.joined(separator: ", ")); grants \(client.grantTypes.joined(separator: ", ")); organizations \(client.organizationUsage.rawValue)")
        } else {
            lines.append("  client: not registered")
        }
        if let audience = input.parameters["audience"] ?? configuration.settings?.defaultAudience, let api = configuration.apis[audience] {
            lines.append("  API \(api.identifier): scopes \(api.scopes.joined(separator: " ")); offline access \(api.allowOfflineAccess); skip consent for first party \(api.skipConsentForFirstParty)")
        }
        lines.append("")
        lines.append("Rule that decided: \(decided.decision.rule)")
        lines.append("Outcome: \(describe(decided.decision.outcome))")
        let replay: TerminalText =
            if let recomputed, decision.configuration != nil {
                if recomputed.isSameDecision(as: decided.decision) {
                    "the same decision function gives the same outcome today"
                } else if let withheld = input.withheldPersonalValues(in: configuration) {
                    "not re-decidable: inputs \(withheld == .erased ? "erased" : "sealed (no data key)") (today: \(recomputed.rule) -> \(describe(recomputed.outcome)))"
                } else {
                    "DIFFERENT today: \(recomputed.rule) -> \(describe(recomputed.outcome))"
                }
            } else {
                "not re-derivable: \(ConfigurationUnavailable(version: decided.configurationVersion))"
            }
        lines.append("Replay: \(replay)")
        lines.append("")
        lines.append("What followed:")
        if consequences.isEmpty { lines.append("  nothing") }
        for (sequence, event) in consequences { lines.append("  #\(sequence) \(summary(event))") }
        return TerminalText.joined(lines, separator: "\n")
    }

    static func describe(_ outcome: AuthorizationOutcome) -> TerminalText {
        switch outcome {
        case .errorPage(let error, let description): "error page \(error.rawValue): \(description)"
        case .errorRedirect(let error, let description, let delivery): "redirect to \(delivery.redirectURI) with \(error.rawValue): \(description)"
        case .login(let connection, _): "login page (\(connection))"
        case .consent(let request): "consent page for \(request.scopes.joined(separator: " "))"
        case .chooseOrganization(let choices): "organization picker (\(choices.joined(separator: ", ")))"
        case .issueCode(let grant, let delivery): "code issued to \(grant.clientID) for \(grant.userID), scopes \(grant.scopes.joined(separator: " ")), to \(delivery.redirectURI)"
        case .issueTokens(let grant, let types, _): "tokens (\(types.joined(separator: " "))) issued to \(grant.clientID) for \(grant.userID)"
        }
    }

    static func summary(_ event: AuthEvent) -> TerminalText {
        switch event {
        case .codeIssued(let issued): "code issued (hash \(issued.codeHash.prefix(12))…), expires \(issued.grant.expiresAt.rfc3339)"
        case .tokenIssued(let issued): "tokens issued by \(issued.grantType) to \(issued.clientID)\(issued.refreshFamily.map { " (refresh family \($0.prefix(12))…)" } ?? "")"
        case .tokenRejected(let rejected): "token request rejected: \(rejected.error.code.rawValue) \(rejected.error.description)"
        case .codeReplayed(let replay): "code presented again: replay; \(replay.revokedTokenIDs.count) tokens revoked"
        case .refreshFamilyRevoked(let revoked): "refresh family revoked (\(revoked.reason.rawValue))"
        case .interactionOpened: "interaction opened (the browser was sent to a page)"
        default: "\(event.eventType.name)"
        }
    }
}
