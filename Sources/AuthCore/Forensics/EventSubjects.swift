/// Who and what an event concerns: what `timeline` and `export` select on, and what personal data a
/// compliance export may have to leave out.
public struct EventSubjects: Sendable, Equatable {
    public var users: Set<String> = []
    public var clients: Set<String> = []
    public var addresses: Set<String> = []
    public var codeHashes: Set<String> = []
    public var sessionHashes: Set<String> = []

    public init() {}

    private static func insert(_ value: String?, into set: inout Set<String>) {
        if let value, !PersonalData.isMarker(value) { set.insert(value) }
    }

    /// A client address as the index keeps it: the keyed pseudonym of a sealed event, the address itself
    /// in an older one.
    private static func address(_ value: String?, key: String?) -> String? {
        key ?? value
    }

    public init(_ event: AuthEvent) {
        switch event {
        case .configuration(let change):
            switch change {
            case .clientSet(let client): clients.insert(client.clientID)
            case .userSet(let user): users.insert(user.userID)
            case .memberAdded(let membership): users.insert(membership.userID)
            case .invitationSet(let invitation): clients.insert(invitation.clientID)
            case .clientGrantSet(let grant): clients.insert(grant.clientID)
            default: break
            }
        case .authorizeRequested(let requested):
            Self.insert(requested.parameters["client_id"], into: &clients)
            Self.insert(requested.userID, into: &users)
            Self.insert(Self.address(requested.clientIP, key: requested.clientIPKey), into: &addresses)
        case .authorizeDecided(let decided):
            Self.insert(decided.input.parameters["client_id"], into: &clients)
            if let session = decided.input.session {
                users.insert(session.userID)
                sessionHashes.insert(session.sessionHash)
            }
            if case .issueCode(let grant, _) = decided.decision.outcome { users.insert(grant.userID) }
            if case .issueTokens(let grant, _, _) = decided.decision.outcome { users.insert(grant.userID) }
        case .interactionOpened(let opened):
            Self.insert(opened.record.parameters["client_id"], into: &clients)
        case .codeIssued(let issued):
            users.insert(issued.grant.userID)
            clients.insert(issued.grant.clientID)
            codeHashes.insert(issued.codeHash)
        case .loginSucceeded(let login):
            users.insert(login.userID)
            sessionHashes.insert(login.session.sessionHash)
            Self.insert(Self.address(login.clientIP, key: login.clientIPKey), into: &addresses)
        case .loginFailed(let failure):
            Self.insert(failure.username, into: &users)
            Self.insert(failure.userID, into: &users)
            Self.insert(Self.address(failure.clientIP, key: failure.clientIPKey), into: &addresses)
        case .consentGranted(let answer), .consentDenied(let answer):
            users.insert(answer.userID)
            clients.insert(answer.clientID)
        case .organizationChosen:
            break
        case .invitationAccepted(let accepted):
            users.insert(accepted.userID)
        case .loggedOut(let logout):
            users.insert(logout.userID)
            Self.insert(logout.clientID, into: &clients)
            sessionHashes.insert(logout.sessionHash)
            Self.insert(Self.address(logout.clientIP, key: logout.clientIPKey), into: &addresses)
        case .tokenIssued(let issued):
            users.insert(issued.userID)
            clients.insert(issued.clientID)
            Self.insert(issued.codeHash, into: &codeHashes)
            Self.insert(Self.address(issued.clientIP, key: issued.clientIPKey), into: &addresses)
        case .tokenRejected(let rejected):
            Self.insert(rejected.clientID, into: &clients)
            Self.insert(rejected.codeHash, into: &codeHashes)
            Self.insert(Self.address(rejected.clientIP, key: rejected.clientIPKey), into: &addresses)
        case .codeReplayed(let replay):
            codeHashes.insert(replay.codeHash)
            Self.insert(replay.clientID, into: &clients)
        case .tokenRevoked(let revoked):
            clients.insert(revoked.clientID)
            Self.insert(Self.address(revoked.clientIP, key: revoked.clientIPKey), into: &addresses)
        case .refreshIssued(let refresh):
            users.insert(refresh.userID)
            clients.insert(refresh.clientID)
        case .refreshFamilyRevoked(let revoked):
            Self.insert(revoked.clientID, into: &clients)
        case .tokenKeysRotated, .tokenKeysPublished, .projectionsPruned:
            break
        case .subjectErased(let erased):
            users.insert(erased.userID)
        case .retentionApplied:
            break
        case .consentRevoked(let revoked):
            users.insert(revoked.userID)
            clients.insert(revoked.clientID)
        case .clientCredentialsDecided(let decided):
            clients.insert(decided.input.clientID)
            Self.insert(Self.address(decided.clientIP, key: decided.clientIPKey), into: &addresses)
        case .clientAssertionUsed(let used):
            clients.insert(used.clientID)
        case .pushedRequest(let pushed):
            clients.insert(pushed.clientID)
            Self.insert(Self.address(pushed.clientIP, key: pushed.clientIPKey), into: &addresses)
        case .tokenIntrospected(let introspected):
            clients.insert(introspected.clientID)
        case .logoutDecided(let decided):
            Self.insert(decided.request.hint?.clientID ?? decided.request.clientID, into: &clients)
            if let session = decided.session {
                users.insert(session.userID)
                sessionHashes.insert(session.sessionHash)
            }
            Self.insert(Self.address(decided.clientIP, key: decided.clientIPKey), into: &addresses)
        case .backchannelLogout(let delivery):
            clients.insert(delivery.clientID)
            users.insert(delivery.userID)
            sessionHashes.insert(delivery.sessionHash)
        }
    }
}
