import LedgerCore
import Testing

@Suite("Hexadecimal: lower-case rendering, from any sequence and straight from a buffer with a prefix")
struct HexTests {
    @Test("Every byte renders as its two lower-case digits, alike from an array, a slice, a lazy sequence and a buffer")
    func everyByte() {
        let bytes = (0...255).map(UInt8.init)
        let expected = bytes.map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
        }.joined()
        #expect(Hex.encode(bytes) == expected)
        #expect(Hex.encode(bytes[16...]) == String(expected.dropFirst(32)))
        #expect(Hex.encode(bytes.lazy.map { $0 }) == expected)
        #expect(bytes.withUnsafeBufferPointer { Hex.encode($0) } == expected)
        #expect(Hex.decode(expected) == bytes)
        #expect(Hex.encode([UInt8]()) == "")
    }

    @Test("A prefix is written before the digits, in the one string")
    func prefixed() {
        let bytes: [UInt8] = [0x00, 0xAB, 0xFF]
        #expect(bytes.withUnsafeBufferPointer { Hex.encode($0, prefix: "hmac-sha256:") } == "hmac-sha256:00abff")
        #expect([UInt8]().withUnsafeBufferPointer { Hex.encode($0, prefix: "p:") } == "p:")
    }
}
