import Foundation
import LedgerCore
import Testing

@testable import AuthCore

@Suite("Tenant files: YAML and JSON, unknown keys named with their path, defaults")
struct TenantFileTests {
    // MARK: - The SPEC.md example

    @Test("integers: decimal, hexadecimal and octal read as numbers; base 60 and out-of-range values are refused, not a crash (tools/fuzz found the trap)")
    func integerScalars() throws {
        #expect(TenantFile.integer("3600") == 3600)
        #expect(TenantFile.integer("-1_000") == -1000)
        #expect(TenantFile.integer("0x1F") == 31)
        #expect(TenantFile.integer("0o17") == 15)
        #expect(TenantFile.integer("017") == 15, "YAML 1.1 octal, as Yams read it")
        #expect(TenantFile.integer("0") == 0)
        #expect(TenantFile.integer("1:30") == nil)
        #expect(TenantFile.integer("99999999999999999999") == nil)
        // The fuzzer's input: YAML 1.1 base 60 whose value overflows (Yams' own reading traps).
        #expect(throws: TenantFileError.self) { try TenantFile.parse(yaml: "5555500055200055:2:2:21") }
        #expect(throws: TenantFileError.self) { try TenantFile.parse(yaml: "tenant:\n  session_lifetime: 5555500055200055:2:2:21\n") }
    }

    @Test("the SPEC.md example YAML parses into exactly the expected values")
    func exampleYAMLParses() throws {
        let parsed = try TenantFile.parse(yaml: Fixtures.exampleYAML)
        #expect(parsed == Fixtures.expectedExample)
    }

    @Test("the example's values, field by field (tenant, api, client, connection, organization)")
    func exampleFields() throws {
        let parsed = try TenantFile.parse(yaml: Fixtures.exampleYAML)

        #expect(parsed.tenant.issuer == "http://127.0.0.1:8080/")
        #expect(parsed.tenant.resourceParameterProfile == .audience)
        #expect(parsed.tenant.defaultAudience == "https://api.example.com")
        #expect(parsed.tenant.codeTTLSeconds == 60)
        #expect(parsed.tenant.sessionTTLSeconds == 86_400)
        #expect(parsed.tenant.allowPlainPKCE == false)

        let api = try #require(parsed.apis.first)
        #expect(parsed.apis.count == 1)
        #expect(api.identifier == "https://api.example.com")
        #expect(api.name == "Example API")
        #expect(api.scopes == ["read:messages", "write:messages"])
        #expect(api.allowOfflineAccess == true)
        #expect(api.skipConsentForFirstParty == true)
        #expect(api.tokenTTLSeconds == 86_400)
        #expect(api.signingAlgorithm == "RS256")

        let client = try #require(parsed.clients.first)
        #expect(parsed.clients.count == 1)
        #expect(client.clientID == "web-app")
        #expect(client.name == "Example Web App")
        #expect(client.appType == .regularWeb)
        #expect(client.clientSecret == "s3cret")
        #expect(client.tokenEndpointAuthMethod == .clientSecretBasic)
        #expect(client.redirectURIs == ["http://127.0.0.1:9000/callback"])
        #expect(client.grantTypes == ["authorization_code", "refresh_token"])
        #expect(client.firstParty == false)
        #expect(client.connections == ["Username-Password-Authentication"])
        #expect(client.organizationUsage == .deny)

        let connection = try #require(parsed.connections.first)
        #expect(parsed.connections.count == 1)
        #expect(connection.name == "Username-Password-Authentication")
        #expect(connection.strategy == "database")
        #expect(connection.users == [UserDefinition(userID: "auth0|alice", email: "alice@example.com", password: "correct horse battery staple")])

        let organization = try #require(parsed.organizations.first)
        #expect(parsed.organizations.count == 1)
        #expect(organization.id == "org_acme")
        #expect(organization.name == "acme")
        #expect(organization.connections == ["Username-Password-Authentication"])
        #expect(organization.members == ["auth0|alice"])
        let invitation = try #require(organization.invitations.first)
        #expect(organization.invitations.count == 1)
        #expect(invitation.ticket == "inv_123")
        #expect(invitation.email == "bob@example.com")
        #expect(invitation.clientID == "web-app")
        // YAML would type this as a timestamp; it must stay the exact text of the file.
        #expect(invitation.expiresAt == "2030-01-01T00:00:00Z")
    }

    @Test("the same tenant written as JSON parses equal to the YAML")
    func jsonEqualsYAML() throws {
        let fromJSON = try TenantFile.parse(json: Data(Fixtures.exampleJSON.utf8))
        let fromYAML = try TenantFile.parse(yaml: Fixtures.exampleYAML)
        #expect(fromJSON == fromYAML)
        #expect(fromJSON == Fixtures.expectedExample)
    }

    @Test("load(path:) reads .yaml, .yml and .json (any case) by extension")
    func loadByExtension() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for name in ["tenant.yaml", "tenant.yml", "TENANT.YAML"] {
            let path = try directory.write(Fixtures.exampleYAML, to: name)
            #expect(try TenantFile.load(path: path) == Fixtures.expectedExample, "\(name)")
        }
        let jsonPath = try directory.write(Fixtures.exampleJSON, to: "tenant.json")
        #expect(try TenantFile.load(path: jsonPath) == Fixtures.expectedExample)
    }

    // MARK: - Unknown keys

    @Test(
        "an unknown key at any level is an error naming it with its path",
        arguments: [
            ("tenant:\n  issuer:", "tenant:\n  isuer:", "tenant.isuer"),
            ("    scopes: [read:messages", "    scope: [read:messages", "apis[0].scope"),
            ("    redirect_uris:", "    redirect_uri:", "clients[0].redirect_uri"),
            ("    strategy: database", "    strategy: database\n    kind: db", "connections[0].kind"),
            ("        password:", "        passwd:", "connections[0].users[0].passwd"),
            ("    members:", "    member:", "organizations[0].member"),
            ("        expires_at:", "        expires:", "organizations[0].invitations[0].expires"),
        ])
    func unknownKeyIsNamed(target: String, replacement: String, path: String) throws {
        let yaml = try Fixtures.mutatedYAML(replacing: target, with: replacement)
        let error = #expect(throws: TenantFileError.self) { try TenantFile.parse(yaml: yaml) }
        #expect(error == .unknownKeys([path]))
        #expect(error?.description.contains(path) == true, "the message names the key")
    }

    @Test("a user_id with a control character, empty or over 200 bytes is refused, naming the field",
          arguments: ["\"auth0|ali\\u001Fce\"", "\"\"", "\"" + String(repeating: "a", count: 201) + "\""])
    func userIDIsChecked(userID: String) throws {
        let yaml = try Fixtures.mutatedYAML(replacing: "user_id: auth0|alice", with: "user_id: \(userID)")
        let error = #expect(throws: TenantFileError.self) { try TenantFile.parse(yaml: yaml) }
        #expect(error?.description.contains("user_id") == true, "\(String(describing: error))")
    }

    @Test("an unknown top-level key is named as itself")
    func unknownTopLevelKey() throws {
        let error = #expect(throws: TenantFileError.self) { try TenantFile.parse(yaml: Fixtures.exampleYAML + "foo: 1\n") }
        #expect(error == .unknownKeys(["foo"]))
    }

    @Test("several unknown keys are all named, in a stable order (keys sorted, depth first)")
    func severalUnknownKeys() throws {
        var yaml = try Fixtures.mutatedYAML(replacing: "tenant:\n  issuer:", with: "tenant:\n  isuer:")
        yaml = yaml.replacingOccurrences(of: "    redirect_uris:", with: "    redirect_uri:")
        yaml += "foo: 1\n"
        let error = #expect(throws: TenantFileError.self) { try TenantFile.parse(yaml: yaml) }
        #expect(error == .unknownKeys(["clients[0].redirect_uri", "foo", "tenant.isuer"]))
    }

    @Test("unknown keys in a JSON tenant are named with their path too")
    func unknownKeyInJSON() throws {
        let json = Fixtures.exampleJSON.replacingOccurrences(of: "\"redirect_uris\"", with: "\"redirect_uri\"")
        let error = #expect(throws: TenantFileError.self) { try TenantFile.parse(json: Data(json.utf8)) }
        #expect(error == .unknownKeys(["clients[0].redirect_uri"]))
    }

    // MARK: - Missing keys and wrong types

    @Test("a missing required key (client_id) is an error naming the key and where it is missing")
    func missingClientID() throws {
        let yaml = try Fixtures.mutatedYAML(replacing: "  - client_id: web-app\n    name:", with: "  - name:")
        let error = #expect(throws: TenantFileError.self) { try TenantFile.parse(yaml: yaml) }
        let reason = try #require(error?.invalidReason, "expected .invalid, got \(String(describing: error))")
        #expect(reason.contains("client_id"))
        #expect(reason.contains("clients[0]"))
    }

    @Test("a missing tenant section is an error naming it")
    func missingTenant() throws {
        let error = #expect(throws: TenantFileError.self) {
            try TenantFile.parse(yaml: "apis: []\n")
        }
        let reason = try #require(error?.invalidReason)
        #expect(reason.contains("'tenant'"))
    }

    @Test(
        "a value of the wrong type is an error naming its path",
        arguments: [
            ("  code_ttl_seconds: 60", "  code_ttl_seconds: sixty", "tenant.code_ttl_seconds"),
            ("    first_party: false", "    first_party: perhaps", "clients[0].first_party"),
            ("    scopes: [read:messages, write:messages]", "    scopes: read:messages", "apis[0].scopes"),
            ("    app_type: regular_web", "    app_type: desktop", "clients[0].app_type"),
            ("  resource_parameter_profile: audience", "  resource_parameter_profile: resource", "tenant.resource_parameter_profile"),
            ("        email: alice@example.com", "        email: [alice@example.com]", "connections[0].users[0].email"),
        ])
    func wrongTypeIsNamed(target: String, replacement: String, path: String) throws {
        let yaml = try Fixtures.mutatedYAML(replacing: target, with: replacement)
        let error = #expect(throws: TenantFileError.self) { try TenantFile.parse(yaml: yaml) }
        let reason = try #require(error?.invalidReason, "expected .invalid, got \(String(describing: error))")
        #expect(reason.contains(path), "reason: \(reason)")
    }

    // MARK: - Syntax and files

    @Test("malformed YAML is a syntax error", arguments: ["tenant: {issuer: x", "tenant:\n  issuer: [a, b\n", "tenant:\n\tissuer: x\n"])
    func yamlSyntaxError(yaml: String) {
        let error = #expect(throws: TenantFileError.self) { try TenantFile.parse(yaml: yaml) }
        guard case .syntax = error else {
            Issue.record("expected .syntax, got \(String(describing: error))")
            return
        }
    }

    @Test("a YAML mapping with a duplicated key is refused, not silently merged")
    func duplicateKey() {
        let yaml = Fixtures.exampleYAML + "tenant:\n  issuer: http://other/\n"
        let error = #expect(throws: TenantFileError.self) { try TenantFile.parse(yaml: yaml) }
        guard case .syntax = error else {
            Issue.record("expected .syntax, got \(String(describing: error))")
            return
        }
    }

    // MARK: - Aliases

    /// Nine anchored lists of nine aliases of the one before: 1 kB standing for 9^9 (387 million) strings.
    static let billionLaughs: String = {
        var yaml = "tenant:\n  issuer: http://127.0.0.1:8080/\nl0: &l0 lol\n"
        for level in 1...9 {
            yaml += "l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 9).joined(separator: ", ") + "]\n"
        }
        return yaml
    }()

    @Test("a few hundred bytes of aliases of aliases (billion laughs) are refused at once, as a value and as a mapping key")
    func billionLaughsRefused() {
        let refusal = TenantFileError.invalid(
            "the file stands for more than \(TenantFile.maximumYAMLValues) values once its YAML aliases are expanded (an alias repeats all that its anchor names)")
        #expect(throws: refusal) { try TenantFile.parse(yaml: Self.billionLaughs) }
        // As a key, the expanded node is what Yams hashes to look for duplicate keys: refused before that.
        #expect(throws: refusal) { try TenantFile.parse(yaml: Self.billionLaughs + "? *l9\n: x\n") }
    }

    @Test("anchors and aliases within the limit read as what they repeat")
    func aliasesExpand() throws {
        let yaml = Fixtures.exampleYAML
            .replacingOccurrences(of: "    connections: [Username-Password-Authentication]\n    organization_usage",
                                  with: "    connections: &database [Username-Password-Authentication]\n    organization_usage")
            .replacingOccurrences(of: "    connections: [Username-Password-Authentication]\n    members",
                                  with: "    connections: *database\n    members")
        #expect(yaml.contains("*database") && yaml.contains("&database"))
        #expect(try TenantFile.parse(yaml: yaml) == Fixtures.expectedExample)
    }

    @Test("YAMLExpansion counts what aliases stand for without expanding them, and stops past its limit")
    func expansionCount() {
        #expect(YAMLExpansion.count("[a, b]", limit: 10) == .values(3))
        // mapping, key a, [1, 2] (3), key b, *x (3)
        #expect(YAMLExpansion.count("a: &x [1, 2]\nb: *x\n", limit: 10) == .values(9))
        #expect(YAMLExpansion.count("a: &x [1, 2]\nb: *x\n", limit: 8) == .overLimit)
        #expect(YAMLExpansion.count("a: *nowhere\n", limit: 10) == .values(2), "an undefined alias is the composer's error")
        #expect(YAMLExpansion.count("a: [1, 2\n", limit: 10) == .unparsable)
        #expect(YAMLExpansion.count(Self.billionLaughs, limit: 1_000_000) == .overLimit)
        #expect(YAMLExpansion.count(Fixtures.exampleYAML, limit: 1_000) != .overLimit)
    }

    @Test("an empty YAML file is a syntax error saying so")
    func emptyYAML() {
        #expect(throws: TenantFileError.syntax("the file is empty")) { try TenantFile.parse(yaml: "") }
        #expect(throws: TenantFileError.syntax("the file is empty")) { try TenantFile.parse(yaml: "# only a comment\n") }
    }

    @Test("malformed JSON is a syntax error")
    func jsonSyntaxError() {
        let error = #expect(throws: TenantFileError.self) { try TenantFile.parse(json: Data("{\"tenant\": ".utf8)) }
        guard case .syntax = error else {
            Issue.record("expected .syntax, got \(String(describing: error))")
            return
        }
    }

    @Test(
        "a YAML document that is a scalar or null, not a mapping, is refused with an error",
        arguments: ["just a string\n", "~\n", "42\n"])
    func scalarDocument(yaml: String) {
        #expect(throws: TenantFileError.self) { try TenantFile.parse(yaml: yaml) }
    }

    @Test("a file with another extension is refused as unsupported, naming the path")
    func unsupportedExtension() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for name in ["tenant.toml", "tenant.txt", "tenant"] {
            let path = try directory.write(Fixtures.exampleYAML, to: name)
            #expect(throws: TenantFileError.unsupportedExtension(path)) { try TenantFile.load(path: path) }
        }
    }

    @Test("a file that does not exist is unreadable, naming the path")
    func unreadableFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/missing.yaml"
        #expect(throws: TenantFileError.unreadable(path)) { try TenantFile.load(path: path) }
    }

    // MARK: - Defaults

    @Test(
        "token_endpoint_auth_method defaults by app_type: none for public clients, client_secret_basic otherwise",
        arguments: [
            ("spa", ClientDefinition.AppType.spa, ClientDefinition.AuthMethod.none),
            ("native", ClientDefinition.AppType.native, ClientDefinition.AuthMethod.none),
            ("regular_web", ClientDefinition.AppType.regularWeb, ClientDefinition.AuthMethod.clientSecretBasic),
            ("non_interactive", ClientDefinition.AppType.nonInteractive, ClientDefinition.AuthMethod.clientSecretBasic),
        ])
    func authMethodDefault(appType: String, expectedType: ClientDefinition.AppType, expected: ClientDefinition.AuthMethod) throws {
        let yaml = """
            tenant:
              issuer: https://auth.test/
            clients:
              - client_id: app
                app_type: \(appType)
                redirect_uris: [https://client.test/callback]

            """
        let client = try #require(try TenantFile.parse(yaml: yaml).clients.first)
        #expect(client.appType == expectedType)
        #expect(client.tokenEndpointAuthMethod == expected)
    }

    @Test("a minimal file gets the documented defaults everywhere")
    func minimalDefaults() throws {
        let yaml = """
            tenant:
              issuer: https://auth.test/
            apis:
              - identifier: https://api.test
            clients:
              - client_id: app
            connections:
              - name: db
                users:
                  - user_id: u1
                    email: u1@example.com
                    password: pw
            organizations:
              - id: org_1

            """
        let parsed = try TenantFile.parse(yaml: yaml)
        #expect(parsed.tenant == TenantSettings(issuer: "https://auth.test/"))
        #expect(parsed.tenant.resourceParameterProfile == .audience)
        #expect(parsed.tenant.defaultAudience == nil)
        #expect(parsed.tenant.codeTTLSeconds == 60)
        #expect(parsed.tenant.sessionTTLSeconds == 86_400)
        #expect(parsed.tenant.allowPlainPKCE == false)

        #expect(
            parsed.apis == [
                APIDefinition(
                    identifier: "https://api.test", name: "https://api.test", scopes: [], allowOfflineAccess: false,
                    skipConsentForFirstParty: true, tokenTTLSeconds: 86_400, signingAlgorithm: "RS256")
            ])
        #expect(
            parsed.clients == [
                ClientDefinition(
                    clientID: "app", name: "app", appType: .regularWeb, clientSecret: nil, tokenEndpointAuthMethod: .clientSecretBasic,
                    redirectURIs: [], grantTypes: ["authorization_code"], firstParty: false, connections: [], organizationUsage: .deny)
            ])
        #expect(parsed.connections == [ConnectionDefinition(name: "db", strategy: "database", users: [UserDefinition(userID: "u1", email: "u1@example.com", password: "pw")])])
        #expect(parsed.organizations == [OrganizationDefinition(id: "org_1", name: "org_1", connections: [], members: [], invitations: [])])
    }

    @Test("sections other than tenant may be left out")
    func onlyTenant() throws {
        let parsed = try TenantFile.parse(yaml: "tenant:\n  issuer: https://auth.test/\n")
        #expect(parsed == TenantConfiguration(tenant: TenantSettings(issuer: "https://auth.test/")))
    }

    @Test("an explicit token_endpoint_auth_method wins over the app_type default")
    func explicitAuthMethod() throws {
        let yaml = """
            tenant:
              issuer: https://auth.test/
            clients:
              - client_id: spa
                app_type: spa
                client_secret: x
                token_endpoint_auth_method: client_secret_post

            """
        let client = try #require(try TenantFile.parse(yaml: yaml).clients.first)
        #expect(client.tokenEndpointAuthMethod == .clientSecretPost)
    }
}

/// A fresh directory under the system's temporary directory; `remove()` it with `defer`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("authcore-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ text: String, to name: String) throws -> String {
        let file = path + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
