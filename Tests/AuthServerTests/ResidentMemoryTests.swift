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
