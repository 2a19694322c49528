import AuthCore
import PageMarkup

/// The HTML pages of the authorization flow. Every value is escaped; forms carry the interaction
/// handle (`state`) and the CSRF token (`csrf`) as hidden fields that the page itself sets.
enum Pages {
    static func login(
        interaction: String, csrf: String, clientName: String, connection: String, loginHint: String?, error: String?
    ) -> String {
        var body = HTML("<h1>Log in</h1>\n<p class=\"muted\">to continue to <strong>")
        body.value(clientName)
        body.raw("</strong></p>\n")
        if let error {
            body.raw("<p class=\"error\" role=\"alert\">")
            body.value(error)
            body.raw("</p>\n")
        }
        body.raw("<form method=\"post\" action=\"/login\">\n")
        body.hidden("state", interaction)
        body.hidden("csrf", csrf)
        body.raw("<label for=\"username\">Email</label>\n<input type=\"email\" id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus value=\"")
        body.value(loginHint ?? "")
        body.raw("\">\n<label for=\"password\">Password</label>\n")
        body.raw("<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\n")
        body.raw("<button type=\"submit\">Log in</button>\n</form>\n<p class=\"muted\">Connection: ")
        body.value(connection)
        body.raw("</p>\n")
        return PageLayout.page(title: "Log in", body: body)
    }

    static func consent(
        interaction: String, csrf: String, clientName: String, user: String, audience: String?, scopes: [String],
        describe: (String) -> String? = { StandardClaims.scopeDescriptions[$0] }
    ) -> String {
        var body = HTML("<h1>Authorize ")
        body.value(clientName)
        body.raw("</h1>\n<p>Hi ")
        body.value(user)
        body.raw(", <strong>")
        body.value(clientName)
        body.raw("</strong> is requesting access to your account")
        if let audience {
            body.raw(" on <strong>")
            body.value(audience)
            body.raw("</strong>")
        }
        body.raw(":</p>\n<ul>\n")
        for scope in scopes {
            body.raw("<li>")
            if let description = describe(scope) {
                body.value(description)
                body.raw(" <span class=\"muted\">(<code>")
                body.value(scope)
                body.raw("</code>)</span>")
            } else {
                body.raw("<code>")
                body.value(scope)
                body.raw("</code>")
            }
            body.raw("</li>\n")
        }
        if scopes.isEmpty { body.raw("<li>Your identity</li>\n") }
        body.raw("</ul>\n<form method=\"post\" action=\"/consent\">\n")
        body.hidden("state", interaction)
        body.hidden("csrf", csrf)
        body.raw("<button type=\"submit\" name=\"action\" value=\"accept\">Accept</button>\n")
        body.raw("<button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\n</form>\n")
        return PageLayout.page(title: "Authorize \(clientName)", body: body)
    }

    static func organizations(interaction: String, csrf: String, clientName: String, choices: [OrganizationRecord]) -> String {
        var body = HTML("<h1>Choose an organization</h1>\n<p class=\"muted\">to continue to ")
        body.value(clientName)
        body.raw("</p>\n<form method=\"post\" action=\"/organization\">\n")
        body.hidden("state", interaction)
        body.hidden("csrf", csrf)
        for organization in choices {
            body.raw("<button type=\"submit\" name=\"organization\" value=\"")
            body.value(organization.id)
            body.raw("\">")
            body.value(organization.name)
            body.raw("</button>\n")
        }
        body.raw("</form>\n")
        return PageLayout.page(title: "Choose an organization", body: body)
    }

    /// The logout confirmation (OIDC RP-Initiated Logout §2: without a valid `id_token_hint`, ask the user):
    /// one CSRF-bound form, so that a link from another site cannot end the session.
    static func logoutConfirmation(csrf: String, carried: [(String, String)] = []) -> String {
        var body = HTML("<h1>Log out?</h1>\n<p>Do you want to log out of this browser's session?</p>\n")
        body.raw("<form method=\"post\" action=\"/logout\">\n")
        body.hidden("csrf", csrf)
        for (name, value) in carried { body.hidden(name, value) }
        body.raw("<button type=\"submit\" autofocus>Log out</button>\n</form>\n")
        return PageLayout.page(title: "Log out", body: body)
    }

    static func loggedOut(wasLoggedIn: Bool) -> String {
        let body = HTML(
            wasLoggedIn
                ? "<h1>Logged out</h1>\n<p>You are logged out of this browser.</p>\n"
                : "<h1>Not logged in</h1>\n<p>This browser has no session to end.</p>\n")
        return PageLayout.page(title: wasLoggedIn ? "Logged out" : "Not logged in", body: body)
    }

    static func error(_ error: String, description: String) -> String {
        var body = HTML("<h1>Something went wrong</h1>\n<p class=\"error\"><code>")
        body.value(error)
        body.raw("</code></p>\n<p>")
        body.value(description)
        body.raw("</p>\n<p class=\"muted\">You have not been redirected. Return to the application and try again.</p>\n")
        return PageLayout.page(title: "Error", body: body)
    }

    /// The OAuth 2.0 Form Post Response Mode page: a form that submits itself (one inline script, allowed by
    /// its hash in the Content-Security-Policy), with a button for browsers without JavaScript.
    static func formPost(action: String, fields: [(String, String)]) -> String {
        var body = HTML("<form method=\"post\" action=\"")
        body.value(action)
        body.raw("\">\n")
        for (name, value) in fields { body.hidden(name, value) }
        body.raw("<noscript><button type=\"submit\">Continue</button></noscript>\n</form>\n<script>\(formPostScript)</script>\n")
        return PageLayout.page(title: "Submit this form", body: body)
    }

    static let formPostScript = "document.forms[0].submit();"

    /// The demo client's callback page, served by the server itself for the README walk-through.
    static func callback(parameters: [(String, String)], issuer: String) -> String {
        var body = HTML("<h1>Demo callback</h1>\n")
        let values = Dictionary(parameters, uniquingKeysWith: { first, _ in first })
        if let error = values["error"] {
            body.raw("<p class=\"error\">Authorization failed: <code>")
            body.value(error)
            body.raw("</code></p>\n<p>")
            body.value(OAuthErrorDescription.sanitized(values["error_description"] ?? ""))
            body.raw("</p>\n")
        } else if let code = values["code"] {
            body.raw("<p>The authorization server sent this code back to the demo app:</p>\n<p><code id=\"code\">")
            body.value(code)
            body.raw("</code></p>\n<p class=\"muted\">It is valid for a short time and can be redeemed once at <code>")
            body.value(issuer + "oauth/token")
            body.raw("</code>.</p>\n")
        } else {
            body.raw("<p>No code or error was received.</p>\n")
        }
        body.raw("<h2>All parameters</h2>\n<dl>\n")
        for (name, value) in parameters {
            body.raw("<dt><code>")
            body.value(name)
            body.raw("</code></dt><dd><code>")
            body.value(value)
            body.raw("</code></dd>\n")
        }
        body.raw("</dl>\n")
        return PageLayout.page(title: "Demo callback", body: body)
    }
}
