import Foundation

/// Vantage's extension of a Panorama model descriptor: how to load the model and turn its tensors into results.
///
/// It lives beside Panorama's `mlModelDescriptor` in a model package's `descriptor.json`, under the key
/// `"vantage"`, so a Panorama descriptor stays valid and a Vantage one stays readable by Panorama tools:
///
/// ```json
/// {"mlModelDescriptor": {"envelopeVersion": "2021-01-01", "framework": "TENSORFLOW",
///                        "inputs": [{"name": "image_tensor:0", "shape": [1, 300, 300, 3]}]},
///  "vantage": {"file": "models/ssdlite.pb",
///              "inputs": [{"name": "image_tensor:0", "layout": "NHWC", "elementType": "u8",
///                          "colorOrder": "RGB", "width": 300, "height": 300}],
///              "decoder": {"type": "ssd", "labels": ["background", "person"]}}}
/// ```
public struct ModelSpec: Sendable, Codable, Equatable {
    /// The model file: `.onnx`, `.pb` (TensorFlow frozen graph), `.tflite` or `.xml` (OpenVINO IR, with its `.bin`
    /// beside it). A relative path is resolved against the application's project folder.
    public var file: String
    /// `onnx`, `tensorflow`, `tflite` or `openvino`; when absent, taken from the file's extension.
    public var format: String?
    /// The OpenVINO device to compile for (`CPU`, `GPU`, `NPU`, `AUTO`). Default `CPU`.
    public var device: String?
    /// How each model input is fed. When empty, the model's single input is fed a frame with default settings.
    public var inputs: [ModelInputSpec]
    /// How outputs become results.
    public var decoder: DecoderSpec

    /// Makes a spec; without `decoder`, outputs are returned raw.
    public init(
        file: String, format: String? = nil, device: String? = nil, inputs: [ModelInputSpec] = [],
        decoder: DecoderSpec = DecoderSpec(type: .raw)
    ) {
        self.file = file
        self.format = format
        self.device = device
        self.inputs = inputs
        self.decoder = decoder
    }

    enum CodingKeys: String, CodingKey { case file, format, device, inputs, decoder }

    /// Reads a spec; `inputs` default to none and `decoder` to `raw`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        file = try c.decode(String.self, forKey: .file)
        format = try c.decodeIfPresent(String.self, forKey: .format)
        device = try c.decodeIfPresent(String.self, forKey: .device)
        inputs = try c.decodeIfPresent([ModelInputSpec].self, forKey: .inputs) ?? []
        self.decoder = try c.decodeIfPresent(DecoderSpec.self, forKey: .decoder) ?? DecoderSpec(type: .raw)
    }
}

/// How one model input is fed from a frame (or checked against a tensor the application sends).
public struct ModelInputSpec: Sendable, Codable, Equatable {
    /// The input's name in the model (for a TensorFlow graph, with its `:0`).
    public var name: String
    /// The model's layout: `NHWC` or `NCHW`. Default `NHWC`.
    public var layout: String?
    /// The element type the model expects: `u8` or `f32`. Default `u8`.
    public var elementType: String?
    /// Channel order the model expects: `RGB` or `BGR`. Default `RGB`.
    public var colorOrder: String?
    /// The size frames are scaled to; required when the model's input size is dynamic.
    public var width: Int?
    /// The height frames are scaled to; see `width`.
    public var height: Int?
    /// Per-channel normalisation, applied as `(pixel - mean) / scale`, in the model's colour order.
    public var mean: [Float]?
    /// Per-channel divisor of the normalisation; see `mean`.
    public var scale: [Float]?

    /// Makes an input spec; unset values take the defaults above.
    public init(
        name: String, layout: String? = nil, elementType: String? = nil, colorOrder: String? = nil,
        width: Int? = nil, height: Int? = nil, mean: [Float]? = nil, scale: [Float]? = nil
    ) {
        self.name = name
        self.layout = layout
        self.elementType = elementType
        self.colorOrder = colorOrder
        self.width = width
        self.height = height
        self.mean = mean
        self.scale = scale
    }
}

/// Which output decoder turns a model's tensors into results, with its settings.
public struct DecoderSpec: Sendable, Codable, Equatable {
    /// The decoders Vantage has.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// TensorFlow object-detection API outputs: boxes `[N,K,4]` (ymin, xmin, ymax, xmax in 0–1),
        /// classes, scores and a count, looked up by name.
        case ssd
        /// YOLO v5 (`[1, N, 5 + classes]`) or v8 (`[1, 4 + classes, N]`) ONNX layouts, with NMS.
        case yolo
        /// Top-k classes of a score vector.
        case classification
        /// The tensors as they are.
        case raw
    }
    /// Which decoder to use.
    public var type: Kind
    /// Class names, indexed by class id (for `ssd`, COCO ids start at 1 = person).
    public var labels: [String]?
    /// Results scoring below this are dropped. Default 0.25 (`ssd`, `yolo`), 0 (`classification`).
    public var minScore: Float?
    /// `ssd` output names. Defaults: `detection_boxes:0`, `detection_classes:0`, `detection_scores:0`,
    /// `num_detections:0`.
    public var boxes: String?
    /// `ssd`: the classes output's name; see `boxes`.
    public var classes: String?
    /// `ssd`: the scores output's name; see `boxes`.
    public var scores: String?
    /// `ssd`: the detection-count output's name; see `boxes`.
    public var count: String?
    /// `yolo` and `classification`: the output to read (default: the first).
    public var output: String?
    /// `yolo`: `v5` or `v8` (default: told apart by the output's shape).
    public var version: String?
    /// `yolo`: overlap above which the weaker of two boxes of one class is suppressed. Default 0.45.
    public var iouThreshold: Float?
    /// `classification`: how many classes to report. Default 5.
    public var topK: Int?
    /// `classification`: apply softmax to the scores first. Default false.
    public var softmax: Bool?

    /// Makes a decoder spec; unset values take the defaults above.
    public init(
        type: Kind, labels: [String]? = nil, minScore: Float? = nil, boxes: String? = nil, classes: String? = nil,
        scores: String? = nil, count: String? = nil, output: String? = nil, version: String? = nil,
        iouThreshold: Float? = nil, topK: Int? = nil, softmax: Bool? = nil
    ) {
        self.type = type
        self.labels = labels
        self.minScore = minScore
        self.boxes = boxes
        self.classes = classes
        self.scores = scores
        self.count = count
        self.output = output
        self.version = version
        self.iouThreshold = iouThreshold
        self.topK = topK
        self.softmax = softmax
    }
}

/// Panorama's `mlModelDescriptor`: what the model was trained with and what it takes.
public struct ModelDescriptor: Sendable, Codable, Equatable {
    /// One model input: its name (the key code uses) and shape (the batch size is `shape[0]`).
    public struct Input: Sendable, Codable, Equatable {
        /// The input's name.
        public var name: String
        /// The input's shape.
        public var shape: [Int]
        /// The element type (`uint8`, `float32`, …), when given.
        public var type: String?

        /// Makes an input.
        public init(name: String, shape: [Int], type: String? = nil) {
            self.name = name
            self.shape = shape
            self.type = type
        }
    }

    /// Always `"2021-01-01"`.
    public var envelopeVersion: String
    /// `TENSORFLOW`, `PYTORCH` or `MXNET`.
    public var framework: String
    /// The framework's major.minor version, when given.
    public var frameworkVersion: String?
    /// `FP32` (the default) or `FP16`.
    public var precisionMode: String?
    /// The model's inputs.
    public var inputs: [Input]

    /// Makes a descriptor.
    public init(
        envelopeVersion: String = "2021-01-01", framework: String, frameworkVersion: String? = nil,
        precisionMode: String? = nil, inputs: [Input]
    ) {
        self.envelopeVersion = envelopeVersion
        self.framework = framework
        self.frameworkVersion = frameworkVersion
        self.precisionMode = precisionMode
        self.inputs = inputs
    }
}
