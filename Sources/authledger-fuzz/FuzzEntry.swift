import FuzzTargets
import Foundation

#if AUTHLEDGER_FUZZING
// Built by `tools/fuzz` with `-sanitize=fuzzer,address -parse-as-library -D AUTHLEDGER_FUZZING`: libFuzzer's
// driver calls `fuzzOneInput` with every input it makes. The target is named by AUTHLEDGER_FUZZ_TARGET, so
// that one sanitized build serves every target.

/// The target this process fuzzes, read once.
let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["AUTHLEDGER_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("authledger-fuzz: set AUTHLEDGER_FUZZ_TARGET to one of \(names)\n".utf8))
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selectedTarget.run(size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// libFuzzer's driver (`FuzzerDriver.cpp`): parses libFuzzer's flags and runs the fuzzing loop.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The executable's entry point. SwiftPM links an executable target's `main` to `<module>_main`; with
/// `-parse-as-library` there is no such function unless it is written, so here it is: it hands over to
/// libFuzzer's driver, as libFuzzer's own `main` would.
@_cdecl("authledger_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in fuzzOneInput(data, size) }
}
#else
/// Without the fuzzer: runs a target once over each file given (a crash reproduced, or a corpus replayed).
///
///     authledger-fuzz TARGET FILE|DIR...
@main
struct FuzzReplay {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
            FileHandle.standardError.write(Data("usage: authledger-fuzz \(names) FILE|DIR...\n".utf8))
            exit(2)
        }
        var count = 0
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            let files =
                isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 } : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                target.run(Array(data))
                count += 1
            }
        }
        print("\(name): \(count) inputs, no crash")
    }
}
#endif
