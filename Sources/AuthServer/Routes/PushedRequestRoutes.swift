import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import Hummingbird
import LedgerCore

extension AuthorizationServer {
    /// How long a pushed request's `request_uri` may be used (RFC 9126 §2.2: short-lived).
    static let pushedRequestLifetimeSeconds = 60

    /// The form fields of a pushed request that authenticate the client rather than describe the request.
    static let clientAuthenticationFields: Set<String> = ["client_secret", "client_assertion", "client_assertion_type"]

    /// `POST /oauth/par` (RFC 9126): an authenticated client pushes the parameters of an authorization
    /// request and gets a `request_uri` for them — single use, for ``pushedRequestLifetimeSeconds``, bound
    /// to the client. The parameters are checked by the same rules as at `/authorize` (all but those that
    /// need the user), and an accepted push is recorded (`auth.par.pushed`).
    func pushAuthorizationRequest(_ request: Request, _ context: AuthRequestContext) async -> Response {
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else {
            var response = tokenError(TokenError(.invalidRequest, "A pushed request is a form (application/x-www-form-urlencoded)."))
            response.status = .unsupportedMediaType
            return response
        }
        var request = request
        guard let buffer = try? await request.collectBody(upTo: Self.maximumQueryLength) else {
            var response = tokenError(TokenError(.invalidRequest, "The request is too long (at most \(Self.maximumQueryLength) bytes of parameters)."))
            response.status = .contentTooLarge
            return response
        }
        let pairs = FormEncoding.parse(String(buffer: buffer))
        guard pairs.count <= Self.maximumParameterCount else {
            return tokenError(TokenError(.invalidRequest, "The request has too many parameters (at most \(Self.maximumParameterCount))."))
        }
        var form: [String: String] = [:]
        for (name, value) in pairs where form[name] == nil { form[name] = value }
        let client: RegisteredClient
        switch await authenticateClient(request, form, endpoint: "oauth/par") {
        case .failure(let error): return tokenError(error, basicChallenge: error.code == .invalidClient && request.headers[.authorization] != nil)
        case .success(let authenticated): client = authenticated
        }
        // RFC 9126 §2.1: a pushed request cannot itself refer to another.
        if form["request_uri"] != nil {
            metrics.pushed(error: "invalid_request")
            return tokenError(TokenError(.invalidRequest, "request_uri cannot be pushed."))
        }
        var parameters = AuthorizeParameters(pairs: pairs.filter { !Self.clientAuthenticationFields.contains($0.name) })
        parameters.values["client_id"] = client.clientID  // authenticated by Basic, it may not be in the form
        if let hint = form[AuthorizeParameters.idTokenHintName], !hint.isEmpty {
            parameters.idTokenHint = await verifiedIDTokenHint(hint)
        }
        let requestURI = PushedRequest.uriPrefix + OpaqueToken.generate()
        let hash = SHA256Digest.hash(Array(requestURI.utf8)).hex
        parameters.pushedRequest = PushedRequestReference(hash: hash)
        let now = settings.clock()
        let configuration = ledger.configuration
        // The same rules as /authorize decides with, before anyone has logged in (recorded either way).
        let input = AuthorizationInput(parameters: parameters, now: now)
        let refusal = AuthorizationPolicy.pushRefusal(input, configuration: configuration)
        let pushed = PushedRequest(
            requestURIHash: hash, clientID: client.clientID, parameters: parameters,
            expiresAt: now.adding(seconds: Self.pushedRequestLifetimeSeconds), clientIP: clientAddress(request, context), decidedAt: now,
            policy: input.policy, configurationVersion: configuration.version, refusal: refusal)
        do {
            try await record { try $0.append(.pushedRequest(pushed)) }
        } catch {
            return tokenError(TokenError(.temporarilyUnavailable, "The server cannot record requests right now."))
        }
        metrics.pushed(error: refusal?.error)
        if let refusal {
            return json(value: ["error": refusal.error, "error_description": OAuthErrorDescription.sanitized(refusal.description)], status: .badRequest)
        }
        return json(value: PushedRequestResponse(requestURI: requestURI, expiresIn: Self.pushedRequestLifetimeSeconds), status: .created)
    }

    /// The parameters of an authorization request that names a pushed request by `request_uri`: the pushed
    /// ones, when the request can use them; otherwise the request's own, with the reason it cannot
    /// (which the decision turns into `invalid_request_uri`). Other parameters of the request are ignored
    /// (RFC 9126 §4).
    func resolvingPushedRequest(_ parameters: AuthorizeParameters, now: LedgerTimestamp) async throws -> AuthorizeParameters {
        guard let requestURI = parameters["request_uri"], requestURI.hasPrefix(PushedRequest.uriPrefix), requestURI.utf8.count <= 256 else {
            return parameters
        }
        let hash = SHA256Digest.hash(Array(requestURI.utf8)).hex
        let dataKey = ledger.dataKey
        let stored = try await ledger.query { try $0.pushedRequest(hash, dataKey: dataKey) }
        var refused: PushedRequestReference.Refusal?
        if let stored {
            if stored.clientID != parameters["client_id"] {
                refused = .otherClient
            } else if stored.used == true {
                refused = .used
            } else if stored.expiresAt <= now {
                refused = .expired
            } else {
                var pushed = stored.parameters
                pushed.pushedRequest = PushedRequestReference(hash: hash)
                return pushed
            }
        }
        var unusable = parameters
        unusable.pushedRequest = PushedRequestReference(hash: hash, refused: refused ?? .unknown)
        return unusable
    }
}

/// RFC 9126 §2.2's response.
struct PushedRequestResponse: Encodable {
    var requestURI: String
    var expiresIn: Int

    enum CodingKeys: String, CodingKey {
        case requestURI = "request_uri", expiresIn = "expires_in"
    }
}
