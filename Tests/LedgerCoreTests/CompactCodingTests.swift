import Foundation
@testable import LedgerCore
import Testing

@Suite("Compact values: the binary encoding of projection values")
struct CompactCodingTests {
    /// An enum with associated values, as the JSON tests have it.
    typealias Outcome = CanonicalJSONTests.Outcome

    struct Sample: Codable, Equatable {
        var name: String
        var count: Int
        var big: UInt64
        var negative: Int64
        var ratio: Double
        var flag: Bool
        var missing: String?
        var present: String?
        var hash: String
        var sealed: String
        var tokenID: String
        var at: LedgerTimestamp
        var atText: String
        var values: [String: [String]]
        var outcome: Outcome
        var nested: [Sample]?
    }

    static let sample = Sample(
        name: "a \"quoted\" \\ back/slash\n\ttab \u{1}ctl é 🔑", count: -42, big: .max, negative: .min, ratio: 0.25, flag: true,
        missing: nil, present: "", hash: String(repeating: "0123456789abcdef", count: 4), sealed: "he/e1pfrOzpP7uaTWdV3CqQfvt6w/F0S9A==",
        tokenID: "t-nIHMHSD-_Kpr5Kq9SLnikDhmMwcPJU00ONs6rbFb0", at: LedgerTimestamp(microsecondsSinceEpoch: 1_796_000_000_123_456),
        atText: "2026-12-02T21:39:44.535943Z", values: ["zeta": ["1"], "Alpha": [], "a_b": ["x"], "a1": ["y"], "ab": ["z"]],
        outcome: .issue(code: "c", scopes: ["openid", "email"]),
        nested: [Sample(
            name: "inner", count: 0, big: 0, negative: -1, ratio: 3, flag: false, missing: nil, present: nil, hash: "ab", sealed: "",
            tokenID: "", at: LedgerTimestamp(microsecondsSinceEpoch: -1), atText: "2026-12-02T21:39:44Z", values: [:], outcome: .none,
            nested: nil)])

    @Test("a value decodes back to itself, and is smaller than its JSON")
    func roundTrip() throws {
        let bytes = try CompactCoding.encode(Self.sample)
        #expect(try CompactCoding.decode(Sample.self, from: bytes) == Self.sample)
        let json = try PayloadCoding.encode(Self.sample)
        #expect(bytes.count * 10 < json.count * 7, "\(bytes.count) bytes against \(json.count) of JSON")
    }

    @Test("the same value always gives the same bytes, whatever order its members were encoded in")
    func deterministic() throws {
        let first = try CompactCoding.encode(["b": 1, "a": 2, "c": 3])
        let second = try CompactCoding.encode(["c": 3, "a": 2, "b": 1])
        #expect(first == second)
        #expect(first == [0x0D, 3, 2, 0x61, 0x03, 2, 2, 0x62, 0x03, 1, 2, 0x63, 0x03, 3])
    }

    @Test("objects name their members by position in the table where it has them, by their text elsewhere, in the order of the names' text")
    func namedMembers() throws {
        // client_id is entry 0 (written 1), user_id entry 2 (written 5); "zz" is not in the table (2 bytes: written 4).
        let bytes = try CompactCoding.encode(["zz": 2, "user_id": 1, "client_id": 0])
        #expect(bytes == [0x0D, 3, 0x01, 0x03, 0, 0x05, 0x03, 1, 0x04, 0x7A, 0x7A, 0x03, 2])
        #expect(try CompactCoding.decode([String: Int].self, from: bytes) == ["zz": 2, "user_id": 1, "client_id": 0])
        // Entry 64 and beyond take two bytes.
        let late = CompactCoding.memberNames[64]
        #expect(try CompactCoding.encode([late: true]) == [0x0D, 1, 0x81, 0x01, 0x02])
        // Values written before the table (objects tagged 0x0C, names as text) read the same.
        let plain: [UInt8] = [0x0C, 2, 9] + Array("client_id".utf8) + [0x03, 0, 2, 0x7A, 0x7A, 0x03, 2]
        #expect(try CompactCoding.decode([String: Int].self, from: plain) == ["client_id": 0, "zz": 2])
        #expect(CompactCoding.memberNameForms("client_id") == [[9] + Array("client_id".utf8), [0x01]])
        #expect(CompactCoding.memberNameForms("zz") == [[2, 0x7A, 0x7A], [4, 0x7A, 0x7A]])
    }

    /// A value with a hexadecimal string of 0x7F bytes: the byte that names `login_hint` in the named form.
    struct Hinted: Codable {
        var hash = String(repeating: "7f", count: 16)
        var items: [[String: String]]
    }

    /// `value` in the plain form (objects tagged 0x0C, every name as text), as values written before the
    /// member-name table are.
    static func plainBytes(_ value: some Encodable) throws -> [UInt8] {
        var writer = CompactWriter(form: .plain)
        try writer.write(CanonicalJSONEncoder.node(of: value, codingPath: []))
        return writer.bytes
    }

    @Test("a member is found by its name in either form of object, at any depth, and never by bytes that only look like its name")
    func memberScan() throws {
        let position = try #require(CompactCoding.memberNamePositions["login_hint"])
        let none = try CompactCoding.encode(Hinted(items: [["client_id": "c"], [:]]))
        #expect(none.contains(UInt8(position * 2 + 1)), "the test needs the position's byte inside a value")
        #expect(CompactCoding.memberNameForms("login_hint").contains { form in none.indices.contains { none[$0...].starts(with: form) } })
        #expect(CompactCoding.containsMember(namedAnyOf: ["login_hint"], in: none) == false)
        #expect(CompactCoding.containsMember(namedAnyOf: ["loginHint", "login_hint", "zz"], in: none) == false)
        #expect(CompactCoding.containsMember(namedAnyOf: ["client_id"], in: none) == true)
        #expect(CompactCoding.containsMember(namedAnyOf: [], in: none) == false)

        for encode in [{ try CompactCoding.encode($0) }, Self.plainBytes] as [(Hinted) throws -> [UInt8]] {
            let nested = try encode(Hinted(items: [["client_id": "c"], ["login_hint": "a@example.com"]]))
            #expect(CompactCoding.containsMember(namedAnyOf: ["login_hint"], in: nested) == true)
            #expect(CompactCoding.containsMember(namedAnyOf: ["loginHint"], in: nested) == false)
            // A name not in the table is written out in both forms.
            let camel = try encode(Hinted(items: [["loginHint": "a@example.com"]]))
            #expect(CompactCoding.containsMember(namedAnyOf: ["loginHint"], in: camel) == true)
            #expect(CompactCoding.containsMember(namedAnyOf: ["login_hint"], in: camel) == false)
            // A member's value is not a name.
            let asValue = try encode(Hinted(items: [["state": "login_hint"]]))
            #expect(CompactCoding.containsMember(namedAnyOf: ["login_hint"], in: asValue) == false)
        }

        // Every member name of a value with every tag is found, at whatever depth; no other name is.
        let bytes = try CompactCoding.encode(Self.sample)
        var names: Set<String> = []
        func collect(_ value: JSONValue) {
            switch value {
            case .object(let members):
                names.formUnion(members.keys)
                members.values.forEach(collect)
            case .array(let items): items.forEach(collect)
            default: break
            }
        }
        collect(try CompactCoding.decode(JSONValue.self, from: bytes))
        #expect(names.contains("zeta") && names.contains("scopes"))
        for name in names {
            #expect(CompactCoding.containsMember(namedAnyOf: [name], in: bytes) == true, "\(name)")
        }
        for name in CompactCoding.memberNames where !names.contains(name) {
            #expect(CompactCoding.containsMember(namedAnyOf: [name], in: bytes) == false, "\(name)")
        }
    }

    @Test("bytes the member scan cannot follow answer neither yes nor no", arguments: [
        [], [0x0F], [0x0D], [0x0D, 0x01], [0x0D, 0x01, 0x08, 0x61], [0x06, 0x05, 0x61], [0x05, 0x01], [0x0E, 0x00],
        [0x00, 0x00], [0x0B, 0x02, 0x00], Array(repeating: [0x0B, 0x01], count: 70).flatMap { $0 } + [0x00],
    ] as [[UInt8]])
    func memberScanRefuses(bytes: [UInt8]) {
        #expect(CompactCoding.containsMember(namedAnyOf: ["login_hint"], in: bytes) == nil)
    }

    @Test("a keyed pseudonym is its 32 bytes in a value whose top is a named object, and text anywhere else")
    func pseudonyms() throws {
        let digits = String(repeating: "0f", count: 32)
        let pseudonym = "hmac-sha256:" + digits
        let bytes = try CompactCoding.encode(["client_ip_key": pseudonym])
        // client_ip_key is entry 17 (written 35).
        #expect(bytes == [0x0D, 1, 35, 0x0E] + Array(repeating: 0x0F, count: 32))
        #expect(try CompactCoding.decode([String: String].self, from: bytes) == ["client_ip_key": pseudonym])
        // Not at the top of an object: text, as it always was (a string alone, an array of them).
        #expect(try CompactCoding.encode(pseudonym) == [0x06, 76] + Array(pseudonym.utf8))
        #expect(try CompactCoding.encode([pseudonym]) == [0x0B, 1, 0x06, 76] + Array(pseudonym.utf8))
        // Only the exact form: upper-case digits, another prefix or length are text.
        for text in ["hmac-sha256:" + digits.uppercased(), "hmac-sha512:" + digits, pseudonym + "00", "sha256:" + digits] {
            let encoded = try CompactCoding.encode(["v": text])
            #expect(!encoded.contains(0x0E), "\(text)")
            #expect(try CompactCoding.decode([String: String].self, from: encoded) == ["v": text], "\(text)")
        }
        // Stored as text where it has its own form, or in its own form where it may not, it is refused.
        let asText: [UInt8] = [0x0D, 1, 35, 0x06, 76] + Array(pseudonym.utf8)
        #expect(throws: CompactDecodingError.self) { try CompactCoding.decode(JSONValue.self, from: asText) }
        let inPlain: [UInt8] = [0x0C, 1, 1, 0x76, 0x0E] + Array(repeating: 0x0F, count: 32)
        #expect(throws: CompactDecodingError.self) { try CompactCoding.decode(JSONValue.self, from: inPlain) }
        let inArray: [UInt8] = [0x0B, 1, 0x0E] + Array(repeating: 0x0F, count: 32)
        #expect(throws: CompactDecodingError.self) { try CompactCoding.decode(JSONValue.self, from: inArray) }
        let short: [UInt8] = [0x0D, 1, 35, 0x0E] + Array(repeating: 0x0F, count: 31)
        #expect(throws: CompactDecodingError.self) { try CompactCoding.decode(JSONValue.self, from: short) }
    }

    @Test("the member-name table: no name twice, frozen, and the same list as the Python verifier's and the journal format's")
    func memberNameTable() throws {
        let names = CompactCoding.memberNames
        #expect(Set(names).count == names.count)
        #expect(names.count == 160)
        // Frozen: journals are written with these positions. Changing the list changes this digest.
        #expect(SHA256Digest.hash(Array(names.joined(separator: "\n").utf8)).hex.prefix(16) == "\(Self.tableDigest)")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let verifier = try String(contentsOf: root.appendingPathComponent("tools/verify_bundle.py"), encoding: .utf8)
        let list = try #require(verifier.components(separatedBy: "MEMBER_NAMES = [").dropFirst().first?.components(separatedBy: "]").first)
        #expect(list.split(separator: "\"").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) } == names)
        let format = try String(contentsOf: root.appendingPathComponent("docs/journal-format.md"), encoding: .utf8)
        let documented = try #require(format.components(separatedBy: "<!-- member names -->").dropFirst().first)
        let inOrder = documented.split(separator: "`").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        #expect(Array(inOrder.prefix(names.count)) == names)
    }

    static let tableDigest = "83cb945614b7df1c"

    @Test("strings take the form their text allows, and read back as the same text")
    func stringForms() throws {
        let hash = String(repeating: "ab", count: 32)
        #expect(CompactCoding.StringForm.of(hash) == .hex(Array(repeating: 0xAB, count: 32)))
        #expect(CompactCoding.StringForm.of("abab") == .plain, "shorter than 16 characters")
        #expect(CompactCoding.StringForm.of(hash.uppercased()) == .base64(Base64.decode(hash.uppercased())!), "upper-case hex is not hex")
        #expect(CompactCoding.StringForm.of("2026-12-02T21:39:44.535943Z") == .time(LedgerTimestamp(rfc3339: "2026-12-02T21:39:44.535943Z")!))
        #expect(CompactCoding.StringForm.of("2026-12-02T21:39:44.535943+00:00") == .plain, "not as LedgerTimestamp writes it")
        #expect(CompactCoding.StringForm.of("https://client.example/callback") == .plain)
        #expect(CompactCoding.StringForm.of("auth0|alice-and-bob-and-carol") == .plain)
        // Base64 with bits set beyond its bytes renders back otherwise: it stays text.
        #expect(CompactCoding.StringForm.of("AAAAAAAAAAAAAAAB") == .base64([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))
        #expect(CompactCoding.StringForm.of("AAAAAAAAAAAAAAAAAAAAAB") == .plain)
        for text in [hash, hash.uppercased(), "AAAAAAAAAAAAAAAB", "AAAAAAAAAAAAAAAAAAAAAB", "t-nIHMHSD-_Kpr5Kq9SLnikDhmMwcPJU00ONs6rbFb0", "é"] {
            #expect(try CompactCoding.decode(String.self, from: CompactCoding.encode(text)) == text)
        }
    }

    @Test("the reader's check of a stored form answers as classifying the rendered text again does, for every tag, length and time boundary")
    func renderedForms() throws {
        var generator = SystemRandomNumberGenerator()
        func random(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        func hexDigits(_ count: Int) -> String { String((0..<count).map { _ in "0123456789abcdef".randomElement(using: &generator)! }) }
        var samples: [(CompactCoding.Tag, [UInt8])] = []
        for count in 0...40 {
            for _ in 0..<20 {
                samples += [(.hex, random(count)), (.base64, random(count)), (.base64URL, random(count))]
            }
            // Texts of hexadecimal digits only, which their form must refuse as base64.
            for _ in 0..<5 {
                if let bytes = Base64.decode(hexDigits(count * 4 / 3 / 4 * 4), variant: .standard) { samples.append((.base64, bytes)) }
                if let bytes = Base64.decode(hexDigits(count * 4 / 3), variant: .urlSafeUnpadded) { samples.append((.base64URL, bytes)) }
            }
        }
        for (tag, bytes) in samples {
            let (text, expected): (String, CompactCoding.StringForm) =
                switch tag {
                case .hex: (Hex.encode(bytes), .hex(bytes))
                case .base64: (Base64.encode(bytes, variant: .standard), .base64(bytes))
                default: (Base64.encode(bytes, variant: .urlSafeUnpadded), .base64URL(bytes))
                }
            #expect(CompactReader.rendersInItsForm(text, tag: tag) == (CompactCoding.StringForm.of(text) == expected), "\(tag) \(text)")
        }
        let bounds = CompactReader.renderedTimes
        for micros in [bounds.lowerBound - 1, bounds.lowerBound, 0, 1_764_633_600_123_456, bounds.upperBound, bounds.upperBound + 1]
            + (0..<200).map({ _ in Int64.random(in: bounds.lowerBound - 10_000_000...bounds.upperBound + 10_000_000, using: &generator) })
        {
            let time = LedgerTimestamp(microsecondsSinceEpoch: micros)
            #expect(bounds.contains(micros) == (CompactCoding.StringForm.of(time.rfc3339) == .time(time)), "\(micros)")
        }
        // Year 0000 renders and parses, but is a plain string (as in the Python verifier, whose years start at 1).
        #expect(CompactCoding.StringForm.of("0000-06-01T00:00:00.000000Z") == .plain)
    }

    @Test("every stored value reads back as the JSON value it stands for")
    func asJSON() throws {
        let compact = try CompactCoding.encode(Self.sample)
        let json = try PayloadCoding.encode(Self.sample)
        #expect(try ProjectionCoding.json(compact) == json)
        #expect(PayloadCoding.canonical(compact) == json)
        #expect(try ProjectionCoding.decode(Sample.self, from: json) == Self.sample, "values written as JSON by earlier releases")
        #expect(try ProjectionCoding.decode(Sample.self, from: compact) == Self.sample)
        #expect(try CompactCoding.decode(JSONValue.self, from: compact) == (try PayloadCoding.decode(JSONValue.self, from: json)))
    }

    @Test("bytes that are not a canonical compact value are refused with the reason, never a crash", arguments: [
        ([], "end inside"),
        ([0x0F], "unknown tag"),
        ([0x0D, 0x01, 18] + Array("client_id".utf8) + [0x00], "of the table written out"),
        ([0x0D, 0x01, 0xC1, 0x02, 0x00], "beyond the table"),
        ([0x0D, 0x01, 0x02, 0x61, 0x0C, 0x00], "both forms"),
        ([0x0C, 0x01, 0x01, 0x61, 0x0D, 0x00], "both forms"),
        ([0x0D, 0x02, 0x05, 0x00, 0x01, 0x00], "out of order"),
        ([0x0D, 0x02, 0x01, 0x00, 0x01, 0x00], "repeated"),
        ([0x0D, 0x02, 0x04, 0x7A, 0x7A, 0x00, 0x01, 0x00], "out of order"),  // "zz" written out, then the table's "client_id"
        ([0x0D, 0x02, 0x01, 0x00, 0x02, 0x61, 0x00], "out of order"),  // the table's "client_id", then "a" written out
        ([0x0D, 0x01, 0x08, 0x61], "larger than the bytes left"),
        ([0x03, 0x80, 0x00], "shortest form"),
        ([0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02], "beyond 64 bits"),
        ([0x04, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x01], "below -2^63"),
        ([0x06, 0x05, 0x61], "larger than the bytes left"),
        ([0x06, 0x01, 0xFF], "not UTF-8"),
        ([0x06, 0x10] + Array("0123456789abcdef".utf8), "shorter form"),
        ([0x07, 0x02, 0xAB, 0xCD], "does not take"),
        ([0x05, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0], "whole"),
        ([0x05, 0x7F, 0xF0, 0, 0, 0, 0, 0, 0], "not finite"),
        ([0x0C, 0x02, 0x01, 0x62, 0x00, 0x01, 0x61, 0x00], "out of order"),
        ([0x0C, 0x02, 0x01, 0x61, 0x00, 0x01, 0x61, 0x00], "repeated"),
        ([0x00, 0x00], "after the value"),
        (Array(repeating: 0x0B, count: 40) + [0x01] + Array(repeating: 0x01, count: 0), "count larger"),
        (Array(repeating: [0x0B, 0x01], count: 70).flatMap { $0 } + [0x00], "nested deeper"),
    ] as [([UInt8], String)])
    func refused(bytes: [UInt8], reason: String) {
        do {
            _ = try CompactCoding.decode(JSONValue.self, from: bytes)
            Issue.record("accepted \(bytes)")
        } catch let error as CompactDecodingError {
            #expect(error.description.contains(reason), "\(error)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test("an object with every name of the member table, and names written out between them, decodes: the table's names compare by rank as their bytes do")
    func everyTableName() throws {
        var object: [String: Int] = [:]
        for (position, name) in CompactCoding.memberNames.enumerated() {
            object[name] = position
            object[name + "~"] = position  // not in the table: written out, right after its name
        }
        object["A"] = -1
        object["~"] = -2
        let bytes = try CompactCoding.encode(object)
        #expect(try CompactCoding.decode([String: Int].self, from: bytes) == object)
        #expect(try PayloadCoding.json(bytes) == (try PayloadCoding.encode(object)))
    }

    @Test("read marking sealed values: a named top-level member that is a sealed value reads as the marker, every other as it is")
    func markingSealed() throws {
        let sealed: JSONValue = .object([
            "sealed": .integer(1), "ct": .string(Base64.encode(Array(repeating: 7, count: 40))),
            "key": .string("hmac-sha256:" + String(repeating: "ab", count: 32)), "nonce": .string(String(repeating: "0f", count: 12)),
            "list": .array([.string("x"), .object(["sealed": .integer(1)])]),
        ])
        let value: JSONValue = .object([
            "username": sealed,  // named, sealed: the marker
            "client_ip": .object(["sealed": .integer(2)]),  // named, not a sealed value
            "other": sealed,  // sealed, not named
            "list": .array([sealed]),  // named, an array
            "user_id": .string("auth0|alice"),
        ])
        let bytes = try CompactCoding.encode(value)
        let read = try PayloadCoding.decode(JSONValue.self, from: bytes, markingSealed: ["username", "client_ip", "list", "missing"], as: "[sealed]")
        guard case .object(var expected) = value else { return }
        expected["username"] = .string("[sealed]")
        #expect(read == .object(expected))
        // Without names, or as plain JSON text, nothing is marked.
        #expect(try PayloadCoding.decode(JSONValue.self, from: bytes, markingSealed: [], as: "[sealed]") == value)
        #expect(try PayloadCoding.decode(JSONValue.self, from: try PayloadCoding.encode(value), markingSealed: ["username"], as: "[sealed]") == value)
    }

    @Test("a sealed value read as the marker is still checked: one that is not canonical is refused as when it is built", arguments: [
        // {"a": {"sealed": 1, "x": <hex of 2 bytes>}}: bytes stored in a form their text does not take.
        ([0x0C, 0x01, 0x01, 0x61, 0x0C, 0x02, 0x06] + Array("sealed".utf8) + [0x03, 0x01, 0x01, 0x78, 0x07, 0x02, 0xAB, 0xCD], "does not take"),
        // {"a": {"sealed": 1, "x": <base64 of 12 bytes that is hexadecimal text>}}.
        ([0x0C, 0x01, 0x01, 0x61, 0x0C, 0x02, 0x06] + Array("sealed".utf8) + [0x03, 0x01, 0x01, 0x78, 0x08, 0x0C]
            + (Base64.decode("0123456789abcdef") ?? []), "does not take"),
        // {"a": {"x": 1, "sealed": 1}}: members out of order.
        ([0x0C, 0x01, 0x01, 0x61, 0x0C, 0x02, 0x01, 0x78, 0x03, 0x01, 0x06] + Array("sealed".utf8) + [0x03, 0x01], "out of order"),
        // {"a": {"sealed": 1, "x": [<an object of the other form>]}}.
        ([0x0C, 0x01, 0x01, 0x61, 0x0C, 0x02, 0x06] + Array("sealed".utf8) + [0x03, 0x01, 0x01, 0x78, 0x0B, 0x01, 0x0D, 0x00], "both forms"),
        // {"a": {"sealed": 1}} and a byte after it.
        ([0x0C, 0x01, 0x01, 0x61, 0x0C, 0x01, 0x06] + Array("sealed".utf8) + [0x03, 0x01, 0x00], "after the value"),
    ] as [([UInt8], String)])
    func markingSealedChecks(bytes: [UInt8], reason: String) {
        for members: Set<String> in [[], ["a"]] {
            do {
                _ = try PayloadCoding.decode(JSONValue.self, from: bytes, markingSealed: members, as: "[sealed]")
                Issue.record("accepted \(bytes) marking \(members)")
            } catch let error as CompactDecodingError {
                #expect(error.description.contains(reason), "\(error)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test("a value of the wrong shape is a decoding error that names what was found")
    func wrongShape() throws {
        let bytes = try CompactCoding.encode(["name": "x"])
        #expect(throws: DecodingError.self) { try CompactCoding.decode([String: Int].self, from: bytes) }
        #expect(throws: DecodingError.self) { try CompactCoding.decode(UInt8.self, from: CompactCoding.encode(300)) }
        #expect(throws: DecodingError.self) { try CompactCoding.decode(Sample.self, from: bytes) }
    }
}
