import Foundation
import Logging
import Testing
import VantageApp
import VantageRuntime
import VantageSDK

/// The runtime and the Swift SDK over the real protocol, in one process: a code node whose process only sleeps, and
/// this test connecting to its socket as the application would. Real camera (the sample file), real inference.
@Suite("Runtime and SDK over the app protocol", .serialized, .enabled(if: sdkTestReady, "needs scripts/setup"))
struct SDKRoundTripTests {
    @Test("an application gets frames, runs the model on a frame and on its own tensor, puts and publishes")
    func roundTrip() async throws {
        let (runtime, node, events, task) = try await startRuntime()
        do {
            try await exercise(node, events: events)
        } catch {
            runtime.shutdown()
            throw error
        }
        runtime.shutdown()
        try await task.value
        #expect(runtime.summary?.events == 1, "the run ends with a summary")
    }

    func exercise(_ node: Node, events: URL) async throws {
        #expect(node.config.node == "code_node")
        #expect(node.float("min_score") == 0.5)
        #expect(node.int("max_people") == 5)
        let model = try #require(node.config.models.first { $0.name == "model_node" })
        #expect(model.labels.count > 1 && model.labels[1] == "person")

        // Frames: one per camera, BGR in shared memory.
        var frames = try #require(try await node.frames("video_in"))
        #expect(frames.count == 1)
        let frame = frames[0]
        #expect(frame.streamId == "camera_node" && frame.width == 768 && frame.height == 576)
        let grass = frame.pixels + 540 * frame.stride + 100 * 3
        let (b, g, r) = (
            grass.load(as: UInt8.self), grass.load(fromByteOffset: 1, as: UInt8.self),
            grass.load(fromByteOffset: 2, as: UInt8.self)
        )
        #expect(g > r && g > b, "the bottom of the picture is grass, in BGR order")

        // The model on the frame (pre-processing by the runtime) ...
        let onFrame = try await node.detect("model_node", on: frame).filter { $0.classId == 1 && $0.score >= 0.5 }
        #expect(onFrame.count >= 1, "people walk in the first frame")
        #expect(onFrame.allSatisfy { $0.label == "person" && $0.xMin < $0.xMax && $0.yMin < $0.yMax })

        // ... and on a tensor the application made itself (through the tensor arena): the same people.
        var rgb = [UInt8](repeating: 0, count: 300 * 300 * 3)
        for y in 0..<300 {
            for x in 0..<300 {
                let p = frame.pixels + (y * frame.height / 300) * frame.stride + (x * frame.width / 300) * 3
                rgb[(y * 300 + x) * 3] = p.load(fromByteOffset: 2, as: UInt8.self)
                rgb[(y * 300 + x) * 3 + 1] = p.load(fromByteOffset: 1, as: UInt8.self)
                rgb[(y * 300 + x) * 3 + 2] = p.load(as: UInt8.self)
            }
        }
        let result = try await node.infer(
            "model_node",
            tensors: [Tensor(name: "image_tensor:0", shape: [1, 300, 300, 3], elementType: .u8, data: rgb)])
        #expect(result.tensors.count == 4, "the raw outputs come back: \(result.tensors.map(\.name))")
        let onTensor = result.detections.filter { $0.classId == 1 && $0.score >= 0.5 }
        #expect(abs(onTensor.count - onFrame.count) <= 1, "frame path \(onFrame.count), tensor path \(onTensor.count)")

        // A wrong model name is an error that lists the models.
        await #expect {
            _ = try await node.detect("no_such_model", on: frame)
        } throws: { error in
            "\(error)".contains("no model node named no_such_model") && "\(error)".contains("model_node")
        }

        // Overlays, put and an event with a snapshot.
        frames[0].addRect(0.1, 0.1, 0.5, 0.5)
        try node.put(frames)
        try await node.publish(["type": "test", "count": "\(onFrame.count)"], snapshot: frames[0])
        // publish returns once the event is in the outbox; its line follows from the events-file sink.
        var lastLine: Substring?
        for _ in 0..<500 where lastLine == nil {
            lastLine = (try? String(contentsOf: events, encoding: .utf8))?.split(separator: "\n").last
            if lastLine == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let line = try #require(lastLine, "the event's line was not written within 10 s")
        let event = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect((event["payload"] as? [String: Any])?["type"] as? String == "test")
        let snapshot = try Data(
            contentsOf: URL(fileURLWithPath: try #require((event["snapshot"] as? [String: Any])?["file"] as? String)))
        #expect(snapshot.prefix(2) == Data([0xFF, 0xD8]))

        // A frame from an earlier batch is no longer held.
        _ = try #require(try await node.frames("video_in"))
        await #expect {
            _ = try await node.detect("model_node", on: frame)
        } throws: { error in
            "\(error)".contains("no longer held")
        }
    }

    /// The example application with a code node that only sleeps, run on the sample video; and the SDK connected
    /// to its socket in place of the application.
    func startRuntime() async throws -> (Runtime, Node, URL, Task<Void, any Error>) {
        let fm = FileManager.default
        let work = fm.temporaryDirectory.appendingPathComponent("vantage-sdk-\(UUID().uuidString)")
        let app = work.appendingPathComponent("app")
        try copyExample("people-counter", to: app)
        let descriptor = app.appendingPathComponent("packages/123456789012-people_counter_code-1.0/descriptor.json")
        try #"{"runtimeDescriptor": {"envelopeVersion": "2021-01-01", "entry": {"path": "/bin/sleep", "name": "600"}}}"#
            .write(to: descriptor, atomically: true, encoding: .utf8)

        let (application, configuration) = try sampleVideoRun(of: app, in: work)
        let events = configuration.eventsFile!
        let runtime = try await Runtime.make(
            application: application, configuration: configuration, logger: Logger(label: "test"))
        let task = Task { try await runtime.run() }
        let socket = runtime.socketPath(ofNode: "code_node")
        let deadline = Date().addingTimeInterval(30)
        while !fm.fileExists(atPath: socket) && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        return (runtime, try Node(socketPath: socket), events, task)
    }
}

/// A writable copy of `examples/NAME` at `app`, its person detector pointed at the model scripts/setup fetched.
func copyExample(_ name: String, to app: URL) throws {
    try FileManager.default.createDirectory(at: app.deletingLastPathComponent(), withIntermediateDirectories: true)
    try FileManager.default.copyItem(at: repoRoot.appendingPathComponent("examples/\(name)"), to: app)
    let model = app.appendingPathComponent("packages/123456789012-people_detector-1.0/descriptor.json")
    try String(contentsOf: model, encoding: .utf8)
        .replacingOccurrences(of: "../../.deps/models", with: repoRoot.appendingPathComponent(".deps/models").path)
        .write(to: model, atomically: true, encoding: .utf8)
}

/// The application at `app` on the sample video, and a quiet configuration for it (no HTTP, no status lines, events to
/// `work/events.jsonl`, the compiled model cached where the end-to-end tests keep it).
func sampleVideoRun(of app: URL, in work: URL) throws -> (ResolvedApplication, RuntimeConfiguration) {
    var overrides = RunOverrides()
    try overrides.addCamera(argument: "camera_node=\(repoRoot.appendingPathComponent(".deps/media/vtest.mp4").path)")
    let application = try ApplicationProject.load(app).resolve(overrides)
    var configuration = RuntimeConfiguration(stateDirectory: work.appendingPathComponent("state"))
    configuration.httpPort = nil
    configuration.statusInterval = nil
    configuration.modelCacheDirectory = FileManager.default.temporaryDirectory.appendingPathComponent(
        "vantage-e2e-state/model-cache")
    configuration.eventsFile = work.appendingPathComponent("events.jsonl")
    return (application, configuration)
}

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let sdkTestReady = FileManager.default.fileExists(
    atPath: repoRoot.appendingPathComponent(".deps/models/ssdlite/frozen_inference_graph.pb").path)
