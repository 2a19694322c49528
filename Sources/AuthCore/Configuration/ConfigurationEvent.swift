import LedgerCore

/// A change to the tenant's configuration, as recorded in the journal. Configuration is only ever
/// changed by these events, so the configuration in force at any sequence number is the fold of the
/// configuration events before it.
public enum ConfigurationEvent: Sendable, Equatable {
    case tenantSet(TenantSettings)
    case apiSet(APIDefinition)
    case connectionSet(ConnectionRecord)
    case clientSet(RegisteredClient)
    case userSet(RegisteredUser)
    case organizationSet(OrganizationRecord)
    case memberAdded(MembershipRecord)
    case invitationSet(InvitationRecord)
    case retentionSet(RetentionSettings)
    case clientGrantSet(ClientGrantRecord)

    /// The journal event type of each case.
    public var eventType: EventType {
        switch self {
        case .tenantSet: Self.tenantSetType
        case .apiSet: Self.apiSetType
        case .connectionSet: Self.connectionSetType
        case .clientSet: Self.clientSetType
        case .userSet: Self.userSetType
        case .organizationSet: Self.organizationSetType
        case .memberAdded: Self.memberAddedType
        case .invitationSet: Self.invitationSetType
        case .retentionSet: Self.retentionSetType
        case .clientGrantSet: Self.clientGrantSetType
        }
    }

    /// What every configuration event type's name starts with.
    public static let typePrefix = "config."
    public static let tenantSetType: EventType = "config.tenant.set"
    public static let apiSetType: EventType = "config.api.set"
    public static let connectionSetType: EventType = "config.connection.set"
    public static let clientSetType: EventType = "config.client.set"
    public static let userSetType: EventType = "config.user.set"
    public static let organizationSetType: EventType = "config.organization.set"
    public static let memberAddedType: EventType = "config.organization.member.added"
    public static let invitationSetType: EventType = "config.invitation.set"
    public static let retentionSetType: EventType = "config.retention.set"
    public static let clientGrantSetType: EventType = "config.client_grant.set"

    /// The payload in `encoding` (schema version 1, or 3 for ``userSetType``), with `members` added to it
    /// (``PayloadEncoding/encode(_:adding:)``).
    public func payload(_ encoding: PayloadEncoding = .json, adding members: [(name: String, value: any Encodable)] = []) throws -> [UInt8] {
        switch self {
        case .tenantSet(let value): try encoding.encode(value, adding: members)
        case .apiSet(let value): try encoding.encode(value, adding: members)
        case .connectionSet(let value): try encoding.encode(value, adding: members)
        case .clientSet(let value): try encoding.encode(value, adding: members)
        case .userSet(let value): try encoding.encode(value, adding: members)
        case .organizationSet(let value): try encoding.encode(value, adding: members)
        case .memberAdded(let value): try encoding.encode(value, adding: members)
        case .invitationSet(let value): try encoding.encode(value, adding: members)
        case .retentionSet(let value): try encoding.encode(value, adding: members)
        case .clientGrantSet(let value): try encoding.encode(value, adding: members)
        }
    }

    /// Decodes a journal event; `nil` when `type` is not a configuration event.
    public init?(type: EventType, payload: [UInt8]) throws {
        switch type {
        case Self.tenantSetType: self = .tenantSet(try PayloadCoding.decode(TenantSettings.self, from: payload))
        case Self.apiSetType: self = .apiSet(try PayloadCoding.decode(APIDefinition.self, from: payload))
        case Self.connectionSetType: self = .connectionSet(try PayloadCoding.decode(ConnectionRecord.self, from: payload))
        case Self.clientSetType: self = .clientSet(try PayloadCoding.decode(RegisteredClient.self, from: payload))
        case Self.userSetType: self = .userSet(try PayloadCoding.decode(RegisteredUser.self, from: payload))
        case Self.organizationSetType: self = .organizationSet(try PayloadCoding.decode(OrganizationRecord.self, from: payload))
        case Self.memberAddedType: self = .memberAdded(try PayloadCoding.decode(MembershipRecord.self, from: payload))
        case Self.invitationSetType: self = .invitationSet(try PayloadCoding.decode(InvitationRecord.self, from: payload))
        case Self.retentionSetType: self = .retentionSet(try PayloadCoding.decode(RetentionSettings.self, from: payload))
        case Self.clientGrantSetType: self = .clientGrantSet(try PayloadCoding.decode(ClientGrantRecord.self, from: payload))
        default: return nil
        }
    }
}
