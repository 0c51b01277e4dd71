import Foundation
import VantageCore

// Asset descriptors: a code package's `runtimeDescriptor` and a model package's `mlModelDescriptor` with
// Vantage's `vantage` block beside it.

/// A code package's `runtimeDescriptor.entry`, as written.
struct RuntimeEntry: Sendable, Equatable {
    var path: String
    var name: String
    var arguments: [String]
    var environment: [(name: String, value: String)]

    static func == (a: RuntimeEntry, b: RuntimeEntry) -> Bool {
        a.path == b.path && a.name == b.name && a.arguments == b.arguments
            && a.environment.map(\.name) == b.environment.map(\.name)
            && a.environment.map(\.value) == b.environment.map(\.value)
    }

    /// The entry with Panorama's container paths (`/panorama/...`) moved to the package's `src/` folder.
    func entry(sourceDirectory: URL) -> Entry {
        let source = sourceDirectory.path
        func mapped(_ argument: String) -> String {
            if argument == "/panorama" || argument == "/panorama/" { return source }
            if argument.hasPrefix("/panorama/") { return source + "/" + argument.dropFirst("/panorama/".count) }
            return argument
        }
        var arguments = name.isEmpty ? [] : [mapped(name)]
        arguments += self.arguments.map(mapped)
        var environment: [String: String] = [:]
        for variable in self.environment { environment[variable.name] = variable.value }
        return Entry(executable: path, arguments: arguments, environment: environment)
    }
}

enum DescriptorReader {
    /// Reads `{"runtimeDescriptor": {...}}`.
    static func runtime(_ root: SourceJSON, source: DocumentSource, node: String) throws(ManifestError) -> RuntimeEntry
    {
        let top = try ObjectReader(root, source: source, what: "the code descriptor", node: node)
        if top.has("mlModelDescriptor") && !top.has("runtimeDescriptor") {
            throw top.error(
                .invalidValue, key: "mlModelDescriptor",
                "node \"\(node)\" is a code node (business_logic) but its descriptor describes a model",
                hint:
                    "give the code package a descriptor {\"runtimeDescriptor\": {\"envelopeVersion\": \"2021-01-01\", "
                    + "\"entry\": {\"path\": \"python3\", \"name\": \"/panorama/app.py\"}}}, or use an ml_model "
                    + "interface"
            )
        }
        try top.rejectUnknownKeys(["runtimeDescriptor"])
        guard let body = top["runtimeDescriptor"] else {
            throw top.missing(
                "runtimeDescriptor",
                example:
                    "{\"envelopeVersion\": \"2021-01-01\", \"entry\": {\"path\": \"python3\", \"name\": "
                    + "\"/panorama/app.py\"}}"
            )
        }
        let reader = try ObjectReader(body, source: source, what: "runtimeDescriptor", node: node)
        try reader.rejectUnknownKeys(["envelopeVersion", "entry", "events"])
        try reader.envelopeVersion(required: true)
        for (index, value) in try reader.optionalArray("events", example: "[]").enumerated() {
            // Panorama's node events; Vantage does not deliver them, but checks their shape.
            let event = try ObjectReader(value, source: source, what: "runtimeDescriptor.events[\(index)]", node: node)
            try event.rejectUnknownKeys(["type", "handler", "inputs", "description"])
            _ = try event.optionalEnum("type", ["onExit", "onPartialInput", "onCompleteInput"])
        }
        guard let entryValue = reader["entry"] else {
            throw reader.missing("entry", example: "{\"path\": \"python3\", \"name\": \"/panorama/app.py\"}")
        }
        let entry = try ObjectReader(entryValue, source: source, what: "runtimeDescriptor.entry", node: node)
        try entry.rejectUnknownKeys(["path", "name", "arguments", "environment"])
        let path = try entry.requiredString(
            "path", example: "\"python3\" (the program to run; a bare name is looked up beside vantage, then on PATH)")
        guard !path.isEmpty else {
            throw entry.error(
                .invalidValue, at: entry["path"]?.position, key: "path", "entry.path of node \"\(node)\" is empty",
                hint: "set it to the program to run, e.g. \"python3\" or the name of a Swift executable")
        }
        let name = try entry.optionalString("name", example: "\"/panorama/app.py\"") ?? ""
        let arguments = try entry.stringArray("arguments", example: "[\"--verbose\"]") ?? []
        var environment: [(name: String, value: String)] = []
        for (index, value) in try entry.optionalArray(
            "environment", example: "[{\"name\": \"LOG_LEVEL\", \"value\": \"INFO\"}]"
        )
        .enumerated() {
            let variable = try ObjectReader(value, source: source, what: "entry.environment[\(index)]", node: node)
            try variable.rejectUnknownKeys(["name", "value"])
            let variableName = try variable.requiredString("name", example: "\"LOG_LEVEL\"")
            let variableValue = try variable.requiredString("value", example: "\"INFO\"")
            guard !variableName.isEmpty, !variableName.contains("=") else {
                throw variable.error(
                    .invalidName, at: variable["name"]?.position, key: "name",
                    "environment variable name \"\(variableName)\" is not allowed",
                    hint: "use a non-empty name without '=', e.g. \"LOG_LEVEL\"")
            }
            if environment.contains(where: { $0.name == variableName }) {
                throw variable.error(
                    .duplicateName, key: "name", "environment variable \"\(variableName)\" is set twice",
                    hint: "keep one of them")
            }
            environment.append((variableName, variableValue))
        }
        return RuntimeEntry(path: path, name: name, arguments: arguments, environment: environment)
    }

    static func vantageExample(inputName: String) -> String {
        "\"vantage\": {\"file\": \"models/model.onnx\", \"inputs\": [{\"name\": \"\(inputName)\", \"width\": 300, "
            + "\"height\": 300}], \"decoder\": {\"type\": \"ssd\", \"labels\": [\"background\", \"person\"]}}"
    }

    /// Reads `{"mlModelDescriptor": {...}, "vantage": {...}}`.
    /// Without a `vantage` block the spec is nil and the error to report (unless `--model` supplies the file)
    /// comes third.
    static func model(_ root: SourceJSON, source: DocumentSource, node: String) throws(ManifestError) -> (
        ModelDescriptor, ModelSpec?, ManifestError?
    ) {
        let top = try ObjectReader(root, source: source, what: "the model descriptor", node: node)
        if top.has("runtimeDescriptor") && !top.has("mlModelDescriptor") {
            throw top.error(
                .invalidValue, key: "runtimeDescriptor",
                "node \"\(node)\" is a model node (ml_model) but its descriptor describes code",
                hint: "give the model package a descriptor with \"mlModelDescriptor\" and \"vantage\", or use a "
                    + "business_logic interface")
        }
        try top.rejectUnknownKeys(["mlModelDescriptor", "vantage"])
        guard let body = top["mlModelDescriptor"] else {
            throw top.missing(
                "mlModelDescriptor",
                example: "{\"envelopeVersion\": \"2021-01-01\", \"framework\": \"TENSORFLOW\", \"inputs\": "
                    + "[{\"name\": \"image_tensor:0\", \"shape\": [1, 300, 300, 3]}]}")
        }
        let reader = try ObjectReader(body, source: source, what: "mlModelDescriptor", node: node)
        try reader.rejectUnknownKeys(["envelopeVersion", "framework", "frameworkVersion", "precisionMode", "inputs"])
        try reader.envelopeVersion(required: true)
        guard reader.has("framework") else { throw reader.missing("framework", example: "\"TENSORFLOW\"") }
        let framework = try reader.optionalEnum("framework", ["TENSORFLOW", "PYTORCH", "MXNET"])!
        let frameworkVersion = try reader.optionalString("frameworkVersion", example: "\"1.15\"")
        let precisionMode = try reader.optionalEnum("precisionMode", ["FP32", "FP16"])
        var inputs: [ModelDescriptor.Input] = []
        let inputValues = try reader.requiredArray(
            "inputs", example: "[{\"name\": \"data\", \"shape\": [1, 3, 224, 224]}]")
        for (index, value) in inputValues.enumerated() {
            let input = try ObjectReader(value, source: source, what: "mlModelDescriptor.inputs[\(index)]", node: node)
            try input.rejectUnknownKeys(["name", "shape", "type"])
            let name = try input.requiredString("name", example: "\"data\"")
            guard let shapeValue = input["shape"] else { throw input.missing("shape", example: "[1, 3, 224, 224]") }
            guard case .array(let dims) = shapeValue.kind else {
                throw input.wrongType(
                    "shape", shapeValue, expected: "a list of whole numbers", example: "[1, 3, 224, 224]")
            }
            var shape: [Int] = []
            for dim in dims {
                guard let int = dim.integerValue else {
                    throw input.wrongType(
                        "shape", dim, expected: "a list of whole numbers", example: "[1, 3, 224, 224]")
                }
                shape.append(int)
            }
            let type = try input.optionalEnum(
                "type", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "float16", "float32", "float64"])
            inputs.append(ModelDescriptor.Input(name: name, shape: shape, type: type))
        }
        let descriptor = ModelDescriptor(
            framework: framework, frameworkVersion: frameworkVersion, precisionMode: precisionMode, inputs: inputs)
        guard let vantage = top["vantage"] else {
            let expects = inputs.map { "\"\($0.name)\" \($0.shape)" }.joined(separator: ", ")
            let missing = top.error(
                .missingModelSpec, key: "vantage",
                "the descriptor of model node \"\(node)\" has no \"vantage\" block, so Vantage does not know which "
                    + "model file to load (Panorama compiled a SageMaker Neo archive, which runs nowhere else; the code "
                    + "calls the model with \(expects))",
                hint: "supply the model as ONNX, TensorFlow (.pb), TFLite or OpenVINO IR (.xml): run with --model "
                    + "\(node)=PATH, or convert the project once with vantage app import-panorama DIR --model "
                    + "\(node)=PATH, or add beside \"mlModelDescriptor\": "
                    + vantageExample(inputName: inputs.first?.name ?? "input"))
            return (descriptor, nil, missing)
        }
        return (descriptor, try spec(vantage, source: source, node: node), nil)
    }

    /// Reads the `vantage` block strictly and builds a `ModelSpec` from it.
    static func spec(_ value: SourceJSON, source: DocumentSource, node: String) throws(ManifestError) -> ModelSpec {
        let reader = try ObjectReader(value, source: source, what: "the vantage block", node: node)
        try reader.rejectUnknownKeys(["file", "format", "device", "inputs", "decoder"])
        let file = try reader.requiredString("file", example: "\"models/model.onnx\" (relative to the project folder)")
        guard !file.isEmpty else {
            throw reader.error(
                .invalidValue, at: reader["file"]?.position, key: "file",
                "vantage.file of model node \"\(node)\" is empty",
                hint: "set it to the model file, relative to the project folder, e.g. \"models/model.onnx\"")
        }
        // Values (format, layout, colour order, element type, device) are checked by the inference module, which
        // knows what the model and the device support; here only the block's shape is.
        let format = try reader.optionalString("format", example: "\"onnx\"")
        let device = try reader.optionalString("device", example: "\"CPU\"")
        var inputs: [ModelInputSpec] = []
        for (index, item) in try reader.optionalArray("inputs", example: "[{\"name\": \"images\"}]").enumerated() {
            let input = try ObjectReader(item, source: source, what: "vantage.inputs[\(index)]", node: node)
            try input.rejectUnknownKeys([
                "name", "layout", "elementType", "colorOrder", "width", "height", "mean", "scale",
            ])
            let mean = try floats(input, "mean")
            let scale = try floats(input, "scale")
            inputs.append(
                ModelInputSpec(
                    name: try input.requiredString("name", example: "\"image_tensor:0\""),
                    layout: try input.optionalString("layout", example: "\"NHWC\""),
                    elementType: try input.optionalString("elementType", example: "\"u8\""),
                    colorOrder: try input.optionalString("colorOrder", example: "\"RGB\""),
                    width: try input.optionalInt("width", example: "300", range: 1...65536),
                    height: try input.optionalInt("height", example: "300", range: 1...65536),
                    mean: mean, scale: scale))
        }
        var decoder = DecoderSpec(type: .raw)
        if let decoderValue = reader["decoder"] {
            let d = try ObjectReader(decoderValue, source: source, what: "vantage.decoder", node: node)
            try d.rejectUnknownKeys([
                "type", "labels", "minScore", "boxes", "classes", "scores", "count", "output", "version",
                "iouThreshold", "topK", "softmax",
            ])
            guard d.has("type") else { throw d.missing("type", example: "\"ssd\"") }
            let type = DecoderSpec.Kind(
                rawValue: try d.optionalEnum("type", DecoderSpec.Kind.allCases.map(\.rawValue))!)!
            decoder = DecoderSpec(
                type: type, labels: try d.stringArray("labels", example: "[\"background\", \"person\"]"),
                minScore: try d.optionalDouble("minScore", example: "0.5").map(Float.init),
                boxes: try d.optionalString("boxes", example: "\"detection_boxes:0\""),
                classes: try d.optionalString("classes", example: "\"detection_classes:0\""),
                scores: try d.optionalString("scores", example: "\"detection_scores:0\""),
                count: try d.optionalString("count", example: "\"num_detections:0\""),
                output: try d.optionalString("output", example: "\"output0\""),
                version: try d.optionalString("version", example: "\"v8\""),
                iouThreshold: try d.optionalDouble("iouThreshold", example: "0.45").map(Float.init),
                topK: try d.optionalInt("topK", example: "5", range: 1...100_000),
                softmax: try d.optionalBool("softmax"))
        }
        return ModelSpec(file: file, format: format, device: device, inputs: inputs, decoder: decoder)
    }

    private static func floats(_ reader: ObjectReader, _ key: String) throws(ManifestError) -> [Float]? {
        guard let value = reader[key] else { return nil }
        guard case .array(let items) = value.kind else {
            throw reader.wrongType(key, value, expected: "a list of numbers", example: "[127.5, 127.5, 127.5]")
        }
        var result: [Float] = []
        for item in items {
            guard case .number(_, _, let double) = item.kind else {
                throw reader.wrongType(key, item, expected: "a list of numbers", example: "[127.5, 127.5, 127.5]")
            }
            result.append(Float(double))
        }
        return result
    }
}
