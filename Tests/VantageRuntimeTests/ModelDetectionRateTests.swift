import Foundation
import Logging
import Testing
import VantageApp
import VantageSDK

@testable import VantageRuntime

/// A model node's `detection` settings (outputs document) for the frames a code node calls it on: the Swift SDK, in
/// place of the people counter's code node, calls the person detector on every frame of the sample video; with
/// `detectFps` 5 the runtime infers every other frame and answers the ones between with the camera's last answer.
@Suite("Model nodes: detection rate for code nodes", .enabled(if: sdkTestReady, "run scripts/setup"))
struct ModelDetectionRateTests {
    /// The people counter at `work/app` on the sample video, with `outputs` as its outputs document; with
    /// `sdkPlaysCodeNode`, its code node only sleeps, so the test's SDK connects in its place.
    static func peopleCounter(in work: URL, outputs document: String, sdkPlaysCodeNode: Bool = false) throws -> (
        ResolvedApplication, RuntimeConfiguration
    ) {
        let app = work.appendingPathComponent("app")
        try copyExample("people-counter", to: app)
        if sdkPlaysCodeNode {
            let descriptor = app.appendingPathComponent(
                "packages/123456789012-people_counter_code-1.0/descriptor.json")
            try
                #"{"runtimeDescriptor": {"envelopeVersion": "2021-01-01", "entry": {"path": "/bin/sleep", "name": "600"}}}"#
                .write(to: descriptor, atomically: true, encoding: .utf8)
        }
        let outputs = work.appendingPathComponent("outputs.json")
        try document.write(to: outputs, atomically: true, encoding: .utf8)
        var (application, configuration) = try sampleVideoRun(of: app, in: work)
        configuration.outputsFile = outputs
        return (application, configuration)
    }

    /// Runs the people counter with `outputs`, its code node played by the test's SDK, and gives `body` the runtime
    /// and the connected node; `configure` changes the run's configuration first.
    static func withSDKAsCodeNode(
        outputs: String, configure: (inout RuntimeConfiguration) -> Void = { _ in },
        _ body: (Runtime, Node) async throws -> Void
    ) async throws {
        let fm = FileManager.default
        let work = fm.temporaryDirectory.appendingPathComponent("vantage-model-rate-\(UUID().uuidString)")
        defer { try? fm.removeItem(at: work) }
        var (application, configuration) = try peopleCounter(in: work, outputs: outputs, sdkPlaysCodeNode: true)
        configure(&configuration)
        let runtime = try await Runtime.make(
            application: application, configuration: configuration, logger: Logger(label: "test"))
        let task = Task { try await runtime.run() }
        defer {
            runtime.shutdown()
            task.cancel()
        }
        let socket = runtime.socketPath(ofNode: "code_node")
        let deadline = Date().addingTimeInterval(30)
        while !fm.fileExists(atPath: socket) && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        try await body(runtime, try Node(socketPath: socket))
    }

    @Test("detectFps 5 on a 10 fps video: every frame is answered, half of them from the previous inference")
    func halfTheInferences() async throws {
        try await Self.withSDKAsCodeNode(outputs: #"{"detection": {"model_node": {"detectFps": 5}}}"#) {
            runtime, node in
            // 40 frames in order (a file waits for its consumer): each gets an answer; the one after an inferred frame
            // gets that frame's detections again.
            var answers: [[Detection]] = []
            for _ in 0..<40 {
                let frames = try #require(try await node.frames("video_in"))
                answers.append(try await node.detect("model_node", on: frames[0]))
            }
            let model = try #require(runtime.status().models.first { $0.name == "model_node" })
            #expect(model.inferences + model.skippedFrames >= 40)
            #expect(model.inferences >= 18 && model.inferences <= 22, "inferred \(model.inferences) of 40 frames")
            #expect(model.skippedFrames >= 18, "answered \(model.skippedFrames) frames from the previous inference")
            let repeated = (1..<answers.count).count { answers[$0] == answers[$0 - 1] }
            #expect(repeated >= 18, "\(repeated) answers repeat the previous one")
            #expect(answers.allSatisfy { $0.contains { $0.classId == 1 && $0.score >= 0.5 } }, "people in every answer")
        }
    }

    @Test("detection naming a model node the application does not have is refused, naming its models")
    func unknownModelNode() async throws {
        let fm = FileManager.default
        let work = fm.temporaryDirectory.appendingPathComponent("vantage-model-rate-\(UUID().uuidString)")
        defer { try? fm.removeItem(at: work) }
        let (application, configuration) = try Self.peopleCounter(
            in: work, outputs: #"{"detection": {"detector": {"detectFps": 5}}}"#)
        await #expect {
            _ = try await Runtime.make(
                application: application, configuration: configuration, logger: Logger(label: "t"))
        } throws: { error in
            "\(error)".contains("outputs.detection names the model node \"detector\"")
                && "\(error)".contains("model_node")
        }
    }
}
