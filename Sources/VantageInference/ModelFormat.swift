import Foundation

/// A model file format that OpenVINO reads directly, without conversion.
public enum ModelFormat: String, Sendable, CaseIterable, CustomStringConvertible {
    /// ONNX (`.onnx`).
    case onnx
    /// A TensorFlow frozen graph (`.pb`).
    case tensorflow
    /// TensorFlow Lite (`.tflite`).
    case tflite
    /// OpenVINO IR: `.xml` with its weights in a `.bin` of the same name beside it.
    case openvino
    /// PaddlePaddle (`.pdmodel`).
    case paddle

    /// The file extension, without the dot.
    public var fileExtension: String {
        switch self {
        case .onnx: "onnx"
        case .tensorflow: "pb"
        case .tflite: "tflite"
        case .openvino: "xml"
        case .paddle: "pdmodel"
        }
    }

    /// The format's name, e.g. `TensorFlow Lite`.
    public var name: String {
        switch self {
        case .onnx: "ONNX"
        case .tensorflow: "TensorFlow frozen graph"
        case .tflite: "TensorFlow Lite"
        case .openvino: "OpenVINO IR"
        case .paddle: "PaddlePaddle"
        }
    }

    /// The name with the file extension, e.g. `ONNX (.onnx)`.
    public var description: String {
        switch self {
        case .onnx: "ONNX (.onnx)"
        case .tensorflow: "TensorFlow frozen graph (.pb)"
        case .tflite: "TensorFlow Lite (.tflite)"
        case .openvino: "OpenVINO IR (.xml + .bin)"
        case .paddle: "PaddlePaddle (.pdmodel)"
        }
    }

    /// The format a file extension stands for.
    public init?(fileExtension: String) {
        guard let format = Self.allCases.first(where: { $0.fileExtension == fileExtension.lowercased() }) else {
            return nil
        }
        self = format
    }

    /// The format a descriptor's `format` value names (`onnx`, `tensorflow`, `tflite`, `openvino`, `paddle`; also
    /// Panorama's framework names `ONNX`, `TENSORFLOW`, `TFLITE`).
    public init?(descriptorName: String) {
        switch descriptorName.lowercased() {
        case "onnx": self = .onnx
        case "tensorflow", "tf", "pb": self = .tensorflow
        case "tflite", "tensorflow-lite", "tensorflowlite": self = .tflite
        case "openvino", "ir", "xml": self = .openvino
        case "paddle", "paddlepaddle": self = .paddle
        default: return nil
        }
    }

    /// All formats, for messages.
    static var supportedList: String { allCases.map(\.description).joined(separator: ", ") }

    /// Decides a file's format from its extension and the descriptor's `format`, which must agree when both exist.
    static func resolve(file: URL, declared: String?, _ fail: ModelErrorContext) throws(ModelError) -> ModelFormat {
        let ext = file.pathExtension
        let byExtension = ModelFormat(fileExtension: ext)
        guard let declared else {
            guard let byExtension else {
                throw fail(
                    .unsupportedFormat,
                    "cannot tell the model format from the file name (extension '\(ext)'): supported formats are "
                        + "\(supportedList); rename the file or convert the model to one of them")
            }
            return byExtension
        }
        guard let named = ModelFormat(descriptorName: declared) else {
            throw fail(
                .unsupportedFormat,
                "format '\(declared)' is not supported: set vantage.format to one of "
                    + "\(allCases.map(\.rawValue).joined(separator: ", ")) (or remove it to go by the file extension); "
                    + "supported formats are \(supportedList)")
        }
        if let byExtension, byExtension != named {
            throw fail(
                .invalidDescriptor,
                "vantage.format says '\(declared)' but the file's extension is .\(ext) (\(byExtension)): fix "
                    + "vantage.format or the file name")
        }
        return named
    }
}
