import LedgerCore

/// The tenant configuration in force: the fold of every configuration event so far.
///
/// Pure and value-typed: the server keeps the current one in memory, and replay rebuilds the one in
/// force at any moment by folding the events before it.
public struct ConfigurationState: Sendable, Equatable, Codable {
    public var settings: TenantSettings?
    public var apis: [String: APIDefinition] = [:]
    public var connections: [String: ConnectionRecord] = [:]
    public var clients: [String: RegisteredClient] = [:]
    public var users: [String: RegisteredUser] = [:]
    public var organizations: [String: OrganizationRecord] = [:]
    /// Organization id → member user ids.
    public var members: [String: Set<String>] = [:]
    public var invitations: [String: InvitationRecord] = [:]
    /// Invitation tickets already used.
    public var spentInvitations: Set<String> = []
    /// Sequence number of the last configuration event folded in (0: none).
    public var version: UInt64 = 0
    /// How long personal data is kept (`nil`: no period set).
    public var retention: RetentionSettings?
    /// Client grants for the client credentials grant, by ``ClientGrantRecord/key``.
    public var clientGrants: [String: ClientGrantRecord] = [:]

    public init() {}

    enum CodingKeys: String, CodingKey {
        case settings, apis, connections, clients, users, organizations, members, invitations
        case spentInvitations = "spent_invitations"
        case version, retention
        case clientGrants = "client_grants"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        settings = try container.decodeIfPresent(TenantSettings.self, forKey: .settings)
        apis = try container.decode([String: APIDefinition].self, forKey: .apis)
        connections = try container.decode([String: ConnectionRecord].self, forKey: .connections)
        clients = try container.decode([String: RegisteredClient].self, forKey: .clients)
        users = try container.decode([String: RegisteredUser].self, forKey: .users)
        organizations = try container.decode([String: OrganizationRecord].self, forKey: .organizations)
        members = try container.decode([String: [String]].self, forKey: .members).mapValues(Set.init)
        invitations = try container.decode([String: InvitationRecord].self, forKey: .invitations)
        spentInvitations = Set(try container.decode([String].self, forKey: .spentInvitations))
        retention = try container.decodeIfPresent(RetentionSettings.self, forKey: .retention)
        clientGrants = try container.decodeIfPresent([String: ClientGrantRecord].self, forKey: .clientGrants) ?? [:]
        version = try container.decode(UInt64.self, forKey: .version)
    }

    /// Sets are written sorted, so equal states always encode to the same bytes (projections are compared
    /// byte for byte when they are rebuilt).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(settings, forKey: .settings)
        try container.encode(apis, forKey: .apis)
        try container.encode(connections, forKey: .connections)
        try container.encode(clients, forKey: .clients)
        try container.encode(users, forKey: .users)
        try container.encode(organizations, forKey: .organizations)
        try container.encode(members.mapValues { $0.sorted() }, forKey: .members)
        try container.encode(invitations, forKey: .invitations)
        try container.encode(spentInvitations.sorted(), forKey: .spentInvitations)
        try container.encode(version, forKey: .version)
        try container.encodeIfPresent(retention, forKey: .retention)  // absent in journals from before retention
        if !clientGrants.isEmpty { try container.encode(clientGrants, forKey: .clientGrants) }  // likewise
    }

    /// Folds one configuration event, recorded at `sequence`.
    public mutating func apply(_ event: ConfigurationEvent, at sequence: UInt64) {
        switch event {
        case .tenantSet(let settings): self.settings = settings
        case .retentionSet(let retention): self.retention = retention
        case .apiSet(let api): apis[api.identifier] = api
        case .connectionSet(let connection): connections[connection.name] = connection
        case .clientSet(let client): clients[client.clientID] = client
        case .userSet(let user): users[user.userID] = user
        case .organizationSet(let organization): organizations[organization.id] = organization
        case .memberAdded(let membership): members[membership.organizationID, default: []].insert(membership.userID)
        case .invitationSet(let invitation): invitations[invitation.ticket] = invitation
        case .clientGrantSet(let grant): clientGrants[grant.key] = grant
        }
        version = max(version, sequence)
    }

    /// Marks an invitation as used and its invitee as a member (`auth.invitation.accepted`).
    public mutating func acceptInvitation(ticket: String, userID: String, at sequence: UInt64) {
        spentInvitations.insert(ticket)
        if let invitation = invitations[ticket] {
            members[invitation.organizationID, default: []].insert(userID)
        }
        version = max(version, sequence)
    }

    /// The user of `connection` whose email (case-insensitively) or user id is `username`. Emails are
    /// compared only as known in clear: an erased or unopened one matches nothing.
    public func user(named username: String, in connection: String) -> RegisteredUser? {
        let wanted = PersonalText.clear(username)
        return users.values.first {
            $0.connection == connection && ($0.email.matchesIgnoringCase(wanted) || $0.userID == username)
        }
    }

    /// The organization with this id, or else with this name.
    public func organization(idOrName: String) -> OrganizationRecord? {
        organizations[idOrName] ?? organizations.values.filter { $0.name == idOrName }.min { $0.id < $1.id }
    }
}
