import LedgerCore

/// The keys of data subjects (crypto-shredding, see LedgerCore's `SubjectKey`), kept in the journal's store
/// in the `subject_keys` table: subject id → the key wrapped under the journal's data key (`DataKey.wrap`).
///
/// A copy of the store holds only wrapped keys, which open nothing without the data key file; destroying
/// a subject's entry erases everything sealed under that key, while the signed events stay verifiable.
extension JournalWriteTransaction {
    /// The key of `subject`, made now — random, stored wrapped under `dataKey` in this transaction — if it
    /// has none (never had one, or its last one was destroyed: a new key then seals only what comes next).
    /// - Throws: ``JournalError/corrupt(_:)`` when the stored entry does not open under `dataKey` (another
    ///   journal's data key, or an altered entry): nothing is sealed under a key that cannot be read back.
    public func subjectKey(for subject: String, dataKey: DataKey) throws -> SubjectKey {
        let table = try layout.requireSubjectKeys()
        let name = Array(subject.utf8)
        if let wrapped = try transaction.get(name, in: table) {
            guard let key = dataKey.unwrap(wrapped, subject: subject) else {
                throw JournalError.corrupt("the key of data subject \(subject) does not open with this data key")
            }
            return key
        }
        let key = SubjectKey.generate()
        try transaction.put(dataKey.wrap(key, subject: subject), for: name, in: table)
        return key
    }

    /// Destroys the key of `subject`: its entry is first overwritten with zeros, then removed, in this
    /// transaction. Returns whether there was one (destroying twice is harmless).
    ///
    /// The store may still hold the old bytes in space it has freed but not yet reused (LMDB's free pages,
    /// PostgreSQL's dead tuples) until it is compacted — `LMDBStorage.compact` — or vacuumed; and backups
    /// or filesystem snapshots taken before hold them until they are gone.
    @discardableResult
    public func destroySubjectKey(_ subject: String) throws -> Bool {
        let table = try layout.requireSubjectKeys()
        let name = Array(subject.utf8)
        guard let wrapped = try transaction.get(name, in: table) else { return false }
        try transaction.put([UInt8](repeating: 0, count: wrapped.count), for: name, in: table)
        return try transaction.delete(name, in: table)
    }

    /// The subjects that have a key, with a name starting with `prefix`, in order.
    public func subjects(withPrefix prefix: String) throws -> [String] {
        try layout.subjects(withPrefix: prefix, in: transaction)
    }
}

extension JournalSnapshot {
    /// Whether the journal keeps subject keys at all. An archive does not: its sealed values open only
    /// with the keys its journal keeps.
    public var holdsSubjectKeys: Bool { layout.subjectKeys != nil }

    /// The key of `subject`, or `nil` when it has none (never had one, or it was destroyed).
    /// - Throws: ``JournalError/corrupt(_:)`` when the entry does not open under `dataKey`.
    public func subjectKey(_ subject: String, dataKey: DataKey) throws -> SubjectKey? {
        guard let table = layout.subjectKeys, let wrapped = try transaction.get(Array(subject.utf8), in: table) else { return nil }
        guard let key = dataKey.unwrap(wrapped, subject: subject) else {
            throw JournalError.corrupt("the key of data subject \(subject) does not open with this data key")
        }
        return key
    }

    /// The subjects that have a key, with a name starting with `prefix`, in order.
    public func subjects(withPrefix prefix: String) throws -> [String] {
        try layout.subjects(withPrefix: prefix, in: transaction)
    }
}

extension JournalLayout {
    func requireSubjectKeys() throws(JournalError) -> StorageTable {
        guard let subjectKeys else { throw .readOnly }
        return subjectKeys
    }

    func subjects(withPrefix prefix: String, in transaction: any StorageReadTransaction) throws -> [String] {
        guard let table = subjectKeys else { return [] }
        let start = Array(prefix.utf8)
        var subjects: [String] = []
        try transaction.forEach(in: table, from: start.isEmpty ? nil : start) { key, _ in
            guard key.starts(with: start) else { return false }
            subjects.append(String(decoding: key, as: UTF8.self))
            return true
        }
        return subjects
    }
}
