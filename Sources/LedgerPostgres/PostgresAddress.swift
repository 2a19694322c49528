import Foundation
import LedgerJournal

/// Where a PostgreSQL journal is: a `postgres://` (or `postgresql://`) URL, as libpq spells it.
///
/// `postgres://USER:PASSWORD@HOST:PORT/DATABASE`, or with `?host=/run/postgresql` for the server's Unix
/// socket in that directory. The password may also come from `PGPASSWORD`, so that it stays out of
/// process listings. One database holds one journal.
///
/// TLS as libpq's `sslmode` says (`?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem`): `disable`,
/// `prefer` (the default: TLS when the server offers it, unverified), `require` (TLS, unverified unless
/// `sslrootcert` is given),
/// `verify-ca` (the server's certificate chains to `sslrootcert`, or the system's roots), `verify-full`
/// (that, and it names the host). Between machines, use `verify-full`.
///
/// Several hosts, for failover, as libpq lists them: `postgres://USER@HOST1:PORT1,HOST2:PORT2/DATABASE`.
/// A new connection tries them in turn, from the one that last worked, and keeps the first that
/// `target_session_attrs` accepts: `read-write` (the default with several hosts: a server that takes
/// writes, so a node finds the promoted replica after a failover), `primary` (not in recovery) or `any`
/// (the default with one host: a read-only standby serves `authledger-replay`).
public struct PostgresAddress: Sendable, Equatable, CustomStringConvertible {
    /// How the connection is encrypted and the server authenticated (libpq's `sslmode`).
    public enum TLSMode: String, Sendable, Equatable, CaseIterable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    /// One server of the list: a host name or address and a TCP port.
    public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// Which server of the list a connection may stay with (libpq's `target_session_attrs`).
    public enum SessionTarget: String, Sendable, Equatable, CaseIterable {
        /// The first that answers.
        case any
        /// One whose sessions may write (`transaction_read_only` is off).
        case readWrite = "read-write"
        /// One that is not a standby (`pg_is_in_recovery()` is false).
        case primary
    }

    /// The servers, in the order they are tried; never empty.
    public var endpoints: [Endpoint]
    /// Which server a connection may stay with.
    public var sessionTarget: SessionTarget

    /// The first server's host.
    public var host: String {
        get { endpoints[0].host }
        set { endpoints[0].host = newValue }
    }
    /// The first server's port.
    public var port: Int {
        get { endpoints[0].port }
        set { endpoints[0].port = newValue }
    }
    /// The directory of the server's Unix socket (`.s.PGSQL.<port>` in it), when connecting through one.
    public var socketDirectory: String?
    public var user: String
    public var password: String?
    public var database: String
    /// TLS (`sslmode`); over a Unix socket there is none.
    public var tlsMode: TLSMode
    /// The certificates to verify the server's with (`sslrootcert`, PEM); the system's when `nil`.
    public var rootCertificates: String?

    /// Parses `url`; throws ``JournalError/directory(path:reason:)`` naming what is wrong with it.
    public init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(JournalError) {
        // URLComponents reads one host: a list is taken apart here and the first host put in its place.
        let (url, listed) = try Self.splittingHostList(url)
        guard let components = URLComponents(string: url),
            let scheme = components.scheme, scheme == "postgres" || scheme == "postgresql"
        else { throw .directory(path: Self.redacted(url), reason: "is not a postgres:// URL") }
        let socket = components.queryItems?.first { $0.name == "host" }?.value
        guard let host = components.host.flatMap({ $0.isEmpty ? nil : $0 }) ?? (socket == nil ? nil : "localhost") else {
            throw .directory(path: Self.redacted(url), reason: "names no host (postgres://USER@HOST:PORT/DATABASE)")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else {
            throw .directory(path: Self.redacted(url), reason: "names no database (postgres://USER@HOST:PORT/DATABASE)")
        }
        var endpoints = [Endpoint(host: host, port: components.port ?? 5432)]
        if let listed, socket == nil { endpoints = listed }
        self.endpoints = endpoints
        self.socketDirectory = socket
        // URLComponents decodes user, password and path already; decoding again would turn "%2540" into "@".
        self.user = components.user ?? environment["PGUSER"] ?? environment["USER"] ?? "postgres"
        self.password = components.password ?? environment["PGPASSWORD"]
        self.database = database
        let mode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? TLSMode.prefer.rawValue
        guard let tlsMode = TLSMode(rawValue: mode) else {
            throw .directory(
                path: Self.redacted(url), reason: "has sslmode=\(mode); use one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.tlsMode = socket == nil ? tlsMode : .disable
        self.rootCertificates = components.queryItems?.first { $0.name == "sslrootcert" }?.value
        let defaultTarget: SessionTarget = endpoints.count > 1 ? .readWrite : .any
        let target = components.queryItems?.first { $0.name == "target_session_attrs" }?.value ?? defaultTarget.rawValue
        guard let sessionTarget = SessionTarget(rawValue: target) else {
            throw .directory(
                path: Self.redacted(url),
                reason: "has target_session_attrs=\(target); use one of \(SessionTarget.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.sessionTarget = sessionTarget
    }

    /// `url` with a list of hosts (`HOST1:PORT1,HOST2:PORT2`, IPv6 addresses in brackets) replaced by its
    /// first, and the list; `url` itself and `nil` when it names one host.
    private static func splittingHostList(_ url: String) throws(JournalError) -> (String, [Endpoint]?) {
        guard let scheme = url.range(of: "://") else { return (url, nil) }
        let authorityEnd = url[scheme.upperBound...].firstIndex { $0 == "/" || $0 == "?" } ?? url.endIndex
        let authority = url[scheme.upperBound..<authorityEnd]
        let hostsStart = authority.lastIndex(of: "@").map { authority.index(after: $0) } ?? authority.startIndex
        let hosts = authority[hostsStart...]
        guard hosts.contains(",") else { return (url, nil) }
        var endpoints: [Endpoint] = []
        for item in hosts.split(separator: ",", omittingEmptySubsequences: false) {
            var host = Substring(item)
            var port = 5432
            if host.hasPrefix("[") {
                guard let close = host.firstIndex(of: "]") else {
                    throw .directory(path: redacted(url), reason: "has an unclosed [ in its host list")
                }
                let rest = host[host.index(after: close)...]
                host = host[host.index(after: host.startIndex)..<close]
                if !rest.isEmpty {
                    guard rest.hasPrefix(":"), let number = Int(rest.dropFirst()), (1...65535).contains(number) else {
                        throw .directory(path: redacted(url), reason: "has a bad port in its host list: \(item)")
                    }
                    port = number
                }
            } else if let colon = host.lastIndex(of: ":") {
                guard let number = Int(host[host.index(after: colon)...]), (1...65535).contains(number) else {
                    throw .directory(path: redacted(url), reason: "has a bad port in its host list: \(item)")
                }
                port = number
                host = host[..<colon]
            }
            guard !host.isEmpty else { throw .directory(path: redacted(url), reason: "has an empty host in its host list") }
            endpoints.append(Endpoint(host: String(host), port: port))
        }
        let first = endpoints[0]
        let firstHost = first.host.contains(":") ? "[\(first.host)]" : first.host
        return (String(url[..<hostsStart]) + "\(firstHost):\(first.port)" + String(url[authorityEnd...]), endpoints)
    }

    /// The URL without its password: what messages and logs may show.
    public var description: String {
        var query: [String] = []
        if let socketDirectory { query.append("host=\(socketDirectory)") } else if tlsMode != .prefer { query.append("sslmode=\(tlsMode.rawValue)") }
        if sessionTarget != (endpoints.count > 1 ? .readWrite : .any) { query.append("target_session_attrs=\(sessionTarget.rawValue)") }
        let hosts = endpoints.map(\.description).joined(separator: ",")
        return "postgres://\(user)@\(hosts)/\(database)\(query.isEmpty ? "" : "?" + query.joined(separator: "&"))"
    }

    /// Whether `text` names a PostgreSQL journal rather than a directory.
    public static func isURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// `url` without anything that may be a password: whatever stands between `://` and the last `@`
    /// (a URL that does not even parse may still carry one).
    private static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return "postgres://***" }
        if let at = url.lastIndex(of: "@"), at > scheme.upperBound {
            return String(url[..<scheme.upperBound]) + "***" + String(url[at...])
        }
        // No user part: but "user:password" without "@" reads as host and port, so hide that too.
        let rest = url[scheme.upperBound...]
        return String(url[..<scheme.upperBound]) + "***" + String(rest[(rest.firstIndex(of: "/") ?? rest.endIndex)...])
    }
}
