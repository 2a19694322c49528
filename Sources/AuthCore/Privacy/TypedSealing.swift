import LedgerCore

extension PersonalData {
    /// ``sealed(_:type:time:dataKey:key:)`` without parsing the payload, for the events on the hot path
    /// whose only personal values are optional top-level strings (the client address; a request's user
    /// agent) and that hold no ``PersonalText``: the values are taken from the typed event, which is encoded
    /// once, in `encoding`, without them and with their sealed objects (and `members`) in their place. The
    /// result reads exactly as the general path's does; `nil` for any other event, which takes the general path.
    public static func sealedWithoutParsing(
        _ event: AuthEvent, time: LedgerTimestamp, dataKey: DataKey?, encoding: PayloadEncoding = .json,
        adding members: [(name: String, value: any Encodable)] = [], key: (String, DataKey) throws -> SubjectKey
    ) throws -> (payload: [UInt8], unopened: AuthEvent)? {
        var values: [(member: String, value: String)] = []
        func take(_ field: inout String?, _ member: String) {
            if let value = field { values.append((member, value)) }
            field = nil
        }
        var stripped = event
        let userID: String?
        var clientIP: String?
        switch event {
        case .authorizeRequested(var requested):
            guard requested.parameters.loginHint == nil else { return nil }
            clientIP = requested.clientIP
            take(&requested.clientIP, "client_ip")
            take(&requested.userAgent, "user_agent")
            userID = requested.userID
            stripped = .authorizeRequested(requested)
        case .loginSucceeded(var login):
            clientIP = login.clientIP
            take(&login.clientIP, "client_ip")
            userID = login.userID
            stripped = .loginSucceeded(login)
        case .loggedOut(var logout):
            clientIP = logout.clientIP
            take(&logout.clientIP, "client_ip")
            userID = logout.userID
            stripped = .loggedOut(logout)
        case .tokenIssued(var issued):
            clientIP = issued.clientIP
            take(&issued.clientIP, "client_ip")
            userID = issued.userID
            stripped = .tokenIssued(issued)
        case .tokenRejected(var rejected):
            clientIP = rejected.clientIP
            take(&rejected.clientIP, "client_ip")
            userID = nil
            stripped = .tokenRejected(rejected)
        case .tokenRevoked(var revoked):
            clientIP = revoked.clientIP
            take(&revoked.clientIP, "client_ip")
            userID = nil
            stripped = .tokenRevoked(revoked)
        default:
            return nil
        }
        guard !values.isEmpty else { return nil }
        guard let dataKey else { throw Unsealable(type: event.eventType.name) }
        let subject = subject(userID: userID, time: time)
        let subjectKey = try key(subject, dataKey)
        let addressKey = clientIP.map { subjectKey.pseudonym($0, domain: "address") }
        // What a reader without an opener sees: the values as markers, the pseudonym beside them.
        let hasUserAgent = values.contains { $0.member == "user_agent" }
        let unopened = stripped.settingPersonalFields(
            clientIP: clientIP.map { _ in sealed }, userAgent: hasUserAgent ? sealed : nil, clientIPKey: addressKey)
        let sealedMembers: [(name: String, value: any Encodable)] = values.map { member, value in
            (member, subjectKey.seal(Array(value.utf8), subject: subject, context: context(type: event.eventType, field: member)))
        }
        let payload = try stripped.settingPersonalFields(clientIP: nil, userAgent: nil, clientIPKey: addressKey)
            .payload(encoding, adding: sealedMembers + members)
        return (payload, unopened)
    }
}

extension AuthEvent {
    /// The event with its client address, user agent (of a request) and address pseudonym set as given.
    func settingPersonalFields(clientIP: String?, userAgent: String?, clientIPKey: String?) -> AuthEvent {
        switch self {
        case .authorizeRequested(var value):
            (value.clientIP, value.userAgent, value.clientIPKey) = (clientIP, userAgent, clientIPKey)
            return .authorizeRequested(value)
        case .loginSucceeded(var value):
            (value.clientIP, value.clientIPKey) = (clientIP, clientIPKey)
            return .loginSucceeded(value)
        case .loggedOut(var value):
            (value.clientIP, value.clientIPKey) = (clientIP, clientIPKey)
            return .loggedOut(value)
        case .tokenIssued(var value):
            (value.clientIP, value.clientIPKey) = (clientIP, clientIPKey)
            return .tokenIssued(value)
        case .tokenRejected(var value):
            (value.clientIP, value.clientIPKey) = (clientIP, clientIPKey)
            return .tokenRejected(value)
        case .tokenRevoked(var value):
            (value.clientIP, value.clientIPKey) = (clientIP, clientIPKey)
            return .tokenRevoked(value)
        default:
            return self
        }
    }
}
