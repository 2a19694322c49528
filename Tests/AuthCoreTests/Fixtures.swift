import Foundation
import LedgerCore
import Testing

@testable import AuthCore

/// Shared test data: the SPEC.md example tenant (as YAML and as JSON), the values it must parse into,
/// and plan-and-fold helpers that use the fast Argon2id limits.
enum Fixtures {
    static let hasher = Argon2idHasher.minimal
    static let planner = TenantPlanner(hasher: Argon2idHasher.minimal)

    /// The example of SPEC.md § "Tenant file", verbatim.
    static let exampleYAML = """
        tenant:
          issuer: http://127.0.0.1:8080/
          resource_parameter_profile: audience      # or compatibility
          default_audience: https://api.example.com # optional
          code_ttl_seconds: 60
          session_ttl_seconds: 86400
        apis:
          - identifier: https://api.example.com
            name: Example API
            scopes: [read:messages, write:messages]
            allow_offline_access: true
            skip_consent_for_first_party: true
            token_ttl_seconds: 86400
            signing_alg: RS256                       # or EdDSA
        clients:
          - client_id: web-app
            name: Example Web App
            app_type: regular_web                    # spa, native, regular_web, non_interactive
            client_secret: s3cret                    # stored hashed; never logged
            token_endpoint_auth_method: client_secret_basic   # client_secret_post, none
            redirect_uris: [http://127.0.0.1:9000/callback]
            grant_types: [authorization_code, refresh_token]  # implicit to allow token/id_token
            first_party: false
            connections: [Username-Password-Authentication]
            organization_usage: deny                 # allow, require
        connections:
          - name: Username-Password-Authentication
            strategy: database
            users:
              - user_id: auth0|alice
                email: alice@example.com
                password: correct horse battery staple   # stored as an Argon2id hash
        organizations:
          - id: org_acme
            name: acme
            connections: [Username-Password-Authentication]
            members: [auth0|alice]
            invitations:
              - ticket: inv_123
                email: bob@example.com
                client_id: web-app
                expires_at: 2030-01-01T00:00:00Z

        """

    /// The same tenant as JSON.
    static let exampleJSON = """
        {
          "tenant": {
            "issuer": "http://127.0.0.1:8080/",
            "resource_parameter_profile": "audience",
            "default_audience": "https://api.example.com",
            "code_ttl_seconds": 60,
            "session_ttl_seconds": 86400
          },
          "apis": [
            {
              "identifier": "https://api.example.com",
              "name": "Example API",
              "scopes": ["read:messages", "write:messages"],
              "allow_offline_access": true,
              "skip_consent_for_first_party": true,
              "token_ttl_seconds": 86400,
              "signing_alg": "RS256"
            }
          ],
          "clients": [
            {
              "client_id": "web-app",
              "name": "Example Web App",
              "app_type": "regular_web",
              "client_secret": "s3cret",
              "token_endpoint_auth_method": "client_secret_basic",
              "redirect_uris": ["http://127.0.0.1:9000/callback"],
              "grant_types": ["authorization_code", "refresh_token"],
              "first_party": false,
              "connections": ["Username-Password-Authentication"],
              "organization_usage": "deny"
            }
          ],
          "connections": [
            {
              "name": "Username-Password-Authentication",
              "strategy": "database",
              "users": [
                {"user_id": "auth0|alice", "email": "alice@example.com", "password": "correct horse battery staple"}
              ]
            }
          ],
          "organizations": [
            {
              "id": "org_acme",
              "name": "acme",
              "connections": ["Username-Password-Authentication"],
              "members": ["auth0|alice"],
              "invitations": [
                {"ticket": "inv_123", "email": "bob@example.com", "client_id": "web-app", "expires_at": "2030-01-01T00:00:00Z"}
              ]
            }
          ]
        }
        """

    static let connectionName = "Username-Password-Authentication"
    static let alicePassword = "correct horse battery staple"
    static let webAppSecret = "s3cret"

    /// What the example must parse into, written out field by field.
    static let expectedExample = TenantConfiguration(
        tenant: TenantSettings(
            issuer: "http://127.0.0.1:8080/", resourceParameterProfile: .audience, defaultAudience: "https://api.example.com",
            codeTTLSeconds: 60, sessionTTLSeconds: 86_400, allowPlainPKCE: false),
        apis: [
            APIDefinition(
                identifier: "https://api.example.com", name: "Example API", scopes: ["read:messages", "write:messages"],
                allowOfflineAccess: true, skipConsentForFirstParty: true, tokenTTLSeconds: 86_400, signingAlgorithm: "RS256")
        ],
        clients: [
            ClientDefinition(
                clientID: "web-app", name: "Example Web App", appType: .regularWeb, clientSecret: "s3cret",
                tokenEndpointAuthMethod: .clientSecretBasic, redirectURIs: ["http://127.0.0.1:9000/callback"],
                grantTypes: ["authorization_code", "refresh_token"], firstParty: false,
                connections: ["Username-Password-Authentication"], organizationUsage: .deny)
        ],
        connections: [
            ConnectionDefinition(
                name: "Username-Password-Authentication", strategy: "database",
                users: [UserDefinition(userID: "auth0|alice", email: "alice@example.com", password: "correct horse battery staple")])
        ],
        organizations: [
            OrganizationDefinition(
                id: "org_acme", name: "acme", connections: ["Username-Password-Authentication"], members: ["auth0|alice"],
                invitations: [
                    InvitationDefinition(ticket: "inv_123", email: "bob@example.com", clientID: "web-app", expiresAt: "2030-01-01T00:00:00Z")
                ])
        ])

    /// The example tenant, parsed from its YAML.
    static func example() throws -> TenantConfiguration {
        try TenantFile.parse(yaml: exampleYAML)
    }

    /// The example YAML with `target` (which must occur exactly once) replaced.
    static func mutatedYAML(replacing target: String, with replacement: String) throws -> String {
        let occurrences = exampleYAML.components(separatedBy: target).count - 1
        try #require(occurrences == 1, "the fixture must contain \(target.debugDescription) exactly once, not \(occurrences) times")
        return exampleYAML.replacingOccurrences(of: target, with: replacement)
    }

    /// Folds configuration events into `state`, numbering them from `first`.
    static func fold(_ events: [ConfigurationEvent], into state: ConfigurationState = ConfigurationState(), from first: UInt64 = 1)
        -> ConfigurationState
    {
        var state = state
        for (offset, event) in events.enumerated() { state.apply(event, at: first + UInt64(offset)) }
        return state
    }

    /// The configuration a tenant file produces on an empty journal.
    static func configuration(_ tenant: TenantConfiguration) throws -> ConfigurationState {
        fold(try planner.plan(tenant, against: ConfigurationState()))
    }
}

extension TenantFileError {
    /// The reason of an `.invalid` error, `nil` for any other case.
    var invalidReason: String? {
        if case .invalid(let reason) = self { reason } else { nil }
    }
}

extension ConfigurationEvent {
    /// The journal event type's name, e.g. `config.user.set`.
    var kind: String { eventType.name }
}
