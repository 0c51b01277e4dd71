import Foundation
import Logging
import ServiceLifecycle
import Testing
import VantageAgent
import VantageListeners
import VantageMedia
import VantageRuntime

#if canImport(Glibc)
    import Glibc
#endif

/// Slowloris (issue 14, part 4): clients that open connections and never finish a request head must neither keep
/// others out of a listener nor hold its descriptors for good. Each listener (server operator and device endpoints,
/// the agent's metrics, the live view) is attacked with 300 such connections through real sockets.
@Suite("Listener limits (slowloris)")
struct ListenerLimitsTests {
    /// Guards: `vantage server` run with a soft and hard open-file limit of 256 (fewer descriptors than the attack
    /// has connections) still answers /healthz on both listeners within seconds while 300 connections with half a
    /// request head are open on each, and closes those connections once the idle timeout passes. Before the fix,
    /// the stalled connections took every descriptor and /healthz timed out.
    @Test("vantage server under ulimit -n 256 answers /healthz through 300 stalled connections per listener")
    func serverListeners() async throws {
        let data = FileManager.default.temporaryDirectory.appending(path: "vantage-slowloris-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let binary = try ServerProcess.binary()
        let server = try ServerProcess(
            URL(filePath: "/bin/sh"),
            [
                "-c", #"ulimit -n 256 && exec "$0" "$@""#, binary.path, "server", "--data", data.path,
                "--listen", "127.0.0.1:0", "--device-listen", "127.0.0.1:0", "--idle-timeout-seconds", "3",
            ], name: "slowloris")
        defer { server.stop() }
        let url = try await server.waitUntilListening()
        let device = try await server.deviceEndpoint()
        for (name, port, scheme) in [("operator", url.port!, "http"), ("device", device.port!, "https")] {
            // Over TLS the stall is a handshake record announced and never sent.
            let stalled = try await StalledConnections.open(
                port: port, count: 300,
                send: scheme == "https" ? [0x16, 0x03, 0x01, 0x02, 0x00, 0x01] : StalledConnections.halfRequestHead)
            defer { stalled.closeAll() }
            let started = ContinuousClock.now
            let health = try await TestProcess.run([
                "curl", "-sk", "--max-time", "5", "\(scheme)://127.0.0.1:\(port)/healthz",
            ])
            #expect(
                health.status == 0 && health.output == "ok\n",
                "\(name) listener: /healthz did not answer within 5 s through 300 stalled connections: \(health)")
            #expect(ContinuousClock.now - started < .seconds(5))
            // Every stalled connection is closed: by the cap (the oldest make room) or by the 3 s idle timeout.
            let closed = await stalled.waitUntilClosed(timeout: .seconds(10))
            #expect(closed == 300, "\(name) listener: \(300 - closed) of 300 stalled connections still open after 10 s")
        }
        #expect(server.isRunning, "the server exited:\n\(server.output.suffix(2000))")
    }

    /// Guards: the agent's metrics endpoint keeps answering while 300 stalled connections are open (at most 64 are
    /// held; the longest-waiting make room) and closes stalled connections after its idle timeout.
    @Test("the agent's metrics endpoint answers through 300 stalled connections and closes them")
    func agentMetrics() async throws {
        let logger = Logger(label: "metrics-slowloris")
        let (ports, port) = AsyncStream.makeStream(of: Int.self)
        let app = AgentMetrics().application(
            host: "127.0.0.1", port: 0, limits: ListenerLimits(idleTimeout: .seconds(2), maxConnections: 64),
            logger: logger, onServerRunning: { port.yield($0) })
        try await Self.attack(app, ports: ports, path: "/healthz", expect: "ok\n", logger: logger) { _ in }
    }

    /// Guards: the live view of `vantage run` keeps answering while 300 stalled connections are open, closes them
    /// after the idle timeout, and never cuts a viewer whose MJPEG stream is being sent frames, however long it
    /// watches.
    @Test("the live view answers through 300 stalled connections, closes them, and keeps a live stream")
    func liveView() async throws {
        let logger = Logger(label: "live-view-slowloris")
        let view = LiveView(configuration: .init(maxFramesPerSecond: 10), logger: logger)
        view.addStream("front")
        let (ports, port) = AsyncStream.makeStream(of: Int.self)
        let app = makeLiveViewApplication(
            liveView: view, host: "127.0.0.1", port: 0,
            limits: ListenerLimits(idleTimeout: .seconds(2), maxConnections: 64),
            statusProvider: { Array("{}".utf8) }, onServerRunning: { port.yield($0) }, logger: logger)
        let pixels = UnsafeMutableRawPointer.allocate(byteCount: 64 * 48 * 3, alignment: 64)
        defer { pixels.deallocate() }
        pixels.initializeMemory(as: UInt8.self, repeating: 90, count: 64 * 48 * 3)
        let image = ImageBuffer(base: pixels, width: 64, height: 48, stride: 64 * 3)
        nonisolated(unsafe) let frame = image
        try await Self.attack(app, ports: ports, path: "/healthz", expect: "ok\n", logger: logger) { port in
            // A viewer watching for three idle timeouts, while frames keep coming, is still being sent frames.
            let publisher = Task {
                while !Task.isCancelled {
                    view.publish(stream: "front", image: frame, overlays: [])
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            defer { publisher.cancel() }
            let watch = try await TestProcess.run([
                "curl", "-s", "--max-time", "6", "-o", "/dev/null", "-w", "%{size_download}",
                "http://127.0.0.1:\(port)/streams/front.mjpeg",
            ])
            // curl's exit 28 is its own --max-time: the server kept the stream open for all 6 s.
            #expect(watch.status == 28, "the MJPEG stream ended before 6 s: \(watch)")
            #expect((Int(watch.output) ?? 0) > 10_000, "too few frames streamed in 6 s: \(watch.output) bytes")
        }
    }

    /// Runs `app`, opens 300 stalled connections, checks that `path` answers `expect` within 5 s and that every
    /// stalled connection is closed within 8 s, then runs `more` with the port.
    static func attack(
        _ app: some Service, ports: AsyncStream<Int>, path: String, expect: String, logger: Logger,
        more: @escaping @Sendable (Int) async throws -> Void
    ) async throws {
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            do {
                let stalled = try await StalledConnections.open(port: port, count: 300)
                defer { stalled.closeAll() }
                let started = ContinuousClock.now
                let answer = try await TestProcess.run([
                    "curl", "-s", "--max-time", "5", "http://127.0.0.1:\(port)\(path)",
                ])
                #expect(answer.status == 0 && answer.output == expect, "\(path) through 300 stalled: \(answer)")
                #expect(ContinuousClock.now - started < .seconds(5))
                let closed = await stalled.waitUntilClosed(timeout: .seconds(8))
                #expect(closed == 300, "\(300 - closed) of 300 stalled connections still open after 8 s")
                try await more(port)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}

/// Connections to 127.0.0.1:`port` that each sent the first bytes of a request (by default half a request head)
/// and then nothing. Its blocking socket calls run on a thread of their own: the servers under test accept on the
/// cooperative pool, which a blocked test task would starve.
final class StalledConnections: Sendable {
    static let halfRequestHead = Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8)
    let sockets: [Int32]

    static func open(port: Int, count: Int, send bytes: [UInt8] = halfRequestHead) async throws -> StalledConnections {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try StalledConnections(port: port, count: count, send: bytes) })
            }
        }
    }

    private init(port: Int, count: Int, send bytes: [UInt8]) throws {
        var sockets: [Int32] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else {
                for s in sockets { close(s) }
                throw APITestError("socket() failed: \(String(cString: strerror(errno))) (raise ulimit -n)")
            }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                close(fd)
                for s in sockets { close(s) }
                throw APITestError("connect() to port \(port) failed: \(String(cString: strerror(errno)))")
            }
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            sockets.append(fd)
        }
        self.sockets = sockets
    }

    /// How many of the connections the server closed (end of file or reset) within `timeout`.
    func waitUntilClosed(timeout: Duration) async -> Int {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: self.pollUntilClosed(timeout: timeout)) }
        }
    }

    private func pollUntilClosed(timeout: Duration) -> Int {
        let deadline = ContinuousClock.now + timeout
        var open = Set(sockets)
        while !open.isEmpty, ContinuousClock.now < deadline {
            var polls = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            _ = poll(&polls, nfds_t(polls.count), 200)
            for entry in polls where entry.revents != 0 {
                var byte: UInt8 = 0
                let read = recv(entry.fd, &byte, 1, Int32(MSG_DONTWAIT))
                if read == 0 || (read < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { open.remove(entry.fd) }
            }
        }
        return sockets.count - open.count
    }

    func closeAll() {
        for fd in sockets { close(fd) }
    }
}
