import HTTPTypes
import Hummingbird
import PageMarkup

/// Refuses requests with oversized header fields with `431 Request Header Fields Too Large` (RFC 6585 §5)
/// before any route runs, so nothing of them is recorded.
///
/// NIO's parser accepts up to 80 KiB of headers; no client of an authorization server needs more than a few:
/// a browser's cookies for this origin are two short values, a User-Agent is a few hundred bytes.
struct HeaderLimitsMiddleware: RouterMiddleware {
    typealias Context = AuthRequestContext

    /// The longest single header field value accepted.
    static let maximumFieldBytes = 8 * 1024
    /// The most bytes of all header fields together (names and values).
    static let maximumTotalBytes = 16 * 1024

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var total = 0
        for field in request.headers {
            let valueBytes = field.value.utf8.count
            total += field.name.rawName.utf8.count + valueBytes
            if valueBytes > Self.maximumFieldBytes || total > Self.maximumTotalBytes {
                var headers = HTTPFields()
                headers[.contentType] = "text/html; charset=utf-8"
                let page = Pages.error(
                    "request_header_fields_too_large",
                    description: "A request header is too large (at most \(Self.maximumFieldBytes) bytes each, \(Self.maximumTotalBytes) in all).")
                return Response(status: .init(code: 431, reasonPhrase: "Request Header Fields Too Large"), headers: headers, body: .init(byteBuffer: .init(string: page)))
            }
        }
        return try await next(request, context)
    }
}
