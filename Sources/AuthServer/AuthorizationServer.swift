import AuthCore
import AuthJournal
import AuthStreams
import AuthTokens
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import LedgerJournal
import Logging
import NIOCore
import PageMarkup
import Synchronization
import Tracing

/// Settings of the HTTP server that are not tenant configuration.
public struct AuthServerSettings: Sendable {
    /// Overrides the tenant's issuer (`serve --issuer`).
    public var issuerOverride: String?
    /// Password and secret hashing.
    public var hasher: any SecretHasher = Argon2idHasher.interactive
    /// How many password or client-secret checks may run or wait at once; beyond that the server
    /// answers 503 at once (``SecretVerifier``).
    public var secretCheckCapacity = 4 * System.coreCount
    /// How long a login/consent page stays valid.
    public var interactionTTLSeconds = 600
    /// Password guessing limits.
    public var loginThrottle = LoginThrottle()
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed (`serve --trusted-proxy`).
    public var trustedProxies: Set<String> = []
    /// How often the journal's upkeep runs: pruning expired projection entries
    /// (``AuthLedger/pruneProjections(now:batchSize:dryRun:)``) and applying the retention period.
    public var maintenanceIntervalSeconds = 3600
    /// Where and how the server writes archives of the events older than the tenant's
    /// `retention.events_days`; `nil`: it does not archive (`authledger journal archive` does it by hand).
    /// Only for a journal of its own (LMDB): on shared storage an operator archives, so that the nodes do
    /// not race for the same events.
    public var archival: Archival?

    /// Where archives go: a directory per archival, named by its cut, written into a store that
    /// `makeStore` opens for writing at that directory (the server names no store driver itself).
    public struct Archival: Sendable {
        public var directory: String
        public var makeStore: @Sendable (_ directory: String) throws -> any JournalStorage

        public init(directory: String, makeStore: @escaping @Sendable (_ directory: String) throws -> any JournalStorage) {
            self.directory = directory
            self.makeStore = makeStore
        }
    }
    /// Back-channel logout: attempts per client, and the wait before the second (doubling after each).
    public var backchannelAttempts = 3
    public var backchannelRetryDelay: Duration = .seconds(1)
    /// The file-backed resident memory (bytes) above which the server lets go of the journal's mapped
    /// pages (``Journal/releaseResidentPages()``), checked every ``memoryCheckInterval``; `nil`: no bound.
    /// It counts the executable's and libraries' mapped pages too (about 40 MB). `serve --max-mapped-memory`.
    ///
    /// 64 MB checked every 50 ms: under load the server maps pages at about 120 MB a second (a page fault
    /// maps its neighbours too), and a client secret or password checked with Argon2id takes 64 MiB
    /// more for a moment; so the peak stays under 150 MB (with 128 MB checked every 250 ms it was
    /// 190–210 MB). Letting go costs nothing measurable: the pages stay in the page cache.
    public var mappedMemoryLimit: Int? = 64 << 20
    public var memoryCheckInterval: Duration = .milliseconds(50)
    /// The clock (tests inject their own).
    public var clock: @Sendable () -> LedgerTimestamp = Journal.systemClock
    /// How far the wall clock is behind ``clock``, in microseconds: 0 unless it was set back
    /// (``SteadyClock/wallClockLag``). `/metrics` exports it, and the server logs when a jump back starts
    /// and when the wall clock has caught up (``AuthorizationServer/watchClockPeriodically(every:)``).
    public var wallClockLag: @Sendable () -> Int64 = { SteadyClock.system.wallClockLag }

    /// Takes ``clock`` and ``wallClockLag`` from `clock`.
    public mutating func useClock(_ clock: SteadyClock) {
        self.clock = clock.read
        wallClockLag = { clock.wallClockLag }
    }
    /// The log stream this server delivers (`serve --log-stream`), whose state `/metrics` shows; the
    /// caller runs it (``LogStreamDelivery/run()``) beside the server.
    public var logStream: LogStreamDelivery?
    /// Whether requests are traced (a tracer is bootstrapped: `OTEL_*` in `serve`'s environment): a span
    /// per request, and its trace id in the events it records.
    public var tracing = false

    public init() {}
}

/// The authorization server: Hummingbird routes over the pure decision function and the journal.
///
/// Handlers parse and check input, call ``AuthorizationPolicy/decide(_:configuration:)``, append the
/// events (durably) and only then render the response. No decision logic lives here.
public final class AuthorizationServer: Sendable {
    public let ledger: AuthLedger
    public let tokenKeys: TokenKeyRing
    /// The journal's data key: pseudonyms of what is recorded only to be compared or counted.
    let dataKey: DataKey
    let settings: AuthServerSettings
    let logger: Logger
    /// A real Argon2id hash checked when a login names an unknown user, so both cases take the same time.
    let decoyPasswordHash: String
    let metrics = ServerMetrics()
    let secrets: SecretVerifier
    let userinfoProofs = DPoPProofCache()
    let clusterKeys = ClusterTokenKeys()
    let pendingLogins = PendingLoginAttempts()

    static let sessionCookie = "al_session"
    static let bindingCookie = "al_bind"

    public init(
        ledger: AuthLedger, tokenKeys: TokenKeyRing, dataKey: DataKey, settings: AuthServerSettings,
        logger: Logger = Logger(label: "authledger")
    ) {
        self.ledger = ledger
        self.tokenKeys = tokenKeys
        self.dataKey = dataKey
        // The events it records are sealed with it: personal values never reach the journal in clear.
        ledger.dataKey = dataKey
        self.settings = settings
        self.logger = logger
        self.decoyPasswordHash = settings.hasher.hash("decoy password that no user has")
        self.secrets = SecretVerifier(hasher: settings.hasher, capacity: settings.secretCheckCapacity)
    }

    /// The issuer identifier: `--issuer`, else the tenant's.
    var issuer: String {
        let value = settings.issuerOverride ?? ledger.configuration.settings?.issuer ?? "http://127.0.0.1:8080/"
        return value.hasSuffix("/") ? value : value + "/"
    }

    var secureCookies: Bool { issuer.hasPrefix("https://") }

    /// Mints tokens under the current issuer.
    var minter: TokenMinter { TokenMinter(keys: tokenKeys, issuer: issuer) }

    /// The routes.
    public func router() -> Router<AuthRequestContext> {
        let router = Router(context: AuthRequestContext.self)
        if settings.tracing {
            // A span per request (its route and status; no query values, address or user agent), and
            // its trace id bound for the events it records.
            router.add(middleware: RequestTraceMiddleware(trustedProxies: settings.trustedProxies))
        }
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: HeaderLimitsMiddleware())
        router.addRoutes(authorizeRoutes)
        router.addRoutes(interactionRoutes)
        router.addRoutes(logoutRoutes)
        router.addRoutes(tokenRoutes)
        router.addRoutes(resourceRoutes)
        router.addRoutes(serviceRoutes)
        return router
    }

    /// An application listening on `host:port`; `onServerRunning` learns the bound port (tests use port 0).
    public func application(
        host: String, port: Int, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(), configuration: .init(address: .hostname(host, port: port), serverName: "AuthLedger"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    // MARK: - Shared helpers

    /// Runs the journal's upkeep (``runMaintenance()``) now, and then every
    /// ``AuthServerSettings/maintenanceIntervalSeconds``, until the task is cancelled (`authledger serve`
    /// runs it beside the HTTP server). A failed step is logged and tried again at the next interval.
    public func runMaintenancePeriodically() async {
        while !Task.isCancelled {
            await runMaintenance()
            do {
                try await Task.sleep(for: .seconds(settings.maintenanceIntervalSeconds))
            } catch {
                return  // cancelled: the server is stopping
            }
        }
    }

    /// Keeps the file-backed resident memory under ``AuthServerSettings/mappedMemoryLimit``: every
    /// ``AuthServerSettings/memoryCheckInterval`` it reads the process's `RssFile` and, above the limit,
    /// lets go of the journal's mapped pages. Runs until the task is cancelled (`authledger serve` runs it
    /// beside the HTTP server); without a limit, or where `/proc` has no figure, it returns at once.
    public func boundResidentMemoryPeriodically() async {
        guard let limit = settings.mappedMemoryLimit else { return }
        while !Task.isCancelled {
            guard let resident = ResidentMemory.current() else { return }
            if resident.fileBacked > limit {
                ledger.journal.releaseResidentPages()
                metrics.releasedMappedPages()
            }
            do {
                try await Task.sleep(for: settings.memoryCheckInterval)
            } catch {
                return
            }
        }
    }

    /// Logs when the wall clock is set back (a warning: times now run ahead of it at the real rate) and when
    /// it has caught up, reading the clock every `interval`. Runs until the task is cancelled
    /// (`authledger serve` runs it beside the HTTP server).
    public func watchClockPeriodically(every interval: Duration = .seconds(1)) async {
        var watch = ClockWatch()
        while !Task.isCancelled {
            _ = settings.clock()  // a reading brings the lag up to date, even when no request came
            noteClock(&watch)
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
        }
    }

    /// Forgets the codes the ledger keeps for their redemption once they expire, with their users' keys
    /// (``AuthLedger/forgetExpiredCodes(now:)``), every `interval`, even when no request comes. Runs until
    /// the task is cancelled (`authledger serve` runs it beside the HTTP server).
    public func forgetExpiredCodesPeriodically(every interval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            ledger.forgetExpiredCodes(now: settings.clock())
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
        }
    }

    /// One look at the clock's lag: the log line of what changed, if anything.
    func noteClock(_ watch: inout ClockWatch) {
        switch watch.observe(lag: settings.wallClockLag()) {
        case .fellBehind(let lag):
            logger.warning(
                "the wall clock was set back: event times and expiry go on at the real rate, ahead of it, until it catches up",
                metadata: ["behind_seconds": "\(Double(lag) / 1e6)"])
        case .caughtUp:
            logger.notice("the wall clock has caught up: it is followed again")
        case nil:
            break
        }
    }

    /// One round of the journal's upkeep: pruning, the retention period of personal data, and archival of
    /// the events past `retention.events_days` (with ``AuthServerSettings/archival``).
    public func runMaintenance() async {
        do {
            let report = try await ledger.pruneProjections(now: settings.clock())
            if report.total > 0 {
                logger.info("pruned expired projection entries", metadata: ["entries": "\(report.total)", "events": "\(report.events)"])
            }
        } catch {
            logger.warning("pruning expired projection entries failed; trying again later", metadata: ["error": "\(error)"])
        }
        do {
            // The tenant's retention period: anonymous subjects' personal data is forgotten a day at a time.
            let forgotten = try await ledger.applyRetention(now: settings.clock())
            if !forgotten.subjects.isEmpty {
                logger.info("forgot the personal data of anonymous subjects", metadata: ["subjects": "\(forgotten.subjects.count)"])
            }
        } catch {
            logger.warning("applying the retention period failed; trying again later", metadata: ["error": "\(error)"])
        }
        guard let archival = settings.archival, !ledger.journal.isShared else { return }
        do {
            let archived = try await ledger.archiveExpiredEvents(now: settings.clock(), into: archival.directory, makeStorage: archival.makeStore)
            if let archived {
                logger.info(
                    "archived the events past the retention period",
                    metadata: ["first": "\(archived.summary.first)", "through": "\(archived.summary.through)", "archive": "\(archived.directory)"])
            }
        } catch {
            logger.warning("archiving the events past the retention period failed; trying again later", metadata: ["error": "\(error)"])
        }
    }

    /// Appends events through the ledger, timing the durable append for `/metrics`.
    @discardableResult
    func record<R: Sendable>(_ body: @escaping @Sendable (inout AuthRecorder) throws -> R) async throws -> R {
        try await timedAppend { try await ledger.record(body) }
    }

    /// Appends events through the ledger once `conditions` are checked in the commit
    /// (``AuthLedger/record(checking:_:)``), timing the durable append for `/metrics`.
    @discardableResult
    func record<R: Sendable>(
        checking conditions: [CommitCondition], _ body: @escaping @Sendable (inout AuthRecorder, CommitCondition?) throws -> R
    ) async throws -> R {
        try await timedAppend { try await ledger.record(checking: conditions, body) }
    }

    /// Appends `events` in one commit if `conditions` hold in it (``AuthLedger/record(_:readAhead:requiring:)``:
    /// encoded, sealed and signed before the journal's writer), timing the durable append for `/metrics`.
    /// - Throws: ``CommitConditionFailed`` when one of `conditions` no longer held.
    @discardableResult
    func record(
        _ events: [AuthEvent], readAhead: SubjectKeysReadAhead? = nil, requiring conditions: [CommitCondition] = []
    ) async throws -> [UInt64] {
        try await timedAppend(events: events.count) { try await ledger.record(events, readAhead: readAhead, requiring: conditions) }
    }

    /// A durable append, as a span (`journal.append`) and in `/metrics`.
    private func timedAppend<R: Sendable>(events: Int? = nil, _ append: () async throws -> R) async throws -> R {
        let start = ContinuousClock.now
        let result = try await withSpan("journal.append") { span in
            if let events { span.attributes["authledger.events"] = events }
            return try await append()
        }
        metrics.appended(after: ContinuousClock.now - start)
        return result
    }


    /// An HTML response.
    func page(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
        Self.page(html, status: status)
    }

    static func page(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    func errorPage(_ error: OAuthErrorCode, _ description: String, status: HTTPResponse.Status = .badRequest) -> Response {
        page(Pages.error(error.rawValue, description: description), status: status)
    }

    /// The page shown when the server cannot serve a request right now (the password check's pool is
    /// full): nothing is issued. Journal failures throw ``JournalUnavailable``, which answers the same.
    func unavailablePage() -> Response { Self.unavailablePage() }

    static func unavailablePage() -> Response {
        page(
            Pages.error(
                OAuthErrorCode.temporarilyUnavailable.rawValue,
                description: "The server cannot record this request right now. Nothing was issued; try again shortly."),
            status: .serviceUnavailable)
    }

    func redirect(to location: String) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        return Response(status: .found, headers: headers)
    }

    func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        // The canonical encoder (``CanonicalJSONEncoder``) where the object is plain JSON — it always is
        // here; `JSONSerialization`'s sorted-keys writer went through ICU, 11% of a token exchange's CPU.
        let bytes: [UInt8]
        if let value = Self.jsonValue(object), let encoded = try? PayloadCoding.encode(value) {
            bytes = encoded
        } else {
            bytes = Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data())
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// `object` as a ``JSONValue`` when it is made of Swift's own strings, integers, booleans, arrays and
    /// string-keyed dictionaries (and `NSNull`); `nil` for anything else.
    static func jsonValue(_ object: Any) -> JSONValue? {
        switch object {
        case let value as String: return .string(value)
        case let value as Bool: return .bool(value)
        case let value as Int: return .integer(Int64(value))
        case let value as Int64: return .integer(value)
        case let value as UInt64: return .unsigned(value)
        case let value as JSONValue: return value
        case is NSNull: return .null
        case let values as [Any]:
            var array: [JSONValue] = []
            array.reserveCapacity(values.count)
            for element in values {
                guard let value = jsonValue(element) else { return nil }
                array.append(value)
            }
            return .array(array)
        case let members as [String: Any]:
            var object: [String: JSONValue] = [:]
            for (name, element) in members {
                guard let value = jsonValue(element) else { return nil }
                object[name] = value
            }
            return .object(object)
        default: return nil
        }
    }

    /// A JSON response of an `Encodable` value (keys sorted, slashes unescaped, as ``json(_:status:)``).
    func json(value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? PayloadCoding.encode(value)) ?? []
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Why a POST body was not taken as a form.
    enum FormRefusal: Error {
        /// The form fields the server's endpoints read.
        static let formFieldNames: Set<String> = [
            "grant_type", "code", "redirect_uri", "client_id", "client_secret", "code_verifier", "refresh_token", "scope", "token",
            "token_type_hint", "access_token", "state", "csrf", "username", "password", "action", "organization", "audience", "resource",
            "id_token_hint", "post_logout_redirect_uri", "client_assertion", "client_assertion_type",
        ]

        /// Larger than ``AuthRequestContext/maxUploadSize``, or unreadable.
        case unreadable
        /// A parameter appears more than once (RFC 6749 §3.2 forbids it: which value would count?).
        case repeated(String)

        var description: String {
            switch self {
            case .unreadable: "The request body is not a form of at most 64 KiB."
            // A name this server reads is named back; any other is not (no request text in an error_description).
            case .repeated(let name): Self.formFieldNames.contains(name) ? "The parameter \(name) is repeated." : "A parameter is repeated."
            }
        }
    }

    /// The fields of a urlencoded POST body, each name at most once.
    func formFields(_ request: Request, _ context: AuthRequestContext) async -> Result<[String: String], FormRefusal> {
        var request = request
        guard let buffer = try? await request.collectBody(upTo: context.maxUploadSize) else { return .failure(.unreadable) }
        var fields: [String: String] = [:]
        for (name, value) in FormEncoding.parse(String(buffer: buffer)) {
            guard fields.updateValue(value, forKey: name) == nil else { return .failure(.repeated(name)) }
        }
        return .success(fields)
    }

    func queryValue(_ request: Request, _ name: String) -> String? {
        FormEncoding.parse(request.uri.query ?? "").first { $0.name == name }?.value
    }

    func cookie(_ request: Request, _ name: String) -> String? {
        request.cookies[name]?.value
    }

    func setCookie(_ response: inout Response, name: String, value: String, maxAge: Int?) {
        response.setCookie(
            Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: secureCookies, httpOnly: true, sameSite: .lax))
    }

    /// The client's address: the TCP peer, or — when the peer is a trusted proxy — the rightmost address
    /// of `X-Forwarded-For` that is not itself a trusted proxy (what the login throttle and events use).
    func clientAddress(_ request: Request, _ context: AuthRequestContext) -> String? {
        guard let peer = context.clientIP, settings.trustedProxies.contains(peer),
            let forwarded = request.headers[.xForwardedFor]
        else { return context.clientIP }
        let hops = forwarded.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return hops.reversed().first { !settings.trustedProxies.contains($0) }.map { RecordedText.bounded($0, bytes: 64) } ?? peer
    }

    /// The SSO session the browser presents, if it is known and not expired.
    /// - Throws: when the journal cannot be read (the caller answers 503, never "not logged in").
    func currentSession(_ request: Request, now: LedgerTimestamp) async throws -> SessionSnapshot? {
        try await currentSession(request, now: now) { _, _ in () }?.session
    }

    /// The SSO session the browser presents, if it is known and not expired, and what `alsoRead` reads for
    /// it from the same snapshot of the journal: one read (on PostgreSQL, one round trip) instead of two,
    /// and the two answers consistent with each other.
    /// - Throws: when the journal cannot be read (the caller answers 503, never "not logged in").
    func currentSession<Extra: Sendable>(
        _ request: Request, now: LedgerTimestamp, alsoReading alsoRead: @escaping @Sendable (SnapshotStore, SessionSnapshot) throws -> Extra
    ) async throws -> (session: SessionSnapshot, extra: Extra)? {
        guard let id = cookie(request, Self.sessionCookie), !id.isEmpty, id.utf8.count <= 64 else { return nil }
        let hash = OpaqueToken.hash(id)
        // The session, then what `alsoRead` reads for its user: remembered by the session, so that the
        // next request of the same session reads them all in one statement on PostgreSQL.
        return try await ledger.query(hint: .learned(Array("session:".utf8) + Array(hash.utf8))) { store in
            guard let session = try store.session(hash), session.expiresAt > now else { return nil }
            return (session, try alsoRead(store, session))
        }
    }
}

/// Headers every response carries: nothing cached, nothing framed, nothing but the page's own styles and
/// the one form_post script allowed to run.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = AuthRequestContext

    static let contentSecurityPolicy: String = {
        func hash(_ text: String) -> String { "'sha256-\(SHA256Digest.hash(Array(text.utf8)).base64)'" }
        return "default-src 'none'; style-src \(hash(PageLayout.style)); script-src \(hash(Pages.formPostScript)); "
            + "frame-ancestors 'none'; base-uri 'none'"
    }()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            // Errors the router throws (404 for an unknown path or method) get the headers too.
            response = try error.response(from: request, context: context)
        }
        response.headers[.cacheControl] = "no-store"
        response.headers[.pragma] = "no-cache"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.xFrameOptions] = "DENY"
        response.headers[.referrerPolicy] = "no-referrer"
        response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        return response
    }
}
