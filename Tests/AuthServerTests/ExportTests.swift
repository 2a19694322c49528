import AuthCore
import Foundation
import LedgerCore
import LedgerJournal
import LedgerLMDB
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

        // The payload shown beside a record must be the record's (compact ones decoded, journal format §17):
        // a readable field edited with the record intact is refused.
        try checkpoint.write(toFile: checkpointPath, atomically: true, encoding: .utf8)
        #expect(original.contains("web-app"))
        try original.replacingOccurrences(of: "web-app", with: "web-opp").write(toFile: file, atomically: true, encoding: .utf8)
        let edited = try Self.verifyBundle(bundle)
        #expect(edited.0 == 1 && edited.1.contains("the payload shown is not the record's"), "\(edited.1)")
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
        // Keyed pseudonyms (the journal's data key), not plain hashes that a list of addresses or emails reverses.
        #expect(text.contains("hmac-sha256:"))
        #expect(!text.contains(SHA256Digest.hash(Array("alice@example.com".utf8)).hex))
        #expect(!text.contains(SHA256Digest.hash(Array("auth0|alice".utf8)).hex))
        // Without the data key there is nothing to key them with: refused, nothing written.
        let withoutKey = try RebuildCommandTests.replay([
            "export", "--journal", harness.directory + "/journal", "--format", "jsonl", "--out", harness.directory + "/bundle-nokey",
            "--personal-data", "hash", "--data-key", harness.directory + "/missing.datakey",
        ])
        #expect(withoutKey.0 == 2)
        #expect(!FileManager.default.fileExists(atPath: harness.directory + "/bundle-nokey"))

        let other = try await ServerHarness()
        try await other.run { _ in }
        let foreignKeys = other.directory + "/foreign.txt"
        let exported = try RebuildCommandTests.replay(["export", "--journal", other.directory + "/journal", "--format", "jsonl", "--out", other.directory + "/b"])
        #expect(exported.0 == 0)
        try FileManager.default.copyItem(atPath: other.directory + "/b/keys.txt", toPath: foreignKeys)
        #expect(try Self.verifyBundle(bundle, pin: foreignKeys).0 == 1)
    }

    @Test("a bundle forged with a retired key after its rotation — an event and the checkpoint — is refused against the exported pins")
    func retiredKeyBundle() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await browser.authorize(webAppParameters())
        }
        let journalPath = harness.directory + "/journal"
        let oldKey = try JournalKeyFile(path: journalPath + ".key").load()
        let journal = try Journal.open(directory: journalPath)
        _ = try await journal.rotateSigningKey()
        try await journal.append(EventDraft(type: "test.after_rotation", payload: Array(#"{"n":1}"#.utf8)))
        await journal.close()

        let bundle = harness.directory + "/bundle-rotated"
        #expect(try RebuildCommandTests.replay(["export", "--journal", journalPath, "--format", "jsonl", "--out", bundle]).0 == 0)
        let pins = harness.directory + "/auditor.pub"
        #expect(try RebuildCommandTests.run("authledger", ["keys", "export-public", "--journal", journalPath, "--out", pins]).0 == 0)
        let pinLines = try String(contentsOfFile: pins, encoding: .utf8).split(separator: "\n")
        #expect(pinLines.count == 2)
        #expect(pinLines[0].contains(" #1-#"), "the retired key, with its closed tenure")
        #expect(pinLines[1].hasSuffix("-"), "the active key, open")
        #expect(try Self.verifyBundle(bundle, pin: pins).0 == 0)

        // The checkpoint, re-signed by the retired key.
        let checkpointPath = bundle + "/checkpoint.txt"
        let genuineCheckpoint = try String(contentsOfFile: checkpointPath, encoding: .utf8)
        let forgedCheckpoint = try SignedCheckpoint(text: genuineCheckpoint).checkpoint.signed(with: oldKey)
        try forgedCheckpoint.text.write(toFile: checkpointPath, atomically: true, encoding: .utf8)
        let refusedCheckpoint = try Self.verifyBundle(bundle, pin: pins)
        #expect(refusedCheckpoint.0 == 1)
        #expect(refusedCheckpoint.1.contains("outside its tenure"), "\(refusedCheckpoint.1)")
        try genuineCheckpoint.write(toFile: checkpointPath, atomically: true, encoding: .utf8)

        // The last event (after the rotation), re-signed by the retired key.
        let eventsPath = bundle + "/events.jsonl"
        var lines = try String(contentsOfFile: eventsPath, encoding: .utf8).split(separator: "\n").map(String.init)
        var last = try #require(try JSONSerialization.jsonObject(with: Data(lines[lines.count - 1].utf8)) as? [String: Any])
        let recordText = try #require(last["record"] as? String)
        let recordBytes = try #require(Data(base64Encoded: recordText))
        var envelope = try EventEnvelope(record: Array(recordBytes))
        envelope.content.keyID = oldKey.keyID
        envelope.signature = envelope.content.signature(with: oldKey)
        last["record"] = Data(envelope.record).base64EncodedString()
        lines[lines.count - 1] = String(decoding: try JSONSerialization.data(withJSONObject: last, options: [.sortedKeys]), as: UTF8.self)
        try (lines.joined(separator: "\n") + "\n").write(toFile: eventsPath, atomically: true, encoding: .utf8)
        let refusedEvent = try Self.verifyBundle(bundle, pin: pins)
        #expect(refusedEvent.0 == 1)
        #expect(refusedEvent.1.contains("outside its tenure"), "\(refusedEvent.1)")
    }
}
