import Foundation
import LedgerCore
import Testing

@Suite("Payload JSON read by our own parser (PayloadCoding.decode)")
struct JSONParsingTests {
    static let document = #"""
         { "z" : [0, -0, 12, -12, 1.5, 1e3, -2.5E-3, 18446744073709551615, -9223372036854775808, 18446744073709551616],
          "escapes": "\" \\ \/ \b \f \n \r \t \u00e9 \ud83d\udd11 é 🔑",
          "nested": {"b": [true, false, null, {}, []], "a": {"": ""}}, "a_b": 1, "a1": 2 }
        """#

    @Test("it reads what Foundation's JSONDecoder reads, to the same values")
    func sameAsFoundation() throws {
        let ours = try PayloadCoding.decode(JSONValue.self, from: Array(Self.document.utf8))
        let foundation = try JSONDecoder().decode(JSONValue.self, from: Data(Self.document.utf8))
        #expect(ours == foundation)
        guard case .object(let members) = ours, case .string(let escapes)? = members["escapes"] else {
            Issue.record("\(ours)")
            return
        }
        #expect(escapes == "\" \\ / \u{8} \u{C} \n \r \t é 🔑 é 🔑")
    }

    @Test("values written by this release and by Foundation's encoder (escaped slashes, other member order) decode alike")
    func typedValues() throws {
        let sample = CanonicalJSONTests.sample
        #expect(try PayloadCoding.decode(CanonicalJSONTests.Sample.self, from: CanonicalJSONEncoder().encode(sample)) == sample)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let foundation = Array(try encoder.encode(sample))
        #expect(String(decoding: foundation, as: UTF8.self).contains(#"\/"#), "Foundation escapes slashes")
        #expect(try PayloadCoding.decode(CanonicalJSONTests.Sample.self, from: foundation) == sample)
    }

    @Test("of a member name given twice, the last value counts")
    func repeatedNames() throws {
        #expect(try PayloadCoding.decode([String: Int].self, from: Array(#"{"b":1,"a":2,"b":3}"#.utf8)) == ["a": 2, "b": 3])
    }

    @Test("text that is not JSON is refused with the reason, never a crash", arguments: [
        ("", "ends where a value"),
        ("{} x", "after the value"),
        ("01", "leading zero"),
        ("-", "needs digits"),
        ("1.", "fraction needs digits"),
        ("1e", "exponent needs digits"),
        ("1e999", "out of range"),
        (#""\ud800""#, "lone surrogate"),
        (#""\ud800\u0041""#, "lone surrogate"),
        (#""\udc00""#, "lone surrogate"),
        (#""\x""#, "unknown escape"),
        (#""\u12zz""#, "four hexadecimal digits"),
        (#""\u12""#, "ends inside an escape"),
        ("\"a\u{1}\"", "control character"),
        ("\"abc", "ends inside a string"),
        ("tru", "ends inside a literal"),
        ("nul!", "unknown literal"),
        ("{\"a\" 1}", "colon"),
        ("{\"a\":1 \"b\":2}", "comma or a closing brace"),
        ("{1:2}", "member name"),
        ("[1 2]", "comma or a closing bracket"),
        ("[1,", "ends where a value"),
        (String(repeating: "[", count: 300) + String(repeating: "]", count: 300), "nested deeper"),
    ] as [(String, String)])
    func refused(text: String, reason: String) {
        do {
            _ = try PayloadCoding.decode(JSONValue.self, from: Array(text.utf8))
            Issue.record("accepted \(text)")
        } catch let error as JSONParseError {
            #expect(error.description.contains(reason), "\(error)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test("a string that is not UTF-8 is refused")
    func notUTF8() {
        #expect(throws: JSONParseError.self) { try PayloadCoding.decode(String.self, from: [0x22, 0xFF, 0x22]) }
        #expect(throws: JSONParseError.self) { try PayloadCoding.decode(String.self, from: [0x22, 0x5C, 0x6E, 0xC3, 0x22]) }
    }
}
