import Foundation

/// `vantage server` in its own process; stopped (SIGTERM, then SIGKILL) by `stop()` or when dropped.
// Unchecked: the process and file are only touched by the test that owns this object.
final class ServerProcess: @unchecked Sendable {
    let name: String
    private let process: Process
    private let outputFile: URL

    /// The built binary: `VANTAGE_BINARY`, else beside the test bundle (the same build folder: `.build/debug`,
    /// `.build-x/debug`), else `.build/debug/vantage`.
    /// A `vantage server` on free ports with its data in `folder/data`, logging at trace level (so that a test can
    /// check what it never logs), once it listens: its URL without the final `/` and the first-start admin token.
    static func tracing(in folder: URL, name: String) async throws -> (
        server: ServerProcess, url: String, token: String
    ) {
        let server = try ServerProcess(
            try binary(),
            [
                "server", "--listen", "127.0.0.1:0", "--device-listen", "127.0.0.1:0", "--data",
                folder.appending(path: "data").path, "--log-level", "trace",
            ], name: name)
        do {
            let url = String(try await server.waitUntilListening().absoluteString.dropLast())
            guard let token = server.adminToken else { throw APITestError("no first-start token:\n\(server.output)") }
            return (server, url, token)
        } catch {
            server.stop()
            throw error
        }
    }

    static func binary() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["VANTAGE_BINARY"], !path.isEmpty {
            return URL(filePath: path)
        }
        var candidates: [URL] = []
        for start in [URL(filePath: CommandLine.arguments[0]), Bundle.main.bundleURL, Bundle.main.executableURL]
            .compactMap({ $0?.resolvingSymlinksInPath() })
        {
            var folder = start.deletingLastPathComponent()
            // Up from …/debug/vantagePackageTests.xctest[/Contents/MacOS/…] to …/debug.
            for _ in 0..<4 {
                candidates.append(folder.appending(path: "vantage"))
                folder = folder.deletingLastPathComponent()
            }
        }
        candidates.append(SourceTree.root.appending(path: ".build/debug/vantage"))
        let manager = FileManager.default
        guard
            let binary = candidates.first(where: {
                var isDirectory: ObjCBool = false
                return manager.fileExists(atPath: $0.path, isDirectory: &isDirectory) && !isDirectory.boolValue
                    && manager.isExecutableFile(atPath: $0.path)
            })
        else {
            throw APITestError("no vantage binary beside the tests: build it (swift build --build-tests builds it too)")
        }
        return binary
    }

    /// Starts `binary` with `arguments`; `environment` entries are added to the inherited environment.
    init(_ binary: URL, _ arguments: [String], name: String, environment: [String: String] = [:]) throws {
        self.name = name
        outputFile = FileManager.default.temporaryDirectory.appending(path: "vantage-server-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        let handle = try FileHandle(forWritingTo: outputFile)
        process = Process()
        process.executableURL = binary
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        try? handle.close()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: outputFile)
    }

    var isRunning: Bool { process.isRunning }
    var processIdentifier: Int32 { process.processIdentifier }

    /// Waits until it exits by itself (e.g. killed by a fault-injection hook) and answers its status.
    func waitForExit(timeout: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                throw APITestError("\(name) did not exit within \(timeout):\n\(output.suffix(3000))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return process.terminationStatus
    }

    /// Everything it printed (stdout and stderr).
    var output: String { String(decoding: (try? Data(contentsOf: outputFile)) ?? Data(), as: UTF8.self) }

    /// The token printed at first start, if this process made it.
    var adminToken: String? {
        let lines = output.split(separator: "\n")
        guard let index = lines.firstIndex(where: { $0.hasPrefix("First start:") }), index + 1 < lines.count else {
            return nil
        }
        let token = lines[index + 1].trimmingCharacters(in: .whitespaces)
        return token.hasPrefix("vt_") ? token : nil
    }

    /// Waits for `vantage server: http://HOST:PORT/ …` and returns that URL.
    func waitUntilListening(timeout: Duration = .seconds(60)) async throws -> URL {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let match = output.firstMatch(of: /vantage server: (http:\/\/[0-9.]+:[0-9]+\/)/),
                let url = URL(string: String(match.1))
            {
                return url
            }
            guard process.isRunning else {
                throw APITestError("server \(name) exited with status \(process.terminationStatus):\n\(output)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw APITestError("server \(name) did not start listening within \(timeout):\n\(output)")
    }

    /// The device endpoint it printed (`device endpoint: https://HOST:PORT/ …`), once it listens.
    func deviceEndpoint(timeout: Duration = .seconds(60)) async throws -> URL {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let match = output.firstMatch(of: /device endpoint: (https:\/\/[0-9.]+:[0-9]+)\//),
                let url = URL(string: String(match.1))
            {
                return url
            }
            guard process.isRunning else {
                throw APITestError("server \(name) exited with status \(process.terminationStatus):\n\(output)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw APITestError("server \(name) printed no device endpoint within \(timeout):\n\(output)")
    }

    /// SIGTERM, and SIGKILL if it has not exited within five seconds.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on: bound, then closed.
func closedPort() throws -> Int {
    #if canImport(Glibc)
        let stream = Int32(SOCK_STREAM.rawValue)
    #else
        let stream = SOCK_STREAM
    #endif
    let socket = socket(AF_INET, stream, 0)
    guard socket >= 0 else { throw APITestError("socket() failed") }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) }
    }
    guard bound == 0 else { throw APITestError("bind() failed") }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
    }
    guard named == 0 else { throw APITestError("getsockname() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}
