import ArgumentParser
import Foundation
import Logging
import LedgerCore
import LedgerJournal
import LedgerLMDB
import LedgerPostgres

/// Options every AuthLedger command shares: where the journal is.
public struct JournalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The journal directory (with --store: where its key files are named from).", valueName: "dir"))
    public var journal: String = ProcessInfo.processInfo.environment["AUTHLEDGER_JOURNAL"] ?? "journals/dev"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Keep the journal in PostgreSQL instead: postgres://USER@HOST:PORT/DATABASE (password from PGPASSWORD). Many servers may share it.",
            valueName: "url"))
    public var store: String?

    public init() {}

    /// `--store`, or else `AUTHLEDGER_STORE`.
    private var storeURL: String? { store ?? ProcessInfo.processInfo.environment["AUTHLEDGER_STORE"] }

    /// Whether the journal is in PostgreSQL (`--store` or `AUTHLEDGER_STORE`), shared by many servers.
    public var isShared: Bool { storeURL != nil }

    /// Where the journal is, for messages: the directory, or the database without its password.
    public var location: String {
        guard let store = storeURL else { return journal }
        return (try? PostgresAddress(url: store).description) ?? store
    }

    /// The journal's store, opened for writing the journal `configuration` describes (its projections).
    /// - Parameter logger: where a PostgreSQL store logs (the server's, in its format); text lines on
    ///   stderr by default.
    public func openStorage(writing configuration: Journal.Configuration, logger: Logger? = nil) throws(JournalError) -> any JournalStorage {
        if let store = storeURL { return try PostgresStorage(address: try PostgresAddress(url: store), logger: logger ?? Self.storeLogger) }
        return try LMDBStorage(writingTo: journal, for: configuration)
    }

    /// The journal's store, opened for reading, with `tables` projection tables.
    public func openStorage(readingTables tables: Int) throws(JournalError) -> any JournalStorage {
        if let store = storeURL { return try PostgresStorage(address: try PostgresAddress(url: store), logger: Self.storeLogger) }
        return try LMDBStorage(readingFrom: journal, tables: tables)
    }

    /// A PostgreSQL store's logger when the command gives none: escaped text lines on stderr
    /// (``TextLogHandler``). Not swift-log's default handler, which writes values as they are and, since
    /// postgres-nio sets the connection's id in its logger's metadata for every statement, formats the
    /// whole metadata again for each one (its `StreamLogHandler` does on every change): a few percent of
    /// a node's journal writer, measured by `perf`.
    static var storeLogger: Logger { Logger(label: "authledger.postgres", factory: { TextLogHandler(label: $0) }) }
}

/// Output formats: human-readable text, or one JSON object per line.
public enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text
    case jsonl
}

/// The exit codes of the spec: 0 success, 1 a failed check, 2 bad usage or input.
public enum CommandExit {
    /// A check failed (verification or replay mismatch): exit 1 with a one-line reason on stderr.
    public static func checkFailed(_ reason: String) -> ExitCode {
        printError(reason)
        return ExitCode(1)
    }

    /// Bad usage or unusable input: exit 2 with a one-line reason on stderr.
    public static func badInput(_ reason: String) -> ExitCode {
        printError(reason)
        return ExitCode(2)
    }

    public static func printError(_ line: String) {
        // One line, whatever the reason quotes from the journal or the command line.
        CommandOutput.write(error: TerminalText.escape(line))
    }
}

/// Writes one JSON object per line, keys sorted (to standard output, or the ``CommandOutput/capture``).
public func printJSONLine(_ object: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    else { return }
    CommandOutput.write(line: String(decoding: data, as: UTF8.self))
}

/// Reads pinned keys: signed-note verifier keys (`name+hash+base64`), each optionally followed by its
/// tenure (`#first-#last`, `#first-`), one per line; blank lines and `#` comments are skipped.
public func readPinnedKeys(path: String) throws -> [PinnedKey] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return try text.split(separator: "\n").compactMap { line in
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { return nil }
        return try PinnedKey(parsing: trimmed)
    }
}

/// The lines of a pin file for a verified journal: each key of its chain with its tenure, as
/// `authledger keys export-public` and a compliance bundle's `keys.txt` write them.
public func pinnedKeyLines(_ report: VerificationReport, origin: String) -> String {
    zip(report.keys, report.tenures).map { PinnedKey(NoteVerifierKey(name: origin, publicKey: $0), tenure: $1).description }
        .joined(separator: "\n") + "\n"
}

/// Opens a journal read-only, with the projection tables `projections` readable, turning failure into
/// exit 2 with the reason.
public func openReader(_ options: JournalOptions, projections: [String] = []) throws -> JournalReader {
    do {
        return try JournalReader(storage: try options.openStorage(readingTables: projections.count), projections: projections)
    } catch {
        throw CommandExit.badInput("\(error)")
    }
}

/// `--public-key FILE`: the keys an auditor pins, or trust on first use without it.
public struct PinnedKeyOptions: ParsableArguments {
    @Option(
        name: .customLong("public-key"),
        help: ArgumentHelp(
            "Pinned keys: signed-note verifier keys with their tenures, one per line (from `authledger keys export-public`).", valueName: "file"))
    public var publicKey: String?

    public init() {}

    /// The trust to verify with: the pinned keys, or the journal's own genesis key; exit 2 when the file
    /// cannot be read.
    public func trust() throws -> JournalVerifier.Trust {
        guard let publicKey else { return .genesisKey }
        do {
            return .pinned(try readPinnedKeys(path: publicKey))
        } catch {
            throw CommandExit.badInput("cannot read pinned keys from \(publicKey): \(error)")
        }
    }
}

/// Options of the commands that write to a journal: its signing key and its checkpoint witness.
public struct JournalWriterOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Journal signing key file (default: <journal>.key). Each server on a --store journal may have its own (authledger keys add).", valueName: "file"))
    public var key: String?

    @Option(
        name: .customLong("checkpoint-log"),
        help: ArgumentHelp("Witness log: signed checkpoints are also appended to this file, outside the journal.", valueName: "file"))
    public var checkpointLog: String?

    public init() {}

    /// How to open the journal of `options` for writing, with `projections`.
    public func configuration(_ options: JournalOptions, projections: [String] = []) -> Journal.Configuration {
        var configuration = Journal.Configuration(keyBeside: options.journal, keyFile: key)
        configuration.projections = projections
        configuration.witness = checkpointLog.map { CheckpointLogFile(path: $0) }
        return configuration
    }

    /// Opens the journal of `options` for writing (creating it when empty), with `projections`, turning
    /// failure into exit 2 with the reason.
    public func openJournal(_ options: JournalOptions, projections: [String] = []) throws -> Journal {
        let configuration = configuration(options, projections: projections)
        do {
            return try Journal.open(configuration, storage: try options.openStorage(writing: configuration))
        } catch {
            throw CommandExit.badInput("\(error)")
        }
    }

    /// Opens the journal of `options` for writing, runs `change` on it and closes it; a failure of
    /// `change` closes it too and is exit 2, saying that `what` failed.
    public func withJournal<R>(
        _ options: JournalOptions, projections: [String] = [], failing what: String, _ change: (Journal) async throws -> R
    ) async throws -> R {
        let journal = try openJournal(options, projections: projections)
        do {
            let result = try await change(journal)
            await journal.close()
            return result
        } catch {
            await journal.close()
            throw CommandExit.badInput("\(what) failed: \(error)")
        }
    }
}

/// A point in a journal, as the replay commands take it: RFC 3339 time or `#N` (a sequence number).
public enum JournalPoint: Sendable, Equatable {
    case time(LedgerTimestamp)
    case sequence(UInt64)

    public init?(_ text: String) {
        if text.hasPrefix("#"), let sequence = UInt64(text.dropFirst()) {
            self = .sequence(sequence)
        } else if let time = LedgerTimestamp(rfc3339: text) {
            self = .time(time)
        } else {
            return nil
        }
    }

    /// The sequence range `from...to` covers (times resolved by binary search; `to` is inclusive), or
    /// `nil` when it covers no event.
    public static func range(from: String?, to: String?, in reader: JournalReader) throws -> ClosedRange<UInt64>? {
        func parse(_ text: String?, _ name: String) throws -> JournalPoint? {
            guard let text else { return nil }
            guard let point = JournalPoint(text) else { throw CommandExit.badInput("--\(name) \(text) is neither RFC 3339 nor #N") }
            return point
        }
        let start = try parse(from, "from")
        let end = try parse(to, "to")
        return try reader.read { snapshot in
            let head = try snapshot.head.sequence
            let lower: UInt64 =
                switch start {
                case nil: try snapshot.firstSequence
                case .sequence(let sequence): max(sequence, try snapshot.firstSequence)
                case .time(let time): try snapshot.firstSequence(atOrAfter: time)
                }
            let upper: UInt64 =
                switch end {
                case nil: head
                case .sequence(let sequence): min(sequence, head)
                case .time(let time): try snapshot.firstSequence(atOrAfter: time.adding(microseconds: 1)) - 1
                }
            return lower <= upper ? lower...upper : nil
        }
    }
}

/// Progress on long runs: a self-overwriting line on a terminal, nothing when stderr is not one
/// (logs and pipes get only the final result).
public struct ProgressLine: Sendable {
    let label: String
    let enabled = isatty(STDERR_FILENO) == 1

    public init(_ label: String) {
        self.label = label
    }

    /// Reports `count` every 10,000 items.
    public func update(_ count: UInt64) {
        guard enabled, count % 10_000 == 0 else { return }
        FileHandle.standardError.write(Data("\r\(label) \(count) events…".utf8))
    }

    /// Clears the line.
    public func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

/// `--data-key FILE`: the journal's data key (default `<journal>.datakey`; see LedgerCore's `DataKey`).
public struct DataKeyOptions: ParsableArguments {
    @Option(
        name: .customLong("data-key"),
        help: ArgumentHelp("The journal's data key file (default: <journal>.datakey). Every server of a journal needs the same one.", valueName: "file"))
    public var dataKey: String?

    public init() {}

    /// The key file: `--data-key`, else `<journal>.datakey`.
    public func file(_ options: JournalOptions) -> JournalDataKeyFile {
        dataKey.map(JournalDataKeyFile.init(path:)) ?? JournalDataKeyFile(journal: options.journal)
    }

    /// Reads the data key, creating it when there is none; exit 2 with the reason when it cannot.
    public func loadOrCreate(_ options: JournalOptions) throws -> DataKey {
        do {
            return try file(options).loadOrCreate()
        } catch {
            throw CommandExit.badInput("\(error)")
        }
    }

    /// The data key if its file exists (sealed personal values are then shown opened), `nil` if it does
    /// not; exit 2 when it exists but cannot be read.
    public func loadIfPresent(_ options: JournalOptions) throws -> DataKey? {
        let file = file(options)
        guard FileManager.default.fileExists(atPath: file.path) else { return nil }
        do {
            return try file.load()
        } catch {
            throw CommandExit.badInput("\(error)")
        }
    }

    /// Reads the data key, which must exist; exit 2 saying why `purpose` needs it otherwise.
    public func load(_ options: JournalOptions, for purpose: String) throws -> DataKey {
        do {
            return try file(options).load()
        } catch {
            throw CommandExit.badInput("\(purpose) needs the journal's data key: \(error)")
        }
    }
}

extension AsyncParsableCommand {
    /// What `main()` does, with SPEC.md's exit codes: a usage error that swift-argument-parser finds itself (an
    /// unknown option or subcommand, a missing argument, a value it cannot parse) exits 2 with a one-line reason
    /// on stderr — not 64 with the usage text. `--help`, `--version` and the commands' own exits are unchanged.
    public static func mainWithUsageErrorsAsTwo() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            let reason = message(for: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? "bad usage"
            CommandExit.printError(reason + " (see --help)")
            Foundation.exit(2)
        }
    }
}
