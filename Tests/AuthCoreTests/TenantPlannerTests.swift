import Foundation
import LedgerCore
import Testing

@testable import AuthCore

@Suite("TenantPlanner: only differences become events, secrets only as Argon2id hashes, cross-references validated")
struct TenantPlannerTests {
    let planner = Fixtures.planner

    // MARK: - Planning against an empty journal

    @Test("the example against an empty configuration yields one event per entity, in a fixed order")
    func exampleEventKinds() throws {
        let events = try planner.plan(try Fixtures.example(), against: ConfigurationState())
        #expect(
            events.map(\.kind) == [
                "config.tenant.set",
                "config.api.set",
                "config.connection.set",
                "config.user.set",
                "config.client.set",
                "config.organization.set",
                "config.organization.member.added",
                "config.invitation.set",
            ])
    }

    @Test("the example's events carry the file's values")
    func exampleEventValues() throws {
        let example = try Fixtures.example()
        let events = try planner.plan(example, against: ConfigurationState())
        #expect(events.contains(.tenantSet(example.tenant)))
        #expect(events.contains(.apiSet(example.apis[0])))
        #expect(events.contains(.connectionSet(ConnectionRecord(name: "Username-Password-Authentication", strategy: "database"))))
        #expect(events.contains(.organizationSet(OrganizationRecord(id: "org_acme", name: "acme", connections: ["Username-Password-Authentication"]))))
        #expect(events.contains(.memberAdded(MembershipRecord(organizationID: "org_acme", userID: "auth0|alice"))))
        #expect(
            events.contains(
                .invitationSet(
                    InvitationRecord(
                        ticket: "inv_123", organizationID: "org_acme", email: "bob@example.com", clientID: "web-app",
                        expiresAt: "2030-01-01T00:00:00Z"))))

        let user = try #require(events.compactMap { if case .userSet(let user) = $0 { user } else { nil } }.first)
        #expect(user.userID == "auth0|alice")
        #expect(user.email == "alice@example.com")
        #expect(user.connection == "Username-Password-Authentication")

        let client = try #require(events.compactMap { if case .clientSet(let client) = $0 { client } else { nil } }.first)
        #expect(client.clientID == "web-app")
        #expect(client.name == "Example Web App")
        #expect(client.appType == .regularWeb)
        #expect(client.tokenEndpointAuthMethod == .clientSecretBasic)
        #expect(client.redirectURIs == ["http://127.0.0.1:9000/callback"])
        #expect(client.grantTypes == ["authorization_code", "refresh_token"])
        #expect(client.firstParty == false)
        #expect(client.connections == ["Username-Password-Authentication"])
        #expect(client.organizationUsage == .deny)
    }

    @Test("passwords and client secrets appear in events only as Argon2id hashes that verify")
    func secretsAreHashed() throws {
        let events = try planner.plan(try Fixtures.example(), against: ConfigurationState())

        let user = try #require(events.compactMap { if case .userSet(let user) = $0 { user } else { nil } }.first)
        #expect(user.passwordHash.hasPrefix("$argon2id$"))
        #expect(user.passwordHash != Fixtures.alicePassword)
        #expect(Fixtures.hasher.verify(Fixtures.alicePassword, against: user.passwordHash))
        #expect(!Fixtures.hasher.verify("wrong password", against: user.passwordHash))

        let client = try #require(events.compactMap { if case .clientSet(let client) = $0 { client } else { nil } }.first)
        let secretHash = try #require(client.secretHash)
        #expect(secretHash.hasPrefix("$argon2id$"))
        #expect(Fixtures.hasher.verify(Fixtures.webAppSecret, against: secretHash))
        #expect(!Fixtures.hasher.verify("S3CRET", against: secretHash))

        // Nothing that reaches the journal holds the plain text.
        for event in events {
            let payload = String(decoding: try event.payload(), as: UTF8.self)
            #expect(!payload.contains(Fixtures.alicePassword), "\(event.kind) holds the plain password")
            #expect(!payload.contains(Fixtures.webAppSecret), "\(event.kind) holds the plain client secret")
        }
    }

    @Test("a public client without a secret is registered with no secret hash")
    func publicClientHasNoHash() throws {
        var tenant = try Fixtures.example()
        tenant.clients.append(
            ClientDefinition(
                clientID: "spa", name: "SPA", appType: .spa, tokenEndpointAuthMethod: .none, redirectURIs: ["https://spa.test/cb"],
                connections: ["Username-Password-Authentication"]))
        let events = try planner.plan(tenant, against: ConfigurationState())
        let clients = events.compactMap { if case .clientSet(let client) = $0 { client } else { nil } }
        let spa = try #require(clients.first { $0.clientID == "spa" })
        #expect(spa.secretHash == nil)
        #expect(spa.isPublic)
    }

    // MARK: - Idempotence and minimal changes

    @Test("folding the events and planning the same file again yields no events")
    func idempotent() throws {
        let example = try Fixtures.example()
        let state = Fixtures.fold(try planner.plan(example, against: ConfigurationState()))
        #expect(try planner.plan(example, against: state).isEmpty)
        // And the same file read from JSON is the same desired state.
        let fromJSON = try TenantFile.parse(json: Data(Fixtures.exampleJSON.utf8))
        #expect(try planner.plan(fromJSON, against: state).isEmpty)
    }

    @Test("the folded state holds every entity of the file")
    func foldedState() throws {
        let state = try Fixtures.configuration(try Fixtures.example())
        #expect(state.settings == Fixtures.expectedExample.tenant)
        #expect(Array(state.apis.keys) == ["https://api.example.com"])
        #expect(Array(state.connections.keys) == ["Username-Password-Authentication"])
        #expect(Array(state.clients.keys) == ["web-app"])
        #expect(Array(state.users.keys) == ["auth0|alice"])
        #expect(Array(state.organizations.keys) == ["org_acme"])
        #expect(state.members == ["org_acme": ["auth0|alice"]])
        #expect(Array(state.invitations.keys) == ["inv_123"])
        #expect(state.version == 8)
    }

    @Test("changing one password yields exactly one userSet, whose hash verifies the new password only")
    func passwordChange() throws {
        var tenant = try Fixtures.example()
        let state = try Fixtures.configuration(tenant)
        tenant.connections[0].users[0].password = "a new password"
        let events = try planner.plan(tenant, against: state)
        #expect(events.count == 1)
        guard case .userSet(let user)? = events.first else {
            Issue.record("expected one .userSet, got \(events.map(\.kind))")
            return
        }
        #expect(user.userID == "auth0|alice")
        #expect(user.email == "alice@example.com")
        #expect(user.connection == "Username-Password-Authentication")
        #expect(Fixtures.hasher.verify("a new password", against: user.passwordHash))
        #expect(!Fixtures.hasher.verify(Fixtures.alicePassword, against: user.passwordHash))
        #expect(user.passwordHash != state.users["auth0|alice"]?.passwordHash)
    }

    @Test("changing a user's email yields exactly one userSet")
    func emailChange() throws {
        var tenant = try Fixtures.example()
        let state = try Fixtures.configuration(tenant)
        tenant.connections[0].users[0].email = "alice@example.org"
        let events = try planner.plan(tenant, against: state)
        #expect(events.map(\.kind) == ["config.user.set"])
        guard case .userSet(let user)? = events.first else { return }
        #expect(user.email == "alice@example.org")
        #expect(Fixtures.hasher.verify(Fixtures.alicePassword, against: user.passwordHash))
    }

    @Test("changing a redirect URI yields one clientSet that keeps the existing secret hash")
    func redirectURIChange() throws {
        var tenant = try Fixtures.example()
        let state = try Fixtures.configuration(tenant)
        let existingHash = try #require(state.clients["web-app"]?.secretHash)
        tenant.clients[0].redirectURIs = ["http://127.0.0.1:9000/callback", "https://app.example.com/callback"]
        let events = try planner.plan(tenant, against: state)
        #expect(events.count == 1)
        guard case .clientSet(let client)? = events.first else {
            Issue.record("expected one .clientSet, got \(events.map(\.kind))")
            return
        }
        #expect(client.clientID == "web-app")
        #expect(client.redirectURIs == ["http://127.0.0.1:9000/callback", "https://app.example.com/callback"])
        #expect(client.secretHash == existingHash, "an unchanged secret is not hashed anew")
    }

    @Test("changing a client secret yields one clientSet with a new hash of the new secret")
    func secretChange() throws {
        var tenant = try Fixtures.example()
        let state = try Fixtures.configuration(tenant)
        tenant.clients[0].clientSecret = "rotated"
        let events = try planner.plan(tenant, against: state)
        #expect(events.map(\.kind) == ["config.client.set"])
        guard case .clientSet(let client)? = events.first, let hash = client.secretHash else {
            Issue.record("expected one .clientSet with a secret hash")
            return
        }
        #expect(Fixtures.hasher.verify("rotated", against: hash))
        #expect(!Fixtures.hasher.verify(Fixtures.webAppSecret, against: hash))
    }

    @Test("an added member yields exactly one memberAdded; entities left out of the file are not deleted")
    func addMemberAndOmit() throws {
        var tenant = try Fixtures.example()
        let state = try Fixtures.configuration(tenant)
        tenant.connections[0].users.append(UserDefinition(userID: "auth0|bob", email: "bob@example.com", password: "pw-bob"))
        tenant.organizations[0].members.append("auth0|bob")
        let events = try planner.plan(tenant, against: state)
        // bob's invitation is set again: its address now belongs to him (his data subject).
        #expect(events.map(\.kind) == ["config.user.set", "config.organization.member.added", "config.invitation.set"])
        #expect(events[1] == .memberAdded(MembershipRecord(organizationID: "org_acme", userID: "auth0|bob")))
        guard case .invitationSet(let invitation)? = events.last else { return }
        #expect(invitation.userID == "auth0|bob" && invitation.email == "bob@example.com")

        // A file that no longer mentions the API changes nothing about it.
        var smaller = try Fixtures.example()
        smaller.apis = []
        smaller.tenant.defaultAudience = nil
        let changes = try planner.plan(smaller, against: state)
        #expect(changes.map(\.kind) == ["config.tenant.set"])
    }

    // MARK: - Validation

    @Test("a client naming an unknown connection is refused, naming the client and the connection")
    func unknownConnection() throws {
        var tenant = try Fixtures.example()
        tenant.clients[0].connections = ["Username-Password-Authentication", "No-Such-Connection"]
        let reason = try refusal(tenant)
        #expect(reason.contains("clients[0]"))
        #expect(reason.contains("'No-Such-Connection'"))
    }

    @Test(
        "a confidential client without a secret is refused",
        arguments: [ClientDefinition.AuthMethod.clientSecretBasic, ClientDefinition.AuthMethod.clientSecretPost])
    func confidentialWithoutSecret(method: ClientDefinition.AuthMethod) throws {
        var tenant = try Fixtures.example()
        tenant.clients[0].clientSecret = nil
        tenant.clients[0].tokenEndpointAuthMethod = method
        let reason = try refusal(tenant)
        #expect(reason.contains("clients[0]"))
        #expect(reason.contains(method.rawValue))
        #expect(reason.contains("client_secret"))
    }

    @Test(
        "a redirect URI that is relative or has a fragment is refused, naming it",
        arguments: ["https://app.example.com/callback#fragment", "https://app.example.com/callback#", "/callback", "callback", "//app.example.com/cb"])
    func badRedirectURI(uri: String) throws {
        var tenant = try Fixtures.example()
        tenant.clients[0].redirectURIs = ["http://127.0.0.1:9000/callback", uri]
        let reason = try refusal(tenant)
        #expect(reason.contains("clients[0].redirect_uris"))
        #expect(reason.contains("'\(uri)'"))
    }

    @Test("client grants: planned once, and refused for an unknown client, a public client, an unknown API or scope")
    func clientGrants() throws {
        var tenant = try Fixtures.example()
        let api = tenant.apis[0]
        tenant.clientGrants = [ClientGrantDefinition(clientID: tenant.clients[0].clientID, audience: api.identifier, scopes: [api.scopes[0]])]
        let events = try planner.plan(tenant, against: ConfigurationState())
        let grants = events.filter { if case .clientGrantSet = $0 { true } else { false } }
        #expect(grants.count == 1)
        var state = ConfigurationState()
        for (index, event) in events.enumerated() { state.apply(event, at: UInt64(index + 1)) }
        #expect(try planner.plan(tenant, against: state).isEmpty)

        var unknownClient = tenant
        unknownClient.clientGrants[0].clientID = "nobody"
        #expect(try refusal(unknownClient).contains("unknown client 'nobody'"))
        var unknownAPI = tenant
        unknownAPI.clientGrants[0].audience = "https://nope.example"
        #expect(try refusal(unknownAPI).contains("unknown api"))
        var unknownScope = tenant
        unknownScope.clientGrants[0].scopes = ["no:such:scope"]
        #expect(try refusal(unknownScope).contains("'no:such:scope'"))
        var publicClient = tenant
        publicClient.clients[0].tokenEndpointAuthMethod = .none
        publicClient.clients[0].clientSecret = nil
        #expect(try refusal(publicClient).contains("public"))
    }

    @Test("private_key_jwt needs a jwks with keys, and no client_secret besides")
    func privateKeyJWT() throws {
        var tenant = try Fixtures.example()
        tenant.clients[0].tokenEndpointAuthMethod = .privateKeyJWT
        tenant.clients[0].clientSecret = nil
        #expect(try refusal(tenant).contains("no jwks"))
        tenant.clients[0].jwks = .object(["keys": .array([.object(["kty": .string("EC"), "kid": .string("k1")])])])
        #expect(throws: Never.self) { try planner.plan(tenant, against: ConfigurationState()) }
        tenant.clients[0].clientSecret = "also a secret"
        #expect(try refusal(tenant).contains("one or the other"))
    }

    @Test("an organization member that is not a user of the file is refused, naming the member")
    func unknownMember() throws {
        var tenant = try Fixtures.example()
        tenant.organizations[0].members = ["auth0|alice", "auth0|mallory"]
        let reason = try refusal(tenant)
        #expect(reason.contains("organizations[0]"))
        #expect(reason.contains("'auth0|mallory'"))
    }

    @Test("an organization naming an unknown connection is refused")
    func organizationUnknownConnection() throws {
        var tenant = try Fixtures.example()
        tenant.organizations[0].connections = ["Nope"]
        let reason = try refusal(tenant)
        #expect(reason.contains("organizations[0]"))
        #expect(reason.contains("'Nope'"))
    }

    @Test(
        "an invitation whose expires_at is not RFC 3339 is refused, naming the ticket and the value",
        arguments: ["2030-01-01", "tomorrow", "2030-01-01T00:00:00", "2030-13-01T00:00:00Z", "2030-01-01T25:00:00Z", ""])
    func invitationExpiry(expiresAt: String) throws {
        var tenant = try Fixtures.example()
        tenant.organizations[0].invitations[0].expiresAt = expiresAt
        let reason = try refusal(tenant)
        #expect(reason.contains("'inv_123'"))
        #expect(reason.contains("'\(expiresAt)'"))
        #expect(reason.contains("RFC 3339"))
    }

    @Test("an invitation with an offset or fractional seconds is accepted", arguments: ["2030-01-01T01:00:00+01:00", "2030-01-01T00:00:00.5Z"])
    func invitationExpiryAccepted(expiresAt: String) throws {
        var tenant = try Fixtures.example()
        tenant.organizations[0].invitations[0].expiresAt = expiresAt
        let events = try planner.plan(tenant, against: ConfigurationState())
        let invitation = try #require(events.compactMap { if case .invitationSet(let record) = $0 { record } else { nil } }.first)
        #expect(invitation.expiresAt == expiresAt, "kept exactly as configured")
    }

    @Test("an invitation naming an unknown client is refused, naming the ticket and the client")
    func invitationUnknownClient() throws {
        var tenant = try Fixtures.example()
        tenant.organizations[0].invitations[0].clientID = "ghost-app"
        let reason = try refusal(tenant)
        #expect(reason.contains("'inv_123'"))
        #expect(reason.contains("'ghost-app'"))
    }

    @Test("a default_audience that is not one of the apis is refused, naming it")
    func defaultAudienceUnknown() throws {
        var tenant = try Fixtures.example()
        tenant.tenant.defaultAudience = "https://other.example.com"
        let reason = try refusal(tenant)
        #expect(reason.contains("default_audience"))
        #expect(reason.contains("'https://other.example.com'"))
    }

    @Test("an empty issuer and a non-database connection are refused")
    func otherRefusals() throws {
        var emptyIssuer = try Fixtures.example()
        emptyIssuer.tenant.issuer = ""
        #expect(try refusal(emptyIssuer).contains("issuer"))

        var ldap = try Fixtures.example()
        ldap.connections[0].strategy = "ldap"
        #expect(try refusal(ldap).contains("'ldap'"))
    }

    @Test("a refused file yields no events even when the state already has some")
    func refusalAgainstExistingState() throws {
        let state = try Fixtures.configuration(try Fixtures.example())
        var tenant = try Fixtures.example()
        tenant.clients[0].connections = ["Nope"]
        #expect(throws: TenantFileError.self) { try planner.plan(tenant, against: state) }
    }

    /// The `.invalid` reason the planner refuses `tenant` with; records an issue if it does not.
    private func refusal(_ tenant: TenantConfiguration, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let error = #expect(throws: TenantFileError.self, sourceLocation: sourceLocation) {
            try planner.plan(tenant, against: ConfigurationState())
        }
        return try #require(error?.invalidReason, "expected .invalid, got \(String(describing: error))", sourceLocation: sourceLocation)
    }
}
