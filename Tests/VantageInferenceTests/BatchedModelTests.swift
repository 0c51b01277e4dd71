import Foundation
import Testing
import VantageApp
import VantageCore
import VantageInference

/// Models an application calls only with arrays it makes (a pose estimator fed a batch of 4 person crops): they
/// load and run although frames cannot be fed to them, and a frame fed to one gets a clear error instead.
@Suite("Models called only with arrays")
struct BatchedModelTests {
    /// An OpenVINO IR model (`.xml` + `.bin`) with one f32 input `x` of `shape` and one output `means`: the mean over
    /// `axes` (the shape without them), so that each output value is predictable from the input.
    static func writeMeanModel(shape: [Int], axes: [Int], in folder: URL) throws -> URL {
        func dims(_ shape: [Int]) -> String { shape.map { "<dim>\($0)</dim>" }.joined() }
        let output = shape.indices.filter { !axes.contains($0) }.map { shape[$0] }
        var weights = Data()
        for axis in axes { withUnsafeBytes(of: Int64(axis).littleEndian) { weights.append(contentsOf: $0) } }
        let xml = """
            <?xml version="1.0"?>
            <net name="mean_model" version="11">
              <layers>
                <layer id="0" name="x" type="Parameter" version="opset1">
                  <data shape="\(shape.map(String.init).joined(separator: ","))" element_type="f32"/>
                  <output><port id="0" precision="FP32" names="x">\(dims(shape))</port></output>
                </layer>
                <layer id="1" name="axes" type="Const" version="opset1">
                  <data element_type="i64" shape="\(axes.count)" offset="0" size="\(weights.count)"/>
                  <output><port id="0" precision="I64"><dim>\(axes.count)</dim></port></output>
                </layer>
                <layer id="2" name="mean" type="ReduceMean" version="opset1">
                  <data keep_dims="false"/>
                  <input><port id="0" precision="FP32">\(dims(shape))</port><port id="1" precision="I64"><dim>\(axes.count)</dim></port></input>
                  <output><port id="2" precision="FP32" names="means">\(dims(output))</port></output>
                </layer>
                <layer id="3" name="result" type="Result" version="opset1">
                  <input><port id="0" precision="FP32">\(dims(output))</port></input>
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
        try weights.write(to: folder.appendingPathComponent("model.bin"))
        return file
    }

    /// `batch` images of 3×16×12 whose channel `c` of image `b` averages to 10b + c (the pixels vary along each row).
    static func images(batch: Int) -> [Float] {
        var values: [Float] = []
        for b in 0..<batch {
            for c in 0..<3 {
                for _ in 0..<16 {
                    for w in 0..<12 { values.append(Float(10 * b + c) + Float(w) - 5.5) }
                }
            }
        }
        return values
    }

    static func load(shape: [Int], spec: ModelSpec = ModelSpec(file: "model.xml"), in folder: URL) async throws
        -> InferenceModel
    {
        let axes = shape.count == 4 ? [2, 3] : [shape.count - 1]
        let file = try writeMeanModel(shape: shape, axes: axes, in: folder)
        return try await InferenceModel.load(
            name: "pose_estimator", spec: spec, file: file, cacheDirectory: nil, logger: Fixtures.logger)
    }

    /// The first output's values, with its shape.
    static func output(of request: InferenceRequest) throws -> (shape: [Int], values: [Float]) {
        let view = try #require(request.outputs.first)
        return (view.shape, Array(try #require(view.floats)))
    }

    @Test(
        "A model with a fixed batch of 4 loads, and an array of batch 4 gives outputs of batch 4",
        arguments: [false, true])
    func fixedBatchRunsOnArrays(panoramaDescriptor: Bool) async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        // As a Vantage descriptor without inputs would give it, or as `import-panorama` reads it off the
        // mlModelDescriptor (layout NCHW, 12×16).
        let spec =
            panoramaDescriptor
            ? ModelSpec.inferred(
                from: ModelDescriptor(framework: "PYTORCH", inputs: [.init(name: "x", shape: [4, 3, 16, 12])]),
                file: "model.xml")
            : ModelSpec(file: "model.xml")
        let model = try await Self.load(shape: [4, 3, 16, 12], spec: spec, in: folder)
        #expect(model.frameInputError != nil, "frames cannot go to a batch of 4")

        let request = try model.makeRequest()
        let images = TensorBytes(Self.images(batch: 4))
        for _ in 0..<2 {  // the second call reuses the first one's OpenVINO request
            try await request.inferTensors([
                TensorInput(name: "x", shape: [4, 3, 16, 12], elementType: .f32, data: images.raw)
            ])
            let (shape, values) = try Self.output(of: request)
            #expect(shape == [4, 3])
            let expected = (0..<4).flatMap { b in (0..<3).map { c in Float(10 * b + c) } }
            #expect(values.count == 12)
            for (value, wanted) in zip(values, expected) { #expect(abs(value - wanted) < 1e-4, "\(values)") }
        }
    }

    @Test("A frame fed to a batch-4 model gets a clear error, and the request still runs arrays")
    func frameToFixedBatch() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try await Self.load(shape: [4, 3, 16, 12], in: folder)
        let request = try model.makeRequest()
        do {
            try await request.inferFrame()
            Issue.record("a frame was fed to a model with a fixed batch of 4")
        } catch {
            #expect(error.code == .shapeMismatch)
            #expect(error.description.contains("'pose_estimator'"))
            #expect(error.description.contains("input 'x' has a fixed batch of 4 [4,3,16,12]"), "\(error)")
            #expect(error.description.contains("frames are fed one at a time"))
            #expect(error.description.contains("call the model with arrays of that shape"))
            #expect(error.description.contains("re-export it with batch 1 or a dynamic batch"))
            #expect(error.message == model.frameInputError?.message, "the model says the same before any frame")
        }

        let images = TensorBytes(Self.images(batch: 4))
        try await request.inferTensors([
            TensorInput(name: "x", shape: [4, 3, 16, 12], elementType: .f32, data: images.raw)
        ])
        let (shape, values) = try Self.output(of: request)
        #expect(shape == [4, 3])
        #expect(abs(values[11] - 32) < 1e-4, "image 3, channel 2")
    }

    @Test("A model whose input is not an image loads and runs on arrays; a frame gets told why it cannot go there")
    func nonImageInput() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try await Self.load(shape: [4, 8], in: folder)
        let request = try model.makeRequest()
        let error = await #expect(throws: ModelError.self) { try await request.inferFrame() }
        #expect(error?.description.contains("input 'x' has shape [4,8]") == true, "\(String(describing: error))")
        #expect(error?.description.contains("input of 4 dimensions") == true)
        #expect(error?.description.contains("call the model with arrays") == true)
        let rows = TensorBytes((0..<32).map { Float($0) })
        try await request.inferTensors([TensorInput(name: "x", shape: [4, 8], elementType: .f32, data: rows.raw)])
        let (shape, values) = try Self.output(of: request)
        #expect(shape == [4])
        #expect(values == [3.5, 11.5, 19.5, 27.5])
    }

    @Test("A 3-D array sent to a 4-D input of batch 1 gets the batch axis; frames still go to that model")
    func singleImageGetsTheBatchAxis() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try await Self.load(shape: [1, 3, 16, 12], in: folder)
        #expect(model.frameInputError == nil)
        let request = try model.makeRequest()

        // Image 0 of `images`: channel c averages to c.
        let image = TensorBytes(Self.images(batch: 1))
        for shape in [[3, 16, 12], [1, 3, 16, 12]] {
            try await request.inferTensors([TensorInput(name: "x", shape: shape, elementType: .f32, data: image.raw)])
            let (outputShape, values) = try Self.output(of: request)
            #expect(outputShape == [1, 3], "for an array of shape \(shape)")
            #expect(values.count == 3, "\(values)")
            for (c, value) in values.enumerated() { #expect(abs(value - Float(c)) < 1e-4, "\(values)") }
        }

        // The model still takes frames: a frame of 7s averages to 7 in every channel.
        request.frameBuffer.initializeMemory(as: UInt8.self, repeating: 7)
        try await request.inferFrame()
        #expect(try Self.output(of: request).values == [7, 7, 7])
    }

    @Test("An array of the wrong shape is refused with the expected and the given shapes named")
    func wrongShapes() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let batched = try await Self.load(shape: [4, 3, 16, 12], in: folder)
        let otherFolder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: otherFolder) }
        let single = try await Self.load(shape: [1, 3, 16, 12], in: otherFolder)
        let images = TensorBytes(Self.images(batch: 4))

        let cases: [(InferenceModel, [Int], String)] = [
            (batched, [2, 3, 16, 12], "expects shape [4,3,16,12] but got [2,3,16,12]"),
            (batched, [3, 16, 12], "expects shape [4,3,16,12] but got [3,16,12]"),
            (single, [3, 12, 16], "expects shape [1,3,16,12] but got [3,12,16]"),
            (single, [2, 3, 16, 12], "expects shape [1,3,16,12] but got [2,3,16,12]"),
            (single, [1, 1, 3, 16, 12], "expects shape [1,3,16,12] but got [1,1,3,16,12]"),
        ]
        for (model, shape, message) in cases {
            let request = try model.makeRequest()
            let count = shape.reduce(1, *) * 4
            let data = UnsafeRawBufferPointer(rebasing: images.raw[0..<count])
            do {
                try await request.inferTensors([TensorInput(name: "x", shape: shape, elementType: .f32, data: data)])
                Issue.record("an array of shape \(shape) was accepted")
            } catch {
                #expect(error.code == .shapeMismatch)
                #expect(error.description.contains("input 'x' \(message)"), "\(error)")
            }
        }
    }
}
