import AuthCore

/// What must still hold in the commit that records a request's events.
///
/// A request decides on what it read before its events reach the journal's writer; meanwhile a concurrent
/// request — on this node or another sharing the journal — may have spent what it relied on (a code, a
/// refresh token, an interaction, a DPoP proof). The writer therefore checks each condition again against
/// the projections as they stand in the very commit the events would join, where two requests cannot both
/// pass. Each condition names the projection entries it reads, so that the writer fetches those of its
/// whole batch at once (``AuthLedger/record(checking:_:)``): what is checked and what is fetched cannot drift.
public enum CommitCondition: Sendable, Hashable, CustomStringConvertible {
    /// The interaction (by hash) is still open: no concurrent request completed it.
    case interactionOpen(String)
    /// The pushed authorization request (by hash) has not been used.
    case pushedRequestUnused(String)
    /// The session (by hash) still exists: no logout was committed since it was read.
    case sessionActive(String)
    /// The organization invitation (its ticket) has not been spent.
    case invitationUnspent(String)
    /// The authorization code (by hash) is issued and not yet redeemed.
    case codeUnredeemed(String)
    /// The refresh token (by hash) is active, and its family is not revoked.
    case refreshTokenActive(tokenHash: String, family: String)
    /// The access token (by `jti`) is active.
    case accessTokenActive(String)
    /// The DPoP proof (by its id) has not been presented before (RFC 9449 §11.1).
    case dpopProofUnused(String)
    /// The client assertion (its ``ClientAssertionUsed/key(clientID:jti:)``) has not been presented before
    /// (RFC 7523 §3, rule 7).
    case clientAssertionUnused(String)

    /// The projection entries the check reads (the configuration, read whole and rarely changed, is not
    /// announced).
    public var reads: [(AuthTable, String)] {
        switch self {
        case .interactionOpen(let hash): [(.interactions, hash)]
        case .pushedRequestUnused(let hash): [(.pushedRequests, hash)]
        case .sessionActive(let hash): [(.sessions, hash)]
        case .invitationUnspent: []
        case .codeUnredeemed(let hash): [(.codes, CodeRecord.key(hash))]
        case .refreshTokenActive(let tokenHash, let family): [(.refreshTokens, tokenHash), (.refreshFamilies, family)]
        case .accessTokenActive(let id): [(.tokens, TokenRecord.key(id))]
        case .dpopProofUnused(let id): [(.dpopProofs, id)]
        case .clientAssertionUnused(let key): [(.clientAssertions, key)]
        }
    }

    /// Whether the condition holds in `store`.
    public func holds(in store: some ProjectionStore) throws -> Bool {
        switch self {
        case .interactionOpen(let hash):
            try store.get(.interactions, hash) != nil
        case .pushedRequestUnused(let hash):
            try store.value(PushedRequest.self, .pushedRequests, hash)?.used != true
        case .sessionActive(let hash):
            try store.get(.sessions, hash) != nil
        case .invitationUnspent(let ticket):
            try !AuthProjection.configuration(in: store).spentInvitations.contains(ticket)
        case .codeUnredeemed(let hash):
            try store.code(hash)?.status == .issued
        case .refreshTokenActive(let tokenHash, let family):
            try store.value(RefreshRecord.self, .refreshTokens, tokenHash)?.status == .active
                && store.value(RefreshFamilyRecord.self, .refreshFamilies, family)?.revoked == false
        case .accessTokenActive(let id):
            try store.token(id)?.status == .active
        case .dpopProofUnused(let id):
            try store.get(.dpopProofs, id) == nil
        case .clientAssertionUnused(let key):
            try store.get(.clientAssertions, key) == nil
        }
    }

    /// The first of `conditions` that does not hold in `store`, in their order; `nil` when all hold.
    public static func firstFailing(_ conditions: [CommitCondition], in store: some ProjectionStore) throws -> CommitCondition? {
        try conditions.first { try !$0.holds(in: store) }
    }

    public var description: String {
        switch self {
        case .interactionOpen: "the interaction is still open"
        case .pushedRequestUnused: "the pushed request is unused"
        case .sessionActive: "the session is active"
        case .invitationUnspent: "the invitation is unspent"
        case .codeUnredeemed: "the code is unredeemed"
        case .refreshTokenActive: "the refresh token is active"
        case .accessTokenActive: "the access token is active"
        case .dpopProofUnused: "the DPoP proof is unused"
        case .clientAssertionUnused: "the client assertion is unused"
        }
    }
}

/// A request's events were not recorded: `condition` no longer held in the commit they would have joined.
public struct CommitConditionFailed: Error, CustomStringConvertible {
    public let condition: CommitCondition

    public var description: String { "not recorded: no longer true that \(condition)" }
}
