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
public struct PostgresAddress: Sendable, Equatable, CustomStringConvertible {
    /// How the connection is encrypted and the server authenticated (libpq's `sslmode`).
    public enum TLSMode: String, Sendable, Equatable, CaseIterable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
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
        self.host = host
        self.port = components.port ?? 5432
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
    }

    /// The URL without its password: what messages and logs may show.
    public var description: String {
        let query = socketDirectory.map { "?host=\($0)" } ?? (tlsMode == .prefer ? "" : "?sslmode=\(tlsMode.rawValue)")
        return "postgres://\(user)@\(host):\(port)/\(database)\(query)"
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
