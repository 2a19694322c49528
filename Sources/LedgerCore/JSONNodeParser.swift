/// Parses JSON text (RFC 8259) into the value tree that ``CompactNodeDecoder`` decodes: how payloads are
/// read (``PayloadCoding/decode(_:from:)``).
///
/// Hand-written because Foundation's `JSONDecoder` copied every payload into `Data` and walked it through
/// its own map and boxed containers: a third of `rebuild`'s time (profiled 2026-12-04). Numbers without a
/// fraction or exponent are integers (beyond 64 bits, floating point); strings are unescaped, surrogate
/// pairs joined, and must be UTF-8; of a member name given twice the last value counts, as with
/// `JSONSerialization`. Nesting deeper than ``maximumDepth`` is refused, so that hostile input cannot
/// exhaust the stack.
struct JSONNodeParser {
    static let maximumDepth = 256

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// The value `text` holds, with nothing but white space around it.
    static func parse(_ text: [UInt8]) throws -> CompactNode {
        try text.withUnsafeBufferPointer { buffer in
            var parser = JSONNodeParser(buffer)
            return try parser.document()
        }
    }

    private mutating func document() throws(JSONParseError) -> CompactNode {
        skipSpace()
        let node = try parseValue(depth: 0)
        skipSpace()
        guard index == bytes.count else { throw error("text after the value") }
        return node
    }

    private func error(_ reason: String) -> JSONParseError { JSONParseError(offset: index, reason: reason) }

    private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func expect(_ literal: StaticString, _ node: CompactNode) throws(JSONParseError) -> CompactNode {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count else { throw error("the text ends inside a literal") }
        for offset in 0..<count where bytes[index + offset] != literal.utf8Start[offset] {
            throw error("an unknown literal")
        }
        index += count
        return node
    }

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> CompactNode {
        guard depth <= Self.maximumDepth else { throw error("nested deeper than \(Self.maximumDepth)") }
        guard index < bytes.count else { throw error("the text ends where a value should be") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("an unexpected character")
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> CompactNode {
        index += 1
        var members: [(key: String, value: CompactNode)] = []
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("a member name should be here") }
            let key = try parseString()
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("a colon should follow a member name") }
            index += 1
            skipSpace()
            members.append((key, try parseValue(depth: depth + 1)))
            skipSpace()
            guard index < bytes.count else { throw error("the text ends inside an object") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "}") {
                index += 1
                break
            } else {
                throw error("a comma or a closing brace should be here")
            }
        }
        return .object(inNameOrder(members))
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> CompactNode {
        index += 1
        var items: [CompactNode] = []
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipSpace()
            items.append(try parseValue(depth: depth + 1))
            skipSpace()
            guard index < bytes.count else { throw error("the text ends inside an array") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            } else {
                throw error("a comma or a closing bracket should be here")
            }
        }
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        index += 1
        let start = index
        // The common case: no escape, copied as it is.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                guard let string = String(validating: text, as: UTF8.self) else { throw JSONParseError(offset: start, reason: "a string that is not UTF-8") }
                return string
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw error("a control character in a string") }
            index += 1
        }
        var text = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let string = String(validating: text, as: UTF8.self) else { throw JSONParseError(offset: start, reason: "a string that is not UTF-8") }
                return string
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw error("the text ends inside an escape") }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escaped)
                case UInt8(ascii: "b"): text.append(0x08)
                case UInt8(ascii: "f"): text.append(0x0C)
                case UInt8(ascii: "n"): text.append(0x0A)
                case UInt8(ascii: "r"): text.append(0x0D)
                case UInt8(ascii: "t"): text.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hexQuad()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                            throw error("a lone surrogate in a string")
                        }
                        index += 2
                        let low = try hexQuad()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("a lone surrogate in a string") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw error("a lone surrogate in a string") }
                    text.append(contentsOf: String(Character(unicode)).utf8)
                default: throw error("an unknown escape")
                }
            default:
                guard byte >= 0x20 else { throw error("a control character in a string") }
                text.append(byte)
                index += 1
            }
        }
        throw error("the text ends inside a string")
    }

    private mutating func hexQuad() throws(JSONParseError) -> UInt32 {
        guard bytes.count - index >= 4 else { throw error("the text ends inside an escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("a \\u escape needs four hexadecimal digits")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private mutating func parseNumber() throws(JSONParseError) -> CompactNode {
        let start = index
        let negative = bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        func digits() -> Int {
            let first = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - first
        }
        let integerStart = index
        let integerDigits = digits()
        guard integerDigits > 0 else { throw error("a number needs digits") }
        guard integerDigits == 1 || bytes[integerStart] != UInt8(ascii: "0") else { throw JSONParseError(offset: start, reason: "a number with a leading zero") }
        var isInteger = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw error("a fraction needs digits") }
            isInteger = false
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw error("an exponent needs digits") }
            isInteger = false
        }
        if isInteger {
            var magnitude: UInt64 = 0
            var fits = true
            for position in integerStart..<index {
                let (times, overflowA) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, overflowB) = times.addingReportingOverflow(UInt64(bytes[position] - UInt8(ascii: "0")))
                if overflowA || overflowB { fits = false; break }
                magnitude = sum
            }
            if fits, !negative { return .unsigned(magnitude) }
            if fits, magnitude == 0 { return CompactNode.unsigned(0) }
            if fits, magnitude <= UInt64(Int64.max) { return CompactNode.negative(-Int64(magnitude)) }
            if fits, magnitude == UInt64(Int64.max) + 1 { return CompactNode.negative(Int64.min) }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw JSONParseError(offset: start, reason: "a number out of range") }
        return .double(value)
    }
}

/// Why text is not JSON.
public struct JSONParseError: Error, Equatable, CustomStringConvertible {
    /// Where in the text.
    public var offset: Int
    /// What is wrong there.
    public var reason: String

    public var description: String { "not JSON at byte \(offset): \(reason)" }
}
