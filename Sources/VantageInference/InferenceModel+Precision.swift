import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension InferenceModel {
    /// The precision a model runs in: `INT8` when the file is quantized (OpenVINO IR with `FakeQuantize`
    /// operations, as `vantage models optimize` writes it, or ONNX with `QuantizeLinear`/`QLinear…` operators),
    /// otherwise the precision OpenVINO compiled its floating-point layers for: `FP32`, `BF16` (the CPU plugin's
    /// default on CPUs with AVX512-BF16 or AMX), `FP16`. Reads the model file (the `.xml` of an IR model, not its
    /// weights) once, at load.
    static func precision(file: URL, format: ModelFormat, compiled: OpenVINOCompiledModel?) -> String {
        if isQuantized(file: file, format: format) { return "INT8" }
        switch compiled?.property("INFERENCE_PRECISION_HINT")?.lowercased() {
        case "bf16": return "BF16"
        case "f16": return "FP16"
        case "f32", nil: return "FP32"
        case let other?: return other.uppercased()
        }
    }

    /// Whether the model file holds quantized operations. OpenVINO IR: a layer of type `FakeQuantize` (NNCF's
    /// post-training quantization writes them around every quantized layer); ONNX: QDQ or QLinear operators.
    static func isQuantized(file: URL, format: ModelFormat) -> Bool {
        let markers: [String]
        switch format {
        case .openvino: markers = ["type=\"FakeQuantize\""]
        case .onnx: markers = ["QuantizeLinear", "QLinearConv", "QLinearMatMul"]
        default: return false
        }
        guard let data = try? Data(contentsOf: file, options: .alwaysMapped) else { return false }
        return data.withUnsafeBytes { bytes in
            markers.contains { contains(bytes, Array($0.utf8)) }
        }
    }

    /// Whether `needle` occurs in `haystack`: memchr for its first byte, memcmp for the rest (Glibc's memmem is not
    /// visible from Swift).
    private static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard let base = haystack.baseAddress, let first = needle.first, haystack.count >= needle.count else {
            return false
        }
        var offset = 0
        let last = haystack.count - needle.count
        while offset <= last {
            guard let hit = memchr(base + offset, Int32(first), last - offset + 1) else { return false }
            let position = base.distance(to: UnsafeRawPointer(hit))
            if needle.withUnsafeBytes({ memcmp(base + position, $0.baseAddress!, needle.count) }) == 0 { return true }
            offset = position + 1
        }
        return false
    }
}
