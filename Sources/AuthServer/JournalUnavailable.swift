import AuthCore
import Hummingbird
import Logging

/// What a browser-facing route answers when the journal cannot serve it — a read or a commit failed:
/// 503 and the error page, with nothing issued. Handlers throw it (``AuthorizationServer/journaled(_:_:)``)
/// rather than each building the page; routes whose clients expect something else (a redirect to the
/// client with an error, a JSON error) answer for themselves.
struct JournalUnavailable: HTTPResponseError {
    /// What the handler was doing, for the log ("reading the session", "recording a failed login").
    let doing: String
    /// What the journal or its store reported.
    let cause: any Error

    var status: HTTPResponse.Status { .serviceUnavailable }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        AuthorizationServer.unavailablePage()
    }
}

extension AuthorizationServer {
    /// Runs `body`, which reads or records through the journal; if it fails, logs why and throws
    /// ``JournalUnavailable`` (the 503 error page).
    @discardableResult
    func journaled<R>(_ doing: String, _ body: () async throws -> R) async throws(JournalUnavailable) -> R {
        do {
            return try await body()
        } catch {
            logger.error("journal unavailable", metadata: ["doing": "\(doing)", "error": "\(error)"])
            throw JournalUnavailable(doing: doing, cause: error)
        }
    }
}
