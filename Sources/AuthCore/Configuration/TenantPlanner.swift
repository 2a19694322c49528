import LedgerCore

/// Works out which configuration events make the current configuration match a tenant file.
///
/// Only differences become events, so applying the same file twice appends nothing. Secrets are
/// compared by verifying the file's plain text against the stored hash, and hashed anew only when
/// they changed. Entities missing from the file are left as they are (nothing is deleted).
public struct TenantPlanner: Sendable {
    public let hasher: any SecretHasher

    public init(hasher: any SecretHasher) {
        self.hasher = hasher
    }

    public func plan(_ desired: TenantConfiguration, against current: ConfigurationState) throws(TenantFileError) -> [ConfigurationEvent] {
        try validate(desired)
        var events: [ConfigurationEvent] = []
        if current.settings != desired.tenant { events.append(.tenantSet(desired.tenant)) }
        if let retention = desired.retention, current.retention != retention { events.append(.retentionSet(retention)) }
        for api in desired.apis where current.apis[api.identifier] != api {
            events.append(.apiSet(api))
        }
        for connection in desired.connections {
            let record = ConnectionRecord(name: connection.name, strategy: connection.strategy)
            if current.connections[connection.name] != record { events.append(.connectionSet(record)) }
            for user in connection.users {
                let existing = current.users[user.userID]
                let unchanged =
                    existing.map {
                        $0.email == .clear(user.email) && $0.connection == connection.name && $0.profile == user.profile
                            && $0.emailVerified == user.emailVerified && $0.phoneNumberVerified == user.phoneNumberVerified
                            && hasher.verify(user.password, against: $0.passwordHash)
                    } ?? false
                if !unchanged {
                    events.append(
                        .userSet(
                            RegisteredUser(
                                userID: user.userID, email: .clear(user.email), connection: connection.name, passwordHash: hasher.hash(user.password),
                                profile: user.profile, emailVerified: user.emailVerified, phoneNumberVerified: user.phoneNumberVerified)))
                }
            }
        }
        for client in desired.clients {
            let existing = current.clients[client.clientID]
            var secretHash = existing?.secretHash
            let secretUnchanged: Bool = {
                switch (client.clientSecret, existing?.secretHash) {
                case (nil, nil): return true
                case (let secret?, let hash?): return hasher.verify(secret, against: hash)
                default: return false
                }
            }()
            if !secretUnchanged { secretHash = client.clientSecret.map(hasher.hash) }
            let record = RegisteredClient(client, secretHash: secretHash)
            if existing != record { events.append(.clientSet(record)) }
        }
        for grant in desired.clientGrants {
            if current.clientGrants[grant.key] != grant { events.append(.clientGrantSet(grant)) }
        }
        // An invitation's address belongs to the user who has it, if any (its data subject).
        var userIDsByEmail: [String: String] = [:]
        for connection in desired.connections {
            for user in connection.users { userIDsByEmail[user.email.lowercased()] = userIDsByEmail[user.email.lowercased()] ?? user.userID }
        }
        for organization in desired.organizations {
            let record = OrganizationRecord(id: organization.id, name: organization.name, connections: organization.connections)
            if current.organizations[organization.id] != record { events.append(.organizationSet(record)) }
            let members = current.members[organization.id] ?? []
            for member in organization.members where !members.contains(member) {
                events.append(.memberAdded(MembershipRecord(organizationID: organization.id, userID: member)))
            }
            for invitation in organization.invitations {
                let record = InvitationRecord(
                    ticket: invitation.ticket, organizationID: organization.id, email: .clear(invitation.email),
                    clientID: invitation.clientID, expiresAt: invitation.expiresAt, userID: userIDsByEmail[invitation.email.lowercased()])
                if current.invitations[invitation.ticket] != record { events.append(.invitationSet(record)) }
            }
        }
        return events
    }

    /// Cross-references that decoding cannot check.
    private func validate(_ desired: TenantConfiguration) throws(TenantFileError) {
        let connectionNames = Set(desired.connections.map(\.name))
        let userIDs = Set(desired.connections.flatMap { $0.users.map(\.userID) })
        let clientIDs = Set(desired.clients.map(\.clientID))
        func fail(_ reason: String) -> TenantFileError { .invalid(reason) }
        guard !desired.tenant.issuer.isEmpty else { throw fail("tenant.issuer is empty") }
        for (name, days) in [("personal_data_days", desired.retention?.personalDataDays), ("events_days", desired.retention?.eventsDays)] {
            if let days, !(1...36_500).contains(days) { throw fail("retention.\(name) must be from 1 to 36500 days") }
        }
        guard desired.tenant.issuer.hasSuffix("/") else {
            throw fail("tenant.issuer must end with / (endpoints are resolved against it), e.g. \(desired.tenant.issuer)/")
        }
        // Each id once: a repeated one would flip between its two definitions on every apply.
        func unique(_ ids: [String], _ what: String) throws(TenantFileError) {
            var seen: Set<String> = []
            for id in ids where !seen.insert(id).inserted { throw fail("\(what) '\(id)' is defined more than once") }
        }
        try unique(desired.apis.map(\.identifier), "api")
        try unique(desired.clients.map(\.clientID), "client")
        try unique(desired.connections.map(\.name), "connection")
        try unique(desired.connections.flatMap { $0.users.map(\.userID) }, "user")
        try unique(desired.organizations.map(\.id), "organization")
        try unique(desired.organizations.map(\.name), "organization name")
        try unique(desired.organizations.flatMap { $0.invitations.map(\.ticket) }, "invitation")
        for (index, client) in desired.clients.enumerated() {
            for name in client.connections where !connectionNames.contains(name) {
                throw fail("clients[\(index)] names unknown connection '\(name)'")
            }
            switch client.tokenEndpointAuthMethod {
            case .none:
                break
            case .privateKeyJWT:
                guard let keys = client.jwks?.object?["keys"], case .array(let list) = keys, !list.isEmpty,
                    list.allSatisfy({ $0.object?["kty"]?.string != nil })
                else { throw fail("clients[\(index)] uses private_key_jwt but has no jwks with keys") }
                if client.clientSecret != nil { throw fail("clients[\(index)] uses private_key_jwt and has a client_secret: give one or the other") }
            case .clientSecretBasic, .clientSecretPost:
                if client.clientSecret == nil {
                    throw fail("clients[\(index)] uses \(client.tokenEndpointAuthMethod.rawValue) but has no client_secret")
                }
            }
            for uri in client.redirectURIs where !RedirectURI.isRegistrable(uri) {
                throw fail("clients[\(index)].redirect_uris has '\(uri)', which is not an absolute URI without a fragment")
            }
            if client.profile == .fapi2 {
                guard client.tokenEndpointAuthMethod == .privateKeyJWT else {
                    throw fail("clients[\(index)] has profile fapi2, which needs token_endpoint_auth_method private_key_jwt")
                }
                guard !client.grantTypes.contains("implicit") else {
                    throw fail("clients[\(index)] has profile fapi2, which allows no implicit grant")
                }
            }
            for uri in client.allowedLogoutURLs where !RedirectURI.isRegistrable(uri) {
                throw fail("clients[\(index)].allowed_logout_urls has '\(uri)', which is not an absolute URI without a fragment")
            }
            if let uri = client.backchannelLogoutURI, !RedirectURI.isRegistrable(uri) || !(uri.hasPrefix("https://") || uri.hasPrefix("http://")) {
                throw fail("clients[\(index)].backchannel_logout_uri '\(uri)' is not an absolute http(s) URI without a fragment")
            }
        }
        for connection in desired.connections where connection.strategy != "database" {
            throw fail("connection '\(connection.name)' has strategy '\(connection.strategy)'; only 'database' is supported")
        }
        for (index, organization) in desired.organizations.enumerated() {
            for name in organization.connections where !connectionNames.contains(name) {
                throw fail("organizations[\(index)] names unknown connection '\(name)'")
            }
            for member in organization.members where !userIDs.contains(member) {
                throw fail("organizations[\(index)] names unknown member '\(member)'")
            }
            for invitation in organization.invitations {
                guard clientIDs.contains(invitation.clientID) else {
                    throw fail("invitation '\(invitation.ticket)' names unknown client '\(invitation.clientID)'")
                }
                guard LedgerTimestamp(rfc3339: invitation.expiresAt) != nil else {
                    throw fail("invitation '\(invitation.ticket)' has expires_at '\(invitation.expiresAt)', which is not RFC 3339")
                }
            }
        }
        try unique(desired.clientGrants.map { "\($0.clientID) for \($0.audience)" }, "client grant")
        for (index, grant) in desired.clientGrants.enumerated() {
            guard let client = desired.clients.first(where: { $0.clientID == grant.clientID }) else {
                throw fail("client_grants[\(index)] names unknown client '\(grant.clientID)'")
            }
            guard client.tokenEndpointAuthMethod != .none else {
                throw fail("client_grants[\(index)]: client '\(grant.clientID)' is public (token_endpoint_auth_method none) and cannot use client credentials")
            }
            guard let api = desired.apis.first(where: { $0.identifier == grant.audience }) else {
                throw fail("client_grants[\(index)] names unknown api '\(grant.audience)'")
            }
            for scope in grant.scopes where !api.scopes.contains(scope) {
                throw fail("client_grants[\(index)] grants scope '\(scope)', which api '\(grant.audience)' does not define")
            }
        }
        if let audience = desired.tenant.defaultAudience, !desired.apis.contains(where: { $0.identifier == audience }) {
            throw fail("tenant.default_audience '\(audience)' is not one of the apis")
        }
    }
}
