import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import LedgerJournal
import LedgerLMDB
import NIOCore
import Synchronization
import Testing

@testable import AuthServer

/// A client's back-channel logout endpoint on loopback: records every logout token it receives and answers
/// with the statuses it is given, in turn (the last one from then on).
final class LogoutReceiver: Sendable {
    let tokens = Mutex<[String]>([])
    let statuses: Mutex<[HTTPResponse.Status]>

    init(statuses: [HTTPResponse.Status] = [.ok]) {
        self.statuses = Mutex(statuses)
    }

    /// Runs the receiver while `body` runs, with the URL it listens on.
    func run(_ body: @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.post("/bcl") { request, context -> Response in
            var request = request
            let form = String(buffer: try await request.collectBody(upTo: 64 * 1024))
            if let token = FormEncoding.parse(form).first(where: { $0.name == "logout_token" })?.value {
                self.tokens.withLock { $0.append(token) }
            }
            let status = self.statuses.withLock { statuses in statuses.count > 1 ? statuses.removeFirst() : statuses[0] }
            return Response(status: status)
        }
        let port = Mutex<Int?>(nil)
        let application = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await application.runService() }
            var bound: Int?
            for _ in 0..<200 where bound == nil {
                bound = port.withLock { $0 }
                if bound == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            try await body("http://127.0.0.1:\(try #require(bound))/bcl")
            group.cancelAll()
        }
    }
}

/// The test tenant with web-app's logout URLs and back-channel endpoint.
func logoutTenantYAML(backchannel: String) -> String {
    testTenantYAML.replacingOccurrences(
        of: "    organization_usage: allow\n",
        with: "    organization_usage: allow\n    allowed_logout_urls: [https://client.test/logged-out]\n    backchannel_logout_uri: \(backchannel)\n")
}

@Suite("Logout: OIDC RP-Initiated Logout and Back-Channel Logout, over a socket")
struct LogoutTests {
    /// alice's ID token from a code flow through web-app (her session is in `browser`).
    static func idToken(_ browser: Browser) async throws -> String {
        let code = try #require(try await browser.authorize(webAppParameters(scope: "openid")).redirectParameters["code"])
        return try #require(jsonObject(try await TokenEndpointTests.exchange(browser, code: code))["id_token"] as? String)
    }

    /// The events the live journal holds (while the server runs).
    static func liveEvents(_ harness: ServerHarness) throws -> [AuthEvent] {
        try harness.ledger.journal.read { snapshot in
            var events: [AuthEvent] = []
            try snapshot.forEachEvent { envelope in
                if let event = try AuthEvent(type: envelope.type, payload: envelope.payload) { events.append(event) }
                return true
            }
            return events
        }
    }

    /// Waits (up to 10 s) until `count` back-channel outcomes are recorded.
    static func deliveries(_ harness: ServerHarness, count: Int) async throws -> [BackchannelLogoutDelivery] {
        for _ in 0..<1000 {
            let found = try liveEvents(harness).compactMap { if case .backchannelLogout(let value) = $0 { value } else { nil } }
            if found.count >= count { return found }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("no back-channel outcome recorded")
        return []
    }

    @Test("an id_token_hint of the session ends it at once and returns to the registered logout URL with state")
    func rpInitiated() async throws {
        let receiver = LogoutReceiver()
        try await receiver.run { backchannel in
            let harness = try await ServerHarness(tenant: logoutTenantYAML(backchannel: backchannel)) { $0.backchannelRetryDelay = .milliseconds(20) }
            try await harness.run { browser in
                let hint = try await Self.idToken(browser)
                // Variants of the registered URL are refused with a page; the session stays.
                for variant in [
                    "https://client.test/logged-out/", "https://CLIENT.test/logged-out", "https://client.test/logged-out?x=1",
                    "https://client.test/logged-out#f", "https://evil.test/logged-out", "https://client.test/callback",
                ] {
                    let page = try await browser.get(
                        "/oidc/logout?" + FormEncoding.encode([("id_token_hint", hint), ("post_logout_redirect_uri", variant), ("state", "s1")]))
                    #expect(page.status == .badRequest && page.location == nil, "\(variant)")
                }
                #expect(browser.cookies[AuthorizationServer.sessionCookie] != nil)
                // A forged hint is refused too.
                let forged = try await browser.get("/oidc/logout?" + FormEncoding.encode([("id_token_hint", hint + "x")]))
                #expect(forged.status == .badRequest)

                let page = try await browser.get(
                    "/oidc/logout?"
                        + FormEncoding.encode([
                            ("id_token_hint", hint), ("post_logout_redirect_uri", "https://client.test/logged-out"), ("state", "s 1"),
                        ]))
                #expect(page.status == .found)
                #expect(page.location == "https://client.test/logged-out?state=s%201")
                #expect(browser.cookies[AuthorizationServer.sessionCookie] == nil)
                // The session no longer authorizes anything.
                let after = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters([("prompt", "none")], scope: "openid")))
                #expect(after.redirectParameters["error"] == "login_required")

                // Back-channel: one logout token to web-app, signed by the server, for alice.
                let outcomes = try await Self.deliveries(harness, count: 1)
                #expect(outcomes.map(\.delivered) == [true])
                #expect(outcomes.first?.attempts == 1)
                let token = try #require(receiver.tokens.withLock { $0.first })
                let claims = try await harness.server.tokenKeys.verify(token, as: LogoutTokenClaims.self)
                #expect(claims.aud == "web-app" && claims.sub == "auth0|alice" && claims.iss == "https://auth.test/")
                #expect(claims.events[LogoutTokenClaims.event] != nil)
                #expect(claims.jti == outcomes.first?.logoutTokenID)
                let header = String(decoding: Base64URL.decode(String(token.split(separator: ".")[0]))!, as: UTF8.self)
                #expect(header.contains("\"typ\":\"logout+jwt\""))
            }
            let events = try harness.events()
            let logouts = events.compactMap { if case .loggedOut(let value) = $0.1 { value } else { nil } }
            #expect(logouts.count == 1)
            // Every logout request is a recorded decision (the refused ones too), and replay decides each the same.
            let decided = events.compactMap { if case .logoutDecided(let value) = $0.1 { value } else { nil } }
            #expect(decided.map(\.decision.outcome) == Array(repeating: .refused, count: 7) + [.endSession])
            #expect(decided.last?.decision.redirect == "https://client.test/logged-out")
            let reader = try JournalReader(directory: harness.directory + "/journal")
            defer { reader.close() }
            var replayed = 0
            try DecisionHistory.forEachDecision(in: reader, logouts: { logout in
                replayed += 1
                #expect(logout.recomputed() == logout.decided.decision)
            }) { _, _ in }
            #expect(replayed == 8)
            // explain shows one, and replay (the command) finds no difference.
            let last = try #require(events.last { if case .logoutDecided = $0.1 { true } else { false } }?.0)
            let explained = try RebuildCommandTests.replay(["explain", String(last), "--journal", harness.directory + "/journal"]).1
            #expect(explained.contains("Rule that decided: logout.id_token_hint"), "\(explained)")
            #expect(explained.contains("the same rules give the same outcome today"))
            let replay = try RebuildCommandTests.replay(["replay", "--journal", harness.directory + "/journal"])
            #expect(replay.0 == 0 && replay.1.contains("0 differ from the record"), "\(replay.1)")
            #expect(logouts.first?.clientID == "web-app")
            #expect(logouts.first?.rule == "logout.id_token_hint")
            #expect(logouts.first?.postLogoutRedirectURI == "https://client.test/logged-out")
            #expect(logouts.first?.notifiedClients == ["web-app"])
        }
    }

    @Test("without a hint the user confirms with a CSRF-bound form, which carries client_id, the redirect and state")
    func confirmed() async throws {
        let receiver = LogoutReceiver()
        try await receiver.run { backchannel in
            let harness = try await ServerHarness(tenant: logoutTenantYAML(backchannel: backchannel)) { $0.backchannelRetryDelay = .milliseconds(20) }
            try await harness.run { browser in
                _ = try await Self.idToken(browser)
                let query = FormEncoding.encode([
                    ("client_id", "web-app"), ("post_logout_redirect_uri", "https://client.test/logged-out"), ("state", "st"),
                ])
                // Auth0's path is the same endpoint.
                let confirm = try await browser.get("/logout?" + query)
                #expect(confirm.status == .ok)
                #expect(confirm.hidden("post_logout_redirect_uri") == "https://client.test/logged-out")
                #expect(browser.cookies[AuthorizationServer.sessionCookie] != nil, "nothing ends before the user confirms")
                // A forged confirmation (no CSRF token) changes nothing.
                let forged = try await browser.post("/oidc/logout", form: [("csrf", "forged"), ("post_logout_redirect_uri", "https://client.test/logged-out")])
                #expect(forged.status == .forbidden)
                // A redirect changed in the form is checked again.
                let tampered = try await browser.post(
                    "/logout", form: [("csrf", confirm.hidden("csrf") ?? ""), ("client_id", "web-app"), ("post_logout_redirect_uri", "https://evil.test/")])
                #expect(tampered.status == .badRequest && tampered.location == nil)
                let done = try await browser.post(
                    "/logout",
                    form: [
                        ("csrf", confirm.hidden("csrf") ?? ""), ("client_id", confirm.hidden("client_id") ?? ""),
                        ("post_logout_redirect_uri", confirm.hidden("post_logout_redirect_uri") ?? ""), ("state", confirm.hidden("state") ?? ""),
                    ])
                #expect(done.location == "https://client.test/logged-out?state=st")
                #expect(browser.cookies[AuthorizationServer.sessionCookie] == nil)
                _ = try await Self.deliveries(harness, count: 1)
                // A redirect without a client to check it against: refused.
                let anonymous = try await browser.get("/oidc/logout?" + FormEncoding.encode([("post_logout_redirect_uri", "https://client.test/logged-out")]))
                #expect(anonymous.status == .badRequest)
                // No session: straight back to the client.
                let noSession = try await browser.get("/oidc/logout?" + query)
                #expect(noSession.location == "https://client.test/logged-out?state=st")
            }
            let logouts = try harness.events().compactMap { if case .loggedOut(let value) = $0.1 { value } else { nil } }
            #expect(logouts.map(\.rule) == ["logout.confirmed"])
        }
    }

    @Test("back-channel delivery is retried, and a client that never answers 200 is recorded as failed after three attempts")
    func backchannelRetries() async throws {
        let flaky = LogoutReceiver(statuses: [.internalServerError, .ok])
        try await flaky.run { backchannel in
            let harness = try await ServerHarness(tenant: logoutTenantYAML(backchannel: backchannel)) { $0.backchannelRetryDelay = .milliseconds(20) }
            try await harness.run { browser in
                let hint = try await Self.idToken(browser)
                _ = try await browser.get("/oidc/logout?" + FormEncoding.encode([("id_token_hint", hint)]))
                let outcomes = try await Self.deliveries(harness, count: 1)
                #expect(outcomes.first?.delivered == true)
                #expect(outcomes.first?.attempts == 2)
                #expect(flaky.tokens.withLock { $0.count } == 2)
            }
        }
        let down = LogoutReceiver(statuses: [.serviceUnavailable])
        try await down.run { backchannel in
            let harness = try await ServerHarness(tenant: logoutTenantYAML(backchannel: backchannel)) { $0.backchannelRetryDelay = .milliseconds(20) }
            try await harness.run { browser in
                let hint = try await Self.idToken(browser)
                let page = try await browser.get("/oidc/logout?" + FormEncoding.encode([("id_token_hint", hint)]))
                #expect(page.status == .ok, "the browser does not wait for the back channel")
                let outcomes = try await Self.deliveries(harness, count: 1)
                #expect(outcomes.first?.delivered == false)
                #expect(outcomes.first?.attempts == 3)
                #expect(outcomes.first?.status == 503)
            }
        }
    }

    @Test("a session that gave no code to a client does not notify it")
    func onlyParticipants() async throws {
        let receiver = LogoutReceiver()
        try await receiver.run { backchannel in
            let harness = try await ServerHarness(tenant: logoutTenantYAML(backchannel: backchannel))
            try await harness.run { browser in
                // alice logs in through the first-party client only.
                let page = try await browser.authorize([
                    ("response_type", "code"), ("client_id", "first-party"), ("redirect_uri", "https://first.test/callback"), ("scope", "openid"),
                ])
                #expect(page.redirectParameters["code"] != nil)
                let confirm = try await browser.get("/logout")
                _ = try await browser.post("/logout", form: [("csrf", confirm.hidden("csrf") ?? "")])
                try await Task.sleep(for: .milliseconds(200))
                #expect(try Self.liveEvents(harness).allSatisfy { if case .backchannelLogout = $0 { false } else { true } })
            }
            #expect(receiver.tokens.withLock { $0.isEmpty })
        }
    }
}
