import LedgerCore

/// Everything a client credentials decision (RFC 6749 §4.4) depends on besides the configuration: the
/// authenticated client, what it asked for, the time. Recorded whole in `auth.client_credentials.decided`,
/// so that `authledger-replay replay` decides it again.
public struct ClientCredentialsInput: Codable, Sendable, Equatable {
    /// The client, already authenticated.
    public var clientID: String
    /// The `audience` parameter (or `resource`, under the tenant's compatibility profile), as sent.
    public var audience: String?
    public var resource: String?
    /// The `scope` parameter, as sent.
    public var scope: String?
    public var now: LedgerTimestamp
    /// The rule-set version (``ClientCredentialsPolicy/currentVersion``).
    public var policy: Int

    public init(
        clientID: String, audience: String?, resource: String? = nil, scope: String?, now: LedgerTimestamp,
        policy: Int = ClientCredentialsPolicy.currentVersion
    ) {
        self.clientID = clientID
        self.audience = audience
        self.resource = resource
        self.scope = scope
        self.now = now
        self.policy = policy
    }

    enum CodingKeys: String, CodingKey {
        case clientID = "client_id", audience, resource, scope, now, policy
    }
}

/// What a client credentials request is granted: an access token for one API, with these scopes.
public struct ClientCredentialsGrant: Codable, Sendable, Equatable {
    public var clientID: String
    public var audience: String
    public var scopes: [String]

    enum CodingKeys: String, CodingKey {
        case clientID = "client_id", audience, scopes
    }

    /// The subject of the client's tokens, as Auth0 names it.
    public var subject: String { clientID + "@clients" }
}

/// The outcome of a client credentials decision, recorded as `{"issue": grant}` or `{"refuse": error}`.
public enum ClientCredentialsOutcome: Codable, Sendable, Equatable {
    case issue(ClientCredentialsGrant)
    case refuse(TokenError)

    enum CodingKeys: String, CodingKey {
        case issue, refuse
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let grant = try container.decodeIfPresent(ClientCredentialsGrant.self, forKey: .issue) {
            self = .issue(grant)
        } else {
            self = .refuse(try container.decode(TokenError.self, forKey: .refuse))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .issue(let grant): try container.encode(grant, forKey: .issue)
        case .refuse(let error): try container.encode(error, forKey: .refuse)
        }
    }

    public var name: String {
        switch self {
        case .issue: "token_issued"
        case .refuse(let error): "error:\(error.code.rawValue)"
        }
    }
}

/// A client credentials decision: the outcome and the rule that reached it.
public struct ClientCredentialsDecision: Codable, Sendable, Equatable {
    public var outcome: ClientCredentialsOutcome
    public var rule: String

    /// The same rule and outcome, error descriptions aside (see ``AuthorizationDecision/isSameDecision(as:)``).
    public func isSameDecision(as other: ClientCredentialsDecision) -> Bool {
        guard rule == other.rule else { return false }
        switch (outcome, other.outcome) {
        case (.issue(let a), .issue(let b)): return a == b
        case (.refuse(let a), .refuse(let b)): return a.code == b.code
        default: return false
        }
    }
}

/// The client credentials grant's decision, pure: the authenticated client's request against the
/// configuration (its grant type, its client grants, the API's scopes). The server and the replay tool
/// run exactly this.
public enum ClientCredentialsPolicy {
    /// 1: the first rule set.
    public static let currentVersion = 1

    public static func decide(_ input: ClientCredentialsInput, configuration: ConfigurationState) -> ClientCredentialsDecision {
        func refuse(_ rule: String, _ code: TokenError.Code, _ description: String) -> ClientCredentialsDecision {
            ClientCredentialsDecision(outcome: .refuse(TokenError(code, description)), rule: rule)
        }
        guard let client = configuration.clients[input.clientID] else {
            return refuse("client.registered", .invalidClient, "Unknown client.")
        }
        guard client.grantTypes.contains("client_credentials"), client.tokenEndpointAuthMethod != .none else {
            return refuse("client_credentials.allowed", .unauthorizedClient, "The client may not use the client_credentials grant.")
        }
        var audience = input.audience
        if configuration.settings?.resourceParameterProfile == .compatibility, let resource = input.resource {
            if let audience, audience != resource {
                return refuse("audience.known", .invalidRequest, "audience and resource name different APIs.")
            }
            audience = resource
        }
        guard let audience = audience ?? configuration.settings?.defaultAudience else {
            return refuse("audience.known", .invalidRequest, "The audience parameter is required: which API is the token for?")
        }
        guard let api = configuration.apis[audience] else {
            return refuse("audience.known", .invalidTarget, "The audience is not an API of this tenant.")
        }
        guard let granted = configuration.clientGrants[ClientGrantRecord.key(clientID: client.clientID, audience: api.identifier)] else {
            return refuse("client_grant.exists", .accessDenied, "The client is not granted access to this API.")
        }
        // The scopes still defined by the API: a grant outlives scopes the API has since dropped.
        let allowed = granted.scopes.filter(api.scopes.contains)
        var scopes: [String] = []
        if let requested = input.scope?.split(separator: " ").map(String.init), !requested.isEmpty {
            guard requested.allSatisfy(allowed.contains) else {
                return refuse("scope.granted", .invalidScope, "A requested scope is not granted to the client for this API.")
            }
            for scope in requested where !scopes.contains(scope) { scopes.append(scope) }
        } else {
            // As Auth0: without a scope parameter, every scope the client grant holds.
            scopes = allowed
        }
        return ClientCredentialsDecision(
            outcome: .issue(ClientCredentialsGrant(clientID: client.clientID, audience: api.identifier, scopes: scopes)), rule: "authorized")
    }
}
