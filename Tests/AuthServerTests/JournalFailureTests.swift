import AuthCore
import Foundation
import HTTPTypes
import Testing

@testable import AuthServer

// SPEC.md, "Ledger guarantees": when the journal cannot be written, the server answers 503 (or redirects
// with temporarily_unavailable) and issues nothing. The journal is made unwritable by closing it inside
// `harness.run` (the harness closes it again afterwards, which must be harmless, and then verifies it).

fileprivate let failureCallback = "https://client.test/callback"
fileprivate let failureIssuer = "https://auth.test/"
fileprivate let unavailableDescription = "The server cannot record requests right now."

/// Carries values out of the `@Sendable` body of `harness.run`.
fileprivate final class FailureBox: @unchecked Sendable {
    var head: UInt64 = 0
}

fileprivate func failurePath(_ parameters: [(String, String)]) -> String {
    "/authorize?" + FormEncoding.encode(parameters)
}

/// The 503 page: no Location, no cookie, nothing issued.
fileprivate func expectUnavailablePage(_ page: Page, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(page.status == .serviceUnavailable, "expected 503, got \(page.status)", sourceLocation: sourceLocation)
    #expect(page.location == nil, "no redirect", sourceLocation: sourceLocation)
    #expect(page.headers[.setCookie] == nil, "no binding or session cookie", sourceLocation: sourceLocation)
    #expect(page.body.contains("<code>temporarily_unavailable</code>"), "body: \(page.body.prefix(600))", sourceLocation: sourceLocation)
    #expect(page.body.contains("Nothing was issued"), sourceLocation: sourceLocation)
    #expect(!page.body.contains("name=\"code\""), sourceLocation: sourceLocation)
    // Thrown by the handler (JournalUnavailable), it still gets every page's headers.
    #expect(page.headers[.contentType] == "text/html; charset=utf-8", sourceLocation: sourceLocation)
    #expect(page.headers[.cacheControl] == "no-store", sourceLocation: sourceLocation)
    #expect(page.headers[HTTPField.Name("Content-Security-Policy")!] != nil, sourceLocation: sourceLocation)
}

/// The authorization server's own events after `harness.run`, with their sequence numbers.
fileprivate func authEvents(_ harness: ServerHarness) throws -> [(UInt64, AuthEvent)] {
    try harness.events().filter { entry in
        if case .configuration = entry.1 { return false }
        return true
    }
}

fileprivate func issuedCodes(_ events: [(UInt64, AuthEvent)]) -> [CodeIssued] {
    events.compactMap { entry -> CodeIssued? in
        if case .codeIssued(let issued) = entry.1 { return issued }
        return nil
    }
}

@Suite("/authorize when the journal cannot be written: 503 or temporarily_unavailable, never a code")
struct JournalFailureTests {
    @Test("no redirect is possible (unknown client, unregistered redirect URI): a 503 error page")
    func noRedirectPossible() async throws {
        let harness = try await ServerHarness()
        let box = FailureBox()
        try await harness.run { browser in
            await harness.ledger.journal.close()
            box.head = harness.ledger.journal.head.sequence
            let unknownClient = try await browser.get(
                failurePath([("response_type", "code"), ("client_id", "nope"), ("redirect_uri", failureCallback), ("state", "st-1")]))
            expectUnavailablePage(unknownClient)
            let unregistered = try await browser.get(
                failurePath(webAppParameters().map { $0.0 == "redirect_uri" ? ("redirect_uri", "https://evil.test/cb") : $0 }))
            expectUnavailablePage(unregistered)
        }
        let events = try authEvents(harness)
        #expect(events.isEmpty, "nothing was recorded: \(events.map(\.1.eventType.name))")
        let late = try harness.events().filter { entry in entry.0 > box.head }
        #expect(late.isEmpty, "nothing was appended after the journal closed")
    }

    @Test("a login that cannot be recorded: a 503 page, no redirect to /login, no binding cookie")
    func loginNotRecorded() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            await harness.ledger.journal.close()
            let page = try await browser.get(failurePath(webAppParameters()))
            expectUnavailablePage(page)
            #expect(browser.cookies.isEmpty)
        }
        let events = try authEvents(harness)
        #expect(events.isEmpty, "nothing was recorded: \(events.map(\.1.eventType.name))")
    }

    @Test("an error that would be redirected: temporarily_unavailable to the client with state and iss, never the original error",
          arguments: ["query", "fragment", "form_post"])
    func redirectableError(_ mode: String) async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            await harness.ledger.journal.close()
            let page = try await browser.get(failurePath(webAppParameters([("response_mode", mode)], scope: "profile nope")))
            if mode == "form_post" {
                #expect(page.status == .ok)
                #expect(page.location == nil)
                #expect(page.body.contains("<form method=\"post\" action=\"https://client.test/callback\">"))
                #expect(page.hidden("error") == "temporarily_unavailable")
                #expect(page.hidden("error_description") == unavailableDescription)
                #expect(page.hidden("state") == "st-123")
                #expect(page.hidden("iss") == failureIssuer)
                #expect(page.hidden("code") == nil)
            } else {
                #expect(page.status == .found)
                let location = page.location ?? "(none)"
                #expect(location.hasPrefix(failureCallback + (mode == "fragment" ? "#" : "?")), "Location: \(location)")
                let parameters = page.redirectParameters
                #expect(parameters["error"] == "temporarily_unavailable", "Location: \(location)")
                #expect(parameters["error_description"] == unavailableDescription)
                #expect(parameters["state"] == "st-123")
                #expect(parameters["iss"] == failureIssuer)
                #expect(parameters["code"] == nil)
            }
            #expect(page.headers[.setCookie] == nil)
        }
        let events = try authEvents(harness)
        #expect(events.isEmpty, "nothing was recorded: \(events.map(\.1.eventType.name))")
    }

    @Test("a logged-in browser whose next request would get a code by SSO gets a 503 instead, and the journal holds no code for it")
    func noCodeForSingleSignOn() async throws {
        let harness = try await ServerHarness()
        let box = FailureBox()
        try await harness.run { browser in
            let first = try await browser.authorize(webAppParameters())
            #expect(first.redirectParameters["code"] != nil)
            let sso = try await browser.get(failurePath(webAppParameters(state: "st-sso")))
            #expect(sso.redirectParameters["code"] != nil, "SSO answers with a code while the journal works")
            await harness.ledger.journal.close()
            box.head = harness.ledger.journal.head.sequence
            let blocked = try await browser.get(failurePath(webAppParameters(state: "st-blocked")))
            expectUnavailablePage(blocked)
            #expect(blocked.redirectParameters["code"] == nil)
        }
        let events = try authEvents(harness)
        #expect(issuedCodes(events).count == 2, "the two codes issued before the journal closed, none after")
        let late = events.filter { entry in entry.0 > box.head }
        #expect(late.isEmpty, "nothing was appended after the journal closed")
        let blockedRequests = events.filter { entry in
            if case .authorizeRequested(let requested) = entry.1 { return requested.parameters["state"] == "st-blocked" }
            return false
        }
        #expect(blockedRequests.isEmpty)
    }

    @Test("resuming after a successful login while the journal is closed: no code, no redirect")
    func resumeWhileClosed() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let start = try await browser.get(failurePath(webAppParameters()))
            let loginPage = try await browser.get(try #require(start.location))
            let posted = try await browser.post(
                "/login",
                form: [("state", loginPage.hidden("state") ?? ""), ("csrf", loginPage.hidden("csrf") ?? ""),
                       ("username", "alice@example.com"), ("password", "correct horse battery staple")])
            let resumeLocation = try #require(posted.location)
            #expect(resumeLocation.hasPrefix("/authorize/resume?state="))
            await harness.ledger.journal.close()
            let resumed = try await browser.get(resumeLocation)
            #expect(resumed.location == nil)
            #expect(resumed.status.code >= 400)
            #expect(!resumed.body.contains("name=\"code\""))
            #expect(resumed.status == .serviceUnavailable)
        }
        let events = try authEvents(harness)
        #expect(issuedCodes(events).isEmpty)
        #expect(events.map(\.1.eventType.name).last == "auth.login.succeeded")
    }

    @Test("a login form posted while the journal is closed starts no session")
    func loginWhileClosed() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let start = try await browser.get(failurePath(webAppParameters()))
            let loginPage = try await browser.get(try #require(start.location))
            await harness.ledger.journal.close()
            let posted = try await browser.post(
                "/login",
                form: [("state", loginPage.hidden("state") ?? ""), ("csrf", loginPage.hidden("csrf") ?? ""),
                       ("username", "alice@example.com"), ("password", "correct horse battery staple")])
            #expect(posted.location == nil)
            #expect(posted.status.code >= 400)
            #expect(posted.headers[.setCookie] == nil)
            #expect(browser.cookies["al_session"] == nil)
            #expect(posted.status == .serviceUnavailable)
        }
        let events = try authEvents(harness)
        #expect(events.map(\.1.eventType.name) == ["auth.authorize.requested", "auth.authorize.decided", "auth.interaction.opened"])
    }

    @Test("closing the journal twice is harmless: requests still get 503, and the harness's close and verification that follow pass")
    func closeTwice() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            await harness.ledger.journal.close()
            await harness.ledger.journal.close()
            let page = try await browser.get(failurePath(webAppParameters()))
            expectUnavailablePage(page)
        }
        let events = try authEvents(harness)
        #expect(events.isEmpty, "nothing was recorded: \(events.map(\.1.eventType.name))")
    }
}
