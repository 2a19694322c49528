import Testing

@testable import AuthCore

@Suite("Finding bytes within a range of bytes (the scans for sealed values and trace ids)")
struct ByteSearchTests {
    /// The definition: the first index in `range` where all of `needle` lies within `range`.
    private func reference(_ haystack: [UInt8], _ needle: [UInt8], _ range: Range<Int>) -> Int? {
        guard !needle.isEmpty, needle.count <= range.count else { return nil }
        return (range.lowerBound...(range.upperBound - needle.count)).first { Array(haystack[$0..<$0 + needle.count]) == needle }
    }

    @Test("the first occurrence wholly inside the range, as a plain scan finds it")
    func matchesThePlainScan() {
        let haystack = Array("aab\"trace_id\"x\"trace_id\"tra\"t".utf8)
        let needles = ["\"trace_id\"", "a", "ab", "aab", "t", "\"t", "tra", "x\"", "zz", "\"trace_id\"x\"trace_id\"tra\"t!"].map { Array($0.utf8) }
        for needle in needles {
            for lower in 0...haystack.count {
                for upper in lower...haystack.count {
                    #expect(
                        haystack.firstIndex(of: needle, in: lower..<upper) == reference(haystack, needle, lower..<upper),
                        "\(String(decoding: needle, as: UTF8.self)) in \(lower)..<\(upper)")
                }
            }
        }
    }

    @Test("an occurrence that runs past the range's end is not found; an empty needle is never found")
    func edges() {
        let haystack = Array("xxabc".utf8)
        #expect(haystack.firstIndex(of: Array("abc".utf8), in: 0..<5) == 2)
        #expect(haystack.firstIndex(of: Array("abc".utf8), in: 0..<4) == nil)
        #expect(haystack.firstIndex(of: Array("abc".utf8), in: 3..<5) == nil)
        #expect(haystack.firstIndex(of: [], in: 0..<5) == nil)
        #expect([UInt8]().firstIndex(of: Array("a".utf8), in: 0..<0) == nil)
    }
}
