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

    public init() {}

    /// Folds one configuration event, recorded at `sequence`.
    public mutating func apply(_ event: ConfigurationEvent, at sequence: UInt64) {
        switch event {
        case .tenantSet(let settings): self.settings = settings
        case .apiSet(let api): apis[api.identifier] = api
        case .connectionSet(let connection): connections[connection.name] = connection
        case .clientSet(let client): clients[client.clientID] = client
        case .userSet(let user): users[user.userID] = user
        case .organizationSet(let organization): organizations[organization.id] = organization
        case .memberAdded(let membership): members[membership.organizationID, default: []].insert(membership.userID)
        case .invitationSet(let invitation): invitations[invitation.ticket] = invitation
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

    /// The user of `connection` whose email (case-insensitively) or user id is `username`.
    public func user(named username: String, in connection: String) -> RegisteredUser? {
        let wanted = username.lowercased()
        return users.values.first {
            $0.connection == connection && ($0.email.lowercased() == wanted || $0.userID == username)
        }
    }

    /// The organization with this id, or else with this name.
    public func organization(idOrName: String) -> OrganizationRecord? {
        organizations[idOrName] ?? organizations.values.first { $0.name == idOrName }
    }
}
