import AuthCore
import Foundation
import Testing

@Suite("authledger-replay export, checked by the independent Python verifier (tools/verify_bundle.py)")
struct ExportTests {
    static func verifyBundle(_ directory: String, pin: String? = nil) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", InteropTests.root.appendingPathComponent("tools/verify_bundle.py").path, directory]
            + (pin.map { ["--pin", $0] } ?? [])
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test("bundles in every format verify; one altered byte in a record, a proof or the checkpoint is rejected", arguments: ["jsonl", "csv", "ocsf"])
    func exportAndVerify(_ format: String) async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            _ = try await TokenEndpointTests.exchange(browser, code: code)
        }
        let bundle = harness.directory + "/bundle-\(format)"
        let export = try RebuildCommandTests.replay(["export", "--journal", harness.directory + "/journal", "--format", format, "--out", bundle])
        #expect(export.0 == 0)
        let clean = try Self.verifyBundle(bundle)
        #expect(clean.0 == 0, "\(clean.1)")
        #expect(clean.1.contains("verified:"))

        let file = bundle + "/" + ["jsonl": "events.jsonl", "csv": "events.csv", "ocsf": "events.ocsf.jsonl"][format]!
        let original = try String(contentsOfFile: file, encoding: .utf8)
        // Alter one byte inside the first record (decode, flip a bit of its payload, encode again).
        let range = try #require(original.range(of: #""record":"[^"]+""#, options: .regularExpression) ?? original.range(of: #",QXV0aExlZGdlci9ldmVudC92MQo[^,]+,"#, options: .regularExpression))
        let token = String(original[range])
        let encoded = token.trimmingCharacters(in: CharacterSet(charactersIn: ",\"")).replacingOccurrences(of: "record\":\"", with: "")
        var bytes = try #require(Data(base64Encoded: encoded))
        bytes[bytes.count - 80] ^= 0x01
        try original.replacingOccurrences(of: encoded, with: bytes.base64EncodedString()).write(toFile: file, atomically: true, encoding: .utf8)
        let tampered = try Self.verifyBundle(bundle)
        #expect(tampered.0 == 1, "\(tampered.1)")
        #expect(tampered.1.contains("FAILED"))

        // A checkpoint with one altered byte has no valid signature.
        try original.write(toFile: file, atomically: true, encoding: .utf8)
        let checkpointPath = bundle + "/checkpoint.txt"
        let checkpoint = try String(contentsOfFile: checkpointPath, encoding: .utf8)
        let lines = checkpoint.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var forged = lines
        forged[1] = String(Int(lines[1])! + 1)
        try forged.joined(separator: "\n").write(toFile: checkpointPath, atomically: true, encoding: .utf8)
        #expect(try Self.verifyBundle(bundle).0 == 1)
    }

    @Test("with personal data hashed, inclusion still verifies and no email or user id is in the bundle; pinning another journal's key fails")
    func personalData() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await browser.authorize(webAppParameters())
        }
        let bundle = harness.directory + "/bundle-hashed"
        let export = try RebuildCommandTests.replay([
            "export", "--journal", harness.directory + "/journal", "--format", "jsonl", "--out", bundle, "--personal-data", "hash",
            "--user", "auth0|alice",
        ])
        #expect(export.0 == 0)
        let verified = try Self.verifyBundle(bundle)
        #expect(verified.0 == 0, "\(verified.1)")
        let text = try String(contentsOfFile: bundle + "/events.jsonl", encoding: .utf8)
        #expect(!text.contains("alice@example.com"))
        #expect(!text.contains("auth0|alice"))
        #expect(!text.contains("\"record\""))

        let other = try await ServerHarness()
        try await other.run { _ in }
        let foreignKeys = other.directory + "/foreign.txt"
        let exported = try RebuildCommandTests.replay(["export", "--journal", other.directory + "/journal", "--format", "jsonl", "--out", other.directory + "/b"])
        #expect(exported.0 == 0)
        try FileManager.default.copyItem(atPath: other.directory + "/b/keys.txt", toPath: foreignKeys)
        #expect(try Self.verifyBundle(bundle, pin: foreignKeys).0 == 1)
    }
}
