import Foundation
import Synchronization
import Testing
import VantageAPI

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// "A test starts two servers on one PostgreSQL database and shows a change made through one is visible through
/// the other": two `vantage server` processes, started together, sharing a fresh database and a data folder.
@Suite("Replicas")
struct ReplicaTests {
    @Test(
        "two servers on one PostgreSQL database see each other's changes",
        .enabled(if: PostgresTestDatabase.baseURL != nil, Comment(rawValue: PostgresTestDatabase.skipReason)))
    func twoServersShareOneDatabase() async throws {
        let binary = try ServerProcess.binary()
        try await PostgresTestDatabase.withFresh { url in
            let data = FileManager.default.temporaryDirectory.appending(path: "vantage-replicas-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: data) }
            let arguments = ["server", "--listen", "127.0.0.1:0", "--data", data.path, "--database-url", url]
            // Started together: both apply migrations at once.
            let first = try ServerProcess(binary, arguments, name: "A")
            defer { first.stop() }
            let second = try ServerProcess(binary, arguments, name: "B")
            defer { second.stop() }
            let a = try await first.waitUntilListening()
            let b = try await second.waitUntilListening()
            #expect(a != b)

            // The first-start admin token is in the shared database, so it works on both.
            let tokens = [first, second].compactMap(\.adminToken)
            let token = try #require(tokens.first, "neither server printed a first-start admin token")
            #expect(tokens.count == 1, "both servers made a first-start admin token")

            let created = try await HTTP.send(
                "POST", a.appending(path: "api/v1/devices"), token: token, json: #"{"name": "replica-edge"}"#)
            #expect(created.status == 201, "\(created.text)")
            let device = try APIJSON.decoder().decode(DeviceCreated.self, from: created.body).device

            let seen = try await HTTP.send("GET", b.appending(path: "api/v1/devices/\(device.id)"), token: token)
            #expect(seen.status == 200, "server B does not see the device made through A: \(seen.text)")
            #expect(try APIJSON.decoder().decode(Device.self, from: seen.body).name == "replica-edge")

            let renamed = try await HTTP.send(
                "PATCH", b.appending(path: "api/v1/devices/\(device.id)"), token: token,
                json: #"{"name": "replica-edge-renamed"}"#)
            #expect(renamed.status == 200, "\(renamed.text)")
            let back = try await HTTP.send("GET", a.appending(path: "api/v1/devices/\(device.id)"), token: token)
            #expect(try APIJSON.decoder().decode(Device.self, from: back.body).name == "replica-edge-renamed")

            // Both audited their change in the one log.
            let audit = try await HTTP.send("GET", a.appending(path: "api/v1/audit"), token: token)
            let actions = try APIJSON.decoder().decode(Page<AuditEntry>.self, from: audit.body).items.map(\.action)
            #expect(actions.sorted() == ["createDevice", "updateDevice"], "\(actions)")

            // The concurrent start applied each migration once, and neither server failed.
            let versions = try await PostgresTestDatabase.psql(
                url, "SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations")
            let counts = versions.split(separator: "|")
            #expect(counts.count == 2 && counts[0] == counts[1] && counts[0] != "0", "schema_migrations: \(versions)")
            for server in [first, second] {
                #expect(server.isRunning, "server \(server.name) stopped:\n\(server.output)")
                #expect(
                    !server.output.lowercased().contains("error"), "server \(server.name) reported:\n\(server.output)")
            }
        }
    }
}

/// `vantage server` in its own process; stopped (SIGTERM, then SIGKILL) by `stop()` or when dropped.
// Unchecked: the process and file are only touched by the test that owns this object.
final class ServerProcess: @unchecked Sendable {
    let name: String
    private let process: Process
    private let outputFile: URL

    /// The `vantage` binary built beside this test bundle (`.build/debug/vantage`).
    static func binary() throws -> URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent(),
            Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
        ].map { $0.appending(path: "vantage") }
        guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw APITestError(
                "no vantage binary beside the tests (looked at \(candidates.map(\.path))): build it with swift build")
        }
        return binary
    }

    init(_ binary: URL, _ arguments: [String], name: String) throws {
        self.name = name
        outputFile = FileManager.default.temporaryDirectory.appending(path: "vantage-server-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        let handle = try FileHandle(forWritingTo: outputFile)
        process = Process()
        process.executableURL = binary
        process.arguments = arguments
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

/// Plain HTTP calls to a running server.
enum HTTP {
    struct Answer {
        let status: Int
        let body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    static func send(_ method: String, _ url: URL, token: String, json: String? = nil) async throws -> Answer {
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let json {
            request.httpBody = Data(json.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (body, response) = try await URLSession.shared.data(for: request)
        return Answer(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: body)
    }
}
