import Foundation
import Logging
import ServiceLifecycle
import Testing
import VantageMedia
import VantageRuntime

/// A BGR24 frame that owns its pixels: left half red, right half blue.
private final class Frame: @unchecked Sendable {
    let width: Int
    let height: Int
    let pixels: UnsafeMutableRawPointer  // written once in init, read-only afterwards

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        pixels = .allocate(byteCount: width * height * 3, alignment: 16)
        let bytes = pixels.assumingMemoryBound(to: UInt8.self)
        for y in 0..<height {
            for x in 0..<width {
                let p = (y * width + x) * 3
                (bytes[p], bytes[p + 1], bytes[p + 2]) = x < width / 2 ? (0, 0, 200) : (200, 0, 0)
            }
        }
    }

    deinit { pixels.deallocate() }

    func publish(to liveView: LiveView, stream: String, overlays: [Overlay] = []) {
        withExtendedLifetime(self) {
            liveView.publish(
                stream: stream,
                image: ImageBuffer(base: pixels, width: width, height: height),
                overlays: overlays
            )
        }
    }
}

/// What curl got.
private struct HTTPResult {
    var status: Int
    var headers: String
    var body: [UInt8]
    var exitCode: Int32

    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        headers.split(whereSeparator: \.isNewline).compactMap { line -> String? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == name.lowercased() else { return nil }
            return parts[1].trimmingCharacters(in: .whitespaces)
        }.last
    }
}

private enum Tools {
    static let available = ["/usr/bin/curl", "/usr/bin/ffprobe"].allSatisfy {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Runs a tool to its end without blocking a thread of the cooperative pool.
    static func run(_ path: String, _ arguments: [String]) async throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        return try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
    }

    /// A GET with curl; `maxTime` ends a live stream after that many seconds.
    static func get(_ url: String, maxTime: Double = 10) async throws -> HTTPResult {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("liveview-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let headers = directory.appendingPathComponent("headers")
        let body = directory.appendingPathComponent("body")
        let exitCode = try await run(
            "/usr/bin/curl",
            ["-s", "--max-time", "\(maxTime)", "-D", headers.path, "-o", body.path, url]
        )
        let headerText = (try? String(contentsOf: headers, encoding: .utf8)) ?? ""
        let status = headerText.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return HTTPResult(
            status: status,
            headers: headerText,
            body: [UInt8]((try? Data(contentsOf: body)) ?? Data()),
            exitCode: exitCode
        )
    }

    /// Width and height of a JPEG as ffprobe reads it.
    static func jpegSize(_ jpeg: [UInt8]) async throws -> (width: Int, height: Int)? {
        let directory = FileManager.default.temporaryDirectory
        let input = directory.appendingPathComponent("liveview-\(UUID().uuidString).jpg")
        let output = directory.appendingPathComponent("liveview-\(UUID().uuidString).txt")
        try Data(jpeg).write(to: input)
        defer {
            try? FileManager.default.removeItem(at: input)
            try? FileManager.default.removeItem(at: output)
        }
        let code = try await run(
            "/bin/sh",
            [
                "-c", "ffprobe -v error -show_entries stream=width,height -of csv=p=0 \"$0\" > \"$1\"", input.path,
                output.path,
            ]
        )
        guard code == 0 else { return nil }
        let numbers = try String(contentsOf: output, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").compactMap { Int($0) }
        return numbers.count == 2 ? (numbers[0], numbers[1]) : nil
    }
}

private func isJPEG(_ bytes: some Collection<UInt8>) -> Bool {
    bytes.count > 4 && Array(bytes.prefix(2)) == [0xFF, 0xD8] && Array(bytes.suffix(2)) == [0xFF, 0xD9]
}

/// The JPEG parts of a multipart/x-mixed-replace body, split by their Content-Length headers.
private func multipartJPEGs(_ body: [UInt8], boundary: String) -> (parts: [[UInt8]], closed: Bool) {
    var parts: [[UInt8]] = []
    var index = 0
    let marker = Array("--\(boundary)".utf8)
    let headerEnd = Array("\r\n\r\n".utf8)
    func find(_ needle: [UInt8], from start: Int) -> Int? {
        guard body.count >= needle.count, start <= body.count - needle.count else { return nil }
        return (start...(body.count - needle.count)).first { body[$0..<$0 + needle.count].elementsEqual(needle) }
    }
    while let start = find(marker, from: index) {
        let afterMarker = start + marker.count
        if body[afterMarker...].starts(with: Array("--".utf8)) { return (parts, true) }
        guard let end = find(headerEnd, from: afterMarker) else { break }
        let headers = String(decoding: body[afterMarker..<end], as: UTF8.self)
        guard
            let lengthLine = headers.split(separator: "\r\n").first(where: {
                $0.lowercased().hasPrefix("content-length:")
            }),
            let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces))
        else { break }
        let dataStart = end + headerEnd.count
        guard dataStart + length <= body.count else { break }  // cut off by the client
        parts.append(Array(body[dataStart..<dataStart + length]))
        index = dataStart + length
    }
    return (parts, false)
}

/// A live view's HTTP server on a free port, in a service group as the runtime runs it.
private struct TestServer {
    let liveView: LiveView
    let group: ServiceGroup
    let base: String

    /// Runs the server for `body`, then shuts it down gracefully.
    static func run(
        _ configuration: LiveView.Configuration = .init(appName: "Test App", snapshotTimeout: .milliseconds(500)),
        status: @escaping @Sendable () async -> [UInt8] = { Array(#"{"frames": 0}"#.utf8) },
        _ body: (TestServer) async throws -> Void
    ) async throws {
        let logger = Logger(label: "live-view-test")
        let liveView = LiveView(configuration: configuration, logger: logger)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = makeLiveViewApplication(
            liveView: liveView,
            host: "127.0.0.1",
            port: 0,
            statusProvider: status,
            onServerRunning: { portContinuation.yield($0) },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            try await body(TestServer(liveView: liveView, group: group, base: "http://127.0.0.1:\(port)"))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}

/// Publishes frames of `stream` about every 20 ms (50 a second) while `body` runs.
private func publishing(
    _ liveView: LiveView,
    stream: String,
    width: Int = 320,
    height: Int = 240,
    overlays: [Overlay] = [],
    while body: () async throws -> Void
) async throws {
    let frame = Frame(width: width, height: height)
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask {
            while !Task.isCancelled {
                frame.publish(to: liveView, stream: stream, overlays: overlays)
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        defer { tasks.cancelAll() }
        try await body()
    }
}

@Suite("Live view", .enabled(if: Tools.available, "needs curl and ffprobe"))
struct LiveViewTests {
    @Test func publishingWithoutViewersEncodesNothing() {
        let liveView = LiveView(logger: Logger(label: "test"))
        let frame = Frame(width: 64, height: 48)
        for _ in 0..<50 { frame.publish(to: liveView, stream: "front", overlays: [.label(text: "x", x: 0.1, y: 0.1)]) }
        #expect(liveView.encodedFrameCount == 0)
        #expect(liveView.streamNames == ["front"])
        #expect(liveView.latestJPEG(stream: "front") == nil)
    }

    @Test func streamNamesAreRestrictedToURLSafeCharacters() {
        #expect(LiveView.isValidStreamName("Camera_1"))
        #expect(LiveView.isValidStreamName("lobby.lobby-2"))
        #expect(!LiveView.isValidStreamName(""))
        #expect(!LiveView.isValidStreamName("a/b"))
        #expect(!LiveView.isValidStreamName("<script>"))
        let liveView = LiveView(logger: Logger(label: "test"))
        Frame(width: 8, height: 8).publish(to: liveView, stream: "bad name")
        #expect(liveView.streamNames.isEmpty)
    }

    @Test func snapshotIsTheLatestAnnotatedFrame() async throws {
        try await TestServer.run { server in
            let (liveView, base) = (server.liveView, server.base)
            let box = Overlay.rect(x0: 0.25, y0: 0.25, x1: 0.75, y1: 0.75, color: .green)
            try await publishing(liveView, stream: "front", overlays: [box]) {
                let response = try await Tools.get("\(base)/streams/front.jpg")
                #expect(response.status == 200)
                #expect(response.header("Content-Type") == "image/jpeg")
                #expect(isJPEG(response.body))
                let size = try await Tools.jpegSize(response.body)
                #expect(size?.width == 320 && size?.height == 240)
                #expect(liveView.latestJPEG(stream: "front") != nil)
            }
        }
    }

    @Test func mjpegDeliversMultipartJPEGsAndEndsWhenTheClientLeaves() async throws {
        try await TestServer.run { server in
            let (liveView, base) = (server.liveView, server.base)
            try await publishing(liveView, stream: "front") {
                let response = try await Tools.get("\(base)/streams/front.mjpeg", maxTime: 1.5)
                #expect(response.status == 200)
                let contentType = try #require(response.header("Content-Type"))
                #expect(contentType.hasPrefix("multipart/x-mixed-replace"))
                let boundary = try #require(contentType.components(separatedBy: "boundary=").last)
                let (parts, _) = multipartJPEGs(response.body, boundary: boundary)
                #expect(parts.count >= 2, "got \(parts.count) frames in 1.5 s")
                #expect(parts.allSatisfy(isJPEG))
                // 15 frames a second at most, though 50 a second are published.
                #expect(parts.count <= 1 + Int(1.5 * 15) + 2)
                if let first = parts.first {
                    let size = try await Tools.jpegSize(first)
                    #expect(size?.width == 320 && size?.height == 240)
                }

                // curl hung up: the server notices at the next frame and stops encoding.
                let deadline = ContinuousClock.now + .seconds(5)
                while liveView.viewerCount(stream: "front") > 0, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(liveView.viewerCount(stream: "front") == 0)
            }
            let encoded = liveView.encodedFrameCount
            #expect(encoded >= 2)
            Frame(width: 320, height: 240).publish(to: liveView, stream: "front")
            #expect(liveView.encodedFrameCount == encoded, "no viewer left, so nothing is encoded")
        }
    }

    @Test(arguments: ["service group shutdown", "live view shutdown"])
    func mjpegEndsCleanlyWhenTheRuntimeStops(_ how: String) async throws {
        try await TestServer.run { server in
            let liveView = server.liveView
            try await publishing(liveView, stream: "front") {
                async let streamed = Tools.get("\(server.base)/streams/front.mjpeg", maxTime: 20)
                let deadline = ContinuousClock.now + .seconds(10)
                while liveView.encodedFrameCount < 3, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                let stopped = ContinuousClock.now
                if how == "live view shutdown" {
                    liveView.shutdown()
                } else {
                    await server.group.triggerGracefulShutdown()
                }
                let response = try await streamed
                #expect(ContinuousClock.now - stopped < .seconds(5), "the stream ended, not curl's timeout")
                #expect(response.exitCode == 0, "curl got a complete response (exit \(response.exitCode))")
                let boundary = try #require(response.header("Content-Type")?.components(separatedBy: "boundary=").last)
                let (parts, closed) = multipartJPEGs(response.body, boundary: boundary)
                #expect(parts.count >= 1 && parts.allSatisfy(isJPEG))
                #expect(closed, "the multipart body ends with its closing boundary")
            }
        }
    }

    @Test func unknownStreamIs404NamingTheKnownStreams() async throws {
        try await TestServer.run { server in
            let (liveView, base) = (server.liveView, server.base)
            liveView.addStream("Camera_1")
            liveView.addStream("lobby")
            for path in ["/streams/nope.jpg", "/streams/nope.mjpeg"] {
                let response = try await Tools.get(base + path)
                #expect(response.status == 404)
                #expect(response.text.contains("nope"))
                #expect(response.text.contains("Camera_1") && response.text.contains("lobby"), "\(response.text)")
            }
        }
    }

    @Test func streamWithoutFramesIs503() async throws {
        try await TestServer.run { server in
            let (liveView, base) = (server.liveView, server.base)
            liveView.addStream("idle")
            let response = try await Tools.get("\(base)/streams/idle.jpg")
            #expect(response.status == 503)
            #expect(response.text.contains("no frame yet"))
        }
    }

    @Test func pageListsEveryStreamAndEscapesNames() async throws {
        try await TestServer.run(.init(appName: "Dock <3> & Co")) { server in
            let (liveView, base) = (server.liveView, server.base)
            liveView.addStream("Camera_1")
            liveView.addStream("yard.north")
            let response = try await Tools.get(base + "/")
            #expect(response.status == 200)
            #expect(response.header("Content-Type")?.hasPrefix("text/html") == true)
            let html = response.text
            #expect(html.contains("<title>Vantage — Dock &lt;3&gt; &amp; Co</title>"))
            #expect(html.contains(#"<img src="/streams/Camera_1.mjpeg""#))
            #expect(html.contains(#"<img src="/streams/yard.north.mjpeg""#))
            #expect(html.contains(#"fetch("/status""#) && html.contains("setInterval(refresh, 2000)"))
        }
    }

    @Test func statusAndHealth() async throws {
        let json = #"{"app":"people-counter","cameras":{"Camera_1":{"fps":14.9}}}"#
        let provider: @Sendable () async -> [UInt8] = { Array(json.utf8) }
        try await TestServer.run(status: provider) { server in
            let base = server.base
            let status = try await Tools.get(base + "/status")
            #expect(status.status == 200)
            #expect(status.header("Content-Type") == "application/json")
            #expect(status.text == json)
            let health = try await Tools.get(base + "/healthz")
            #expect(health.status == 200 && health.text == "ok\n")
        }
    }

    @Test func streamsAreListedAsJSON() async throws {
        try await TestServer.run { server in
            let (liveView, base) = (server.liveView, server.base)
            liveView.addStream("b")
            liveView.addStream("a")
            let response = try await Tools.get(base + "/streams")
            #expect(response.text == #"{"streams":["a","b"]}"#)
        }
    }
}
