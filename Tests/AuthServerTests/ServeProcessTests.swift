import Foundation
import Synchronization
import Testing

/// `authledger serve` as a process: what runs beside the HTTP server must not stop it.
@Suite("authledger serve as a process")
struct ServeProcessTests {
    /// Under tools/sanitizers (which sets these) the server process is sanitized too: hashing the demo
    /// user's password (Argon2id, 64 MB) then takes minutes of a core and starves the timing-sensitive suites
    /// beside it. `tools/test` runs this test unsanitized.
    static let underSanitizer = ["TSAN_OPTIONS", "ASAN_OPTIONS"].contains { ProcessInfo.processInfo.environment[$0] != nil }

    @Test(
        "with no memory bound (--max-mapped-memory 0) its watcher has nothing to do and returns: the server keeps serving, and SIGTERM closes the journal",
        .disabled(if: underSanitizer, "a sanitized server process hashes the demo password for minutes; tools/test runs it"),
        .timeLimit(.minutes(2)))
    func servesWithoutMemoryBound() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/authledger-serve-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let process = Process()
        process.executableURL = RebuildCommandTests.products.appendingPathComponent("authledger")
        process.arguments = ["serve", "--journal", directory + "/journal", "--port", "0", "--max-mapped-memory", "0"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = Mutex("")
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            output.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let deadline = ContinuousClock.now + .seconds(60)
        while !output.withLock({ $0.contains("listening on") }), process.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(output.withLock { $0.contains("listening on") }, "it started: \(output.withLock { $0 })")
        try await Task.sleep(for: .seconds(2))
        #expect(process.isRunning, "still serving two seconds later: \(output.withLock { $0 })")
        process.terminate()
        process.waitUntilExit()
        pipe.fileHandleForReading.readabilityHandler = nil
        let rest = pipe.fileHandleForReading.readDataToEndOfFile()
        output.withLock { $0 += String(decoding: rest, as: UTF8.self) }
        #expect(process.terminationStatus == 0)
        #expect(output.withLock { $0.contains("journal closed") }, "\(output.withLock { $0 })")
    }
}
