import Foundation
import LedgerCore

/// The standard claims of OIDC Core §5.1 and which scope releases which (§5.4).
public enum StandardClaims {
    /// `profile`'s string claims, as a user record may hold them (`updated_at` is not kept).
    public static let profileClaims = [
        "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username", "profile", "picture", "website",
        "gender", "birthdate", "zoneinfo", "locale",
    ]

    /// The personal claims a user record may hold besides `email`: every one is sealed in the journal.
    /// `address` is held as its JSON object's text.
    public static let personalClaims = profileClaims + ["phone_number", "address"]

    /// The claims each scope releases (OIDC Core §5.4).
    public static let claimsByScope: [String: [String]] = [
        "profile": profileClaims,
        "email": ["email", "email_verified"],
        "address": ["address"],
        "phone": ["phone_number", "phone_number_verified"],
    ]

    /// What the standard scopes let a client do, as the consent page says it.
    public static let scopeDescriptions: [String: String] = [
        "openid": "Sign you in with your account",
        "profile": "See your profile: name, nickname, picture and the like",
        "email": "See your email address",
        "address": "See your postal address",
        "phone": "See your phone number",
        "offline_access": "Keep access while you are away (refresh tokens)",
    ]

    /// Every claim the server can return about a user (what discovery lists as `claims_supported`, with
    /// the claims every ID token has).
    public static let supported: [String] =
        ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "org_id"]
        + profileClaims + ["email", "email_verified", "address", "phone_number", "phone_number_verified"]

    /// The claim names `scopes` release, and those `requested` one by one, sorted.
    public static func names(scopes: [String], requested: [String] = []) -> [String] {
        Set(scopes.flatMap { claimsByScope[$0] ?? [] } + requested).sorted()
    }

    /// The values `user` has of the claims named, as JSON: what an ID token or a UserInfo response says
    /// about the user. A claim the user lacks, or whose value was erased or cannot be opened here, is left
    /// out; `sub` is not among them (the caller always sets it).
    public static func values(of user: RegisteredUser, names: [String]) -> [String: JSONValue] {
        var values: [String: JSONValue] = [:]
        for name in names {
            switch name {
            case "email":
                if let email = user.email.value { values[name] = .string(email) }
            case "email_verified":
                if user.email.value != nil { values[name] = .bool(user.emailVerified) }
            case "phone_number_verified":
                if user.profile["phone_number"]?.value != nil { values[name] = .bool(user.phoneNumberVerified) }
            case "address":
                if let text = user.profile[name]?.value, let address = try? PayloadCoding.decode(JSONValue.self, from: Array(text.utf8)) {
                    values[name] = address
                }
            default:
                if let text = user.profile[name]?.value { values[name] = .string(text) }
            }
        }
        return values
    }
}
