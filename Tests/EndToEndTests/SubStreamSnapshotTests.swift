import Foundation
import Testing

/// Event snapshots of a camera with a sub-stream. The shape is an IP camera's (issue 19): a 1920x1080 main stream and
/// a 640x360 sub-stream of the same scene over RTSP — here the real RTSP test camera serving the 1080p sample and its
/// 640x360 copy. Detection runs on the sub-stream (an analytics node counting people); the event's snapshot is the
/// main stream's frame of the same moment, with the box mapped onto it, or the sub-stream's when the main stream has
/// none.
@Suite(
    "vantage run: event snapshots from a camera's main stream", .serialized,
    .enabled(
        if: Repo.isSetUp && Repo.isAvailable(.sampleVideo1080p, .rtspCamera)
            && FileManager.default.fileExists(atPath: Repo.sampleVideo360p.path),
        "needs scripts/setup (the 1080p and 360p samples, the RTSP camera) and a build"))
struct SubStreamSnapshotTests {
    /// An outputs document with one analytics node counting people on the people counter's camera.
    static func outputs() throws -> URL {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("outputs-\(UUID().uuidString).json")
        let node = #"{"name": "plaza", "camera": "camera_node", "model": "model_node", "classes": ["person"]}"#
        try #"{"analytics": [\#(node)]}"#.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// The analytics node's first object events that carry a snapshot.
    static func objectStarts(_ run: VantageRun) -> [[String: Any]] {
        run.events.filter {
            ($0["source"] as? String) == "analytics:plaza" && ($0["phase"] as? String) == "start"
                && ($0["snapshot"] as? [String: Any])?["file"] is String
        }
    }

    @Test("An event's snapshot is the 1920x1080 main stream's frame, its box drawn where the detected person is")
    func snapshotFromTheMainStream() async throws {
        let camera = try await RTSPCamera(streams: [
            .init(mount: "/main", file: Repo.sampleVideo1080p), .init(mount: "/sub", file: Repo.sampleVideo360p),
        ])
        let outputs = try Self.outputs()
        let run = try VantageRun([
            "--camera", "camera_node=\(camera.url(mount: "/main"))",
            "--detect-stream", "camera_node=\(camera.url(mount: "/sub"))", "--outputs", outputs.path,
        ])
        #expect(poll(timeout: 30) { Self.objectStarts(run).count >= 2 }, "\(run.stderr.suffix(3000))")
        let event = try #require(Self.objectStarts(run).first)
        let file = try #require((event["snapshot"] as? [String: Any])?["file"] as? String)
        let box = try #require((event["payload"] as? [String: Any])?["box"] as? [String: Double])
        let picture = try DecodedJPEG(file)
        #expect(picture.width == 1920 && picture.height == 1080, "the snapshot is \(picture.width)x\(picture.height)")

        // The highlighted box (red, 3 px at 1080p) is on the main frame where the box's fractions put it.
        let (left, top) = (Int(box["xMin"]! * 1920), Int(box["yMin"]! * 1080))
        let (right, bottom) = (Int(box["xMax"]! * 1920) - 1, Int(box["yMax"]! * 1080) - 1)
        var onEdge: [(Int, Int)] = []
        for x in stride(from: left + 4, to: right - 4, by: 2) { onEdge += [(x, top + 1), (x, bottom - 1)] }
        for y in stride(from: top + 4, to: bottom - 4, by: 2) { onEdge += [(left + 1, y), (right - 1, y)] }
        let red = onEdge.filter { picture.isRed(x: $0.0, y: $0.1) }.count
        #expect(Double(red) >= 0.8 * Double(onEdge.count), "\(red) of \(onEdge.count) edge pixels are red: \(box)")

        // The person is in the box: inside it the picture differs from the empty scene (the median of frames across
        // the sample) much more than the picture as a whole does.
        let background = try Self.emptyScene()
        let small = try DecodedJPEG(file, width: 480, height: 270)
        let inner = (
            Int((box["xMin"]! + 0.2 * (box["xMax"]! - box["xMin"]!)) * 480),
            Int((box["yMin"]! + 0.2 * (box["yMax"]! - box["yMin"]!)) * 270),
            Int((box["xMax"]! - 0.2 * (box["xMax"]! - box["xMin"]!)) * 480),
            Int((box["yMax"]! - 0.2 * (box["yMax"]! - box["yMin"]!)) * 270)
        )
        let inBox = small.changed(from: background, x0: inner.0, y0: inner.1, x1: inner.2, y1: inner.3)
        let whole = small.changed(from: background, x0: 0, y0: 0, x1: 480, y1: 270)
        #expect(inBox > 0.25 && inBox > 3 * whole, "changed: \(inBox) in the box, \(whole) in the whole picture")

        let (ok, status) = try await run.waitForStatus(timeout: 10) {
            (($0.camera("camera_node")["main"] as? [String: Any])?["snapshots"] as? Int ?? 0) >= 2
        }
        #expect(ok, "the status counts the main stream's snapshots: \(status)")
        let main = try #require(status.camera("camera_node")["main"] as? [String: Any])
        #expect(main["snapshotFallbacks"] as? Int == 0, "\(main)")
        let cost = try #require(main["snapshotCPUMs"] as? Double)
        print("a snapshot from the 1080p main stream cost \(cost) CPU ms on average")
        #expect(run.interrupt() == 0)
    }

    @Test("A code node's event snapshot comes from the main stream when the application never read the pixels")
    func codeNodeSnapshotFromTheMainStream() async throws {
        // The people counter asks for frames without pixels (`images: false`) and publishes its first count of a
        // camera with a snapshot: everything drawn on it is the runtime's, so it can be drawn on the main frame.
        let camera = try await RTSPCamera(streams: [
            .init(mount: "/main", file: Repo.sampleVideo1080p), .init(mount: "/sub", file: Repo.sampleVideo360p),
        ])
        let run = try VantageRun([
            "--camera", "camera_node=\(camera.url(mount: "/main"))",
            "--detect-stream", "camera_node=\(camera.url(mount: "/sub"))",
        ])
        func pictured() -> [String] {
            run.events.compactMap { event -> String? in
                guard (event["source"] as? String) == "node:code_node",
                    let file = (event["snapshot"] as? [String: Any])?["file"] as? String,
                    FileManager.default.fileExists(atPath: file)
                else { return nil }
                return file
            }
        }
        #expect(poll(timeout: 30) { !pictured().isEmpty }, "\(run.stderr.suffix(3000))")
        let file = try #require(pictured().first)
        let picture = try DecodedJPEG(file)
        #expect(picture.width == 1920 && picture.height == 1080, "the snapshot is \(picture.width)x\(picture.height)")
        let (ok, status) = try await run.waitForStatus(timeout: 10) {
            (($0.camera("camera_node")["main"] as? [String: Any])?["snapshots"] as? Int ?? 0) >= 1
        }
        #expect(ok, "the status counts the main stream's snapshot: \(status)")
        #expect(run.interrupt() == 0)
    }

    @Test("Without the main stream, events still come, with the sub-stream's 640x360 snapshot; counted, logged once")
    func fallsBackToTheSubStream() async throws {
        let camera = try await RTSPCamera(streams: [.init(mount: "/sub", file: Repo.sampleVideo360p)])
        let outputs = try Self.outputs()
        // Port 9 (discard) on the loopback interface: nothing listens there, every connection is refused.
        let run = try VantageRun([
            "--camera", "camera_node=rtsp://127.0.0.1:9/main",
            "--detect-stream", "camera_node=\(camera.url(mount: "/sub"))", "--outputs", outputs.path,
        ])
        #expect(poll(timeout: 30) { Self.objectStarts(run).count >= 2 }, "\(run.stderr.suffix(3000))")
        for event in Self.objectStarts(run).prefix(2) {
            let file = try #require((event["snapshot"] as? [String: Any])?["file"] as? String)
            let picture = try DecodedJPEG(file)
            #expect(picture.width == 640 && picture.height == 360)
        }
        let (ok, status) = try await run.waitForStatus(timeout: 10) {
            (($0.camera("camera_node")["main"] as? [String: Any])?["snapshotFallbacks"] as? Int ?? 0) >= 2
        }
        #expect(ok, "the status counts the fallbacks: \(status)")
        let main = try #require(status.camera("camera_node")["main"] as? [String: Any])
        #expect(main["snapshots"] as? Int == 0)
        #expect((main["lastSnapshotFallback"] as? String)?.contains("packet ring is empty") == true, "\(main)")
        let warnings = run.stderr.components(separatedBy: "event snapshots are taken from the sub-stream").count - 1
        #expect(warnings == 1, "logged once, not per event:\n\(run.stderr.suffix(3000))")
        #expect(run.interrupt() == 0)
    }

    /// The scene without people: each pixel's median over 9 frames spread across the 1080p sample, 480x270 grey.
    static func emptyScene() throws -> [UInt8] {
        let frames = try ffmpeg([
            "-i", Repo.sampleVideo1080p.path, "-vf", "select=not(mod(n\\,90)),scale=480:270", "-vsync", "0",
            "-f", "rawvideo", "-pix_fmt", "gray", "-",
        ])
        let size = 480 * 270
        let count = frames.count / size
        try #require(count >= 5, "ffmpeg gave \(count) frames")
        return (0..<size).map { i in
            (0..<count).map { frames[$0 * size + i] }.sorted()[count / 2]
        }
    }

    static func ffmpeg(_ arguments: [String]) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        process.arguments = ["-nostdin", "-v", "error"] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return [UInt8](data)
    }
}

/// A JPEG decoded by ffmpeg: its size (from ffprobe) and its pixels, packed RGB24 — or grey when scaled.
private struct DecodedJPEG {
    let width: Int
    let height: Int
    let pixels: [UInt8]
    let grey: Bool

    init(_ path: String, width scaledWidth: Int? = nil, height scaledHeight: Int? = nil) throws {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/ffprobe")
        probe.arguments = ["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", path]
        let pipe = Pipe()
        probe.standardOutput = pipe
        try probe.run()
        let size = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        probe.waitUntilExit()
        let parts = size.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").compactMap { Int($0) }
        try #require(parts.count == 2, "ffprobe says \(size)")
        if let scaledWidth, let scaledHeight {
            (width, height, grey) = (scaledWidth, scaledHeight, true)
            pixels = try SubStreamSnapshotTests.ffmpeg([
                "-i", path, "-vf", "scale=\(scaledWidth):\(scaledHeight)", "-f", "rawvideo", "-pix_fmt", "gray", "-",
            ])
        } else {
            (width, height, grey) = (parts[0], parts[1], false)
            pixels = try SubStreamSnapshotTests.ffmpeg(["-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        }
        try #require(pixels.count == width * height * (grey ? 1 : 3), "ffmpeg gave \(pixels.count) bytes")
    }

    /// Whether pixel (x, y) is the highlight's red (240, 30, 30), give or take JPEG's blur of a thin line.
    func isRed(x: Int, y: Int) -> Bool {
        guard x >= 0, y >= 0, x < width, y < height else { return false }
        let p = (y * width + x) * 3
        let (r, g, b) = (Int(pixels[p]), Int(pixels[p + 1]), Int(pixels[p + 2]))
        return r > 150 && r - max(g, b) > 70
    }

    /// The share of grey pixels in [x0, x1) × [y0, y1) that differ from `scene` by more than 30.
    func changed(from scene: [UInt8], x0: Int, y0: Int, x1: Int, y1: Int) -> Double {
        var changed = 0
        var all = 0
        for y in max(0, y0)..<min(height, max(y1, y0 + 1)) {
            for x in max(0, x0)..<min(width, max(x1, x0 + 1)) {
                all += 1
                if abs(Int(pixels[y * width + x]) - Int(scene[y * width + x])) > 30 { changed += 1 }
            }
        }
        return all == 0 ? 0 : Double(changed) / Double(all)
    }
}
