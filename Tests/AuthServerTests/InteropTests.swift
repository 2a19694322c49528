import Foundation
import Hummingbird
import JWTKit
import NIOCore
import Testing

@testable import AuthServer

@Suite("Interoperability with a widely used OAuth client library", .serialized)
struct InteropTests {
    /// The repository's root, found from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("Authlib runs a PKCE code flow end to end and verifies the ID and access tokens with the JWKS")
    func authlibCodeFlow() async throws {
        let (output, harness) = try await Self.runScript(
            "authlib_code_flow.py",
            arguments: ["web-app", "s3cret", "https://client.test/callback", "alice@example.com", "correct horse battery staple", "client_secret_basic"])
        let line = try #require(output)
        #expect(line.contains("\"ok\": true"), "Authlib said: \(line)")
        #expect(line.contains("\"access_token_typ\": \"at+jwt\""))
        let events = try harness.events().map(\.1.eventType.name)
        #expect(events.contains("auth.code.issued"))
        #expect(events.contains("auth.token.issued"))
    }

    @Test("Authlib: client_credentials with a secret and with private_key_jwt, introspection, and pushed authorization requests")
    func authlibGrants() async throws {
        // signed-service's private key, for Authlib to sign its assertions with (jwt-kit gives it as PKCS #8 PEM).
        let signer = AssertionSigner()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("authledger-interop-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.appendingPathComponent("signed-service.pem")
        try Data(signer.key.pemRepresentation.utf8).write(to: keyFile)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyFile.path)

        let (output, harness) = try await Self.runScript(
            "grants.py", tenant: grantsTenantYAML(signer), arguments: [keyFile.path, "--kid", signer.kid])
        let line = try #require(output)
        #expect(line.contains("\"ok\": true"), "Authlib said: \(line)")
        #expect(line.contains("\"replay\": [200, 401, \"invalid_client\"]"), "the same assertion twice: \(line)")
        let events = try harness.events().map(\.1.eventType.name)
        for name in ["auth.client_credentials.decided", "auth.client_assertion.used", "auth.token.introspected", "auth.par.pushed"] {
            #expect(events.contains(name), "no \(name) in the journal")
        }
    }

    /// Starts a server for `tenant` with the issuer `http://127.0.0.1:PORT/` on a free loopback port, runs
    /// `tools/interop/<script>` with the issuer and then `arguments`, and returns the script's standard output
    /// (`nil` if the server stopped first) and the harness, its journal closed. The port is free when chosen,
    /// but another test may take it before the server binds: then it tries again.
    static func runScript(
        _ script: String, tenant: String = testTenantYAML, arguments: [String]
    ) async throws -> (output: String?, harness: ServerHarness) {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await Self.runScriptOnce(script, tenant: tenant, arguments: arguments)
            } catch let error as IOError where attempt < 5 && error.errnoCode == EADDRINUSE {
                continue
            }
        }
    }

    private static func runScriptOnce(
        _ script: String, tenant: String, arguments: [String]
    ) async throws -> (output: String?, harness: ServerHarness) {
        let port = try freeLoopbackPort()
        let base = "http://127.0.0.1:\(port)/"
        let harness = try await ServerHarness(tenant: tenant, issuer: base)
        // The script starts once this server listens: a port that is only listening (another test's
        // server took it first) is not enough, since the script would talk to that server.
        let (running, runningNow) = AsyncStream<Void>.makeStream()
        let application = harness.server.application(host: "127.0.0.1", port: port) { _ in
            runningNow.yield()
            runningNow.finish()
        }
        let command = [Self.root.appendingPathComponent("tools/interop/\(script)").path, base] + arguments
        let output: String? = try await withThrowingTaskGroup(of: String?.self) { group -> String? in
            group.addTask {
                defer { runningNow.finish() }
                try await application.runService()
                return nil
            }
            group.addTask {
                var started = running.makeAsyncIterator()
                guard await started.next() != nil else { return nil }
                return try await Self.python(command)
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            return nil
        }
        await harness.ledger.journal.close()
        return (output, harness)
    }

    /// Runs `python3` with `arguments` and returns its standard output. The wait is on a thread of its own:
    /// blocking one of the few threads of Swift's concurrency pool could starve the server the script talks to.
    static func python(_ arguments: [String]) async throws -> String {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String, any Error>) in
            let thread = Thread {
                continuation.resume(with: Result<String, any Error>(catching: { try Self.pythonBlocking(arguments) }))
            }
            thread.name = "interop-python"
            thread.start()
        }
    }

    private static func pythonBlocking(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
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

