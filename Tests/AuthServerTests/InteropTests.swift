import Foundation
import Hummingbird
import NIOCore
import Testing

@testable import AuthServer

@Suite("Interoperability with a widely used OAuth client library")
struct InteropTests {
    /// The repository's root, found from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("Authlib runs a PKCE code flow end to end and verifies the ID and access tokens with the JWKS")
    func authlibCodeFlow() async throws {
        // The port is free when chosen, but another test may take it before the server binds: try again.
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await runAuthlib()
                return
            } catch let error as IOError where attempt < 5 && error.errnoCode == EADDRINUSE {
                continue
            }
        }
    }

    private func runAuthlib() async throws {
        let port = try freeLoopbackPort()
        let base = "http://127.0.0.1:\(port)/"
        let harness = try await ServerHarness(issuer: base)
        let application = harness.server.application(host: "127.0.0.1", port: port)
        let output: String? = try await withThrowingTaskGroup(of: String?.self) { group -> String? in
            group.addTask {
                try await application.runService()
                return nil
            }
            group.addTask {
                try await waitUntilListening(port: port)
                return try runInterop(base: base)
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            return nil
        }
        await harness.ledger.journal.close()
        let line = try #require(output)
        #expect(line.contains("\"ok\": true"), "Authlib said: \(line)")
        #expect(line.contains("\"access_token_typ\": \"at+jwt\""))
        let events = try harness.events().map(\.1.eventType.name)
        #expect(events.contains("auth.code.issued"))
        #expect(events.contains("auth.token.issued"))
    }

    private func runInterop(base: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", Self.root.appendingPathComponent("tools/interop/authlib_code_flow.py").path, base, "web-app", "s3cret",
            "https://client.test/callback", "alice@example.com", "correct horse battery staple", "client_secret_basic",
        ]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

/// A loopback port that was free a moment ago (the kernel picks it).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Polls until something accepts connections on `port` (at most 10 s).
func waitUntilListening(port: Int) async throws {
    for _ in 0..<200 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(fd)
        if connected == 0 { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw POSIXError(.ETIMEDOUT)
}
