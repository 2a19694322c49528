import Foundation
import LedgerCore
import LedgerJournal
import Logging

/// A swift-log handler writing one human-readable line per message to stderr (`--log-format text`, the
/// default): `time level label: message key=value …`.
///
/// Hand-written instead of swift-log's `StreamLogHandler` because that one writes messages and metadata
/// as they are: a `client_id` holding a newline or an ANSI escape sequence, logged from an unauthenticated
/// request, would forge log lines or rewrite the operator's terminal. Here every message and metadata
/// value goes through ``TerminalText/escape(_:)``, so one entry is always one line.
public struct TextLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let write: @Sendable (String) -> Void

    /// - Parameter write: where lines go (stderr by default; tests collect them).
    public init(label: String, write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var text = "\(LogTime.now()) \(event.level) \(TerminalText.escape(label)): \(TerminalText.escape(event.message.description))"
        let all = metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 })
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            text += " \(TerminalText.escape(key))=\(TerminalText.escape(value.description))"
        }
        write(text + "\n")
    }
}

/// The time a log line is written, in RFC 3339 (UTC, microseconds).
///
/// Formatted by hand (``LedgerTimestamp/rfc3339``): Foundation's `ISO8601DateFormatter` builds an ICU
/// formatter per call, which cost about 15% of the server's CPU at one line per request.
enum LogTime {
    static func now() -> String { Journal.systemClock().rfc3339 }
}
