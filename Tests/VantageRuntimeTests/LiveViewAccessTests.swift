import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import VantageRuntime

/// The live view of `vantage run` against web pages on other sites (issue 14, part 6): a name that is not the
/// view's (DNS rebinding) is refused, and a browser's cross-origin POST cannot pause a camera. Through real HTTP.
@Suite(
    "Live view access (Host and Origin)",
    .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "needs curl"))
struct LiveViewAccessTests {
    /// Guards DNS rebinding: a request naming a host the view was not given is refused with 403 and the way to
    /// allow it; IP addresses, localhost, the machine's name and `--http-allowed-host` names are served.
    @Test("requests naming an unknown host are refused; addresses, localhost and allowed names are served")
    func hostIsChecked() async throws {
        try await AccessServer.run(allowedHosts: ["view.example.com"]) { server in
            let refused = try await server.curl(["-H", "Host: rebind.attacker.example:\(server.port)", "/status"])
            #expect(refused.status == 403, "\(refused)")
            #expect(refused.body.contains("--http-allowed-host"), "\(refused.body)")
            #expect(!refused.body.contains("frames"), "the status leaked: \(refused.body)")
            for host in [
                "127.0.0.1:\(server.port)", "localhost:\(server.port)", "[::1]:\(server.port)",
                "192.168.1.20:\(server.port)", "view.example.com", "VIEW.example.com.:\(server.port)",
                "\(ProcessInfo.processInfo.hostName):\(server.port)",
            ] {
                let served = try await server.curl(["-H", "Host: \(host)", "/status"])
                #expect(served.status == 200 && served.body.contains("frames"), "Host \(host): \(served)")
            }
        }
    }

    /// Guards cross-site request forgery: a browser's POST from another origin (or a `null` one, or marked
    /// cross-site) is refused and the camera stays running; the view's own page and non-browser clients (no
    /// Origin) can still pause it.
    @Test("a cross-origin POST cannot pause a camera; same-origin and plain clients can")
    func crossOriginPostIsRefused() async throws {
        try await AccessServer.run(allowedHosts: []) { server in
            let pause = "/nodes/camera_node/pause"
            for headers in [
                ["-H", "Origin: http://attacker.example"],
                ["-H", "Origin: null"],
                ["-H", "Origin: http://127.0.0.1:\(server.port + 1)"],
                ["-H", "Sec-Fetch-Site: cross-site"],
            ] {
                let refused = try await server.curl(headers + ["-X", "POST", pause])
                #expect(refused.status == 403, "\(headers): \(refused)")
                #expect(refused.body.contains("refused"), "\(refused.body)")
            }
            #expect(server.signals.all == [], "a refused request reached the camera")
            let sameOrigin = try await server.curl([
                "-H", "Origin: http://127.0.0.1:\(server.port)", "-X", "POST", pause,
            ])
            #expect(sameOrigin.status == 200, "\(sameOrigin)")
            let plain = try await server.curl(["-X", "POST", pause])
            #expect(plain.status == 200, "\(plain)")
            #expect(server.signals.all == ["camera_node pause", "camera_node pause"])
        }
    }
}

/// A live view on a free port with a signal handler that records what it was asked.
private struct AccessServer {
    let port: Int
    /// The signals the view passed on, as "node signal".
    let signals: SignalLog

    final class SignalLog: Sendable {
        private let entries = Mutex<[String]>([])
        func append(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    static func run(allowedHosts: [String], _ body: (AccessServer) async throws -> Void) async throws {
        let logger = Logger(label: "live-view-access-test")
        let liveView = LiveView(logger: logger)
        let recorded = SignalLog()
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = makeLiveViewApplication(
            liveView: liveView, host: "127.0.0.1", port: 0, allowedHosts: allowedHosts,
            statusProvider: { Array(#"{"frames": 0}"#.utf8) },
            signalHandler: { node, signal in
                recorded.append("\(node) \(signal)")
                return #"{"node": "camera_node", "paused": true}"#
            },
            onServerRunning: { portContinuation.yield($0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            let server = AccessServer(port: port, signals: recorded)
            do {
                try await body(server)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// curl against the server: `arguments` end with the path. Answers the status and the body.
    func curl(_ arguments: [String]) async throws -> (status: Int, body: String) {
        var arguments = arguments
        let path = arguments.removeLast()
        let bodyFile = FileManager.default.temporaryDirectory.appending(path: "live-view-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: bodyFile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments =
            ["-s", "--max-time", "10", "-o", bodyFile.path, "-w", "%{http_code}"] + arguments
            + ["http://127.0.0.1:\(port)\(path)"]
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        let code = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard status == 0, let http = Int(code) else { throw CurlFailed(status: status, output: code) }
        return (http, String(decoding: (try? Data(contentsOf: bodyFile)) ?? Data(), as: UTF8.self))
    }
}

private struct CurlFailed: Error, CustomStringConvertible {
    let status: Int32
    let output: String
    var description: String { "curl exited with \(status): \(output)" }
}
