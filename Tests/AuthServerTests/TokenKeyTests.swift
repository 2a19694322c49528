import AuthCore
import Foundation
import LedgerCore
import LedgerJournal
import LedgerLMDB
import Testing

@testable import AuthServer
@testable import AuthTokens

@Suite("Token signing keys: EdDSA where the API asks, rotation that keeps old keys until their tokens expire")
struct TokenKeyTests {
    @Test("an API with signing_alg EdDSA gets EdDSA access tokens, verifiable with the Ed25519 key of the JWKS")
    func edDSAForAPI() async throws {
        let tenant = testTenantYAML.replacingOccurrences(
            of: "skip_consent_for_first_party: true\n", with: "skip_consent_for_first_party: true\n    signing_alg: EdDSA\n")
        #expect(tenant.contains("signing_alg: EdDSA"))
        let harness = try await ServerHarness(tenant: tenant)
        try await harness.run { browser in
            let page = try await browser.authorize(webAppParameters([("audience", "https://api.example.com")], scope: "openid read:messages"))
            let code = try #require(page.redirectParameters["code"])
            let body = jsonObject(try await TokenEndpointTests.exchange(browser, code: code))
            let access = try #require(body["access_token"] as? String)
            let header = String(decoding: Base64URL.decode(String(access.split(separator: ".")[0]))!, as: UTF8.self)
            #expect(header.contains("\"alg\":\"EdDSA\""))
            let edKey = harness.server.tokenKeys.key(for: .edDSA)
            #expect(header.contains(edKey.kid))
            let claims = try await harness.server.tokenKeys.verify(access, as: AccessTokenClaims.self)
            #expect(claims.aud == "https://api.example.com")
            #expect(claims.scope == "openid read:messages")
        }
    }

    @Test("a token verifies only in its canonical spelling: not with padding, not with spare bits set")
    func canonicalSpellingOnly() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/authledger-tokenkeys-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ring = try await TokenKeyRing.loadOrCreate(path: directory + "/journal.tokenkeys")
        let now = Journal.systemClock()
        let grant = TokenRequestGrant(
            clientID: "web-app", userID: "auth0|alice", user: nil, scopes: ["openid"], audience: nil, organizationID: nil, nonce: nil,
            authTime: now)
        let token = try await TokenMinter(keys: ring, issuer: "https://auth.test/").mint(grant, api: nil, now: now, includeIDToken: false).accessToken
        _ = try await ring.verify(token, as: AccessTokenClaims.self)
        // An RS256 signature is 256 bytes: its last base64url character carries 2 bits and 4 spare ones.
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let last = try #require(alphabet.firstIndex(of: token.last!))
        let spareBitsSet = String(token.dropLast()) + String(alphabet[last % 16 == 15 ? last - 1 : last + 1])
        #expect(TokenKeyRing.isCanonical(token))
        for variant in [spareBitsSet, token + "=", token + "==", token + ".", "a.b", token.replacingOccurrences(of: ".", with: "..")] {
            #expect(!TokenKeyRing.isCanonical(variant), "\(variant.suffix(4))")
            await #expect(throws: TokenKeyError.self, "\(variant.suffix(4))") { try await ring.verify(variant, as: AccessTokenClaims.self) }
        }
    }

    @Test("a token key file open to group or others is refused, naming the fix")
    func exposedTokenKeysAreRefused() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/authledger-tokenkeys-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/journal.tokenkeys"
        _ = try await TokenKeyRing.loadOrCreate(path: path)
        #expect(chmod(path, 0o644) == 0)
        do {
            _ = try await TokenKeyRing.loadOrCreate(path: path)
            Issue.record("loaded a world-readable token key file")
        } catch let error as TokenKeyError {
            #expect("\(error)".contains("mode 644") && "\(error)".contains("chmod 600"), "\(error)")
        }
        #expect(chmod(path, 0o600) == 0)
        _ = try await TokenKeyRing.loadOrCreate(path: path)
    }

    @Test("rotation: new tokens use the new keys, the old keys stay published and verify old tokens, then expire from the file")
    func rotation() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/authledger-tokenkeys-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/journal.tokenkeys"
        let ring = try await TokenKeyRing.loadOrCreate(path: path)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber == 0o600)
        let now = Journal.systemClock()
        let minter = TokenMinter(keys: ring, issuer: "https://auth.test/")
        let grant = TokenRequestGrant(
            clientID: "web-app", userID: "auth0|alice", user: nil, scopes: ["openid"], audience: nil, organizationID: nil, nonce: nil,
            authTime: now)
        let old = try await minter.mint(grant, api: nil, now: now, includeIDToken: false).accessToken
        let oldKid = ring.key(for: .rs256).kid

        let rotated = try await ring.rotated(now: now, retentionSeconds: 3600)
        let newKid = rotated.key(for: .rs256).kid
        #expect(newKid != oldKid)
        #expect(Set(rotated.jwks.compactMap { $0["kid"] }).isSuperset(of: [oldKid, newKid]))
        #expect(rotated.keys.count == 4)
        _ = try await rotated.verify(old, as: AccessTokenClaims.self)
        let fresh = try await TokenMinter(keys: rotated, issuer: "https://auth.test/").mint(grant, api: nil, now: now, includeIDToken: false)
        #expect(fresh.accessToken.split(separator: ".")[0] != old.split(separator: ".")[0], "signed under another kid")

        let reloaded = try await TokenKeyRing.loadOrCreate(path: path)
        #expect(reloaded.key(for: .rs256).kid == newKid, "the rotation is durable")
        // Once the retention has passed, a further rotation drops the oldest keys.
        let later = try await reloaded.rotated(now: now.adding(seconds: 7200), retentionSeconds: 3600)
        #expect(!later.jwks.contains { $0["kid"] == oldKid })
        #expect(later.jwks.contains { $0["kid"] == newKid })
    }
}
