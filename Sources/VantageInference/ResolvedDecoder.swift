import VantageCore

/// A descriptor's decoder with its output names looked up in the model, once, at load: a wrong name fails the load
/// with the list of real outputs instead of failing every frame.
enum ResolvedDecoder: Sendable {
    case ssd(boxes: Int, classes: Int, scores: Int, count: Int?, minScore: Float)
    case yolo(output: Int, version: YOLODecoder.Version?, minScore: Float, iouThreshold: Float)
    case classification(output: Int, topK: Int, softmax: Bool, minScore: Float)
    case raw

    /// Each output found by a name other than the one OpenVINO reports first is renamed to it in `outputs`: a
    /// TensorFlow output is better known as `detection_boxes:0` than as `Postprocessor/…/TensorArrayGatherV3:0`.
    init(
        _ spec: DecoderSpec, outputs: inout [PortInfo], model: OpenVINOModel, _ fail: ModelErrorContext
    ) throws(ModelError) {
        let outputList = quotedList(outputs.map { "\($0.name) \(describe($0.dimensions))" })

        /// The index of the output the descriptor names in `field`, or of the first default name the model has.
        func output(_ field: String, named: String?, defaults: [String], required: Bool = true) throws(ModelError)
            -> Int?
        {
            if let named {
                guard let index = model.outputIndex(named: named, among: outputs) else {
                    throw fail(
                        .unknownOutput,
                        "decoder.\(field) names output '\(named)', which the model does not have; its outputs are "
                            + "\(outputList): set vantage.decoder.\(field) to one of these")
                }
                outputs[index].name = named
                return index
            }
            for name in defaults {
                if let index = model.outputIndex(named: name, among: outputs) {
                    outputs[index].name = name
                    return index
                }
            }
            guard !required else {
                throw fail(
                    .unknownOutput,
                    "the \(spec.type.rawValue) decoder looks for output '\(defaults[0])', which the model does not "
                        + "have; its outputs are \(outputList): set vantage.decoder.\(field) to the right one")
            }
            return nil
        }

        switch spec.type {
        case .raw:
            self = .raw
        case .ssd:
            // TensorFlow names carry `:0`; ONNX and IR exports of the same models usually drop it.
            let boxes = try output("boxes", named: spec.boxes, defaults: ["detection_boxes:0", "detection_boxes"])!
            let classes = try output(
                "classes", named: spec.classes, defaults: ["detection_classes:0", "detection_classes"])!
            let scores = try output(
                "scores", named: spec.scores, defaults: ["detection_scores:0", "detection_scores"])!
            let count = try output(
                "count", named: spec.count, defaults: ["num_detections:0", "num_detections"], required: false)
            self = .ssd(boxes: boxes, classes: classes, scores: scores, count: count, minScore: spec.minScore ?? 0.25)
        case .yolo:
            let index = try output("output", named: spec.output, defaults: outputs.first.map { [$0.name] } ?? [])!
            var version: YOLODecoder.Version?
            if let named = spec.version {
                guard let parsed = YOLODecoder.Version(rawValue: named.lowercased()) else {
                    throw fail(
                        .invalidDescriptor,
                        "decoder.version '\(named)' is not supported: use \"v5\" ([1, N, 5 + classes]) or \"v8\" "
                            + "([1, 4 + classes, N]), or remove it to tell them apart by shape")
                }
                version = parsed
            }
            if let shape = outputs[index].staticShape {
                let effective = version ?? YOLODecoder.version(forShape: shape)
                guard let effective, YOLODecoder.accepts(shape: shape, version: effective) else {
                    throw fail(
                        .shapeMismatch,
                        "the yolo decoder cannot read output '\(outputs[index].name)' of shape \(describe(shape)): it "
                            + "expects [1, N, 5 + classes] (v5) or [1, 4 + classes, N] (v8); set decoder.output to the "
                            + "detection output, or use decoder type \"raw\"")
                }
            }
            self = .yolo(
                output: index, version: version, minScore: spec.minScore ?? 0.25,
                iouThreshold: spec.iouThreshold ?? 0.45)
        case .classification:
            let index = try output("output", named: spec.output, defaults: outputs.first.map { [$0.name] } ?? [])!
            let topK = spec.topK ?? 5
            guard topK > 0 else {
                throw fail(.invalidDescriptor, "decoder.topK is \(topK): it must be at least 1")
            }
            self = .classification(
                output: index, topK: topK, softmax: spec.softmax ?? false, minScore: spec.minScore ?? 0)
        }
    }
}
