import ArgumentParser
import AuthCore
import AuthJournal
import AuthServer
import AuthStreams
import AuthTokens
import Foundation
import Hummingbird
import LedgerCommandSupport
import LedgerCore
import LedgerJournal
import LedgerLMDB
import Logging
#if OTLPExport
import OTel
#endif
import ServiceLifecycle
import Tracing

/// `authledger serve`: the authorization server.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the authorization server (GET /authorize, login, consent, discovery) on the journal.",
        discussion: """
            With an empty journal and no --tenant, the built-in demo tenant is applied (client demo-app, \
            user demo@example.com / "correct horse battery staple") so the flow can be tried at once in a browser.

            With --store postgres://..., any number of servers share one journal in PostgreSQL. They must \
            sign the journal with keys of their own (authledger keys add, then --key) and tokens with the same \
            or their own token keys (--token-keys, default <journal>.tokenkeys); every node publishes its \
            token keys in the journal, and lists and accepts every node's.
            """)

    @OptionGroup var journalOptions: JournalOptions

    @Option(help: "Address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "Port to listen on.") var port: Int = 8080
    @Option(help: ArgumentHelp("Tenant file (YAML or JSON) to apply at start.", valueName: "file"))
    var tenant: String?
    @Option(help: ArgumentHelp("Issuer URL (default: the tenant's, or http://HOST:PORT/ for the demo).", valueName: "url"))
    var issuer: String?
    @OptionGroup var writerOptions: JournalWriterOptions
    @OptionGroup var tokenKeyOptions: TokenKeyOptions
    @OptionGroup var dataKeyOptions: DataKeyOptions
    @Flag(
        name: .customLong("create-data-key"),
        help: "On a --store journal that other servers already use, create the data key if there is none (once, on one node; copy it to the others).")
    var createDataKey = false
    @Option(name: .customLong("log-format"), help: "Log lines as text, or as JSON objects (for log collectors).")
    var logFormat: LogFormat = .text
    @Option(
        name: .customLong("log-level"),
        help: "The least severe messages the server logs (debug adds a line per authorization decision; the journal records each anyway). The PostgreSQL driver's stay at info or above.")
    var logLevel: LogLevel = .info
    @Option(
        name: .customLong("trusted-proxy"),
        help: ArgumentHelp("A reverse proxy whose X-Forwarded-For is believed for the client address (repeatable).", valueName: "addr"))
    var trustedProxies: [String] = []
    @Option(
        name: .customLong("archive-dir"),
        help: ArgumentHelp(
            "Where the server archives the events older than the tenant's retention.events_days (default: <journal>.archives; LMDB journals only).",
            valueName: "dir"))
    var archiveDirectory: String?
    @Option(
        name: .customLong("max-mapped-memory"),
        help: ArgumentHelp(
            "File-backed resident memory (MB) above which the server lets go of the journal's mapped pages (they stay in the page cache); 0: no bound.",
            valueName: "MB"))
    var maxMappedMemory: Int = (AuthServerSettings().mappedMemoryLimit ?? 0) >> 20
    @Option(
        name: .customLong("log-stream"),
        help: ArgumentHelp("Push every event, in order and at least once, to this HTTP(S) endpoint (a webhook, Splunk HEC, Datadog logs).", valueName: "url"))
    var logStream: String?
    @Option(name: .customLong("log-stream-format"), help: "The log stream's event format: JSON lines, OCSF lines, or Auth0 log events.")
    var logStreamFormat: LogStreamConfiguration.Format = .jsonl
    @Option(
        name: .customLong("log-stream-header"),
        help: ArgumentHelp("A request header for the log stream, 'Name: value' (repeatable).", valueName: "header"))
    var logStreamHeaders: [String] = []
    @Option(
        name: .customLong("log-stream-header-file"),
        help: ArgumentHelp("Request headers for the log stream, one 'Name: value' per line (keeps a token out of the process list).", valueName: "file"))
    var logStreamHeaderFile: String?
    @Option(
        name: .customLong("log-stream-personal-data"),
        help: "Personal fields in the log stream: keyed pseudonyms (hash), left out (omit), or as stored (keep: sealed values stay sealed).")
    var logStreamPersonalData: PersonalDataHandling = .hash
    @Option(
        name: .customLong("log-stream-name"),
        help: ArgumentHelp("The stream's name: its position in the journal's store is kept under it; a new name starts from the first event.", valueName: "name"))
    var logStreamName: String = "default"

    func validate() throws {
        if logStream == nil && (!logStreamHeaders.isEmpty || logStreamHeaderFile != nil) {
            throw ValidationError("--log-stream-header and --log-stream-header-file need --log-stream URL")
        }
        guard maxMappedMemory >= 0 else { throw ValidationError("--max-mapped-memory must be 0 (no bound) or a number of megabytes") }
    }

    /// A logger named `label` writing in `--log-format`, at `--log-level` and above.
    private func makeLogger(_ label: String) -> Logger {
        var logger =
            logFormat == .json ? Logger(label: label, factory: { JSONLogHandler(label: $0) }) : Logger(label: label, factory: { TextLogHandler(label: $0) })
        logger.logLevel = logLevel.level
        return logger
    }

    func run() async throws {
        let logger = makeLogger("authledger")
        // The PostgreSQL driver logs through the store's logger, at trace the text of every message it
        // receives (rows included): it stays at info or above, whatever --log-level asks of the server's own.
        var storeLogger = makeLogger("authledger.postgres")
        storeLogger.logLevel = max(logLevel.level, .info)
        let ledger = try await writerOptions.openAuthLedger(journalOptions, storeLogger: storeLogger)
        // Every server of a shared journal needs the same data key: a node joining one must not make its own.
        let joinsSharedJournal = journalOptions.isShared && ledger.configuration.settings != nil
        // Endpoints are resolved against the issuer, so it always ends with "/".
        let issuer = self.issuer.map { $0.hasSuffix("/") ? $0 : $0 + "/" }
        let defaultIssuer = issuer ?? "http://\(host):\(port)/"
        // The data key comes first: the tenant's email addresses are sealed with it.
        let dataKey: DataKey
        do {
            dataKey = try dataKeyOptions.journalDataKey(
                for: ledger, journalOptions, joiningSharedJournal: joinsSharedJournal, createOnSharedJournal: createDataKey)
            ledger.dataKey = dataKey
        } catch {
            await ledger.journal.close()
            throw error
        }
        do {
            if let tenant {
                let configuration = try TenantFile.load(path: tenant)
                let applied = try await ledger.applyTenant(configuration, hasher: Argon2idHasher.interactive)
                say("authledger: tenant \(tenant): \(applied.count) configuration changes appended")
            } else if ledger.configuration.settings == nil {
                try await ledger.applyTenant(DemoTenant.configuration(issuer: defaultIssuer), hasher: Argon2idHasher.interactive)
                say("authledger: empty journal, applied the demo tenant")
            }
        } catch let error as TenantFileError {
            await ledger.journal.close()
            throw CommandExit.badInput("\(error)")
        }
        var settings = AuthServerSettings()
        settings.issuerOverride = issuer
        settings.trustedProxies = Set(trustedProxies)
        settings.mappedMemoryLimit = maxMappedMemory > 0 ? maxMappedMemory << 20 : nil
        let traces: (any Service)?
        do {
            traces = try TraceExport.bootstrap(environment: ProcessInfo.processInfo.environment)
        } catch {
            await ledger.journal.close()
            throw CommandExit.badInput("OpenTelemetry traces (OTEL_* environment): \(error)")
        }
        settings.tracing = traces != nil
        if !journalOptions.isShared {
            let archives = archiveDirectory ?? JournalSideFile.path(beside: journalOptions.journal, suffix: ".archives")
            settings.archival = AuthServerSettings.Archival(directory: archives) { target in
                try LMDBStorage(writingTo: target, for: Journal.Configuration(keyBeside: target))
            }
        }
        let keyPath = tokenKeyOptions.path(journalOptions)
        let tokenKeys: TokenKeyRing
        do {
            tokenKeys = try await TokenKeyRing.loadOrCreate(path: keyPath)
        } catch {
            await ledger.journal.close()
            throw CommandExit.badInput("token signing keys \(keyPath): \(error)")
        }
        if let logStream {
            do {
                var configuration = LogStreamConfiguration(url: logStream, format: logStreamFormat, personalData: logStreamPersonalData, name: logStreamName)
                configuration.headers =
                    try logStreamHeaders.map { line throws(LogStreamError) in try LogStreamConfiguration.header(line) }
                    + (try logStreamHeaderFile.map { path throws(LogStreamError) in try LogStreamConfiguration.headers(fromFile: path) } ?? [])
                let transport = try HTTPLogStreamTransport(configuration: configuration)
                // The node is named by its journal key: a node restarted after a crash takes its stream back at
                // once (the nodes of a shared journal sign with keys of their own).
                settings.logStream = LogStreamDelivery(
                    journal: ledger.journal, configuration: configuration, transport: transport, dataKey: dataKey,
                    node: "key:\(ledger.journal.activeKeyID)",
                    logger: makeLogger("authledger.log-stream"))
            } catch {
                await ledger.journal.close()
                throw CommandExit.badInput("\(error)")
            }
        }
        let server = AuthorizationServer(ledger: ledger, tokenKeys: tokenKeys, dataKey: dataKey, settings: settings, logger: logger)
        do {
            // The other nodes of a cluster list these keys in their JWKS and accept the tokens they sign.
            try await server.publishTokenKeys()
        } catch {
            await ledger.journal.close()
            throw CommandExit.badInput("token signing keys could not be published in the journal: \(error)")
        }
        let issuerURL = issuer ?? ledger.configuration.settings?.issuer ?? defaultIssuer
        say("authledger: journal \(journalOptions.location) at #\(ledger.journal.head.sequence), key \(ledger.journal.activeKeyID)")
        if ledger.configuration.clients[DemoTenant.clientID] != nil {
            let redirect = FormEncoding.encode(issuerURL + "callback")
            say("authledger: demo: open \(issuerURL)authorize?response_type=code&client_id=\(DemoTenant.clientID)&redirect_uri=\(redirect)&scope=openid%20profile&state=xyz")
            // The demo password is public (README, --help) but still never printed: no password in any output.
            say("authledger: demo user \(DemoTenant.username) (password: see the README or authledger serve --help)")
        }
        let host = self.host
        let application = server.application(host: host, port: port) { bound in
            say("authledger: listening on http://\(host):\(bound)/")
        }
        if traces != nil { say("authledger: traces exported over OTLP (OTEL_* environment)") }
        do {
            // The journal's upkeep (pruning, retention), the memory bound, the clock watch, the kept codes'
            // expiry and the log stream run beside the server and stop when it does; one of them returning
            // early (no memory bound) does not stop it. The trace exporter outlives them, to send the last spans.
            try await TraceExport.running(traces) { try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await server.runMaintenancePeriodically() }
                group.addTask { await server.boundResidentMemoryPeriodically() }
                group.addTask { await server.watchClockPeriodically() }
                group.addTask { await server.forgetExpiredCodesPeriodically() }
                if let stream = settings.logStream {
                    say("authledger: log stream \(stream.configuration.name) to \(stream.configuration.url) (\(stream.configuration.format.rawValue))")
                    group.addTask { await stream.run() }
                }
                try await application.runService()
                group.cancelAll()
            } }
        } catch {
            await ledger.journal.close()
            throw CommandExit.badInput("server failed: \(error)")
        }
        await ledger.journal.close()
        say("authledger: journal closed at #\(ledger.journal.head.sequence)")
    }
}

/// Prints a line and flushes it at once, so that a log collecting the server's output sees it live.
private func say(_ line: TerminalText) {
    printText(line)
    fflush(nil)
}

/// OpenTelemetry traces, off unless the environment asks for them.
enum TraceExport {
    /// Bootstraps the OTLP tracer when the environment asks for traces — `OTEL_TRACES_EXPORTER=otlp`, or
    /// an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) — and
    /// `OTEL_SDK_DISABLED` is not `true`; returns the exporter's service, to run beside the server, or
    /// `nil` when traces are off (the default). Everything else (endpoint, protocol `http/protobuf` or
    /// `http/json`, headers, sampler, batching, service name) is read by swift-otel from the standard
    /// `OTEL_*` variables; metrics and logs stay with `/metrics` and the server's log.
    static func bootstrap(environment: [String: String]) throws -> (any Service)? {
        let asked =
            environment["OTEL_TRACES_EXPORTER"].map { $0 != "none" }
            ?? (environment["OTEL_EXPORTER_OTLP_ENDPOINT"] != nil || environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] != nil)
        guard asked, environment["OTEL_SDK_DISABLED"]?.lowercased() != "true" else { return nil }
        #if OTLPExport
        var configuration = OTel.Configuration.default
        configuration.serviceName = "authledger"
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(tracer)
        JournalTracing.enable()
        return service
        #else
        throw TraceExportUnavailable()
        #endif
    }

    /// This build has no OTLP exporter (built without the `OTLPExport` trait, as the sanitizer builds are).
    struct TraceExportUnavailable: Error, CustomStringConvertible {
        var description: String { "this build of authledger has no OTLP exporter (built without the OTLPExport trait); unset OTEL_*" }
    }

    /// Runs `body` (the server) with the exporter `service` beside it; when `body` ends, shuts the
    /// exporter down gracefully, so that it sends the spans it holds, waiting at most `flushTimeout`.
    /// An exporter that fails never stops the server: spans are a diagnostic, the journal is the record.
    static func running(
        _ service: (any Service)?, flushTimeout: Duration = .seconds(5), _ body: () async throws -> Void
    ) async throws {
        guard let service else { return try await body() }
        let exporter = ServiceGroup(services: [service], logger: Logger(label: "authledger.traces"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try? await exporter.run() }
            var failure: (any Error)?
            do { try await body() } catch { failure = error }
            await exporter.triggerGracefulShutdown()
            group.addTask { try? await Task.sleep(for: flushTimeout) }
            _ = try await group.next()  // flushed, or out of time
            group.cancelAll()
            if let failure { throw failure }
        }
    }
}

extension LogStreamConfiguration.Format: ExpressibleByArgument {}
extension PersonalDataHandling: ExpressibleByArgument {}

enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// `--log-level`: swift-log's levels, by their names.
enum LogLevel: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error, critical

    var level: Logger.Level {
        switch self {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        case .critical: .critical
        }
    }
}
