import Foundation
import LedgerCore
import Testing

@testable import AuthCore

/// Reading an event without a data key replaces its sealed values by `[sealed]` with a scan of the text;
/// it must give what the parsing path gives, and give up on anything else.
@Suite("The sealed-value scan of a payload's top-level members")
struct SealedMarkerScanTests {
    static let sealedValue = #"{"ct":"q83v","key":"0011223344556677","nonce":"AAAA","sealed":1,"subject":"u:auth0|a\"b"}"#

    static func parsed(_ text: String) throws -> JSONValue {
        try PayloadCoding.decode(JSONValue.self, from: Array(text.utf8))
    }

    @Test("a sealed value of a listed member becomes the marker; the rest, nested sealed values included, stays as it was")
    func replaces() throws {
        let payload = #"{"client_ip":"# + Self.sealedValue + #","note":"a \"quoted\" {brace}","other":"# + Self.sealedValue
            + #","record":{"client_ip":"# + Self.sealedValue + #"},"list":[1,{"x":[]}],"n":-1.5e3,"t":true}"#
        let scanned = try #require(SealedMarkerScan.replacingTopLevel(in: Array(payload.utf8), members: ["client_ip", "note"], marker: "[sealed]"))
        let value = try PayloadCoding.decode(JSONValue.self, from: scanned)
        var expected = try Self.parsed(payload).object!
        expected["client_ip"] = .string("[sealed]")
        #expect(value == .object(expected))
    }

    @Test("nothing sealed: the same bytes; \"sealed\":10 is not a sealed value")
    func untouched() throws {
        let plain = Array(#"{"client_ip":"203.0.113.9","user_agent":{"sealed":10}}"#.utf8)
        #expect(SealedMarkerScan.replacingTopLevel(in: plain, members: ["client_ip", "user_agent"], marker: "[sealed]") == plain)
    }

    @Test("what it does not read, it leaves to the parser", arguments: [
        #"{"client_ip":{"ct":{"nested":1},"sealed":1}}"#,  // a candidate with an object inside
        #"{"client\u0069p":{"sealed":1}}"#,  // an escaped member name
        #"{"client_ip":"#,  // cut short
        #"["not","an","object"]"#,
    ])
    func givesUp(_ text: String) {
        #expect(SealedMarkerScan.replacingTopLevel(in: Array(text.utf8), members: ["client_ip"], marker: "[sealed]") == nil)
    }

    @Test("an event read without a key decodes the same through the scan as through the parser")
    func sameEvent() throws {
        let payload = #"{"at":"2026-12-02T10:00:00.000000Z","client_ip":"# + Self.sealedValue
            + #","client_ip_key":"k","connection":"Username-Password-Authentication","reason":"wrong_password","user_id":"auth0|a","username":"#
            + Self.sealedValue + "}"
        let event = try #require(try AuthEvent(type: AuthEvent.loginFailedType, payload: Array(payload.utf8)))
        guard case .loginFailed(let failure) = event else {
            Issue.record("not a login failure: \(event)")
            return
        }
        #expect(failure.clientIP == PersonalData.sealed && failure.username == PersonalData.sealed && failure.userID == "auth0|a")
    }
}
