import Foundation
import Testing
import VantageCore
import VantageInference

/// What a user sees when a model or its descriptor is wrong: every message names the model and the file, says what
/// is wrong and what to change.
@Suite("Model errors tell what is wrong and what to change")
struct ModelErrorTests {
    /// Loads and returns the error, failing the test when loading works.
    func loadError(
        _ spec: ModelSpec, file: URL, name: String = "people_detector",
        sourceLocation: SourceLocation = #_sourceLocation
    ) async -> ModelError? {
        do {
            _ = try await InferenceModel.load(
                name: name, spec: spec, file: file, cacheDirectory: nil, logger: Fixtures.logger)
            Issue.record("loading \(file.lastPathComponent) worked", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    func expectNamesModelAndFile(_ error: ModelError, _ file: URL, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(error.description.contains("'people_detector'"), sourceLocation: sourceLocation)
        #expect(error.description.contains(file.path), sourceLocation: sourceLocation)
    }

    @Test("A missing model file")
    func missingFile() async throws {
        let file = URL(fileURLWithPath: "/nonexistent/models/ssdlite.pb")
        let error = try #require(await loadError(ModelSpec(file: "models/ssdlite.pb"), file: file))
        #expect(error.code == .fileMissing)
        expectNamesModelAndFile(error, file)
        #expect(error.description.contains("does not exist"))
        #expect(error.description.contains("vantage.file"))
    }

    @Test("An OpenVINO IR model without its .bin")
    func missingWeights() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("model.xml")
        try Data("<net/>".utf8).write(to: file)
        let error = try #require(await loadError(ModelSpec(file: "model.xml"), file: file))
        #expect(error.code == .fileMissing)
        expectNamesModelAndFile(error, file)
        #expect(error.description.contains("model.bin"))
    }

    @Test("A corrupt model file", arguments: ["onnx", "pb", "tflite"])
    func corruptFile(extension ext: String) async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("model.\(ext)")
        var generator = SystemRandomNumberGenerator()
        try Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: file)

        let error = try #require(await loadError(ModelSpec(file: "model.\(ext)"), file: file))
        #expect(error.code == .unreadableModel)
        expectNamesModelAndFile(error, file)
        #expect(error.description.contains("corrupt"))
        #expect(error.description.contains("re-export or re-download"))
        #expect(error.openVINOMessage?.isEmpty == false, "OpenVINO's own message is kept")
    }

    @Test("A file in a format OpenVINO does not read")
    func unsupportedExtension() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("model.caffemodel")
        try Data([1, 2, 3]).write(to: file)

        let error = try #require(await loadError(ModelSpec(file: "model.caffemodel"), file: file))
        #expect(error.code == .unsupportedFormat)
        expectNamesModelAndFile(error, file)
        for format in ["ONNX (.onnx)", "TensorFlow frozen graph (.pb)", "TensorFlow Lite (.tflite)", "OpenVINO IR"] {
            #expect(error.description.contains(format))
        }
    }

    @Test("A descriptor format that disagrees with the file")
    func formatDisagreesWithExtension() async throws {
        let error = try #require(
            await loadError(ModelSpec(file: "model.pb", format: "onnx"), file: URL(fileURLWithPath: "/models/model.pb"))
        )
        #expect(error.code == .invalidDescriptor)
        #expect(error.description.contains("vantage.format"))
    }

    @Test(
        "A descriptor input name the model does not have",
        .enabled(if: Fixtures.hasSSDLite, "needs .deps/models/ssdlite: run scripts/setup"))
    func unknownInputName() async throws {
        var spec = Fixtures.ssdliteSpec()
        spec.inputs[0].name = "images"
        let error = try #require(await loadError(spec, file: Fixtures.ssdlite))
        #expect(error.code == .unknownInput)
        expectNamesModelAndFile(error, Fixtures.ssdlite)
        #expect(error.description.contains("'images'"))
        #expect(error.description.contains("image_tensor:0"), "the message lists the model's real inputs")
    }

    @Test(
        "A model of dynamic size without width and height",
        .enabled(if: Fixtures.hasSSDLite, "needs .deps/models/ssdlite: run scripts/setup"))
    func dynamicSizeWithoutWidthAndHeight() async throws {
        let spec = ModelSpec(file: "ssdlite.pb", decoder: DecoderSpec(type: .ssd))
        let error = try #require(await loadError(spec, file: Fixtures.ssdlite))
        #expect(error.code == .shapeMismatch)
        expectNamesModelAndFile(error, Fixtures.ssdlite)
        #expect(error.description.contains("dynamic size"))
        #expect(error.description.contains("set width and height"))
    }

    @Test(
        "A decoder output name the model does not have",
        .enabled(if: Fixtures.hasSSDLite, "needs .deps/models/ssdlite: run scripts/setup"))
    func unknownDecoderOutput() async throws {
        let spec = Fixtures.ssdliteSpec(decoder: DecoderSpec(type: .ssd, boxes: "boxes"))
        let error = try #require(await loadError(spec, file: Fixtures.ssdlite))
        #expect(error.code == .unknownOutput)
        expectNamesModelAndFile(error, Fixtures.ssdlite)
        #expect(error.description.contains("'boxes'"))
        #expect(error.description.contains("vantage.decoder.boxes"))
        #expect(error.description.contains("detection_boxes:0 [?,100,4]"), "the message lists the real outputs")
    }

    @Test(
        "A descriptor layout or colour order that does not exist",
        .enabled(if: Fixtures.hasSSDLite, "needs .deps/models/ssdlite: run scripts/setup"))
    func invalidDescriptorValues() async throws {
        var spec = Fixtures.ssdliteSpec()
        spec.inputs[0].colorOrder = "YUV"
        let colour = try #require(await loadError(spec, file: Fixtures.ssdlite))
        #expect(colour.code == .invalidDescriptor)
        #expect(colour.description.contains("\"RGB\" or \"BGR\""))

        spec = Fixtures.ssdliteSpec()
        spec.inputs[0].mean = [1, 2]
        let mean = try #require(await loadError(spec, file: Fixtures.ssdlite))
        #expect(mean.code == .invalidDescriptor)
        #expect(mean.description.contains("three"))
    }

    @Test(
        "A device this machine does not have",
        .enabled(if: Fixtures.hasSSDLite, "needs .deps/models/ssdlite: run scripts/setup"))
    func unavailableDevice() async throws {
        var spec = Fixtures.ssdliteSpec()
        spec.device = "NPU.7"
        let error = try #require(await loadError(spec, file: Fixtures.ssdlite))
        #expect(error.code == .deviceUnavailable)
        expectNamesModelAndFile(error, Fixtures.ssdlite)
        #expect(error.description.contains("'NPU.7'"))
        #expect(error.description.contains("CPU"), "the message lists the devices there are")
    }

    @Test(
        "A tensor from the application with the wrong shape or type",
        .enabled(if: Fixtures.hasSSDLite, "needs .deps/models/ssdlite: run scripts/setup"))
    func wrongTensorFromTheApplication() async throws {
        let request = try await Fixtures.sharedSSDLite().makeRequest()
        let rgba = TensorBytes([UInt8](repeating: 0, count: 300 * 300 * 4))
        do {
            try await request.inferTensors([
                TensorInput(name: "image_tensor:0", shape: [1, 300, 300, 4], elementType: .u8, data: rgba.raw)
            ])
            Issue.record("a 4-channel tensor was accepted")
        } catch {
            #expect(error.code == .shapeMismatch)
            #expect(error.description.contains("'people_detector'"))
            #expect(error.description.contains("expects shape [?,?,?,3] but got [1,300,300,4]"))
        }

        let floats = TensorBytes([Float](repeating: 0, count: 300 * 300 * 3))
        do {
            try await request.inferTensors([
                TensorInput(name: "image_tensor:0", shape: [1, 300, 300, 3], elementType: .f32, data: floats.raw)
            ])
            Issue.record("a float tensor was accepted for a u8 input")
        } catch {
            #expect(error.code == .elementTypeMismatch)
            #expect(error.description.contains("takes u8 elements"))
            #expect(error.description.contains("convert the array to u8"))
        }

        let short = TensorBytes([UInt8](repeating: 0, count: 100))
        do {
            try await request.inferTensors([
                TensorInput(name: "image_tensor:0", shape: [1, 300, 300, 3], elementType: .u8, data: short.raw)
            ])
            Issue.record("a tensor with too few bytes was accepted")
        } catch {
            #expect(error.code == .shapeMismatch)
            #expect(error.description.contains("has 100 bytes"))
        }

        do {
            try await request.inferTensors([
                TensorInput(name: "data", shape: [1, 300, 300, 3], elementType: .u8, data: short.raw)
            ])
            Issue.record("a tensor for an unknown input was accepted")
        } catch {
            #expect(error.code == .unknownInput)
            #expect(error.description.contains("image_tensor:0"))
        }

        do {
            try await request.inferTensors([])
            Issue.record("no tensors at all were accepted")
        } catch {
            #expect(error.code == .missingInput)
        }

        // The request still works after refusing bad tensors.
        try await request.infer(try Fixtures.frame(at: 7))
        #expect(!request.people().isEmpty)
    }
}
