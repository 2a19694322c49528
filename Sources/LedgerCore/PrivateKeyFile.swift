#if canImport(Glibc)
import Glibc

private let systemRead = Glibc.read
#elseif canImport(Darwin)
import Darwin

private let systemRead = Darwin.read
#endif

/// Reading a file that holds a secret key, safely: the journal's signing key and the token signing keys.
///
/// The file is opened without following a symbolic link, checked on the open descriptor — a regular
/// file, owned by the user the process runs as, with no permission for group or others — and read from
/// that same descriptor, so what is checked is what is read. (This is the one place LedgerCore touches a
/// file: both key files, in two modules, need exactly this.) Only the last path component is protected
/// from links; the directories above it are the operator's to keep private.
public enum PrivateKeyFile {
    /// Why a key file was not read.
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        /// There is no file at the path.
        case missing
        /// It could not be opened or read (the reason from the system), or it is a symbolic link.
        case unreadable(String)
        /// It is not a regular file.
        case notRegularFile
        /// Another user owns it.
        case foreignOwner(uid: UInt32)
        /// Group or others may read or write it (the permission bits).
        case exposed(mode: UInt32)

        public var description: String {
            switch self {
            case .missing: "does not exist"
            case .unreadable(let reason): "cannot be read (\(reason))"
            case .notRegularFile: "is not a regular file"
            case .foreignOwner(let uid): "belongs to another user (uid \(uid))"
            case .exposed(let mode): "is open to group or others (mode \(String(mode, radix: 8))); a key file must be mode 0600"
            }
        }
    }

    /// The file's bytes, if it passes the checks.
    public static func read(_ path: String) throws(Refusal) -> [UInt8] {
        // O_NONBLOCK: a FIFO planted at the path must not block the open; fstat refuses it next.
        var descriptor: Int32
        repeat {
            descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        } while descriptor < 0 && errno == EINTR
        guard descriptor >= 0 else {
            let error = errno
            throw error == ENOENT ? .missing : .unreadable(String(cString: strerror(error)))
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .unreadable(String(cString: strerror(errno))) }
        guard status.st_mode & S_IFMT == S_IFREG else { throw .notRegularFile }
        guard status.st_size <= 1 << 20 else { throw .unreadable("larger than 1 MiB") }
        guard status.st_uid == geteuid() else { throw .foreignOwner(uid: UInt32(status.st_uid)) }
        guard status.st_mode & 0o077 == 0 else { throw .exposed(mode: UInt32(status.st_mode & 0o777)) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { systemRead(descriptor, $0.baseAddress, $0.count) }
            guard count >= 0 else {
                if errno == EINTR { continue }
                throw .unreadable(String(cString: strerror(errno)))
            }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
            guard bytes.count <= 1 << 20 else { throw .unreadable("larger than 1 MiB") }  // it grew while being read
        }
    }
}
