import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import PageMarkup

extension AuthorizationServer {
    /// What operators and clients discover the server by: health, discovery, keys, metrics, and the demo
    /// client's callback page.
    var serviceRoutes: RouteCollection<AuthRequestContext> {
        let routes = RouteCollection(context: AuthRequestContext.self)
        routes.get("/healthz") { _, _ in await self.health() }
        routes.get("/.well-known/openid-configuration") { _, _ in self.discovery() }
        routes.get("/.well-known/jwks.json") { _, _ in await self.jwks() }
        routes.get("/metrics") { _, _ in self.metricsPage() }
        routes.get("/callback") { request, context in self.callback(request, context) }
        return routes
    }

    /// `GET /callback`: the demo client's redirect URI.
    func callback(_ request: Request, _ context: AuthRequestContext) -> Response {
        // Only while the demo client is configured: otherwise this origin would show any text a link carries.
        guard ledger.configuration.clients[DemoTenant.clientID] != nil else {
            return errorPage(.invalidRequest, "There is no demo client on this server.", status: .notFound)
        }
        return page(Pages.callback(parameters: FormEncoding.parse(request.uri.query ?? "").map { ($0.name, $0.value) }, issuer: issuer))
    }

    /// `GET /healthz`: 200 when the journal can be read, 503 when it cannot.
    func health() async -> Response {
        // A node that stopped appending must leave the load balancer's pool, though its reads still work.
        if let stopped = ledger.journal.appendingStopped {
            return json(["status": "unavailable", "reason": "\(stopped)"], status: .serviceUnavailable)
        }
        do {
            let head = try await ledger.storedHead()
            return json(["status": "ok", "journal_sequence": head.sequence])
        } catch {
            return json(["status": "unavailable", "reason": "the journal cannot be read"], status: .serviceUnavailable)
        }
    }

    /// `GET /.well-known/openid-configuration`: what this server really supports today.
    func discovery() -> Response {
        let base = issuer
        let allowPlain = ledger.configuration.settings?.allowPlainPKCE ?? false
        // Every member of OIDC Discovery §3 whose default would claim more (or less) than the server does.
        return json([
            "issuer": base,
            "authorization_endpoint": base + "authorize",
            "jwks_uri": base + ".well-known/jwks.json",
            "token_endpoint": base + "oauth/token",
            "userinfo_endpoint": base + "userinfo",
            "revocation_endpoint": base + "oauth/revoke",
            "introspection_endpoint": base + "oauth/introspect",
            "pushed_authorization_request_endpoint": base + "oauth/par",
            "require_pushed_authorization_requests": false,
            "end_session_endpoint": base + "oidc/logout",
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": false,
            "response_types_supported": ["code", "token", "id_token", "id_token token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "grant_types_supported": ["authorization_code", "refresh_token", "implicit", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": ClientAssertionVerifier.algorithms,
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "dpop_signing_alg_values_supported": DPoPVerifier.algorithms,
            "subject_types_supported": ["public"],
            // ID tokens are always RS256 (OIDC Core §15.1); EdDSA signs access tokens for APIs that ask for it.
            "id_token_signing_alg_values_supported": ["RS256"],
            "userinfo_signing_alg_values_supported": [String](),
            "scopes_supported": ["openid", "profile", "email", "address", "phone", "offline_access"],
            "claims_supported": StandardClaims.supported,
            "claim_types_supported": ["normal"],
            "claims_parameter_supported": true,
            "code_challenge_methods_supported": allowPlain ? ["S256", "plain"] : ["S256"],
            "prompt_values_supported": ["none", "login", "consent"],
            "display_values_supported": ["page"],
            "authorization_response_iss_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "require_request_uri_registration": false,
            "frontchannel_logout_supported": false,
        ])
    }

    /// `GET /.well-known/jwks.json`: the public token signing keys.
    func jwks() async -> Response {
        // Every node's keys: this one's, and those the other nodes of a cluster published in the journal.
        try? await clusterKeys.refresh(ledger: ledger, own: tokenKeys)
        return json(["keys": tokenKeys.jwks + clusterKeys.peers.jwks])
    }


    /// `GET /metrics` in the Prometheus text format.
    func metricsPage() -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        let text = metrics.render(
            journal: ledger.journal.statistics, sequence: ledger.journal.head.sequence, storeWaitsInTasks: ledger.journal.storeWaitsInTasks,
            awaitedReads: ledger.journal.reader.awaitedReadStatistics, wallClockLag: settings.wallClockLag(),
            logStream: settings.logStream.map { ($0.configuration.name, $0.status) })
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
