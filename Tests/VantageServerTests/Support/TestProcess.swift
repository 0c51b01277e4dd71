import Foundation

/// A program run to its end, with its output.
enum TestProcess {
    /// Runs `arguments` (the first is looked up on PATH) with `environment` added; its exit status and output
    /// (stdout, then stderr).
    static func run(_ arguments: [String], environment: [String: String?] = [:]) async throws -> (
        status: Int32, output: String
    ) {
        let result = try await runSeparately(arguments, environment: environment)
        return (result.status, result.stdout + result.stderr)
    }

    /// Runs `arguments` like ``run(_:environment:)``, keeping stdout and stderr apart; `environment` values of nil
    /// remove a variable, and `stdin` is its standard input (none when nil).
    static func runSeparately(
        _ arguments: [String], environment: [String: String?] = [:], stdin: String? = nil
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (name, value) in environment { merged[name] = value }
        process.environment = merged
        // Files rather than pipes, so that a long output cannot fill a pipe nobody reads yet.
        let base = FileManager.default.temporaryDirectory.appending(path: "vantage-test-\(UUID().uuidString)")
        let outputFile = base.appendingPathExtension("out")
        let errorFile = base.appendingPathExtension("err")
        let inputFile = base.appendingPathExtension("in")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: inputFile.path, contents: Data((stdin ?? "").utf8))
        defer {
            for file in [outputFile, errorFile, inputFile] { try? FileManager.default.removeItem(at: file) }
        }
        let output = try FileHandle(forWritingTo: outputFile)
        let errors = try FileHandle(forWritingTo: errorFile)
        defer {
            try? output.close()
            try? errors.close()
        }
        process.standardInput = stdin == nil ? FileHandle.nullDevice : try FileHandle(forReadingFrom: inputFile)
        process.standardOutput = output
        process.standardError = errors
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        func read(_ url: URL) -> String { String(decoding: (try? Data(contentsOf: url)) ?? Data(), as: UTF8.self) }
        return (status, read(outputFile), read(errorFile))
    }
}
