import AuthCore
import AuthJournal
import AuthServer
import Foundation
import LedgerCore
import LedgerJournal
import LedgerLMDB
import Testing

/// `authledger journal archive`: the oldest events move to a verifiable archive; the live journal keeps
/// verifying from the cut, keeps the state they made, and serves.
@Suite("Archiving a journal's oldest events")
struct ArchiveTests {
    /// A journal where alice logged in, consented and redeemed a code; bob failed a login after.
    static func journal() async throws -> ServerHarness {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            #expect(try await TokenEndpointTests.exchange(browser, code: code).status == .ok)
            _ = try await LoginThrottleTests.attempt(Browser(client: browser.client), "bob@example.com", "wrong", from: "198.51.100.20")
        }
        return harness
    }

    static func head(_ journal: String) throws -> UInt64 {
        let reader = try JournalReader(directory: journal)
        defer { reader.close() }
        return try reader.read { try $0.head.sequence }
    }

    @Test("archive, then: verify from the cut, verify --archive as one history, rebuild --check, replay; the server serves alice's consent")
    func archiveAndServe() async throws {
        let harness = try await Self.journal()
        let journal = harness.directory + "/journal"
        let archive = harness.directory + "/archive-1"
        let head = try Self.head(journal)
        let archived = try RebuildCommandTests.run("authledger", ["journal", "archive", "--before", "#\(head)", "--out", archive, "--journal", journal])
        #expect(archived.0 == 0, "\(archived.1)")
        let reader = try JournalReader(directory: journal)
        let (prefix, first, stored) = try reader.read { snapshot in
            (try snapshot.archivedPrefix, try snapshot.firstSequence, try snapshot.record(1))
        }
        reader.close()
        let cut = try #require(prefix?.size)
        #expect(cut > head / 2 && cut < head && first == cut + 1, "archived up to the last checkpoint before #\(head): \(cut)")
        #expect(stored == nil, "the archived bodies are gone from the journal")
        // Every event after the cut proves its inclusion at the head: a subtree that straddles the cut is
        // computed from the frontier's nodes stored at the cut and the records after it.
        let proving = try JournalReader(directory: journal)
        try proving.read { snapshot in
            let size = try snapshot.head.sequence
            let root = try snapshot.rootHash(treeSize: size)
            for sequence in (cut + 1)...size {
                let leaf = MerkleHashing.leafHash(try #require(try snapshot.record(sequence)))
                #expect(throws: Never.self) { try snapshot.inclusionProof(sequence: sequence, treeSize: size).verify(leafHash: leaf, root: root) }
            }
        }
        proving.close()

        let live = try RebuildCommandTests.replay(["verify", "--journal", journal])
        #expect(live.0 == 0 && live.1.contains("events #1…#\(cut) are archived"), "\(live.1)")
        let whole = try RebuildCommandTests.replay(["verify", "--journal", journal, "--archive", archive])
        #expect(whole.0 == 0 && whole.1.contains("archive \(archive): verified events #1…#\(cut)"), "\(whole.1)")
        #expect(try RebuildCommandTests.replay(["verify", "--journal", archive]).0 == 0, "an archive is a journal: it verifies alone")
        #expect(try RebuildCommandTests.replay(["rebuild", "--check", "--journal", journal]).0 == 0)
        let replay = try RebuildCommandTests.replay(["replay", "--journal", journal])
        #expect(replay.0 == 0, "\(replay.1)")
        let timeline = try RebuildCommandTests.replay(["timeline", "--journal", journal])
        #expect(timeline.1.hasPrefix("#\(cut + 1) "), "the timeline starts after the cut")
        // An archive has no projections (no index): it is read whole. Its personal values stay sealed: their
        // subjects' keys are kept in the journal (so that an erasure reaches the archive too).
        let old = try RebuildCommandTests.replay(["timeline", "--journal", archive, "--data-key", journal + ".datakey"])
        #expect(old.1.contains("auth0|alice logged in from [sealed]"), "\(old.1)")
        #expect(!old.1.contains("[erased]"))

        // The server keeps serving from the projections: alice's consent, given before the cut, still holds.
        let restarted = try await ServerHarness(restarting: harness)
        try await restarted.run { browser in
            let page = try await browser.authorize(webAppParameters(scope: "openid profile email"), consent: "deny")
            #expect(page.redirectParameters["code"] != nil, "no consent asked again: \(page.location ?? page.body)")
        }
        #expect(try RebuildCommandTests.replay(["verify", "--journal", journal, "--archive", archive]).0 == 0)
        #expect(try RebuildCommandTests.replay(["rebuild", "--check", "--journal", journal]).0 == 0)
        // The events after the cut prove their inclusion through the tree's frontier at the cut, whose lower
        // nodes (which the writer does not store) were stored when the cut was recorded.
        let bundle = harness.directory + "/bundle-after-cut"
        let export = try RebuildCommandTests.replay(["export", "--journal", journal, "--format", "jsonl", "--out", bundle])
        #expect(export.0 == 0, "\(export.1)")
        let checked = try ExportTests.verifyBundle(bundle)
        #expect(checked.0 == 0, "\(checked.1)")

        // A second archive continues the first; both verify with the journal as one history.
        let second = harness.directory + "/archive-2"
        let again = try RebuildCommandTests.run(
            "authledger", ["journal", "archive", "--before", "#\(try Self.head(journal))", "--out", second, "--journal", journal])
        #expect(again.0 == 0, "\(again.1)")
        #expect(try RebuildCommandTests.replay(["verify", "--journal", journal, "--archive", archive, "--archive", second]).0 == 0)
        let skipped = try RebuildCommandTests.replay(["verify", "--journal", journal, "--archive", second])
        #expect(skipped.0 == 1, "the second alone does not start at the genesis")
        #expect(try RebuildCommandTests.replay(["verify", "--journal", journal, "--archive", archive]).0 == 1, "one archive missing")
        #expect(try RebuildCommandTests.replay(["rebuild", "--check", "--journal", journal]).0 == 0)
        // Nothing before the first event the journal holds: nothing to archive, exit 2, nothing changed.
        let nothing = try RebuildCommandTests.run(
            "authledger", ["journal", "archive", "--before", "#2", "--out", harness.directory + "/archive-3", "--journal", journal])
        #expect(nothing.0 == 2)
    }

    @Test("an altered archive, or another journal's, is refused as the journal's history")
    func tamperedArchive() async throws {
        let harness = try await Self.journal()
        let journal = harness.directory + "/journal"
        let archive = harness.directory + "/archive"
        #expect(try RebuildCommandTests.run("authledger", ["journal", "archive", "--before", "#\(try Self.head(journal))", "--out", archive, "--journal", journal]).0 == 0)
        // Another journal's archive: it verifies alone, not as this journal's history.
        let other = try await Self.journal()
        let otherJournal = other.directory + "/journal"
        let otherArchive = other.directory + "/archive"
        #expect(try RebuildCommandTests.run("authledger", ["journal", "archive", "--before", "#\(try Self.head(otherJournal))", "--out", otherArchive, "--journal", otherJournal]).0 == 0)
        let foreign = try RebuildCommandTests.replay(["verify", "--journal", journal, "--archive", otherArchive])
        #expect(foreign.0 == 1)
        // One byte of an archived event changed: the archive no longer verifies.
        let file = archive + "/data.mdb"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        // (A user id, in a payload: records are stored shortened, their type names by position.)
        let marker = Data("auth0|".utf8)
        let at = try #require(bytes.range(of: marker))
        bytes[at.lowerBound] = UInt8(ascii: "A")
        try bytes.write(to: URL(fileURLWithPath: file))
        #expect(try RebuildCommandTests.replay(["verify", "--journal", journal, "--archive", archive]).0 == 1)
    }

    @Test("SIGKILL in the middle of journal archive: the journal verifies and either archived or did not; a second run finishes")
    func crashMidArchive() async throws {
        // A journal of 6,000 events in 60 commits (one checkpoint each): writing and removing take a while.
        let pristine = try await ServerHarness()
        for commit in 0..<60 {
            try await pristine.ledger.record { recorder in
                for index in 0..<100 {
                    try recorder.append(.loginFailed(LoginFailed(
                        username: "someone\(index)@example.com", connection: "Username-Password-Authentication", reason: .wrongPassword,
                        interaction: nil, clientIP: "10.0.\(commit).\(index)")))
                }
            }
        }
        try await pristine.run { _ in }
        let source = pristine.directory + "/journal"
        let head = try Self.head(source)
        // How long an archival of this journal takes, uninterrupted: the kills fall inside it.
        for suffix in ["", ".key", ".datakey"] {
            try FileManager.default.copyItem(atPath: source + suffix, toPath: pristine.directory + "/timed" + suffix)
        }
        let started = ContinuousClock.now
        let timed = try RebuildCommandTests.run(
            "authledger", ["journal", "archive", "--before", "#\(head)", "--out", pristine.directory + "/timed-archive", "--journal", pristine.directory + "/timed"])
        let duration = started.duration(to: .now)
        #expect(timed.0 == 0, "\(timed.1)")
        var outcomes: [Bool] = []
        for round in 0..<4 {
            let journal = pristine.directory + "/round\(round)"
            for suffix in ["", ".key", ".datakey"] {
                try FileManager.default.copyItem(atPath: source + suffix, toPath: journal + suffix)
            }
            let archive = pristine.directory + "/archive\(round)"
            let process = Process()
            process.executableURL = RebuildCommandTests.products.appendingPathComponent("authledger")
            process.arguments = ["journal", "archive", "--before", "#\(head)", "--out", archive, "--journal", journal]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            if round < 2 {
                // While the archive is written and verified, or the cut recorded.
                try await Task.sleep(for: duration * Double.random(in: 0.2...0.9))
            } else {
                // As soon as the cut is recorded: while the archived bodies are being removed.
                let deadline = ContinuousClock.now + duration * 3
                while ContinuousClock.now < deadline {
                    if let reader = try? JournalReader(directory: journal) {
                        let recorded = (try? reader.read { try $0.archivedPrefix }) != nil
                        reader.close()
                        if recorded { break }
                    }
                    try await Task.sleep(for: .milliseconds(2))
                }
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()

            let verify = try RebuildCommandTests.replay(["verify", "--journal", journal])
            #expect(verify.0 == 0, "round \(round): \(verify.1)")
            let reader = try JournalReader(directory: journal)
            let prefix = try reader.read { try $0.archivedPrefix }
            reader.close()
            outcomes.append(prefix != nil)
            if prefix != nil {
                // Recorded: the archive was complete and verified before the cut was; the two are one history.
                #expect(try RebuildCommandTests.replay(["verify", "--journal", journal, "--archive", archive]).0 == 0, "round \(round)")
            }
            // Run again (into an empty place): it removes what is left, and archives if it had not.
            let again = try RebuildCommandTests.run("authledger", ["journal", "archive", "--before", "#\(head)", "--out", archive + "-again", "--journal", journal])
            #expect(again.0 == (prefix == nil ? 0 : 2), "round \(round): \(again.1)")
            let after = try JournalReader(directory: journal)
            let (cut, leftover) = try after.read { snapshot in
                (try snapshot.archivedPrefix?.size, try snapshot.record(1))
            }
            after.close()
            #expect(cut != nil && leftover == nil, "round \(round): archived, nothing left of the archived bodies")
            let archives = prefix == nil ? [archive + "-again"] : [archive]
            #expect(try RebuildCommandTests.replay(["verify", "--journal", journal] + archives.flatMap { ["--archive", $0] }).0 == 0, "round \(round)")
            #expect(try RebuildCommandTests.replay(["rebuild", "--check", "--journal", journal]).0 == 0, "round \(round)")
        }
        print("crash mid-archive: \(outcomes.filter { $0 }.count) of \(outcomes.count) kills came after the cut was recorded (archival takes \(duration))")
    }

    @Test("a running server archives the events past retention.events_days into its archive directory, and serves on")
    func serverArchives() async throws {
        let base = FileManager.default.temporaryDirectory.path + "/authledger-archiving-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let harness = try await ServerHarness(tenant: testTenantYAML + "\nretention:\n  events_days: 1\n") {
            $0.archival = AuthServerSettings.Archival(directory: base) { target in
                try LMDBStorage(writingTo: target, for: Journal.Configuration(keyBeside: target))
            }
        }
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            #expect(try await TokenEndpointTests.exchange(browser, code: code).status == .ok)
            await harness.server.runMaintenance()
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).isEmpty, "nothing is a day old yet")
            harness.clock.advance(seconds: 2 * 86_400)
            await harness.server.runMaintenance()
            // Archived under the running server, which goes on: alice's session and consent still hold.
            let again = try await TokenEndpointTests.code(browser, nonce: "n-2")
            #expect(try await TokenEndpointTests.exchange(browser, code: again).status == .ok)
        }
        let archives = try FileManager.default.contentsOfDirectory(atPath: base)
        #expect(archives.count == 1 && archives[0].hasPrefix("events-1-"), "\(archives)")
        let journal = harness.directory + "/journal"
        let whole = try RebuildCommandTests.replay(["verify", "--journal", journal, "--archive", base + "/" + archives[0]])
        #expect(whole.0 == 0, "\(whole.1)")
        #expect(try RebuildCommandTests.replay(["rebuild", "--check", "--journal", journal]).0 == 0)
        #expect(try RebuildCommandTests.replay(["replay", "--journal", journal]).0 == 0)
    }
}
