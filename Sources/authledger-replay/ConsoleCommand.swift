import ArgumentParser
import Foundation
import HTTPTypes
import Hummingbird
import IncidentReport
import InvestigationConsole
import LedgerCommandSupport
import LedgerCore
import LedgerJournal
import Synchronization

/// `authledger-replay console`: the forensics commands' answers as linked pages, served read-only on
/// loopback for an investigator who would rather click than type.
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Serve the investigation console: report, timelines, explain and consent as linked pages, read-only, on 127.0.0.1.",
        discussion: """
            Each page is the answer of the command of the same name, run in this process on the journal (the same \
            code, the same output): report of any range, timeline of a user, client, code, session, address or \
            trace, explain of any decision, consent at any moment, and one event's payload. How the journal \
            verified (against --public-key, or only self-consistent) is at the top of every page; /verify \
            verifies again. It listens on 127.0.0.1 only, answers GET alone, and refuses a request whose Host \
            is not its own address (a web page cannot reach it through DNS rebinding). No script, no asset \
            from elsewhere.
            """)

    @OptionGroup var journalOptions: JournalOptions
    @OptionGroup var pinnedKeys: PinnedKeyOptions
    @OptionGroup var dataKeyOptions: DataKeyOptions
    @Option(help: ArgumentHelp("A checkpoint log witnessed outside the journal (`serve --checkpoint-log`).", valueName: "file"))
    var checkpoints: String?
    @Option(help: "The port on 127.0.0.1 (0: any free port).") var port: Int = 8700

    func run() async throws {
        guard (0...65535).contains(port) else { throw CommandExit.badInput("--port must be between 0 and 65535") }
        // Unreadable inputs are refused now, not on the first page.
        _ = try pinnedKeys.trust()
        _ = try dataKeyOptions.loadIfPresent(journalOptions)
        let console = InvestigationConsoleService(
            journal: journalOptions.journal, store: journalOptions.store, location: journalOptions.location, publicKey: pinnedKeys.publicKey,
            dataKey: dataKeyOptions.dataKey, checkpoints: checkpoints)
        let port = self.port
        await console.verify()
        if case .unreadable(let reason) = console.verification.state { throw CommandExit.badInput(reason) }
        let application = Application(
            router: console.router(), configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "AuthLedger console"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                console.boundPort.store(bound, ordering: .relaxed)
                printText("authledger-replay: console on http://127.0.0.1:\(bound)/ (read-only; Ctrl-C stops it)")
                fflush(nil)
            })
        do {
            try await application.runService()
        } catch {
            throw CommandExit.badInput("console failed: \(error)")
        }
    }
}

/// What a command answered: its output lines, its one-line reasons, its exit status.
struct CommandAnswer: Sendable {
    var lines: [String]
    var errors: [String]
    var status: Int32
}

/// The console's state and routes. Commands run one at a time: each opens the journal as the command line
/// does, and LMDB allows one open environment per file in a process.
final class InvestigationConsoleService: Sendable {
    /// `--journal`, `--store` (the command's options are not `Sendable`: they are parsed again when needed).
    let journal: String
    let store: String?
    /// The journal as messages name it.
    let location: String
    let publicKey: String?
    let dataKey: String?
    let checkpoints: String?
    let boundPort = Atomic<Int>(0)
    private let queue = SerialQueue()
    private let lastVerification = Mutex<ConsoleVerification>(ConsoleVerification(state: .unreadable("not verified yet"), checkedAt: ""))

    /// The most events a timeline page lists.
    static let timelineLimit = 2000
    /// The events the home page lists.
    static let recentEvents: UInt64 = 25

    init(journal: String, store: String?, location: String, publicKey: String?, dataKey: String?, checkpoints: String?) {
        self.journal = journal
        self.store = store
        self.location = location
        self.publicKey = publicKey
        self.dataKey = dataKey
        self.checkpoints = checkpoints
    }

    var verification: ConsoleVerification { lastVerification.withLock { $0 } }

    // MARK: - Running commands

    /// The arguments that name the journal (and its data key, when the command reads sealed values).
    private func journalArguments(dataKey withDataKey: Bool) -> [String] {
        // `--name=value`: a value that starts with '-' is still a value.
        var arguments = ["--journal=\(journal)"]
        if let store { arguments.append("--store=\(store)") }
        if withDataKey, let dataKey { arguments.append("--data-key=\(dataKey)") }
        return arguments
    }

    /// Runs `command` with `arguments` in this process, its output captured.
    func answer<Command: AsyncParsableCommand>(_ command: Command.Type, _ arguments: [String]) async -> CommandAnswer {
        await queue.run {
            var status: Int32 = 0
            let output = await CommandOutput.capturing {
                do {
                    var parsed = try Command.parse(arguments)
                    try await parsed.run()
                } catch {
                    let code = Command.exitCode(for: error).rawValue
                    status = code == ExitCode.validationFailure.rawValue ? 2 : code
                    if !(error is ExitCode) { CommandExit.printError(Command.message(for: error)) }
                }
            }
            return CommandAnswer(lines: output.lines, errors: output.errors, status: status)
        }
    }

    private var verifyArguments: [String] {
        journalArguments(dataKey: false) + (publicKey.map { ["--public-key=\($0)"] } ?? []) + (checkpoints.map { ["--checkpoints=\($0)"] } ?? [])
    }

    /// `verify --format jsonl`, remembered for the banner.
    @discardableResult
    func verify() async -> CommandAnswer {
        let arguments = verifyArguments + ["--format", "jsonl"]
        let answer = await answer(VerifyCommand.self, arguments)
        let verification = ConsoleVerification(jsonl: answer.lines, errors: answer.errors, checkedAt: Journal.systemClock().rfc3339)
        lastVerification.withLock { $0 = verification }
        return answer
    }

    /// The journal's last sequence number now.
    func head() async -> UInt64? {
        let arguments = journalArguments(dataKey: false)
        return await queue.run {
            guard let options = try? JournalOptions.parse(arguments), let reader = try? openReader(options) else { return nil }
            defer { reader.close() }
            return try? reader.read { try $0.head.sequence }
        }
    }

    func frame() async -> ConsolePages.Frame {
        ConsolePages.Frame(journal: location, verification: verification, head: await head())
    }

    /// `timeline --format jsonl` with `filters`: its events.
    func timeline(_ filters: [(String, String)]) async -> (events: [ConsoleEvent], answer: CommandAnswer) {
        // One more than a page shows: to tell that there were more.
        let arguments = journalArguments(dataKey: true) + filters.map { "--\($0.0)=\($0.1)" } + ["--limit=\(Self.timelineLimit + 1)", "--format=jsonl"]
        let answer = await answer(TimelineCommand.self, arguments)
        return (answer.status == 0 ? ConsoleEvent.parse(jsonl: answer.lines) : [], answer)
    }

    // MARK: - Routes

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ConsoleGuardMiddleware(port: { self.boundPort.load(ordering: .relaxed) }))
        router.get("/") { _, _ in try await self.home() }
        router.get("/verify") { _, _ in try await self.verifyPage() }
        router.get("/timeline") { request, _ in try await self.timelinePage(request) }
        router.get("/event/:sequence") { _, context in try await self.eventPage(context.parameters.get("sequence")) }
        router.get("/explain") { request, _ in try await self.explainPage(request.uri.queryParameters.get("sequence")) }
        router.get("/explain/:sequence") { _, context in try await self.explainPage(context.parameters.get("sequence")) }
        router.get("/consent") { request, _ in try await self.consentPage(request) }
        router.get("/report") { request, _ in try await self.reportPage(request) }
        return router
    }

    private func page(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    private func problem(_ title: String, _ reasons: [String], status: HTTPResponse.Status = .badRequest) async -> Response {
        page(ConsolePages.problem(frame: await frame(), title: title, reasons: reasons), status: status)
    }

    /// A query parameter, when given and not empty.
    private func parameter(_ request: Request, _ name: String) -> String? {
        guard let value = request.uri.queryParameters.get(name), !value.isEmpty else { return nil }
        return value
    }

    private func home() async throws -> Response {
        let frame = await frame()
        let head = frame.head ?? 0
        let from = head > Self.recentEvents ? head - Self.recentEvents + 1 : 1
        let recent = head > 0 ? await timeline([("from", "#\(from)")]).events : []
        return page(ConsolePages.home(frame: frame, recent: recent.reversed()))
    }

    private func verifyPage() async throws -> Response {
        // One verification (a long one on a large journal): the banner's, its answer shown below it.
        let answer = await verify()
        return page(
            ConsolePages.answer(
                frame: await frame(), title: "Verification",
                command: "authledger-replay verify --format jsonl" + (publicKey == nil ? "" : " --public-key …"),
                lines: answer.lines.map(ConsolePages.indentedJSON), errors: answer.errors))
    }

    static let timelineFilters = ["user", "client", "code", "session", "ip", "trace", "code-hash", "session-hash", "from", "to"]

    private func timelinePage(_ request: Request) async throws -> Response {
        var filters = Self.timelineFilters.compactMap { name in parameter(request, name).map { (name, $0) } }
        if filters.isEmpty, let head = await head() {
            // Every event of a long journal is not a page: the latest ones, and the form to narrow.
            filters = [("from", "#\(head > UInt64(Self.timelineLimit) ? head - UInt64(Self.timelineLimit) + 1 : 1)")]
        }
        let (events, answer) = await timeline(filters)
        guard answer.status == 0 else { return await problem("Timeline", answer.errors) }
        var frame = await frame()
        if events.count > Self.timelineLimit {
            frame.journal += " (only the first \(Self.timelineLimit) events are shown: narrow with from and to)"
        }
        return page(ConsolePages.timeline(frame: frame, filters: filters, events: Array(events.prefix(Self.timelineLimit))))
    }

    /// A sequence number as a page's path or form gives it: `74` or `#74`.
    private func sequenceNumber(_ text: String?) -> UInt64? {
        text.flatMap { UInt64($0.hasPrefix("#") ? String($0.dropFirst()) : $0) }
    }

    private func eventPage(_ text: String?) async throws -> Response {
        guard let sequence = sequenceNumber(text), sequence > 0 else {
            return await problem("Event", ["an event is named by its sequence number, such as /event/74"])
        }
        let (events, answer) = await timeline([("from", "#\(sequence)"), ("to", "#\(sequence)")])
        guard answer.status == 0, let event = events.first else {
            return await problem("Event #\(sequence)", answer.errors.isEmpty ? ["the journal holds no event #\(sequence)"] : answer.errors, status: .notFound)
        }
        let frame = await frame()
        let next = frame.head.flatMap { sequence < $0 ? sequence + 1 : nil }
        return page(ConsolePages.event(frame: frame, event, previous: sequence > 1 ? sequence - 1 : nil, next: next))
    }

    private func explainPage(_ text: String?) async throws -> Response {
        guard let sequence = sequenceNumber(text) else {
            return await problem("Explain", ["explain takes the sequence number of a decision, such as 74"])
        }
        let answer = await answer(ExplainCommand.self, journalArguments(dataKey: true) + [String(sequence)])
        return page(
            ConsolePages.answer(
                frame: await frame(), title: "Explain #\(sequence)", command: "authledger-replay explain \(sequence)", lines: answer.lines,
                errors: answer.errors, links: [("event #\(sequence)", ConsoleLink.event(sequence))]),
            status: answer.status == 2 ? .badRequest : .ok)
    }

    private func consentPage(_ request: Request) async throws -> Response {
        guard let user = parameter(request, "user") else { return await problem("Consent", ["consent needs a user id"]) }
        let moment = parameter(request, "at")
        let answer = await answer(
            ConsentHistoryCommand.self, journalArguments(dataKey: false) + ["--user=\(user)"] + (moment.map { ["--at=\($0)"] } ?? []))
        var links = [("timeline of \(user)", ConsoleLink.timeline([("user", user)]))]
        if moment != nil { links.append(("consent now", ConsoleLink.consent(user: user))) }
        return page(
            ConsolePages.answer(
                frame: await frame(), title: "Consent of \(user) at \(moment ?? "now")",
                command: "authledger-replay consent --user=\(user)" + (moment.map { " --at=\($0)" } ?? ""), lines: answer.lines,
                errors: answer.errors, links: links),
            status: answer.status == 2 ? .badRequest : .ok)
    }

    private func reportPage(_ request: Request) async throws -> Response {
        let (from, to) = (parameter(request, "from"), parameter(request, "to"))
        let arguments = journalArguments(dataKey: false)
        let (publicKey, dataKeyFile) = (self.publicKey, self.dataKey)
        let links = IncidentReportPage.Links(
            home: ConsoleLink.home, explain: { ConsoleLink.explain($0) }, timeline: { ConsoleLink.timeline(arguments: $0) })
        let outcome: (page: String?, errors: [String]) = await queue.run {
            var page: String?
            let output = await CommandOutput.capturing {
                do {
                    let options = try JournalOptions.parse(arguments)
                    var trust = PinnedKeyOptions()
                    trust.publicKey = publicKey
                    var keys = DataKeyOptions()
                    keys.dataKey = dataKeyFile
                    page = try ReportCommand.render(
                        options, from: from, to: to, buckets: 48, trust: try trust.trust(), dataKey: try keys.loadIfPresent(options), links: links
                    ).page
                } catch {
                    if !(error is ExitCode) { CommandExit.printError("\(error)") }
                }
            }
            return (page, output.errors)
        }
        guard let html = outcome.page else { return await problem("Incident report", outcome.errors) }
        return page(html)
    }
}

/// Runs work one piece at a time, in the order it was asked for.
actor SerialQueue {
    private var tail: Task<Void, Never>?

    func run<T: Sendable>(_ work: @escaping @Sendable () async -> T) async -> T {
        let previous = tail
        let task = Task {
            await previous?.value
            return await work()
        }
        tail = Task { _ = await task.value }
        return await task.value
    }
}

/// The console's protections: GET and HEAD only; only requests addressed to its own loopback address (a
/// page elsewhere cannot read it through a DNS name rebound to 127.0.0.1); none that another site's page
/// makes (`Sec-Fetch-Site`, `Origin`: a page elsewhere cannot even set it to work, nor time its answers);
/// a bounded number at once; headers that keep its pages out of caches, frames and referrers, and forbid
/// every script.
struct ConsoleGuardMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let port: @Sendable () -> Int
    private let inFlight = InFlight()

    /// Requests answered at once; more wait for nothing and get 503 (commands run one at a time anyway).
    static let concurrentRequests = 8

    init(port: @escaping @Sendable () -> Int) {
        self.port = port
    }

    final class InFlight: Sendable {
        let count = Atomic<Int>(0)
    }

    /// No script at all; inline styles only (the report's legend swatches use style attributes).
    static let contentSecurityPolicy =
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        let port = self.port()
        let hosts: Set<String> = ["127.0.0.1:\(port)", "localhost:\(port)"]
        if request.method != .get && request.method != .head {
            response = Response(status: .methodNotAllowed, headers: [.allow: "GET, HEAD"])
        } else if !hosts.contains((request.head.authority ?? "").lowercased()) {
            response = Self.refusal(.misdirectedRequest, "this console answers only at 127.0.0.1:\(port)")
        } else if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site != "none" && site != "same-origin" {
            response = Self.refusal(.forbidden, "this console answers its own pages and typed addresses, not other sites' (Sec-Fetch-Site: \(site))")
        } else if let origin = request.headers[.origin], !hosts.contains(where: { "http://\($0)" == origin.lowercased() }) {
            response = Self.refusal(.forbidden, "this console answers no other origin")
        } else if inFlight.count.wrappingAdd(1, ordering: .relaxed).newValue > Self.concurrentRequests {
            inFlight.count.wrappingSubtract(1, ordering: .relaxed)
            response = Self.refusal(.serviceUnavailable, "busy: \(Self.concurrentRequests) requests are being answered")
        } else {
            defer { inFlight.count.wrappingSubtract(1, ordering: .relaxed) }
            do {
                response = try await next(request, context)
            } catch let error as any HTTPResponseError {
                response = try error.response(from: request, context: context)
            }
        }
        response.headers[.cacheControl] = "no-store"
        response.headers[.vary] = "Sec-Fetch-Site, Origin"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[HTTPField.Name("Content-Security-Policy")!] = Self.contentSecurityPolicy
        return response
    }

    private static func refusal(_ status: HTTPResponse.Status, _ reason: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: reason + "\n")))
    }
}
