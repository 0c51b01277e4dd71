import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `vantage run` as a user runs it: the built binary in its own process, with its standard output (events),
/// standard error (logs, status lines, summary), exit status, live-view port and `/status` document.
final class VantageRun: @unchecked Sendable {
    // Unchecked: the process and files are only touched from the test that owns this object.
    let process = Process()
    let directory: URL
    let stdoutFile: URL
    let stderrFile: URL
    let eventsFile: URL

    /// Starts `vantage run APP ARGS…`. Events go to a file in a fresh folder; HTTP on a free port unless the
    /// arguments say otherwise (`http: nil` leaves the live view at its default port). `stateDirectory: nil` leaves
    /// the state at its default; `environment` is added to the runtime's.
    init(
        app: URL = Repo.peopleCounter, _ arguments: [String], http: Bool? = true,
        stateDirectory: URL? = Repo.sharedState, environment: [String: String] = [:]
    ) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        stdoutFile = directory.appendingPathComponent("stdout.txt")
        stderrFile = directory.appendingPathComponent("stderr.txt")
        eventsFile = directory.appendingPathComponent("events.jsonl")
        _ = FileManager.default.createFile(atPath: stdoutFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        process.executableURL = Repo.vantageBinary
        process.arguments =
            [
                "run", app.path, "--events", eventsFile.path,
                "--snapshots", directory.appendingPathComponent("snapshots").path, "--status-interval", "1",
            ]
            + (stateDirectory.map { ["--state-dir", $0.path] } ?? [])
            + (http.map { $0 ? ["--http", "127.0.0.1:0"] : ["--no-http"] } ?? []) + arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = try FileHandle(forWritingTo: stdoutFile)
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        try process.run()
    }

    deinit {
        if process.isRunning {
            process.interrupt()
            _ = waitForExit(timeout: 5)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    /// Read leniently: a library may echo a corrupt file's bytes into the log.
    var stderr: String { String(decoding: (try? Data(contentsOf: stderrFile)) ?? Data(), as: UTF8.self) }
    var stdout: String { String(decoding: (try? Data(contentsOf: stdoutFile)) ?? Data(), as: UTF8.self) }

    /// The events written so far, as JSON objects.
    var events: [[String: Any]] {
        let text = (try? String(contentsOf: eventsFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// Waits for the process to end; its exit status, or nil on timeout.
    func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Ctrl-C, then the exit status.
    func interrupt(timeout: Double = 15) -> Int32? {
        process.interrupt()
        return waitForExit(timeout: timeout)
    }

    /// The live view's port, once the runtime printed it.
    func port(timeout: Double = 30) throws -> Int {
        var port: Int?
        _ = poll(timeout: timeout) {
            if let range = self.stderr.range(of: #"live view: http://127\.0\.0\.1:(\d+)/"#, options: .regularExpression)
            {
                port = Int(self.stderr[range].split(separator: ":").last!.dropLast())
            }
            return port != nil
        }
        return try #require(port, "vantage never printed its live view address; stderr:\n\(stderr.suffix(3000))")
    }

    /// GET a path on the live-view port.
    func get(_ path: String) async throws -> (Int, Data) {
        let url = URL(string: "http://127.0.0.1:\(try port())\(path)")!
        let (data, response) = try await URLSession.shared.data(from: url)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// The `/status` document.
    func status() async throws -> Status {
        let (code, data) = try await get("/status")
        #expect(code == 200)
        return Status(json: try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:])
    }

    /// Polls `/status` until `condition` holds; the last status either way.
    @discardableResult
    func waitForStatus(timeout: Double, _ condition: (Status) -> Bool) async throws -> (Bool, Status) {
        let deadline = Date().addingTimeInterval(timeout)
        var last = try await status()
        while !condition(last) {
            if Date() > deadline || !process.isRunning { return (false, last) }
            try await Task.sleep(for: .milliseconds(250))
            last = try await status()
        }
        return (true, last)
    }
}

/// A `/status` document, read by key.
struct Status: CustomStringConvertible {
    let json: [String: Any]

    func camera(_ name: String) -> [String: Any] {
        (json["cameras"] as? [[String: Any]])?.first { $0["name"] as? String == name } ?? [:]
    }

    func cameraCounter(_ name: String, _ key: String) -> Int {
        ((camera(name)["counters"] as? [String: Any])?[key] as? NSNumber)?.intValue ?? 0
    }

    func cameraState(_ name: String) -> String {
        (camera(name)["counters"] as? [String: Any])?["state"] as? String ?? ""
    }

    func cameraError(_ name: String) -> String {
        (camera(name)["counters"] as? [String: Any])?["lastError"] as? String ?? ""
    }

    var app: [String: Any] { (json["applications"] as? [[String: Any]])?.first ?? [:] }
    func appNumber(_ key: String) -> Int { (app[key] as? NSNumber)?.intValue ?? 0 }
    var appPhase: String { app["phase"] as? String ?? "" }

    var description: String {
        String(
            decoding: (try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])) ?? Data(),
            as: UTF8.self)
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` seconds pass.
func poll(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}
