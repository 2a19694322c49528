/// A moment in UTC with microsecond precision: microseconds since 1970-01-01T00:00:00Z.
///
/// Written as RFC 3339 (`2026-11-27T11:01:20.123456Z`). The journal never reads a clock inside
/// its pure parts: the writer stamps events, and decisions receive the time as an input.
public struct LedgerTimestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Microseconds since the Unix epoch.
    public var microseconds: Int64

    public init(microsecondsSinceEpoch: Int64) {
        self.microseconds = microsecondsSinceEpoch
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.microseconds < rhs.microseconds }

    /// Whole seconds since the epoch (rounded down).
    public var secondsSinceEpoch: Int64 { microseconds.floorDiv(1_000_000) }

    /// RFC 3339 in UTC with six fractional digits.
    public var rfc3339: String {
        let seconds = microseconds.floorDiv(1_000_000)
        // Wrapping: for the earliest representable time, seconds × 10⁶ alone is out of range; the
        // difference (0 to 999,999) is not.
        let micros = microseconds &- seconds &* 1_000_000
        let days = seconds.floorDiv(86_400)
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = Self.civil(fromDays: days)
        guard (0...9999).contains(year) else { return Self.rfc3339(year: year, month, day, secondOfDay, micros) }
        // Written digit by digit into the string's own storage: events, projection values and their
        // encodings write a time each, and joining fourteen padded pieces made as many strings.
        return String(unsafeUninitializedCapacity: Self.rfc3339Length) { buffer in
            func put(_ value: Int64, width: Int, at end: Int) {
                var value = value
                for position in stride(from: end - 1, through: end - width, by: -1) {
                    buffer[position] = UInt8(truncatingIfNeeded: 48 + value % 10)
                    value /= 10
                }
            }
            put(year, width: 4, at: 4)
            buffer[4] = UInt8(ascii: "-")
            put(month, width: 2, at: 7)
            buffer[7] = UInt8(ascii: "-")
            put(day, width: 2, at: 10)
            buffer[10] = UInt8(ascii: "T")
            put(secondOfDay / 3600, width: 2, at: 13)
            buffer[13] = UInt8(ascii: ":")
            put(secondOfDay / 60 % 60, width: 2, at: 16)
            buffer[16] = UInt8(ascii: ":")
            put(secondOfDay % 60, width: 2, at: 19)
            buffer[19] = UInt8(ascii: ".")
            put(micros, width: 6, at: 26)
            buffer[26] = UInt8(ascii: "Z")
            return Self.rfc3339Length
        }
    }

    /// The length of ``rfc3339`` for the years 0 to 9999.
    static let rfc3339Length = 27

    /// ``rfc3339`` for years outside 0 to 9999, which take another width (a sign, a fifth digit).
    private static func rfc3339(year: Int64, _ month: Int64, _ day: Int64, _ secondOfDay: Int64, _ micros: Int64) -> String {
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(micros, 6))Z"
    }

    public var description: String { rfc3339 }

    /// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`); `nil` if it is not that.
    /// Fractions beyond microseconds are truncated.
    public init?(rfc3339 text: String) {
        var text = text
        // Read in place (`withUTF8` copies only a string that is not stored contiguously).
        guard let microseconds = text.withUTF8({ Self.microseconds(rfc3339: $0) }) else { return nil }
        self.microseconds = microseconds
    }

    private static func microseconds(rfc3339 chars: UnsafeBufferPointer<UInt8>) -> Int64? {
        var index = 0
        func number(_ width: Int) -> Int64? {
            guard index + width <= chars.count else { return nil }
            var value: Int64 = 0
            for char in chars[index..<index + width] {
                guard char >= 48, char <= 57 else { return nil }
                value = value * 10 + Int64(char - 48)
            }
            index += width
            return value
        }
        func expect(_ options: String) -> Bool {
            guard index < chars.count, options.utf8.contains(chars[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect("Tt "), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
            let second = number(2)
        else { return nil }
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else {
            return nil
        }
        var micros: Int64 = 0
        if index < chars.count, chars[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < chars.count, chars[index] >= 48, chars[index] <= 57 {
                if digits < 6 { micros = micros * 10 + Int64(chars[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 6) { micros *= 10 }
        }
        var offsetSeconds: Int64 = 0
        guard index < chars.count else { return nil }
        if chars[index] == UInt8(ascii: "Z") || chars[index] == UInt8(ascii: "z") {
            index += 1
        } else {
            let negative = chars[index] == UInt8(ascii: "-")
            guard expect("+-"), let offsetHour = number(2), expect(":"), let offsetMinute = number(2) else {
                return nil
            }
            offsetSeconds = (offsetHour * 3600 + offsetMinute * 60) * (negative ? -1 : 1)
        }
        guard index == chars.count else { return nil }
        let days = Self.days(fromCivil: year, month, day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return seconds * 1_000_000 + micros
    }

    // Howard Hinnant's days-from-civil algorithms (public domain), proleptic Gregorian calendar.
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = y.floorDiv(400)
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = z.floorDiv(146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension Int64 {
    func floorDiv(_ divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

extension LedgerTimestamp: Codable {
    /// Encoded as RFC 3339 text.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = LedgerTimestamp(rfc3339: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not RFC 3339: \(text)"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rfc3339)
    }

    /// This time plus `microseconds`, saturating at the ends of the range instead of overflowing.
    public func adding(microseconds delta: Int64) -> LedgerTimestamp {
        let (sum, overflow) = microseconds.addingReportingOverflow(delta)
        return LedgerTimestamp(microsecondsSinceEpoch: overflow ? (delta > 0 ? .max : .min) : sum)
    }

    /// This time plus `seconds`, saturating at the ends of the range instead of overflowing.
    public func adding(seconds: Int) -> LedgerTimestamp {
        let (product, overflow) = Int64(clamping: seconds).multipliedReportingOverflow(by: 1_000_000)
        return adding(microseconds: overflow ? (seconds > 0 ? .max : .min) : product)
    }
}
