import AsyncHTTPClient
import AuthCore
import AuthJournal
import AuthTokens
import Foundation
import JWTKit
import LedgerCore
import NIOCore
import NIOHTTP1

/// The claims of a logout token (OIDC Back-Channel Logout 1.0 §2.4).
struct LogoutTokenClaims: JWTPayload {
    var iss: String
    var aud: String
    var iat: Int64
    var exp: Int64
    var jti: String
    var sub: String
    var events: [String: [String: String]]

    static let event = "http://schemas.openid.net/event/backchannel-logout"

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

extension AuthorizationServer {
    /// Tells each client that took part in `session` that it ended: a logout token signed with the server's
    /// RS256 key, POSTed to the client's `backchannel_logout_uri` (async-http-client), tried
    /// ``AuthServerSettings/backchannelAttempts`` times with a doubling wait; the outcome for each client is
    /// recorded (`auth.logout.backchannel`).
    func notifyBackchannel(session: SessionSnapshot, clients: [String]) async {
        await withTaskGroup(of: Void.self) { group in
            for clientID in clients {
                guard let uri = ledger.configuration.clients[clientID]?.backchannelLogoutURI else { continue }
                group.addTask { await self.deliverLogoutToken(to: clientID, at: uri, session: session) }
            }
        }
    }

    private func deliverLogoutToken(to clientID: String, at uri: String, session: SessionSnapshot) async {
        let now = settings.clock().secondsSinceEpoch
        let jti = TokenIdentifier.generate()
        let claims = LogoutTokenClaims(
            iss: issuer, aud: clientID, iat: now, exp: now + 120, jti: jti, sub: session.userID, events: [LogoutTokenClaims.event: [:]])
        var attempts = 0
        var status: Int?
        var failure: String?
        var delivered = false
        do {
            let token = try await tokenKeys.sign(claims, algorithm: .rs256, type: "logout+jwt")
            var delay = settings.backchannelRetryDelay
            while attempts < settings.backchannelAttempts && !delivered {
                if attempts > 0 {
                    try? await Task.sleep(for: delay)
                    delay *= 2
                }
                attempts += 1
                do {
                    var request = HTTPClientRequest(url: uri)
                    request.method = .POST
                    request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                    request.body = .bytes(ByteBuffer(string: FormEncoding.encode([("logout_token", token)])))
                    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                    status = Int(response.status.code)
                    // §2.8: 200 (or 204) is success; anything else, try again.
                    delivered = response.status == .ok || response.status == .noContent
                    failure = delivered ? nil : "HTTP \(response.status.code)"
                } catch {
                    status = nil
                    failure = RecordedText.bounded("\(error)", bytes: 200)
                }
            }
        } catch {
            failure = "the logout token could not be signed"
        }
        let outcome = BackchannelLogoutDelivery(
            clientID: clientID, userID: session.userID, sessionHash: session.sessionHash, logoutTokenID: jti, delivered: delivered,
            attempts: attempts, status: status, error: failure)
        do {
            try await record { try $0.append(.backchannelLogout(outcome)) }
        } catch {
            logger.error("recording a back-channel logout outcome failed", metadata: ["client_id": "\(clientID)", "error": "\(error)"])
        }
        metrics.backchannelLogout(delivered: delivered)
        if !delivered {
            logger.warning("back-channel logout not delivered", metadata: ["client_id": "\(clientID)", "attempts": "\(attempts)"])
        }
    }
}
