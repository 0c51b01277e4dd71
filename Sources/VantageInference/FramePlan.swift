import VantageApp

/// How frames reach a model input: the frame format the runtime must produce, the static shape the input is
/// fixed to, and the pre-processing OpenVINO fuses in front of the model.
///
/// The resize is not part of it on purpose: swscale scaling straight to the model's size measured cheaper than
/// OpenVINO resizing a full frame, so the runtime delivers exactly `format`.
struct FramePlan {
    var format: FrameInputFormat
    /// The input's shape in the model's layout, batch 1.
    var reshapeTo: [Int]
    var preprocessing: OpenVINOPrePostProcessor.InputPlan

    init(spec: ModelInputSpec, port: PortInfo, _ fail: ModelErrorContext) throws(ModelError) {
        let name = port.name
        var dims = port.dimensions
        if dims.isEmpty { dims = [nil, nil, nil, nil] }  // rank unknown: take it as an image input
        guard dims.count == 4 else {
            throw fail(
                .shapeMismatch,
                "input '\(name)' has shape \(describe(dims)), but Vantage feeds a model frames, which need an "
                    + "input of 4 dimensions (NHWC or NCHW): if the model has an image input, name it first in "
                    + "vantage.inputs")
        }

        // Layout: as declared, else guessed from where the 3 channels are.
        let layout: String
        if let declared = spec.layout?.uppercased() {
            guard declared == "NHWC" || declared == "NCHW" else {
                throw fail(
                    .invalidDescriptor,
                    "vantage.inputs layout '\(spec.layout!)' for input '\(name)' is not supported: use \"NHWC\" or "
                        + "\"NCHW\"")
            }
            layout = declared
        } else if dims[1] == 3 && dims[3] != 3 {
            layout = "NCHW"
        } else {
            layout = "NHWC"
        }
        let (c, h, w) = layout == "NHWC" ? (3, 1, 2) : (1, 2, 3)
        if let channels = dims[c], channels != 3 {
            throw fail(
                .shapeMismatch,
                "input '\(name)' has shape \(describe(dims)): in \(layout) layout that is \(channels) channels, but "
                    + "frames have 3 (RGB or BGR): if the layout is wrong, set layout in vantage.inputs; otherwise "
                    + "feed this model with tensors from the application")
        }

        // Size: the descriptor's, else the model's fixed size.
        let width: Int
        let height: Int
        switch (spec.width, spec.height, dims[w], dims[h]) {
        case (let sw?, let sh?, _, _):
            width = sw
            height = sh
        case (nil, nil, let mw?, let mh?):
            width = mw
            height = mh
        case (nil, nil, _, _):
            throw fail(
                .shapeMismatch,
                "input '\(name)' has a dynamic size \(describe(dims)): set width and height in its vantage.inputs "
                    + "entry to the size frames should be scaled to (e.g. 300 and 300 for SSD MobileNet)")
        default:
            throw fail(
                .invalidDescriptor,
                "vantage.inputs for '\(name)' gives only one of width and height: give both")
        }
        guard width > 0, height > 0, width <= 16384, height <= 16384 else {
            throw fail(
                .invalidDescriptor,
                "vantage.inputs for '\(name)' asks for \(width)x\(height) frames: width and height must be 1–16384")
        }
        if let mw = dims[w], let mh = dims[h], (mw, mh) != (width, height) {
            throw fail(
                .shapeMismatch,
                "vantage.inputs asks for \(width)x\(height) frames, but input '\(name)' has the fixed size "
                    + "\(mw)x\(mh) \(describe(dims)): set width \(mw) and height \(mh) (or remove them)")
        }
        if let batch = dims[0], batch != 1 {
            throw fail(
                .shapeMismatch,
                "input '\(name)' has a fixed batch of \(batch) \(describe(dims)), but frames are fed one at a time: "
                    + "re-export the model with batch 1 or a dynamic batch")
        }
        var shape = [1, 0, 0, 0]
        shape[c] = 3
        shape[h] = height
        shape[w] = width

        // Channel order: what the model wants is what the runtime produces; no conversion inside the model.
        let order: ChannelOrder
        switch spec.colorOrder?.uppercased() {
        case nil, "RGB": order = .rgb
        case "BGR": order = .bgr
        default:
            throw fail(
                .invalidDescriptor,
                "vantage.inputs colorOrder '\(spec.colorOrder!)' for input '\(name)' is not supported: use \"RGB\" "
                    + "or \"BGR\"")
        }

        for (field, values) in [("mean", spec.mean), ("scale", spec.scale)] {
            guard let values else { continue }
            guard values.count == 1 || values.count == 3 else {
                throw fail(
                    .invalidDescriptor,
                    "vantage.inputs \(field) for '\(name)' has \(values.count) values: give one value, or three (one "
                        + "per channel, in the model's colour order)")
            }
            if field == "scale", values.contains(0) {
                throw fail(
                    .invalidDescriptor, "vantage.inputs scale for '\(name)' contains 0: pixels are divided by it")
            }
        }
        let expand = { (values: [Float]?) -> [Float]? in
            values.map { $0.count == 1 ? Array(repeating: $0[0], count: 3) : $0 }
        }
        let floating: Set<ElementType> = [.f16, .bf16, .f32, .f64]
        let convert = spec.mean != nil || spec.scale != nil || port.elementType.map(floating.contains) == true

        format = FrameInputFormat(width: width, height: height, channelOrder: order)
        reshapeTo = shape
        preprocessing = .init(
            tensorElementType: .u8, tensorLayout: "NHWC", modelLayout: layout, convertToFloat: convert,
            mean: expand(spec.mean), scale: expand(spec.scale))
    }
}
