// VantageInference: models on OpenVINO.
//
// `InferenceModel.load` reads a model file (ONNX, TensorFlow frozen graph, TFLite, OpenVINO IR, PaddlePaddle),
// fuses the frame pre-processing into it (u8 HWC frame → the model's layout, element type and normalisation, with
// OpenVINO's pre/post-processing API), and compiles it once for all cameras (THROUGHPUT hint, on-disk cache).
// `InferenceRequest` runs it asynchronously on a frame written straight into the request's input memory, or on
// tensors an application made, and decodes the outputs (SSD, YOLO, classification, raw) into reused storage.
//
// Layers: OpenVINO.swift wraps each C handle in a class (deinit frees); this file and InferenceRequest.swift are the
// domain API; Decoders.swift is pure Swift. No OpenVINO type appears in the public API.

public import Foundation
public import Logging
import Synchronization
public import VantageCore

/// One compiled model, shared by every camera and task that uses it.
///
/// Loading reads and compiles the model, which takes up to a few seconds (much less when the compiled model is in
/// the cache): from async code, `try await load(…)` does it on a thread of its own; the synchronous `load` blocks
/// its caller. Everything else is quick and thread-safe.
public final class InferenceModel: Sendable {
    /// The model's name: its node name in the application graph. Every error names it.
    public let name: String
    /// The descriptor it was loaded with.
    public let spec: ModelSpec
    /// The model file.
    public let file: URL
    /// The file's format.
    public let format: ModelFormat
    /// The OpenVINO device it is compiled for (`CPU` unless the descriptor says otherwise).
    public let device: String
    /// What a frame must be scaled and converted to before ``InferenceRequest/inferFrame()``; 0×0 when the model
    /// cannot take frames (``frameInputError``).
    public let frameInput: FrameInputFormat
    /// Why frames cannot be fed to this model (an input that is not 4-D, not 3 channels, or of a fixed batch other
    /// than 1; several inputs), naming the input, its shape and what to do; `nil` when they can. Such a model loads
    /// and runs on tensors from the application; ``InferenceRequest/inferFrame()`` throws this error.
    public let frameInputError: ModelError?
    /// The model's inputs, by name (the frame input is ``frameInputName``).
    public let inputNames: [String]
    /// The input that frames are fed to (or would be, when the model cannot take frames).
    public let frameInputName: String
    /// The model's outputs, by name, in the order of ``InferenceRequest/outputs``.
    public let outputNames: [String]
    /// How many requests can usefully run at once on this device (OpenVINO's
    /// `OPTIMAL_NUMBER_OF_INFER_REQUESTS`, at least 2): make that many with ``makeRequest()``.
    public let maxConcurrentRequests: Int
    /// Whether the compiled model came from the cache directory instead of being compiled now.
    public let loadedFromCache: Bool
    /// The precision the model runs in: `INT8` for a quantized file, else `FP32`, `BF16` or `FP16` as OpenVINO
    /// compiled it (see `InferenceModel+Precision.swift`).
    public let precision: String
    /// Whether OpenVINO pinned the model's inference threads to cores (`ENABLE_CPU_PINNING` as compiled; false on
    /// devices other than the CPU). The runtime pins them only for several cameras (see `Runtime`).
    public let pinnedToCores: Bool

    let fail: ModelErrorContext
    let decoder: ResolvedDecoder
    /// The model's inputs as the file declares them (what ``InferenceRequest/inferTensors(_:)`` is checked against).
    let fileInputs: [PortInfo]
    /// Other names of model inputs, by index: the `mlModelDescriptor`'s, which application code uses.
    let inputAliases: [String: Int]
    /// The element type of each input of the model file, in `inputNames` order (nil for types Vantage cannot send).
    public var inputElementTypes: [ElementType?] { fileInputs.map(\.elementType) }
    /// The shape of each input of the model file, in `inputNames` order (nil for an input with a dynamic dimension).
    public var inputShapes: [[Int]?] { fileInputs.map(\.staticShape) }

    /// The index of the input an application's tensor name stands for: the model's name, or the descriptor's.
    public func inputIndex(named name: String) -> Int? {
        inputNames.firstIndex(of: name) ?? inputAliases[name]
    }
    let frameInputIndex: Int
    /// The model with the frame pre-processing fused in, and its outputs; nil and empty when it cannot take frames.
    let frameCompiled: OpenVINOCompiledModel?
    let frameOutputs: [PortInfo]
    let compileProperties: [(key: String, value: String)]
    let logger: Logger
    /// The variants without frame pre-processing, compiled on first use by `inferTensors`: one per set of shapes
    /// given to the model's dynamic inputs (OpenVINO runs a model reshaped to static sizes faster
    /// than the dynamic one). The key is `plainKey(_:)`.
    private let plainVariants: Mutex<[[Int]: PlainVariant]>
    /// At most this many static variants; further shapes share the dynamic one.
    static let maxPlainVariants = 4

    struct PlainVariant: Sendable {
        var compiled: OpenVINOCompiledModel
        var outputs: [PortInfo]
    }

    /// Reads, prepares and compiles a model, blocking the calling thread meanwhile.
    ///
    /// - Parameters:
    ///   - name: the model's node name, used in every message.
    ///   - spec: the descriptor's `vantage` block.
    ///   - file: the model file, already resolved against the application folder.
    ///   - cacheDirectory: where compiled models are kept between runs (created if missing); `nil` for no cache.
    ///   - logger: where loading is logged (`debug`/`info`); nothing is logged per frame above `trace`.
    ///   - hint: what OpenVINO optimises for: many requests in flight (`throughput`, several cameras) or one
    ///     request finished as soon as possible on all cores (`latency`, one camera).
    ///   - pinned: whether OpenVINO pins its inference threads to cores (`ENABLE_CPU_PINNING`); `nil` leaves
    ///     OpenVINO's default (pinned, on Linux). On the CPU only.
    ///   - descriptor: Panorama's `mlModelDescriptor`. Its input names (`data`) are what application code calls the
    ///     inputs, and the model file supplied for it may call them otherwise: each stands for the model input at
    ///     its position (the one `vantage.inputs` names there), in `vantage.inputs` and in the tensors an application
    ///     sends.
    ///   - tensorsAtDescriptorShape: the application will send tensors of the descriptor's shape (a Panorama
    ///     application). When that shape is the one frames are scaled to, the variant for tensors is compiled now,
    ///     from the model already read, rather than by reading the file again at the first `inferTensors`.
    public static func load(
        name: String, spec: ModelSpec, file: URL, cacheDirectory: URL?, logger: Logger,
        hint: PerformanceHint = .throughput, pinned: Bool? = nil, descriptor: ModelDescriptor? = nil,
        tensorsAtDescriptorShape: Bool = false
    ) throws(ModelError) -> InferenceModel {
        try InferenceModel(
            name: name, spec: spec, file: file, cacheDirectory: cacheDirectory, logger: logger, hint: hint,
            pinned: pinned, descriptor: descriptor, tensorsAtDescriptorShape: tensorsAtDescriptorShape)
    }

    /// OpenVINO's performance hint.
    public enum PerformanceHint: String, Sendable, Codable {
        /// Several streams, one request each: the most inferences per second when many frames are in flight.
        case throughput = "THROUGHPUT"
        /// One request uses every core: the shortest time for each inference, for a single camera.
        case latency = "LATENCY"
    }

    /// Reads, prepares and compiles a model on a thread of its own, so that no thread of the cooperative pool is
    /// blocked meanwhile. Same parameters as the synchronous `load`.
    public static func load(
        name: String, spec: ModelSpec, file: URL, cacheDirectory: URL?, logger: Logger,
        hint: PerformanceHint = .throughput, pinned: Bool? = nil
    ) async throws(ModelError) -> InferenceModel {
        try await onDedicatedThread(named: "vantage.inference.compile") { () throws(ModelError) -> InferenceModel in
            try InferenceModel(
                name: name, spec: spec, file: file, cacheDirectory: cacheDirectory, logger: logger, hint: hint,
                pinned: pinned)
        }
    }

    private init(
        name: String, spec: ModelSpec, file: URL, cacheDirectory: URL?, logger: Logger, hint: PerformanceHint,
        pinned: Bool? = nil, descriptor: ModelDescriptor? = nil, tensorsAtDescriptorShape: Bool = false
    ) throws(ModelError) {
        let started = ContinuousClock.now
        let fail = ModelErrorContext(model: name, file: file.path)
        var logger = logger
        logger[metadataKey: "model.name"] = "\(name)"
        logger[metadataKey: "model.file"] = "\(file.path)"

        let format = try ModelFormat.resolve(file: file, declared: spec.format, fail)
        let weights = try Self.checkFiles(file, format: format, fail)

        let core: OpenVINOCore
        do { core = try OpenVINOCore.shared.get() } catch {
            throw fail(
                .runtimeUnavailable, "the OpenVINO runtime could not start: run scripts/setup to reinstall it",
                error)
        }
        let device = spec.device ?? "CPU"
        try Self.checkDevice(device, core: core, fail)

        // Read the model.
        let model: OpenVINOModel
        do { model = try core.readModel(path: file.path, weights: weights) } catch {
            throw fail(
                .unreadableModel,
                "OpenVINO cannot read the file as \(format.name): it is corrupt, truncated or in another format; "
                    + "re-export or re-download it", error)
        }
        let inputs: [PortInfo]
        var outputs: [PortInfo]
        do {
            inputs = try model.inputs()
            outputs = try model.outputs()
        } catch {
            throw fail(.unreadableModel, "OpenVINO read the file but cannot list its inputs and outputs", error)
        }
        // Show the TensorFlow object-detection API's well-known output names rather than internal node names.
        for known in ["detection_boxes:0", "detection_classes:0", "detection_scores:0", "num_detections:0"] {
            if let index = model.outputIndex(named: known, among: outputs) { outputs[index].name = known }
        }
        let inputList = quotedList(inputs.map { "\($0.name) \(describe($0.dimensions)) \($0.elementTypeName)" })

        // A Panorama descriptor names inputs as the application's code does (`data`); the file supplied for it may
        // call them otherwise. Each descriptor name stands for the model input at its position.
        let declared = descriptor?.inputs ?? []
        var aliases: [String: Int] = [:]
        var spec = spec
        for (position, input) in declared.enumerated()
        where declared.count == inputs.count && model.inputIndex(named: input.name, among: inputs) == nil {
            let named = spec.inputs.indices.contains(position) ? spec.inputs[position].name : nil
            if let named, named != input.name, let index = model.inputIndex(named: named, among: inputs) {
                aliases[input.name] = index
            } else if position < inputs.count {
                aliases[input.name] = position
                if named == input.name {
                    spec.inputs[position].name = inputs[position].name
                    logger.info(
                        "vantage.inputs '\(input.name)' (the descriptor's name) is the model's input '\(inputs[position].name)'",
                        metadata: ["model": "\(name)"])
                }
            }
        }

        // Which input frames go to; every input the descriptor names must exist.
        var frameIndex: Int?
        for inputSpec in spec.inputs {
            guard let index = model.inputIndex(named: inputSpec.name, among: inputs) else {
                throw fail(
                    .unknownInput,
                    "vantage.inputs names input '\(inputSpec.name)', which the model does not have; its inputs are "
                        + "\(inputList): use one of these names")
            }
            if frameIndex == nil { frameIndex = index }
        }
        let frameIndexValue = frameIndex ?? 0
        let frameSpec = spec.inputs.first ?? ModelInputSpec(name: inputs[frameIndexValue].name)
        let decoder = try ResolvedDecoder(spec.decoder, outputs: &outputs, model: model, fail)
        let outputNames = outputs.map(\.name)

        // Whether frames can be fed is decided now but reported only when one is: a model the application calls
        // only with arrays (a fixed batch of 4 crops, several inputs) loads and runs without ever taking a frame.
        let frames =
            inputs.count > 1
            ? .failure(
                fail(
                    .missingInput,
                    "the model has inputs \(inputList) and a frame fills only one: call the model with an array for "
                        + "each input from the application"))
            : try FramePlan.make(spec: frameSpec, port: inputs[frameIndexValue], fail)

        // Compiled through the cache when there is one.
        var properties: [(key: String, value: String)] = [("PERFORMANCE_HINT", hint.rawValue)]
        if let pinned, device == "CPU" { properties.append(("ENABLE_CPU_PINNING", pinned ? "YES" : "NO")) }
        if let cacheDirectory {
            do {
                try FileManager.default.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
                properties.append(("CACHE_DIR", cacheDirectory.path))
            } catch {
                logger.warning(
                    "Cannot create the compiled-model cache directory; compiling without a cache",
                    metadata: ["model.cache_dir": "\(cacheDirectory.path)", "error": "\(error)"])
            }
        }
        let compileFailed = { (error: OpenVINOFailure) -> ModelError in
            fail(
                .compileFailed,
                "OpenVINO cannot compile the model for device \(device)"
                    + (device == "CPU" ? "" : ": try vantage.device \"CPU\"")
                    + "; if the model uses operations OpenVINO does not support, re-export it with a lower opset",
                error)
        }

        let compiled: OpenVINOCompiledModel
        var early: [[Int]: PlainVariant] = [:]
        var frameFormat = FrameInputFormat(width: 0, height: 0, channelOrder: .rgb)
        switch frames {
        case .success(let plan):
            // Fuse the frame pre-processing into the model.
            frameFormat = plan.format
            if let element = frameSpec.elementType, element.lowercased() != inputs[frameIndexValue].elementTypeName {
                logger.warning(
                    "The descriptor's elementType differs from the model's input; using the model's",
                    metadata: [
                        "model.input": "\(frameSpec.name)", "descriptor.element_type": "\(element)",
                        "model.element_type": "\(inputs[frameIndexValue].elementTypeName)",
                    ])
            }
            do {
                if plan.reshapeTo != inputs[frameIndexValue].staticShape {
                    try model.reshapeInput(named: inputs[frameIndexValue].name, to: plan.reshapeTo)
                }
            } catch {
                throw fail(
                    .shapeMismatch,
                    "the model cannot take \(plan.format.width)x\(plan.format.height) frames (input "
                        + "'\(inputs[frameIndexValue].name)' reshaped to \(describe(plan.reshapeTo))): set width and "
                        + "height in vantage.inputs to a size the model supports", error)
            }

            // The tensor variant for the application's shape, from the model as read and reshaped (before the frame
            // pre-processing is fused in), when that shape is the frames' and the outputs need no conversion.
            if tensorsAtDescriptorShape, declared.count == 1, inputs.count == 1, declared[0].shape == plan.reshapeTo,
                Self.outputsNeedNoConversion(outputs, decoder: decoder)
            {
                let shape = declared[0].shape
                do {
                    let compiled = try core.compile(model, device: device, properties: properties)
                    var ports = try compiled.outputs()
                    for i in ports.indices where i < outputNames.count { ports[i].name = outputNames[i] }
                    let key = inputs[0].isStatic ? [] : [0] + shape + [-1]
                    early[key] = PlainVariant(compiled: compiled, outputs: ports)
                } catch {
                    logger.debug("the tensor variant will be compiled at first use", metadata: ["error": "\(error)"])
                }
            }
            let prepared: OpenVINOModel
            do {
                let ppp = try OpenVINOPrePostProcessor(model)
                try ppp.configureInput(index: frameIndexValue, plan.preprocessing)
                try Self.convertOutputsToFloat(ppp, outputs: outputs, decoder: decoder)
                prepared = try ppp.build()
            } catch {
                throw fail(
                    .invalidDescriptor,
                    "OpenVINO cannot build the frame pre-processing (\(plan.preprocessing.modelLayout) layout, mean "
                        + "\(plan.preprocessing.mean.map { "\($0)" } ?? "none"), scale "
                        + "\(plan.preprocessing.scale.map { "\($0)" } ?? "none")): check layout, mean and scale in "
                        + "vantage.inputs", error)
            }
            do { compiled = try core.compile(prepared, device: device, properties: properties) } catch {
                throw compileFailed(error)
            }

        case .failure(let reason):
            // No frame variant: the model as the file has it, outputs converted for the decoder, is the tensor
            // variant (the only one when its shapes are static; the fallback for dynamic ones).
            logger.info(
                "The model cannot take frames; it runs on arrays from the application",
                metadata: ["model.frames": "\(reason.message)"])
            do {
                compiled = try core.compile(
                    try Self.forTensors(model, outputs: outputs, decoder: decoder), device: device,
                    properties: properties)
            } catch {
                throw compileFailed(error)
            }
        }

        var compiledOutputs: [PortInfo]
        do { compiledOutputs = try compiled.outputs() } catch {
            throw fail(.compileFailed, "OpenVINO compiled the model but cannot list its outputs", error)
        }
        for i in compiledOutputs.indices where i < outputNames.count { compiledOutputs[i].name = outputNames[i] }
        if let unreadable = compiledOutputs.first(where: { $0.elementType == nil }) {
            throw fail(
                .unsupportedFormat,
                "output '\(unreadable.name)' has element type \(unreadable.elementTypeName), which Vantage cannot "
                    + "read: re-export the model with numeric outputs")
        }
        var frameError: ModelError?
        if case .failure(let reason) = frames {
            frameError = reason
            early[[]] = PlainVariant(compiled: compiled, outputs: compiledOutputs)
        }

        self.name = name
        self.spec = spec
        self.file = file
        self.format = format
        self.device = device
        self.frameInput = frameFormat
        self.frameInputError = frameError
        self.inputNames = inputs.map(\.name)
        self.frameInputName = inputs[frameIndexValue].name
        self.outputNames = outputNames
        self.maxConcurrentRequests = max(
            2, compiled.property("OPTIMAL_NUMBER_OF_INFER_REQUESTS").flatMap(Int.init) ?? 2)
        self.loadedFromCache = ["YES", "TRUE", "1"].contains(compiled.property("LOADED_FROM_CACHE")?.uppercased() ?? "")
        self.fail = fail
        self.decoder = decoder
        self.fileInputs = inputs
        self.frameInputIndex = frameIndexValue
        self.frameCompiled = frameError == nil ? compiled : nil
        self.frameOutputs = frameError == nil ? compiledOutputs : []
        self.compileProperties = properties
        self.plainVariants = Mutex(early)
        self.inputAliases = aliases
        self.logger = logger
        self.precision = Self.precision(
            file: file, format: format, compiled: frameError == nil ? compiled : early[[]]?.compiled)
        self.pinnedToCores =
            device == "CPU"
            && (frameError == nil ? compiled : early[[]]?.compiled)?.property("ENABLE_CPU_PINNING") == "YES"

        logger.info(
            "Loaded model",
            metadata: [
                "model.format": "\(format.rawValue)", "model.device": "\(device)",
                "model.frame_input": "\(frameError == nil ? "\(frameInputName) \(frameFormat)" : "none")",
                "model.outputs": "\(outputNames)",
                "model.decoder": "\(spec.decoder.type.rawValue)", "model.requests": "\(maxConcurrentRequests)",
                "model.hint": "\(hint.rawValue)", "model.pinned_to_cores": "\(pinnedToCores)",
                "model.cache_dir": "\(cacheDirectory?.path ?? "none")", "model.loaded_from_cache": "\(loadedFromCache)",
                "model.load_ms": "\((ContinuousClock.now - started).milliseconds)",
                "openvino.version": "\(OpenVINOCore.version)",
            ])
    }

    /// A new request, with its own frame buffer and result storage. Make a few up front (one per concurrent task,
    /// ``maxConcurrentRequests`` in all) and reuse them.
    public func makeRequest() throws(ModelError) -> InferenceRequest {
        try InferenceRequest(model: self)
    }

    /// The class name for a class id, from the descriptor's `decoder.labels`.
    public func label(for classId: Int) -> String? {
        guard let labels = spec.decoder.labels, labels.indices.contains(classId) else { return nil }
        return labels[classId]
    }

    // MARK: - Internals

    /// The model without the frame pre-processing (outputs still converted for the decoder), compiled once on first
    /// use, on a thread of its own.
    func plain(for inputs: [(index: Int, input: TensorInput)]) async throws(ModelError) -> (
        key: [Int], variant: PlainVariant
    ) {
        var key = plainKey(inputs)
        if let ready = plainVariants.withLock({ $0[key] }) { return (key, ready) }
        if !key.isEmpty && plainVariants.withLock({ $0.count >= Self.maxPlainVariants }) { key = [] }
        let chosen = key
        let reshape: [ReshapedInput] =
            chosen.isEmpty
            ? []
            : inputs.filter { !fileInputs[$0.index].isStatic }.map {
                ReshapedInput(name: fileInputs[$0.index].name, shape: $0.input.shape)
            }
        let variant = try await onDedicatedThread(named: "vantage.inference.compile") {
            () throws(ModelError) -> PlainVariant in
            try self.plainVariants.withLock {
                (variants: inout [[Int]: PlainVariant]) throws(ModelError) -> PlainVariant in
                if let ready = variants[chosen] { return ready }
                let variant = try self.compilePlain(reshape: reshape)
                variants[chosen] = variant
                return variant
            }
        }
        return (chosen, variant)
    }

    /// The shapes given to the model's dynamic inputs, flattened (each shape followed by -1); empty when every input
    /// is static.
    func plainKey(_ inputs: [(index: Int, input: TensorInput)]) -> [Int] {
        var key: [Int] = []
        for (index, input) in inputs.sorted(by: { $0.index < $1.index }) where !fileInputs[index].isStatic {
            key += [index] + input.shape + [-1]
        }
        return key
    }

    /// Whether the plain variant's outputs are what the decoder reads without a conversion step.
    static func outputsNeedNoConversion(_ outputs: [PortInfo], decoder: ResolvedDecoder) -> Bool {
        if case .raw = decoder { return true }
        return !outputs.contains { $0.elementType != .f32 }
    }

    struct ReshapedInput: Sendable {
        var name: String
        var shape: [Int]
    }

    private func compilePlain(reshape: [ReshapedInput]) throws(ModelError) -> PlainVariant {
        let started = ContinuousClock.now
        let weights = format == .openvino ? file.deletingPathExtension().appendingPathExtension("bin").path : nil
        do {
            let core = try OpenVINOCore.shared.get()
            let model = try core.readModel(path: file.path, weights: weights)
            for input in reshape { try model.reshapeInput(named: input.name, to: input.shape) }
            let prepared = try Self.forTensors(model, outputs: try model.outputs(), decoder: decoder)
            let compiled = try core.compile(prepared, device: device, properties: compileProperties)
            var outputsCompiled = try compiled.outputs()
            for i in outputsCompiled.indices where i < outputNames.count { outputsCompiled[i].name = outputNames[i] }
            let variant = PlainVariant(compiled: compiled, outputs: outputsCompiled)
            logger.debug(
                "Compiled the model's tensor variant",
                metadata: [
                    "model.load_ms": "\((ContinuousClock.now - started).milliseconds)",
                    "model.shapes": "\(reshape.map { "\($0.name) \(describe($0.shape))" })",
                ])
            return variant
        } catch {
            throw fail(.compileFailed, "OpenVINO cannot prepare the model for tensors from the application", error)
        }
    }

    /// Checks that the file (and an IR model's weights) exist before OpenVINO sees them, for clear messages about
    /// the common mistakes. Returns the weights file, if the format has one.
    private static func checkFiles(_ file: URL, format: ModelFormat, _ fail: ModelErrorContext) throws(ModelError)
        -> String?
    {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory), !isDirectory.boolValue
        else {
            throw fail(
                .fileMissing,
                "the model file does not exist: check vantage.file in the model's descriptor.json (a relative "
                    + "path is resolved against the application folder) and that the model package was installed")
        }
        guard format == .openvino else { return nil }
        let bin = file.deletingPathExtension().appendingPathExtension("bin")
        guard FileManager.default.fileExists(atPath: bin.path) else {
            throw fail(
                .fileMissing,
                "an OpenVINO IR model needs its weights beside it, but \(bin.path) does not exist: copy the .bin "
                    + "file that came with the .xml into the same folder")
        }
        return bin.path
    }

    /// `model` for tensors from the application: no pre-processing, outputs converted to f32 for a decoder other
    /// than raw.
    private static func forTensors(_ model: OpenVINOModel, outputs: [PortInfo], decoder: ResolvedDecoder)
        throws(OpenVINOFailure) -> OpenVINOModel
    {
        if case .raw = decoder { return model }
        guard outputs.contains(where: { $0.elementType != .f32 }) else { return model }
        let ppp = try OpenVINOPrePostProcessor(model)
        try convertOutputsToFloat(ppp, outputs: outputs, decoder: decoder)
        return try ppp.build()
    }

    private static func convertOutputsToFloat(
        _ ppp: OpenVINOPrePostProcessor, outputs: [PortInfo], decoder: ResolvedDecoder
    ) throws(OpenVINOFailure) {
        if case .raw = decoder { return }
        for (index, output) in outputs.enumerated() where output.elementType != .f32 {
            try ppp.setOutputElementType(index: index, .f32)
        }
    }

    private static func checkDevice(_ device: String, core: OpenVINOCore, _ fail: ModelErrorContext) throws(ModelError)
    {
        // CPU is always there; virtual devices (AUTO, MULTI:…, HETERO:…, BATCH:…) pick among real ones themselves.
        let virtual = ["AUTO", "MULTI", "HETERO", "BATCH"]
        guard device != "CPU", !virtual.contains(where: { device.hasPrefix($0) }) else { return }
        let available: [String]
        do { available = try core.availableDevices() } catch {
            throw fail(.deviceUnavailable, "cannot list the OpenVINO devices of this machine", error)
        }
        let present = available.contains { $0 == device || $0.hasPrefix(device + ".") }
        guard present else {
            throw fail(
                .deviceUnavailable,
                "device '\(device)' is not available on this machine (available: \(available.joined(separator: ", "))):"
                    + " set vantage.device to one of them, or remove it to run on CPU")
        }
    }
}
