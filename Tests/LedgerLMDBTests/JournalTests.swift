import Foundation
import LedgerCore
import Synchronization
import Testing

@testable import LedgerJournal
@testable import LedgerLMDB

@Suite("Journal: append, group commit, projections, reopen")
struct JournalTests {
    @Test("a new journal starts with a signed genesis event, a checkpoint and a 0600 key file outside the LMDB files")
    func newJournal() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        #expect(journal.head.sequence == 1)
        let keyPath = directory.journal + ".key"
        let attributes = try FileManager.default.attributesOfItem(atPath: keyPath)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(!FileManager.default.fileExists(atPath: directory.journal + "/journal.key"))
        let (genesis, checkpoints) = try journal.read { (try $0.event(1), try $0.checkpoints()) }
        let event = try #require(genesis)
        #expect(event.type == .genesis)
        #expect(event.previousHash == .zero)
        let payload = try PayloadCoding.decode(GenesisPayload.self, from: event.payload)
        #expect(payload.origin == journal.origin)
        #expect(checkpoints.map(\.checkpoint.treeSize) == [1])
        let key = try JournalKeyFile(path: keyPath).load()
        #expect(key.keyID == journal.activeKeyID)
        #expect(event.hasValidSignature(by: key.publicKey))
        await journal.close()
    }

    @Test("appended events come back exactly, chained by hash, with non-decreasing time")
    func appendAndRead() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        var appended: [AppendedEvent] = []
        for index in 0..<10 {
            appended.append(try await journal.append(testDraft("event-\(index)")))
        }
        #expect(appended.map(\.sequence) == Array(2...11))
        try journal.read { snapshot in
            var previous = try #require(try snapshot.event(1))
            for (index, receipt) in appended.enumerated() {
                let event = try #require(try snapshot.event(receipt.sequence))
                #expect(event.payload == testDraft("event-\(index)").payload)
                #expect(event.type == "test.event")
                #expect(event.previousHash == previous.eventHash)
                #expect(event.eventHash == receipt.eventHash)
                #expect(event.timestamp >= previous.timestamp)
                previous = event
            }
        }
        await journal.close()
    }

    @Test("concurrent appenders get contiguous unique sequence numbers and share commits; the writer thread is named and counts its CPU time")
    func concurrentAppendsAreGroupCommitted() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        let perTask = 40
        let tasks = 64
        let sequences = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var mine: [UInt64] = []
                    for index in 0..<perTask {
                        mine.append(try await journal.append(testDraft("t\(task)-\(index)")).sequence)
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(sequences.sorted() == Array(2...UInt64(1 + tasks * perTask)))
        let statistics = journal.statistics
        #expect(statistics.batchesCommitted < tasks * perTask / 2, "appends should share write transactions")
        #expect(statistics.largestBatch > 1)
        #expect(statistics.lockWaitAndCatchUp == .zero && statistics.underLockAfterCatchUp == .zero, "a store of its own has no journal lock")
        #expect(statistics.writerCPUTime > .zero, "the writer's CPU time on its batches")
        #if os(Linux)
            // The writer's thread is named where tools show threads (Linux keeps names of at most 15 bytes).
            let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap { task in
                try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            #expect(names.contains("journal-writer"), "threads: \(Set(names).sorted())")
        #endif
        await journal.close()
        let result = try JournalReader(directory: directory.journal).verify(trust: .genesisKey)
        #expect(try result.get().eventCount == UInt64(1 + tasks * perTask))
    }

    @Test("the writer runs at the process's priority by default, and at nice −20 when configured so where the process may take it")
    func writerSchedulingPriority() async throws {
        #if os(Linux)
            let which = __priority_which_t(PRIO_PROCESS.rawValue)
            let processNice = getpriority(which, 0)
            // Whether a thread of this process may take nice −20, asked of a thread of its own.
            let allowed = Mutex(false)
            let done = DispatchSemaphore(value: 0)
            Thread {
                allowed.withLock { $0 = setpriority(which, 0, -20) == 0 && getpriority(which, 0) == -20 }
                done.signal()
            }.start()
            done.wait()

            let directory = TemporaryDirectory()
            let plain = try openJournal(directory.journal)
            try await plain.append(testDraft("one"))  // the writer has started, and taken its priority
            #expect(plain.statistics.writerNiceValue == processNice)
            await plain.close()

            let other = TemporaryDirectory()
            var configuration = Journal.Configuration(keyBeside: other.journal)
            configuration.writerNiceValue = -20
            let raised = try Journal.open(directory: other.journal, configuration)
            try await raised.append(testDraft("one"))
            #expect(raised.statistics.writerNiceValue == (allowed.withLock { $0 } ? -20 : processNice))
            await raised.close()
        #endif
    }

    @Test("an LMDB journal does not await its reads: a reader given one runs in place, and no awaited read is counted")
    func awaitedReadsNotCounted() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        let sequence = try await journal.reader.read(awaiting: { try $0.head.sequence }) { try journal.reader.read { try $0.head.sequence } }
        #expect(sequence == journal.head.sequence)
        #expect(journal.reader.awaitedReadStatistics == AwaitedReadStatistics())
        await journal.close()
    }

    @Test("appendAll writes its events contiguously")
    func appendAllIsContiguous() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        async let other: Void = {
            for index in 0..<50 { _ = try await journal.append(testDraft("other-\(index)")) }
        }()
        let group = try await journal.appendAll((0..<20).map { testDraft("group-\($0)") })
        try await other
        let first = try #require(group.first?.sequence)
        #expect(group.map(\.sequence) == Array(first..<first + 20))
        await journal.close()
    }

    @Test("a transaction's projection changes commit with its events; a throwing one leaves nothing")
    func projectionsCommitWithEvents() async throws {
        struct Refused: Error {}
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal, projections: ["consent"])
        let sequence = try await journal.transact { transaction in
            let event = try transaction.append(testDraft("consent-granted"))
            try transaction.projection("consent").put(event.sequence.bigEndianBytes, for: Array("alice/web".utf8))
            return event.sequence
        }
        let headBefore = journal.head
        await #expect(throws: Refused.self) {
            try await journal.transact { transaction in
                try transaction.append(testDraft("never-stored"))
                try transaction.projection("consent").put([1], for: Array("mallory/web".utf8))
                throw Refused()
            }
        }
        #expect(journal.head == headBefore)
        try journal.read { snapshot in
            let consent = try snapshot.projection("consent")
            #expect(try consent.get(Array("alice/web".utf8)) == sequence.bigEndianBytes)
            #expect(try consent.get(Array("mallory/web".utf8)) == nil)
            #expect(try snapshot.event(sequence)?.payload == testDraft("consent-granted").payload)
            #expect(try snapshot.head.sequence == sequence)
        }
        await #expect(throws: JournalError.self) {
            try await journal.transact { try $0.projection("undeclared").get([1]) }
        }
        await journal.close()
    }

    @Test("of many concurrent transactions claiming one item, exactly one succeeds")
    func exactlyOnceUnderConcurrency() async throws {
        struct AlreadyClaimed: Error {}
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal, projections: ["codes"])
        let code = Array("code-123".utf8)
        try await journal.transact { transaction in
            try transaction.append(testDraft("issued"))
            try transaction.projection("codes").put([0], for: code)
        }
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for attempt in 0..<50 {
                group.addTask {
                    do {
                        try await journal.transact { transaction in
                            let codes = try transaction.projection("codes")
                            guard try codes.get(code) == [0] else { throw AlreadyClaimed() }
                            try transaction.append(testDraft("redeemed-\(attempt)"))
                            try codes.put([1], for: code)
                        }
                        return true
                    } catch {
                        return false
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        var redemptions = 0
        try journal.read { snapshot in
            try snapshot.forEachEvent { event in
                if String(decoding: event.payload, as: UTF8.self).contains("redeemed-") { redemptions += 1 }
                return true
            }
        }
        #expect(redemptions == 1)
        await journal.close()
    }

    @Test("when the LMDB map fills up it grows, and no event is lost")
    func mapGrowsWhenFull() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal, initialMapSize: 256 << 10)
        let big = Array(repeating: UInt8(ascii: "z"), count: 48 << 10)
        var sequences: [UInt64] = []
        for index in 0..<40 {
            sequences.append(try await journal.append(EventDraft(type: "test.big", payload: big + Array("\(index)".utf8))).sequence)
        }
        #expect(journal.statistics.storageRetries > 0)
        #expect(sequences == Array(2...41))
        await journal.close()
        let reader = try JournalReader(directory: directory.journal)
        #expect(try reader.verify(trust: .genesisKey).get().eventCount == 41)
        let last = try #require(try reader.read { try $0.event(41) })
        #expect(last.payload == big + Array("39".utf8))
    }

    @Test("reopening continues the same chain, Merkle tree and key")
    func reopenContinues() async throws {
        let directory = TemporaryDirectory()
        var journal = try openJournal(directory.journal)
        for index in 0..<7 { try await journal.append(testDraft("before-\(index)")) }
        let id = journal.journalID
        let key = journal.activeKeyID
        await journal.close()
        journal = try openJournal(directory.journal)
        #expect(journal.journalID == id)
        #expect(journal.activeKeyID == key)
        #expect(journal.head.sequence == 8)
        for index in 0..<5 { try await journal.append(testDraft("after-\(index)")) }
        let checkpoint = try await journal.checkpoint()
        #expect(checkpoint.checkpoint.treeSize == 13)
        await journal.close()
        let report = try JournalReader(directory: directory.journal).verify(trust: .genesisKey).get()
        #expect(report.eventCount == 13)
        #expect(report.rootHash == checkpoint.checkpoint.rootHash)
    }

    @Test("a journal refuses to open with another signing key, or without its key file")
    func wrongKeyIsRefused() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        await journal.close()
        let keyPath = directory.journal + ".key"
        try FileManager.default.removeItem(atPath: keyPath)
        #expect(throws: JournalError.self) { try openJournal(directory.journal) }
        try JournalKeyFile(path: keyPath).create(.generate())
        do {
            _ = try openJournal(directory.journal)
            Issue.record("opened with a foreign key")
        } catch let error as JournalError {
            guard case .signingKeyMismatch = error else {
                Issue.record("unexpected error \(error)")
                return
            }
        }
    }

    @Test("a signing key file open to group or others is refused, naming the fix; at 0600 it opens", arguments: [0o644, 0o640, 0o604, 0o660])
    func exposedKeyIsRefused(mode: Int) async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        await journal.close()
        let keyPath = directory.journal + ".key"
        #expect(try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? NSNumber == 0o600)
        #expect(chmod(keyPath, mode_t(mode)) == 0)
        do {
            _ = try openJournal(directory.journal)
            Issue.record("opened with a key file of mode \(String(mode, radix: 8))")
        } catch let error as JournalError {
            #expect("\(error)".contains("mode \(String(mode, radix: 8))") && "\(error)".contains("chmod 600"), "\(error)")
        }
        #expect(chmod(keyPath, 0o600) == 0)
        await (try openJournal(directory.journal)).close()
    }

    @Test("every commit is sealed by a checkpoint; the witness gets one every interval, on demand and at close")
    func checkpointsAndWitness() async throws {
        let directory = TemporaryDirectory()
        let log = CheckpointLogFile(path: directory.path + "/checkpoints.log")
        var configuration = Journal.Configuration(keyBeside: directory.journal)
        configuration.witness = log
        configuration.witnessInterval = 10
        let journal = try Journal.open(directory: directory.journal, configuration)
        for index in 0..<25 { try await journal.append(testDraft("e\(index)")) }
        let onDemand = try await journal.checkpoint()
        #expect(onDemand.checkpoint.treeSize == 26)
        let again = try await journal.checkpoint()
        #expect(onDemand == again, "no new checkpoint without new events")
        try await journal.append(testDraft("last"))
        await journal.close()
        let stored = try JournalReader(directory: directory.journal).read { try $0.checkpoints() }
        #expect(stored.map(\.checkpoint.treeSize) == Array(1...27), "one checkpoint per commit (appends were sequential)")
        let witnessed = try log.read().map(\.checkpoint.treeSize)
        #expect(witnessed == [1, 11, 21, 26, 27], "genesis, every 10 events, on demand, at close")
        #expect(try log.read().allSatisfy { stored.contains($0) })
    }

    @Test("inclusion and consistency proofs from the stored tree verify against signed checkpoints")
    func proofsVerifyAgainstCheckpoints() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        for index in 0..<12 { try await journal.append(testDraft("p\(index)")) }
        let early = try await journal.checkpoint().checkpoint
        for index in 0..<21 { try await journal.append(testDraft("q\(index)")) }
        let late = try await journal.checkpoint().checkpoint
        try journal.read { snapshot in
            for sequence in 1...late.treeSize {
                let record = try #require(try snapshot.record(sequence))
                let proof = try snapshot.inclusionProof(sequence: sequence, treeSize: late.treeSize)
                try proof.verify(leafHash: MerkleHashing.leafHash(record), root: late.rootHash)
                #expect(throws: MerkleProofError.self) {
                    try proof.verify(leafHash: MerkleHashing.leafHash(record + [0]), root: late.rootHash)
                }
            }
            let consistency = try snapshot.consistencyProof(oldSize: early.treeSize, newSize: late.treeSize)
            try consistency.verify(oldRoot: early.rootHash, newRoot: late.rootHash)
            #expect(try snapshot.rootHash(treeSize: early.treeSize) == early.rootHash)
            #expect(throws: (any Error).self) { try snapshot.inclusionProof(sequence: 1, treeSize: late.treeSize + 1) }
        }
        await journal.close()
    }

    @Test("with the events before a cut gone, a subtree that straddles the cut is computed from the frontier's nodes stored at the cut and the records after it")
    func straddlingSubtrees() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        for index in 0..<44 { try await journal.append(testDraft("s\(index)")) }
        // 37 = 100101: the frontier at the cut is the subtrees of 32, 4 and 1 leaves; the proofs of events
        // 38 and after need subtrees of 2, 8 and 16 leaves that begin before it.
        let cut: UInt64 = 37
        let (size, expected) = try journal.read { snapshot in
            let size = try snapshot.head.sequence
            return (size, try ((cut + 1)...size).map { try snapshot.inclusionProof(sequence: $0, treeSize: size) })
        }
        try await journal.transact { transaction in
            try transaction.layout.storeFrontierNodes(at: cut, in: transaction.transaction)
            for sequence in 1...cut { try transaction.transaction.delete(sequence.bigEndianBytes, in: transaction.layout.events) }
        }
        try journal.read { snapshot in
            let gone = try snapshot.record(cut), kept = try snapshot.record(cut + 1)
            #expect(gone == nil && kept != nil)
            for (offset, sequence) in ((cut + 1)...size).enumerated() {
                let proof = try snapshot.inclusionProof(sequence: sequence, treeSize: size)
                #expect(proof == expected[offset], "#\(sequence)")
            }
        }
        await journal.close()
    }

    @Test("the writer stores Merkle nodes from level 4 up; proofs needing lower ones compute them from the events, as a whole tree in memory gives them")
    func lowMerkleLevelsComputed() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        for index in 0..<70 { try await journal.append(testDraft("m\(index)")) }
        try journal.read { snapshot in
            let size = try snapshot.head.sequence
            var levels: [Int] = []
            try snapshot.transaction.forEach(in: snapshot.layout.merkle, from: nil) { key, _ in
                levels.append(Int(key[8]))
                return true
            }
            // Every complete subtree of 16 leaves or more, and nothing below.
            #expect(!levels.isEmpty && levels.allSatisfy { $0 >= JournalLayout.lowestStoredMerkleLevel })
            let complete = (JournalLayout.lowestStoredMerkleLevel..<64).reduce(0) { $0 + Int(size >> UInt64($1)) }
            #expect(levels.count == complete)
            var tree = InMemoryMerkleTree()
            for sequence in 1...size { tree.append(leafHash: MerkleHashing.leafHash(try #require(try snapshot.record(sequence)))) }
            for treeSize in 1...size {
                #expect(try snapshot.rootHash(treeSize: treeSize) == tree.root(ofSize: treeSize))
                for sequence in 1...treeSize {
                    let stored = try snapshot.inclusionProof(sequence: sequence, treeSize: treeSize)
                    #expect(stored == (try tree.inclusionProof(leafIndex: sequence - 1, treeSize: treeSize)))
                }
                let consistency = try snapshot.consistencyProof(oldSize: treeSize, newSize: size)
                #expect(consistency == (try tree.consistencyProof(oldSize: treeSize, newSize: size)))
            }
        }
        await journal.close()
    }

    @Test("a rotation interrupted before its event committed is abandoned; one interrupted after is finished")
    func interruptedRotationRecovers() async throws {
        let directory = TemporaryDirectory()
        let keyPath = directory.journal + ".key"
        var journal = try openJournal(directory.journal)
        let original = journal.activeKeyID
        await journal.close()

        // Crash before the rotation event: a staged key that the journal never adopted.
        try JournalKeyFile(path: keyPath + ".next").create(.generate())
        journal = try openJournal(directory.journal)
        #expect(journal.activeKeyID == original)
        #expect(!FileManager.default.fileExists(atPath: keyPath + ".next"))

        // Crash after the rotation event but before the rename: simulate by restoring the old key file
        // next to the staged new one.
        let oldKey = try JournalKeyFile(path: keyPath).load()
        let rotated = try await journal.rotateSigningKey()
        await journal.close()
        let newKey = try JournalKeyFile(path: keyPath).load()
        #expect(newKey.keyID == rotated)
        try FileManager.default.removeItem(atPath: keyPath)
        try JournalKeyFile(path: keyPath).create(oldKey)
        try JournalKeyFile(path: keyPath + ".next").create(newKey)
        journal = try openJournal(directory.journal)
        #expect(journal.activeKeyID == rotated)
        try await journal.append(testDraft("after-rotation"))
        await journal.close()
        #expect(try JournalReader(directory: directory.journal).verify(trust: .pinned([PinnedKey(oldKey.publicKey)])).get().keyIDs == [original, rotated])
    }

    @Test("an event prepared under a key rotated away is signed again by the active key when chained, in a later batch or after a rotation in its own; one prepared under the active key is kept as signed")
    func preparedAcrossRotation() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        let original = journal.activeKeyID
        let before = try journal.prepare(testDraft("prepared-before"))
        let rotated = try await journal.rotateSigningKey()
        let after = try journal.prepare(testDraft("prepared-after"))
        #expect([before, after].map(\.content.keyID) == [original, rotated])
        // A rotation queued before an append in one batch: in one transaction here.
        let third = Ed25519SigningKey.generate()
        let journalID = journal.journalID
        let sequences = try await journal.transact { transaction in
            let chained = [try transaction.append(before).sequence, try transaction.append(after).sequence]
            try transaction.rotate(to: third, journalID: journalID)
            // Prepared before the rotation, and a draft the writer signs itself.
            return chained + [try transaction.append(after).sequence, try transaction.append(testDraft("drafted-after")).sequence]
        }
        await journal.close()
        let reader = try JournalReader(directory: directory.journal)
        let events = try reader.read { snapshot in try sequences.map { try #require(try snapshot.event($0)) } }
        #expect(events.map(\.keyID) == [rotated, rotated, third.keyID, third.keyID])
        #expect(events[0].signature != before.signature, "signed again by the active key")
        #expect(events[1].signature == after.signature, "kept as its caller signed it")
        #expect(events[2].signature != after.signature, "signed again after the rotation in its batch")
        #expect(try reader.verify(trust: .genesisKey).get().keyIDs == [original, rotated, third.keyID])
    }

    @Test("a request's events prepared together are signed as each would be alone, by the active key, in their order")
    func preparedTogether() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        let drafts = ["first", "second", "third"].map { testDraft($0) }
        let together = try journal.prepareAll(drafts)
        #expect(together == (try drafts.map { try journal.prepare($0) }))
        #expect(together.map(\.content.keyID) == Array(repeating: journal.activeKeyID, count: 3))
        #expect(try journal.prepareAll([]).isEmpty)
        let rotated = try await journal.rotateSigningKey()
        #expect(try journal.prepareAll(drafts).map(\.content.keyID) == Array(repeating: rotated, count: 3), "the key active now")
        await journal.close()
    }

    @Test("stale reader slots left by a killed process are cleared at open")
    func staleReadersAreCleared() async throws {
        let directory = TemporaryDirectory()
        do {
            let journal = try openJournal(directory.journal)
            await journal.close()
        }
        // One reader stays alive (so the lock file is not simply re-initialised), one is killed mid-read.
        let survivor = try startHoldingReader(directory.journal)
        let victim = try startHoldingReader(directory.journal)
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        let environment = try LMDBEnvironment(path: directory.journal, options: .init())
        #expect(try environment.clearStaleReaders() == 1)
        #expect(try environment.clearStaleReaders() == 0)
        kill(survivor.processIdentifier, SIGKILL)
        survivor.waitUntilExit()
    }

    @Test("reader slots exhausted: a read fails with readers-full while live readers hold them, and succeeds once a holder dies")
    func readerSlotExhaustion() async throws {
        let directory = TemporaryDirectory()
        do {
            let journal = try openJournal(directory.journal)
            try await journal.append(testDraft("one"))
            await journal.close()
        }
        // The lock file's reader table is sized by whoever creates it: recreate it with two slots.
        try FileManager.default.removeItem(atPath: directory.journal + "/lock.mdb")
        let environment = try LMDBEnvironment(path: directory.journal, options: .init(maxReaders: 2))
        let first = try startHoldingReader(directory.journal)
        defer {
            kill(first.processIdentifier, SIGKILL)
            first.waitUntilExit()
        }
        let second = try startHoldingReader(directory.journal)
        defer {
            kill(second.processIdentifier, SIGKILL)
            second.waitUntilExit()
        }
        do {
            try environment.withReadTransaction { _ in }
            Issue.record("a read began although both reader slots are held by live processes")
        } catch let error as LMDBError {
            #expect(error.isReadersFull, "\(error)")
        }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        // The dead holder's slot is reclaimed on demand, without reopening anything.
        let read = try environment.withReadTransaction { _ in true }
        #expect(read)
    }

    @Test("a journal of another format version is refused, by the writer and by readers, naming the version")
    func unsupportedFormatIsRefused() async throws {
        let directory = TemporaryDirectory()
        do {
            let journal = try openJournal(directory.journal)
            await journal.close()
        }
        try editMeta(of: directory.journal) { transaction, meta in
            try transaction.put(Array("9".utf8), for: JournalLayout.MetaKey.format, in: meta)
        }
        try expectUnsupportedFormat("9", in: directory.journal)

        // A journal that holds events but no format version at all is refused too.
        try editMeta(of: directory.journal) { transaction, meta in
            _ = try transaction.delete(JournalLayout.MetaKey.format, in: meta)
        }
        try expectUnsupportedFormat("none", in: directory.journal)
    }

    /// Changes the `meta` table of a closed journal directly in LMDB, as a tamperer or an old version would.
    private func editMeta(of journal: String, _ edit: (LMDBTransaction, LMDBDatabase) throws -> Void) throws {
        var options = LMDBEnvironment.Options()
        options.maxDatabases = 8
        let environment = try LMDBEnvironment(path: journal, options: options)
        defer { environment.close() }
        let transaction = try environment.beginWriteTransaction()
        do {
            try edit(transaction, try environment.openDatabase("meta", in: transaction, create: false))
        } catch {
            transaction.abort()
            throw error
        }
        try transaction.commit()
    }

    private func expectUnsupportedFormat(_ version: String, in journal: String) throws {
        for open in [{ _ = try openJournal(journal) }, { _ = try JournalReader(directory: journal) }] as [() throws -> Void] {
            do {
                try open()
                Issue.record("a format 9 journal was opened")
            } catch let error as JournalError {
                guard case .unsupportedFormat(version) = error else {
                    Issue.record("unexpected error \(error)")
                    continue
                }
            }
        }
    }

    private func startHoldingReader(_ journal: String) throws -> Process {
        let process = Process()
        process.executableURL = productsDirectory.appendingPathComponent("authledger-bench")
        process.arguments = ["hold-reader", "--journal", journal]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        #expect(line.hasPrefix("holding"))
        return process
    }

    @Test("appends after close fail with .closed")
    func appendAfterClose() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        await journal.close()
        do {
            try await journal.append(testDraft("late"))
            Issue.record("append after close succeeded")
        } catch let error as JournalError {
            guard case .closed = error else { Issue.record("unexpected \(error)"); return }
        }
    }
}

@Suite("Compact payloads in records: the schema version's top bit declares them")
struct CompactPayloadRecordTests {
    @Test("a compact payload under a flagged schema version is appended and read back as stored; a flagged version over other bytes is refused by the writer")
    func writerChecksTheFlag() async throws {
        let directory = TemporaryDirectory()
        let journal = try openJournal(directory.journal)
        let compact = try CompactCoding.encode(["user": "alice"])
        let receipt = try await journal.append(EventDraft(type: "test.event", schemaVersion: 0x8001, payload: compact))
        let stored = try #require(try journal.read { try $0.event(receipt.sequence) })
        #expect(stored.payload == compact && stored.schemaVersion == 0x8001)
        #expect(try PayloadCoding.decode([String: String].self, from: stored.payload) == ["user": "alice"])
        await #expect(throws: JournalError.self) {
            try await journal.append(EventDraft(type: "test.event", schemaVersion: 0x8001, payload: Array(#"{"user":"alice"}"#.utf8)))
        }
        await #expect(throws: JournalError.self) { try await journal.append(EventDraft(type: "test.event", schemaVersion: 0x8001, payload: [])) }
        // Without the flag any bytes are the application's own, compact-looking ones too.
        _ = try await journal.append(EventDraft(type: "test.event", schemaVersion: 1, payload: compact))
        await journal.close()
    }

    @Test("a record whose schema version declares a compact payload that is not one is malformed")
    func readerChecksTheFlag() throws {
        let key = Ed25519SigningKey(seed: Array(repeating: 7, count: 32))!
        func record(schemaVersion: UInt16, payload: [UInt8]) -> [UInt8] {
            let content = EventContent(journalID: Array(0..<16), type: "auth.code.issued", schemaVersion: schemaVersion, keyID: key.keyID, payload: payload)
            return EventEnvelope(
                sequence: 2, timestamp: LedgerTimestamp(microsecondsSinceEpoch: 1), previousHash: .zero, content: content,
                signature: content.signature(with: key)
            ).record
        }
        let json = Array(#"{"user":"alice"}"#.utf8)
        #expect(throws: EnvelopeDecodingError.payloadNotCompact) { try EventEnvelope(record: record(schemaVersion: 0x8002, payload: json)) }
        #expect(throws: EnvelopeDecodingError.payloadNotCompact) { try EventEnvelope(record: record(schemaVersion: 0xFFFF, payload: [])) }
        #expect(try EventEnvelope(record: record(schemaVersion: 2, payload: json)).payload == json)
        let compact = try CompactCoding.encode(["user": "alice"])
        #expect(try EventEnvelope(record: record(schemaVersion: 0x8002, payload: compact)).payload == compact)
    }
}
