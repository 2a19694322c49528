import AuthCore
import AuthJournal
import Foundation
import HTTPTypes
import LedgerCore
import LedgerJournal
import Testing

/// Client addresses, user agents and the login names typed for real accounts are sealed under their data
/// subject's key before their events are signed (issue 15's first fields): the journal file holds none of
/// them in clear, and everything that counts or finds them still works.
@Suite("Personal data sealed per subject: addresses, user agents, typed login names")
struct PersonalDataTests {
    static let address = "203.0.113.77"
    static let userAgent = "Mozilla/5.0 (X11; PersonalDataTest) Distinctive/9.9"

    @Test("the real data.mdb holds no address, user agent or typed login name in clear; with the data key they open, by subject")
    func sealedInTheFile() async throws {
        let harness = try await ServerHarness { $0.trustedProxies = ["127.0.0.1"] }
        try await harness.run { browser in
            browser.defaultHeaders[HTTPField.Name("X-Forwarded-For")!] = Self.address
            browser.defaultHeaders[.userAgent] = Self.userAgent
            _ = try await LoginThrottleTests.attempt(browser, "Alice@Example.COM", "wrong password", from: Self.address)
            _ = try await LoginThrottleTests.attempt(browser, "nobody@example.com", "x", from: Self.address)
            let code = try await TokenEndpointTests.code(browser)
            #expect(try await TokenEndpointTests.exchange(browser, code: code).status == .ok)
        }
        let bytes = try harness.journalBytes()
        for value in [Self.address, Self.userAgent, "Alice@Example.COM", "nobody@example.com", "Distinctive"] {
            #expect(bytes.range(of: Data(value.utf8)) == nil, "\(value) is in data.mdb")
        }
        // Opened with the data key: each value is back, and sealed under the right subject.
        let events = try harness.events()
        let failures = events.compactMap { if case .loginFailed(let value) = $0.1 { value } else { nil } }
        #expect(failures.map(\.clientIP) == [Self.address, Self.address])
        #expect(failures[0].username == "Alice@Example.COM")
        #expect(failures[1].username.hasPrefix(DataKey.pseudonymPrefix), "an unknown name is only ever its pseudonym")
        let requested = events.compactMap { if case .authorizeRequested(let value) = $0.1 { value } else { nil } }
        #expect(requested.allSatisfy { $0.clientIP == Self.address && ($0.userAgent == nil || $0.userAgent == Self.userAgent) })
        #expect(requested.contains { $0.userAgent == Self.userAgent })
        let issued = events.compactMap { if case .tokenIssued(let value) = $0.1 { value } else { nil } }
        #expect(issued.map(\.clientIP) == [Self.address])

        // As stored: sealed objects, schema version 2, subjects u:<user> and a:<day>, pseudonyms beside them.
        let reader = try JournalReader(directory: harness.directory + "/journal")
        defer { reader.close() }
        let (subjects, schemaVersions) = try reader.read { snapshot -> ([String], Set<UInt16>) in
            var versions: Set<UInt16> = []
            try snapshot.forEachEvent { envelope in
                if envelope.type == AuthEvent.loginFailedType { versions.insert(envelope.schemaVersion) }
                return true
            }
            return (try snapshot.subjects(withPrefix: ""), versions)
        }
        // Version 2's members, written compact (journal format §17).
        #expect(schemaVersions == [PersonalData.schemaVersion(of: AuthEvent.loginFailedType)! | PayloadEncoding.compactSchemaFlag])
        #expect(subjects.contains("u:auth0|alice"))
        #expect(subjects.contains { $0.hasPrefix("a:20") }, "the anonymous subject of the day")
        let stored = try harness.events(opened: false).compactMap { if case .loginFailed(let value) = $0.1 { value } else { nil } }
        #expect(stored.allSatisfy { $0.clientIP == PersonalData.sealed && $0.clientNetwork?.hasPrefix(DataKey.pseudonymPrefix) == true })
        #expect(stored[0].username == PersonalData.sealed && stored[0].userID == "auth0|alice")
    }

    @Test("the throttle counts sealed failures by their network's pseudonym; timeline --ip finds sealed events with the data key")
    func countingAndFinding() async throws {
        let harness = try await ServerHarness {
            $0.trustedProxies = ["127.0.0.1"]
            $0.loginThrottle = LoginThrottle(limit: 3, addressLimit: 3)
        }
        try await harness.run { browser in
            for attempt in 0..<3 {
                _ = try await LoginThrottleTests.attempt(browser, "nobody-\(attempt)@example.com", "x", from: Self.address)
            }
            #expect(try await LoginThrottleTests.attempt(browser, "alice@example.com", "correct horse battery staple", from: Self.address).status == .tooManyRequests)
            #expect(try await LoginThrottleTests.attempt(browser, "alice@example.com", "correct horse battery staple", from: "198.51.100.2").status == .found)
        }
        let journal = harness.directory + "/journal"
        let found = try RebuildCommandTests.replay(["timeline", "--ip", Self.address, "--journal", journal])
        #expect(found.0 == 0)
        #expect(found.1.split(separator: "\n").filter { $0.contains("auth.login.failed") }.count == 4)
        #expect(found.1.contains("from \(Self.address)"))
        let blind = try RebuildCommandTests.replay(["timeline", "--ip", Self.address, "--journal", journal, "--data-key", journal + ".none"])
        #expect(!blind.1.contains("auth.login.failed"), "without the data key a sealed address cannot be looked up")
    }
}
