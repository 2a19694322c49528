import LedgerJournal
import LedgerPostgres
import Testing

@Suite("PostgreSQL store URLs: one host or a list for failover, as libpq spells them")
struct PostgresAddressTests {
    @Test("one host: its port or 5432, any server accepted, the description unchanged")
    func oneHost() throws {
        let address = try PostgresAddress(url: "postgres://app@db.internal:6432/authledger", environment: [:])
        #expect(address.endpoints == [.init(host: "db.internal", port: 6432)])
        #expect(address.sessionTarget == .any)
        #expect(address.description == "postgres://app@db.internal:6432/authledger")
        let defaulted = try PostgresAddress(url: "postgres://app@db.internal/authledger", environment: [:])
        #expect(defaulted.port == 5432)
    }

    @Test("a host list: every server in order, IPv6 in brackets, ports defaulted, read-write by default")
    func hostList() throws {
        let address = try PostgresAddress(
            url: "postgres://app:secret@10.0.0.1:5433,[fd00::2]:5434,db3/authledger?sslmode=verify-full&sslrootcert=/etc/ca.pem",
            environment: [:])
        #expect(address.endpoints == [.init(host: "10.0.0.1", port: 5433), .init(host: "fd00::2", port: 5434), .init(host: "db3", port: 5432)])
        #expect(address.user == "app" && address.password == "secret" && address.database == "authledger")
        #expect(address.tlsMode == .verifyFull && address.rootCertificates == "/etc/ca.pem")
        #expect(address.sessionTarget == .readWrite)
        #expect(address.description == "postgres://app@10.0.0.1:5433,[fd00::2]:5434,db3:5432/authledger?sslmode=verify-full")
        #expect(!address.description.contains("secret"))
    }

    @Test("target_session_attrs: the values it takes, and a non-default one shown")
    func sessionTarget() throws {
        let primary = try PostgresAddress(url: "postgres://u@a:1,b:2/db?target_session_attrs=primary", environment: [:])
        #expect(primary.sessionTarget == .primary)
        #expect(primary.description == "postgres://u@a:1,b:2/db?target_session_attrs=primary")
        let any = try PostgresAddress(url: "postgres://u@a:1,b:2/db?target_session_attrs=any", environment: [:])
        #expect(any.sessionTarget == .any)
        let single = try PostgresAddress(url: "postgres://u@a:1/db?target_session_attrs=read-write", environment: [:])
        #expect(single.sessionTarget == .readWrite)
        #expect(single.description.hasSuffix("?target_session_attrs=read-write"))
    }

    @Test("a bad list or target is refused with a reason, and no password in it")
    func refused() {
        for url in [
            "postgres://u:pw@a:1,,b:2/db", "postgres://u:pw@a:1,b:x/db", "postgres://u:pw@a:1,[::1/db", "postgres://u:pw@a:1,b:70000/db",
            "postgres://u:pw@a:1,b:2/db?target_session_attrs=standby",
        ] {
            do {
                _ = try PostgresAddress(url: url, environment: [:])
                Issue.record("\(url) was accepted")
            } catch {
                #expect(!"\(error)".contains("pw"), "\(error)")
                guard case .directory(_, let reason) = error else {
                    Issue.record("\(error)")
                    continue
                }
                #expect(!reason.isEmpty)
            }
        }
    }
}
