import VantageCore

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

    /// Plans how frames reach `port`. Its two ways to fail differ in when the user hears of them:
    ///
    /// - Throws: what is wrong with the descriptor itself (a value Vantage cannot use, a frame size the model's fixed
    ///   size contradicts, a dynamic size without one): the model is refused at load.
    /// - Returns: the plan, or, when the input cannot take frames (not 4-D, not 3 channels, a fixed batch other than
    ///   1), the error a frame fed to it gets. Such a model still loads and runs on tensors from the application
    ///   (say a pose estimator that batches its own person crops): frame feeding is checked only when a frame is fed.
    static func make(spec: ModelInputSpec, port: PortInfo, _ fail: ModelErrorContext) throws(ModelError) -> Result<
        FramePlan, ModelError
    > {
        let name = port.name
        try checkValues(spec, name: name, fail)
        var dims = port.dimensions
        if dims.isEmpty { dims = [nil, nil, nil, nil] }  // rank unknown: take it as an image input
        guard dims.count == 4 else {
            return .failure(
                fail(
                    .shapeMismatch,
                    "input '\(name)' has shape \(describe(dims)), but Vantage feeds a model frames, which need an "
                        + "input of 4 dimensions (NHWC or NCHW): if the model has an image input, name it first in "
                        + "vantage.inputs; otherwise call the model with arrays from the application"))
        }

        // Layout: as declared, else guessed from where the 3 channels are.
        let layout: String
        if let declared = spec.layout?.uppercased() {
            layout = declared
        } else if dims[1] == 3 && dims[3] != 3 {
            layout = "NCHW"
        } else {
            layout = "NHWC"
        }
        let (c, h, w) = layout == "NHWC" ? (3, 1, 2) : (1, 2, 3)
        if let channels = dims[c], channels != 3 {
            return .failure(
                fail(
                    .shapeMismatch,
                    "input '\(name)' has shape \(describe(dims)): in \(layout) layout that is \(channels) channels, "
                        + "but frames have 3 (RGB or BGR): if the layout is wrong, set layout in vantage.inputs; "
                        + "otherwise call the model with arrays from the application"))
        }
        if let batch = dims[0], batch != 1 {
            return .failure(
                fail(
                    .shapeMismatch,
                    "input '\(name)' has a fixed batch of \(batch) \(describe(dims)), but frames are fed one at a "
                        + "time: call the model with arrays of that shape from the application, or re-export it with "
                        + "batch 1 or a dynamic batch"))
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
        default:
            throw fail(
                .shapeMismatch,
                "input '\(name)' has a dynamic size \(describe(dims)): set width and height in its vantage.inputs "
                    + "entry to the size frames should be scaled to (e.g. 300 and 300 for SSD MobileNet)")
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
        return .success(
            FramePlan(spec: spec, port: port, layout: layout, channels: c, height: (h, height), width: (w, width)))
    }

    /// The descriptor's own values, which are wrong whatever the model: refused at load.
    private static func checkValues(_ spec: ModelInputSpec, name: String, _ fail: ModelErrorContext)
        throws(ModelError)
    {
        if let declared = spec.layout?.uppercased(), declared != "NHWC" && declared != "NCHW" {
            throw fail(
                .invalidDescriptor,
                "vantage.inputs layout '\(spec.layout!)' for input '\(name)' is not supported: use \"NHWC\" or "
                    + "\"NCHW\"")
        }
        if (spec.width == nil) != (spec.height == nil) {
            throw fail(
                .invalidDescriptor,
                "vantage.inputs for '\(name)' gives only one of width and height: give both")
        }
        if let order = spec.colorOrder?.uppercased(), order != "RGB" && order != "BGR" {
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
    }

    private init(
        spec: ModelInputSpec, port: PortInfo, layout: String, channels c: Int, height: (axis: Int, size: Int),
        width: (axis: Int, size: Int)
    ) {
        var shape = [1, 0, 0, 0]
        shape[c] = 3
        shape[height.axis] = height.size
        shape[width.axis] = width.size
        let order: ChannelOrder = spec.colorOrder?.uppercased() == "BGR" ? .bgr : .rgb
        let expand = { (values: [Float]?) -> [Float]? in
            values.map { $0.count == 1 ? Array(repeating: $0[0], count: 3) : $0 }
        }
        let floating: Set<ElementType> = [.f16, .bf16, .f32, .f64]
        let convert = spec.mean != nil || spec.scale != nil || port.elementType.map(floating.contains) == true

        format = FrameInputFormat(width: width.size, height: height.size, channelOrder: order)
        reshapeTo = shape
        preprocessing = .init(
            tensorElementType: .u8, tensorLayout: "NHWC", modelLayout: layout, convertToFloat: convert,
            mean: expand(spec.mean), scale: expand(spec.scale))
    }
}
