import Foundation
import LedgerCore

/// Where projections are kept: the journal's LMDB tables when live, anything else when rebuilding.
public protocol ProjectionStore {
    func get(_ table: AuthTable, _ key: String) throws -> [UInt8]?
    func put(_ table: AuthTable, _ key: String, _ value: [UInt8]) throws
    func delete(_ table: AuthTable, _ key: String) throws
    /// Calls `body` with the entries of `table` from `start` on, in bytewise key order, until it returns
    /// `false`. `body` must not change the table (collect, then change).
    func forEach(_ table: AuthTable, from start: String, _ body: (String, [UInt8]) throws -> Bool) throws
    /// Appends `bytes` to the value stored under `key` in `table` (to nothing, when there is none): how an
    /// index bucket gains an entry (``IndexBucket``) through ``addIndexEntry(_:_:sequence:)``. A store
    /// whose reads are round trips does it without reading the value.
    func extend(_ table: AuthTable, _ key: String, with bytes: [UInt8]) throws
    /// Adds the entry of the event at `sequence` to the ``AuthTable/index`` bucket of `value` as `kind`:
    /// ``extend(_:_:with:)`` under ``IndexKind/key(_:sequence:)``, unless the store keeps its index in
    /// another form.
    func addIndexEntry(_ kind: IndexKind, _ value: String, sequence: UInt64) throws
}

extension ProjectionStore {
    /// Extends the bucket's stored key (``IndexKind/key(_:sequence:)``) with the event's entry
    /// (``IndexBucket/entry(_:)``): the index as every store but a rebuild's keeps it.
    public func addIndexEntry(_ kind: IndexKind, _ value: String, sequence: UInt64) throws {
        try extend(.index, kind.key(value, sequence: sequence), with: IndexBucket.entry(sequence))
    }

    /// Reads the value, then stores it with `bytes` appended.
    public func extend(_ table: AuthTable, _ key: String, with bytes: [UInt8]) throws {
        try put(table, key, (try get(table, key) ?? []) + bytes)
    }

    /// The value stored under `key` in `table`, decoded as `type`; `nil` when there is none.
    public func value<T: Decodable>(_ type: T.Type, _ table: AuthTable, _ key: String) throws -> T? {
        try get(table, key).map { try ProjectionCoding.decode(type, from: $0) }
    }

    /// Applies `change` to the value stored under `key` in `table` and stores the result;
    /// does nothing when there is no such value.
    public func update<T: Codable>(_ type: T.Type, _ table: AuthTable, _ key: String, _ change: (inout T) -> Void) throws {
        guard var stored = try value(type, table, key) else { return }
        change(&stored)
        try put(table, key, try ProjectionCoding.encode(stored))
    }
}

/// The projection tables of the authorization server.
public enum AuthTable: String, CaseIterable, Sendable {
    /// `state` → the whole ``ConfigurationState`` (it changes rarely and is read whole).
    case configuration = "config"
    /// session hash → ``SessionSnapshot``.
    case sessions
    /// `user ␟ client ␟ audience` → granted scopes.
    case consents
    /// code hash (``CodeRecord/key(_:)``) → ``CodeRecord``.
    case codes
    /// interaction hash → ``InteractionRecord``.
    case interactions
    /// token id (`jti`, ``TokenRecord/key(_:)``) → ``TokenRecord``.
    case tokens
    /// refresh token hash → ``RefreshRecord``.
    case refreshTokens = "refresh"
    /// refresh family → ``RefreshFamilyRecord``.
    case refreshFamilies = "refresh_families"
    /// DPoP proof `jti` → the time it was used (RFC 9449 §11.1 replay protection).
    case dpopProofs = "dpop_proofs"
    /// Secondary indexes for the timeline: the kind, a digest of the value and a bucket of 256 sequence
    /// numbers (``IndexKind/key(_:sequence:)``) → the last byte of each of the bucket's sequence numbers
    /// that concern the value (``IndexBucket``).
    case index
    /// `u ␟ account`, `p ␟ account ␟ address` and `i ␟ address` → recent failed-login times (``LoginThrottle``).
    case loginFailures = "login_failures"
    /// `kid` → a public token key some node published (``TokenKeysPublished``), for the JWKS of a cluster.
    case tokenKeys = "token_keys"
    /// ``ClientAssertionUsed/key(clientID:jti:)`` → when the assertion expires (RFC 7523 §3 replay protection).
    case clientAssertions = "client_assertions"
    /// hash of a `request_uri` → ``PushedRequest`` (RFC 9126).
    case pushedRequests = "pushed_requests"
    /// `session hash ␟ client id` → when the session expires: the clients a session issued codes or tokens to
    /// (back-channel logout).
    case sessionClients = "session_clients"
}

/// A refresh token, by hash.
public struct RefreshRecord: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case active, rotated
    }

    public var issued: RefreshIssued
    public var status: Status
}

/// A family of refresh tokens: one grant, rotated over time.
public struct RefreshFamilyRecord: Codable, Sendable, Equatable {
    public var revoked: Bool
    /// The refresh token currently valid in the family.
    public var current: String
}

/// What the server knows about an issued access token.
public struct TokenRecord: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case active, revoked
    }

    public var clientID: String
    public var userID: String
    public var expiresAt: LedgerTimestamp
    public var status: Status
    /// The refresh family the token was issued in: revoking the family revokes the token.
    public var refreshFamily: String?
    /// Claims the UserInfo endpoint returns for it besides its scopes' (``TokenIssued/userinfoClaims``).
    public var userinfoClaims: [String]?

    enum CodingKeys: String, CodingKey {
        case clientID = "client_id", userID = "user_id", expiresAt = "expires_at", status
        case refreshFamily = "refresh_family"
        case userinfoClaims = "userinfo_claims"
    }
}

extension TokenRecord {
    /// The ``AuthTable/tokens`` key of the token with id `jti`: for the 256-bit ids of releases before
    /// ``TokenIdentifier``, the first 16 of the 32 bytes its base64url encodes, in ``IndexKeyDigits`` (22
    /// characters instead of 43); any other id — the 128-bit ids issued since, 22 characters already — as
    /// it is.
    public static func key(_ jti: String) -> String {
        guard let bytes = Base64URL.decode(jti), bytes.count == 32 else { return jti }
        return IndexKeyDigits.encode(bytes.prefix(16))
    }
}

/// What the server knows about an issued code.
public struct CodeRecord: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case issued, redeemed, revoked
    }

    public var grant: CodeGrant
    public var status: Status
    public var issuedSequence: UInt64
    /// Tokens issued from the code (revoked if the code is replayed).
    public var tokenIDs: [String]?
    /// The refresh family started by the redemption, if any (revoked when the code is replayed).
    public var refreshFamily: String?

    /// The record of a code just issued for `grant` by the event at `sequence`: what the projection holds
    /// for it until it is redeemed (and what the node that issued it keeps for its redemption).
    public static func issued(_ grant: CodeGrant, at sequence: UInt64) -> CodeRecord {
        CodeRecord(grant: grant, status: .issued, issuedSequence: sequence, tokenIDs: nil, refreshFamily: nil)
    }

    /// The ``AuthTable/codes`` key of the code whose hash is `hash`: the first 16 of the 32 bytes its 64
    /// hexadecimal digits encode, in ``IndexKeyDigits`` (22 characters instead of 64: a code is 256 random
    /// bits, so 128 of its hash tell codes apart); a hash that is not 64 hexadecimal digits, as it is.
    public static func key(_ hash: String) -> String {
        guard hash.utf8.count == 64, let bytes = Hex.decode(hash), bytes.count == 32 else { return hash }
        return IndexKeyDigits.encode(bytes.prefix(16))
    }

    enum CodingKeys: String, CodingKey {
        case grant, status
        case issuedSequence = "issued_sequence"
        case tokenIDs = "token_ids"
        case refreshFamily = "refresh_family"
    }
}

/// How each event changes the projections. Projections are a pure function of the events: the live
/// server applies this in the same transaction as the event, and a rebuild applies it to every event.
public enum AuthProjection {
    public static let configurationKey = "state"

    /// The ``AuthTable/sessionClients`` key of a session and a client.
    public static func sessionClientKey(_ sessionHash: String, _ clientID: String) -> String {
        sessionHash + "\u{1F}" + clientID
    }

    public static func consentKey(userID: String, clientID: String, audience: String?) -> String {
        "\(userID)\u{1F}\(ConsentKey.make(clientID: clientID, audience: audience))"
    }

    /// Applies `event`, stored at `sequence`, to the projections: its index entries and its effects.
    /// - Parameter traceID: the trace id the stored event carries (``RequestTrace/traceID(in:)``), indexed
    ///   under ``IndexKind/trace``.
    public static func apply(_ event: AuthEvent, sequence: UInt64, traceID: String? = nil, to store: some ProjectionStore) throws {
        try index(event, sequence: sequence, in: store)
        if let traceID, RequestTrace.isTraceID(traceID) { try store.addIndexEntry(.trace, traceID, sequence: sequence) }
        switch event {
        case .configuration, .invitationAccepted:
            var state = try configuration(in: store)
            applyConfiguration(event, sequence: sequence, to: &state)
            try store.put(.configuration, configurationKey, try ProjectionCoding.encode(state))
        case .authorizeRequested:
            break
        case .authorizeDecided(let decided):
            // A pushed request is spent by the decision that used it.
            if let pushed = decided.input.parameters.pushedRequest, pushed.refused == nil {
                try store.update(PushedRequest.self, .pushedRequests, pushed.hash) { $0.used = true }
            }
            // The clients a session hands codes or tokens to: told when it ends (back-channel logout).
            if decided.decision.outcome.issues, let session = decided.input.session, let client = decided.input.parameters["client_id"] {
                try store.put(.sessionClients, sessionClientKey(session.sessionHash, client), try ProjectionCoding.encode(session.expiresAt))
            }
            switch decided.decision.outcome {
            case .issueCode, .issueTokens, .errorRedirect, .errorPage:
                if let interaction = decided.interaction { try store.delete(.interactions, interaction) }
            case .login, .consent, .chooseOrganization:
                break
            }
        case .interactionOpened(let opened):
            try store.put(.interactions, opened.interaction, try ProjectionCoding.encode(opened.record))
        case .codeIssued(let issued):
            try store.put(.codes, CodeRecord.key(issued.codeHash), try ProjectionCoding.encode(CodeRecord.issued(issued.grant, at: sequence)))
        case .loginSucceeded(let login):
            try store.put(.sessions, login.session.sessionHash, try ProjectionCoding.encode(login.session))
            try updateInteraction(login.interaction, in: store) { $0.progress.authenticatedAt = login.session.authTime }
        case .loginFailed(let failure):
            // Throttled attempts are not counted again, or a locked-out account could never recover.
            guard let at = failure.at, failure.reason != .throttled else { break }
            // A sealed event's address is counted by the keyed pseudonym of its network; an older one's by itself.
            let network = failure.clientNetwork ?? failure.clientIP.flatMap { PersonalData.isMarker($0) ? nil : LoginThrottle.network(of: $0) }
            for key in LoginThrottle.keyNames(userID: failure.userID, username: failure.username, network: network) {
                let recent = try store.value([LedgerTimestamp].self, .loginFailures, key) ?? []
                try store.put(.loginFailures, key, try ProjectionCoding.encode(LoginThrottle.remember(at, in: recent)))
            }
        case .consentGranted(let answer):
            let key = consentKey(userID: answer.userID, clientID: answer.clientID, audience: answer.audience)
            let existing = try store.value([String].self, .consents, key) ?? []
            var granted = existing
            for scope in answer.scopes where !granted.contains(scope) { granted.append(scope) }
            try store.put(.consents, key, try ProjectionCoding.encode(granted))
            try updateInteraction(answer.interaction, in: store) { $0.progress.consent = .granted }
        case .consentRevoked(let revoked):
            // The keys are recorded in the event, so the projection change needs no search.
            for key in revoked.revokedKeys { try store.delete(.consents, key) }
        case .consentDenied(let answer):
            try updateInteraction(answer.interaction, in: store) { $0.progress.consent = .denied }
        case .tokenIssued(let issued):
            if let id = issued.accessTokenID {
                let record = TokenRecord(
                    clientID: issued.clientID, userID: issued.userID, expiresAt: issued.expiresAt, status: .active,
                    refreshFamily: issued.refreshFamily, userinfoClaims: issued.userinfoClaims)
                try store.put(.tokens, TokenRecord.key(id), try ProjectionCoding.encode(record))
            }
            if let codeHash = issued.codeHash, var code = try codeRecord(codeHash, in: store) {
                code.status = .redeemed
                code.tokenIDs = [issued.accessTokenID].compactMap { $0 }
                code.refreshFamily = issued.refreshFamily
                try store.put(.codes, CodeRecord.key(codeHash), try ProjectionCoding.encode(code))
            }
            if let proof = issued.dpopProofID {
                try store.put(.dpopProofs, proof, Array(sequence.bigEndianBytes))
            }
        case .refreshIssued(let refresh):
            try store.put(.refreshTokens, refresh.tokenHash, try ProjectionCoding.encode(RefreshRecord(issued: refresh, status: .active)))
            if let parent = refresh.parentHash {
                try store.update(RefreshRecord.self, .refreshTokens, parent) { $0.status = .rotated }
            }
            try store.put(.refreshFamilies, refresh.family, try ProjectionCoding.encode(RefreshFamilyRecord(revoked: false, current: refresh.tokenHash)))
        case .refreshFamilyRevoked(let revoked):
            try store.update(RefreshFamilyRecord.self, .refreshFamilies, revoked.family) { $0.revoked = true }
        case .tokenRejected, .tokenKeysRotated, .tokenIntrospected, .backchannelLogout, .logoutDecided:
            break
        case .clientCredentialsDecided:
            break  // its token is folded from the auth.token.issued that follows it
        case .clientAssertionUsed(let used):
            try store.put(.clientAssertions, used.assertion, try ProjectionCoding.encode(used.expiresAt))
        case .pushedRequest(let pushed):
            guard pushed.refusal == nil else { break }  // refused: no request_uri was handed out
            var record = pushed
            record.clientIP = nil  // what the authorization needs; the address stays in the event
            record.clientIPKey = nil
            try store.put(.pushedRequests, pushed.requestURIHash, try ProjectionCoding.encode(record))
        case .projectionsPruned(let pruned):
            try ProjectionPruning.apply(pruned, to: store)
        case .subjectErased, .retentionApplied:
            break  // keys are gone from the store; no projection holds a sealed value
        case .tokenKeysPublished(let published):
            for key in published.keys {
                if let kid = key["kid"] { try store.put(.tokenKeys, kid, try ProjectionCoding.encode(key)) }
            }
            for kid in published.dropped ?? [] { try store.delete(.tokenKeys, kid) }
        case .codeReplayed(let replay):
            if var code = try codeRecord(replay.codeHash, in: store) {
                code.status = .revoked
                try store.put(.codes, CodeRecord.key(replay.codeHash), try ProjectionCoding.encode(code))
            }
            for id in replay.revokedTokenIDs { try revokeToken(id, in: store) }
        case .tokenRevoked(let revoked):
            try revokeToken(revoked.tokenID, in: store)
        case .loggedOut(let logout):
            try store.delete(.sessions, logout.sessionHash)
            var clients: [String] = []
            try store.forEach(.sessionClients, from: sessionClientKey(logout.sessionHash, "")) { key, _ in
                guard key.hasPrefix(sessionClientKey(logout.sessionHash, "")) else { return false }
                clients.append(key)
                return true
            }
            for key in clients { try store.delete(.sessionClients, key) }
        case .organizationChosen(let chosen):
            try updateInteraction(chosen.interaction, in: store) { $0.progress.organizationID = chosen.organizationID }
        }
    }

    /// Adds the event to the timeline indexes of everything it concerns.
    static func index(_ event: AuthEvent, sequence: UInt64, in store: some ProjectionStore) throws {
        let subjects = EventSubjects(event)
        let entries: [(IndexKind, Set<String>)] = [
            (.user, subjects.users), (.client, subjects.clients), (.code, subjects.codeHashes), (.session, subjects.sessionHashes),
            (.address, subjects.addresses),
        ]
        for (kind, values) in entries {
            for value in values where !value.isEmpty {
                try store.addIndexEntry(kind, value, sequence: sequence)
            }
        }
        for (kind, value) in historyEntries(event) where !value.isEmpty {
            try store.addIndexEntry(kind, value, sequence: sequence)
        }
    }

    /// The index entries that let a question about one decision or moment be answered from the events it
    /// depends on: the configuration's changes (for the version a decision names), a user's consent changes
    /// (for `consent --at`), a refresh family's events (for what followed a decision). Rare events: about
    /// one entry per consent given and per refresh token issued.
    public static func historyEntries(_ event: AuthEvent) -> [(IndexKind, String)] {
        switch event {
        case .configuration, .invitationAccepted: [(.configuration, IndexKind.tenant)]
        case .consentGranted(let answer): [(.consent, answer.userID)]
        case .consentRevoked(let revoked): [(.consent, revoked.userID)]
        case .tokenIssued(let issued): issued.refreshFamily.map { [(.refreshFamily, $0)] } ?? []
        case .refreshIssued(let refresh): [(.refreshFamily, refresh.family)]
        case .refreshFamilyRevoked(let revoked): [(.refreshFamily, revoked.family)]
        default: []
        }
    }

    /// Whether `event` changes the configuration (``ConfigurationState``): a configuration change, or an
    /// accepted invitation (it adds a member).
    public static func changesConfiguration(_ event: AuthEvent) -> Bool {
        switch event {
        case .configuration, .invitationAccepted: true
        default: false
        }
    }

    /// Folds one configuration-changing event into `state`, as the ``AuthTable/configuration`` projection
    /// does; other events leave it as it is. The forensics tools rebuild past configurations with this.
    public static func applyConfiguration(_ event: AuthEvent, sequence: UInt64, to state: inout ConfigurationState) {
        switch event {
        case .configuration(let change): state.apply(change, at: sequence)
        case .invitationAccepted(let accepted): state.acceptInvitation(ticket: accepted.ticket, userID: accepted.userID, at: sequence)
        default: break
        }
    }

    static func revokeToken(_ id: String, in store: some ProjectionStore) throws {
        try store.update(TokenRecord.self, .tokens, TokenRecord.key(id)) { $0.status = .revoked }
    }

    static func codeRecord(_ hash: String, in store: some ProjectionStore) throws -> CodeRecord? {
        try store.value(CodeRecord.self, .codes, CodeRecord.key(hash))
    }

    /// The event type that sealed a personal value found in the configuration projection under `path`
    /// (member names from the top): users come from `config.user.set`, invitations from `config.invitation.set`.
    public static func configurationEventType(_ path: [String]) -> EventType {
        path.first == "invitations" ? ConfigurationEvent.invitationSetType : ConfigurationEvent.userSetType
    }

    /// The configuration as the projection holds it: personal values sealed (see
    /// `SnapshotStore.openedConfiguration(dataKey:)` for them opened).
    public static func configuration(in store: some ProjectionStore) throws -> ConfigurationState {
        try store.value(ConfigurationState.self, .configuration, configurationKey) ?? ConfigurationState()
    }

    private static func updateInteraction(
        _ interaction: String?, in store: some ProjectionStore, _ change: (inout InteractionRecord) -> Void
    ) throws {
        guard let interaction else { return }
        try store.update(InteractionRecord.self, .interactions, interaction, change)
    }
}
