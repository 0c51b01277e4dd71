import Foundation
import Testing
import VantageCore
import VantageInference

/// Tiny OpenVINO IR models written by the tests (`.xml` + `.bin`), whose outputs are their input pixels: they show
/// exactly what the fused pre-processing hands the model and what each decoder makes of it. They need no download.
@Suite("OpenVINO IR models made by the tests")
struct OpenVINOIRTests {
    /// An IR model: one f32 input `pixels` of `inputShape`, and one output `output0`, either the input clamped to a
    /// range it never leaves (an identity), or the input reshaped to `reshape`.
    static func writeModel(inputShape: [Int], reshape: [Int]? = nil, in folder: URL) throws -> URL {
        func dims(_ shape: [Int]) -> String { shape.map { "<dim>\($0)</dim>" }.joined() }
        let input = dims(inputShape)
        let layers: String
        let edges: String
        var weights = Data()
        if let reshape {
            for value in reshape { withUnsafeBytes(of: Int64(value).littleEndian) { weights.append(contentsOf: $0) } }
            layers = """
                <layer id="1" name="target_shape" type="Const" version="opset1">
                  <data element_type="i64" shape="\(reshape.count)" offset="0" size="\(weights.count)"/>
                  <output><port id="0" precision="I64"><dim>\(reshape.count)</dim></port></output>
                </layer>
                <layer id="2" name="reshaped" type="Reshape" version="opset1">
                  <data special_zero="false"/>
                  <input><port id="0" precision="FP32">\(input)</port><port id="1" precision="I64"><dim>\(reshape.count)</dim></port></input>
                  <output><port id="2" precision="FP32" names="output0">\(dims(reshape))</port></output>
                </layer>
                <layer id="3" name="result" type="Result" version="opset1">
                  <input><port id="0" precision="FP32">\(dims(reshape))</port></input>
                </layer>
                """
            edges = """
                <edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>
                <edge from-layer="1" from-port="0" to-layer="2" to-port="1"/>
                <edge from-layer="2" from-port="2" to-layer="3" to-port="0"/>
                """
        } else {
            layers = """
                <layer id="1" name="clamped" type="Clamp" version="opset1">
                  <data min="-100000" max="100000"/>
                  <input><port id="0" precision="FP32">\(input)</port></input>
                  <output><port id="1" precision="FP32" names="output0">\(input)</port></output>
                </layer>
                <layer id="2" name="result" type="Result" version="opset1">
                  <input><port id="0" precision="FP32">\(input)</port></input>
                </layer>
                """
            edges = """
                <edge from-layer="0" from-port="0" to-layer="1" to-port="0"/>
                <edge from-layer="1" from-port="1" to-layer="2" to-port="0"/>
                """
        }
        let xml = """
            <?xml version="1.0"?>
            <net name="test_model" version="11">
              <layers>
                <layer id="0" name="pixels" type="Parameter" version="opset1">
                  <data shape="\(inputShape.map(String.init).joined(separator: ","))" element_type="f32"/>
                  <output><port id="0" precision="FP32" names="pixels">\(input)</port></output>
                </layer>
                \(layers)
              </layers>
              <edges>
                \(edges)
              </edges>
            </net>
            """
        let file = folder.appendingPathComponent("model.xml")
        try Data(xml.utf8).write(to: file)
        try weights.write(to: folder.appendingPathComponent("model.bin"))
        return file
    }

    @Test("An NCHW float model receives (pixel − mean) / scale per channel, in its own layout")
    func preprocessingIntoNCHW() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = try Self.writeModel(inputShape: [1, 3, 2, 4], in: folder)
        let spec = ModelSpec(
            file: "model.xml",
            inputs: [ModelInputSpec(name: "pixels", colorOrder: "BGR", mean: [10, 20, 30], scale: [2, 4, 8])])
        let model = try await InferenceModel.load(
            name: "normaliser", spec: spec, file: file, cacheDirectory: nil, logger: Fixtures.logger)
        #expect(model.format == .openvino)
        #expect(model.frameInput == FrameInputFormat(width: 4, height: 2, channelOrder: .bgr))

        // Packed HWC frame, 4×2: pixel (x, y) has channel values 100 + 10y + x, 150 + …, 200 + ….
        let request = try model.makeRequest()
        var frame: [UInt8] = []
        for y in 0..<2 {
            for x in 0..<4 {
                for c in 0..<3 { frame.append(UInt8(100 + 50 * c + 10 * y + x)) }
            }
        }
        try await request.infer(frame)

        let output = try #require(request.outputs.first?.floats)
        #expect(request.outputs.first?.shape == [1, 3, 2, 4])
        let mean: [Float] = [10, 20, 30]
        let scale: [Float] = [2, 4, 8]
        for c in 0..<3 {
            for y in 0..<2 {
                for x in 0..<4 {
                    let pixel = Float(100 + 50 * c + 10 * y + x)
                    #expect(output[c * 8 + y * 4 + x] == (pixel - mean[c]) / scale[c], "channel \(c) at (\(x), \(y))")
                }
            }
        }
    }

    @Test("A descriptor size that a fixed-size model cannot take")
    func fixedSizeMismatch() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = try Self.writeModel(inputShape: [1, 3, 2, 4], in: folder)
        let spec = ModelSpec(file: "model.xml", inputs: [ModelInputSpec(name: "pixels", width: 300, height: 300)])
        do {
            _ = try await InferenceModel.load(
                name: "normaliser", spec: spec, file: file, cacheDirectory: nil, logger: Fixtures.logger)
            Issue.record("a 300×300 frame size was accepted for a 4×2 model")
        } catch {
            #expect(error.code == .shapeMismatch)
            #expect(error.description.contains("'normaliser'"))
            #expect(error.description.contains("fixed size 4x2"))
            #expect(error.description.contains("set width 4 and height 2"))
        }
    }

    @Test("YOLO v5 output decoded through a request: boxes normalised by the input size, overlaps suppressed")
    func yoloThroughARequest() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        // An NHWC 4×2 input is 24 values, reshaped to 4 anchors × (cx, cy, w, h, objectness, 1 class).
        let file = try Self.writeModel(inputShape: [1, 2, 4, 3], reshape: [1, 4, 6], in: folder)
        let spec = ModelSpec(
            file: "model.xml", inputs: [ModelInputSpec(name: "pixels", layout: "NHWC", scale: [100])],
            decoder: DecoderSpec(type: .yolo, labels: ["thing"], version: "v5"))
        let model = try await InferenceModel.load(
            name: "yolo_like", spec: spec, file: file, cacheDirectory: nil, logger: Fixtures.logger)
        let request = try model.makeRequest()
        // Bytes / 100 (the descriptor's scale) in input pixels of the 4×2 input.
        try await request.infer([
            200, 100, 200, 100, 90, 90,  // A: centre (2, 1), 2×1, score 0.81
            210, 100, 200, 100, 80, 90,  // B: A shifted by 0.1 px, score 0.72: suppressed
            50, 50, 50, 50, 90, 70,  // C: centre (0.5, 0.5), 0.5×0.5, score 0.63
            150, 150, 50, 50, 10, 90,  // D: objectness 0.1: dropped
        ])
        #expect(request.detections.count == 2, "\(request.detections)")
        guard request.detections.count == 2 else { return }
        #expect(abs(request.detections[0].score - 0.81) < 1e-4)
        #expect(approximately(request.detections[0].box, Box(xMin: 0.25, yMin: 0.25, xMax: 0.75, yMax: 0.75)))
        #expect(abs(request.detections[1].score - 0.63) < 1e-4)
        #expect(approximately(request.detections[1].box, Box(xMin: 0.0625, yMin: 0.125, xMax: 0.1875, yMax: 0.375)))
        #expect(model.label(for: request.detections[0].classId) == "thing")
    }

    @Test("Classification through a request: the top classes of the model's scores")
    func classificationThroughARequest() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = try Self.writeModel(inputShape: [1, 2, 4, 3], reshape: [1, 24], in: folder)
        let spec = ModelSpec(
            file: "model.xml", inputs: [ModelInputSpec(name: "pixels", layout: "NHWC")],
            decoder: DecoderSpec(type: .classification, topK: 2))
        let model = try await InferenceModel.load(
            name: "classifier", spec: spec, file: file, cacheDirectory: nil, logger: Fixtures.logger)
        let request = try model.makeRequest()
        var scores = [UInt8](repeating: 1, count: 24)
        scores[17] = 250
        scores[3] = 200
        try await request.infer(scores)
        #expect(
            request.classifications == [
                Classification(classId: 17, score: 250), Classification(classId: 3, score: 200),
            ])
        #expect(request.detections.isEmpty)
    }
}
