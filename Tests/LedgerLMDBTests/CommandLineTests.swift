import Foundation
import LedgerCore
import Testing
@testable import LedgerJournal
@testable import LedgerLMDB

/// The real `authledger` and `authledger-replay` executables, run as a user or an auditor would, against
/// journals this process wrote and closed: exit codes (0 success, 1 failed check, 2 bad input), the
/// messages that name the first bad event, JSON lines output, pinned keys, witness logs and key files.
@Suite("authledger and authledger-replay on the command line")
struct CommandLineTests {
    @Test("verify exits 0 on a good journal and says it verified every event")
    func verifyGoodJournal() async throws {
        let temp = TemporaryDirectory("cli")
        defer { withExtendedLifetime(temp) {} }
        try await makeJournal(temp.journal)

        let result = try runProduct("authledger-replay", ["verify", "--journal", temp.journal])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("verified 21 events"))
        #expect(result.stderr.isEmpty)
    }

    @Test("verify exits 1 on a journal with a flipped byte, naming the event on stderr")
    func verifyTamperedJournal() async throws {
        let temp = TemporaryDirectory("cli")
        defer { withExtendedLifetime(temp) {} }
        try await makeJournal(temp.journal)
        try flipMarkerInDataFile(temp.journal, marker: "evt-007", storedAt: 8)

        let result = try runProduct("authledger-replay", ["verify", "--journal", temp.journal])
        #expect(result.status == 1)
        #expect(result.stderr.contains("event #8:"))
        #expect(result.stderr.contains("signature does not verify"))
        #expect(!result.stdout.contains("verified"))
    }

    @Test("verify exits 2 on a directory that holds no journal")
    func verifyWithoutJournal() throws {
        let temp = TemporaryDirectory("cli")
        defer { withExtendedLifetime(temp) {} }

        let result = try runProduct("authledger-replay", ["verify", "--journal", temp.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("holds no journal"))
        #expect(result.stdout.isEmpty)
    }

    @Test("verify --format jsonl prints one JSON line: ok true, or ok false with first_bad_sequence")
    func verifyJSONLines() async throws {
        let temp = TemporaryDirectory("cli")
        defer { withExtendedLifetime(temp) {} }
        try await makeJournal(temp.journal)

        let good = try runProduct("authledger-replay", ["verify", "--journal", temp.journal, "--format", "jsonl"])
        #expect(good.status == 0, "stderr: \(good.stderr)")
        let goodLines = try decodeLines(VerifyLine.self, good.stdout)
        #expect(goodLines.count == 1)
        #expect(goodLines.first?.ok == true)
        #expect(goodLines.first?.events == 21)
        #expect(goodLines.first?.pinned == false)

        try flipMarkerInDataFile(temp.journal, marker: "evt-007", storedAt: 8)
        let bad = try runProduct("authledger-replay", ["verify", "--journal", temp.journal, "--format", "jsonl"])
        #expect(bad.status == 1)
        let badLines = try decodeLines(VerifyLine.self, bad.stdout)
        #expect(badLines.count == 1)
        #expect(badLines.first?.ok == false)
        #expect(badLines.first?.firstBadSequence == 8)
        #expect(badLines.first?.reason?.hasPrefix("event #8:") == true)
    }

    @Test("verify --public-key passes with keys exported from the journal, fails (1) with another journal's")
    func verifyPinnedKeys() async throws {
        let temp = TemporaryDirectory("cli")
        let other = TemporaryDirectory("cli-other")
        defer { withExtendedLifetime((temp, other)) {} }
        try await makeJournal(temp.journal)
        try await makeJournal(other.journal)

        let ownKeys = temp.path + "/own.pub"
        let export = try runProduct("authledger", ["keys", "export-public", "--journal", temp.journal, "--out", ownKeys])
        #expect(export.status == 0, "stderr: \(export.stderr)")
        let exported = try String(contentsOfFile: ownKeys, encoding: .utf8)
        let genesisKey = try JournalKeyFile(path: temp.journal + ".key").load().publicKey
        #expect(exported.hasSuffix("+" + Base64.encode([0x01] + genesisKey.bytes) + " #1-\n"), "the key and its tenure: signing from #1 on")

        let pinned = try runProduct("authledger-replay", ["verify", "--journal", temp.journal, "--public-key", ownKeys])
        #expect(pinned.status == 0, "stderr: \(pinned.stderr)")
        #expect(pinned.stdout.contains("(pinned)"))

        let otherKeys = temp.path + "/other.pub"
        let otherExport = try runProduct(
            "authledger", ["keys", "export-public", "--journal", other.journal, "--out", otherKeys])
        #expect(otherExport.status == 0, "stderr: \(otherExport.stderr)")
        let wrong = try runProduct("authledger-replay", ["verify", "--journal", temp.journal, "--public-key", otherKeys])
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("event #1:"))
        // Its first event is signed by a key the pins do not name at a sequence number they speak of.
        #expect(wrong.stderr.contains("pinned keys do not trust"))
    }

    @Test("verify --checkpoints passes with the journal's witness log and counts its checkpoints")
    func verifyWitnessLog() async throws {
        let temp = TemporaryDirectory("cli")
        defer { withExtendedLifetime(temp) {} }
        let log = temp.path + "/witness.log"
        try await makeJournal(temp.journal, witnessLog: log)
        // The genesis checkpoint and the one close() wrote.
        #expect(try CheckpointLogFile(path: log).read().map(\.checkpoint.treeSize) == [1, 21])

        let result = try runProduct("authledger-replay", ["verify", "--journal", temp.journal, "--checkpoints", log])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("checkpoints verified: 4 (2 witnessed outside the journal)"))
    }

    @Test("keys rotate, then keys show --format jsonl lists two keys of which only the new one is active")
    func rotateAndShowKeys() async throws {
        let temp = TemporaryDirectory("cli")
        defer { withExtendedLifetime(temp) {} }
        try await makeJournal(temp.journal)
        let originalID = try JournalKeyFile(path: temp.journal + ".key").load().keyID.hex

        let rotate = try runProduct("authledger", ["keys", "rotate", "--journal", temp.journal])
        #expect(rotate.status == 0, "stderr: \(rotate.stderr)")
        #expect(rotate.stdout.hasPrefix("rotated signing key \(originalID) -> "))
        let newID = try JournalKeyFile(path: temp.journal + ".key").load().keyID.hex
        #expect(newID != originalID)

        let show = try runProduct("authledger", ["keys", "show", "--journal", temp.journal, "--format", "jsonl"])
        #expect(show.status == 0, "stderr: \(show.stderr)")
        let keys = try decodeLines(KeyLine.self, show.stdout)
        #expect(keys.map(\.keyId) == [originalID, newID])
        #expect(keys.map(\.active) == [false, true])
        #expect(keys.map(\.introducedAt) == [1, 22])  // genesis, then the rotation after evt-020 (#21)

        let verify = try runProduct("authledger-replay", ["verify", "--journal", temp.journal])
        #expect(verify.status == 0, "stderr: \(verify.stderr)")
        #expect(verify.stdout.contains("verified 22 events"))
    }

    @Test("the signing key file is created with mode 0600, and keeps it when keys rotate replaces it")
    func keyFileMode() async throws {
        let temp = TemporaryDirectory("cli")
        defer { withExtendedLifetime(temp) {} }
        try await makeJournal(temp.journal)
        let keyFile = temp.journal + ".key"
        #expect(try permissions(of: keyFile) == 0o600)

        let rotate = try runProduct("authledger", ["keys", "rotate", "--journal", temp.journal])
        #expect(rotate.status == 0, "stderr: \(rotate.stderr)")
        #expect(try permissions(of: keyFile) == 0o600)
        #expect(!FileManager.default.fileExists(atPath: keyFile + ".next"))
    }
}

// MARK: - Helpers

/// "evt-001" ... "evt-020".
private func marker(_ index: Int) -> String {
    let digits = String(index)
    return "evt-" + String(repeating: "0", count: max(0, 3 - digits.count)) + digits
}

/// Creates and closes a journal: the genesis event at #1, then `evt-001`...`evt-020` at #2...#21, appended
/// in one batch so each record is written to `data.mdb` once. With `witnessLog`, checkpoints also go there.
private func makeJournal(_ directory: String, witnessLog: String? = nil) async throws {
    let journal = try openJournal(directory, witness: witnessLog.map { CheckpointLogFile(path: $0) })
    try await journal.appendAll((1...20).map { testDraft(marker($0)) })
    await journal.close()
}

/// The permission bits of the file at `path`.
private func permissions(of path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    let mode = try #require(attributes[.posixPermissions] as? Int, "no permissions for \(path)")
    return mode & 0o777
}

/// One line of `authledger-replay verify --format jsonl`.
private struct VerifyLine: Decodable {
    var ok: Bool
    var events: UInt64?
    var pinned: Bool?
    var firstBadSequence: UInt64?
    var reason: String?
}

/// One line of `authledger keys show --format jsonl`.
private struct KeyLine: Decodable {
    var keyId: String
    var active: Bool
    var introducedAt: UInt64
    var verifierKey: String
    var publicKey: String
}

/// Decodes every line of `text` as a JSON object (snake_case keys).
private func decodeLines<T: Decodable>(_ type: T.Type, _ text: String) throws -> [T] {
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    return try text.split(separator: "\n").map { try decoder.decode(T.self, from: Data($0.utf8)) }
}
