import Synchronization

/// A reusable inference on one ``InferenceModel``: a frame buffer the runtime writes into, an OpenVINO request, and
/// the decoded results of the last call.
///
/// One user at a time: a request is handed to one task (a camera's pipeline), which awaits each call before the
/// next and reads the results in between. That is why it can be `@unchecked Sendable`: it moves between tasks but is
/// never used by two at once — a second concurrent call fails with ``ModelError/Code/requestBusy`` instead of
/// corrupting anything. For concurrency, make several requests (``InferenceModel/maxConcurrentRequests``).
///
/// Inference runs asynchronously inside OpenVINO (no thread of the cooperative pool waits for it); the results live
/// in storage reused from call to call, so a warm request allocates nothing per frame.
public final class InferenceRequest: @unchecked Sendable {
    /// The model this request runs.
    public let model: InferenceModel
    /// The model's frame input, `model.frameInput.byteCount` bytes (width × height × 3, packed HWC in the model's
    /// channel order): write (scale) a frame straight into it, then call ``inferFrame()``. OpenVINO reads it in
    /// place: there is no copy. Valid as long as the request.
    public var frameBuffer: UnsafeMutableRawBufferPointer { frameMemory.bytes }
    /// Objects found by the last call (decoders `ssd` and `yolo`), best first for `yolo`, in the model's order for
    /// `ssd`.
    public private(set) var detections: [Detection] = []
    /// The top classes of the last call (decoder `classification`), best first.
    public private(set) var classifications: [Classification] = []
    /// The output tensors of the last call, in the order of ``InferenceModel/outputNames``; their bytes are valid
    /// until the next call.
    public private(set) var outputs: [TensorView] = []

    private let frameMemory: HostBuffer
    /// nil when the model cannot take frames.
    private let frameExecution: Execution?
    /// Created on the first ``inferTensors(_:)``.
    /// Requests of the tensor variants, by `InferenceModel.plainKey`.
    private var tensorExecutions: [[Int]: Execution] = [:]
    /// The request of the last tensor call and its inputs' shapes, by input: the next call with the same shapes (an
    /// application sends the same shapes frame after frame) takes it without building a key or taking a lock.
    private var lastTensorCall: (shapes: [(index: Int, shape: [Int])], execution: Execution)?
    private let busy = Atomic<Bool>(false)

    init(model: InferenceModel) throws(ModelError) {
        self.model = model
        let format = model.frameInput
        frameMemory = HostBuffer(count: format.byteCount)
        do {
            if let compiled = model.frameCompiled {
                let execution = try Execution(compiled: compiled, outputs: model.frameOutputs)
                let tensor = try OpenVINOTensor(
                    wrapping: frameMemory.pointer, type: .u8, shape: [1, format.height, format.width, 3],
                    owner: frameMemory)
                try execution.request.setInputTensor(index: model.frameInputIndex, tensor, keep: true)
                frameExecution = execution
            } else {
                frameExecution = nil
            }
        } catch {
            throw model.fail(.inferenceFailed, "OpenVINO cannot create an inference request for the model", error)
        }
        detections.reserveCapacity(128)
        classifications.reserveCapacity(16)
    }

    /// Runs the model on the frame in ``frameBuffer`` and decodes the outputs into ``detections``,
    /// ``classifications`` and ``outputs``. A model that cannot take frames throws its
    /// ``InferenceModel/frameInputError``, and the request stays usable for tensors.
    public func inferFrame() async throws(ModelError) {
        guard let frameExecution else {
            throw model.frameInputError ?? model.fail(.inferenceFailed, "the model cannot take frames")
        }
        try begin()
        defer { end() }
        let views: [TensorView]
        do { views = try await frameExecution.run() } catch { throw model.inferenceError(error) }
        outputs = views
        decode(views, inputWidth: model.frameInput.width, inputHeight: model.frameInput.height)
    }

    /// Runs the model on tensors the application made, without the frame pre-processing: they go to the model as
    /// they are (for instance a Panorama application's float32 NCHW array, already normalised). Each tensor must
    /// match its input's name, element type and shape; every input must be given. The tensors' memory is read during
    /// the call only. Results as for ``inferFrame()``.
    public func inferTensors(_ inputs: [TensorInput]) async throws(ModelError) {
        try begin()
        defer { end() }
        let matched = try model.match(inputs)
        let execution: Execution
        if let last = lastTensorCall, last.shapes.count == matched.count,
            zip(last.shapes, matched).allSatisfy({ $0.index == $1.index && $0.shape == $1.input.shape })
        {
            execution = last.execution
        } else {
            let (key, variant) = try await model.plain(for: matched)
            if let existing = tensorExecutions[key] {
                execution = existing
            } else {
                do { execution = try Execution(compiled: variant.compiled, outputs: variant.outputs) } catch {
                    throw model.fail(
                        .inferenceFailed, "OpenVINO cannot create an inference request for the model", error)
                }
                tensorExecutions[key] = execution
            }
            lastTensorCall = (matched.map { ($0.index, $0.input.shape) }, execution)
        }
        var tensors: [OpenVINOTensor] = []
        tensors.reserveCapacity(matched.count)
        do {
            for (index, input) in matched {
                // OpenVINO only reads input tensors; the mutable pointer is what its C API asks for.
                let memory = UnsafeMutableRawPointer(mutating: input.data.baseAddress!)
                let tensor = try OpenVINOTensor(
                    wrapping: memory, type: input.elementType, shape: input.shape, owner: nil)
                try execution.request.setInputTensor(index: index, tensor, keep: false)
                tensors.append(tensor)
            }
        } catch {
            throw model.fail(.inferenceFailed, "OpenVINO does not accept the application's tensors", error)
        }
        let views: [TensorView]
        do { views = try await execution.run() } catch { throw model.inferenceError(error) }
        withExtendedLifetime(tensors) {}
        outputs = views
        let size = Self.imageSize(of: matched.map(\.input.shape)) ?? (model.frameInput.width, model.frameInput.height)
        decode(views, inputWidth: size.width, inputHeight: size.height)
    }

    // MARK: - Internals

    private func begin() throws(ModelError) {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            throw model.fail(
                .requestBusy,
                "this inference request is already running: use one request per task (make more with makeRequest())")
        }
        if Task.isCancelled {
            busy.store(false, ordering: .releasing)
            throw model.fail(.cancelled, "the inference was cancelled before it started")
        }
    }

    private func end() {
        busy.store(false, ordering: .releasing)
    }

    private func decode(_ views: [TensorView], inputWidth: Int, inputHeight: Int) {
        detections.removeAll(keepingCapacity: true)
        classifications.removeAll(keepingCapacity: true)
        let none = UnsafeBufferPointer<Float>(start: nil, count: 0)
        switch model.decoder {
        case .raw:
            return
        case .ssd(let boxes, let classes, let scores, let count, let minScore):
            let n = count.flatMap { views[$0].floats?.first }.map { Int($0) } ?? Int.max
            SSDDecoder.decode(
                boxes: views[boxes].floats ?? none, classes: views[classes].floats ?? none,
                scores: views[scores].floats ?? none, count: n, minScore: minScore, into: &detections)
        case .yolo(let output, let version, let minScore, let iouThreshold):
            let view = views[output]
            guard let floats = view.floats,
                let version = version ?? YOLODecoder.version(forShape: view.shape)
            else { return }
            YOLODecoder.decode(
                floats, shape: view.shape, version: version, inputWidth: inputWidth, inputHeight: inputHeight,
                minScore: minScore, iouThreshold: iouThreshold, into: &detections)
        case .classification(let output, let topK, let softmax, let minScore):
            ClassificationDecoder.decode(
                views[output].floats ?? none, topK: topK, softmax: softmax, minScore: minScore, into: &classifications)
        }
    }

    /// Width and height of the first image-like (4-D) tensor: NCHW when the second dimension looks like channels.
    static func imageSize(of shapes: [[Int]]) -> (width: Int, height: Int)? {
        guard let shape = shapes.first(where: { $0.count == 4 }) else { return nil }
        let channelsFirst = (shape[1] == 1 || shape[1] == 3) && shape[3] != 1 && shape[3] != 3
        return channelsFirst ? (shape[3], shape[2]) : (shape[2], shape[1])
    }
}

extension ElementType {
    /// Bytes a dense tensor of `shape` takes, or nil when a dimension is negative or the size overflows.
    public func byteCount(ofShape shape: [Int]) -> Int? {
        var total = byteSize
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (product, overflow) = total.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            total = product
        }
        return total
    }
}

extension InferenceModel {
    /// Checks the application's tensors against the model's inputs; returns each with its input index.
    func match(_ inputs: [TensorInput]) throws(ModelError) -> [(index: Int, input: TensorInput)] {
        let described = quotedList(fileInputs.map { "\($0.name) \(describe($0.dimensions)) \($0.elementTypeName)" })
        var matched: [(index: Int, input: TensorInput)] = []
        for input in inputs {
            guard let index = inputIndex(named: input.name) else {
                let aliases = inputAliases.sorted { $0.value < $1.value }.map {
                    "'\($0.key)' for \(fileInputs[$0.value].name)"
                }
                throw fail(
                    .unknownInput,
                    "the application sent a tensor for input '\(input.name)', which the model does not have; its "
                        + "inputs are \(described)"
                        + (aliases.isEmpty ? "" : " (also named \(aliases.joined(separator: ", ")) by its descriptor)"))
            }
            guard !matched.contains(where: { $0.index == index }) else {
                throw fail(.unknownInput, "the application sent two tensors for input '\(input.name)': send one")
            }
            let port = fileInputs[index]
            let given = input.shape
            var input = input
            // Panorama took a single image [C,H,W] (or [H,W,C]) for a batch-1 input: it gets the batch axis.
            if given.count == 3, port.dimensions.count == 4, port.dimensions[0] == 1 || port.dimensions[0] == nil {
                input.shape.insert(1, at: 0)
            }
            guard port.elementType == input.elementType else {
                throw fail(
                    .elementTypeMismatch,
                    "input '\(input.name)' takes \(port.elementTypeName) elements, but the application's tensor is "
                        + "\(input.elementType): convert the array to \(port.elementTypeName) before sending it")
            }
            let fits =
                port.dimensions.isEmpty
                || (port.dimensions.count == input.shape.count
                    && zip(port.dimensions, input.shape).allSatisfy { $0 == nil || $0 == $1 })
            guard fits, input.shape.allSatisfy({ $0 > 0 }) else {
                throw fail(
                    .shapeMismatch,
                    "input '\(input.name)' expects shape \(describe(port.dimensions)) but got \(describe(given)):"
                        + " reshape or transpose the array in the application (? is any size)")
            }
            // Sizes the model leaves open take any value the application sends: the product is checked, not trusted.
            guard let needed = input.elementType.byteCount(ofShape: input.shape) else {
                throw fail(
                    .shapeMismatch,
                    "the tensor for input '\(input.name)' has shape \(describe(input.shape)), whose size does not "
                        + "fit in memory: send a dense array of the shape the model takes (\(describe(port.dimensions)))"
                )
            }
            guard input.data.count == needed, input.data.baseAddress != nil else {
                throw fail(
                    .shapeMismatch,
                    "the tensor for input '\(input.name)' has \(input.data.count) bytes, but shape "
                        + "\(describe(input.shape)) of \(input.elementType) needs \(needed): send a dense array of "
                        + "that shape")
            }
            matched.append((index, input))
        }
        let missing = fileInputs.indices.filter { i in !matched.contains { $0.index == i } }
        guard missing.isEmpty else {
            throw fail(
                .missingInput,
                "the application gave no tensor for input \(quotedList(missing.map { fileInputs[$0].name })): "
                    + "send one for each of the model's inputs (\(described))")
        }
        return matched
    }

    func inferenceError(_ failure: OpenVINOFailure) -> ModelError {
        failure.isCancelled
            ? fail(.cancelled, "the inference was cancelled")
            : fail(.inferenceFailed, "OpenVINO failed to run the model", failure)
    }
}

/// One OpenVINO request with its outputs bound: outputs of static shape write into memory allocated once (their
/// views never change); outputs of dynamic shape are fetched after each run and kept until the next.
final class Execution {
    let request: OpenVINOInferRequest
    private var views: [TensorView] = []
    private var dynamicOutputs: [Int] = []
    private var fetched: [OpenVINOTensor] = []

    init(compiled: OpenVINOCompiledModel, outputs: [PortInfo]) throws(OpenVINOFailure) {
        request = try compiled.makeRequest()
        try request.registerCallback()
        for (index, port) in outputs.enumerated() {
            let type = port.elementType ?? .u8
            if let shape = port.staticShape, port.elementType != nil {
                let memory = HostBuffer(count: shape.reduce(1, *) * type.byteSize)
                let tensor = try OpenVINOTensor(wrapping: memory.pointer, type: type, shape: shape, owner: memory)
                try request.setOutputTensor(index: index, tensor)
                views.append(
                    TensorView(
                        name: port.name, shape: shape, elementType: type, bytes: UnsafeRawBufferPointer(memory.bytes)))
            } else {
                dynamicOutputs.append(index)
                views.append(
                    TensorView(
                        name: port.name, shape: [], elementType: type,
                        bytes: UnsafeRawBufferPointer(start: nil, count: 0)))
            }
        }
        fetched.reserveCapacity(dynamicOutputs.count)
    }

    /// Runs the request and returns its outputs.
    func run() async throws(OpenVINOFailure) -> [TensorView] {
        fetched.removeAll(keepingCapacity: true)
        try await request.run()
        for index in dynamicOutputs {
            let tensor = try request.outputTensor(index: index)
            let bytes = UnsafeRawBufferPointer(start: try tensor.data(), count: try tensor.byteSize())
            views[index].shape = try tensor.shape()
            views[index].elementType = try tensor.elementType() ?? views[index].elementType
            views[index].bytes = bytes
            fetched.append(tensor)
        }
        return views
    }
}
