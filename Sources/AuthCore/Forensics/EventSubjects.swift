/// Who and what an event concerns: what `timeline` and `export` select on, and what personal data a
/// compliance export may have to leave out.
public struct EventSubjects: Sendable, Equatable {
    public var users: Set<String> = []
    public var clients: Set<String> = []
    public var addresses: Set<String> = []
    public var codeHashes: Set<String> = []
    public var sessionHashes: Set<String> = []

    public init() {}

    public init(_ event: AuthEvent) {
        switch event {
        case .configuration(let change):
            switch change {
            case .clientSet(let client): clients.insert(client.clientID)
            case .userSet(let user): users.insert(user.userID)
            case .memberAdded(let membership): users.insert(membership.userID)
            case .invitationSet(let invitation): clients.insert(invitation.clientID)
            default: break
            }
        case .authorizeRequested(let requested):
            requested.parameters["client_id"].map { clients.insert($0) }
            requested.clientIP.map { addresses.insert($0) }
        case .authorizeDecided(let decided):
            decided.input.parameters["client_id"].map { clients.insert($0) }
            if let session = decided.input.session {
                users.insert(session.userID)
                sessionHashes.insert(session.sessionHash)
            }
            if case .issueCode(let grant, _) = decided.decision.outcome { users.insert(grant.userID) }
            if case .issueTokens(let grant, _, _) = decided.decision.outcome { users.insert(grant.userID) }
        case .interactionOpened(let opened):
            opened.record.parameters["client_id"].map { clients.insert($0) }
        case .codeIssued(let issued):
            users.insert(issued.grant.userID)
            clients.insert(issued.grant.clientID)
            codeHashes.insert(issued.codeHash)
        case .loginSucceeded(let login):
            users.insert(login.userID)
            sessionHashes.insert(login.session.sessionHash)
            login.clientIP.map { addresses.insert($0) }
        case .loginFailed(let failure):
            users.insert(failure.username)
            failure.userID.map { users.insert($0) }
            failure.clientIP.map { addresses.insert($0) }
        case .consentGranted(let answer), .consentDenied(let answer):
            users.insert(answer.userID)
            clients.insert(answer.clientID)
        case .organizationChosen:
            break
        case .invitationAccepted(let accepted):
            users.insert(accepted.userID)
        case .loggedOut(let logout):
            users.insert(logout.userID)
            sessionHashes.insert(logout.sessionHash)
            logout.clientIP.map { addresses.insert($0) }
        case .tokenIssued(let issued):
            users.insert(issued.userID)
            clients.insert(issued.clientID)
            issued.codeHash.map { codeHashes.insert($0) }
            issued.clientIP.map { addresses.insert($0) }
        case .tokenRejected(let rejected):
            rejected.clientID.map { clients.insert($0) }
            rejected.codeHash.map { codeHashes.insert($0) }
            rejected.clientIP.map { addresses.insert($0) }
        case .codeReplayed(let replay):
            codeHashes.insert(replay.codeHash)
            replay.clientID.map { clients.insert($0) }
        case .tokenRevoked(let revoked):
            clients.insert(revoked.clientID)
            revoked.clientIP.map { addresses.insert($0) }
        case .refreshIssued(let refresh):
            users.insert(refresh.userID)
            clients.insert(refresh.clientID)
        case .refreshFamilyRevoked(let revoked):
            revoked.clientID.map { clients.insert($0) }
        case .tokenKeysRotated:
            break
        case .consentRevoked(let revoked):
            users.insert(revoked.userID)
            clients.insert(revoked.clientID)
        }
    }
}
