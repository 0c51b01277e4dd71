// vantage-fuzz: runs one of Vantage's fuzz targets (Sources/VantageFuzz).
//
//     vantage-fuzz TARGET [libFuzzer options] [CORPUS_DIR…]   fuzz TARGET (`make fuzz` builds this with libFuzzer)
//     vantage-fuzz --list                                      the targets
//     vantage-fuzz --write-seeds DIR                           writes the built-in seeds to DIR/<target>/
//
// Built by `make fuzz` (with -D FUZZING, AddressSanitizer and coverage instrumentation), TARGET's arguments go to
// libFuzzer (`-max_total_time=60`, `-runs=N`, corpus folders, `-help=1` …); `-dict` and `-max_len` default to the
// target's own. Built without FUZZING (a plain `swift build`), the same command runs the seeded random mutator
// instead: every corpus file, then mutations until `-runs` or `-max_total_time` (defaults 10,000 and 10 s).
// Either way a finding ends with exit status 1 and the input saved as `<-artifact_prefix>finding-<n>`.

import Foundation
import VantageFuzz

func usage() -> Never {
    var text = "usage: vantage-fuzz TARGET [options] [CORPUS_DIR…] | --list | --write-seeds DIR\ntargets:\n"
    for name in FuzzTargets.names {
        text += "  \(name.padding(toLength: 11, withPad: " ", startingAt: 0)) \(FuzzTargets.summaries[name]!)\n"
    }
    FileHandle.standardError.write(Data(text.utf8))
    exit(2)
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else { usage() }

switch arguments[1] {
case "--list":
    for name in FuzzTargets.names { print(name) }
    exit(0)
case "--write-seeds":
    guard arguments.count == 3 else { usage() }
    let root = URL(fileURLWithPath: arguments[2], isDirectory: true)
    for name in FuzzTargets.names {
        let folder = root.appendingPathComponent(name, isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (file, bytes) in FuzzSeeds.seeds(for: name) {
            try Data(bytes).write(to: folder.appendingPathComponent(file))
        }
    }
    exit(0)
case "-h", "--help", "help":
    usage()
default:
    break
}

// libFuzzer's -fork and -jobs modes start this program again with the options only: the target's name travels in
// the environment.
let targetVariable = "VANTAGE_FUZZ_TARGET"
let inherited = ProcessInfo.processInfo.environment[targetVariable]
let targetName = FuzzTargets.names.contains(arguments[1]) ? arguments[1] : inherited ?? arguments[1]
guard let made = try FuzzTargets.make(targetName) else {
    FileHandle.standardError.write(Data("vantage-fuzz: no target called \(targetName)\n".utf8))
    usage()
}
setenv(targetVariable, targetName, 1)
let options = Array(arguments.dropFirst(targetName == arguments[1] ? 2 : 1))

/// The value of a libFuzzer-style `-name=value` option, if given.
func option(_ name: String) -> String? {
    options.last { $0.hasPrefix("-\(name)=") }.map { String($0.dropFirst(name.count + 2)) }
}

#if FUZZING
    // libFuzzer's entry point when the program keeps its own `main` (SwiftPM links executables with one).
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    // The target libFuzzer calls: set once before the driver starts, then used from libFuzzer's one thread.
    nonisolated(unsafe) let target: any FuzzTarget = made

    let callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt = { data, size in
        let input = size == 0 ? [] : Array(UnsafeBufferPointer(start: data!, count: size))
        do {
            try target.run(input)
        } catch {
            // A broken promise is a crash for libFuzzer: it saves the input and prints how to replay it.
            FileHandle.standardError.write(Data("vantage-fuzz: finding: \(error)\n".utf8))
            abort()
        }
        return 0
    }

    var driverArguments = [arguments[0]] + options
    if option("dict") == nil {
        // The target's dictionary, in libFuzzer's format: one quoted token a line, bytes as \xNN (one file a
        // target, rewritten each run: fork and jobs modes read it again).
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vantage-fuzz-\(targetName).dict")
        let lines = made.dictionary.map { token in
            "\""
                + token.map { byte in
                    (0x20..<0x7F).contains(byte) && byte != 0x22 && byte != 0x5C
                        ? String(UnicodeScalar(byte)) : String(format: "\\x%02X", byte)
                }.joined() + "\""
        }
        try lines.joined(separator: "\n").write(to: path, atomically: true, encoding: .utf8)
        driverArguments.append("-dict=\(path.path)")
    }
    if option("max_len") == nil { driverArguments.append("-max_len=\(made.maxInputLength)") }

    var argc = CInt(driverArguments.count)
    let cStrings = driverArguments.map { strdup($0) } + [nil]
    let argvBuffer = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: cStrings.count)
    argvBuffer.initialize(from: cStrings, count: cStrings.count)
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argvBuffer
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
#else
    // No libFuzzer in this build: the seeded random mutator over the corpus given.
    var corpus: [[UInt8]] = []
    for path in options where !path.hasPrefix("-") {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            FileHandle.standardError.write(Data("vantage-fuzz: \(path) does not exist\n".utf8))
            exit(2)
        }
        if isDirectory.boolValue {
            corpus += try FuzzPass.corpus(in: URL(fileURLWithPath: path, isDirectory: true))
        } else {
            corpus.append([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        }
    }
    if corpus.isEmpty { corpus = Array(FuzzSeeds.seeds(for: targetName).values) }
    let runs = option("runs").flatMap { Int($0) } ?? 10_000
    let seconds = option("max_total_time").flatMap { Double($0) } ?? 10
    let seed = option("seed").flatMap { UInt64($0) } ?? UInt64(Date().timeIntervalSince1970)
    print("vantage-fuzz \(targetName): seeded random mutator (built without libFuzzer), seed \(seed)")
    let summary = FuzzPass.run(made, corpus: corpus, mutations: runs, seconds: seconds, seed: seed)
    let rate = Double(summary.corpusInputs + summary.mutations) / max(summary.seconds, 0.001)
    print(
        "vantage-fuzz \(targetName): \(summary.corpusInputs) corpus inputs, \(summary.mutations) mutations in "
            + String(format: "%.1f s (%.0f exec/s), ", summary.seconds, rate) + "\(summary.findings.count) findings")
    let prefix = option("artifact_prefix") ?? "./"
    for (index, found) in summary.findings.enumerated() {
        let file = "\(prefix)finding-\(index + 1)"
        try Data(found.input).write(to: URL(fileURLWithPath: file))
        print("finding: \(found.finding) (input saved as \(file))")
    }
    exit(summary.findings.isEmpty ? 0 : 1)
#endif
