import AuthCore
import Foundation
import HTTPTypes
import Testing

/// A small tmpfs for the journal (root only; where mounting is not allowed the test says so and is skipped).
final class SmallFilesystem: Sendable {
    let path: String

    static let available: Bool = {
        guard getuid() == 0, let probe = try? SmallFilesystem(megabytes: 1) else { return false }
        probe.unmount()
        return true
    }()

    init(megabytes: Int) throws {
        path = FileManager.default.temporaryDirectory.path + "/authledger-smallfs-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", path]
        mount.standardError = FileHandle.nullDevice
        try mount.run()
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else {
            try? FileManager.default.removeItem(atPath: path)
            throw POSIXError(.EPERM)
        }
    }

    /// Fills the filesystem, leaving about `free` bytes, with a file that ``release()`` removes.
    func fill(leaving free: Int) throws {
        var stats = statvfs()
        statvfs(path, &stats)
        let available = Int(stats.f_bavail) * Int(stats.f_frsize)
        _ = FileManager.default.createFile(atPath: path + "/filler", contents: Data(count: max(0, available - free)))
    }

    func release() {
        try? FileManager.default.removeItem(atPath: path + "/filler")
    }

    func unmount() {
        let umount = Process()
        umount.executableURL = URL(fileURLWithPath: "/bin/umount")
        umount.arguments = ["-l", path]  // lazy: detach now even if a file is still open
        try? umount.run()
        umount.waitUntilExit()
        try? FileManager.default.removeItem(atPath: path)
    }
}

@Suite("A full disk: 503 or temporarily_unavailable, nothing issued, and recovery when space returns")
struct DiskFullTests {
    @Test(
        "when the journal's filesystem fills up, nothing is issued; freeing space recovers without a restart",
        .enabled(if: SmallFilesystem.available, "needs root to mount a small tmpfs"))
    func diskFull() async throws {
        let filesystem = try SmallFilesystem(megabytes: 8)
        defer { filesystem.unmount() }
        let harness = try await ServerHarness(under: filesystem.path)
        let outcomes = OutcomeLog()
        try await harness.run { browser in
            _ = try await browser.authorize(webAppParameters())  // logged in and consented
            try filesystem.fill(leaving: 256 * 1024)
            var sawFailure = false
            for index in 0..<2000 where !sawFailure {
                let page = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters(state: "fill-\(index)")))
                if page.redirectParameters["code"] != nil {
                    outcomes.codes += 1
                } else {
                    sawFailure = true
                    // No code: a 503 page, or the client told temporarily_unavailable.
                    #expect(page.status == .serviceUnavailable || page.redirectParameters["error"] == "temporarily_unavailable", "\(page.status)")
                }
            }
            #expect(sawFailure, "the filesystem never filled up")
            #expect(try await browser.get("/healthz").status == .ok, "reads still work")
            filesystem.release()
            let recovered = try await browser.get("/authorize?" + FormEncoding.encode(webAppParameters(state: "after")))
            #expect(recovered.redirectParameters["code"] != nil, "the server recovers by itself once there is space")
        }
        // Every code a client saw is in the journal (the harness also verified it and its projections).
        let issued = try harness.events().filter { if case .codeIssued = $0.1 { true } else { false } }
        #expect(issued.count == outcomes.codes + 2)
    }
}

final class OutcomeLog: @unchecked Sendable {
    var codes = 0
}
