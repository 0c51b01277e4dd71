import Foundation
import Logging
import Testing
import VantageApp
import VantageCore
import VantageInference
import VantageProtocol

@testable import VantageMedia
@testable import VantageRuntime

/// A Panorama model with a fixed batch of 4 (a pose estimator fed 4 person crops), loaded the way the runtime loads
/// a Python application's models: it loads, warms up without a frame, answers arrays of batch 4, and answers a frame
/// with a clear error while the service keeps running.
@Suite("Model service: models called only with arrays")
struct ModelServiceBatchTests {
    static let logger = Logger(label: "vantage.runtime.tests", factory: { _ in SwiftLogNoOpLogHandler() })

    /// An OpenVINO IR model with one f32 input `x` of shape [4,3,16,12] and one output `means` [4,3]: the mean of
    /// each image's channel.
    static func writeBatchModel(in folder: URL) throws -> URL {
        let input = "<dim>4</dim><dim>3</dim><dim>16</dim><dim>12</dim>"
        let output = "<dim>4</dim><dim>3</dim>"
        var axes = Data()
        for axis: Int64 in [2, 3] { withUnsafeBytes(of: axis.littleEndian) { axes.append(contentsOf: $0) } }
        let xml = """
            <?xml version="1.0"?>
            <net name="batch_model" version="11">
              <layers>
                <layer id="0" name="x" type="Parameter" version="opset1">
                  <data shape="4,3,16,12" element_type="f32"/>
                  <output><port id="0" precision="FP32" names="x">\(input)</port></output>
                </layer>
                <layer id="1" name="axes" type="Const" version="opset1">
                  <data element_type="i64" shape="2" offset="0" size="16"/>
                  <output><port id="0" precision="I64"><dim>2</dim></port></output>
                </layer>
                <layer id="2" name="mean" type="ReduceMean" version="opset1">
                  <data keep_dims="false"/>
                  <input><port id="0" precision="FP32">\(input)</port><port id="1" precision="I64"><dim>2</dim></port></input>
                  <output><port id="2" precision="FP32" names="means">\(output)</port></output>
                </layer>
                <layer id="3" name="result" type="Result" version="opset1">
                  <input><port id="0" precision="FP32">\(output)</port></input>
                </layer>
              </layers>
              <edges>
                <edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>
                <edge from-layer="1" from-port="0" to-layer="2" to-port="1"/>
                <edge from-layer="2" from-port="2" to-layer="3" to-port="0"/>
              </edges>
            </net>
            """
        let file = folder.appendingPathComponent("model.xml")
        try Data(xml.utf8).write(to: file)
        try axes.write(to: folder.appendingPathComponent("model.bin"))
        return file
    }

    /// The service of a Python application with one model node, `pose_model`, declared as Panorama declares it.
    static func service(in folder: URL) throws -> ModelService {
        let file = try writeBatchModel(in: folder)
        let descriptor = ModelDescriptor(framework: "PYTORCH", inputs: [.init(name: "x", shape: [4, 3, 16, 12])])
        let node = ModelNode(
            name: "pose_model", packageDirectory: folder, descriptor: descriptor,
            spec: ModelSpec.inferred(from: descriptor, file: "model.xml"), modelFile: file)
        return try ModelService(
            models: [node], cacheDirectory: nil, hint: .latency, tensorsFromDescriptors: true, logger: logger)
    }

    /// Calls `pose_model` with 4 images whose channel c of image b averages to 10b + c; returns the output tensor's
    /// name, shape and values as the application receives them.
    static func callWithBatch(_ service: ModelService) async throws -> (name: String, shape: [Int], values: [Float]) {
        var pixels: [Float] = []
        for b in 0..<4 {
            for c in 0..<3 {
                for _ in 0..<16 {
                    for w in 0..<12 { pixels.append(Float(10 * b + c) + Float(w) - 5.5) }
                }
            }
        }
        // As in the tensor arena: memory the call reads until it returns.
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: pixels.count * 4, alignment: 64)
        defer { memory.deallocate() }
        pixels.withUnsafeBytes { memory.copyMemory(from: $0) }
        let input = TensorInput(
            name: "x", shape: [4, 3, 16, 12], elementType: .f32, data: UnsafeRawBufferPointer(memory))
        var writer = WireWriter()
        try await service.inferTensors("pose_model", inputs: [input], wants: [.tensors], into: &writer)
        return try writer.bytes.withUnsafeBytes { raw in
            var reader = WireReader(raw)
            #expect(try reader.u32() == 0, "no detections")
            #expect(try reader.u32() == 0, "no classes")
            #expect(try reader.u32() == 1, "one output tensor")
            let name = try reader.string()
            #expect(try reader.u8() == TensorElementType(name: "f32")?.rawValue)
            let rank = Int(try reader.u8())
            var shape: [Int] = []
            for _ in 0..<rank { shape.append(Int(try reader.i64())) }
            let bytes = try reader.blob()
            return (name, shape, Array(bytes.bindMemory(to: Float.self)))
        }
    }

    static func expectBatchOutput(_ output: (name: String, shape: [Int], values: [Float])) {
        #expect(output.name == "means")
        #expect(output.shape == [4, 3])
        let expected = (0..<4).flatMap { b in (0..<3).map { c in Float(10 * b + c) } }
        #expect(output.values.count == expected.count)
        for (value, wanted) in zip(output.values, expected) { #expect(abs(value - wanted) < 1e-4, "\(output.values)") }
    }

    @Test("A batch-4 model loads and warms up as the runtime does, and an array of batch 4 gives outputs of batch 4")
    func loadsWarmsUpAndRunsArrays() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-batch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let service = try Self.service(in: folder)
        let entry = try #require(service.entries["pose_model"])
        #expect(entry.model.frameInputError != nil)

        // Warm-up (with and without the Python application's tensors) feeds no frame and runs every request once.
        await service.warmUp(tensors: true)
        await service.warmUp(tensors: false)
        #expect(service.configs.map(\.name) == ["pose_model"])

        Self.expectBatchOutput(try await Self.callWithBatch(service))
        Self.expectBatchOutput(try await Self.callWithBatch(service))
        #expect(entry.inferences.load(ordering: .relaxed) == 2, "warm-up is not counted, calls are")
    }

    @Test("A frame fed to a batch-4 model is answered with the clear error, and the next array call still runs")
    func frameGetsAClearError() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-batch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let service = try Self.service(in: folder)
        await service.warmUp(tensors: true)

        // A camera that was never started: the model refuses the frame before reading any pixel of it.
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 64)
        defer { memory.deallocate() }
        let camera = CameraStream(
            source: StreamSource(name: "Camera_1", url: "file:///nonexistent.mp4"),
            storage: FrameStorage(base: memory.baseAddress!, slotCount: 1, slotCapacity: 4096, owner: nil),
            logger: Self.logger)

        for attempt in ["a code node's call(media)", "an analytics node's detector"] {
            do {
                if attempt.hasPrefix("a code node") {
                    var writer = WireWriter()
                    try await service.inferFrame(
                        "pose_model", camera: camera,
                        frame: FrameInfo(
                            sequence: 1, slot: 0, width: 16, height: 12, stride: 64, timestampMicros: 0,
                            decodedAtNanos: 0),
                        wants: [.tensors], into: &writer)
                } else {
                    _ = try await service.detect("pose_model", camera: camera, slot: 0) { $0.count }
                }
                Issue.record("\(attempt): a frame was fed to a model with a fixed batch of 4")
            } catch {
                let text = "\(error)"
                #expect(text.contains("model 'pose_model'"), "\(attempt): \(text)")
                #expect(text.contains("input 'x' has a fixed batch of 4 [4,3,16,12]"), "\(attempt): \(text)")
                #expect(text.contains("call the model with arrays of that shape"), "\(attempt): \(text)")
                #expect(!(error is RemoteError), "the model's own error, sent back as an inference error")
            }
            Self.expectBatchOutput(try await Self.callWithBatch(service))
        }
    }
}
