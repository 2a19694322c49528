import AuthCore
import HTTPTypes
import Hummingbird
import Tracing

/// A span per request (`SERVER` kind, named by its route), with ``RequestTrace/traceID`` bound to the
/// span's trace for the events the request records.
///
/// A caller's `traceparent` is continued only when the TCP peer is a trusted proxy (`serve
/// --trusted-proxy`, as for `X-Forwarded-For`): the trace id is signed into the events, and a client that
/// could choose it could file its requests' events under another request's trace. Any other request
/// starts a trace of its own.
///
/// Written here rather than using Hummingbird's `TracingMiddleware`, which records the raw query string,
/// the client's address and its user agent: the query of `/authorize` may carry an `id_token_hint` or a
/// `login_hint`, the demo callback's an authorization code, and the journal keeps addresses sealed and
/// log streams send them as pseudonyms — a trace must not be where they leak in clear. This one records
/// the method, the route, the path, the query's parameter names (not their values) and the status.
struct RequestTraceMiddleware: RouterMiddleware {
    typealias Context = AuthRequestContext
    /// The peers whose `traceparent` is continued.
    let trustedProxies: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var parent = ServiceContext.current ?? .topLevel
        if let peer = context.clientIP, trustedProxies.contains(peer) {
            InstrumentationSystem.instrument.extract(request.headers, into: &parent, using: HeaderExtractor())
        }
        return try await withSpan("HTTP \(request.method.rawValue)", context: parent, ofKind: .server) { span in
            span.attributes["http.request.method"] = request.method.rawValue
            span.attributes["url.path"] = request.uri.path
            if let query = request.uri.query, !query.isEmpty {
                let names = FormEncoding.parse(query).map(\.name)
                span.attributes["authledger.query.parameters"] = Array(Set(names)).sorted().joined(separator: ",")
            }
            let traced = Self.currentTraceID()
            do {
                let response = try await RequestTrace.$traceID.withValue(traced) { try await next(request, context) }
                Self.name(span, context)
                span.attributes["http.response.status_code"] = Int(response.status.code)
                if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
                return response
            } catch {
                Self.name(span, context)
                let status = (error as? any HTTPResponseError)?.status.code ?? 500
                span.attributes["http.response.status_code"] = status
                if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
                throw error
            }
        }
    }

    /// Names the span by the route the router matched (known once it has run).
    private static func name(_ span: any Span, _ context: Context) {
        guard let route = context.endpointPath else { return }
        span.operationName = route
        span.attributes["http.route"] = route
    }

    /// The trace id of the span now current, if a tracer propagates one: read the tracer-neutral way,
    /// the span's context injected as a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`). So the
    /// events carry trace ids only with the W3C `tracecontext` propagator among `OTEL_PROPAGATORS` (the
    /// default).
    static func currentTraceID() -> String? {
        guard let context = ServiceContext.current else { return nil }
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: DictionaryInjector())
        guard let parent = headers["traceparent"] else { return nil }
        let fields = parent.split(separator: "-")
        guard fields.count == 4, RequestTrace.isTraceID(String(fields[1])) else { return nil }
        return String(fields[1])
    }
}

private struct HeaderExtractor: Extractor {
    func extract(key: String, from headers: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { headers[$0] }
    }
}

private struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}
