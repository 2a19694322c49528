import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Sends one batch to the receiver; returns when the receiver acknowledged it (2xx), throws otherwise.
public protocol LogStreamTransport: Sendable {
    func send(_ batch: LogStreamBatch) async throws(LogStreamError)
}

/// POSTs each batch over HTTP(S) with async-http-client: the stream's URL and headers, the batch's
/// content type, and a `X-AuthLedger-Events: FIRST-LAST` header naming the sequence numbers it carries.
public struct HTTPLogStreamTransport: LogStreamTransport {
    public let url: String
    public let headers: [(name: String, value: String)]
    public let timeout: Duration
    private let client: HTTPClient

    public init(configuration: LogStreamConfiguration, client: HTTPClient = .shared) throws(LogStreamError) {
        guard let parsed = URL(string: configuration.url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
            parsed.host?.isEmpty == false
        else { throw .badURL(configuration.url) }
        url = configuration.url
        headers = configuration.headers
        timeout = configuration.requestTimeout
        self.client = client
    }

    public func send(_ batch: LogStreamBatch) async throws(LogStreamError) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.replaceOrAdd(name: "Content-Type", value: batch.contentType)
        request.headers.replaceOrAdd(name: "X-AuthLedger-Events", value: "\(batch.first)-\(batch.last)")
        request.body = .bytes(ByteBuffer(bytes: batch.body))
        let status: UInt
        do {
            let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
            // The status is the receiver's answer; its body is not read (a receiver that stalls there must
            // not hold the stream), so the connection is not reused.
            status = try await client.execute(request, timeout: .nanoseconds(nanoseconds)).status.code
        } catch {
            throw .unreachable("\(error)")
        }
        guard (200..<300).contains(status) else { throw .refused(status: Int(status)) }
    }
}
