import Foundation
import LedgerJournal
import Synchronization

/// An exclusive `flock` on `<journal>/writer.lock`, held while a ``Journal`` is open: two writers would
/// each extend the hash chain from their own idea of its end, so a second one is refused at open.
final class WriterLock: Sendable {
    private let descriptor: Mutex<Int32>
    let path: String

    init(directory: String) throws(JournalError) {
        path = directory + "/writer.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .directory(path: directory, reason: "cannot create writer.lock: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            Foundation.close(fd)
            throw .lockedByAnotherWriter(path: path)
        }
        descriptor = Mutex(fd)
    }

    func release() {
        descriptor.withLock { fd in
            if fd >= 0 {
                flock(fd, LOCK_UN)
                Foundation.close(fd)
                fd = -1
            }
        }
    }

    deinit { release() }
}
