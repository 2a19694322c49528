import Foundation
import Testing
@testable import AuthServer

@Suite("The server's resident memory figures (/proc/self/status)")
struct ResidentMemoryTests {
    @Test("RssAnon and RssFile are read in bytes; a text without them gives nothing")
    func parse() {
        let status = "Name:\tauthledger\nVmRSS:\t  300000 kB\nRssAnon:\t    7168 kB\nRssFile:\t  252928 kB\nRssShmem:\t       0 kB\n"
        #expect(ResidentMemory.parse(status) == ResidentMemory(anonymous: 7168 * 1024, fileBacked: 252928 * 1024))
        #expect(ResidentMemory.parse("Name:\tx\nVmRSS:\t1 kB\n") == nil)
    }

    @Test("on Linux the process's own figures are there and plausible")
    func current() throws {
        guard FileManager.default.fileExists(atPath: "/proc/self/status") else { return }
        let memory = try #require(ResidentMemory.current())
        #expect(memory.anonymous > 0 && memory.fileBacked > 0)
    }
}
