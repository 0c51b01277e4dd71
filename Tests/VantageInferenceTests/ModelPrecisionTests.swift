import Foundation
import Testing
import VantageCore
import VantageInference

/// `InferenceModel.precision`, which the runtime logs when a model is ready (`precision=INT8`): INT8 for a quantized
/// file, else what OpenVINO compiled the floating-point layers for. The quantized model is written here (one
/// FakeQuantize layer, as NNCF puts around each quantized layer); the real NNCF output is checked end to end in
/// Tests/EndToEndTests/ModelOptimizeTests.swift.
@Suite("Model precision")
struct ModelPrecisionTests {
    /// An OpenVINO IR model taking `[1, 3, 4, 4]` f32 frames (NCHW) through one FakeQuantize layer (256 levels over
    /// 0–255) when `quantized`, else through a ReLU.
    static func writeModel(quantized: Bool, in folder: URL) throws -> URL {
        let dims = "<dim>1</dim><dim>3</dim><dim>4</dim><dim>4</dim>"
        var weights = Data()
        for value: Float in [0, 255, 0, 255] { withUnsafeBytes(of: value) { weights.append(contentsOf: $0) } }
        let constants = (0..<4).map { i in
            """
            <layer id="\(i + 2)" name="limit\(i)" type="Const" version="opset1">
              <data element_type="f32" shape="" offset="\(i * 4)" size="4"/>
              <output><port id="0" precision="FP32"/></output>
            </layer>
            """
        }.joined(separator: "\n")
        let middle =
            quantized
            ? """
            <layer id="1" name="fq" type="FakeQuantize" version="opset1">
              <data levels="256" auto_broadcast="numpy"/>
              <input><port id="0" precision="FP32">\(dims)</port><port id="1" precision="FP32"/>
                <port id="2" precision="FP32"/><port id="3" precision="FP32"/><port id="4" precision="FP32"/></input>
              <output><port id="5" precision="FP32" names="y">\(dims)</port></output>
            </layer>
            \(constants)
            """
            : """
            <layer id="1" name="relu" type="ReLU" version="opset1">
              <input><port id="0" precision="FP32">\(dims)</port></input>
              <output><port id="1" precision="FP32" names="y">\(dims)</port></output>
            </layer>
            """
        let edges =
            quantized
            ? (0..<4).map { "<edge from-layer=\"\($0 + 2)\" from-port=\"0\" to-layer=\"1\" to-port=\"\($0 + 1)\"/>" }
                .joined(separator: "\n") + "\n<edge from-layer=\"1\" from-port=\"5\" to-layer=\"9\" to-port=\"0\"/>"
            : "<edge from-layer=\"1\" from-port=\"1\" to-layer=\"9\" to-port=\"0\"/>"
        let xml = """
            <?xml version="1.0"?>
            <net name="precision" version="11">
              <layers>
                <layer id="0" name="x" type="Parameter" version="opset1">
                  <data shape="1,3,4,4" element_type="f32"/>
                  <output><port id="0" precision="FP32" names="x">\(dims)</port></output>
                </layer>
                \(middle)
                <layer id="9" name="result" type="Result" version="opset1">
                  <input><port id="0" precision="FP32">\(dims)</port></input>
                </layer>
              </layers>
              <edges>
                <edge from-layer="0" from-port="0" to-layer="1" to-port="0"/>
                \(edges)
              </edges>
            </net>
            """
        let file = folder.appendingPathComponent(quantized ? "int8.xml" : "fp32.xml")
        try Data(xml.utf8).write(to: file)
        try weights.write(to: file.deletingPathExtension().appendingPathExtension("bin"))
        return file
    }

    static func load(_ file: URL) async throws -> InferenceModel {
        try await InferenceModel.load(
            name: "m", spec: ModelSpec(file: file.path, inputs: [ModelInputSpec(name: "x")]), file: file,
            cacheDirectory: nil, logger: Fixtures.logger)
    }

    @Test("a model file with FakeQuantize operations runs as INT8; the same model without them does not")
    func fakeQuantizeIsINT8() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let int8 = try await Self.load(Self.writeModel(quantized: true, in: folder))
        #expect(int8.precision == "INT8")
        let plain = try await Self.load(Self.writeModel(quantized: false, in: folder))
        #expect(["FP32", "BF16", "FP16"].contains(plain.precision), "\(plain.precision)")
    }

    @Test(
        "the SSDLite detector (FP32 file) runs in FP32, or BF16 where the CPU has BF16 instructions",
        .enabled(if: Fixtures.hasSSDLite, "needs scripts/setup (the SSDLite model and sample video)"))
    func floatModel() async throws {
        let model = try await Fixtures.sharedSSDLite()
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let bf16 = flags.contains("avx512_bf16") || flags.contains("amx_bf16")
        #expect(model.precision == (bf16 ? "BF16" : "FP32"), "\(model.precision)")
    }

    @Test(
        "a model compiled unpinned (one camera) is not pinned to cores and finds the same people as the pinned one",
        .enabled(if: Fixtures.hasSSDLite, "needs scripts/setup (the SSDLite model and sample video)"))
    func unpinnedModel() async throws {
        let pinned = try await Fixtures.sharedSSDLite()
        let unpinned = try await InferenceModel.load(
            name: "people_detector", spec: Fixtures.ssdliteSpec(), file: Fixtures.ssdlite, cacheDirectory: nil,
            logger: Fixtures.logger, hint: .latency, pinned: false)
        // Pinned, its threads keep both cores of a small box while the camera's decoder waits (docs/benchmarks.md).
        #expect(!unpinned.pinnedToCores)
        #expect(pinned.pinnedToCores, "OpenVINO's default on Linux is pinned")
        let frame = try Fixtures.frame(at: 3.0)
        let one = try pinned.makeRequest()
        let other = try unpinned.makeRequest()
        try await one.infer(frame)
        try await other.infer(frame)
        let (a, b) = (one.people(), other.people())
        #expect(!a.isEmpty)
        #expect(a.count == b.count, "\(a) against \(b)")
        for (x, y) in zip(a, b) {
            let apart = max(
                abs(x.box.xMin - y.box.xMin), abs(x.box.yMin - y.box.yMin), abs(x.box.xMax - y.box.xMax),
                abs(x.box.yMax - y.box.yMax))
            #expect(apart < 0.01, "\(x.box) against \(y.box)")
        }
    }
}
