import Foundation
import LedgerCore

/// The claims a request asks for one by one with the `claims` parameter (OIDC Core §5.5): for the ID token
/// and for the UserInfo response. Essential and voluntary claims are treated alike — a claim the user has is
/// returned, one the user lacks is left out (§5.5.1: an essential claim that cannot be given is no error).
public struct RequestedClaims: Codable, Sendable, Equatable {
    /// Claim names for the ID token, sorted.
    public var idToken: [String]
    /// Claim names for the UserInfo response, sorted.
    public var userinfo: [String]

    public init(idToken: [String] = [], userinfo: [String] = []) {
        self.idToken = idToken
        self.userinfo = userinfo
    }

    enum CodingKeys: String, CodingKey {
        case idToken = "id_token", userinfo
    }

    /// The longest `claims` parameter accepted, in bytes.
    public static let maximumLength = 4096

    /// Why a `claims` parameter was refused.
    public enum Refusal: Error, Equatable {
        case notJSONObject
        case tooLong
        /// A member of `id_token` or `userinfo` is neither `null` nor an object (§5.5.1).
        case malformedClaim
    }

    /// Parses a `claims` parameter: a JSON object whose `id_token` and `userinfo` members are objects mapping
    /// claim names to `null` or to an object such as `{"essential": true}`. Other top-level members are
    /// ignored, as §5.5 asks of members the server does not understand.
    public static func parse(_ text: String) throws(Refusal) -> RequestedClaims {
        guard text.utf8.count <= maximumLength else { throw .tooLong }
        guard let value = try? PayloadCoding.decode(JSONValue.self, from: Array(text.utf8)), let object = value.object else {
            throw .notJSONObject
        }
        func names(_ member: String) throws(Refusal) -> [String] {
            guard let requested = object[member] else { return [] }
            guard let claims = requested.object else { throw .malformedClaim }
            for (_, request) in claims {
                switch request {
                case .null, .object: continue
                default: throw .malformedClaim
                }
            }
            return claims.keys.sorted()
        }
        return RequestedClaims(idToken: try names("id_token"), userinfo: try names("userinfo"))
    }

    /// What a request's `claims` parameter is recorded as: the claims it names, each as `null` or with its
    /// `essential` flag — never the `value`/`values` a client may put there (OIDC Core §5.5.1, which may be
    /// personal data). Parsing the recorded form gives the same ``RequestedClaims`` as the original; a
    /// parameter that does not parse is recorded as ``malformed``, which does not parse either.
    public static func recordedForm(of text: String) -> String {
        guard (try? parse(text)) != nil, let object = (try? PayloadCoding.decode(JSONValue.self, from: Array(text.utf8)))?.object else {
            return malformed
        }
        var recorded: [String: JSONValue] = [:]
        for member in ["id_token", "userinfo"] {
            guard let claims = object[member]?.object else { continue }
            recorded[member] = .object(
                claims.mapValues { request in
                    if case .bool(let essential)? = request.object?["essential"] { .object(["essential": .bool(essential)]) } else { .null }
                })
        }
        return (try? PayloadCoding.encode(JSONValue.object(recorded))).map { String(decoding: $0, as: UTF8.self) } ?? malformed
    }

    /// The recorded form of a `claims` parameter that is not valid.
    public static let malformed = "[malformed]"

    /// The UserInfo claim names, or `nil` when there are none (what a token's event records).
    public var userinfoNames: [String]? { userinfo.isEmpty ? nil : userinfo }

    /// Whether nothing is asked for.
    public var isEmpty: Bool { idToken.isEmpty && userinfo.isEmpty }
}
