import AuthCore
import Foundation
import HTTPTypes
import LedgerCore
import LedgerJournal
import Testing

@testable import AuthServer

// The rules of AuthorizationPolicy, one by one, over the real socket: what the browser gets (status,
// Location or its absence, error, error_description, state, iss) and what the journal records (the
// decision, the rule that made it, and the events that follow). Every harness verifies its journal.

// MARK: - Fixtures

fileprivate let issuerURL = "https://auth.test/"
fileprivate let webCallback = "https://client.test/callback"
fileprivate let spaCallback = "https://spa.test/callback"
fileprivate let orgCallback = "https://org.test/callback"
fileprivate let firstPartyCallback = "https://first.test/callback"
fileprivate let implicitCallback = "https://implicit.test/callback"
fileprivate let apiIdentifier = "https://api.example.com"
fileprivate let alicePassword = "correct horse battery staple"
fileprivate let bobPassword = "hunter2 hunter2"
/// The test clock's start (ServerHarness.TestClock).

/// RFC 7636 Appendix B: a verifier and its S256 challenge.
fileprivate let pkceVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
fileprivate let pkceChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

/// A JWK SHA-256 thumbprint in the RFC 9449 §10 form: 43 characters of base64url.
fileprivate let validThumbprint = Base64URL.encode(SHA256Digest.hash(Array("{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"dGVzdA\"}".utf8)).bytes)

fileprivate let xssState = "\"><script>alert(1)</script>"
fileprivate let xssStateEscaped = "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"

fileprivate func authorizePath(_ parameters: [(String, String)]) -> String {
    "/authorize?" + FormEncoding.encode(parameters)
}

fileprivate func removing(_ name: String, from parameters: [(String, String)]) -> [(String, String)] {
    parameters.filter { $0.0 != name }
}

fileprivate func setting(_ name: String, _ value: String, in parameters: [(String, String)]) -> [(String, String)] {
    parameters.map { $0.0 == name ? (name, value) : $0 }
}

fileprivate func spaParameters(_ extra: [(String, String)] = [], state: String = "st-123") -> [(String, String)] {
    [("response_type", "code"), ("client_id", "spa"), ("redirect_uri", spaCallback), ("scope", "openid profile"), ("state", state)] + extra
}

fileprivate func orgAppParameters(_ extra: [(String, String)] = [], state: String = "st-123") -> [(String, String)] {
    [("response_type", "code"), ("client_id", "org-app"), ("redirect_uri", orgCallback), ("scope", "openid profile"), ("state", state)]
        + extra
}

fileprivate func firstPartyParameters(
    _ extra: [(String, String)] = [], scope: String = "openid profile", state: String = "st-123"
) -> [(String, String)] {
    [("response_type", "code"), ("client_id", "first-party"), ("redirect_uri", firstPartyCallback), ("scope", scope), ("state", state)]
        + extra
}

fileprivate func implicitAppParameters(_ responseType: String, _ extra: [(String, String)] = []) -> [(String, String)] {
    [("response_type", responseType), ("client_id", "implicit-app"), ("redirect_uri", implicitCallback), ("scope", "openid"),
     ("state", "st-123"), ("nonce", "n-1")] + extra
}

/// Carries values out of the `@Sendable` body of `harness.run`.
fileprivate final class RulesBox: @unchecked Sendable {
    var strings: [String] = []
}

// MARK: - Following the flow

/// `/authorize` with `parameters`, then the server's own pages, recording the path of every server-side
/// Location followed (`/login`, `/authorize/resume`, `/consent`, `/organization`). Logs in with the given
/// credentials, answers consent with `consent`, and picks `organization` on the picker (or, when it is nil,
/// stops there and returns the picker page). Returns when the response leaves the server (a redirect to the
/// client, a form_post page, an error page).
fileprivate func walkAuthorize(
    _ browser: Browser, _ parameters: [(String, String)], username: String = "alice@example.com",
    password: String = alicePassword, consent: String = "accept", organization: String? = nil
) async throws -> (steps: [String], page: Page) {
    var page = try await browser.get(authorizePath(parameters))
    var steps: [String] = []
    for _ in 0..<10 {
        guard page.status == .found, let location = page.location, location.hasPrefix("/") else { return (steps, page) }
        let path = String(location.prefix { $0 != "?" })
        steps.append(path)
        if path == "/login" {
            let form = try await browser.get(location)
            guard form.status == .ok else { return (steps, form) }
            page = try await postLogin(browser, from: form, username: username, password: password)
        } else if path == "/consent" {
            let form = try await browser.get(location)
            guard form.status == .ok else { return (steps, form) }
            page = try await browser.post(
                "/consent", form: [("state", form.hidden("state") ?? ""), ("csrf", form.hidden("csrf") ?? ""), ("action", consent)])
        } else if path == "/organization" {
            let form = try await browser.get(location)
            guard let organization, form.status == .ok else { return (steps, form) }
            page = try await browser.post(
                "/organization",
                form: [("state", form.hidden("state") ?? ""), ("csrf", form.hidden("csrf") ?? ""), ("organization", organization)])
        } else {
            page = try await browser.get(location)
        }
    }
    return (steps, page)
}

/// Posts the login form of `loginPage` (its hidden `state` and `csrf`) with these credentials.
fileprivate func postLogin(
    _ browser: Browser, from loginPage: Page, username: String = "alice@example.com", password: String = alicePassword
) async throws -> Page {
    try await browser.post(
        "/login",
        form: [("state", loginPage.hidden("state") ?? ""), ("csrf", loginPage.hidden("csrf") ?? ""), ("username", username),
               ("password", password)])
}

// MARK: - Expectations

/// A 302 to the client's redirect URI carrying `error`, `error_description`, the request's `state` and `iss`.
fileprivate func expectRedirectError(
    _ page: Page, to redirectURI: String, error: String, description: String?, state: String?, fragment: Bool = false,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(page.status == .found, "expected a redirect to the client, got \(page.status)", sourceLocation: sourceLocation)
    let location = page.location ?? "(none)"
    let separator = fragment ? "#" : "?"
    #expect(location.hasPrefix(redirectURI + separator), "Location: \(location)", sourceLocation: sourceLocation)
    let parameters = page.redirectParameters
    #expect(parameters["error"] == error, "Location: \(location)", sourceLocation: sourceLocation)
    if let description {
        #expect(parameters["error_description"] == description, "Location: \(location)", sourceLocation: sourceLocation)
    } else {
        #expect(parameters["error_description"]?.isEmpty == false, "Location: \(location)", sourceLocation: sourceLocation)
    }
    #expect(parameters["state"] == state, "Location: \(location)", sourceLocation: sourceLocation)
    #expect(parameters["iss"] == issuerURL, "Location: \(location)", sourceLocation: sourceLocation)
    #expect(parameters["code"] == nil, "an error never carries a code", sourceLocation: sourceLocation)
}

/// A 302 to the client's redirect URI carrying a code, the request's `state` and `iss`, and no error.
@discardableResult
fileprivate func expectCodeRedirect(
    _ page: Page, to redirectURI: String, state: String?, fragment: Bool = false, sourceLocation: SourceLocation = #_sourceLocation
) -> String? {
    #expect(page.status == .found, "expected a redirect with a code, got \(page.status)", sourceLocation: sourceLocation)
    let location = page.location ?? "(none)"
    let separator = fragment ? "#" : "?"
    #expect(location.hasPrefix(redirectURI + separator), "Location: \(location)", sourceLocation: sourceLocation)
    let parameters = page.redirectParameters
    #expect(parameters["error"] == nil, "Location: \(location)", sourceLocation: sourceLocation)
    #expect(parameters["state"] == state, "Location: \(location)", sourceLocation: sourceLocation)
    #expect(parameters["iss"] == issuerURL, "Location: \(location)", sourceLocation: sourceLocation)
    let code = parameters["code"]
    #expect(code?.utf8.count == 43, "Location: \(location)", sourceLocation: sourceLocation)
    return code
}

/// An HTML error page: this status, no Location, the error code shown.
fileprivate func expectErrorPage(
    _ page: Page, status: HTTPResponse.Status = .badRequest, error: String, containing text: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(page.status == status, "expected \(status), got \(page.status)", sourceLocation: sourceLocation)
    #expect(page.location == nil, "an error page never redirects", sourceLocation: sourceLocation)
    #expect(page.body.contains("<code>\(error)</code>"), "body: \(page.body.prefix(600))", sourceLocation: sourceLocation)
    if let text {
        #expect(page.body.contains(text), "body: \(page.body.prefix(600))", sourceLocation: sourceLocation)
    }
}

/// The journal after `harness.run`, by event kind.
struct RecordedFlow {
    let events: [(UInt64, AuthEvent)]

    init(_ harness: ServerHarness) throws {
        events = try harness.events()
    }

    /// The authorization server's own event types, in order (configuration events left out).
    var types: [String] {
        events.compactMap { entry -> String? in
            if case .configuration = entry.1 { return nil }
            return entry.1.eventType.name
        }
    }

    func sequences(of type: String) -> [UInt64] {
        events.filter { $0.1.eventType.name == type }.map(\.0)
    }

    var decisions: [AuthorizeDecided] {
        events.compactMap { entry -> AuthorizeDecided? in
            if case .authorizeDecided(let value) = entry.1 { return value }
            return nil
        }
    }

    /// Each decision's outcome name (`login`, `consent`, `code_issued`, `error:…`, …), in order.
    var outcomes: [String] { decisions.map(\.decision.outcome.name) }

    var codes: [CodeIssued] {
        events.compactMap { entry -> CodeIssued? in
            if case .codeIssued(let value) = entry.1 { return value }
            return nil
        }
    }

    var grants: [CodeGrant] { codes.map(\.grant) }

    var loginsSucceeded: [LoginSucceeded] {
        events.compactMap { entry -> LoginSucceeded? in
            if case .loginSucceeded(let value) = entry.1 { return value }
            return nil
        }
    }

    var loginsFailed: [LoginFailed] {
        events.compactMap { entry -> LoginFailed? in
            if case .loginFailed(let value) = entry.1 { return value }
            return nil
        }
    }

    var consentsGranted: [ConsentAnswered] {
        events.compactMap { entry -> ConsentAnswered? in
            if case .consentGranted(let value) = entry.1 { return value }
            return nil
        }
    }

    var consentsDenied: [ConsentAnswered] {
        events.compactMap { entry -> ConsentAnswered? in
            if case .consentDenied(let value) = entry.1 { return value }
            return nil
        }
    }

    var organizationsChosen: [OrganizationChosen] {
        events.compactMap { entry -> OrganizationChosen? in
            if case .organizationChosen(let value) = entry.1 { return value }
            return nil
        }
    }

    var invitationsAccepted: [InvitationAccepted] {
        events.compactMap { entry -> InvitationAccepted? in
            if case .invitationAccepted(let value) = entry.1 { return value }
            return nil
        }
    }
}

// MARK: - 1. Errors redirected to the client

/// One request that the rules refuse after client and redirect URI are known to be valid.
struct AuthorizeRedirectErrorCase: Sendable, CustomTestStringConvertible {
    let label: String
    let query: String
    let redirectURI: String
    let error: String
    let description: String
    let rule: String
    let fragment: Bool

    init(
        _ label: String, _ parameters: [(String, String)], redirectURI: String = "https://client.test/callback", error: String,
        description: String, rule: String, fragment: Bool = false
    ) {
        self.label = label
        self.query = FormEncoding.encode(parameters)
        self.redirectURI = redirectURI
        self.error = error
        self.description = description
        self.rule = rule
        self.fragment = fragment
    }

    var testDescription: String { label }
}

@Suite("/authorize: errors after client and redirect URI are valid are redirects to the client")
struct AuthorizeRedirectErrorTests {
    static let cases: [AuthorizeRedirectErrorCase] = [
        // response_type and response_mode
        .init(
            "missing response_type", removing("response_type", from: webAppParameters()), error: "invalid_request",
            description: "Missing required parameter: response_type.", rule: "response_type.supported"),
        .init(
            "unknown response_type (errors for a non-code response_type go in the fragment)",
            setting("response_type", "foo", in: webAppParameters()), error: "unsupported_response_type",
            description: "Unsupported response_type.", rule: "response_type.supported", fragment: true),
        .init(
            "response_type=token for web-app, which is not allowed implicit", setting("response_type", "token", in: webAppParameters()),
            error: "unauthorized_client", description: "The client is not allowed the implicit grant.",
            rule: "response_type.supported", fragment: true),
        .init(
            "tokens are never returned in the query", implicitAppParameters("token", [("response_mode", "query")]),
            redirectURI: "https://implicit.test/callback", error: "invalid_request",
            description: "Tokens must not be returned in the query (response_mode=query).", rule: "response_type.supported"),
        .init(
            "unsupported response_mode", webAppParameters([("response_mode", "web_message")]), error: "invalid_request",
            description: "Unsupported response_mode.", rule: "response_type.supported"),
        // Repeated parameters (RFC 6749 §3.1)
        .init(
            "scope twice", webAppParameters([("scope", "email")]), error: "invalid_request",
            description: "The scope parameter is repeated.", rule: "parameters.not_repeated"),
        .init(
            "state twice (the first is echoed)", webAppParameters([("state", "second")]), error: "invalid_request",
            description: "The state parameter is repeated.", rule: "parameters.not_repeated"),
        .init(
            "prompt twice", webAppParameters([("prompt", "none"), ("prompt", "login")]), error: "invalid_request",
            description: "The prompt parameter is repeated.", rule: "parameters.not_repeated"),
        // Scopes, audience, resource, connection
        .init(
            "unknown scope (not an OpenID request)", webAppParameters(scope: "profile foo"), error: "invalid_scope", description: "A requested scope is not defined.",
            rule: "scope.defined"),
        .init(
            "a scope the API does not define", webAppParameters([("audience", "https://api.example.com")], scope: "openid read:nope"),
            error: "invalid_scope", description: "A requested scope is not defined by the API.", rule: "scope.defined"),
        .init(
            "unknown audience", webAppParameters([("audience", "https://nope.example")]), error: "access_denied",
            description: "Service not found.", rule: "audience.known"),
        .init(
            "unknown resource (compatibility profile)", webAppParameters([("resource", "https://nope.example")]), error: "access_denied",
            description: "Service not found.", rule: "audience.known"),
        .init(
            "audience and resource naming different APIs",
            webAppParameters([("audience", "https://api.example.com"), ("resource", "https://other.example")]), error: "invalid_request",
            description: "audience and resource name different APIs.", rule: "audience.known"),
        .init(
            "connection not enabled for the client", webAppParameters([("connection", "google-oauth2")]), error: "invalid_request",
            description: "The requested connection is not enabled for this client.", rule: "connection.enabled"),
        // prompt and max_age
        .init(
            "prompt=none without a session", webAppParameters([("prompt", "none")]), error: "login_required",
            description: "The user is not logged in (prompt=none).", rule: "session.authenticated"),
        .init(
            "prompt=none combined with login", webAppParameters([("prompt", "none login")]), error: "invalid_request",
            description: "prompt=none cannot be combined with other prompt values.", rule: "session.authenticated"),
        .init(
            "max_age=abc", webAppParameters([("max_age", "abc")]), error: "invalid_request",
            description: "max_age must be a number of seconds from 0 to 315360000 (ten years).", rule: "session.authenticated"),
        .init(
            "max_age=-1", webAppParameters([("max_age", "-1")]), error: "invalid_request",
            description: "max_age must be a number of seconds from 0 to 315360000 (ten years).", rule: "session.authenticated"),
        // PKCE
        .init(
            "public client (spa) without code_challenge", spaParameters(), redirectURI: "https://spa.test/callback",
            error: "invalid_request", description: "Public clients must use PKCE: code_challenge is required.", rule: "pkce"),
        .init(
            "code_challenge_method=plain (the tenant does not allow plain)",
            spaParameters([("code_challenge", pkceVerifier), ("code_challenge_method", "plain")]), redirectURI: "https://spa.test/callback",
            error: "invalid_request", description: "code_challenge_method plain is not allowed on this tenant; use S256.", rule: "pkce"),
        .init(
            "code_challenge without a method means plain", spaParameters([("code_challenge", pkceVerifier)]),
            redirectURI: "https://spa.test/callback", error: "invalid_request",
            description: "code_challenge_method plain is not allowed on this tenant; use S256.", rule: "pkce"),
        .init(
            "code_challenge too short", spaParameters([("code_challenge", "abc"), ("code_challenge_method", "S256")]),
            redirectURI: "https://spa.test/callback", error: "invalid_request",
            description: "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~].", rule: "pkce"),
        .init(
            "code_challenge too long",
            spaParameters([("code_challenge", String(repeating: "a", count: 129)), ("code_challenge_method", "S256")]),
            redirectURI: "https://spa.test/callback", error: "invalid_request",
            description: "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~].", rule: "pkce"),
        .init(
            "S256 challenge that is not base64url of 32 bytes",
            spaParameters([("code_challenge", String(repeating: "~", count: 43)), ("code_challenge_method", "S256")]),
            redirectURI: "https://spa.test/callback", error: "invalid_request",
            description: "An S256 code_challenge is the base64url SHA-256 of the verifier (43 characters).", rule: "pkce"),
        .init(
            "code_challenge_method without code_challenge", spaParameters([("code_challenge_method", "S256")]),
            redirectURI: "https://spa.test/callback", error: "invalid_request",
            description: "code_challenge_method was given without code_challenge.", rule: "pkce"),
        .init(
            "unknown code_challenge_method", spaParameters([("code_challenge", pkceChallenge), ("code_challenge_method", "S512")]),
            redirectURI: "https://spa.test/callback", error: "invalid_request",
            description: "Unsupported code_challenge_method (use S256).", rule: "pkce"),
        .init(
            "a confidential client's malformed challenge is refused too",
            webAppParameters([("code_challenge", "short"), ("code_challenge_method", "S256")]), error: "invalid_request",
            description: "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~].", rule: "pkce"),
        // dpop_jkt
        .init(
            "dpop_jkt too short", webAppParameters([("dpop_jkt", "abc")]), error: "invalid_request",
            description: "dpop_jkt must be a base64url SHA-256 JWK thumbprint (RFC 9449 section 10).", rule: "dpop_jkt.format"),
        .init(
            "dpop_jkt of 43 characters outside base64url", webAppParameters([("dpop_jkt", String(repeating: "*", count: 43))]),
            error: "invalid_request", description: "dpop_jkt must be a base64url SHA-256 JWK thumbprint (RFC 9449 section 10).",
            rule: "dpop_jkt.format"),
        .init(
            "dpop_jkt of 33 bytes", webAppParameters([("dpop_jkt", Base64URL.encode([UInt8](repeating: 7, count: 33)))]),
            error: "invalid_request", description: "dpop_jkt must be a base64url SHA-256 JWK thumbprint (RFC 9449 section 10).",
            rule: "dpop_jkt.format"),
        .init(
            "dpop_jkt in padded standard base64",
            webAppParameters([("dpop_jkt", SHA256Digest.hash(Array("jwk".utf8)).base64)]), error: "invalid_request",
            description: "dpop_jkt must be a base64url SHA-256 JWK thumbprint (RFC 9449 section 10).", rule: "dpop_jkt.format"),
        // Organizations and invitations
        .init(
            "unknown organization", orgAppParameters([("organization", "org_nope")]), redirectURI: "https://org.test/callback",
            error: "invalid_request", description: "Organization not found.", rule: "organization.allowed"),
        .init(
            "organization for a client whose organization_usage is deny", firstPartyParameters([("organization", "org_acme")]),
            redirectURI: "https://first.test/callback", error: "invalid_request",
            description: "The client does not use organizations (organization_usage deny).", rule: "organization.allowed"),
        .init(
            "expired invitation (inv_old)", orgAppParameters([("organization", "org_acme"), ("invitation", "inv_old")]),
            redirectURI: "https://org.test/callback", error: "invalid_request", description: "The invitation has expired.",
            rule: "invitation.valid"),
        .init(
            "invitation without organization", orgAppParameters([("invitation", "inv_123")]), redirectURI: "https://org.test/callback",
            error: "invalid_request", description: "An invitation requires the organization parameter.", rule: "invitation.valid"),
        .init(
            "invitation issued for another client", webAppParameters([("organization", "org_acme"), ("invitation", "inv_123")]),
            error: "invalid_request", description: "The invitation is not valid for this organization and client.",
            rule: "invitation.valid"),
        .init(
            "unknown invitation", orgAppParameters([("organization", "org_acme"), ("invitation", "inv_nope")]),
            redirectURI: "https://org.test/callback", error: "invalid_request",
            description: "The invitation is not valid for this organization and client.", rule: "invitation.valid"),
    ]

    @Test(
        "redirected with error, error_description, the original state and iss; only the request and its decision are recorded",
        arguments: AuthorizeRedirectErrorTests.cases)
    func redirectedError(_ testCase: AuthorizeRedirectErrorCase) async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let page = try await browser.get("/authorize?" + testCase.query)
            expectRedirectError(
                page, to: testCase.redirectURI, error: testCase.error, description: testCase.description, state: "st-123",
                fragment: testCase.fragment)
            #expect(page.headers[.setCookie] == nil, "no interaction opened, so no binding cookie")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.types == ["auth.authorize.requested", "auth.authorize.decided"])
        let decided = try #require(journal.decisions.first)
        #expect(decided.decision.rule == testCase.rule)
        #expect(decided.interaction == nil)
        guard case .errorRedirect(let error, let description, let delivery) = decided.decision.outcome else {
            Issue.record("expected an error redirect, got \(decided.decision.outcome.name)")
            return
        }
        #expect(error.rawValue == testCase.error)
        #expect(description == testCase.description)
        #expect(delivery.redirectURI == testCase.redirectURI)
        #expect(delivery.state == "st-123")
        let expectedMode: ResponseDelivery.Mode = testCase.fragment ? .fragment : .query
        #expect(delivery.mode == expectedMode)
    }

    @Test("a repeated client_id or redirect_uri is an error page (400, no Location), even with a second value that differs",
          arguments: ["client_id", "redirect_uri"])
    func repeatedClientOrRedirect(_ name: String) async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let same = name == "client_id" ? "web-app" : webCallback
            let other = name == "client_id" ? "first-party" : firstPartyCallback
            for second in [same, other] {
                let page = try await browser.get(authorizePath(webAppParameters([(name, second)])))
                expectErrorPage(page, error: "invalid_request", containing: "The \(name) parameter is repeated.")
                #expect(page.headers[.setCookie] == nil)
            }
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["error_page:invalid_request", "error_page:invalid_request"])
        let expectedRule = name == "client_id" ? "client.registered" : "redirect_uri.exact_match"
        #expect(journal.decisions.map(\.decision.rule) == [expectedRule, expectedRule])
        #expect(journal.codes.isEmpty)
    }

    @Test("resource names the API when the tenant's profile is compatibility: consent names it, and the code is for that audience")
    func resourceNamesTheAPI() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let walk = try await walkAuthorize(browser, webAppParameters([("resource", apiIdentifier)], scope: "openid read:messages"))
            #expect(walk.steps == ["/login", "/authorize/resume", "/consent", "/authorize/resume"])
            expectCodeRedirect(walk.page, to: webCallback, state: "st-123")
            // audience and resource naming the same API are accepted.
            let both = try await browser.get(
                authorizePath(webAppParameters([("audience", apiIdentifier), ("resource", apiIdentifier)], scope: "openid read:messages", state: "st-both")))
            expectCodeRedirect(both, to: webCallback, state: "st-both")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "consent", "code_issued", "code_issued"])
        let expectedAudiences: [String?] = [apiIdentifier, apiIdentifier]
        #expect(journal.grants.map(\.audience) == expectedAudiences)
        #expect(journal.grants.map(\.scopes) == [["openid", "read:messages"], ["openid", "read:messages"]])
        let expectedConsentAudiences: [String?] = [apiIdentifier]
        #expect(journal.consentsGranted.map(\.audience) == expectedConsentAudiences)
    }

    @Test("with the audience profile, resource is ignored: the API's scopes are then unknown (refused outside an OpenID request)")
    func resourceIgnoredUnderAudienceProfile() async throws {
        let tenant = testTenantYAML.replacingOccurrences(
            of: "resource_parameter_profile: compatibility", with: "resource_parameter_profile: audience")
        let harness = try await ServerHarness(tenant: tenant)
        try await harness.run { browser in
            let page = try await browser.get(authorizePath(webAppParameters([("resource", apiIdentifier)], scope: "profile read:messages")))
            expectRedirectError(
                page, to: webCallback, error: "invalid_scope", description: "A requested scope is not defined.", state: "st-123")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.decisions.map(\.decision.rule) == ["scope.defined"])
    }
}

// MARK: - 2, 3. PKCE and DPoP binding

@Suite("/authorize: PKCE and dpop_jkt are bound into the code")
struct AuthorizeBindingTests {
    @Test("spa with an S256 challenge: login page, consent (spa is third party), then a code bound to the challenge")
    func s256Challenge() async throws {
        #expect(Base64URL.encode(SHA256Digest.hash(Array(pkceVerifier.utf8)).bytes) == pkceChallenge, "RFC 7636 Appendix B")
        #expect(pkceChallenge.utf8.count == 43)
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let parameters = spaParameters([("code_challenge", pkceChallenge), ("code_challenge_method", "S256")])
            let first = try await browser.get(authorizePath(parameters))
            #expect(first.status == .found)
            let loginLocation = try #require(first.location)
            #expect(loginLocation.hasPrefix("/login?state="))
            let loginPage = try await browser.get(loginLocation)
            #expect(loginPage.status == .ok)
            #expect(loginPage.body.contains("<form method=\"post\" action=\"/login\">"))
            #expect(loginPage.body.contains("Single Page App"))
            let posted = try await postLogin(browser, from: loginPage)
            #expect(posted.status == .found)
            let resumeLocation = try #require(posted.location)
            #expect(resumeLocation.hasPrefix("/authorize/resume?state="))
            let resumed = try await browser.get(resumeLocation)
            let consentLocation = try #require(resumed.location)
            #expect(consentLocation.hasPrefix("/consent?state="), "spa is not first party: consent is asked")
            let consentPage = try await browser.get(consentLocation)
            #expect(consentPage.status == .ok)
            let answered = try await browser.post(
                "/consent", form: [("state", consentPage.hidden("state") ?? ""), ("csrf", consentPage.hidden("csrf") ?? ""), ("action", "accept")])
            let landed = try await browser.get(try #require(answered.location))
            expectCodeRedirect(landed, to: spaCallback, state: "st-123")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "consent", "code_issued"])
        #expect(journal.consentsGranted.count == 1)
        let grant = try #require(journal.grants.first)
        #expect(journal.grants.count == 1)
        #expect(grant.clientID == "spa")
        #expect(grant.codeChallenge == pkceChallenge)
        #expect(grant.codeChallengeMethod == "S256")
        #expect(grant.dpopJKT == nil)
    }

    @Test("a valid dpop_jkt (43 characters of base64url) is bound into the code's grant")
    func dpopThumbprint() async throws {
        #expect(validThumbprint.utf8.count == 43)
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let walk = try await walkAuthorize(browser, webAppParameters([("dpop_jkt", validThumbprint)]))
            expectCodeRedirect(walk.page, to: webCallback, state: "st-123")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "consent", "code_issued"])
        let grant = try #require(journal.grants.first)
        #expect(grant.dpopJKT == validThumbprint)
        #expect(grant.codeChallenge == nil)
        #expect(grant.codeChallengeMethod == nil)
    }
}

// MARK: - 4. prompt and max_age

@Suite("/authorize: prompt and max_age")
struct AuthorizePromptTests {
    @Test("prompt=none after login: consent_required for a scope not yet granted, a code for granted ones")
    func promptNoneAfterLogin() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let first = try await walkAuthorize(browser, webAppParameters())
            #expect(first.steps == ["/login", "/authorize/resume", "/consent", "/authorize/resume"])
            expectCodeRedirect(first.page, to: webCallback, state: "st-123")
            let newScope = try await browser.get(
                authorizePath(webAppParameters([("prompt", "none")], scope: "openid profile email", state: "st-none-1")))
            expectRedirectError(
                newScope, to: webCallback, error: "consent_required",
                description: "The user has not consented to the requested scopes (prompt=none).", state: "st-none-1")
            let granted = try await browser.get(authorizePath(webAppParameters([("prompt", "none")], state: "st-none-2")))
            expectCodeRedirect(granted, to: webCallback, state: "st-none-2")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "consent", "code_issued", "error:consent_required", "code_issued"])
        #expect(journal.decisions.map(\.decision.rule) == ["session.authenticated", "consent", "authorized", "consent", "authorized"])
        #expect(journal.grants.map(\.scopes) == [["openid", "profile"], ["openid", "profile"]])
        #expect(journal.loginsSucceeded.count == 1)
    }

    @Test("prompt=login with a valid session shows the login page again, then issues a code with the new auth_time")
    func promptLogin() async throws {
        let harness = try await ServerHarness()
        let startTime = harness.clock.read()
        try await harness.run { browser in
            _ = try await walkAuthorize(browser, webAppParameters())
            harness.clock.advance(seconds: 7)
            let forced = try await browser.get(authorizePath(webAppParameters([("prompt", "login")], state: "st-login")))
            #expect(forced.status == .found)
            let loginLocation = try #require(forced.location)
            #expect(loginLocation.hasPrefix("/login?state="))
            let loginPage = try await browser.get(loginLocation)
            #expect(loginPage.status == .ok)
            #expect(loginPage.body.contains("<form method=\"post\" action=\"/login\">"))
            let posted = try await postLogin(browser, from: loginPage)
            let resumeLocation = try #require(posted.location)
            #expect(resumeLocation.hasPrefix("/authorize/resume?state="))
            let landed = try await browser.get(resumeLocation)
            expectCodeRedirect(landed, to: webCallback, state: "st-login")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "consent", "code_issued", "login", "code_issued"])
        let promptLoginDecisions = journal.decisions.filter { decided in decided.input.parameters["prompt"] == "login" }
        let forcedDecision = try #require(promptLoginDecisions.first)
        #expect(forcedDecision.input.session != nil, "the session was there; prompt=login forced the login anyway")
        #expect(forcedDecision.decision.rule == "session.authenticated")
        #expect(journal.loginsSucceeded.count == 2)
        #expect(journal.grants.map(\.authTime) == [startTime, startTime.adding(seconds: 7)])
    }

    @Test("max_age: a session younger than max_age is used; max_age=0 after time has passed forces a login")
    func maxAge() async throws {
        let harness = try await ServerHarness()
        let startTime = harness.clock.read()
        try await harness.run { browser in
            _ = try await walkAuthorize(browser, webAppParameters())
            harness.clock.advance(seconds: 5)
            let young = try await browser.get(authorizePath(webAppParameters([("max_age", "10")], state: "st-10")))
            expectCodeRedirect(young, to: webCallback, state: "st-10")
            let zero = try await browser.get(authorizePath(webAppParameters([("max_age", "0")], state: "st-0")))
            #expect(zero.status == .found)
            let loginLocation = try #require(zero.location)
            #expect(loginLocation.hasPrefix("/login?state="))
            let loginPage = try await browser.get(loginLocation)
            #expect(loginPage.status == .ok)
            let posted = try await postLogin(browser, from: loginPage)
            let landed = try await browser.get(try #require(posted.location))
            expectCodeRedirect(landed, to: webCallback, state: "st-0")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "consent", "code_issued", "code_issued", "login", "code_issued"])
        #expect(journal.loginsSucceeded.count == 2)
        #expect(journal.grants.map(\.authTime) == [startTime, startTime, startTime.adding(seconds: 5)])
    }

    @Test("prompt=consent asks consent again although it was granted")
    func promptConsent() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await walkAuthorize(browser, webAppParameters())
            let again = try await browser.get(authorizePath(webAppParameters([("prompt", "consent")], state: "st-consent")))
            #expect(again.status == .found)
            let consentLocation = try #require(again.location)
            #expect(consentLocation.hasPrefix("/consent?state="))
            let consentPage = try await browser.get(consentLocation)
            #expect(consentPage.status == .ok)
            #expect(consentPage.body.contains("<code>openid</code>"))
            #expect(consentPage.body.contains("<code>profile</code>"))
            let answered = try await browser.post(
                "/consent", form: [("state", consentPage.hidden("state") ?? ""), ("csrf", consentPage.hidden("csrf") ?? ""), ("action", "accept")])
            let landed = try await browser.get(try #require(answered.location))
            expectCodeRedirect(landed, to: webCallback, state: "st-consent")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "consent", "code_issued", "consent", "code_issued"])
        #expect(journal.consentsGranted.count == 2)
        #expect(journal.loginsSucceeded.count == 1)
    }
}

// MARK: - 5. Consent

@Suite("/authorize: consent")
struct AuthorizeConsentTests {
    @Test("consent is asked again when the request adds a scope not granted before; a subset needs none")
    func rescope() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await walkAuthorize(browser, webAppParameters())
            let wider = try await browser.get(authorizePath(webAppParameters(scope: "openid profile email", state: "st-email")))
            let consentLocation = try #require(wider.location)
            #expect(consentLocation.hasPrefix("/consent?state="))
            let consentPage = try await browser.get(consentLocation)
            #expect(consentPage.body.contains("<code>email</code>"))
            let answered = try await browser.post(
                "/consent", form: [("state", consentPage.hidden("state") ?? ""), ("csrf", consentPage.hidden("csrf") ?? ""), ("action", "accept")])
            let landed = try await browser.get(try #require(answered.location))
            expectCodeRedirect(landed, to: webCallback, state: "st-email")
            let subset = try await browser.get(authorizePath(webAppParameters(scope: "openid email", state: "st-subset")))
            expectCodeRedirect(subset, to: webCallback, state: "st-subset")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "consent", "code_issued", "consent", "code_issued", "code_issued"])
        #expect(journal.consentsGranted.map(\.scopes) == [["openid", "profile"], ["openid", "profile", "email"]])
        #expect(journal.grants.map(\.scopes) == [["openid", "profile"], ["openid", "profile", "email"], ["openid", "email"]])
    }

    @Test("deny: access_denied to the client with the state, an auth.consent.denied event, no code; the next request asks again")
    func deny() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let walk = try await walkAuthorize(browser, webAppParameters(), consent: "deny")
            #expect(walk.steps == ["/login", "/authorize/resume", "/consent", "/authorize/resume"])
            expectRedirectError(walk.page, to: webCallback, error: "access_denied", description: "The user denied consent.", state: "st-123")
            let next = try await browser.get(authorizePath(webAppParameters(state: "st-next")))
            #expect(next.location?.hasPrefix("/consent?state=") == true, "a denial is not remembered as a grant")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "consent", "error:access_denied", "consent"])
        #expect(journal.types.contains("auth.consent.denied"))
        let denied = try #require(journal.consentsDenied.first)
        #expect(journal.consentsDenied.count == 1)
        #expect(denied.userID == "auth0|alice")
        #expect(denied.clientID == "web-app")
        #expect(denied.scopes == ["openid", "profile"])
        #expect(journal.consentsGranted.isEmpty)
        #expect(journal.codes.isEmpty)
    }

    @Test("a first-party client skips consent, also for an API that allows it")
    func firstPartySkipsConsent() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let walk = try await walkAuthorize(browser, firstPartyParameters())
            #expect(walk.steps == ["/login", "/authorize/resume"])
            expectCodeRedirect(walk.page, to: firstPartyCallback, state: "st-123")
            let api = try await browser.get(
                authorizePath(firstPartyParameters([("audience", apiIdentifier)], scope: "openid read:messages", state: "st-api")))
            expectCodeRedirect(api, to: firstPartyCallback, state: "st-api")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "code_issued", "code_issued"])
        #expect(journal.consentsGranted.isEmpty)
        #expect(journal.consentsDenied.isEmpty)
        let expectedAudiences: [String?] = [nil, apiIdentifier]
        #expect(journal.grants.map(\.audience) == expectedAudiences)
    }
}

// MARK: - 6. Login

@Suite("/login: passwords, sessions, CSRF and browser binding")
struct LoginRulesTests {
    @Test("a wrong password: 401 login page with the message, auth.login.failed (wrong_password), no session; then the right one works")
    func wrongPassword() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let start = try await browser.get(authorizePath(webAppParameters()))
            let loginPage = try await browser.get(try #require(start.location))
            let failed = try await postLogin(browser, from: loginPage, password: "Tr0ub4dor&3")
            #expect(failed.status == .unauthorized)
            #expect(failed.location == nil)
            #expect(failed.body.contains("Wrong email or password."))
            #expect(failed.body.contains("value=\"alice@example.com\""), "the username is kept in the form")
            #expect(failed.hidden("state") == loginPage.hidden("state"))
            #expect(failed.headers[.setCookie] == nil)
            #expect(browser.cookies["al_session"] == nil)
            let retried = try await postLogin(browser, from: failed)
            #expect(retried.status == .found)
            #expect(retried.location?.hasPrefix("/authorize/resume?state=") == true)
            #expect(browser.cookies["al_session"] != nil)
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.types == [
            "auth.authorize.requested", "auth.authorize.decided", "auth.interaction.opened", "auth.login.failed", "auth.login.succeeded",
        ])
        let failure = try #require(journal.loginsFailed.first)
        #expect(failure.reason == .wrongPassword)
        #expect(failure.username == "alice@example.com")
        #expect(failure.connection == "Username-Password-Authentication")
        let bytes = try harness.journalBytes()
        #expect(bytes.range(of: Data("Tr0ub4dor&3".utf8)) == nil, "no password in the journal, not even a wrong one")
    }

    @Test("an unknown user: the same 401 page and message, auth.login.failed with reason unknown_user; the name is escaped")
    func unknownUser() async throws {
        let harness = try await ServerHarness()
        let username = "mallory\"><script>alert(2)</script>@example.com"
        try await harness.run { browser in
            let start = try await browser.get(authorizePath(webAppParameters()))
            let loginPage = try await browser.get(try #require(start.location))
            let failed = try await postLogin(browser, from: loginPage, username: username, password: alicePassword)
            #expect(failed.status == .unauthorized)
            #expect(failed.location == nil)
            #expect(failed.body.contains("Wrong email or password."))
            #expect(!failed.body.contains("<script>alert(2)"))
            #expect(failed.body.contains("mallory&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;@example.com"))
            #expect(browser.cookies["al_session"] == nil)
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.loginsSucceeded.isEmpty)
        let failure = try #require(journal.loginsFailed.first)
        #expect(journal.loginsFailed.count == 1)
        #expect(failure.reason == .unknownUser)
        let dataKey = try JournalDataKeyFile(journal: harness.directory + "/journal").load()
        #expect(failure.username == dataKey.pseudonym(username.lowercased(), domain: "login-name"), "unknown names are kept only as keyed pseudonyms")
    }

    @Test("every successful login sets a new session id (no session fixation), even over a planted cookie")
    func newSessionEveryLogin() async throws {
        let harness = try await ServerHarness()
        let box = RulesBox()
        try await harness.run { browser in
            browser.cookies["al_session"] = "planted-by-an-attacker"
            let first = try await walkAuthorize(browser, webAppParameters())
            expectCodeRedirect(first.page, to: webCallback, state: "st-123")
            let firstSession = try #require(browser.cookies["al_session"])
            #expect(firstSession != "planted-by-an-attacker")
            #expect(firstSession.utf8.count == 43)
            let second = try await walkAuthorize(browser, webAppParameters([("prompt", "login")], state: "st-again"))
            #expect(second.steps == ["/login", "/authorize/resume"])
            expectCodeRedirect(second.page, to: webCallback, state: "st-again")
            let secondSession = try #require(browser.cookies["al_session"])
            #expect(secondSession != firstSession)
            box.strings = [firstSession, secondSession]
        }
        let journal = try RecordedFlow(harness)
        #expect(box.strings.count == 2)
        #expect(journal.loginsSucceeded.map(\.session.sessionHash) == box.strings.map(OpaqueToken.hash))
        let bytes = try harness.journalBytes()
        for session in box.strings {
            #expect(bytes.range(of: Data(session.utf8)) == nil, "only the session id's hash is journaled")
        }
    }

    @Test("POST /login with a wrong, empty or missing csrf field: 403, no session, nothing recorded",
          arguments: ["missing", "empty", "wrong"])
    func csrf(_ variant: String) async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let start = try await browser.get(authorizePath(webAppParameters()))
            let loginPage = try await browser.get(try #require(start.location))
            var form = [("state", loginPage.hidden("state") ?? "")]
            switch variant {
            case "empty": form.append(("csrf", ""))
            case "wrong": form.append(("csrf", OpaqueToken.generate()))
            default: break
            }
            form += [("username", "alice@example.com"), ("password", alicePassword)]
            let posted = try await browser.post("/login", form: form)
            expectErrorPage(posted, status: .forbidden, error: "access_denied", containing: "CSRF check failed")
            #expect(posted.headers[.setCookie] == nil)
            #expect(browser.cookies["al_session"] == nil)
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.types == ["auth.authorize.requested", "auth.authorize.decided", "auth.interaction.opened"])
    }

    @Test("POST /login from a browser without the binding cookie (another browser, an attacker's own binding, cleared cookies): 403")
    func browserBinding() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let start = try await browser.get(authorizePath(webAppParameters()))
            let loginPage = try await browser.get(try #require(start.location))
            let state = try #require(loginPage.hidden("state"))
            let csrf = try #require(loginPage.hidden("csrf"))
            let credentials = [("username", "alice@example.com"), ("password", alicePassword)]

            let stranger = Browser(client: browser.client)
            let fromStranger = try await stranger.post("/login", form: [("state", state), ("csrf", csrf)] + credentials)
            expectErrorPage(fromStranger, status: .forbidden, error: "access_denied", containing: "another browser")
            #expect(stranger.cookies["al_session"] == nil)

            let attacker = Browser(client: browser.client)
            _ = try await attacker.get(authorizePath(webAppParameters(state: "attacker")))
            let attackerBinding = try #require(attacker.cookies["al_bind"])
            let fromAttacker = try await attacker.post("/login", form: [("state", state), ("csrf", attackerBinding)] + credentials)
            expectErrorPage(fromAttacker, status: .forbidden, error: "access_denied", containing: "another browser")
            #expect(attacker.cookies["al_session"] == nil)

            browser.cookies = [:]
            let cleared = try await browser.post("/login", form: [("state", state), ("csrf", csrf)] + credentials)
            expectErrorPage(cleared, status: .forbidden, error: "access_denied", containing: "another browser")
            #expect(browser.cookies["al_session"] == nil)
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.loginsSucceeded.isEmpty)
        #expect(journal.loginsFailed.isEmpty)
        #expect(journal.outcomes == ["login", "login"])
    }

    @Test("an unknown or missing state: 400 page on every interaction endpoint, no session")
    func unknownState() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await browser.get(authorizePath(webAppParameters()))
            let binding = try #require(browser.cookies["al_bind"])
            let posted = try await browser.post(
                "/login", form: [("state", "no-such-interaction"), ("csrf", binding), ("username", "alice@example.com"), ("password", alicePassword)])
            expectErrorPage(posted, error: "invalid_request", containing: "expired")
            let noState = try await browser.post("/login", form: [("csrf", binding), ("username", "alice@example.com"), ("password", alicePassword)])
            expectErrorPage(noState, error: "invalid_request", containing: "expired")
            for path in ["/login", "/consent", "/organization", "/authorize/resume"] {
                let page = try await browser.get(path + "?state=no-such-interaction")
                expectErrorPage(page, error: "invalid_request", containing: "expired")
            }
            #expect(browser.cookies["al_session"] == nil)
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.loginsSucceeded.isEmpty)
        #expect(journal.loginsFailed.isEmpty)
        #expect(journal.outcomes == ["login"])
    }
}

// MARK: - 7. Reflected input and response modes

@Suite("/authorize: reflected input is encoded or escaped; response modes")
struct AuthorizeReflectionTests {
    @Test("a state with markup comes back URL-encoded in the Location")
    func stateInLocation() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let walk = try await walkAuthorize(browser, webAppParameters(state: xssState))
            expectCodeRedirect(walk.page, to: webCallback, state: xssState)
            let location = walk.page.location ?? ""
            #expect(location.contains("state=" + FormEncoding.encode(xssState)))
            #expect(location.contains("state=%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E"))
            #expect(!location.contains("<"))
            #expect(!location.contains("\""))
            // The same for an error redirect.
            let error = try await browser.get(authorizePath(webAppParameters(scope: "profile nope", state: xssState)))
            expectRedirectError(error, to: webCallback, error: "invalid_scope", description: "A requested scope is not defined.", state: xssState)
            #expect(!(error.location ?? "").contains("<"))
        }
    }

    @Test("response_mode=form_post: a 200 page whose form holds code, state and iss, the state only HTML-escaped")
    func formPost() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let walk = try await walkAuthorize(browser, webAppParameters([("response_mode", "form_post")], state: xssState))
            #expect(walk.steps == ["/login", "/authorize/resume", "/consent", "/authorize/resume"])
            let page = walk.page
            #expect(page.status == .ok)
            #expect(page.location == nil)
            #expect(page.body.contains("<form method=\"post\" action=\"https://client.test/callback\">"))
            #expect(page.hidden("state") == xssStateEscaped)
            #expect(page.body.contains(xssStateEscaped))
            #expect(!page.body.contains("<script>alert"))
            #expect(!page.body.contains(xssState))
            #expect(page.hidden("code")?.utf8.count == 43)
            #expect(page.hidden("iss") == issuerURL)
            #expect(page.hidden("error") == nil)
            #expect(page.body.contains("<script>document.forms[0].submit();</script>"))

            // An error in form_post mode is a form too.
            let error = try await browser.get(
                authorizePath(webAppParameters([("response_mode", "form_post")], scope: "profile nope", state: xssState)))
            #expect(error.status == .ok)
            #expect(error.location == nil)
            #expect(error.hidden("error") == "invalid_scope")
            #expect(error.hidden("state") == xssStateEscaped)
            #expect(error.hidden("code") == nil)
            #expect(!error.body.contains("<script>alert"))
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "consent", "code_issued", "error:invalid_scope"])
    }

    @Test("a login_hint with markup is escaped on the login page")
    func loginHint() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let start = try await browser.get(authorizePath(webAppParameters([("login_hint", "\"><img src=x onerror=alert(1)>")])))
            let loginPage = try await browser.get(try #require(start.location))
            #expect(loginPage.status == .ok)
            #expect(loginPage.body.contains("value=\"&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\""))
            #expect(!loginPage.body.contains("<img"))
        }
        let journal = try RecordedFlow(harness)
        let decided = try #require(journal.decisions.first)
        let expectedOutcome = AuthorizationOutcome.login(connection: "Username-Password-Authentication", loginHint: "\"><img src=x onerror=alert(1)>")
        #expect(decided.decision.outcome == expectedOutcome)
    }

    @Test("response_mode=fragment puts code, state and iss in the fragment, nothing in the query")
    func fragment() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let walk = try await walkAuthorize(browser, webAppParameters([("response_mode", "fragment")]))
            expectCodeRedirect(walk.page, to: webCallback, state: "st-123", fragment: true)
            #expect(!(walk.page.location ?? "").contains("?"))
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "consent", "code_issued"])
    }
}

// MARK: - 8. Organizations and invitations

@Suite("/authorize: organizations and invitations")
struct AuthorizeOrganizationTests {
    @Test("org-app requires an organization: after login the picker, then a code for the chosen organization")
    func picker() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let start = try await browser.get(authorizePath(orgAppParameters()))
            let loginPage = try await browser.get(try #require(start.location))
            let posted = try await postLogin(browser, from: loginPage)
            let resumed = try await browser.get(try #require(posted.location))
            #expect(resumed.status == .found)
            let pickerLocation = try #require(resumed.location)
            #expect(pickerLocation.hasPrefix("/organization?state="))
            let picker = try await browser.get(pickerLocation)
            #expect(picker.status == .ok)
            #expect(picker.body.contains("Choose an organization"))
            #expect(picker.body.contains("<button type=\"submit\" name=\"organization\" value=\"org_acme\">acme</button>"))
            let state = try #require(picker.hidden("state"))
            let csrf = try #require(picker.hidden("csrf"))
            // An organization that was not offered is refused.
            let foreign = try await browser.post("/organization", form: [("state", state), ("csrf", csrf), ("organization", "org_other")])
            expectErrorPage(foreign, error: "invalid_request", containing: "Choose one of the organizations offered.")
            let chosen = try await browser.post("/organization", form: [("state", state), ("csrf", csrf), ("organization", "org_acme")])
            #expect(chosen.status == .found)
            let resumeLocation = try #require(chosen.location)
            #expect(resumeLocation.hasPrefix("/authorize/resume?state="))
            let landed = try await browser.get(resumeLocation)
            expectCodeRedirect(landed, to: orgCallback, state: "st-123")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "choose_organization", "code_issued"])
        #expect(journal.organizationsChosen.map(\.organizationID) == ["org_acme"])
        let grant = try #require(journal.grants.first)
        #expect(grant.organizationID == "org_acme")
        #expect(grant.userID == "auth0|alice")
        #expect(journal.consentsGranted.isEmpty, "org-app is first party")
    }

    @Test("organization given by id or by name: a code with the organization's id")
    func organizationGiven() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let byID = try await walkAuthorize(browser, orgAppParameters([("organization", "org_acme")]))
            #expect(byID.steps == ["/login", "/authorize/resume"])
            expectCodeRedirect(byID.page, to: orgCallback, state: "st-123")
            let byName = try await browser.get(authorizePath(orgAppParameters([("organization", "acme")], state: "st-name")))
            expectCodeRedirect(byName, to: orgCallback, state: "st-name")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "code_issued", "code_issued"])
        let expectedOrganizations: [String?] = ["org_acme", "org_acme"]
        #expect(journal.grants.map(\.organizationID) == expectedOrganizations)
        #expect(journal.organizationsChosen.isEmpty)
    }

    @Test("web-app (organization_usage allow) with an organization bob is not a member of: access_denied after login")
    func notAMember() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let walk = try await walkAuthorize(
                browser, webAppParameters([("organization", "org_acme")]), username: "bob@example.com", password: bobPassword)
            #expect(walk.steps == ["/login", "/authorize/resume"])
            expectRedirectError(
                walk.page, to: webCallback, error: "access_denied", description: "The user is not a member of organization acme.",
                state: "st-123")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "error:access_denied"])
        #expect(journal.decisions.last?.decision.rule == "organization.membership")
        #expect(journal.codes.isEmpty)
    }

    @Test("org-app for bob, who is in no organization: access_denied instead of an empty picker")
    func noOrganizationToChoose() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let walk = try await walkAuthorize(browser, orgAppParameters(), username: "bob@example.com", password: bobPassword)
            expectRedirectError(
                walk.page, to: orgCallback, error: "access_denied",
                description: "The user is not a member of any organization this client requires.", state: "st-123")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "error:access_denied"])
        #expect(journal.decisions.last?.decision.rule == "organization.membership")
    }

    @Test("prompt=none on org-app: login_required without a session (authentication comes first), interaction_required when the organization is missing, a code when given")
    func promptNone() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let noSession = try await browser.get(authorizePath(orgAppParameters([("prompt", "none")], state: "st-1")))
            expectRedirectError(
                noSession, to: orgCallback, error: "login_required", description: "The user is not logged in (prompt=none).", state: "st-1")
            let login = try await walkAuthorize(browser, orgAppParameters([("organization", "org_acme")], state: "st-2"))
            expectCodeRedirect(login.page, to: orgCallback, state: "st-2")
            let missing = try await browser.get(authorizePath(orgAppParameters([("prompt", "none")], state: "st-3")))
            expectRedirectError(
                missing, to: orgCallback, error: "interaction_required", description: "The client requires an organization (prompt=none).",
                state: "st-3")
            let given = try await browser.get(authorizePath(orgAppParameters([("prompt", "none"), ("organization", "org_acme")], state: "st-4")))
            expectCodeRedirect(given, to: orgCallback, state: "st-4")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["error:login_required", "login", "code_issued", "error:interaction_required", "code_issued"])
        #expect(journal.decisions.map(\.decision.rule) == [
            "session.authenticated", "session.authenticated", "authorized", "organization.membership", "authorized",
        ])
    }

    @Test("an invitation: bob logs in, gets a code for the organization, and auth.invitation.accepted is recorded with it; the ticket is then spent")
    func invitation() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let invited = orgAppParameters([("organization", "org_acme"), ("invitation", "inv_123")])
            let walk = try await walkAuthorize(browser, invited, username: "bob@example.com", password: bobPassword)
            #expect(walk.steps == ["/login", "/authorize/resume"])
            expectCodeRedirect(walk.page, to: orgCallback, state: "st-123")
            let again = try await browser.get(authorizePath(setting("state", "st-again", in: invited)))
            expectRedirectError(
                again, to: orgCallback, error: "invalid_request", description: "The invitation has already been used.", state: "st-again")
            // bob is a member now.
            let member = try await browser.get(authorizePath(orgAppParameters([("organization", "org_acme")], state: "st-member")))
            expectCodeRedirect(member, to: orgCallback, state: "st-member")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "code_issued", "error:invalid_request", "code_issued"])
        #expect(journal.types.contains("auth.invitation.accepted"))
        #expect(journal.invitationsAccepted == [InvitationAccepted(ticket: "inv_123", organizationID: "org_acme", userID: "auth0|bob")])
        // Accepted in the same commit as the code it came with, right after it.
        let issued = journal.sequences(of: "auth.code.issued")
        let accepted = journal.sequences(of: "auth.invitation.accepted")
        let expectedAccepted = issued.prefix(1).map { sequence in sequence + 1 }
        #expect(accepted == expectedAccepted)
        let expectedInvitations: [String?] = ["inv_123", nil]
        #expect(journal.grants.map(\.invitation) == expectedInvitations)
        #expect(journal.grants.map(\.userID) == ["auth0|bob", "auth0|bob"])
        let expectedOrganizations: [String?] = ["org_acme", "org_acme"]
        #expect(journal.grants.map(\.organizationID) == expectedOrganizations)
        #expect(journal.decisions.dropFirst(2).first?.decision.rule == "invitation.valid")
    }

    @Test("an invitation used by someone else (alice, not the invitee's email): access_denied, the ticket stays unspent")
    func invitationForAnotherEmail() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let walk = try await walkAuthorize(browser, orgAppParameters([("organization", "org_acme"), ("invitation", "inv_123")]))
            expectRedirectError(
                walk.page, to: orgCallback, error: "access_denied", description: "The invitation was issued to another email address.",
                state: "st-123")
        }
        let journal = try RecordedFlow(harness)
        #expect(journal.outcomes == ["login", "error:access_denied"])
        #expect(journal.invitationsAccepted.isEmpty)
        #expect(journal.codes.isEmpty)
    }
}
