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

    /// The personal fields of each event type that has any (top-level payload keys holding strings).
    public static let fields: [EventType: [String]] = [
        AuthEvent.authorizeRequestedType: ["client_ip", "user_agent"],
        AuthEvent.loginSucceededType: ["client_ip"],
        AuthEvent.loginFailedType: ["client_ip", "username"],  // username: when it named an account
        AuthEvent.loggedOutType: ["client_ip"],
        AuthEvent.tokenIssuedType: ["client_ip"],
        AuthEvent.tokenRejectedType: ["client_ip"],
        AuthEvent.tokenRevokedType: ["client_ip"],
    ]

    /// The schema version of a type's payload once its personal fields are sealed objects (version 1 holds
    /// them as strings).
    public static let sealedSchemaVersion: UInt16 = 2

    /// The data subject of an event's personal values: the user it names (`user_id`), or, for what belongs
    /// to no known user, the anonymous subject of its day (UTC), whose key a retention period destroys.
    public static func subject(userID: String?, time: LedgerTimestamp) -> String {
        if let userID, !userID.isEmpty { return userSubject(userID) }
        return "a:" + String(time.rfc3339.prefix(10))
    }

    /// The data subject of user `userID`: `u:<user id>`.
    public static func userSubject(_ userID: String) -> String { "u:" + userID }

    /// The sealing context of `field` in events of `type`: the associated data binds a sealed value to it.
    public static func context(type: EventType, field: String) -> String {
        type.name + "\n" + field
    }

    /// `payload` with the personal fields of `type` sealed under their subject's key, or `nil` when it has
    /// none to seal. `key` gives (or makes) the key of a subject. A client address also leaves its keyed
    /// pseudonyms: `client_ip_key` under the subject's key, for the timeline's index (it dies with the key),
    /// and for failed logins `client_network` under `dataKey`, which the throttle counts across subjects.
    /// - Throws: ``Unsealable`` when there are values to seal and no data key.
    public static func seal(
        _ payload: [UInt8], type: EventType, time: LedgerTimestamp, dataKey: DataKey?, key: (String, DataKey) throws -> SubjectKey
    ) throws -> [UInt8]? {
        guard let names = fields[type], var object = try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] else { return nil }
        // A failed login's `username` is sealed when it named an account; for an unknown name the server
        // records only its keyed pseudonym (never the typed text), which the throttle counts.
        let present = names.filter { object[$0] is String && ($0 != "username" || object["user_id"] is String) }
        guard !present.isEmpty else { return nil }
        guard let dataKey else { throw Unsealable(type: type.name) }
        let subject = subject(userID: object["user_id"] as? String, time: time)
        let subjectKey = try key(subject, dataKey)
        if let address = object["client_ip"] as? String {
            // The timeline's index finds the address by a pseudonym under the subject's own key: it dies with it.
            object["client_ip_key"] = subjectKey.pseudonym(address, domain: "address")
            if type == AuthEvent.loginFailedType { object["client_network"] = networkKey(address, dataKey: dataKey) }
        }
        for name in present {
            let value = object[name] as! String
            let sealed = subjectKey.seal(Array(value.utf8), subject: subject, context: context(type: type, field: name))
            object[name] = try JSONSerialization.jsonObject(with: Data(try PayloadCoding.encode(sealed)))
        }
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
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

    /// `payload` with every sealed personal field of `type` replaced by what `opener` gives (a marker when
    /// it gives none, or without an opener); `payload` itself when it holds no sealed value.
    public static func open(_ payload: [UInt8], type: EventType, opener: Opener?) throws -> [UInt8] {
        guard let names = fields[type], payload.containsSealedMarker,
            var object = try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any]
        else { return payload }
        var changed = false
        for name in names {
            guard let dictionary = object[name] as? [String: Any] else { continue }
            let sealed = try PayloadCoding.decode(SealedValue.self, from: Array(try JSONSerialization.data(withJSONObject: dictionary)))
            switch opener?(sealed, context(type: type, field: name)) ?? .unavailable {
            case .value(let value): object[name] = value
            case .erased: object[name] = erased
            case .unavailable: object[name] = Self.sealed
            }
            changed = true
        }
        guard changed else { return payload }
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }
}

extension [UInt8] {
    /// Whether the bytes contain `"sealed":1` (a cheap test before parsing a payload for sealed values).
    fileprivate var containsSealedMarker: Bool {
        Data(self).range(of: Data(#""sealed":1"#.utf8)) != nil
    }
}
