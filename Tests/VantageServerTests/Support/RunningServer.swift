import Foundation
import Testing
import VantageAPI
import VantageCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `vantage server` in its own process on a fresh SQLite data folder, with its first-start admin token, for tests
/// that need the real listener: real sockets, real concurrency, the process's own memory.
final class RunningServer: Sendable {
    let process: ServerProcess
    let base: URL
    let token: String
    let data: URL

    /// Starts it with `arguments` added (after `--data`, `--listen` and `--device-listen off`); `shell` wraps the
    /// command (e.g. `umask 022; exec "$@"`).
    static func start(
        _ arguments: [String] = [], environment: [String: String] = [:], shell: String? = nil,
        before: (@Sendable (URL) throws -> Void)? = nil
    ) async throws -> RunningServer {
        let data = FileManager.default.temporaryDirectory.appending(path: "vantage-hardening-\(UUID().uuidString)")
        try before?(data)
        let binary = try ServerProcess.binary()
        let serverArguments =
            ["server", "--listen", "127.0.0.1:0", "--device-listen", "off", "--data", data.path] + arguments
        let process: ServerProcess
        if let shell {
            process = try ServerProcess(
                URL(filePath: "/bin/sh"), ["-c", shell, "sh", binary.path] + serverArguments, name: "server",
                environment: environment)
        } else {
            process = try ServerProcess(binary, serverArguments, name: "server", environment: environment)
        }
        let base = try await process.waitUntilListening()
        guard let token = process.adminToken else {
            throw APITestError("the server printed no first-start admin token:\n\(process.output)")
        }
        return RunningServer(process: process, base: base, token: token, data: data)
    }

    private init(process: ServerProcess, base: URL, token: String, data: URL) {
        self.process = process
        self.base = base
        self.token = token
        self.data = data
    }

    deinit {
        process.stop()
        try? FileManager.default.removeItem(at: data)
    }

    struct Answer: Sendable, CustomStringConvertible {
        let status: Int
        let headers: [String: String]
        let body: Data
        let elapsed: Duration
        var text: String { String(decoding: body, as: UTF8.self) }
        var message: String { (try? APIJSON.decoder().decode(ErrorBody.self, from: body))?.error.message ?? text }
        var description: String { "\(status) after \(elapsed): \(text.prefix(500))" }
    }

    /// Who a request is sent as.
    enum Sender: Sendable {
        /// The first-start admin token.
        case admin
        /// No Authorization header.
        case anonymous
        case bearer(String)
    }

    /// A request to the server. Times out after `timeout`.
    func send(
        _ method: String, _ path: String, as sender: Sender = .admin, json: String? = nil, body: Data? = nil,
        contentType: String? = nil, headers: [String: String] = [:], timeout: TimeInterval = 60
    ) async throws -> Answer {
        var request = URLRequest(url: URL(string: path, relativeTo: base)!)
        request.httpMethod = method
        request.timeoutInterval = timeout
        switch sender {
        case .admin: request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        case .anonymous: break
        case .bearer(let secret): request.setValue("Bearer \(secret)", forHTTPHeaderField: "Authorization")
        }
        if let json {
            request.httpBody = Data(json.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        } else if let body {
            request.httpBody = body
            request.setValue(contentType ?? "application/octet-stream", forHTTPHeaderField: "Content-Type")
        }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let clock = ContinuousClock()
        let start = clock.now
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        var fields: [String: String] = [:]
        for (name, value) in http?.allHeaderFields ?? [:] {
            if let name = name as? String, let value = value as? String { fields[name.lowercased()] = value }
        }
        return Answer(status: http?.statusCode ?? 0, headers: fields, body: data, elapsed: clock.now - start)
    }

    /// The server process's peak resident memory so far (VmHWM), in bytes.
    var peakResidentBytes: Int {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }

    /// Makes a device and a camera assigned to it; returns their ids.
    func deviceWithCamera(_ name: String) async throws -> (device: String, camera: String) {
        let device = try await send("POST", "api/v1/devices", json: #"{"name": "\#(name)"}"#)
        try #require(device.status == 201, "\(device)")
        let deviceID = try APIJSON.decoder().decode(DeviceCreated.self, from: device.body).device.id
        let camera = try await send(
            "POST", "api/v1/cameras",
            json: #"{"name": "\#(name)-camera", "url": "rtsp://192.0.2.10/live", "deviceId": "\#(deviceID)"}"#)
        try #require(camera.status == 201, "\(camera)")
        return (deviceID, try APIJSON.decoder().decode(Camera.self, from: camera.body).id)
    }

    /// Makes a package; returns its id.
    func package(_ name: String) async throws -> String {
        let created = try await send("POST", "api/v1/packages", json: #"{"name": "\#(name)"}"#)
        try #require(created.status == 201, "\(created)")
        return try APIJSON.decoder().decode(Package.self, from: created.body).id
    }

    /// Uploads a version of a package.
    func upload(_ archive: Data, package: String, version: String, timeout: TimeInterval = 120) async throws -> Answer {
        try await send(
            "POST", "api/v1/packages/\(package)/versions?version=\(version)", body: archive, timeout: timeout)
    }
}
