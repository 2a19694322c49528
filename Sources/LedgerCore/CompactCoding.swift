/// The compact canonical binary encoding of `Codable` values (docs/journal-format.md, "Compact values"):
/// the same value tree as ``CanonicalJSONEncoder`` writes, in tagged binary instead of text.
///
/// Every value starts with a one-byte tag. Numbers and lengths are unsigned LEB128 varints of minimal
/// length. Object members are sorted by the UTF-8 bytes of their names, without repeats. Strings that are
/// a canonical rendering of bytes or of a time are stored as those bytes or that time, and read back as
/// the same text: lower-case hexadecimal of at least 16 digits, standard base64 with padding and URL-safe
/// base64 without padding of at least 16 characters, and RFC 3339 times as ``LedgerTimestamp`` writes them;
/// in a value whose top is an object of the named form, keyed pseudonyms too. Which form a string takes
/// is a function of the string and of that (``StringForm/of(_:pseudonyms:)``), and objects take one form
/// throughout a value, so every value has exactly one encoding in each form, and the decoder refuses any
/// other.
///
/// Hand-written: no package in this project's offline list encodes `Codable` values canonically in binary
/// (CBOR's deterministic profile, RFC 8949 §4.2, would still spell hashes and times out as text).
public enum CompactCoding {
    /// The one-byte tags.
    public enum Tag: UInt8, Sendable {
        case null = 0x00
        case `false` = 0x01
        case `true` = 0x02
        /// A varint.
        case unsigned = 0x03
        /// A varint of `-1 - n`.
        case negative = 0x04
        /// Eight bytes, IEEE 754 big-endian; finite, and not a whole number below 2^53 (those are integers).
        case double = 0x05
        /// A varint byte count, then UTF-8.
        case string = 0x06
        /// A varint byte count, then the bytes of a lower-case hexadecimal string.
        case hex = 0x07
        /// A varint byte count, then the bytes of a standard base64 string (with padding).
        case base64 = 0x08
        /// A varint byte count, then the bytes of a URL-safe base64 string without padding.
        case base64URL = 0x09
        /// A zigzag varint of microseconds since the epoch: an RFC 3339 time as ``LedgerTimestamp`` writes it.
        case time = 0x0A
        /// A varint count, then the items.
        case array = 0x0B
        /// A varint count, then each member: a varint byte count, the name's UTF-8, the value.
        case object = 0x0C
        /// An object in the named form: a varint count, then each member: a varint `n` — odd, the name is
        /// entry `(n - 1) / 2` of ``CompactCoding/memberNames``; even, `n / 2` bytes of UTF-8 follow, a name
        /// not in the table — then the value. Every object of a value takes the same form.
        case namedObject = 0x0D
        /// 32 bytes: a keyed pseudonym, `hmac-sha256:` and the 64 lower-case hexadecimal digits of those
        /// bytes (docs/journal-format.md §7), in a value whose top is an object of the named form.
        case pseudonym = 0x0E
    }

    /// The text before the digits of a keyed pseudonym (``Tag/pseudonym``).
    public static let pseudonymPrefix = pseudonymPrefixText.description

    /// ``pseudonymPrefix`` as a static string, to render pseudonyms without a copy.
    static let pseudonymPrefixText: StaticString = "hmac-sha256:"

    /// The shortest string that is stored as bytes (hexadecimal digits or base64 characters).
    public static let shortestByteString = 16

    /// How a string is stored.
    public enum StringForm: Equatable, Sendable {
        case plain
        /// A keyed pseudonym's 32 bytes (``Tag/pseudonym``).
        case pseudonym([UInt8])
        case hex([UInt8])
        case base64([UInt8])
        case base64URL([UInt8])
        case time(LedgerTimestamp)

        /// The form of `string`: the first of hexadecimal, base64, URL-safe base64 and time that renders
        /// back to exactly `string`, else plain; with `pseudonyms` (in a value whose top is an object of
        /// the named form), a keyed pseudonym first.
        public static func of(_ string: String, pseudonyms: Bool = false) -> StringForm {
            let utf8 = string.utf8
            let count = utf8.count
            let prefixCount = CompactCoding.pseudonymPrefix.utf8.count
            if pseudonyms, count == prefixCount + 64, string.hasPrefix(CompactCoding.pseudonymPrefix),
                utf8.dropFirst(prefixCount).allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }),
                let bytes = Hex.decode(String(string.dropFirst(prefixCount)))
            {
                return .pseudonym(bytes)
            }
            if count == 27, utf8.last == UInt8(ascii: "Z"), let time = LedgerTimestamp(rfc3339: string), time.rfc3339 == string,
                CompactReader.renderedTimes.contains(time.microseconds)
            {
                return .time(time)
            }
            guard count >= shortestByteString else { return .plain }
            var isHex = count % 2 == 0
            var standard = count % 4 == 0
            var urlSafe = count % 4 != 1
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"): continue
                case UInt8(ascii: "g")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): isHex = false
                case UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="): isHex = false; urlSafe = false
                case UInt8(ascii: "-"), UInt8(ascii: "_"): isHex = false; standard = false
                default: return .plain
                }
            }
            if isHex, let bytes = Hex.decode(string) { return .hex(bytes) }
            // libsodium's decoder refuses non-zero unused bits and misplaced padding: what it accepts
            // re-encodes to the same text.
            if standard, let bytes = Base64.decode(string, variant: .standard) { return .base64(bytes) }
            if urlSafe, let bytes = Base64.decode(string, variant: .urlSafeUnpadded) { return .base64URL(bytes) }
            return .plain
        }
    }

    /// The compact encoding of `value`, in the named form (objects tagged ``Tag/namedObject``): how
    /// this release writes every compact value.
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        try CompactWriter.bytes(of: CanonicalJSONEncoder.node(of: value, codingPath: []))
    }

    /// How a member's name is written inside an object of each form: in ``Tag/object``, its byte count
    /// (a varint), then its bytes; in ``Tag/namedObject``, its position in ``memberNames`` or its byte
    /// count, as the tag describes. For readers that look for a member in encoded bytes before decoding
    /// them (a journal holds values of both forms).
    public static func memberNameForms(_ name: String) -> [[UInt8]] {
        ObjectForm.allCases.map { form in
            var writer = CompactWriter(form: form)
            writer.writeName(name)
            return writer.bytes
        }
    }

    /// The two forms of objects: members named by their text (every compact value written before the
    /// named form), or by their position in ``memberNames`` where they have one.
    enum ObjectForm: CaseIterable {
        case plain
        case named

        var tag: Tag { self == .plain ? .object : .namedObject }
    }

    /// Decodes a `T` from its compact encoding.
    ///
    /// - Throws: ``CompactDecodingError`` when the bytes are not a canonical compact value, or
    ///   `DecodingError` when the value does not have the shape of a `T`.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let node = try CompactReader.value(of: bytes)
        return try CompactNodeDecoder.decode(type, from: node, codingPath: [])
    }
}

/// Why bytes are not a canonical compact value.
public struct CompactDecodingError: Error, Equatable, CustomStringConvertible {
    /// Where in the bytes.
    public var offset: Int
    /// What is wrong there.
    public var reason: String

    public var description: String { "not a compact value at byte \(offset): \(reason)" }
}

// MARK: - Writing

struct CompactWriter {
    var bytes: [UInt8] = []
    /// How objects name their members.
    let form: CompactCoding.ObjectForm

    /// Whether keyed pseudonyms take their own form (``CompactCoding/Tag/pseudonym``): in a value whose
    /// top is an object of the named form.
    private var pseudonyms = false

    init(form: CompactCoding.ObjectForm) {
        self.form = form
        bytes.reserveCapacity(192)
    }

    /// The bytes of `node` as a whole value, as this release writes compact values (the named form).
    static func bytes(of node: JSONNode) throws -> [UInt8] {
        var writer = CompactWriter(form: .named)
        if case .object = node { writer.pseudonyms = true }
        try writer.write(node)
        return writer.bytes
    }

    mutating func write(_ node: JSONNode) throws {
        switch node {
        case .null: bytes.append(CompactCoding.Tag.null.rawValue)
        case .bool(let value): bytes.append(value ? CompactCoding.Tag.true.rawValue : CompactCoding.Tag.false.rawValue)
        case .integer(let value):
            if value >= 0 {
                tagged(.unsigned, UInt64(value))
            } else {
                tagged(.negative, UInt64(bitPattern: ~value))
            }
        case .unsigned(let value): tagged(.unsigned, value)
        case .double(let value):
            guard value.isFinite else { throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "not a finite number")) }
            if JSONNode.isWrittenAsInteger(value) {
                try write(.integer(Int64(value)))
            } else {
                bytes.append(CompactCoding.Tag.double.rawValue)
                let pattern = value.bitPattern
                for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: pattern >> UInt64(shift))) }
            }
        case .string(let value): write(string: value)
        case .array(let box):
            tagged(.array, UInt64(box.items.count))
            for item in box.items { try write(item) }
        case .object(let box):
            let members = inNameOrder(box.members)
            tagged(form.tag, UInt64(members.count))
            for member in members {
                writeName(member.key)
                try write(member.value)
            }
        }
    }

    mutating func writeName(_ name: String) {
        switch form {
        case .plain:
            varint(UInt64(name.utf8.count))
        case .named:
            if let position = CompactCoding.memberNamePositions[name] {
                varint(UInt64(position) << 1 | 1)
                return
            }
            varint(UInt64(name.utf8.count) << 1)
        }
        bytes.append(contentsOf: name.utf8)
    }

    private mutating func write(string: String) {
        switch CompactCoding.StringForm.of(string, pseudonyms: pseudonyms) {
        case .plain:
            tagged(.string, UInt64(string.utf8.count))
            bytes.append(contentsOf: string.utf8)
        case .pseudonym(let raw):
            bytes.append(CompactCoding.Tag.pseudonym.rawValue)
            bytes.append(contentsOf: raw)
        case .hex(let raw): tagged(.hex, UInt64(raw.count)); bytes.append(contentsOf: raw)
        case .base64(let raw): tagged(.base64, UInt64(raw.count)); bytes.append(contentsOf: raw)
        case .base64URL(let raw): tagged(.base64URL, UInt64(raw.count)); bytes.append(contentsOf: raw)
        case .time(let time):
            let micros = time.microseconds
            tagged(.time, UInt64(bitPattern: (micros << 1) ^ (micros >> 63)))
        }
    }

    private mutating func tagged(_ tag: CompactCoding.Tag, _ value: UInt64) {
        bytes.append(tag.rawValue)
        varint(value)
    }

    private mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }
}

// MARK: - Reading

/// A decoded compact value.
enum CompactNode {
    case null
    case bool(Bool)
    case unsigned(UInt64)
    /// A negative integer.
    case negative(Int64)
    case double(Double)
    case string(String)
    /// A string stored in another form, with what it is rendered from.
    case time(LedgerTimestamp)
    case array([CompactNode])
    /// Members in the order of their names' bytes.
    case object([(key: String, value: CompactNode)])

    /// Whether this is a sealed value: an object with the member `sealed` equal to 1 (as ``JSONValue/isSealedValue``).
    var isSealedValue: Bool {
        guard case .object(let members) = self else { return false }
        for member in members where member.key == "sealed" {
            if case .unsigned(1) = member.value { return true }
        }
        return false
    }

    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .unsigned, .negative, .double: "a number"
        case .string, .time: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

struct CompactReader {
    /// Deeper nesting than this is refused (no value this project writes is nested a tenth as deep), so
    /// that hostile input cannot exhaust the stack.
    static let maximumDepth = 64

    /// The times of the years 0001 to 9999 (which render as `YYYY-MM-DDTHH:MM:SS.ffffffZ`), in
    /// microseconds: the ones ``CompactCoding/StringForm/of(_:pseudonyms:)`` stores under the time tag. (Year 0000
    /// renders too, but is left a plain string, as the Python verifier, whose dates start at year 1, reads it.)
    static let renderedTimes: ClosedRange<Int64> = -62_135_596_800_000_000...253_402_300_799_999_999

    /// Whether `text`, rendered from bytes stored under `tag` (hexadecimal, base64 or URL-safe base64),
    /// takes that form: `StringForm.of(text)` gives it. Decided from the text's length and characters:
    /// decoding it again to classify it, as `StringForm.of` does, was a tenth of a rebuild's time.
    /// `CompactCodingTests.renderedForms` holds the two to the same answer.
    static func rendersInItsForm(_ text: String, tag: CompactCoding.Tag) -> Bool {
        let utf8 = text.utf8
        return utf8.withContiguousStorageIfAvailable { rendersInItsForm(utf8: $0, tag: tag) }
            ?? Array(utf8).withUnsafeBufferPointer { rendersInItsForm(utf8: $0, tag: tag) }
    }

    /// ``rendersInItsForm(_:tag:)`` of the text's UTF-8.
    static func rendersInItsForm(utf8: UnsafeBufferPointer<UInt8>, tag: CompactCoding.Tag) -> Bool {
        guard utf8.count >= CompactCoding.shortestByteString else { return false }
        // Rendered hexadecimal is lower-case digits of even length: always its own form once long enough.
        guard tag != .hex else { return true }
        // A time has `:` and `.`, which neither base64 alphabet has; so the forms before base64 that the
        // text could take are hexadecimal (only `0-9a-f`, an even count) and, for URL-safe text, standard
        // base64 (a multiple of 4 characters without `-` or `_`, which then decodes and encodes back).
        var onlyHexDigits = true
        var urlOnlyCharacters = false
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"): continue
            case UInt8(ascii: "-"), UInt8(ascii: "_"): onlyHexDigits = false; urlOnlyCharacters = true
            default: onlyHexDigits = false
            }
        }
        if onlyHexDigits, utf8.count % 2 == 0 { return false }
        if tag == .base64URL, utf8.count % 4 == 0, !urlOnlyCharacters { return false }
        return true
    }

    private let bytes: [UInt8]
    private var offset = 0
    /// The form of the value's first object, which every other object must take.
    private var objectForm: CompactCoding.ObjectForm?
    /// Whether keyed pseudonyms take their own form: the value's top is an object of the named form.
    private let pseudonyms: Bool

    /// Top-level members that are read as ``sealedMarker`` when they are sealed values.
    private let sealedMembers: Set<String>?
    private let sealedMarker: String

    private init(_ bytes: [UInt8], sealedMembers: Set<String>?, sealedMarker: String) {
        self.bytes = bytes
        pseudonyms = bytes.first == CompactCoding.Tag.namedObject.rawValue
        self.sealedMembers = sealedMembers
        self.sealedMarker = sealedMarker
    }

    /// The value in `bytes`; with `sealedMembers`, each top-level member they name whose value is a
    /// sealed value (an object with the member `sealed` equal to 1) is read as the string `marker`
    /// instead, after being checked as any other value is, but without building it.
    static func value(
        of bytes: [UInt8], markingSealed sealedMembers: Set<String>? = nil, as marker: String = ""
    ) throws(CompactDecodingError) -> CompactNode {
        var reader = CompactReader(bytes, sealedMembers: sealedMembers, sealedMarker: marker)
        let node = try reader.value(depth: 0)
        guard reader.offset == bytes.count else { throw reader.error("\(bytes.count - reader.offset) bytes after the value") }
        return node
    }

    private func error(_ reason: String) -> CompactDecodingError { CompactDecodingError(offset: offset, reason: reason) }

    private mutating func byte() throws(CompactDecodingError) -> UInt8 {
        guard offset < bytes.count else { throw error("the bytes end inside a value") }
        defer { offset += 1 }
        return bytes[offset]
    }

    private mutating func varint() throws(CompactDecodingError) -> UInt64 {
        let start = offset
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 64, shift < 63 || next <= 1 else { throw CompactDecodingError(offset: start, reason: "a number beyond 64 bits") }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 {
                guard next != 0 || shift == 0 else { throw CompactDecodingError(offset: start, reason: "a number not in its shortest form") }
                return value
            }
            shift += 7
        }
    }

    private mutating func count() throws(CompactDecodingError) -> Int {
        let start = offset
        let value = try varint()
        // Every item or byte counted takes at least one byte: a larger count cannot be right.
        guard value <= UInt64(bytes.count - offset) else { throw CompactDecodingError(offset: start, reason: "a count larger than the bytes left") }
        return Int(value)
    }

    private mutating func raw(_ count: Int) -> [UInt8] {
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// What `render` makes of the next `count` bytes, read in place.
    private mutating func rendered<Result>(_ count: Int, _ render: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        defer { offset += count }
        return bytes.withUnsafeBufferPointer { render(UnsafeBufferPointer(rebasing: $0[offset..<offset + count])) }
    }

    /// The next `count` bytes as a string, `nil` when they are not UTF-8; read in place, with a quick
    /// path for ASCII (every member name, nearly every value), where validation and an array per string
    /// were a tenth of a rebuild.
    private mutating func text(_ count: Int) -> String? {
        defer { offset += count }
        return bytes.withUnsafeBufferPointer { buffer in
            let slice = UnsafeBufferPointer(rebasing: buffer[offset..<offset + count])
            if !slice.contains(where: { $0 >= 0x80 }) { return String(decoding: slice, as: UTF8.self) }
            return String(validating: slice, as: UTF8.self)
        }
    }


    /// A member's name, as objects of `form` write it, and its position in the member-name table when
    /// written as that.
    private mutating func name(_ form: CompactCoding.ObjectForm) throws(CompactDecodingError) -> (text: String, position: Int?) {
        let start = offset
        let length: Int
        switch form {
        case .plain:
            length = try count()
        case .named:
            let reference = try varint()
            if reference & 1 == 1 {
                let position = reference >> 1
                guard position < UInt64(CompactCoding.memberNames.count) else {
                    throw CompactDecodingError(offset: start, reason: "a member name beyond the table")
                }
                return (CompactCoding.memberNames[Int(position)], Int(position))
            }
            guard reference >> 1 <= UInt64(bytes.count - offset) else {
                throw CompactDecodingError(offset: start, reason: "a count larger than the bytes left")
            }
            length = Int(reference >> 1)
        }
        guard let name = text(length) else { throw CompactDecodingError(offset: start, reason: "a member name that is not UTF-8") }
        if form == .named, CompactCoding.memberNamePositions[name] != nil {
            throw CompactDecodingError(offset: start, reason: "a member name of the table written out")
        }
        return (name, nil)
    }

    /// The next value. Without `building`, it is checked exactly as when built, but what is returned is
    /// only a summary, built without containers or rendered strings (a plain string is still read, to
    /// check its form): scalars as read, strings and arrays as `null`, an object as the member `sealed`
    /// when that is 1 (so that the summary of a sealed value is one, ``CompactNode/isSealedValue``),
    /// else as an empty object.
    private mutating func value(depth: Int, building: Bool = true) throws(CompactDecodingError) -> CompactNode {
        guard depth <= Self.maximumDepth else { throw error("nested deeper than \(Self.maximumDepth)") }
        let start = offset
        let tagByte = try byte()
        guard let tag = CompactCoding.Tag(rawValue: tagByte) else { throw CompactDecodingError(offset: start, reason: "unknown tag \(tagByte)") }
        switch tag {
        case .null: return .null
        case .false: return .bool(false)
        case .true: return .bool(true)
        case .unsigned: return .unsigned(try varint())
        case .negative:
            let magnitude = try varint()
            guard magnitude <= UInt64(Int64.max) else { throw CompactDecodingError(offset: start, reason: "a negative number below -2^63") }
            return .negative(~Int64(magnitude))
        case .double:
            guard bytes.count - offset >= 8 else { throw error("the bytes end inside a number") }
            let pattern = raw(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let value = Double(bitPattern: pattern)
            guard value.isFinite, !JSONNode.isWrittenAsInteger(value) else {
                throw CompactDecodingError(offset: start, reason: "a number that is not finite, or whole and stored as a fraction")
            }
            return .double(value)
        case .string:
            let length = try count()
            guard let string = text(length) else { throw CompactDecodingError(offset: start, reason: "a string that is not UTF-8") }
            guard CompactCoding.StringForm.of(string, pseudonyms: pseudonyms) == .plain else {
                throw CompactDecodingError(offset: start, reason: "a string stored as text that has a shorter form")
            }
            return .string(string)
        case .pseudonym:
            guard pseudonyms else {
                throw CompactDecodingError(offset: start, reason: "a pseudonym's form outside a value whose top is a named object")
            }
            guard bytes.count - offset >= 32 else { throw error("the bytes end inside a pseudonym") }
            guard building else {
                offset += 32
                return .null
            }
            return .string(rendered(32) { Hex.encode($0, prefix: CompactCoding.pseudonymPrefixText) })
        case .hex, .base64, .base64URL:
            let length = try count()
            guard building else {
                // The same check, on the text rendered into a temporary buffer.
                let inItsForm = rendered(length) { data in
                    switch tag {
                    // Rendered hexadecimal is always in its form once long enough (see `rendersInItsForm`).
                    case .hex: data.count * 2 >= CompactCoding.shortestByteString
                    case .base64: Base64.withEncoded(data, variant: .standard) { Self.rendersInItsForm(utf8: $0, tag: tag) }
                    default: Base64.withEncoded(data, variant: .urlSafeUnpadded) { Self.rendersInItsForm(utf8: $0, tag: tag) }
                    }
                }
                guard inItsForm else { throw CompactDecodingError(offset: start, reason: "bytes stored in a form their text does not take") }
                return .null
            }
            let string: String = rendered(length) { data in
                switch tag {
                case .hex: Hex.encode(data)
                case .base64: Base64.encode(data, variant: .standard)
                default: Base64.encode(data, variant: .urlSafeUnpadded)
                }
            }
            // The form is a function of the string: bytes that render to a string of another form (too
            // short, or hexadecimal digits stored as base64) are not canonical.
            guard Self.rendersInItsForm(string, tag: tag) else {
                throw CompactDecodingError(offset: start, reason: "bytes stored in a form their text does not take")
            }
            return .string(string)
        case .time:
            let zigzag = try varint()
            let micros = Int64(bitPattern: zigzag >> 1) ^ -Int64(bitPattern: zigzag & 1)
            guard Self.renderedTimes.contains(micros) else {
                throw CompactDecodingError(offset: start, reason: "a time outside RFC 3339's years")
            }
            return .time(LedgerTimestamp(microsecondsSinceEpoch: micros))
        case .array:
            let items = try count()
            guard building else {
                for _ in 0..<items { _ = try value(depth: depth + 1, building: false) }
                return .null
            }
            var values: [CompactNode] = []
            values.reserveCapacity(items)
            for _ in 0..<items { values.append(try value(depth: depth + 1)) }
            return .array(values)
        case .object, .namedObject:
            let form: CompactCoding.ObjectForm = tag == .object ? .plain : .named
            guard objectForm == nil || objectForm == form else {
                throw CompactDecodingError(offset: start, reason: "objects of both forms in one value")
            }
            objectForm = form
            let members = try count()
            var values: [(key: String, value: CompactNode)] = []
            if building { values.reserveCapacity(members) }
            var previous: (key: String, position: Int?)?
            var sealed = false
            for _ in 0..<members {
                let keyStart = offset
                let (key, position) = try name(form)
                if let previous {
                    // Two names of the table compare by their ranks, without reading their text.
                    let inOrder =
                        if let position, let previousPosition = previous.position {
                            CompactCoding.memberNameRanks[previousPosition] < CompactCoding.memberNameRanks[position]
                        } else {
                            previous.key.utf8.lexicographicallyPrecedes(key.utf8)
                        }
                    guard inOrder else { throw CompactDecodingError(offset: keyStart, reason: "members out of order or repeated") }
                }
                previous = (key, position)
                // At the top, a member named in `sealedMembers` that is a sealed value is read as the
                // marker: checked without building it, then built after all when it is not one.
                if building, depth == 0, let sealedMembers, sealedMembers.contains(key) {
                    let (valueStart, form) = (offset, objectForm)
                    if try value(depth: 1, building: false).isSealedValue {
                        values.append((key, .string(sealedMarker)))
                        continue
                    }
                    (offset, objectForm) = (valueStart, form)
                }
                let member = try value(depth: depth + 1, building: building)
                if building {
                    values.append((key, member))
                } else if key == "sealed", case .unsigned(1) = member {
                    sealed = true
                }
            }
            guard building else { return .object(sealed ? [("sealed", .unsigned(1))] : []) }
            return .object(values)
        }
    }
}
