import Foundation
import LedgerCore
import Testing

@Suite("PrivateKeyFile: a key file is read only if it is a regular file of this user, mode 0600")
struct PrivateKeyFileTests {
    final class Directory {
        let path = FileManager.default.temporaryDirectory.path + "/authledger-keyfile-\(UUID().uuidString.prefix(8))"
        init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: path) }

        func file(_ name: String, _ contents: String, mode: Int) throws -> String {
            let file = path + "/" + name
            try contents.write(toFile: file, atomically: false, encoding: .utf8)
            #expect(chmod(file, mode_t(mode)) == 0)
            return file
        }
    }

    @Test("a 0600 file is read whole; a 0400 one too")
    func reads() throws {
        let directory = try Directory()
        #expect(try PrivateKeyFile.read(try directory.file("k", "secret\n", mode: 0o600)) == Array("secret\n".utf8))
        #expect(try PrivateKeyFile.read(try directory.file("r", "x", mode: 0o400)) == Array("x".utf8))
    }

    @Test("refusals: missing, open to group or others, a symbolic link, a directory")
    func refusals() throws {
        let directory = try Directory()
        #expect(throws: PrivateKeyFile.Refusal.missing) { try PrivateKeyFile.read(directory.path + "/none") }
        #expect(throws: PrivateKeyFile.Refusal.exposed(mode: 0o644)) { try PrivateKeyFile.read(try directory.file("a", "x", mode: 0o644)) }
        #expect(throws: PrivateKeyFile.Refusal.exposed(mode: 0o620)) { try PrivateKeyFile.read(try directory.file("b", "x", mode: 0o620)) }
        // A link to a private file is not followed: whoever can plant a link chooses what is read.
        let target = try directory.file("target", "x", mode: 0o600)
        try FileManager.default.createSymbolicLink(atPath: directory.path + "/link", withDestinationPath: target)
        #expect(throws: PrivateKeyFile.Refusal.self) { try PrivateKeyFile.read(directory.path + "/link") }
        // A FIFO planted at the path is refused at once, not waited on.
        #expect(mkfifo(directory.path + "/fifo", 0o600) == 0)
        #expect(throws: PrivateKeyFile.Refusal.notRegularFile) { try PrivateKeyFile.read(directory.path + "/fifo") }
        try FileManager.default.createDirectory(atPath: directory.path + "/dir", withIntermediateDirectories: false)
        #expect(chmod(directory.path + "/dir", 0o700) == 0)
        #expect(throws: PrivateKeyFile.Refusal.notRegularFile) { try PrivateKeyFile.read(directory.path + "/dir") }
    }
}
