import Foundation
import Synchronization

/// Where a command's output goes: standard output and error, or — inside ``CommandOutput/capturing(_:)`` —
/// a ``CapturedOutput``, so that another program (the investigation console) can show a command's very
/// answer without running it as a process.
///
/// ``printText(_:)``, ``printJSONLine(_:)`` and ``CommandExit`` write through it.
public enum CommandOutput {
    /// The capture of the command running in this task, if any.
    @TaskLocal public static var capture: CapturedOutput?

    /// Runs `body` with everything it prints captured; returns the capture.
    public static func capturing(_ body: () async throws -> Void) async rethrows -> CapturedOutput {
        let capture = CapturedOutput()
        try await $capture.withValue(capture) { try await body() }
        return capture
    }

    static func write(line: String) {
        if let capture { capture.append(line: line) } else { print(line) }
    }

    static func write(error: String) {
        if let capture {
            capture.append(error: error)
        } else {
            let program = (CommandLine.arguments.first as NSString?)?.lastPathComponent ?? "authledger"
            FileHandle.standardError.write(Data("\(program): \(error)\n".utf8))
        }
    }
}

/// The lines a command printed: its output and its one-line error reasons, in order.
public final class CapturedOutput: Sendable {
    private let state = Mutex<(lines: [String], errors: [String])>(([], []))

    public init() {}

    /// The lines of standard output.
    public var lines: [String] { state.withLock { $0.lines } }
    /// The reasons the command gave on standard error (already escaped, without the program's name).
    public var errors: [String] { state.withLock { $0.errors } }

    func append(line: String) { state.withLock { $0.lines.append(line) } }
    func append(error: String) { state.withLock { $0.errors.append(error) } }
}
