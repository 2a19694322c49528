import LedgerCore
import Testing

@Suite("Base64: both alphabets, strict decoding")
struct Base64Tests {
    @Test("Every length round-trips in both variants; the URL-safe text has no padding and no + or /")
    func roundTrip() {
        for length in 0..<70 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 251) }
            let standard = Base64.encode(bytes)
            let url = Base64.encode(bytes, variant: .urlSafeUnpadded)
            #expect(standard.utf8.count % 4 == 0)
            #expect(!url.contains("=") && !url.contains("+") && !url.contains("/"))
            #expect(Base64.decode(standard) == bytes)
            #expect(Base64.decode(url, variant: .urlSafeUnpadded) == bytes)
            // The URL-safe text is the standard one with the two characters swapped and the padding dropped.
            let swapped = String(standard.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 }.filter { $0 != "=" })
            #expect(url == swapped)
            // From a buffer, without a copy: the same text.
            #expect(bytes.withUnsafeBufferPointer { Base64.encode($0) } == standard)
            #expect(bytes.withUnsafeBufferPointer { Base64.encode($0, variant: .urlSafeUnpadded) } == url)
        }
    }

    @Test("Known vectors (RFC 4648 §10 and bytes that use the two alphabet-specific characters)")
    func vectors() {
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8=")
        #expect(Base64.encode(Array("fo".utf8), variant: .urlSafeUnpadded) == "Zm8")
        #expect(Base64.encode([0xfb, 0xff]) == "+/8=")
        #expect(Base64.encode([0xfb, 0xff], variant: .urlSafeUnpadded) == "-_8")
    }

    @Test("Text that is not exactly the variant is refused", arguments: [
        ("Zm8=", Base64.Variant.urlSafeUnpadded),  // padding in the unpadded variant
        ("+/8", .urlSafeUnpadded),  // the standard alphabet's characters
        ("-_8=", .standard),  // the URL-safe characters in the standard variant
        ("Zm8", .standard),  // missing padding
        ("Zm9", .urlSafeUnpadded),  // unused bits not zero
        ("Zm9vY", .urlSafeUnpadded),  // a length no encoding has
        ("Zm8 ", .urlSafeUnpadded),  // trailing garbage
        ("Zm\u{0}8", .urlSafeUnpadded),
    ])
    func refused(text: String, variant: Base64.Variant) {
        #expect(Base64.decode(text, variant: variant) == nil)
    }
}
