import Foundation
import LedgerCore
import Testing
@testable import LedgerJournal
@testable import LedgerLMDB

/// The mapped journal's pages can be let go of: after a read of the whole journal they count in the
/// process's file-backed resident memory; after ``Journal/releaseResidentPages()`` they do not, and the
/// journal reads the same.
@Suite("Letting go of the journal's mapped pages")
struct ResidentPagesTests {
    /// The resident size of this process's mappings of `file` (`/proc/self/smaps`, which walks the page
    /// tables: exact, unlike the process-wide counters of `/proc/self/status`), in bytes.
    static func resident(of file: String) throws -> Int {
        // Read to the end: `String(contentsOfFile:)` stops at the size procfs reports for the file.
        let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/smaps"))
        defer { try? handle.close() }
        let smaps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        var inFile = false
        var total = 0
        for line in smaps.split(separator: "\n") {
            if let first = line.first, first.isHexDigit, line.contains("-"), line.split(separator: " ").count >= 5 {
                inFile = line.hasSuffix(" " + file)
            } else if inFile, line.hasPrefix("Rss:") {
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                total += (fields.count > 1 ? Int(fields[1]) ?? 0 : 0) * 1024
            }
        }
        return total
    }

    @Test("a read of 32 MB of events maps its pages; releasing them drops file-backed memory, and reads still see every event")
    func release() async throws {
        guard FileManager.default.fileExists(atPath: "/proc/self/status") else { return }
        let temp = TemporaryDirectory("resident")
        defer { withExtendedLifetime(temp) {} }
        let journal = try openJournal(temp.journal, initialMapSize: 128 << 20)
        let filler = [UInt8](repeating: UInt8(ascii: "x"), count: 4000)
        for batch in 0..<8 {
            let drafts = (0..<1000).map { index in
                EventDraft(type: "test.big", payload: Array("{\"n\":\(batch * 1000 + index),\"f\":\"".utf8) + filler + Array("\"}".utf8))
            }
            try await journal.appendAll(drafts)
        }
        func readAll() throws -> (count: Int, bytes: Int) {
            try journal.read { snapshot in
                var count = 0
                var bytes = 0
                try snapshot.forEachEvent { envelope in
                    count += 1
                    bytes += envelope.payload.count
                    return true
                }
                return (count, bytes)
            }
        }
        let first = try readAll()
        #expect(first.count == 8001)
        let file = URL(fileURLWithPath: temp.journal + "/data.mdb").resolvingSymlinksInPath().path
        let mapped = try Self.resident(of: file)
        journal.releaseResidentPages()
        let released = try Self.resident(of: file)
        #expect(mapped > 24 << 20 && released < 1 << 20, "the journal's mapped pages: \(mapped >> 10) KB resident before, \(released >> 10) KB after")
        let again = try readAll()
        #expect(again.count == first.count && again.bytes == first.bytes)
        await journal.close()
    }
}
