import AuthCore
import Foundation
import HTTPTypes
import Testing

@testable import AuthServer

@Suite("docs/grafana-dashboard.json queries only what /metrics exports")
struct DashboardTests {
    /// The metric names in the dashboard's queries (histogram series by their base name).
    static func queriedMetrics() throws -> Set<String> {
        let url = InteropTests.root.appendingPathComponent("docs/grafana-dashboard.json")
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        var names: Set<String> = []
        let pattern = try NSRegularExpression(pattern: "authledger_[a-z_]+")
        for panel in panels {
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                let expr = target["expr"] as? String ?? ""
                for match in pattern.matches(in: expr, range: NSRange(expr.startIndex..., in: expr)) {
                    var name = String(expr[Range(match.range, in: expr)!])
                    for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) { name.removeLast(suffix.count) }
                    names.insert(name)
                }
            }
        }
        return names
    }

    @Test("after traffic of every kind, every queried metric is in /metrics")
    func everyQueriedMetricIsExported() async throws {
        let queried = try Self.queriedMetrics()
        #expect(queried.count >= 10)
        let signer = AssertionSigner()
        let receiver = LogoutReceiver()
        try await receiver.run { backchannel in
            let withGrants = grantsTenantYAML(signer).replacingOccurrences(
                of: "    organization_usage: allow\n",
                with: "    organization_usage: allow\n    allowed_logout_urls: [https://client.test/logged-out]\n    backchannel_logout_uri: \(backchannel)\n")
            let harness = try await ServerHarness(tenant: withGrants) { $0.backchannelRetryDelay = .milliseconds(10) }
            try await harness.run { browser in
                // A failed login, a code flow, client credentials, a push, an introspection, a logout.
                let failed = try await browser.authorize(webAppParameters(scope: "openid"), password: "wrong")
                #expect(failed.status == .unauthorized)
                let hint = try await LogoutTests.idToken(browser)
                let token = try #require(
                    jsonObject(try await GrantTests.clientCredentials(browser, [("audience", "https://api.example.com")]))["access_token"] as? String)
                _ = try await GrantTests.push(browser, GrantTests.parParameters())
                _ = try await browser.post("/oauth/introspect", form: [("token", token)], headers: basic("reporting-service", "m2m-secret"))
                _ = try await browser.get("/oidc/logout?" + FormEncoding.encode([("id_token_hint", hint)]))
                _ = try await LogoutTests.deliveries(harness, count: 1)
                let metrics = try await browser.get("/metrics").body
                let exported = Set(
                    metrics.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
                        line.split(whereSeparator: { $0 == "{" || $0 == " " }).first.map(String.init)
                    }.map { name in
                        var base = name
                        for suffix in ["_bucket", "_sum", "_count"] where base.hasSuffix(suffix) { base.removeLast(suffix.count) }
                        return base
                    })
                let missing = queried.subtracting(exported)
                #expect(missing.isEmpty, "queried but not exported: \(missing.sorted())")
            }
        }
    }
}
