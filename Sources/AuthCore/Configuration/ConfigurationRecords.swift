import LedgerCore
/// A registered client as the server knows it: its definition, with the secret replaced by its hash.
public struct RegisteredClient: Codable, Sendable, Equatable {
    public var clientID: String
    public var name: String
    public var appType: ClientDefinition.AppType
    /// Argon2id hash of the client secret; `nil` for public clients.
    public var secretHash: String?
    public var tokenEndpointAuthMethod: ClientDefinition.AuthMethod
    public var redirectURIs: [String]
    public var grantTypes: [String]
    public var firstParty: Bool
    public var connections: [String]
    public var organizationUsage: ClientDefinition.OrganizationUsage
    /// The client's public keys, for `private_key_jwt` (absent from clients recorded without).
    public var jwks: JSONValue?
    /// RFC 9126 §6 (absent: `false`).
    public var requirePushedAuthorizationRequests: Bool?
    /// `post_logout_redirect_uri` values (absent: none).
    public var allowedLogoutURLs: [String]?
    /// Where back-channel logout tokens go (absent: none).
    public var backchannelLogoutURI: String?
    /// The security profile enforced for the client (absent: none).
    public var profile: ClientDefinition.Profile?

    enum CodingKeys: String, CodingKey {
        case profile
        case allowedLogoutURLs = "allowed_logout_urls"
        case backchannelLogoutURI = "backchannel_logout_uri"
        case jwks
        case requirePushedAuthorizationRequests = "require_pushed_authorization_requests"
        case clientID = "client_id", name
        case appType = "app_type"
        case secretHash = "secret_hash"
        case tokenEndpointAuthMethod = "token_endpoint_auth_method"
        case redirectURIs = "redirect_uris"
        case grantTypes = "grant_types"
        case firstParty = "first_party"
        case connections
        case organizationUsage = "organization_usage"
    }

    public init(_ definition: ClientDefinition, secretHash: String?) {
        clientID = definition.clientID
        name = definition.name
        appType = definition.appType
        self.secretHash = secretHash
        tokenEndpointAuthMethod = definition.tokenEndpointAuthMethod
        redirectURIs = definition.redirectURIs
        grantTypes = definition.grantTypes
        firstParty = definition.firstParty
        connections = definition.connections
        organizationUsage = definition.organizationUsage
        jwks = definition.jwks
        requirePushedAuthorizationRequests = definition.requirePushedAuthorizationRequests ? true : nil
        allowedLogoutURLs = definition.allowedLogoutURLs.isEmpty ? nil : definition.allowedLogoutURLs
        backchannelLogoutURI = definition.backchannelLogoutURI
        profile = definition.profile
    }

    /// Whether authorization requests must come pushed (RFC 9126 §6; FAPI 2.0 §5.3.1.2).
    public var requiresPushedRequests: Bool { (requirePushedAuthorizationRequests ?? false) || isFAPI2 }

    /// Whether the FAPI 2.0 Security Profile's rules apply to the client.
    public var isFAPI2: Bool { profile == .fapi2 }

    /// Public clients (SPAs, native apps, and any client without authentication) must use PKCE.
    /// A client authenticating with `private_key_jwt` is confidential.
    public var isPublic: Bool {
        appType == .spa || appType == .native || tokenEndpointAuthMethod == .none
    }

    /// Whether `response_type` values other than `code` are allowed.
    public var allowsImplicit: Bool { grantTypes.contains("implicit") }
}

/// A connection as configured.
public struct ConnectionRecord: Codable, Sendable, Equatable {
    public var name: String
    public var strategy: String
}

/// A user of a database connection.
public struct RegisteredUser: Codable, Sendable, Equatable {
    public var userID: String
    /// Sealed in the journal and its projections; opened by whoever holds the data key.
    public var email: PersonalText
    public var connection: String
    /// Argon2id hash of the password.
    public var passwordHash: String
    /// The user's other OIDC claims (``StandardClaims/personalClaims``) by name — each sealed like the
    /// email address; `address` as its JSON object's text.
    public var profile: [String: PersonalText]
    public var emailVerified: Bool
    public var phoneNumberVerified: Bool

    enum CodingKeys: String, CodingKey {
        case userID = "user_id", email, connection
        case passwordHash = "password_hash"
        case profile = "claims"
        case emailVerified = "email_verified"
        case phoneNumberVerified = "phone_number_verified"
    }

    public init(
        userID: String, email: PersonalText, connection: String, passwordHash: String, profile: [String: PersonalText] = [:],
        emailVerified: Bool = false, phoneNumberVerified: Bool = false
    ) {
        self.userID = userID
        self.email = email
        self.connection = connection
        self.passwordHash = passwordHash
        self.profile = profile
        self.emailVerified = emailVerified
        self.phoneNumberVerified = phoneNumberVerified
    }

    /// Reads `config.user.set` of every schema version (claims and the verified flags came with version 3).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        userID = try container.decode(String.self, forKey: .userID)
        email = try container.decode(PersonalText.self, forKey: .email)
        connection = try container.decode(String.self, forKey: .connection)
        passwordHash = try container.decode(String.self, forKey: .passwordHash)
        profile = try container.decodeIfPresent([String: PersonalText].self, forKey: .profile) ?? [:]
        emailVerified = try container.decodeIfPresent(Bool.self, forKey: .emailVerified) ?? false
        phoneNumberVerified = try container.decodeIfPresent(Bool.self, forKey: .phoneNumberVerified) ?? false
    }

    /// Leaves out what is empty or false, so a user without claims is recorded as before they existed.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(userID, forKey: .userID)
        try container.encode(email, forKey: .email)
        try container.encode(connection, forKey: .connection)
        try container.encode(passwordHash, forKey: .passwordHash)
        if !profile.isEmpty { try container.encode(profile, forKey: .profile) }
        if emailVerified { try container.encode(true, forKey: .emailVerified) }
        if phoneNumberVerified { try container.encode(true, forKey: .phoneNumberVerified) }
    }
}

/// An organization as configured (members are added by separate events).
public struct OrganizationRecord: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var connections: [String]
}

/// An invitation to an organization.
public struct InvitationRecord: Codable, Sendable, Equatable {
    public var ticket: String
    public var organizationID: String
    /// Sealed in the journal and its projections; opened by whoever holds the data key.
    public var email: PersonalText
    public var clientID: String
    public var expiresAt: LedgerTimestampText
    /// The user whose email address the invitation names, when the tenant has one: the data subject of
    /// the address, so that erasing the user erases it here too (`nil`: the anonymous subject of the day).
    public var userID: String?

    enum CodingKeys: String, CodingKey {
        case ticket, email
        case userID = "user_id"
        case organizationID = "organization_id"
        case clientID = "client_id"
        case expiresAt = "expires_at"
    }
}

/// An RFC 3339 time kept as text in payloads (so the payload shows exactly what was configured).
public typealias LedgerTimestampText = String

/// `config.organization.member.added` and the membership that `auth.invitation.accepted` grants.
public struct MembershipRecord: Codable, Sendable, Equatable {
    public var organizationID: String
    public var userID: String

    enum CodingKeys: String, CodingKey {
        case organizationID = "organization_id"
        case userID = "user_id"
    }

    public init(organizationID: String, userID: String) {
        self.organizationID = organizationID
        self.userID = userID
    }
}

/// `config.client_grant.set` records a ``ClientGrantDefinition`` as the tenant file gives it.
public typealias ClientGrantRecord = ClientGrantDefinition

extension ClientGrantDefinition {
    /// Its key in ``ConfigurationState/clientGrants``.
    public var key: String { Self.key(clientID: clientID, audience: audience) }

    public static func key(clientID: String, audience: String) -> String { clientID + "\u{1F}" + audience }
}
