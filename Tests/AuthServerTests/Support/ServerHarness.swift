import AuthCore
@testable import AuthJournal
import AuthTokens
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LedgerCore
import LedgerJournal
import LedgerLMDB
import Logging
import NIOCore
import Synchronization
import Testing

@testable import AuthServer

/// The tenant most server tests run against (the SPEC.md example, plus the clients the rules need).
let testTenantYAML = """
    tenant:
      issuer: https://auth.test/
      resource_parameter_profile: compatibility
      code_ttl_seconds: 60
      session_ttl_seconds: 3600
    apis:
      - identifier: https://api.example.com
        name: Example API
        scopes: [read:messages, write:messages]
        allow_offline_access: true
        skip_consent_for_first_party: true
    clients:
      - client_id: web-app
        name: Example Web App
        app_type: regular_web
        client_secret: s3cret
        token_endpoint_auth_method: client_secret_basic
        redirect_uris: [https://client.test/callback]
        grant_types: [authorization_code, refresh_token]
        first_party: false
        connections: [Username-Password-Authentication]
        organization_usage: allow
      - client_id: first-party
        name: First Party
        app_type: regular_web
        client_secret: s3cret
        redirect_uris: [https://first.test/callback]
        first_party: true
        connections: [Username-Password-Authentication]
      - client_id: spa
        name: Single Page App
        app_type: spa
        token_endpoint_auth_method: none
        redirect_uris: [https://spa.test/callback]
        connections: [Username-Password-Authentication]
      - client_id: org-app
        name: Org App
        app_type: regular_web
        client_secret: s3cret
        redirect_uris: [https://org.test/callback]
        first_party: true
        connections: [Username-Password-Authentication]
        organization_usage: require
      - client_id: implicit-app
        name: Implicit App
        app_type: spa
        token_endpoint_auth_method: none
        redirect_uris: [https://implicit.test/callback]
        grant_types: [implicit]
        connections: [Username-Password-Authentication]
    connections:
      - name: Username-Password-Authentication
        strategy: database
        users:
          - user_id: auth0|alice
            email: alice@example.com
            password: correct horse battery staple
          - user_id: auth0|bob
            email: bob@example.com
            password: hunter2 hunter2
    organizations:
      - id: org_acme
        name: acme
        connections: [Username-Password-Authentication]
        members: [auth0|alice]
        invitations:
          - ticket: inv_123
            email: bob@example.com
            client_id: org-app
            expires_at: 2030-01-01T00:00:00Z
          - ticket: inv_old
            email: bob@example.com
            client_id: org-app
            expires_at: 2020-01-01T00:00:00Z
    """

/// A clock tests can move. It starts at the real time, so that tokens it stamps are valid for outside
/// verifiers too.
final class TestClock: Sendable {
    private let now: Mutex<LedgerTimestamp>

    init(at start: LedgerTimestamp = Journal.systemClock()) {
        now = Mutex(start)
    }

    var read: @Sendable () -> LedgerTimestamp { { [self] in now.withLock { $0 } } }

    func advance(seconds: Int) {
        now.withLock { $0 = $0.adding(seconds: seconds) }
    }
}

/// The time test clients sign with (DPoP proofs' `iat`, client assertions' `iat` and `exp`): the clock of
/// the harness whose ``ServerHarness/run(_:)`` is running, else the wall clock. A harness's clock stands
/// still from its creation, so proofs signed with the wall clock drift out of the server's 60-second
/// window when the suite runs slowly (ThreadSanitizer: several minutes).
enum TestTime {
    @TaskLocal static var clock: TestClock?

    /// Seconds since the epoch, now.
    static func seconds() -> Int64 {
        clock?.read().secondsSinceEpoch ?? Int64(Date().timeIntervalSince1970)
    }
}

/// A fresh journal with the test tenant, and the server over it on a real socket.
final class ServerHarness: Sendable {
    let directory: String
    let ledger: AuthLedger
    let server: AuthorizationServer
    let clock: TestClock

    init(
        tenant yaml: String = testTenantYAML, issuer: String? = nil, under base: String? = nil, logger: Logger? = nil,
        configure: (inout AuthServerSettings) -> Void = { _ in }
    ) async throws {
        directory = (base ?? FileManager.default.temporaryDirectory.path) + "/authledger-server-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        ledger = try await AuthLedger.open(directory: directory + "/journal")
        ledger.dataKey = try JournalDataKeyFile(journal: directory + "/journal").loadOrCreate()
        try await ledger.applyTenant(try TenantFile.parse(yaml: yaml), hasher: Argon2idHasher.minimal)
        clock = TestClock()
        server = try await Self.server(ledger: ledger, directory: directory, clock: clock, issuer: issuer, logger: logger, configure: configure)
    }

    /// A new server on the journal `previous` wrote, as after a restart (`previous.run` has closed it).
    /// Its clock carries on from the previous server's.
    init(restarting previous: ServerHarness) async throws {
        directory = previous.directory
        ledger = try await AuthLedger.open(directory: directory + "/journal")
        clock = TestClock(at: previous.clock.read())
        server = try await Self.server(ledger: ledger, directory: directory, clock: clock, issuer: nil, logger: nil, configure: { _ in })
    }

    private static func server(
        ledger: AuthLedger, directory: String, clock: TestClock, issuer: String?, logger: Logger?,
        configure: (inout AuthServerSettings) -> Void
    ) async throws -> AuthorizationServer {
        var settings = AuthServerSettings()
        settings.hasher = Argon2idHasher.minimal
        settings.clock = clock.read
        settings.wallClockLag = { 0 }  // a test clock never runs ahead of a wall clock
        settings.issuerOverride = issuer
        configure(&settings)
        var quiet = Logger(label: "authledger-test")
        quiet.logLevel = .warning
        let tokenKeys = try await TokenKeyRing.loadOrCreate(path: directory + "/journal.tokenkeys")
        let dataKey = try JournalDataKeyFile(journal: directory + "/journal").loadOrCreate()
        return AuthorizationServer(ledger: ledger, tokenKeys: tokenKeys, dataKey: dataKey, settings: settings, logger: logger ?? quiet)
    }

    /// Runs `body` with a browser talking to the server over a real socket, then closes the journal and
    /// checks that it verifies.
    func run(_ body: @Sendable (Browser) async throws -> Void) async throws {
        let application = server.application(host: "127.0.0.1", port: 0)
        // Clients sign DPoP proofs and assertions on the server's (test) clock while it runs.
        try await TestTime.$clock.withValue(clock) {
            try await application.test(.live) { client in
                try await body(Browser(client: client))
            }
        }
        await ledger.journal.close()
        let reader = try JournalReader(directory: directory + "/journal", projections: AuthLedger.projections)
        defer { reader.close() }
        let report = try reader.verify(trust: .genesisKey)
        if case .failure(let failure) = report { Issue.record("journal does not verify: \(failure)") }
        // The projections the server used are exactly what the events alone give.
        let live = try ProjectionRebuild.live(from: reader)
        let differences = ProjectionRebuild.compare(rebuilt: try ProjectionRebuild.rebuild(from: reader), live: live)
        if !differences.isEmpty { Issue.record("projections differ from a rebuild: \(differences.prefix(5))") }
        // The same when the folding thread decodes none, half or all of the requests (with their decisions
        // and codes) and of the other events; and when it holds no earlier event to complete them from,
        // so that the rebuild starts over with them decoded on the reading thread.
        for (eighths, held) in [(0, 64), (4, 64), (8, 64), (8, 0)] {
            let rebuilt = try ProjectionRebuild.rebuild(from: reader, sharing: .fixed(eighths), recentCapacity: held)
            let shared = ProjectionRebuild.compare(rebuilt: rebuilt, live: live)
            if !shared.isEmpty { Issue.record("projections differ from a rebuild sharing \(eighths)/8 of the decoding, \(held) held: \(shared.prefix(5))") }
        }
    }

    /// Every event in the journal, decoded, after ``run(_:)``: personal values opened with the journal's
    /// data key (as an investigator with the key sees them), or only sealed when `opened` is false.
    func events(opened: Bool = true) throws -> [(UInt64, AuthEvent)] {
        let reader = try JournalReader(directory: directory + "/journal")
        defer { reader.close() }
        let dataKey = opened ? try JournalDataKeyFile(journal: directory + "/journal").load() : nil
        var events: [(UInt64, AuthEvent)] = []
        try reader.read { snapshot in
            let opener = SealedValueOpener(snapshot: snapshot, dataKey: dataKey)
            try snapshot.forEachEvent { envelope in
                if let event = try opener.event(envelope) {
                    events.append((envelope.sequence, event))
                }
                return true
            }
        }
        return events
    }

    /// The raw bytes of the journal's data file.
    func journalBytes() throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: directory + "/journal/data.mdb"))
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.removeItem(atPath: directory + "/journal.key")
        try? FileManager.default.removeItem(atPath: directory + "/journal.datakey")
    }
}

/// A response, with what tests look at.
struct Page: Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let body: String

    var location: String? { headers[.location] }

    /// The value of the hidden input `name`.
    func hidden(_ name: String) -> String? {
        guard let range = body.range(of: "name=\"\(name)\" value=\"") else { return nil }
        let rest = body[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    /// Parameters of the redirect's query or fragment.
    var redirectParameters: [String: String] {
        guard let location else { return [:] }
        let part: Substring
        if let hash = location.firstIndex(of: "#") {
            part = location[location.index(after: hash)...]
        } else if let question = location.firstIndex(of: "?") {
            part = location[location.index(after: question)...]
        } else {
            return [:]
        }
        return Dictionary(FormEncoding.parse(part).map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }
}

/// A minimal browser: keeps cookies, does not follow redirects.
final class Browser: @unchecked Sendable {
    let client: any TestClientProtocol
    var cookies: [String: String] = [:]
    /// Headers sent with every request (e.g. X-Forwarded-For, as a proxy in front would add).
    var defaultHeaders = HTTPFields()

    init(client: any TestClientProtocol) {
        self.client = client
    }

    func get(_ uri: String) async throws -> Page {
        try await send(uri, method: .get, body: nil)
    }

    /// The value of the unlabelled metric `name` in `/metrics`; `nil` when it is not exported (yet).
    func metric(_ name: String) async throws -> Double? {
        let metrics = try await get("/metrics").body
        return metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    func post(_ uri: String, form: [(String, String)], headers: HTTPFields = [:]) async throws -> Page {
        try await send(uri, method: .post, body: FormEncoding.encode(form), headers: headers)
    }

    func send(_ uri: String, method: HTTPRequest.Method, body: String? = nil, headers extra: HTTPFields = [:]) async throws -> Page {
        var headers = extra
        for field in defaultHeaders { headers.append(field) }
        if !cookies.isEmpty {
            headers[.cookie] = cookies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
        }
        if body != nil { headers[.contentType] = "application/x-www-form-urlencoded" }
        let response = try await client.execute(
            uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        for field in response.headers where field.name == .setCookie {
            let pair = field.value.split(separator: ";")[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else { continue }
            if field.value.contains("Max-Age=0") { cookies[String(pair[0])] = nil } else { cookies[String(pair[0])] = String(pair[1]) }
        }
        return Page(status: response.status, headers: response.headers, body: String(buffer: response.body))
    }

    /// `/authorize` with `parameters`, then following the server's own pages (login as `username` if asked,
    /// accept consent if asked) until the response leaves the server.
    func authorize(
        _ parameters: [(String, String)], username: String = "alice@example.com", password: String = "correct horse battery staple",
        consent: String = "accept"
    ) async throws -> Page {
        var page = try await get("/authorize?" + FormEncoding.encode(parameters))
        for _ in 0..<6 {
            guard page.status == .found, let location = page.location, location.hasPrefix("/") else { return page }
            if location.hasPrefix("/login") {
                let form = try await get(location)
                page = try await post(
                    "/login",
                    form: [("state", form.hidden("state") ?? ""), ("csrf", form.hidden("csrf") ?? ""), ("username", username), ("password", password)])
            } else if location.hasPrefix("/consent") {
                let form = try await get(location)
                page = try await post(
                    "/consent", form: [("state", form.hidden("state") ?? ""), ("csrf", form.hidden("csrf") ?? ""), ("action", consent)])
            } else {
                page = try await get(location)
            }
        }
        return page
    }
}

/// A code request of the public client `spa`, with an S256 PKCE challenge of ``tokenTestVerifier``.
func spaPKCEParameters() -> [(String, String)] {
    [
        ("response_type", "code"), ("client_id", "spa"), ("redirect_uri", "https://spa.test/callback"), ("scope", "openid"),
        ("code_challenge", tokenTestChallenge), ("code_challenge_method", "S256"), ("state", "s"),
    ]
}

/// Standard parameters for the `web-app` client.
func webAppParameters(_ extra: [(String, String)] = [], scope: String = "openid profile", state: String = "st-123") -> [(String, String)] {
    [("response_type", "code"), ("client_id", "web-app"), ("redirect_uri", "https://client.test/callback"), ("scope", scope), ("state", state)]
        + extra
}

extension AuthLedger {
    /// The LMDB journal in `directory`, with the server's projections (as `authledger serve` opens it).
    static func open(directory: String) async throws -> AuthLedger {
        let configuration = Journal.Configuration(keyBeside: directory)
        return try await open(configuration, storage: try LMDBStorage(writingTo: directory, for: withProjections(configuration)))
    }
}
