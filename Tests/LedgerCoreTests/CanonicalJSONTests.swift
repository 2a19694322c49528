import Foundation
import LedgerCore
import Testing

@Suite("Canonical JSON: what payloads and projection values are written with")
struct CanonicalJSONTests {
    enum Outcome: Codable, Equatable {
        case issue(code: String, scopes: [String])
        case refuse(reason: String)
        case none
    }

    struct Sample: Codable, Equatable {
        var name: String
        var count: Int
        var big: UInt64
        var negative: Int64
        var flag: Bool
        var missing: String?
        var present: String?
        var values: [String: [String]]
        var outcome: Outcome
        var nested: [Sample]?

        enum CodingKeys: String, CodingKey {
            case name, count, big, negative, flag, missing, present, values, outcome, nested
        }
    }

    static let sample = Sample(
        name: "a \"quoted\" \\ back/slash\n\ttab \u{1}ctl é 🔑", count: 42, big: .max, negative: .min, flag: true, missing: nil,
        present: "", values: ["zeta": ["1"], "Alpha": [], "a_b": ["x"], "a1": ["y"], "ab": ["z"]],
        outcome: .issue(code: "c", scopes: ["openid", "email"]),
        nested: [Sample(
            name: "inner", count: 0, big: 0, negative: -1, flag: false, missing: nil, present: nil, values: [:], outcome: .none,
            nested: nil)])

    @Test("it decodes back to the same value with Foundation's decoder")
    func roundTrip() throws {
        let bytes = try CanonicalJSONEncoder().encode(Self.sample)
        #expect(try JSONDecoder().decode(Sample.self, from: Data(bytes)) == Self.sample)
    }

    @Test("members sorted by their UTF-8 bytes, nil members left out, no whitespace, slashes and non-ASCII as they are")
    func form() throws {
        let text = String(decoding: try CanonicalJSONEncoder().encode(Self.sample.nested![0]), as: UTF8.self)
        #expect(text == #"{"big":0,"count":0,"flag":false,"name":"inner","negative":-1,"outcome":{"none":{}},"values":{}}"#)
        let values = String(decoding: try CanonicalJSONEncoder().encode(Self.sample.values), as: UTF8.self)
        #expect(values == #"{"Alpha":[],"a1":["y"],"a_b":["x"],"ab":["z"],"zeta":["1"]}"#)
        let name = String(decoding: try CanonicalJSONEncoder().encode(Self.sample.name), as: UTF8.self)
        #expect(name == "\"a \\\"quoted\\\" \\\\ back/slash\\n\\ttab \\u0001ctl é 🔑\"")
    }

    @Test("the same value gives the same bytes, whatever order a dictionary iterates in")
    func deterministic() throws {
        var values: [String: Int] = [:]
        for index in 0..<200 { values["k\(index)"] = index }
        let first = try CanonicalJSONEncoder().encode(values)
        var rebuilt: [String: Int] = [:]
        for (key, value) in values.shuffled() { rebuilt[key] = value }
        #expect(try CanonicalJSONEncoder().encode(rebuilt) == first)
    }

    @Test("whole floating-point values are written as integers; non-finite ones are refused")
    func numbers() throws {
        #expect(String(decoding: try CanonicalJSONEncoder().encode([3.0, 0.5, -2.25]), as: UTF8.self) == "[3,0.5,-2.25]")
        #expect(throws: EncodingError.self) { try CanonicalJSONEncoder().encode([Double.nan]) }
    }

    @Test("bytes an earlier release wrote with Foundation's JSONEncoder are canonicalized to what this release writes")
    func canonicalOfEarlierBytes() throws {
        let foundation = JSONEncoder()
        foundation.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let earlier = Array(try foundation.encode(Self.sample))
        let now = try PayloadCoding.encode(Self.sample)
        #expect(PayloadCoding.canonical(earlier) == now)
        #expect(PayloadCoding.canonical(now) == now)
        // Not JSON: kept as it is.
        #expect(PayloadCoding.canonical([0, 1, 2]) == [0, 1, 2])
    }
}
