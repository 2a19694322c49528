/// The files an LMDB journal keeps beside its directory, not in it: its signing key (`.key`), its data key
/// (`.datakey`), the server's token keys (`.tokenkeys`), its archives (`.archives`).
public enum JournalSideFile {
    /// `<journal><suffix>`, beside the journal directory `journal`. A trailing slash is dropped, so that the
    /// file never lands inside the directory (`/var/j/` gives `/var/j.key`, not `/var/j/.key`).
    public static func path(beside journal: String, suffix: String) -> String {
        (journal.hasSuffix("/") && journal.count > 1 ? String(journal.dropLast()) : journal) + suffix
    }
}
