/// The member-name table of the compact encoding's named form (docs/journal-format.md §16): member
/// names that AuthLedger's payloads and projection values use, each written as its position in this list
/// instead of its text. The first 64 take one byte.
///
/// Frozen: every position means the same name in every release, because the journals written since
/// 2026-12-04 are read with it, and the canonical form of a value depends on which names are in it. A
/// later table would be another tag. The independent verifier (`tools/verify_bundle.py`) holds the same
/// list, and the journal format document lists it.
extension CompactCoding {
    /// The names, by position.
    public static let memberNames: [String] = [
        "client_id", "redirect_uri", "user_id", "expires_at", "auth_time", "scopes", "redirect_uri_given", "state",
        "scope", "response_type", "parameters", "values", "repeated", "configuration_version", "decision_offset",
        "request_offset", "client_ip", "client_ip_key", "code_hash", "connection", "session_hash", "session",
        "redirectURI", "progress", "decision", "consents", "issueCode", "outcome", "delivery", "policy", "input",
        "interaction", "grant", "rule", "mode", "now", "_0", "sealed", "subject", "ct", "key", "nonce", "user_agent",
        "client_network", "access_token_id", "id_token_id", "grant_type", "refresh_family", "token_id", "token_ids",
        "audience", "binding_hash", "login", "pending", "username", "record", "reason", "at", "trace_id", "code_challenge",
        "code_challenge_method", "response_mode", "prompt", "login_hint", "status", "issued_sequence", "userinfo_claims",
        "organization_id", "organization", "max_age", "acr_values", "ui_locales", "id_token_hint", "resource",
        "request_uri", "request_uri_hash", "dpop_jkt", "dpop_proof_id", "token_hash", "refresh_token_id", "error", "code",
        "description", "family", "revoked_token_ids", "revoked_keys", "consent", "authenticated_at", "decided_at", "email",
        "email_verified", "name", "password_hash", "secret_hash", "app_type", "first_party", "grant_types",
        "redirect_uris", "connections", "token_endpoint_auth_method", "organization_usage", "identifier", "signing_alg",
        "allow_offline_access", "skip_consent_for_first_party", "token_ttl_seconds", "issuer", "allow_plain_pkce",
        "code_ttl_seconds", "session_ttl_seconds", "resource_parameter_profile", "strategy", "keys", "kid", "kty", "alg",
        "use", "crv", "table", "from_key", "through_key", "removed", "before_sequence", "time", "version", "claims", "sub",
        "aud", "exp", "token", "hint", "value", "kind", "members", "ticket", "invitation", "presented_hash", "parent_hash",
        "notified_clients", "logout_token_id", "post_logout_redirect_uri", "backchannel_logout_uri", "allowed_logout_urls",
        "token_client_id", "assertion", "used", "request", "pushed_request", "refusal", "settings", "retention",
        "personal_data_days", "subjects_forgotten", "keys_destroyed", "active_key_ids", "retired_key_ids",
        "phone_number_verified", "profile", "request_sequence", "decision_sequence"
    ]

    /// The position of each name of ``memberNames``.
    static let memberNamePositions: [String: Int] = Dictionary(uniqueKeysWithValues: memberNames.enumerated().map { ($1, $0) })

    /// The rank of each name of ``memberNames`` among them in the order of their UTF-8 bytes (the order
    /// of an object's members), by position.
    static let memberNameRanks: [Int] = {
        let order = memberNames.indices.sorted { memberNames[$0].utf8.lexicographicallyPrecedes(memberNames[$1].utf8) }
        var ranks = [Int](repeating: 0, count: memberNames.count)
        for (rank, position) in order.enumerated() { ranks[position] = rank }
        return ranks
    }()
}
