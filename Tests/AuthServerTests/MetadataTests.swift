import AuthCore
import Foundation
import LedgerCore
import HTTPTypes
import Testing

@testable import AuthServer

@Suite("Discovery, JWKS, health and metrics")
struct MetadataTests {
    @Test("discovery describes what the server really supports")
    func discovery() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let page = try await browser.get("/.well-known/openid-configuration")
            #expect(page.status == .ok)
            let document = jsonObject(page)
            #expect(document["issuer"] as? String == "https://auth.test/")
            #expect(document["authorization_endpoint"] as? String == "https://auth.test/authorize")
            #expect(document["token_endpoint"] as? String == "https://auth.test/oauth/token")
            #expect(document["jwks_uri"] as? String == "https://auth.test/.well-known/jwks.json")
            #expect(document["code_challenge_methods_supported"] as? [String] == ["S256"])
            #expect(document["authorization_response_iss_parameter_supported"] as? Bool == true)
            #expect((document["response_types_supported"] as? [String])?.contains("code") == true)
            #expect((document["response_modes_supported"] as? [String]) == ["query", "fragment", "form_post"])
        }
    }

    @Test("the JWKS publishes one RS256 and one EdDSA key, with RFC 7638 thumbprints as kid and no private parts")
    func jwks() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let keys = try #require(jsonObject(try await browser.get("/.well-known/jwks.json"))["keys"] as? [[String: String]])
            #expect(Set(keys.compactMap { $0["alg"] }) == ["RS256", "EdDSA"])
            for key in keys {
                #expect(key["d"] == nil && key["p"] == nil, "no private key material")
                #expect(key["kid"]?.utf8.count == 43)
            }
            let rsa = try #require(keys.first { $0["kty"] == "RSA" })
            let canonical = "{\"e\":\"\(rsa["e"]!)\",\"kty\":\"RSA\",\"n\":\"\(rsa["n"]!)\"}"
            #expect(rsa["kid"] == Base64URL.encode(SHA256Digest.hash(Array(canonical.utf8)).bytes))
        }
    }

    @Test("healthz answers ok with the journal's sequence; metrics count decisions, logins and commits")
    func healthAndMetrics() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let health = jsonObject(try await browser.get("/healthz"))
            #expect(health["status"] as? String == "ok")
            #expect((health["journal_sequence"] as? Int ?? 0) > 0)
            _ = try await browser.authorize(webAppParameters())
            _ = try await browser.get("/authorize?" + FormEncoding.encode([("client_id", "unknown")]))
            let metrics = try await browser.get("/metrics")
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(metrics.body.contains("authledger_authorize_decisions_total{outcome=\"code_issued\",error=\"\"} 1"))
            #expect(metrics.body.contains("authledger_authorize_decisions_total{outcome=\"error_page\",error=\"invalid_request\"} 1"))
            #expect(metrics.body.contains("authledger_login_attempts_total{result=\"success\"} 1"))
            #expect(metrics.body.contains("authledger_journal_append_duration_seconds_count"))
            #expect(metrics.body.contains("authledger_journal_batch_size_mean"))
            // LMDB reads in place: no awaited statement, and no read waited for instead (tools/cluster_test.py
            // counts them on PostgreSQL).
            for name in ["awaited_statements", "awaited_reads", "waited_reads"] {
                #expect(metrics.body.contains("\nauthledger_journal_\(name) 0"), "\(name) on an LMDB node")
            }
            // The writer's CPU time on its batches: the commits above took some.
            let writerCPU = metrics.body.split(separator: "\n").first { $0.hasPrefix("authledger_journal_writer_cpu_seconds ") }
            #expect(writerCPU.flatMap { Double($0.split(separator: " ")[1]) }.map { $0 > 0 } == true, "\(writerCPU ?? "no writer CPU")")
        }
    }
}
