/// The built-in demo tenant, applied when the server starts on an empty journal without `--tenant`,
/// so that a newcomer can try the flow in a browser at once (README walk-through).
public enum DemoTenant {
    public static let clientID = "demo-app"
    public static let clientSecret = "demo-secret"
    public static let username = "demo@example.com"
    public static let password = "correct horse battery staple"
    public static let audience = "https://api.example.com"

    /// The demo tenant for a server reachable at `issuer` (ending in `/`).
    public static func configuration(issuer: String) -> TenantConfiguration {
        TenantConfiguration(
            tenant: TenantSettings(issuer: issuer),
            apis: [
                APIDefinition(
                    identifier: audience, name: "Example API", scopes: ["read:messages", "write:messages"],
                    allowOfflineAccess: true, skipConsentForFirstParty: true)
            ],
            clients: [
                ClientDefinition(
                    clientID: clientID, name: "Demo App", appType: .regularWeb, clientSecret: clientSecret,
                    tokenEndpointAuthMethod: .clientSecretPost, redirectURIs: [issuer + "callback"],
                    grantTypes: ["authorization_code", "refresh_token"], firstParty: false,
                    connections: ["Username-Password-Authentication"])
            ],
            connections: [
                ConnectionDefinition(
                    name: "Username-Password-Authentication",
                    users: [UserDefinition(userID: "auth0|demo", email: username, password: password)])
            ])
    }
}
