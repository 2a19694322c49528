import LedgerJournal
import LedgerLMDB
import Testing

@Suite("Files beside a journal directory")
struct JournalSideFileTests {
    @Test("beside the directory, never inside it, with or without a trailing slash; every side file agrees")
    func besideTheDirectory() {
        #expect(JournalSideFile.path(beside: "/var/lib/j", suffix: ".key") == "/var/lib/j.key")
        #expect(JournalSideFile.path(beside: "/var/lib/j/", suffix: ".key") == "/var/lib/j.key")
        #expect(JournalSideFile.path(beside: "j/", suffix: ".tokenkeys") == "j.tokenkeys")
        #expect(JournalSideFile.path(beside: "/", suffix: ".key") == "/.key", "the root keeps its slash")
        #expect(LMDBStorage.keyFile(beside: "/var/lib/j/") == "/var/lib/j.key")
        #expect(Journal.Configuration(keyBeside: "/var/lib/j/").keyFile == "/var/lib/j.key")
        #expect(JournalDataKeyFile(journal: "/var/lib/j/").path == "/var/lib/j.datakey")
    }
}
