import Foundation
import Logging
import VantageCore
import VantageInference

/// The real parts the tests use, all installed by `scripts/setup` under `.deps/`.
enum Fixtures {
    /// The repository root, from this file's path (`Tests/VantageInferenceTests/Fixtures.swift`), symlinks resolved
    /// so the tests also work from a package that links this folder.
    static let root: URL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let ssdlite = root.appendingPathComponent(".deps/models/ssdlite/frozen_inference_graph.pb")
    static let video = root.appendingPathComponent(".deps/media/vtest.mp4")
    static let blazeFaceFullRange = root.appendingPathComponent(
        ".deps/models/face-detection/face_detection_full_range.tflite")
    /// A photograph with one face (Lionel Messi kicking a ball), from Debian's opencv-doc, which scripts/setup installs.
    static let messi = URL(fileURLWithPath: "/usr/share/doc/opencv-doc/examples/data/messi5.jpg")

    static var hasSSDLite: Bool {
        FileManager.default.fileExists(atPath: ssdlite.path) && FileManager.default.fileExists(atPath: video.path)
            && ffmpegAvailable
    }
    static var hasBlazeFace: Bool {
        FileManager.default.fileExists(atPath: blazeFaceFullRange.path)
            && FileManager.default.fileExists(atPath: messi.path)
            && ffmpegAvailable
    }
    static let ffmpegAvailable = ["/usr/bin/ffmpeg", "/usr/local/bin/ffmpeg"].contains {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Logs nothing; the tests assert on what the API returns.
    static let logger = Logger(label: "vantage.inference.tests", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The SSDLite person detector as a Vantage descriptor would declare it: 300×300 RGB frames, SSD decoder.
    static func ssdliteSpec(decoder: DecoderSpec = DecoderSpec(type: .ssd, labels: ["background", "person"]))
        -> ModelSpec
    {
        ModelSpec(
            file: ".deps/models/ssdlite/frozen_inference_graph.pb",
            inputs: [
                ModelInputSpec(name: "image_tensor:0", layout: "NHWC", colorOrder: "RGB", width: 300, height: 300)
            ],
            decoder: decoder)
    }

    /// One SSDLite model shared by the tests that need an ordinary one (loading takes a second or two).
    static let sharedSSDLiteLoad = Task {
        try await InferenceModel.load(
            name: "people_detector", spec: ssdliteSpec(), file: ssdlite, cacheDirectory: nil, logger: logger)
    }

    static func sharedSSDLite() async throws -> InferenceModel {
        try await sharedSSDLiteLoad.value
    }

    /// A frame of vtest.mp4 at `seconds`, scaled to `width`×`height` packed RGB, the way the runtime's swscale
    /// delivers it (decoded by the ffmpeg command-line tool here).
    static func frame(at seconds: Double, width: Int = 300, height: Int = 300) throws -> [UInt8] {
        try rgb(
            ["-ss", String(seconds), "-i", video.path, "-frames:v", "1"], width: width, height: height)
    }

    /// A still image scaled to `width`×`height` packed RGB.
    static func image(_ file: URL, width: Int, height: Int) throws -> [UInt8] {
        try rgb(["-i", file.path], width: width, height: height)
    }

    private static func rgb(_ input: [String], width: Int, height: Int) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            ["ffmpeg", "-nostdin", "-loglevel", "error"] + input
            + ["-vf", "scale=\(width):\(height)", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, data.count == width * height * 3 else {
            throw FixtureError("ffmpeg \(input) gave \(data.count) bytes, status \(process.terminationStatus)")
        }
        return [UInt8](data)
    }

    /// A fresh empty folder under the system's temporary directory.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("vantage-inference-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension InferenceRequest {
    /// Copies a packed frame into the request's frame buffer and runs the model on it.
    func infer(_ frame: [UInt8]) async throws {
        precondition(frame.count == frameBuffer.count)
        frameBuffer.copyBytes(from: frame)
        try await inferFrame()
    }

    /// The people (class 1) found with at least `minScore`.
    func people(minScore: Float = 0.5) -> [Detection] {
        detections.filter { $0.classId == 1 && $0.score >= minScore }
    }
}

/// Memory for a tensor an application would send: stays put while the (async) inference reads it.
final class TensorBytes {
    let raw: UnsafeRawBufferPointer

    init<T: BitwiseCopyable>(_ values: [T]) {
        let memory = UnsafeMutableRawBufferPointer.allocate(
            byteCount: values.count * MemoryLayout<T>.stride, alignment: 64)
        values.withUnsafeBytes { memory.copyMemory(from: $0) }
        raw = UnsafeRawBufferPointer(memory)
    }

    deinit { raw.deallocate() }
}
