import Foundation
import LedgerCore

/// The journal's signing key on disk: a small text file with mode 0600, kept outside the LMDB files
/// (by default `<journal>.key` beside the journal directory), so that copying a journal to an auditor
/// never copies the key.
///
/// ```
/// AuthLedger ed25519 signing key v1
/// <base64 seed>
/// ```
///
/// Rotation is crash-safe: the new key is first written to `<file>.next`, the rotation event is
/// committed, and only then is `.next` renamed over the file. ``Journal`` finishes or discards a
/// leftover `.next` at open, depending on whether the rotation event made it into the journal.
public struct JournalKeyFile: Sendable {
    /// The key file's path.
    public let path: String

    static let header = "AuthLedger ed25519 signing key v1"

    public init(path: String) {
        self.path = path
    }

    /// Where a rotation stages the incoming key.
    public var stagingPath: String { path + ".next" }

    /// Whether the file exists.
    public var exists: Bool { FileManager.default.fileExists(atPath: path) }

    /// Reads the key.
    public func load() throws(JournalError) -> Ed25519SigningKey {
        try Self.load(from: path)
    }

    /// Writes a new key file (mode 0600), durably; fails if one exists.
    public func create(_ key: Ed25519SigningKey) throws(JournalError) {
        try Self.write(key, to: path)
    }

    /// Reads the key at `path` (see LedgerCore's `PrivateKeyFile`: a regular file of this user, mode 0600).
    static func load(from path: String) throws(JournalError) -> Ed25519SigningKey {
        let bytes: [UInt8]
        do {
            bytes = try PrivateKeyFile.read(path)
        } catch .exposed(let mode) {
            throw .keyFile(path: path, reason: "\(PrivateKeyFile.Refusal.exposed(mode: mode)): chmod 600 '\(path)'")
        } catch {
            throw .keyFile(path: path, reason: "\(error)")
        }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        guard lines.count == 2, lines[0] == header, let seed = Base64.decode(String(lines[1])),
            let key = Ed25519SigningKey(seed: seed)
        else { throw .keyFile(path: path, reason: "is not an AuthLedger signing key file") }
        return key
    }

    static func write(_ key: Ed25519SigningKey, to path: String) throws(JournalError) {
        let contents = Array("\(header)\n\(Base64.encode(key.seed))\n".utf8)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw .keyFile(path: path, reason: "cannot be created: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let written = contents.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        guard written == contents.count, fsync(fd) == 0 else {
            unlink(path)
            throw .keyFile(path: path, reason: "cannot be written: \(String(cString: strerror(errno)))")
        }
        syncDirectory(of: path)
    }

    /// Moves the staged key over the key file, atomically and durably.
    func promoteStagedKey() throws(JournalError) {
        guard rename(stagingPath, path) == 0 else {
            throw .keyFile(path: path, reason: "rotation could not replace it: \(String(cString: strerror(errno)))")
        }
        Self.syncDirectory(of: path)
    }

    func discardStagedKey() {
        unlink(stagingPath)
        Self.syncDirectory(of: path)
    }

    static func syncDirectory(of path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}
