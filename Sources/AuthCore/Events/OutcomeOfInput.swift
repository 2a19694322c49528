import LedgerCore

// Schema version 5 of `auth.authorize.decided` (journal format §14, "Values written once"): an outcome that
// issues — a code, or tokens in the front channel — names the client, the user, the redirect URI and the
// state the decision's input already holds. The payload leaves them out of the outcome, and a reader takes
// them from the input again. Written out, they were a quarter of the decision's bytes.

extension AuthorizationOutcome {
    /// The grant and the delivery of an outcome that issues; `nil` for the others.
    var issued: (grant: CodeGrant, delivery: ResponseDelivery)? {
        switch self {
        case .issueCode(let grant, let delivery), .issueTokens(let grant, _, let delivery): (grant, delivery)
        default: nil
        }
    }

    /// The same outcome with another grant and delivery (an outcome that issues nothing, unchanged).
    func replacingIssued(_ grant: CodeGrant, _ delivery: ResponseDelivery) -> AuthorizationOutcome {
        switch self {
        case .issueCode: .issueCode(grant, delivery: delivery)
        case .issueTokens(_, let responseTypes, _): .issueTokens(grant, responseTypes: responseTypes, delivery: delivery)
        default: self
        }
    }
}

extension AuthorizationDecision {
    /// Whether the outcome issues, and its grant and delivery hold exactly the values of `input` that a
    /// payload may leave to it: the parameters' `client_id`, `redirect_uri` (given, so the grant says so;
    /// the delivery's too) and `state` (or none in both), and the session's user and authentication time.
    /// Only then are they left out, all together.
    public func holdsValues(of input: AuthorizationInput) -> Bool {
        guard let (grant, delivery) = outcome.issued, let session = input.session else { return false }
        let values = input.parameters.values
        return grant.clientID == values["client_id"] && grant.redirectURI == values["redirect_uri"] && grant.redirectURIGiven == true
            && grant.userID == session.userID && grant.authTime == session.authTime
            && delivery.redirectURI == grant.redirectURI && delivery.state == values["state"]
    }

    /// This decision with the values its outcome left to `input` (``holdsValues(of:)``) taken from there;
    /// `nil` when `input` lacks one of them.
    func completed(from input: AuthorizationInput) -> AuthorizationDecision? {
        guard var (grant, delivery) = outcome.issued else { return self }
        let values = input.parameters.values
        guard let session = input.session, let clientID = values["client_id"], let redirectURI = values["redirect_uri"] else { return nil }
        grant.clientID = clientID
        grant.redirectURI = redirectURI
        grant.redirectURIGiven = true
        grant.userID = session.userID
        grant.authTime = session.authTime
        delivery.redirectURI = redirectURI
        delivery.state = values["state"]
        return AuthorizationDecision(outcome: outcome.replacingIssued(grant, delivery), rule: rule)
    }
}

/// A decision whose outcome leaves out the values its input holds (``AuthorizeDecided/outcomeOfInput``),
/// in the shape the synthesized coding of ``AuthorizationOutcome`` gives the others:
/// `{"outcome":{"issueCode":{"_0":<grant>,"delivery":<delivery>}},"rule":…}`, or `issueTokens` with
/// `responseTypes` beside them.
struct DecisionLeavingInputValues: Encodable {
    let decision: AuthorizationDecision

    enum Keys: String, CodingKey { case outcome, rule }
    enum OutcomeKeys: String, CodingKey { case issueCode, issueTokens }
    enum IssueKeys: String, CodingKey {
        case grant = "_0", responseTypes, delivery
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(decision.rule, forKey: .rule)
        let (kind, grant, responseTypes, delivery): (OutcomeKeys, CodeGrant, [String]?, ResponseDelivery)
        switch decision.outcome {
        case .issueCode(let issued, let to): (kind, grant, responseTypes, delivery) = (.issueCode, issued, nil, to)
        case .issueTokens(let issued, let types, let to): (kind, grant, responseTypes, delivery) = (.issueTokens, issued, types, to)
        default:
            throw EncodingError.invalidValue(decision, .init(codingPath: encoder.codingPath, debugDescription: "only an outcome that issues leaves values to its input"))
        }
        var outcome = container.nestedContainer(keyedBy: OutcomeKeys.self, forKey: .outcome)
        var members = outcome.nestedContainer(keyedBy: IssueKeys.self, forKey: kind)
        try members.encode(GrantLeavingInputValues(grant: grant), forKey: .grant)
        try members.encodeIfPresent(responseTypes, forKey: .responseTypes)
        try members.encode(DeliveryLeavingInputValues(mode: delivery.mode), forKey: .delivery)
    }

    /// The decision in `container`, when its outcome leaves values to its input (its grant has no
    /// `client_id`): the values are placeholders until ``AuthorizationDecision/completed(from:)``. `nil`
    /// for every other decision, which decodes as it is.
    /// - Throws: `DecodingError` when the outcome leaves out some of the values and writes others.
    static func decodeIfLeaving(_ container: KeyedDecodingContainer<Keys>) throws -> AuthorizationDecision? {
        let outcome = try container.nestedContainer(keyedBy: OutcomeKeys.self, forKey: .outcome)
        guard let kind = outcome.allKeys.first else { return nil }
        let members = try outcome.nestedContainer(keyedBy: IssueKeys.self, forKey: kind)
        let grantMembers = try members.nestedContainer(keyedBy: CodeGrant.CodingKeys.self, forKey: .grant)
        guard !grantMembers.contains(.clientID) else { return nil }
        // One outcome, as the synthesized decoding of the others requires.
        guard try container.nestedContainer(keyedBy: MemberName.self, forKey: .outcome).allKeys.count == 1 else {
            throw DecodingError.dataCorruptedError(forKey: .outcome, in: container, debugDescription: "an outcome has exactly one member")
        }
        let grant = try CodeGrant(leavingInputValues: grantMembers)
        let delivery = try members.decode(DeliveryLeavingInputValues.self, forKey: .delivery)
        let placeholder = ResponseDelivery(redirectURI: "", mode: delivery.mode, state: nil)
        let decided: AuthorizationOutcome =
            switch kind {
            case .issueCode: .issueCode(grant, delivery: placeholder)
            case .issueTokens:
                .issueTokens(grant, responseTypes: try members.decode([String].self, forKey: .responseTypes), delivery: placeholder)
            }
        return AuthorizationDecision(outcome: decided, rule: try container.decode(String.self, forKey: .rule))
    }
}

/// Any member's name: to count an object's members.
private struct MemberName: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A grant without the members its decision's input holds.
private struct GrantLeavingInputValues: Encodable {
    let grant: CodeGrant

    func encode(to encoder: any Encoder) throws {
        try grant.encode(to: encoder, leavingInputValues: true)
    }
}

/// A delivery without its redirect URI and state, which its decision's input holds: its mode alone.
private struct DeliveryLeavingInputValues: Codable {
    let mode: ResponseDelivery.Mode

    enum CodingKeys: String, CodingKey {
        case mode, redirectURI, state
    }

    init(mode: ResponseDelivery.Mode) {
        self.mode = mode
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        for key in [CodingKeys.redirectURI, .state] where container.contains(key) {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container, debugDescription: "a delivery whose grant leaves its values to the input leaves out \(key.stringValue) too")
        }
        mode = try container.decode(ResponseDelivery.Mode.self, forKey: .mode)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(mode, forKey: .mode)
    }
}

extension CodeGrant {
    /// The members an issuing outcome leaves to its decision's input.
    static let valuesOfInput: [CodingKeys] = [.clientID, .redirectURI, .userID, .authTime, .redirectURIGiven]

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            members: container, clientID: try container.decode(String.self, forKey: .clientID),
            redirectURI: try container.decode(String.self, forKey: .redirectURI), userID: try container.decode(String.self, forKey: .userID),
            authTime: try container.decode(LedgerTimestamp.self, forKey: .authTime),
            redirectURIGiven: try container.decodeIfPresent(Bool.self, forKey: .redirectURIGiven))
    }

    /// A grant whose client, redirect URI, user and authentication time are its decision's input's, and
    /// left out: placeholders until the decision is completed.
    init(leavingInputValues container: KeyedDecodingContainer<CodingKeys>) throws {
        for key in Self.valuesOfInput where container.contains(key) {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container, debugDescription: "a grant without client_id leaves \(key.stringValue) to its decision's input too")
        }
        try self.init(
            members: container, clientID: "", redirectURI: "", userID: "", authTime: LedgerTimestamp(microsecondsSinceEpoch: 0),
            redirectURIGiven: true)
    }

    private init(
        members container: KeyedDecodingContainer<CodingKeys>, clientID: String, redirectURI: String, userID: String, authTime: LedgerTimestamp,
        redirectURIGiven: Bool?
    ) throws {
        self.init(
            clientID: clientID, redirectURI: redirectURI, userID: userID, scopes: try container.decode([String].self, forKey: .scopes),
            audience: try container.decodeIfPresent(String.self, forKey: .audience),
            organizationID: try container.decodeIfPresent(String.self, forKey: .organizationID),
            nonce: try container.decodeIfPresent(String.self, forKey: .nonce),
            codeChallenge: try container.decodeIfPresent(String.self, forKey: .codeChallenge),
            codeChallengeMethod: try container.decodeIfPresent(String.self, forKey: .codeChallengeMethod),
            dpopJKT: try container.decodeIfPresent(String.self, forKey: .dpopJKT), authTime: authTime,
            expiresAt: try container.decode(LedgerTimestamp.self, forKey: .expiresAt),
            invitation: try container.decodeIfPresent(String.self, forKey: .invitation), redirectURIGiven: redirectURIGiven,
            claims: try container.decodeIfPresent(RequestedClaims.self, forKey: .claims))
    }

    public func encode(to encoder: any Encoder) throws {
        try encode(to: encoder, leavingInputValues: false)
    }

    /// Encodes the grant; with `leavingInputValues`, without the members of ``valuesOfInput``.
    func encode(to encoder: any Encoder, leavingInputValues: Bool) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if !leavingInputValues {
            try container.encode(clientID, forKey: .clientID)
            try container.encode(redirectURI, forKey: .redirectURI)
            try container.encode(userID, forKey: .userID)
            try container.encode(authTime, forKey: .authTime)
            try container.encodeIfPresent(redirectURIGiven, forKey: .redirectURIGiven)
        }
        try container.encode(scopes, forKey: .scopes)
        try container.encodeIfPresent(audience, forKey: .audience)
        try container.encodeIfPresent(organizationID, forKey: .organizationID)
        try container.encodeIfPresent(nonce, forKey: .nonce)
        try container.encodeIfPresent(codeChallenge, forKey: .codeChallenge)
        try container.encodeIfPresent(codeChallengeMethod, forKey: .codeChallengeMethod)
        try container.encodeIfPresent(dpopJKT, forKey: .dpopJKT)
        try container.encode(expiresAt, forKey: .expiresAt)
        try container.encodeIfPresent(invitation, forKey: .invitation)
        try container.encodeIfPresent(claims, forKey: .claims)
    }
}
