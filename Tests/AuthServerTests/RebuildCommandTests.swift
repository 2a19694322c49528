import AuthCore
import AuthJournal
import Foundation
import LedgerCore
import Testing

@testable import LedgerJournal
@testable import LedgerLMDB

@Suite("authledger-replay rebuild --check on a journal the server wrote")
struct RebuildCommandTests {
    static let products: URL = {
        let candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(), Bundle.main.bundleURL]
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("authledger-replay").path) } ?? candidates[0]
    }()

    static func replay(_ arguments: [String]) throws -> (Int32, String) {
        try run("authledger-replay", arguments)
    }

    /// Runs `product` with `arguments`: its exit status and its standard output (and error, with `stderr`).
    static func run(_ product: String, _ arguments: [String], stderr: Bool = false) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = products.appendingPathComponent(product)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = stderr ? pipe : FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test("rebuilt projections match the live ones; a rewritten projection entry is reported and exits 1")
    func rewrittenProjection() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            let code = try await TokenEndpointTests.code(browser)
            #expect(try await TokenEndpointTests.exchange(browser, code: code).status == .ok)
        }
        let journal = harness.directory + "/journal"
        let clean = try Self.replay(["rebuild", "--check", "--journal", journal])
        #expect(clean.0 == 0)
        #expect(clean.1.contains("live projections match the events"))

        // An attacker resets a redeemed code to "issued" in the projection, to redeem it again.
        let environment = try LMDBEnvironment(path: journal, options: .init())
        let transaction = try environment.beginWriteTransaction()
        let codes = try environment.openDatabase("p.auth.codes", in: transaction, create: false)
        var target: ([UInt8], [UInt8])?
        try transaction.forEach(in: codes) { key, value in
            target = (key, value)
            return false
        }
        let (key, value) = try #require(target)
        var record = try ProjectionCoding.decode(CodeRecord.self, from: value)
        #expect(record.status == .redeemed)
        record.status = .issued
        try transaction.put(try ProjectionCoding.encode(record), for: key, in: codes)
        try transaction.commit()
        environment.close()

        let tampered = try Self.replay(["rebuild", "--check", "--journal", journal])
        #expect(tampered.0 == 1)
        #expect(tampered.1.contains("difference: codes"))
    }
}

@Suite("Projection versions: projections of another version are rebuilt from the events when the journal is opened")
struct ProjectionVersionTests {
    /// The journal with the server's projection tables, as `Journal.open` gives it: no upgrade.
    static func openWithoutUpgrade(_ journal: String) throws -> Journal {
        var configuration = Journal.Configuration(keyBeside: journal)
        configuration.projections = AuthLedger.projections
        return try Journal.open(directory: journal, configuration)
    }

    @Test("a journal without the current version is reported by rebuild --check, and rebuilt exactly at the next open")
    func rebuiltAtOpen() async throws {
        let harness = try await ServerHarness()
        try await harness.run { browser in
            _ = try await LoginThrottleTests.attempt(browser, "bob@example.com", "wrong")
            _ = try await TokenEndpointTests.exchange(browser, code: try await TokenEndpointTests.code(browser))
        }
        let journal = harness.directory + "/journal"
        // As an older server would have left it: no version, and an entry the current projection would not write.
        do {
            let raw = try Self.openWithoutUpgrade(journal)
            try await raw.transact { transaction in
                try transaction.projection(ProjectionVersion.table).removeAll()
                try transaction.projection("auth.login_failures").put([0], for: Array("n\u{1F}old-style-key".utf8))
            }
            await raw.close()
        }
        let stale = try RebuildCommandTests.run("authledger-replay", ["rebuild", "--check", "--journal", journal], stderr: true)
        #expect(stale.0 == 1)
        #expect(stale.1.contains("of no recorded version"), "\(stale.1)")
        #expect(stale.1.contains("difference: login_failures"), "the differences are listed all the same")
        #expect(try RebuildCommandTests.replay(["timeline", "--user", "auth0|bob", "--journal", journal]).0 == 2, "filtered timelines refuse stale indexes")
        // As a rebuild interrupted right after emptying would leave it: every table empty, no version.
        do {
            let raw = try Self.openWithoutUpgrade(journal)
            try await raw.transact { transaction in
                for name in AuthLedger.projections { try transaction.projection(name).removeAll() }
            }
            #expect(try await ProjectionVersion.upgrade(raw, eventsPerCommit: 1), "one event per commit: many batches")
            try await raw.transact { transaction in
                for name in AuthLedger.projections { try transaction.projection(name).removeAll() }
                try transaction.projection("auth.login_failures").put([0], for: Array("n\u{1F}old-style-key".utf8))
            }
            await raw.close()
        }

        let ledger = try await AuthLedger.open(directory: journal)
        #expect(try ledger.journal.read { try ProjectionVersion.stored(in: $0) } == ProjectionVersion.current)
        #expect(try ledger.read { try $0.get(.loginFailures, "n\u{1F}old-style-key") } == nil, "emptied and folded again")
        #expect(ledger.configuration.clients["web-app"] != nil, "the configuration is read after the rebuild (its table was emptied)")
        await ledger.journal.close()
        let checked = try RebuildCommandTests.replay(["rebuild", "--check", "--journal", journal])
        #expect(checked.0 == 0, "\(checked.1)")
        let reopened = try Self.openWithoutUpgrade(journal)
        #expect(try await !ProjectionVersion.upgrade(reopened), "nothing to do the second time")
        await reopened.close()
    }
}

extension ProjectionVersionTests {
    @Test("projections of a newer version are refused, not rebuilt by an older AuthLedger")
    func newerVersionRefused() async throws {
        let harness = try await ServerHarness()
        try await harness.run { _ in }
        let journal = harness.directory + "/journal"
        let raw = try Self.openWithoutUpgrade(journal)
        try await raw.transact { transaction in
            try transaction.projection(ProjectionVersion.table).put(Array("\(ProjectionVersion.current + 1)".utf8), for: Array("version".utf8))
        }
        await raw.close()
        await #expect(throws: ProjectionVersion.NewerVersion.self) { _ = try await AuthLedger.open(directory: journal) }
    }
}
