import Foundation

/// The process's resident memory as Linux accounts it (`/proc/self/status`): anonymous pages (heap,
/// stacks) and file-backed pages (the executable, libraries and the journal's memory map).
struct ResidentMemory: Sendable, Equatable {
    var anonymous: Int
    var fileBacked: Int

    /// Now, or `nil` where `/proc/self/status` has no such figures (not Linux).
    static func current() -> ResidentMemory? {
        // Read to the end: `String(contentsOfFile:)` stops at the size procfs reports for the file.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/status"), let data = try? handle.readToEnd() else { return nil }
        try? handle.close()
        return parse(String(decoding: data, as: UTF8.self))
    }

    /// The `RssAnon` and `RssFile` lines of a `/proc/<pid>/status` text, in bytes.
    static func parse(_ status: String) -> ResidentMemory? {
        var anonymous: Int?
        var fileBacked: Int?
        for line in status.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let kilobytes = Int(fields[1]) else { continue }
            switch fields[0] {
            case "RssAnon:": anonymous = kilobytes * 1024
            case "RssFile:": fileBacked = kilobytes * 1024
            default: break
            }
        }
        guard let anonymous, let fileBacked else { return nil }
        return ResidentMemory(anonymous: anonymous, fileBacked: fileBacked)
    }
}
