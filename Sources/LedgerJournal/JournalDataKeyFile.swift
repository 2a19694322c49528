import Foundation
import LedgerCore

/// The journal's data key on disk (see LedgerCore's `DataKey`): by default `<journal>.datakey` beside
/// the signing key, mode 0600, never inside the journal.
///
/// ```
/// AuthLedger data key v1
/// <base64 key>
/// ```
///
/// Every server of a journal needs the same one — the nodes of a cluster on one PostgreSQL journal share
/// it like their tenant file — or the pseudonyms they record of one value differ.
public struct JournalDataKeyFile: Sendable {
    /// The file's path.
    public let path: String

    static let header = "AuthLedger data key v1"

    public init(path: String) {
        self.path = path
    }

    /// The default file of the journal at `journal`: `<journal>.datakey` beside the directory (a trailing
    /// slash is dropped, as for the signing key, so the key never lands inside the journal's directory).
    public init(journal: String) {
        self.init(path: JournalSideFile.path(beside: journal, suffix: ".datakey"))
    }

    /// Reads the key (a regular file of this user, mode 0600; see LedgerCore's `PrivateKeyFile`).
    public func load() throws(JournalError) -> DataKey {
        let bytes: [UInt8]
        do {
            bytes = try PrivateKeyFile.read(path)
        } catch .missing {
            throw .keyFile(path: path, reason: "does not exist (the journal's data key; it is created by the first `authledger serve`)")
        } catch .exposed(let mode) {
            throw .keyFile(path: path, reason: "\(PrivateKeyFile.Refusal.exposed(mode: mode)): chmod 600 '\(path)'")
        } catch {
            throw .keyFile(path: path, reason: "\(error)")
        }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        guard lines.count == 2, lines[0] == Self.header, let raw = Base64.decode(String(lines[1])), let key = DataKey(bytes: raw) else {
            throw .keyFile(path: path, reason: "is not an AuthLedger data key file")
        }
        return key
    }

    /// Reads the key, creating the file with a new random key first when there is none. Two processes
    /// creating it at once get the same key: only one creation succeeds, the other reads it.
    public func loadOrCreate() throws(JournalError) -> DataKey {
        if case .failure(.missing) = Result(catching: { () throws(PrivateKeyFile.Refusal) in try PrivateKeyFile.read(path) }) {
            try create(.generate())
        }
        return try load()
    }

    /// Writes `key` to a new file (mode 0600), durably and atomically: written in full to a temporary file,
    /// then linked into place, which fails if a file is there already (then that one is kept and read).
    func create(_ key: DataKey) throws(JournalError) {
        let contents = Array("\(Self.header)\n\(Base64.encode(key.rawBytes))\n".utf8)
        let temporary = path + ".new-" + Hex.encode(SecureRandom.bytes(8))
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw .keyFile(path: path, reason: "cannot be created: \(String(cString: strerror(errno)))")
        }
        defer { unlink(temporary) }
        let written = contents.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == contents.count, synced else {
            throw .keyFile(path: path, reason: "cannot be written: \(String(cString: strerror(errno)))")
        }
        guard link(temporary, path) == 0 || errno == EEXIST else {
            throw .keyFile(path: path, reason: "cannot be created: \(String(cString: strerror(errno)))")
        }
        JournalKeyFile.syncDirectory(of: path)
    }
}
