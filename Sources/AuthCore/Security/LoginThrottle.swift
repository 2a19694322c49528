import Foundation
import LedgerCore

/// Password guessing limits, modelled on Auth0's brute-force protection and suspicious-IP throttling:
/// after `limit` failed logins for one account **from one address** within `window`, that pair is
/// refused; one address is refused after `addressLimit` failures across accounts; one account, from every
/// address together, only after `accountLimit`. So a guesser at one address cannot lock the account's
/// owner out from another, and a shared address (an office, a carrier NAT) is not refused for one user's
/// mistakes.
///
/// Pure: the failure times come from the `login_failures` projection, the time is an input.
public struct LoginThrottle: Sendable, Equatable {
    /// Failures per account and address.
    public var limit: Int
    /// Failures per address, across accounts.
    public var addressLimit: Int
    /// Failures per account from all addresses together (a guess spread over many addresses).
    public var accountLimit: Int
    public var windowSeconds: Int

    /// Limits above ``kept`` are lowered to it: no more failures are kept per key.
    public init(limit: Int = 10, addressLimit: Int = 100, accountLimit: Int = 100, windowSeconds: Int = 900) {
        self.limit = min(limit, Self.kept)
        self.addressLimit = min(addressLimit, Self.kept)
        self.accountLimit = min(accountLimit, Self.kept)
        self.windowSeconds = windowSeconds
    }

    /// The failures kept per key (the highest limit there can be).
    public static let kept = 100

    /// A projection key that counts failures, and how many it allows.
    public struct Key: Sendable, Equatable {
        /// The key in the `login_failures` projection.
        public var name: String
        /// The failures within the window at which attempts are refused.
        public var limit: Int

        public init(name: String, limit: Int) {
            self.name = name
            self.limit = limit
        }
    }

    /// The projection keys an attempt's failure is counted under: the account (the user it named, or a
    /// hash of the name as recorded, case-insensitively, so any alias of one account shares its budget and
    /// keys stay short), the account from this address, and the address. The check and the projection
    /// must pass the same `username`: the one the `auth.login.failed` event records.
    public static func keyNames(userID: String?, username: String, address: String?) -> [String] {
        keyNames(userID: userID, username: username, network: address.map(Self.network))
    }

    /// ``keyNames(userID:username:address:)`` for an address already reduced to what it counts as: its
    /// ``network(of:)``, or a keyed pseudonym of that (what sealed events record, `client_network`).
    public static func keyNames(userID: String?, username: String, network: String?) -> [String] {
        let account = userID ?? "n:" + SHA256Digest.hash(Array(username.lowercased().utf8)).hex
        guard let network else { return ["u\u{1F}" + account] }
        return ["u\u{1F}" + account, "p\u{1F}" + account + "\u{1F}" + network, "i\u{1F}" + network]
    }

    /// What one address counts as: an IPv4 address itself (also when written IPv4-mapped, `::ffff:a.b.c.d`);
    /// for IPv6 its /64, which one host can rotate through at will; anything else, its first 64 bytes.
    public static func network(of address: String) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        guard inet_pton(AF_INET6, address, &bytes) == 1 else { return String(address.prefix(64)) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return bytes[12...].map(String.init).joined(separator: ".")
        }
        let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }

    /// ``keyNames(userID:username:address:)`` with the limit of each. Without an address, the account
    /// alone has the per-pair limit.
    public func keys(userID: String?, username: String, address: String?) -> [Key] {
        keys(userID: userID, username: username, network: address.map(Self.network))
    }

    /// ``keys(userID:username:address:)`` for an address already reduced to what it counts as.
    public func keys(userID: String?, username: String, network: String?) -> [Key] {
        let names = Self.keyNames(userID: userID, username: username, network: network)
        guard names.count == 3 else { return [Key(name: names[0], limit: accountLimit)] }
        return [Key(name: names[0], limit: accountLimit), Key(name: names[1], limit: limit), Key(name: names[2], limit: addressLimit)]
    }

    /// `recent` with `time` added, oldest dropped beyond ``kept``.
    public static func remember(_ time: LedgerTimestamp, in recent: [LedgerTimestamp]) -> [LedgerTimestamp] {
        Array((recent + [time]).suffix(kept))
    }

    /// Whether attempts must be refused now, given the recorded failures of each key and, for each key,
    /// the attempts still in progress (checked but not yet recorded), which count as failures.
    public func isThrottled(_ keys: [Key], failures: [[LedgerTimestamp]], pending: [Int] = [], now: LedgerTimestamp) -> Bool {
        let since = now.adding(seconds: -windowSeconds)
        return keys.indices.contains { index in
            let recorded = index < failures.count ? failures[index].filter { $0 > since }.count : 0
            return recorded + (index < pending.count ? pending[index] : 0) >= keys[index].limit
        }
    }
}
