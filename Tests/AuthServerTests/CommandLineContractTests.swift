import Foundation
import Testing

@Suite("The command-line contract: usage errors exit 2 with a one-line reason, in both executables")
struct CommandLineContractTests {
    @Test(
        "swift-argument-parser's own usage errors: an unknown option or subcommand, a missing or unparsable argument",
        arguments: [
            ("authledger", ["--bogus"]), ("authledger", ["no-such-command"]), ("authledger", ["serve", "--port", "eighty"]),
            ("authledger", ["journal", "archive", "--out"]), ("authledger-replay", ["--bogus"]), ("authledger-replay", ["no-such-command"]),
            ("authledger-replay", ["verify", "--no-such-option"]), ("authledger-replay", ["explain"]), ("authledger-replay", ["explain", "x"]),
        ])
    func usageErrors(product: String, arguments: [String]) throws {
        let (status, output) = try RebuildCommandTests.run(product, arguments, stderr: true)
        #expect(status == 2, "\(product) \(arguments): \(output)")
        let lines = output.split(separator: "\n")
        #expect(lines.count == 1, "one line: \(output)")
        #expect(output.hasPrefix("\(product): "))
    }

    @Test("--help still prints the usage and exits 0")
    func help() throws {
        for product in ["authledger", "authledger-replay"] {
            let (status, output) = try RebuildCommandTests.run(product, ["--help"])
            #expect(status == 0)
            #expect(output.contains("USAGE"))
        }
    }
}
