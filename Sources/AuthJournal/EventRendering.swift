import AuthCore
import Foundation
import LedgerCore
import LedgerJournal

/// How personal data leaves the journal, in compliance bundles (`authledger-replay export`) and log
/// streams (`authledger serve --log-stream`).
public enum PersonalDataHandling: String, Sendable, CaseIterable {
    /// The payload as stored: sealed values stay sealed, clear ones clear.
    case keep
    /// Personal fields, opened with the data key, replaced by keyed pseudonyms (HMAC-SHA-256 under the
    /// journal's data key): they correlate, but cannot be reversed by trying every address or email.
    case hash
    /// Personal fields left out.
    case omit

    /// The payload fields that hold personal data.
    public static let personalKeys: Set<String> = [
        "user_id", "username", "email", "client_ip", "user_agent", "login_hint", "loginHint", "password_hash", "secret_hash",
        "client_ip_key", "client_network",
    ]

    /// The event's payload as a JSON value, personal fields as this handling says (the payload as base64
    /// when it is not JSON). Hashed or omitted fields are opened first (with `opener`), so that a sealed
    /// value is pseudonymised or dropped like a clear one.
    /// - Parameters:
    ///   - dataKey: the key of the pseudonyms (``hash``); without it, personal fields are left out.
    ///   - domain: what the pseudonyms are for ("export", "log_stream"): the same value gets another
    ///     pseudonym in each domain.
    public func payload(of envelope: EventEnvelope, opener: SealedValueOpener?, dataKey: DataKey?, domain: String) -> Any {
        let readable: [UInt8]
        if self == .keep {
            readable = envelope.payload
        } else {
            readable =
                (try? opener.map { try PersonalData.open(envelope.payload, type: envelope.type, opener: $0.opener) } ?? envelope.payload)
                ?? envelope.payload
        }
        guard let value = EventRendering.jsonObject(ofPayload: readable) else { return Base64.encode(readable) }
        guard self != .keep else { return value }
        func walk(_ value: Any) -> Any? {
            if let object = value as? [String: Any] {
                var result: [String: Any] = [:]
                for (key, item) in object {
                    if Self.personalKeys.contains(key), let text = item as? String {
                        if PersonalData.isMarker(text) {
                            result[key] = text  // erased or unreadable: nothing to hash
                        } else if self == .hash, let dataKey {
                            result[key] = dataKey.pseudonym(text, domain: domain)
                        }
                    } else if let walked = walk(item) {
                        result[key] = walked
                    }
                }
                return result
            }
            if let array = value as? [Any] { return array.compactMap(walk) }
            return value
        }
        return walk(value) ?? NSNull()
    }
}

/// Events as JSON objects for the tools outside: bundles, log streams, SIEMs.
public enum EventRendering {
    /// One JSON line: `object` serialised with sorted keys and unescaped slashes.
    public static func jsonLine(_ object: Any) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// A payload as a Foundation JSON object (a compact one as the JSON it stands for); `nil` when it is
    /// neither (an application's own bytes).
    public static func jsonObject(ofPayload payload: [UInt8]) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(PayloadCoding.json(payload)))
    }

    /// The event's own fields: sequence, time, type, schema version, signing key id, and `payload`.
    public static func object(_ envelope: EventEnvelope, payload: Any) -> [String: Any] {
        [
            "sequence": envelope.sequence, "time": envelope.timestamp.rfc3339, "type": envelope.type.name,
            "schema_version": Int(envelope.schemaVersion), "key_id": envelope.keyID.hex, "payload": payload,
        ]
    }
}

/// OCSF 1.x mapping of AuthLedger events (Identity & Access Management category).
public enum OCSF {
    /// The OCSF record of `envelope`; `authledger` is kept whole under `unmapped.authledger`.
    public static func record(for envelope: EventEnvelope, payload: Any?, authledger: [String: Any]) -> [String: Any] {
        let type = envelope.type.name
        let (classUID, className, activityID, statusID): (Int, String, Int, Int) = {
            switch type {
            case "auth.login.succeeded": (3002, "Authentication", 1, 1)
            case "auth.login.failed": (3002, "Authentication", 1, 2)
            case "auth.logout": (3002, "Authentication", 2, 1)
            case "auth.consent.granted": (3005, "User Access Management", 1, 1)
            case "auth.consent.denied": (3005, "User Access Management", 1, 2)
            case "auth.token.rejected", "auth.code.replayed": (3003, "Authorize Session", 99, 2)
            case _ where type.hasPrefix("config."): (3004, "Entity Management", 99, 1)
            default: (3003, "Authorize Session", 99, 1)
            }
        }()
        return [
            "category_uid": 3, "category_name": "Identity & Access Management",
            "class_uid": classUID, "class_name": className, "activity_id": activityID, "status_id": statusID,
            "type_uid": classUID * 100 + activityID, "severity_id": statusID == 2 ? 3 : 1,
            "time": envelope.timestamp.microseconds / 1000,
            "metadata": ["product": ["name": "AuthLedger", "vendor_name": "AuthLedger"], "version": "1.3.0", "uid": String(envelope.sequence)],
            "message": type,
            "unmapped": ["authledger": authledger.merging(["payload": payload ?? NSNull()]) { $1 }],
        ]
    }
}

/// Auth0's log event shape, as its custom webhook log streams send it: `{"log_id", "data": {"date",
/// "type", "description", "client_id", "user_id", "ip", "user_agent", "details"}}`, with Auth0's event type
/// codes where an AuthLedger event has an Auth0 counterpart, and `authledger_<type>` where it has none.
public enum Auth0LogFormat {
    /// Auth0's type code and description for an AuthLedger event; `payload` tells apart a succeeded
    /// and a failed exchange.
    public static func type(of envelope: EventEnvelope, payload: [String: Any]) -> (code: String, description: String) {
        switch envelope.type.name {
        case "auth.login.succeeded": return ("s", "Success Login")
        case "auth.login.failed":
            switch payload["reason"] as? String {
            case "wrong_password": return ("fp", "Wrong email or password")
            case "unknown_user": return ("fu", "Invalid email or username")
            case "throttled": return ("limit_wc", "Too many failed login attempts")
            default: return ("f", "Failed Login")
            }
        case "auth.logout": return ("slo", "Success Logout")
        case "auth.token.issued":
            switch payload["grant_type"] as? String {
            case "refresh_token": return ("sertft", "Successful exchange of refresh token for access token")
            case "client_credentials": return ("seccft", "Successful exchange of client credentials for access token")
            default: return ("seacft", "Successful exchange of authorization code for access token")
            }
        case "auth.token.rejected":
            switch payload["grant_type"] as? String {
            case "refresh_token": return ("fertft", "Failed exchange of refresh token for access token")
            case "client_credentials": return ("feccft", "Failed exchange of client credentials for access token")
            default: return ("feacft", "Failed exchange of authorization code for access token")
            }
        case "auth.code.replayed": return ("feacft", "Authorization code reused: the tokens issued for it were revoked")
        case "auth.token.revoked", "auth.refresh.family.revoked": return ("srrt", "Successfully revoked a refresh token")
        case "auth.consent.granted": return ("authledger_consent_granted", "Consent granted")
        case "auth.consent.denied": return ("authledger_consent_denied", "Consent denied")
        case "auth.consent.revoked": return ("authledger_consent_revoked", "Consent revoked")
        case let other: return ("authledger_" + other.replacingOccurrences(of: ".", with: "_"), other)
        }
    }

    /// The Auth0 log event of `envelope`, whose payload is `payload` (already redacted as the stream's
    /// personal-data handling says). `log_id` is the journal's origin and the sequence number, so that a
    /// receiver can drop a batch delivered twice.
    /// - Parameter earlier: the payloads of the events before it, by sequence number, that it may take
    ///   values from: a code's grant is its decision's (journal format §14, "Values written once").
    public static func log(_ envelope: EventEnvelope, payload: Any, origin: String, earlier: [UInt64: Any] = [:]) -> [String: Any] {
        var fields = payload as? [String: Any] ?? [:]
        /// The earlier event that `fields`, of the event at `sequence`, names by the offset in `member`.
        func reference(_ member: String, of fields: [String: Any], at sequence: UInt64) -> (sequence: UInt64, fields: [String: Any])? {
            guard let offset = (fields[member] as? NSNumber)?.uint64Value, offset <= sequence,
                let found = earlier[sequence - offset] as? [String: Any]
            else { return nil }
            return (sequence - offset, found)
        }
        if fields["grant"] == nil, let (decisionSequence, decision) = reference("decision_offset", of: fields, at: envelope.sequence),
            let outcome = (decision["decision"] as? [String: Any])?["outcome"] as? [String: Any],
            var grant = (outcome["issueCode"] as? [String: Any])?["_0"] as? [String: Any]
        {
            // A decision of schema 5 leaves the grant's client and user to its input, whose parameters may
            // be its request's.
            if grant["client_id"] == nil, let input = decision["input"] as? [String: Any] {
                let parameters = input["parameters"] ?? reference("request_offset", of: decision, at: decisionSequence)?.fields["parameters"]
                grant["client_id"] = ((parameters as? [String: Any])?["values"] as? [String: Any])?["client_id"]
                grant["user_id"] = (input["session"] as? [String: Any])?["user_id"]
            }
            fields["grant"] = grant
        }
        let (code, description) = type(of: envelope, payload: fields)
        var data: [String: Any] = [
            "date": envelope.timestamp.rfc3339, "type": code, "description": description,
            "details": EventRendering.object(envelope, payload: payload),
        ]
        func first(_ names: String...) -> Any? { names.lazy.compactMap { fields[$0] }.first }
        if let client = first("client_id") ?? (fields["grant"] as? [String: Any])?["client_id"] { data["client_id"] = client }
        if let user = first("user_id") ?? (fields["grant"] as? [String: Any])?["user_id"] { data["user_id"] = user }
        if let address = first("client_ip") { data["ip"] = address }
        if let agent = first("user_agent") { data["user_agent"] = agent }
        return ["log_id": "\(origin)/\(envelope.sequence)", "data": data]
    }
}
