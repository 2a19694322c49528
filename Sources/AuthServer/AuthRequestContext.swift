import Hummingbird
import NIOCore

/// Per-request context: Hummingbird's core storage plus the peer's address (recorded in events).
public struct AuthRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// Forms and token requests are small; anything larger is refused with 413.
    public var maxUploadSize: Int { 64 * 1024 }

    /// The client's IP address as text.
    var clientIP: String? { remoteAddress?.ipAddress }
}
