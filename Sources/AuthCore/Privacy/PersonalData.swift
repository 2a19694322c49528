import Foundation
import LedgerCore

/// Which fields of which events are personal data, and how they are sealed and opened.
///
/// The server builds its events with personal values in clear, in memory; appending one seals those
/// values (``seal(_:type:time:key:)``) under the key of their data subject before the event is signed, so
/// the journal never holds them in clear. Decoding a stored event (``AuthEvent/init(type:payload:opener:)``)
/// puts back what the caller can open — the value, with the data key and the subject's key — and a marker
/// otherwise: ``erased`` when the subject's key was destroyed, ``sealed`` when the caller has no data key.
///
/// Nothing that projections, throttling or indexes count or compare reads a personal field of a sealed
/// event: such events also carry keyed pseudonyms (`client_ip_key`, `client_network`) for that.
public enum PersonalData {
    /// Shown for a personal value whose subject was erased.
    public static let erased = "[erased]"
    /// Shown for a personal value sealed in the journal, read without the journal's data key.
    public static let sealed = "[sealed]"

    /// Whether `value` is one of the markers rather than a recorded value.
    public static func isMarker(_ value: String) -> Bool { value == erased || value == sealed }

    /// The personal fields of each event type that has any, as top-level payload members holding strings.
    /// Decoded without an opener they read as ``sealed``.
    public static let fields: [EventType: [String]] = [
        AuthEvent.authorizeRequestedType: ["client_ip", "user_agent"],
        AuthEvent.loginSucceededType: ["client_ip"],
        AuthEvent.loginFailedType: ["client_ip", "username"],  // username: when it named an account
        AuthEvent.loggedOutType: ["client_ip"],
        AuthEvent.tokenIssuedType: ["client_ip"],
        AuthEvent.tokenRejectedType: ["client_ip"],
        AuthEvent.tokenRevokedType: ["client_ip"],
        AuthEvent.clientCredentialsDecidedType: ["client_ip"],
        AuthEvent.pushedRequestType: ["client_ip"],
        AuthEvent.logoutDecidedType: ["client_ip"],
    ]

    /// ``fields`` as sets, for lookups while decoding.
    static let fieldSets: [EventType: Set<String>] = fields.mapValues(Set.init)

    /// The members holding a ``PersonalText``, at any depth of the payload, of each event type that has
    /// any. Decoded without an opener they stay sealed — so the projections folded from the event hold them
    /// sealed too, and whoever reads a projection opens them (``open(_:contextType:opener:)``).
    public static let texts: [EventType: Set<String>] = [
        AuthEvent.authorizeRequestedType: [loginHintMember],
        AuthEvent.authorizeDecidedType: [loginHintMember, "loginHint"],
        AuthEvent.interactionOpenedType: [loginHintMember, "loginHint"],
        AuthEvent.pushedRequestType: [loginHintMember],
        ConfigurationEvent.userSetType: Set(["email"] + StandardClaims.personalClaims),
        ConfigurationEvent.invitationSetType: ["email"],
    ]

    /// A request's `login_hint` names someone the server does not know yet: it is sealed under the
    /// anonymous subject of its day, which the retention period ends.
    static let loginHintMember = "login_hint"

    /// The schema version of each type that holds personal values, in this release (version 1 held them
    /// in clear; `auth.authorize.requested` version 2 kept `login_hint` in clear among the parameters;
    /// `config.user.set` version 3 added the user's OIDC claims, sealed like the email address).
    public static func schemaVersion(of type: EventType) -> UInt16? {
        switch type {
        case AuthEvent.authorizeRequestedType, ConfigurationEvent.userSetType: 3
        // New in this release: sealed from their first version.
        case AuthEvent.clientCredentialsDecidedType, AuthEvent.pushedRequestType, AuthEvent.logoutDecidedType: 1
        case _ where fields[type] != nil || texts[type] != nil: 2
        default: nil
        }
    }

    /// The data subject of an event's personal values: the user it names (`user_id`), or, for what belongs
    /// to no known user, the anonymous subject of its day (UTC), whose key a retention period destroys.
    public static func subject(userID: String?, time: LedgerTimestamp) -> String {
        if let userID, !userID.isEmpty { return userSubject(userID) }
        return "a:" + String(time.rfc3339.prefix(10))
    }

    /// The data subject of user `userID`: `u:<user id>`.
    public static func userSubject(_ userID: String) -> String { "u:" + userID }

    /// The sealing context of a value held by member `field` in events of `type`: the associated data binds
    /// a sealed value to it.
    public static func context(type: EventType, field: String) -> String {
        type.name + "\n" + field
    }

    /// `payload` with the personal values of `type` sealed under their subject's key, or `nil` when it has
    /// none to seal. `key` gives (or makes) the key of a subject. A client address also leaves its keyed
    /// pseudonyms: `client_ip_key` under the subject's key, for the timeline's index (it dies with the key),
    /// and for failed logins `client_network` under `dataKey`, which the throttle counts across subjects.
    /// - Throws: ``Unsealable`` when there are values to seal and no data key.
    public static func seal(
        _ payload: [UInt8], type: EventType, time: LedgerTimestamp, dataKey: DataKey?, key: (String, DataKey) throws -> SubjectKey
    ) throws -> [UInt8]? {
        try sealed(payload, type: type, time: time, dataKey: dataKey, key: key)?.payload
    }

    /// A payload with its personal values sealed (``seal(_:type:time:dataKey:key:)``), and the same payload
    /// as a reader without an opener sees it (``open(_:type:opener:)`` with none): what the projections fold.
    public struct Sealed: Sendable {
        public var payload: [UInt8]
        public var unopened: [UInt8]
    }

    /// ``seal(_:type:time:dataKey:key:)``, with the payload as it reads unopened too, made from the same parse.
    public static func sealed(
        _ payload: [UInt8], type: EventType, time: LedgerTimestamp, dataKey: DataKey?, key: (String, DataKey) throws -> SubjectKey
    ) throws -> Sealed? {
        let names = fields[type] ?? [], textNames = texts[type] ?? []
        // Parsing is what sealing costs most: a payload that names none of the members (a decision without
        // a login hint, the common case) is left as it is without being parsed.
        let encoding = PayloadEncoding.of(payload)
        guard payload.containsMember(namedAnyOf: names + textNames, encoding: encoding),
            var object = try PayloadCoding.decode(JSONValue.self, from: payload).object
        else { return nil }
        // A failed login's `username` is sealed when it named an account; for an unknown name the server
        // records only its keyed pseudonym (never the typed text), which the throttle counts.
        let present = names.filter { object[$0]?.string != nil && ($0 != "username" || object["user_id"]?.string != nil) }
        let hasTexts = JSONWalk.contains(.object(object), members: textNames)
        guard !present.isEmpty || hasTexts else { return nil }
        guard let dataKey else { throw Unsealable(type: type.name) }
        let eventSubject = subject(userID: object["user_id"]?.string, time: time)
        func sealed(_ value: String, member: String) throws -> JSONValue {
            let subject = member == loginHintMember || member == "loginHint" ? subject(userID: nil, time: time) : eventSubject
            let sealed = try key(subject, dataKey).seal(Array(value.utf8), subject: subject, context: context(type: type, field: member))
            return try PayloadCoding.decode(JSONValue.self, from: try PayloadCoding.encode(sealed))
        }
        if let address = object["client_ip"]?.string {
            // The timeline's index finds the address by a pseudonym under the subject's own key: it dies with it.
            object["client_ip_key"] = .string(try key(eventSubject, dataKey).pseudonym(address, domain: "address"))
            if type == AuthEvent.loginFailedType { object["client_network"] = .string(networkKey(address, dataKey: dataKey)) }
        }
        for name in present { object[name] = try sealed(object[name]!.string!, member: name) }
        var result = JSONValue.object(object)
        if hasTexts {
            result = try JSONWalk.replacingStrings(in: result, members: textNames) { member, value in try sealed(value, member: member) }
        }
        var unopened = result.object!
        for name in present { unopened[name] = .string(Self.sealed) }
        return Sealed(payload: try encoding.encode(result), unopened: try encoding.encode(JSONValue.object(unopened)))
    }

    /// The keyed pseudonym of an address's network (an IPv6 /64): what the login throttle counts.
    public static func networkKey(_ address: String, dataKey: DataKey) -> String {
        dataKey.pseudonym(LoginThrottle.network(of: address), domain: "network")
    }

    /// An event holds personal values and there is no data key to seal them with: they are never stored
    /// in clear, so it is not stored at all.
    public struct Unsealable: Error, CustomStringConvertible {
        public var type: String
        public var description: String { "\(type) holds personal data and there is no data key to seal it with" }
    }

    /// What opening a sealed value gave.
    public enum Opened: Sendable, Equatable {
        case value(String)
        /// The subject's key is gone: the value is erased for good.
        case erased
        /// The caller cannot open it (no data key).
        case unavailable
    }

    /// Opens sealed values: given one and its context, the value or why not.
    public typealias Opener = (SealedValue, String) -> Opened

    /// `payload` (an event of `type`) with its sealed values replaced by what `opener` gives, or by a marker
    /// when it gives none. Without an opener only the top-level ``fields`` are replaced (by ``sealed``); the
    /// ``texts`` stay sealed, as ``PersonalText/sealed(_:)``. `payload` itself when it holds no sealed value.
    public static func open(_ payload: [UInt8], type: EventType, opener: Opener?) throws -> [UInt8] {
        guard let opener else {
            guard let names = fields[type] else { return payload }
            if PayloadCoding.isCompact(payload) {
                // Read as JSON with the markers in place (decoding reads compact payloads with them directly:
                // ``PayloadCoding/decode(_:from:markingSealed:as:)``).
                guard payload.containsCompactSealedMarker else { return payload }
                return try replacingSealed(in: payload, members: fieldSets[type], topLevelOnly: true, reading: false) { _, _ in .unavailable }
            }
            guard payload.containsSealedMarker else { return payload }
            // The common case (every rebuild and replay): a scan of the text, without parsing it.
            if let replaced = SealedMarkerScan.replacingTopLevel(in: payload, members: Set(names), marker: sealed) { return replaced }
            return try replacingSealed(in: payload, members: Set(names), topLevelOnly: true, reading: false) { _, _ in .unavailable }
        }
        return try open(payload, contextType: { _ in type }, opener: opener)
    }

    /// `record` — an event payload or a projection folded from events — with every sealed value, at any
    /// depth, replaced by what `opener` gives (its text or a marker). `contextType` names the event type
    /// that sealed a value found under a path of member names (a projection holds values of several types).
    public static func open(_ record: [UInt8], contextType: ([String]) -> EventType, opener: Opener) throws -> [UInt8] {
        try replacingSealed(in: record, members: nil, topLevelOnly: false, reading: true) { path, sealed in
            opener(sealed!, context(type: contextType(path), field: path.last ?? ""))
        }
    }

    /// `reading`: whether `open` reads the sealed value (a marker for every one needs no decoding of it).
    private static func replacingSealed(
        in record: [UInt8], members: Set<String>?, topLevelOnly: Bool, reading: Bool, _ open: ([String], SealedValue?) -> Opened
    ) throws -> [UInt8] {
        // A projection value written compact is read as JSON when it holds a sealed value (rarely: the
        // configuration, interactions and pushed requests with a `login_hint`).
        let record = ProjectionCoding.isCompact(record) && record.containsCompactSealedMarker ? try ProjectionCoding.json(record) : record
        guard record.containsSealedMarker, let value = try? PayloadCoding.decode(JSONValue.self, from: record) else { return record }
        var changed = false
        let opened = try JSONWalk.replacingSealed(in: value, path: [], members: members, topLevelOnly: topLevelOnly) { path, sealedValue in
            let sealed = reading ? try PayloadCoding.decode(SealedValue.self, from: try PayloadCoding.encode(sealedValue)) : nil
            changed = true
            switch open(path, sealed) {
            case .value(let value): return .string(value)
            case .erased: return .string(erased)
            case .unavailable: return .string(Self.sealed)
            }
        }
        guard changed else { return record }
        return try PayloadCoding.encode(opened)
    }
}

/// Replaces the sealed values of an event payload's top-level members with a marker by scanning the JSON
/// text, without parsing it into values and writing it again: what reading an event without a data key
/// needs (every rebuild and replay), three JSON passes fewer per event. Hand-written because it is a
/// narrow scan of our own payloads; anything it does not expect makes it give up (`nil`), and the caller
/// then takes the parsing path.
enum SealedMarkerScan {
    /// `record` (a JSON object) with each top-level member named in `members` whose value is a sealed
    /// value (a flat object with `"sealed":1`) holding `marker` as a string instead; `nil` when the text
    /// is not what this scan reads (escapes in member names, nested objects in a candidate, bad JSON).
    static func replacingTopLevel(in record: [UInt8], members: Set<String>, marker: String) -> [UInt8]? {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        let open = UInt8(ascii: "{"), close = UInt8(ascii: "}"), openArray = UInt8(ascii: "["), closeArray = UInt8(ascii: "]")
        let comma = UInt8(ascii: ","), colon = UInt8(ascii: ":")
        let sealedMember = Array(#""sealed":1"#.utf8)
        var index = 0
        func skipSpace() {
            while index < record.count, [0x20, 0x09, 0x0A, 0x0D].contains(record[index]) { index += 1 }
        }
        /// Moves past the string starting at `index` (a quote); false when it does not end.
        func skipString() -> Bool {
            index += 1
            while index < record.count {
                if record[index] == backslash {
                    index += 2
                } else if record[index] == quote {
                    index += 1
                    return true
                } else {
                    index += 1
                }
            }
            return false
        }
        /// Moves past the value starting at `index`; returns whether it held an object or array inside.
        func skipValue() -> (ok: Bool, nested: Bool) {
            guard index < record.count else { return (false, false) }
            switch record[index] {
            case quote: return (skipString(), false)
            case open, openArray:
                var depth = 0
                var nested = false
                while index < record.count {
                    switch record[index] {
                    case quote:
                        guard skipString() else { return (false, nested) }
                        continue
                    case open, openArray:
                        depth += 1
                        if depth > 1 { nested = true }
                    case close, closeArray:
                        depth -= 1
                        if depth == 0 {
                            index += 1
                            return (true, nested)
                        }
                    default: break
                    }
                    index += 1
                }
                return (false, nested)
            default:
                while index < record.count, record[index] != comma, record[index] != close { index += 1 }
                return (index < record.count, false)
            }
        }

        skipSpace()
        guard index < record.count, record[index] == open else { return nil }
        index += 1
        var output: [UInt8] = []
        var copied = 0
        // The markers are plain ASCII words in brackets: nothing to escape.
        guard !marker.utf8.contains(where: { $0 < 0x20 || $0 == quote || $0 == backslash }) else { return nil }
        let replacement = Array("\"\(marker)\"".utf8)
        while true {
            skipSpace()
            guard index < record.count else { return nil }
            if record[index] == close { break }
            guard record[index] == quote else { return nil }
            let nameStart = index + 1
            guard skipString() else { return nil }
            let nameBytes = record[nameStart..<(index - 1)]
            guard !nameBytes.contains(backslash) else { return nil }
            skipSpace()
            guard index < record.count, record[index] == colon else { return nil }
            index += 1
            skipSpace()
            let valueStart = index
            let isObject = index < record.count && record[index] == open
            let skipped = skipValue()
            guard skipped.ok else { return nil }
            if isObject, members.contains(String(decoding: nameBytes, as: UTF8.self)) {
                // (Foundation's `firstRange(of:)` on a slice was a quarter of a rebuild's time.)
                if let at = record.firstIndex(of: sealedMember, in: valueStart..<index), at + sealedMember.count < index,
                    [comma, close].contains(record[at + sealedMember.count])
                {
                    guard !skipped.nested else { return nil }
                    output += record[copied..<valueStart]
                    output += replacement
                    copied = index
                }
            }
            skipSpace()
            guard index < record.count else { return nil }
            if record[index] == comma {
                index += 1
            } else if record[index] != close {
                return nil
            }
        }
        guard copied > 0 else { return record }
        output += record[copied...]
        return output
    }
}

/// Walks a JSON value to find and replace members by name.
private enum JSONWalk {
    /// Whether a member named one of `members` holds a string anywhere in `value`.
    static func contains(_ value: JSONValue, members: Set<String>) -> Bool {
        switch value {
        case .object(let object): object.contains { members.contains($0.key) && $0.value.string != nil || contains($0.value, members: members) }
        case .array(let array): array.contains { contains($0, members: members) }
        default: false
        }
    }

    /// `value` with every string held by a member named one of `members`, at any depth, replaced.
    static func replacingStrings(in value: JSONValue, members: Set<String>, _ body: (String, String) throws -> JSONValue) rethrows -> JSONValue {
        switch value {
        case .object(var object):
            for (name, member) in object {
                if members.contains(name), let text = member.string {
                    object[name] = try body(name, text)
                } else {
                    object[name] = try replacingStrings(in: member, members: members, body)
                }
            }
            return .object(object)
        case .array(let array): return .array(try array.map { try replacingStrings(in: $0, members: members, body) })
        default: return value
        }
    }

    /// `value` with every sealed value replaced by what `body` gives for it and its path of member names;
    /// only under `members` when given, only at the top level when asked.
    static func replacingSealed(
        in value: JSONValue, path: [String], members: Set<String>?, topLevelOnly: Bool, _ body: ([String], JSONValue) throws -> JSONValue
    ) rethrows -> JSONValue {
        switch value {
        case .object(var object):
            for (name, member) in object {
                let memberPath = path + [name]
                if member.isSealedValue, members?.contains(name) ?? true {
                    object[name] = try body(memberPath, member)
                } else if !topLevelOnly {
                    object[name] = try replacingSealed(in: member, path: memberPath, members: members, topLevelOnly: false, body)
                }
            }
            return .object(object)
        case .array(let array) where !topLevelOnly:
            return .array(try array.map { try replacingSealed(in: $0, path: path, members: members, topLevelOnly: false, body) })
        default:
            return value
        }
    }
}

/// `sealed: 1` as ``CompactCoding`` writes the member in either form of objects: its name, then the number.
private let compactSealedMarkers: [[UInt8]] = CompactCoding.memberNameForms("sealed").map { $0 + [CompactCoding.Tag.unsigned.rawValue, 0x01] }

extension [UInt8] {
    /// Whether the bytes contain `"sealed":1` (a cheap test before parsing a payload for sealed values).
    fileprivate var containsSealedMarker: Bool {
        contains(bytes: Array(#""sealed":1"#.utf8))
    }

    /// Whether the bytes contain the member `sealed` with the value 1 as ``CompactCoding`` writes it.
    fileprivate var containsCompactSealedMarker: Bool {
        compactSealedMarkers.contains { contains(bytes: $0) }
    }

    /// Whether the payload may have a member named one of `names`, at any depth: a cheap test before
    /// parsing. In JSON a search for `"name":` (which a string value holding that text also matches: a
    /// parse, never a miss); compact, a walk of the value (``CompactCoding/containsMember(namedAnyOf:in:)``),
    /// exact, since a search for a name's bytes matches by chance there. Bytes the walk cannot follow
    /// answer yes, so that parsing says what is wrong with them.
    fileprivate func containsMember(namedAnyOf names: [String], encoding: PayloadEncoding) -> Bool {
        switch encoding {
        case .json: names.contains { contains(bytes: Array("\"\($0)\":".utf8)) }
        case .compact: CompactCoding.containsMember(namedAnyOf: names, in: self) ?? true
        }
    }

    /// Whether `needle` occurs in the bytes.
    private func contains(bytes needle: [UInt8]) -> Bool {
        needle.isEmpty || firstIndex(of: needle, in: 0..<count) != nil
    }

    /// Where `needle` first occurs within `range` of the bytes, if it does: C's `memchr` (which the C
    /// library vectorizes) to each place its first byte occurs, then `memcmp`. A byte-by-byte scan in Swift
    /// was 8% of a rebuild, which looks for a trace id in every payload; `Data.range(of:)`, bridged through
    /// NSData, and `firstRange(of:)` on a slice cost many times the search. (`memmem` is a GNU extension
    /// that Swift's Glibc module does not offer.)
    func firstIndex(of needle: [UInt8], in range: Range<Int>) -> Int? {
        guard let first = needle.first, needle.count <= range.count else { return nil }
        return withUnsafeBufferPointer { haystack -> Int? in
            needle.withUnsafeBufferPointer { needle -> Int? in
                guard let base = haystack.baseAddress, let rest = needle.baseAddress.map({ $0 + 1 }) else { return nil }
                var index = range.lowerBound
                let last = range.upperBound - needle.count
                while index <= last {
                    guard let found = memchr(base + index, Int32(first), last - index + 1) else { return nil }
                    index = base.distance(to: UnsafePointer(found.assumingMemoryBound(to: UInt8.self)))
                    if memcmp(base + index + 1, rest, needle.count - 1) == 0 { return index }
                    index += 1
                }
                return nil
            }
        }
    }
}
