import Foundation
import LedgerCore
import Testing
@testable import AuthServer

@Suite("The server's resident memory figures (/proc/self/status)")
struct ResidentMemoryTests {
    @Test("RssAnon and RssFile are read in bytes; a text without them gives nothing")
    func parse() {
        let status = "Name:\tauthledger\nVmRSS:\t  300000 kB\nRssAnon:\t    7168 kB\nRssFile:\t  252928 kB\nRssShmem:\t       0 kB\n"
        #expect(ResidentMemory.parse(status) == ResidentMemory(anonymous: 7168 * 1024, fileBacked: 252928 * 1024))
        #expect(ResidentMemory.parse("Name:\tx\nVmRSS:\t1 kB\n") == nil)
    }

    @Test("on Linux the process's own figures are there and plausible")
    func current() throws {
        guard FileManager.default.fileExists(atPath: "/proc/self/status") else { return }
        let memory = try #require(ResidentMemory.current())
        #expect(memory.anonymous > 0 && memory.fileBacked > 0)
    }
}

@Suite("The server keeps its file-backed memory under --max-mapped-memory")
struct MappedMemoryBoundTests {
    /// `authledger_process_mapped_pages_released_total` from `/metrics` (0 when never counted).
    static func releases(_ browser: Browser) async throws -> Int {
        Int(try await browser.metric("authledger_process_mapped_pages_released_total") ?? 0)
    }

    /// Runs the server's watcher with `limit` and 5 ms between checks until it has let go `until` times
    /// (or for 200 ms when `until` is `nil`; at most 60 s: a sanitized, loaded machine runs few checks),
    /// then calls `check` with the releases it counted. Linux only (elsewhere there is no figure to bound).
    static func watch(limit: Int?, until wanted: Int? = nil, _ check: @escaping @Sendable (Int) -> Void) async throws {
        guard FileManager.default.fileExists(atPath: "/proc/self/status") else { return }
        let harness = try await ServerHarness {
            $0.mappedMemoryLimit = limit
            $0.memoryCheckInterval = .milliseconds(5)
        }
        try await harness.run { browser in
            _ = try await browser.get("/authorize?client_id=web-app")  // the journal's pages mapped by a read
            let watcher = Task { await harness.server.boundResidentMemoryPeriodically() }
            if let wanted {
                let deadline = ContinuousClock.now + .seconds(60)
                while try await releases(browser) < wanted, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
            } else {
                try await Task.sleep(for: .milliseconds(200))
            }
            watcher.cancel()
            await watcher.value
            check(try await releases(browser))
        }
    }

    @Test("above the bound (any process maps more than a byte of files) the journal's pages are let go of, again at every check")
    func releasesAboveTheBound() async throws {
        try await Self.watch(limit: 1, until: 2) { released in
            #expect(released >= 2, "released \(released) times in 60 s of 5 ms checks")
        }
    }

    @Test("under the bound, or with none (0), nothing is let go of")
    func keepsUnderTheBound() async throws {
        try await Self.watch(limit: Int.max) { #expect($0 == 0) }
        try await Self.watch(limit: nil) { #expect($0 == 0) }
    }

    @Test("the default bound is 64 MB checked every 50 ms, so that an Argon2id check's 64 MiB on top stays under 150 MB")
    func defaults() {
        let settings = AuthServerSettings()
        #expect(settings.mappedMemoryLimit == 64 << 20)
        #expect(settings.memoryCheckInterval == .milliseconds(50))
    }
}

@Suite("JSON responses are written by the canonical encoder")
struct JSONResponseTests {
    @Test("a token response's dictionary becomes the same JSON, members sorted; anything else falls back")
    func tokenBody() throws {
        let body: [String: Any] = [
            "access_token": "a.b/c", "token_type": "DPoP", "expires_in": 3600, "scope": "openid", "active": true,
            "aud": ["x", "y"], "address": ["country": "NL"] as [String: Any], "none": NSNull(),
        ]
        let value = try #require(AuthorizationServer.jsonValue(body))
        let text = String(decoding: try PayloadCoding.encode(value), as: UTF8.self)
        #expect(
            text
                == #"{"access_token":"a.b/c","active":true,"address":{"country":"NL"},"aud":["x","y"],"expires_in":3600,"none":null,"scope":"openid","token_type":"DPoP"}"#
        )
        #expect(AuthorizationServer.jsonValue(["when": Date()]) == nil)
    }
}
