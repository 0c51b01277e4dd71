import Foundation
import Testing
import VantageApp
import VantageSDK

@testable import VantageRuntime

/// Inference run ahead (`FrameLookahead`): the Swift SDK, in place of the people counter's code node, calls the
/// person detector on frames of the 1080p sample video the way the people counter does (take a frame, detect, take the
/// next). The runtime runs the detector on each frame as it is decoded once the calls come on consecutive frames.
@Suite("Model nodes: inference run ahead of the application", .enabled(if: sdkTestReady, "run scripts/setup"))
struct InferAheadTests {
    /// Runs the people counter (its code node played by the test's SDK) and gives `body` the runtime and the node.
    static func withPeopleCounter(
        inferAhead: Bool, _ body: (Runtime, Node) async throws -> Void
    ) async throws {
        try await ModelDetectionRateTests.withSDKAsCodeNode(
            outputs: "{}", configure: { $0.inferAhead = inferAhead }, body)
    }

    /// Detections of `frames` frames in order, the model called on those `calls` picks (by index from 0).
    static func detections(_ node: Node, frames: Int, calls: (Int) -> Bool) async throws -> [Int: [Detection]] {
        var answers: [Int: [Detection]] = [:]
        for index in 0..<frames {
            let taken = try #require(try await node.frames("video_in"))
            if calls(index) { answers[index] = try await node.detect("model_node", on: taken[0]) }
        }
        return answers
    }

    static func close(_ a: [Detection], _ b: [Detection]) -> Bool {
        a.count == b.count
            && zip(a, b).allSatisfy { x, y in
                x.classId == y.classId && abs(x.score - y.score) < 1e-3 && abs(x.xMin - y.xMin) < 1e-3
                    && abs(x.yMin - y.yMin) < 1e-3 && abs(x.xMax - y.xMax) < 1e-3 && abs(x.yMax - y.yMax) < 1e-3
            }
    }

    @Test("a detector called on every frame answers from inference run ahead, with the answers of a plain call")
    func sameAnswersAhead() async throws {
        var ahead: [Int: [Detection]] = [:]
        try await Self.withPeopleCounter(inferAhead: true) { runtime, node in
            ahead = try await Self.detections(node, frames: 60) { _ in true }
            let model = try #require(runtime.status().models.first { $0.name == "model_node" })
            // The first two calls run as before; from then on each frame's inference starts when it is decoded (a
            // frame the application takes before the lookahead saw it runs as before: rare, the decoder is ahead).
            #expect(model.inferredAhead >= 50, "\(model.inferredAhead) of 60 calls answered from inference ahead")
            #expect(model.wastedAhead == 0, "every frame run ahead was asked for")
            // At most four more may be in flight: a single file read as fast as possible runs four frames ahead.
            #expect(model.inferences <= 64, "\(model.inferences) inferences for 60 frames (4 more may be in flight)")
        }
        var plain: [Int: [Detection]] = [:]
        try await Self.withPeopleCounter(inferAhead: false) { runtime, node in
            plain = try await Self.detections(node, frames: 60) { _ in true }
            let model = try #require(runtime.status().models.first { $0.name == "model_node" })
            #expect(model.inferredAhead == 0 && model.inferences == 60)
        }
        #expect(ahead.count == 60 && plain.count == 60)
        for index in 0..<60 {
            #expect(
                Self.close(ahead[index] ?? [], plain[index] ?? []),
                "frame \(index): \(ahead[index] ?? []) ahead, \(plain[index] ?? []) called")
        }
        #expect(plain.values.contains { $0.contains { $0.classId == 1 && $0.score >= 0.5 } }, "people detected")
    }

    @Test("an application that stops calling on every frame wastes at most the frames already run ahead")
    func stopsWhenFramesAreSkipped() async throws {
        try await Self.withPeopleCounter(inferAhead: true) { runtime, node in
            // Ten frames in a row, then every other frame (an application with its own detection rate).
            let answers = try await Self.detections(node, frames: 50) { $0 < 10 || $0 % 2 == 0 }
            #expect(answers.count == 30)
            let model = try #require(runtime.status().models.first { $0.name == "model_node" })
            #expect(model.inferredAhead >= 5, "\(model.inferredAhead) answered ahead while the calls came in a row")
            // At most the frames in flight when the calls stopped coming in a row (four, for this one file).
            #expect(model.wastedAhead <= 4, "\(model.wastedAhead) frames run ahead for nothing")
            #expect(model.inferences <= 30 + 4, "\(model.inferences) inferences for 30 calls")
            #expect(answers.values.allSatisfy { $0.contains { $0.classId == 1 && $0.score >= 0.5 } })
        }
    }
}
