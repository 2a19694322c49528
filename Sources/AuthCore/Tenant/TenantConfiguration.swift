import LedgerCore

/// A tenant file: the desired configuration of clients, APIs, connections, users and organizations
/// (schema in SPEC.md). Secrets appear here in plain text; they are hashed before they reach an event.
public struct TenantConfiguration: Codable, Sendable, Equatable {
    public var tenant: TenantSettings
    public var apis: [APIDefinition]
    public var clients: [ClientDefinition]
    public var connections: [ConnectionDefinition]
    public var organizations: [OrganizationDefinition]
    /// How long personal data is kept (optional).
    public var retention: RetentionSettings?
    /// Which APIs and scopes clients may get with the client credentials grant.
    public var clientGrants: [ClientGrantDefinition]

    public init(
        tenant: TenantSettings, apis: [APIDefinition] = [], clients: [ClientDefinition] = [],
        connections: [ConnectionDefinition] = [], organizations: [OrganizationDefinition] = [], retention: RetentionSettings? = nil,
        clientGrants: [ClientGrantDefinition] = []
    ) {
        self.clientGrants = clientGrants
        self.tenant = tenant
        self.apis = apis
        self.clients = clients
        self.connections = connections
        self.organizations = organizations
        self.retention = retention
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case tenant, apis, clients, connections, organizations, retention
        case clientGrants = "client_grants"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        tenant = try container.decode(TenantSettings.self, forKey: .tenant)
        apis = try container.decodeIfPresent([APIDefinition].self, forKey: .apis) ?? []
        clients = try container.decodeIfPresent([ClientDefinition].self, forKey: .clients) ?? []
        connections = try container.decodeIfPresent([ConnectionDefinition].self, forKey: .connections) ?? []
        organizations = try container.decodeIfPresent([OrganizationDefinition].self, forKey: .organizations) ?? []
        retention = try container.decodeIfPresent(RetentionSettings.self, forKey: .retention)
        clientGrants = try container.decodeIfPresent([ClientGrantDefinition].self, forKey: .clientGrants) ?? []
    }
}

/// A client's grant to an API for the client credentials grant (Auth0's client grants): the scopes it
/// may get in tokens for that audience.
public struct ClientGrantDefinition: Codable, Sendable, Equatable, Hashable {
    public var clientID: String
    public var audience: String
    public var scopes: [String]

    public init(clientID: String, audience: String, scopes: [String]) {
        self.clientID = clientID
        self.audience = audience
        self.scopes = scopes
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case clientID = "client_id", audience, scopes
    }
}

/// Tenant-wide settings.
public struct TenantSettings: Codable, Sendable, Equatable {
    /// The issuer identifier (`iss`), e.g. `http://127.0.0.1:8080/`.
    public var issuer: String
    /// `audience` (default) or `compatibility` (which also accepts the RFC 8707 `resource` parameter).
    public var resourceParameterProfile: ResourceParameterProfile
    /// Audience used when a request names none.
    public var defaultAudience: String?
    /// Authorization code lifetime.
    public var codeTTLSeconds: Int
    /// SSO session lifetime.
    public var sessionTTLSeconds: Int
    /// Whether public clients may use the `plain` PKCE method (RFC 7636 allows it; RFC 9700 advises S256).
    public var allowPlainPKCE: Bool

    public enum ResourceParameterProfile: String, Codable, Sendable {
        case audience, compatibility
    }

    public init(
        issuer: String, resourceParameterProfile: ResourceParameterProfile = .audience, defaultAudience: String? = nil,
        codeTTLSeconds: Int = 60, sessionTTLSeconds: Int = 86_400, allowPlainPKCE: Bool = false
    ) {
        self.issuer = issuer
        self.resourceParameterProfile = resourceParameterProfile
        self.defaultAudience = defaultAudience
        self.codeTTLSeconds = codeTTLSeconds
        self.sessionTTLSeconds = sessionTTLSeconds
        self.allowPlainPKCE = allowPlainPKCE
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case issuer
        case resourceParameterProfile = "resource_parameter_profile"
        case defaultAudience = "default_audience"
        case codeTTLSeconds = "code_ttl_seconds"
        case sessionTTLSeconds = "session_ttl_seconds"
        case allowPlainPKCE = "allow_plain_pkce"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        issuer = try container.decode(String.self, forKey: .issuer)
        resourceParameterProfile = try container.decodeIfPresent(ResourceParameterProfile.self, forKey: .resourceParameterProfile) ?? .audience
        defaultAudience = try container.decodeIfPresent(String.self, forKey: .defaultAudience)
        codeTTLSeconds = try container.decodeIfPresent(Int.self, forKey: .codeTTLSeconds) ?? 60
        sessionTTLSeconds = try container.decodeIfPresent(Int.self, forKey: .sessionTTLSeconds) ?? 86_400
        allowPlainPKCE = try container.decodeIfPresent(Bool.self, forKey: .allowPlainPKCE) ?? false
    }
}

/// A protected API (resource server), identified by its audience.
public struct APIDefinition: Codable, Sendable, Equatable {
    public var identifier: String
    public var name: String
    public var scopes: [String]
    /// What each scope lets a client do, shown on the consent page (tenant file: `{value, description}`
    /// entries in `scopes`, as in Auth0).
    public var scopeDescriptions: [String: String]
    public var allowOfflineAccess: Bool
    public var skipConsentForFirstParty: Bool
    public var tokenTTLSeconds: Int
    public var signingAlgorithm: String

    public init(
        identifier: String, name: String, scopes: [String], allowOfflineAccess: Bool = false,
        skipConsentForFirstParty: Bool = true, tokenTTLSeconds: Int = 86_400, signingAlgorithm: String = "RS256",
        scopeDescriptions: [String: String] = [:]
    ) {
        self.identifier = identifier
        self.name = name
        self.scopes = scopes
        self.scopeDescriptions = scopeDescriptions
        self.allowOfflineAccess = allowOfflineAccess
        self.skipConsentForFirstParty = skipConsentForFirstParty
        self.tokenTTLSeconds = tokenTTLSeconds
        self.signingAlgorithm = signingAlgorithm
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case identifier, name, scopes
        case scopeDescriptions = "scope_descriptions"
        case allowOfflineAccess = "allow_offline_access"
        case skipConsentForFirstParty = "skip_consent_for_first_party"
        case tokenTTLSeconds = "token_ttl_seconds"
        case signingAlgorithm = "signing_alg"
    }

    /// A `scopes` entry: a name, or (tenant file) `{value, description}`.
    enum ScopeEntry: Decodable {
        case name(String)
        case described(value: String, description: String?)

        enum Keys: String, CodingKey { case value, description }

        init(from decoder: any Decoder) throws {
            if let name = try? decoder.singleValueContainer().decode(String.self) {
                self = .name(name)
                return
            }
            let container = try decoder.container(keyedBy: Keys.self)
            let extra = Set(try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)).subtracting(["value", "description"])
            guard extra.isEmpty else {
                throw DecodingError.dataCorruptedError(
                    forKey: .value, in: container, debugDescription: "a scope entry has only value and description, not \(extra.sorted().joined(separator: ", "))")
            }
            self = .described(value: try container.decode(String.self, forKey: .value), description: try container.decodeIfPresent(String.self, forKey: .description))
        }

        struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        identifier = try container.decode(String.self, forKey: .identifier)
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? identifier
        var scopes: [String] = []
        var descriptions = try container.decodeIfPresent([String: String].self, forKey: .scopeDescriptions) ?? [:]
        for entry in try container.decodeIfPresent([ScopeEntry].self, forKey: .scopes) ?? [] {
            switch entry {
            case .name(let name): scopes.append(name)
            case .described(let value, let description):
                scopes.append(value)
                if let description { descriptions[value] = description }
            }
        }
        self.scopes = scopes
        scopeDescriptions = descriptions
        allowOfflineAccess = try container.decodeIfPresent(Bool.self, forKey: .allowOfflineAccess) ?? false
        skipConsentForFirstParty = try container.decodeIfPresent(Bool.self, forKey: .skipConsentForFirstParty) ?? true
        tokenTTLSeconds = try container.decodeIfPresent(Int.self, forKey: .tokenTTLSeconds) ?? 86_400
        signingAlgorithm = try container.decodeIfPresent(String.self, forKey: .signingAlgorithm) ?? "RS256"
    }

    /// Recorded with `scopes` as names and the descriptions apart (absent when there are none, as before they existed).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(identifier, forKey: .identifier)
        try container.encode(name, forKey: .name)
        try container.encode(scopes, forKey: .scopes)
        if !scopeDescriptions.isEmpty { try container.encode(scopeDescriptions, forKey: .scopeDescriptions) }
        try container.encode(allowOfflineAccess, forKey: .allowOfflineAccess)
        try container.encode(skipConsentForFirstParty, forKey: .skipConsentForFirstParty)
        try container.encode(tokenTTLSeconds, forKey: .tokenTTLSeconds)
        try container.encode(signingAlgorithm, forKey: .signingAlgorithm)
    }

    /// What a scope lets the client do, in words: the API's description, the standard one of an OpenID scope,
    /// or `nil` (the page shows the name alone).
    public func describe(_ scope: String) -> String? {
        scopeDescriptions[scope] ?? StandardClaims.scopeDescriptions[scope]
    }
}

/// An application.
public struct ClientDefinition: Codable, Sendable, Equatable {
    public enum AppType: String, Codable, Sendable {
        case spa, native, regularWeb = "regular_web", nonInteractive = "non_interactive"
    }

    public enum AuthMethod: String, Codable, Sendable {
        case clientSecretBasic = "client_secret_basic", clientSecretPost = "client_secret_post", none
        /// RFC 7523 / OIDC Core §9: a JWT assertion signed by a key of the client's `jwks`.
        case privateKeyJWT = "private_key_jwt"
    }

    public enum OrganizationUsage: String, Codable, Sendable {
        case deny, allow, require
    }

    /// A security profile whose rules the server enforces for the client.
    public enum Profile: String, Codable, Sendable {
        /// FAPI 2.0 Security Profile: pushed requests only, PKCE with S256, the code flow only, `private_key_jwt`,
        /// DPoP-bound tokens, assertions addressed to the issuer.
        case fapi2
    }

    public var clientID: String
    public var name: String
    public var appType: AppType
    /// Plain text in the file; never stored or logged.
    public var clientSecret: String?
    public var tokenEndpointAuthMethod: AuthMethod
    public var redirectURIs: [String]
    public var grantTypes: [String]
    public var firstParty: Bool
    public var connections: [String]
    public var organizationUsage: OrganizationUsage
    /// The client's public keys (RFC 7591 `jwks`), for `private_key_jwt`: a JSON object with `keys`.
    public var jwks: JSONValue?
    /// RFC 9126 §6: authorization requests only by reference to a pushed request.
    public var requirePushedAuthorizationRequests: Bool
    /// Where RP-Initiated Logout may send the browser afterwards (`post_logout_redirect_uri`, matched exactly).
    public var allowedLogoutURLs: [String]
    /// OIDC Back-Channel Logout: where a logout token is POSTed when a session the client took part in ends.
    public var backchannelLogoutURI: String?
    public var profile: Profile?

    public init(
        clientID: String, name: String, appType: AppType, clientSecret: String? = nil,
        tokenEndpointAuthMethod: AuthMethod, redirectURIs: [String], grantTypes: [String] = ["authorization_code"],
        firstParty: Bool = false, connections: [String], organizationUsage: OrganizationUsage = .deny, jwks: JSONValue? = nil,
        requirePushedAuthorizationRequests: Bool = false
    ) {
        self.jwks = jwks
        self.requirePushedAuthorizationRequests = requirePushedAuthorizationRequests
        self.allowedLogoutURLs = []
        self.backchannelLogoutURI = nil
        self.profile = nil
        self.clientID = clientID
        self.name = name
        self.appType = appType
        self.clientSecret = clientSecret
        self.tokenEndpointAuthMethod = tokenEndpointAuthMethod
        self.redirectURIs = redirectURIs
        self.grantTypes = grantTypes
        self.firstParty = firstParty
        self.connections = connections
        self.organizationUsage = organizationUsage
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case clientID = "client_id", name
        case appType = "app_type"
        case clientSecret = "client_secret"
        case tokenEndpointAuthMethod = "token_endpoint_auth_method"
        case redirectURIs = "redirect_uris"
        case grantTypes = "grant_types"
        case firstParty = "first_party"
        case connections
        case organizationUsage = "organization_usage"
        case jwks
        case requirePushedAuthorizationRequests = "require_pushed_authorization_requests"
        case allowedLogoutURLs = "allowed_logout_urls"
        case backchannelLogoutURI = "backchannel_logout_uri"
        case profile
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        jwks = try container.decodeIfPresent(JSONValue.self, forKey: .jwks)
        requirePushedAuthorizationRequests = try container.decodeIfPresent(Bool.self, forKey: .requirePushedAuthorizationRequests) ?? false
        allowedLogoutURLs = try container.decodeIfPresent([String].self, forKey: .allowedLogoutURLs) ?? []
        backchannelLogoutURI = try container.decodeIfPresent(String.self, forKey: .backchannelLogoutURI)
        profile = try container.decodeIfPresent(Profile.self, forKey: .profile)
        clientID = try container.decode(String.self, forKey: .clientID)
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? clientID
        appType = try container.decodeIfPresent(AppType.self, forKey: .appType) ?? .regularWeb
        clientSecret = try container.decodeIfPresent(String.self, forKey: .clientSecret)
        let isPublic = appType == .spa || appType == .native
        tokenEndpointAuthMethod =
            try container.decodeIfPresent(AuthMethod.self, forKey: .tokenEndpointAuthMethod)
            ?? (isPublic ? .none : .clientSecretBasic)
        redirectURIs = try container.decodeIfPresent([String].self, forKey: .redirectURIs) ?? []
        grantTypes = try container.decodeIfPresent([String].self, forKey: .grantTypes) ?? ["authorization_code"]
        firstParty = try container.decodeIfPresent(Bool.self, forKey: .firstParty) ?? false
        connections = try container.decodeIfPresent([String].self, forKey: .connections) ?? []
        organizationUsage = try container.decodeIfPresent(OrganizationUsage.self, forKey: .organizationUsage) ?? .deny
    }
}

/// A connection: where users log in. Only `database` connections exist here.
public struct ConnectionDefinition: Codable, Sendable, Equatable {
    public var name: String
    public var strategy: String
    public var users: [UserDefinition]

    public init(name: String, strategy: String = "database", users: [UserDefinition] = []) {
        self.name = name
        self.strategy = strategy
        self.users = users
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, strategy, users
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        strategy = try container.decodeIfPresent(String.self, forKey: .strategy) ?? "database"
        users = try container.decodeIfPresent([UserDefinition].self, forKey: .users) ?? []
    }
}

/// A user of a database connection, with optional OIDC claims (OIDC Core §5.1).
public struct UserDefinition: Codable, Sendable, Equatable {
    public var userID: String
    public var email: String
    /// Plain text in the file; stored only as an Argon2id hash.
    public var password: String
    public var emailVerified: Bool
    /// String claims by name (``StandardClaims/profileClaims`` and `phone_number`).
    public var claims: [String: String]
    public var phoneNumberVerified: Bool
    public var address: AddressDefinition?

    public init(
        userID: String, email: String, password: String, emailVerified: Bool = false, claims: [String: String] = [:],
        phoneNumberVerified: Bool = false, address: AddressDefinition? = nil
    ) {
        self.userID = userID
        self.email = email
        self.password = password
        self.emailVerified = emailVerified
        self.claims = claims
        self.phoneNumberVerified = phoneNumberVerified
        self.address = address
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case userID = "user_id", email, password
        case emailVerified = "email_verified"
        case name, familyName = "family_name", givenName = "given_name", middleName = "middle_name", nickname
        case preferredUsername = "preferred_username", profile, picture, website, gender, birthdate, zoneinfo, locale
        case phoneNumber = "phone_number", phoneNumberVerified = "phone_number_verified", address

        /// The keys that hold a string claim of the same name.
        static let stringClaims: [CodingKeys] = [
            .name, .familyName, .givenName, .middleName, .nickname, .preferredUsername, .profile, .picture, .website, .gender, .birthdate,
            .zoneinfo, .locale, .phoneNumber,
        ]
    }

    /// The longest `user_id`, in UTF-8 bytes: it becomes part of projection keys, which LMDB limits.
    public static let maximumUserIDBytes = 200

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        userID = try container.decode(String.self, forKey: .userID)
        email = try container.decode(String.self, forKey: .email)
        password = try container.decode(String.self, forKey: .password)
        emailVerified = try container.decodeIfPresent(Bool.self, forKey: .emailVerified) ?? false
        phoneNumberVerified = try container.decodeIfPresent(Bool.self, forKey: .phoneNumberVerified) ?? false
        address = try container.decodeIfPresent(AddressDefinition.self, forKey: .address)
        var claims: [String: String] = [:]
        for key in CodingKeys.stringClaims {
            if let value = try container.decodeIfPresent(String.self, forKey: key) { claims[key.stringValue] = value }
        }
        self.claims = claims
        // Ids are keys (throttle, consent, index): no control characters, which separate key parts.
        guard (1...Self.maximumUserIDBytes).contains(userID.utf8.count),
            !userID.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw DecodingError.dataCorruptedError(
                forKey: .userID, in: container,
                debugDescription: "a user_id must be 1 to \(Self.maximumUserIDBytes) bytes with no control characters")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(userID, forKey: .userID)
        try container.encode(email, forKey: .email)
        try container.encode(password, forKey: .password)
        if emailVerified { try container.encode(true, forKey: .emailVerified) }
        if phoneNumberVerified { try container.encode(true, forKey: .phoneNumberVerified) }
        try container.encodeIfPresent(address, forKey: .address)
        for key in CodingKeys.stringClaims {
            try container.encodeIfPresent(claims[key.stringValue], forKey: key)
        }
    }

    /// The personal claims as the user record holds them: in clear here, sealed once recorded.
    public var profile: [String: PersonalText] {
        var profile = claims.mapValues(PersonalText.clear)
        if let address, let text = address.jsonText { profile["address"] = .clear(text) }
        return profile
    }
}

/// A postal address claim (OIDC Core §5.1.1).
public struct AddressDefinition: Codable, Sendable, Equatable {
    public var formatted: String?
    public var streetAddress: String?
    public var locality: String?
    public var region: String?
    public var postalCode: String?
    public var country: String?

    public init(
        formatted: String? = nil, streetAddress: String? = nil, locality: String? = nil, region: String? = nil, postalCode: String? = nil,
        country: String? = nil
    ) {
        self.formatted = formatted
        self.streetAddress = streetAddress
        self.locality = locality
        self.region = region
        self.postalCode = postalCode
        self.country = country
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case formatted, locality, region, country
        case streetAddress = "street_address", postalCode = "postal_code"
    }

    /// The claim as JSON text, members sorted (what the user record seals).
    var jsonText: String? {
        (try? PayloadCoding.encode(self)).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// An organization and its members and invitations.
public struct OrganizationDefinition: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var connections: [String]
    public var members: [String]
    public var invitations: [InvitationDefinition]

    public init(id: String, name: String, connections: [String] = [], members: [String] = [], invitations: [InvitationDefinition] = []) {
        self.id = id
        self.name = name
        self.connections = connections
        self.members = members
        self.invitations = invitations
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, name, connections, members, invitations
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? id
        connections = try container.decodeIfPresent([String].self, forKey: .connections) ?? []
        members = try container.decodeIfPresent([String].self, forKey: .members) ?? []
        invitations = try container.decodeIfPresent([InvitationDefinition].self, forKey: .invitations) ?? []
    }
}

/// An invitation to join an organization.
public struct InvitationDefinition: Codable, Sendable, Equatable {
    public var ticket: String
    public var email: String
    public var clientID: String
    /// RFC 3339.
    public var expiresAt: String

    public init(ticket: String, email: String, clientID: String, expiresAt: String) {
        self.ticket = ticket
        self.email = email
        self.clientID = clientID
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case ticket, email
        case clientID = "client_id"
        case expiresAt = "expires_at"
    }
}
