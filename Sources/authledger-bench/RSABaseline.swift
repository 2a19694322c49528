import ArgumentParser
import Crypto
import Foundation
import LedgerCommandSupport
import _CryptoExtras

/// `authledger-bench rsa-baseline`: raw RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second with
/// swift-crypto's `_RSA.Signing.PrivateKey` — the primitive behind the server's RS256 tokens (jwt-kit's
/// `Insecure.RSA.PrivateKey` is backed by it, see `TokenKeyRing`) — on all cores and on one, as the
/// baseline of the RS256 token exchange (`tools/http/bench.py`).
struct RSABaseline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rsa-baseline",
        abstract: "Raw RSA-2048 PKCS#1 v1.5 SHA-256 signing rate (swift-crypto _RSA) on all cores and on one.")

    @Option(help: "Seconds per measurement.") var seconds: Double = 3
    @Option(help: "Output format (jsonl: one JSON object).") var format: OutputFormat = .jsonl

    func run() async throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let all = try Baselines.rsaSigningRate(threads: cores, seconds: seconds)
        let one = try Baselines.rsaSigningRate(threads: 1, seconds: seconds)
        switch format {
        case .jsonl:
            printJSONLine([
                "measure": "rsa2048_pkcs1v15_sha256_sign", "cores": cores, "seconds": seconds,
                "signatures_per_second_all_cores": all, "signatures_per_second_one_core": one,
            ])
        case .text:
            print("RSA-2048 PKCS#1 v1.5 SHA-256 signing (swift-crypto _RSA): \(Int(all))/s on \(cores) cores, \(Int(one))/s on 1 core")
        }
    }
}

extension Baselines {
    /// RSA-2048 PKCS#1 v1.5 signatures per second over the SHA-256 digest of a JWT-sized (400-byte)
    /// signing input, on `threads` threads sharing one key, as the server's threads share its token key.
    static func rsaSigningRate(threads: Int, seconds: Double) throws -> Double {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        return try rate(threads: threads, seconds: seconds, batch: 8) { thread in
            var message = [UInt8](repeating: UInt8(truncatingIfNeeded: thread), count: 400)
            return {
                message[0] &+= 1
                _ = try key.signature(for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
            }
        }
    }
}
