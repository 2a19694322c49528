import CSodium

/// Hexadecimal text, lower case on output, either case on input.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Lower-case hexadecimal of `bytes`.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        if let text = bytes.withContiguousStorageIfAvailable({ encode($0) }) { return text }
        return encode(Array(bytes))
    }

    /// `prefix`, then the lower-case hexadecimal of `bytes`, written straight into the string's storage
    /// (one allocation: hashes and pseudonyms are rendered for every event a rebuild reads).
    public static func encode(_ bytes: UnsafeBufferPointer<UInt8>, prefix: StaticString = "") -> String {
        let prefixCount = prefix.utf8CodeUnitCount
        return String(unsafeUninitializedCapacity: prefixCount + bytes.count * 2) { text in
            if prefixCount > 0 {
                _ = text.initialize(from: UnsafeBufferPointer(start: prefix.utf8Start, count: prefixCount))
            }
            var index = prefixCount
            for byte in bytes {
                text[index] = digits[Int(byte >> 4)]
                text[index + 1] = digits[Int(byte & 0x0f)]
                index += 2
            }
            return index
        }
    }

    /// The bytes of an even-length hexadecimal string, or `nil` if it is not one.
    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = value(utf8[index]), let low = value(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func value(_ char: UInt8) -> UInt8? {
        switch char {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return char - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return char - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return char - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Base64 (RFC 4648): the standard alphabet with padding (§4), as the signed-note format uses it, and
/// the URL-safe alphabet without padding (§5) of JWTs, JWKs and random identifiers.
///
/// libsodium's constant-time codec is used, so that decoding key material leaks nothing through timing.
public enum Base64 {
    /// The two alphabets this codec writes and reads.
    public enum Variant: Sendable {
        /// `+` and `/`, padded with `=` to a multiple of four characters.
        case standard
        /// `-` and `_`, without padding.
        case urlSafeUnpadded

        var sodiumVariant: Int32 {
            switch self {
            case .standard: sodium_base64_VARIANT_ORIGINAL
            case .urlSafeUnpadded: sodium_base64_VARIANT_URLSAFE_NO_PADDING
            }
        }
    }

    /// Base64 of `bytes` in `variant` (standard, with padding, unless told).
    public static func encode(_ bytes: [UInt8], variant: Variant = .standard) -> String {
        bytes.withUnsafeBufferPointer { encode($0, variant: variant) }
    }

    /// Base64 of the bytes in `input` in `variant`, without copying them first.
    public static func encode(_ input: UnsafeBufferPointer<UInt8>, variant: Variant = .standard) -> String {
        _ = Sodium.ready
        let length = sodium_base64_encoded_len(input.count, variant.sodiumVariant)
        // `length` counts the terminating NUL, which is not part of the text.
        return String(unsafeUninitializedCapacity: length) { text in
            text.withMemoryRebound(to: CChar.self) { chars in
                _ = sodium_bin2base64(chars.baseAddress!, length, input.baseAddress, input.count, variant.sodiumVariant)
            }
            return length - 1
        }
    }

    /// Calls `body` with the base64 text of `input` in `variant`, rendered into a temporary buffer (on
    /// the stack when small) rather than a string: for checks of the text that keep none of it.
    public static func withEncoded<Result>(
        _ input: UnsafeBufferPointer<UInt8>, variant: Variant = .standard, _ body: (UnsafeBufferPointer<UInt8>) throws -> Result
    ) rethrows -> Result {
        _ = Sodium.ready
        let length = sodium_base64_encoded_len(input.count, variant.sodiumVariant)
        return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length) { text in
            text.withMemoryRebound(to: CChar.self) { chars in
                _ = sodium_bin2base64(chars.baseAddress!, length, input.baseAddress, input.count, variant.sodiumVariant)
            }
            // `length` counts the terminating NUL, which is not part of the text.
            return try body(UnsafeBufferPointer(rebasing: text[0..<(length - 1)]))
        }
    }

    /// The bytes of base64 text in `variant` (standard, with padding, unless told), or `nil` if it is not
    /// exactly that: a character outside the alphabet, a wrong length or padding, or non-zero unused bits.
    public static func decode(_ text: String, variant: Variant = .standard) -> [UInt8]? {
        _ = Sodium.ready
        var text = text
        return text.withUTF8 { input in
            var out = [UInt8](repeating: 0, count: input.count / 4 * 3 + 3)
            var written = 0
            var end: UnsafePointer<CChar>? = nil
            let consumed: Int? = input.withMemoryRebound(to: CChar.self) { chars in
                let status = sodium_base642bin(
                    &out, out.count, chars.baseAddress, chars.count, nil, &written, &end, variant.sodiumVariant)
                guard status == 0 else { return nil }
                // libsodium stops at the first invalid character when `end` is given: what follows is refused.
                guard let end, let start = chars.baseAddress else { return chars.count }
                return start.distance(to: end)
            }
            guard consumed == input.count else { return nil }
            out.removeSubrange(written...)
            return out
        }
    }
}
