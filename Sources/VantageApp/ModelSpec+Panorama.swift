import Foundation
import VantageCore

// A `vantage` block for a Panorama model package, which has only `mlModelDescriptor` (input names and shapes) and a
// SageMaker Neo archive that runs nowhere else: the user supplies the original model file, and the rest is read off
// the descriptor.

extension ModelSpec {
    /// A spec for `file` that feeds each of `descriptor`'s inputs as Panorama described it.
    ///
    /// - The format is left to the loader, which takes it from the file's extension.
    /// - Each input keeps its name. A 4-dimensional shape gives the layout (`NCHW` when the second dimension is 3 and
    ///   the last is not, else `NHWC`) and, when its sizes are positive, the width and height frames are scaled to.
    /// - The decoder is `raw`: a Panorama application calls the model itself and reads the output tensors as they are.
    public static func inferred(from descriptor: ModelDescriptor, file: String) -> ModelSpec {
        let inputs = descriptor.inputs.map { input -> ModelInputSpec in
            var spec = ModelInputSpec(name: input.name)
            let shape = input.shape
            guard shape.count == 4 else { return spec }
            let isNCHW = shape[1] == 3 && shape[3] != 3
            spec.layout = isNCHW ? "NCHW" : "NHWC"
            let (height, width) = isNCHW ? (shape[2], shape[3]) : (shape[1], shape[2])
            if height > 0 && width > 0 {
                spec.width = width
                spec.height = height
            }
            return spec
        }
        return ModelSpec(file: file, inputs: inputs, decoder: DecoderSpec(type: .raw))
    }

    /// The spec as the JSON object written for `"vantage"` in a model descriptor: keys in the order the docs list
    /// them, absent values left out, one key per line and each input on a line of its own. `indent` is put before
    /// every line but the first, so the block can sit inside an indented descriptor; `step` is one more level.
    ///
    /// ```json
    /// {
    ///   "file": "packages/123456789012-model-1.0/model/ssd.onnx",
    ///   "inputs": [
    ///     {"name": "data", "layout": "NCHW", "width": 300, "height": 300}
    ///   ],
    ///   "decoder": {"type": "raw"}
    /// }
    /// ```
    public func vantageBlockJSON(indent: String = "", step: String = "  ") -> String {
        var members: [(String, String)] = [("file", jsonStringLiteral(file))]
        if let format { members.append(("format", jsonStringLiteral(format))) }
        if let device { members.append(("device", jsonStringLiteral(device))) }
        if !inputs.isEmpty {
            let lines = inputs.map { indent + step + step + $0.json }
            members.append(("inputs", "[\n" + lines.joined(separator: ",\n") + "\n" + indent + step + "]"))
        }
        members.append(("decoder", decoder.json))
        let body = members.map { indent + step + jsonStringLiteral($0.0) + ": " + $0.1 }.joined(separator: ",\n")
        return "{\n" + body + "\n" + indent + "}"
    }
}

extension ModelInputSpec {
    /// One line: `{"name": …, "layout": …, …}`.
    fileprivate var json: String {
        var members: [(String, String)] = [("name", jsonStringLiteral(name))]
        if let layout { members.append(("layout", jsonStringLiteral(layout))) }
        if let elementType { members.append(("elementType", jsonStringLiteral(elementType))) }
        if let colorOrder { members.append(("colorOrder", jsonStringLiteral(colorOrder))) }
        if let width { members.append(("width", "\(width)")) }
        if let height { members.append(("height", "\(height)")) }
        if let mean { members.append(("mean", jsonNumbers(mean))) }
        if let scale { members.append(("scale", jsonNumbers(scale))) }
        return jsonObject(members)
    }
}

extension DecoderSpec {
    /// One line: `{"type": …, …}`.
    fileprivate var json: String {
        var members: [(String, String)] = [("type", jsonStringLiteral(type.rawValue))]
        if let labels {
            members.append(("labels", "[" + labels.map { jsonStringLiteral($0) }.joined(separator: ", ") + "]"))
        }
        if let minScore { members.append(("minScore", jsonNumber(minScore))) }
        for (key, value) in [
            ("boxes", boxes), ("classes", classes), ("scores", scores), ("count", count), ("output", output),
            ("version", version),
        ] {
            if let value { members.append((key, jsonStringLiteral(value))) }
        }
        if let iouThreshold { members.append(("iouThreshold", jsonNumber(iouThreshold))) }
        if let topK { members.append(("topK", "\(topK)")) }
        if let softmax { members.append(("softmax", softmax ? "true" : "false")) }
        return jsonObject(members)
    }
}

private func jsonObject(_ members: [(String, String)]) -> String {
    "{" + members.map { jsonStringLiteral($0.0) + ": " + $0.1 }.joined(separator: ", ") + "}"
}

private func jsonNumbers(_ values: [Float]) -> String { "[" + values.map(jsonNumber).joined(separator: ", ") + "]" }

/// The shortest text that reads back as the same `Float`; JSON has no infinity or NaN, so those become 0.
private func jsonNumber(_ value: Float) -> String {
    guard value.isFinite else { return "0" }
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return "\(value)"
}

/// `text` as a JSON string literal. With `htmlSafe`, `<` is written `\u003c`, so the JSON can sit inside an HTML
/// page's `<script>` too.
public func jsonStringLiteral(_ text: String, htmlSafe: Bool = false) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case "<" where htmlSafe: result += "\\u003c"
        case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}
