import Foundation
import LedgerCore
import Testing

@testable import LedgerJournal
@testable import LedgerLMDB

/// Subject keys in the journal's LMDB store: made on first use, wrapped under the data key, destroyed on
/// erasure; and after a compaction, gone from the file's bytes.
@Suite("Subject keys on LMDB: kept wrapped, destroyed, and gone from data.mdb after compaction")
struct SubjectKeyStoreTests {
    /// The stored (wrapped) entry of `subject`, read from the raw table.
    func storedEntry(_ directory: String, _ subject: String) throws -> [UInt8]? {
        var entry: [UInt8]?
        try withRawLMDB(directory) { transaction, layout in
            entry = try layout.subjectKeys.flatMap { try transaction.get(Array(subject.utf8), in: $0) }
        }
        return entry
    }

    @Test("a key is made once per subject, read back, destroyed (twice is harmless); values sealed under it then stay sealed")
    func lifecycle() async throws {
        let directory = TemporaryDirectory()
        let dataKey = DataKey.generate()
        let journal = try openJournal(directory.journal)
        let (first, again) = try await journal.transact { transaction in
            (try transaction.subjectKey(for: "u:auth0|alice", dataKey: dataKey), try transaction.subjectKey(for: "u:auth0|alice", dataKey: dataKey))
        }
        #expect(first == again)
        let sealed = first.seal(Array("alice@example.com".utf8), subject: "u:auth0|alice", context: "test\nemail")
        _ = try await journal.transact { try $0.subjectKey(for: "a:2026-12-01", dataKey: dataKey) }
        #expect(try journal.read { try $0.subjectKey("u:auth0|alice", dataKey: dataKey) } == first)
        #expect(try journal.read { try $0.subjects(withPrefix: "a:") } == ["a:2026-12-01"])
        // Another data key cannot open the stored key: refused, not silently replaced.
        await #expect(throws: JournalError.self) { try await journal.transact { try $0.subjectKey(for: "u:auth0|alice", dataKey: DataKey.generate()) } }

        #expect(try await journal.transact { try $0.destroySubjectKey("u:auth0|alice") })
        #expect(try await journal.transact { try $0.destroySubjectKey("u:auth0|alice") } == false)
        #expect(try journal.read { try $0.subjectKey("u:auth0|alice", dataKey: dataKey) } == nil)
        // A later key for the same subject seals what comes next; the old value stays erased.
        let later = try await journal.transact { try $0.subjectKey(for: "u:auth0|alice", dataKey: dataKey) }
        #expect(later != first)
        #expect(throws: SealedValue.OpenError.otherKey) { try later.open(sealed, context: "test\nemail") }
        await journal.close()
    }

    @Test("after destruction and compaction the wrapped key is nowhere in data.mdb; the journal verifies and takes new events")
    func compaction() async throws {
        let directory = TemporaryDirectory()
        let dataKey = DataKey.generate()
        var journal = try openJournal(directory.journal)
        _ = try await journal.transact { try $0.subjectKey(for: "u:auth0|alice", dataKey: dataKey) }
        for index in 0..<20 { try await journal.append(testDraft("filler-\(index)")) }
        await journal.close()
        let wrapped = try #require(try storedEntry(directory.journal, "u:auth0|alice"))
        let file = directory.journal + "/data.mdb"
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)).range(of: Data(wrapped)) != nil)

        journal = try openJournal(directory.journal)
        #expect(try await journal.transact { try $0.destroySubjectKey("u:auth0|alice") })
        // With the journal open for writing, compaction is refused.
        #expect {
            try LMDBStorage.compact(directory: directory.journal)
        } throws: { error in
            if case JournalError.lockedByAnotherWriter = error { true } else { false }
        }
        await journal.close()
        // Nor while another process reads it (a follower that would go on with the old lock file).
        let follower = Process()
        follower.executableURL = productsDirectory.appendingPathComponent("authledger-replay")
        follower.arguments = ["tail", "--follow", "--journal", directory.journal]
        follower.standardOutput = FileHandle.nullDevice
        follower.standardError = FileHandle.nullDevice
        try follower.run()
        try await Task.sleep(for: .milliseconds(700))
        #expect(throws: JournalError.self) { try LMDBStorage.compact(directory: directory.journal) }
        follower.terminate()
        follower.waitUntilExit()
        try LMDBStorage.compact(directory: directory.journal)
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)).range(of: Data(wrapped)) == nil, "no freed page holds it")
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode == 0o600, "the new data.mdb is private like the old one")
        #expect(try JournalReader(directory: directory.journal).verify(trust: .genesisKey).get().eventCount == 21)
        journal = try openJournal(directory.journal)
        try await journal.append(testDraft("after compaction"))
        await journal.close()
        #expect(try JournalReader(directory: directory.journal).verify(trust: .genesisKey).get().eventCount == 22)
    }

    @Test("a copy of the journal carries the subject keys, still wrapped: with the data key they open, without it they do not")
    func copy() async throws {
        let source = TemporaryDirectory()
        let destination = TemporaryDirectory("copy")
        let dataKey = DataKey.generate()
        let journal = try openJournal(source.journal)
        let key = try await journal.transact { try $0.subjectKey(for: "u:auth0|bob", dataKey: dataKey) }
        await journal.close()
        let reader = try JournalReader(directory: source.journal)
        let storage = try LMDBStorage(writingTo: destination.journal, initialMapSize: 8 << 20, tables: 0)
        _ = try reader.copy(to: storage, projections: [])
        storage.close()
        reader.close()
        let copied = try JournalReader(directory: destination.journal)
        defer { copied.close() }
        #expect(try copied.read { try $0.subjectKey("u:auth0|bob", dataKey: dataKey) } == key)
        #expect(throws: JournalError.self) { try copied.read { try $0.subjectKey("u:auth0|bob", dataKey: DataKey.generate()) } }
    }
}
