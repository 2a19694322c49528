import Foundation
import Synchronization
import Testing
import LedgerCore
@testable import LedgerJournal
@testable import LedgerLMDB

/// A fresh directory under the system temporary directory, removed when the value is released.
final class TemporaryDirectory: Sendable {
    let path: String

    init(_ label: String = "journal") {
        let base = FileManager.default.temporaryDirectory.path
        path = "\(base)/authledger-tests-\(label)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// The journal directory inside it (the key file lands beside it, as `journal.key`).
    var journal: String { path + "/journal" }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A draft with a JSON payload carrying `marker`, easy to find in the raw LMDB file.
func testDraft(_ marker: String, type: EventType = "test.event") -> EventDraft {
    EventDraft(type: type, payload: Array("{\"marker\":\"\(marker)\"}".utf8))
}

/// Opens a journal in `directory` with test-friendly defaults.
func openJournal(
    _ directory: String, projections: [String] = [], witness: (any CheckpointWitness)? = nil,
    witnessInterval: UInt64 = 4096, initialMapSize: Int = 8 << 20,
    clock: (@Sendable () -> LedgerTimestamp)? = nil
) throws -> Journal {
    var configuration = Journal.Configuration(keyBeside: directory)
    configuration.projections = projections
    configuration.witness = witness
    configuration.witnessInterval = witnessInterval
    if let clock { configuration.clock = clock }
    return try Journal.open(directory: directory, configuration, initialMapSize: initialMapSize)
}

/// Edits the journal's LMDB file directly, as an attacker with file access would (the journal must be
/// closed): raw LMDB operations on the `events`, `checkpoints` and `meta` databases.
func withRawLMDB(_ directory: String, _ body: (any StorageWriteTransaction, JournalLayout) throws -> Void) throws {
    let storage = try LMDBStorage(writingTo: directory, initialMapSize: 64 << 20, tables: 0)
    defer { storage.close() }
    let layout = try JournalLayout.open(in: storage, projections: [], create: false)
    let transaction = try storage.beginWrite()
    do {
        try body(transaction, layout)
    } catch {
        transaction.abort()
        throw error
    }
    try transaction.commit()
}

/// Flips one bit of every occurrence of `marker` in the journal's `data.mdb`, by plain file I/O.
/// (LMDB copies pages on write, so stale copies of a record may linger in free pages; flipping them all
/// makes sure the live one is hit.) Returns how many occurrences were changed.
@discardableResult
func flipByteInDataFile(_ directory: String, marker: String, offsetInMarker: Int = 0) throws -> Int {
    let path = directory + "/data.mdb"
    var data = try Data(contentsOf: URL(fileURLWithPath: path))
    var changed = 0
    var searchStart = data.startIndex
    while let range = data.range(of: Data(marker.utf8), in: searchStart..<data.endIndex) {
        data[range.lowerBound + offsetInMarker] ^= 0x01
        changed += 1
        searchStart = range.upperBound
    }
    try data.write(to: URL(fileURLWithPath: path))
    return changed
}

/// The directory holding the built executables (beside the test bundle).
let productsDirectory: URL = {
    let candidates = [
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
        Bundle.main.bundleURL,
        Bundle.main.bundleURL.deletingLastPathComponent(),
    ]
    return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("authledger").path) }
        ?? candidates[0]
}()

/// The result of running one of the project's executables.
struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `executable` (a product name such as `authledger-replay`) with `arguments`, waiting for it to exit.
func runProduct(_ executable: String, _ arguments: [String], currentDirectory: String? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = productsDirectory.appendingPathComponent(executable)
    process.arguments = arguments
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Drain stderr on another thread so that a chatty child cannot fill one pipe while we wait on the other.
    let stderrData = Mutex(Data())
    let drained = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        let data = err.fileHandleForReading.readDataToEndOfFile()
        stderrData.withLock { $0 = data }
        drained.signal()
    }
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    drained.wait()
    let stderr = stderrData.withLock { $0 }
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: stderr, as: UTF8.self))
}

/// Flips a byte of `marker` in `data.mdb` by plain file I/O, and checks that the record stored under
/// `sequence` is one that changed (not only a stale page copy).
func flipMarkerInDataFile(_ directory: String, marker: String, storedAt sequence: UInt64) throws {
    let found = try flipByteInDataFile(directory, marker: marker)
    try #require(found > 0, "\(marker) is not in data.mdb")
    let reader = try JournalReader(directory: directory)
    defer { reader.close() }
    let record = try reader.read { try $0.record(sequence) }
    let stored = try #require(record, "event #\(sequence) is not stored")
    try #require(
        !String(decoding: stored, as: UTF8.self).contains(marker),
        "the flipped byte was in a stale copy of event #\(sequence), not in its stored record")
}
