import Foundation
import Testing
import VantageCore
import VantageInference

/// The TensorFlow Lite path, with a float model that needs normalisation: BlazeFace full-range (192×192 RGB, input
/// in [-1, 1], 2304 anchors on a 48×48 grid), raw outputs, on a photograph with one face.
@Suite(
    "TFLite face detector (BlazeFace full range)",
    .enabled(
        if: Fixtures.hasBlazeFace,
        "needs .deps/models/face-detection (scripts/setup), opencv-doc's messi5.jpg and ffmpeg"))
struct TFLiteInferenceTests {
    static let spec = ModelSpec(
        file: ".deps/models/face-detection/face_detection_full_range.tflite",
        inputs: [
            ModelInputSpec(
                name: "input", layout: "NHWC", elementType: "f32", colorOrder: "RGB", mean: [127.5], scale: [127.5])
        ])

    /// Loaded once for the suite.
    static let model = Task {
        try await InferenceModel.load(
            name: "face_detector", spec: spec, file: Fixtures.blazeFaceFullRange, cacheDirectory: nil,
            logger: Fixtures.logger)
    }

    static func load() async throws -> InferenceModel { try await model.value }

    /// The most face-like anchor: its probability and where its box centre is, in fractions of the image.
    static func bestFace(_ request: InferenceRequest) throws -> (probability: Float, x: Float, y: Float) {
        let scores = try #require(request.outputs.first { $0.shape == [1, 2304, 1] }?.floats)
        let boxes = try #require(request.outputs.first { $0.shape == [1, 2304, 16] }?.floats)
        let best = try #require(scores.indices.max { scores[$0] < scores[$1] })
        let (row, column) = best.quotientAndRemainder(dividingBy: 48)
        let x = (Float(column) + 0.5) / 48 + boxes[best * 16] / 192
        let y = (Float(row) + 0.5) / 48 + boxes[best * 16 + 1] / 192
        return (1 / (1 + expf(-scores[best])), x, y)
    }

    @Test("Loads, takes 192×192 RGB frames and gives its two outputs")
    func shapes() async throws {
        let model = try await Self.load()
        #expect(model.format == .tflite)
        #expect(model.frameInput == FrameInputFormat(width: 192, height: 192, channelOrder: .rgb))
        #expect(model.inputNames == ["input"])
        #expect(model.outputNames.count == 2)
    }

    @Test("Finds the face in messi5.jpg where it is, and none in a black frame")
    func findsTheFace() async throws {
        let request = try await Self.load().makeRequest()
        request.frameBuffer.copyBytes(from: try Fixtures.image(Fixtures.messi, width: 192, height: 192))
        try await request.inferFrame()
        #expect(request.outputs.map(\.shape).sorted { $0[2] < $1[2] } == [[1, 2304, 1], [1, 2304, 16]])
        let face = try Self.bestFace(request)
        // The face is at about (235, 95) of the 548×342 photograph: (0.43, 0.28).
        #expect(face.probability > 0.5)
        #expect(abs(face.x - 0.43) < 0.05 && abs(face.y - 0.28) < 0.06, "\(face)")

        request.frameBuffer.initializeMemory(as: UInt8.self, repeating: 0)
        try await request.inferFrame()
        #expect(try Self.bestFace(request).probability < 0.5)
    }

    @Test("A float tensor normalised by the application gives what the fused pre-processing gives")
    func applicationTensorMatchesFusedPreprocessing() async throws {
        let request = try await Self.load().makeRequest()
        let pixels = try Fixtures.image(Fixtures.messi, width: 192, height: 192)
        request.frameBuffer.copyBytes(from: pixels)
        try await request.inferFrame()
        let fused = try Self.bestFace(request)

        let normalised = TensorBytes(pixels.map { (Float($0) - 127.5) / 127.5 })
        try await request.inferTensors([
            TensorInput(name: "input", shape: [1, 192, 192, 3], elementType: .f32, data: normalised.raw)
        ])
        let applications = try Self.bestFace(request)
        #expect(abs(fused.probability - applications.probability) < 0.01)
        #expect(abs(fused.x - applications.x) < 0.01 && abs(fused.y - applications.y) < 0.01)

        // NCHW instead of NHWC is refused with both shapes in the message.
        do {
            try await request.inferTensors([
                TensorInput(name: "input", shape: [1, 3, 192, 192], elementType: .f32, data: normalised.raw)
            ])
            Issue.record("an NCHW tensor was accepted for an NHWC input")
        } catch {
            #expect(error.code == .shapeMismatch)
            #expect(error.description.contains("expects shape [1,192,192,3] but got [1,3,192,192]"))
        }
    }
}
