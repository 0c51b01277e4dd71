// The thin layer around OpenVINO's C API: one class per C handle, `deinit` frees it, C status codes become
// `OpenVINOFailure` here and nowhere else. Nothing in this file is public; the domain API (InferenceModel,
// InferenceRequest) is built on it.

internal import COpenVINO
import Foundation
import Synchronization

/// A failed OpenVINO call: which call, its status and OpenVINO's own message.
struct OpenVINOFailure: Error, Sendable {
    var call: String
    var status: Int32
    var message: String

    /// OpenVINO's explanation on one line, without the C++ source locations it stacks in front, trimmed to
    /// something a log line can carry.
    var summary: String {
        let lines = message.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !($0.hasPrefix("Exception from ") && $0.hasSuffix(":")) }
        let text = lines.joined(separator: " ")
        return text.count > 1200 ? String(text.prefix(1200)) + "…" : text
    }

    var isCancelled: Bool { status == INFER_CANCELLED.rawValue }
}

/// Turns an OpenVINO status into a Swift error, once, at the boundary.
@inline(__always)
func check(_ status: ov_status_e, _ call: @autoclosure () -> String) throws(OpenVINOFailure) {
    if status != OK { throw failure(status, call()) }
}

func failure(_ status: ov_status_e, _ call: String) -> OpenVINOFailure {
    var message = String(cString: ov_get_error_info(status))
    // OpenVINO keeps the last exception's text in a process-wide string; it is fresh for every status that comes
    // from an exception, which is all of them except a null parameter.
    if status != INVALID_C_PARAM, let last = ov_get_last_err_msg() {
        message = String(cString: last)
        ov_free(last)
    }
    return OpenVINOFailure(call: call, status: status.rawValue, message: message)
}

// MARK: - Element types and shapes

extension ElementType {
    init?(_ type: ov_element_type_e) {
        switch type {
        case ov_element_type_e(1): self = .boolean  // BOOLEAN: the name clashes with a system macro
        case BF16: self = .bf16
        case F16: self = .f16
        case F32: self = .f32
        case F64: self = .f64
        case I8: self = .i8
        case I16: self = .i16
        case I32: self = .i32
        case I64: self = .i64
        case U8: self = .u8
        case U16: self = .u16
        case U32: self = .u32
        case U64: self = .u64
        default: return nil
        }
    }

    var openVINO: ov_element_type_e {
        switch self {
        case .boolean: ov_element_type_e(1)
        case .bf16: BF16
        case .f16: F16
        case .f32: F32
        case .f64: F64
        case .i8: I8
        case .i16: I16
        case .i32: I32
        case .i64: I64
        case .u8: U8
        case .u16: U16
        case .u32: U32
        case .u64: U64
        }
    }
}

/// One dimension of a port's shape; `nil` where the model leaves it open.
typealias Dimensions = [Int?]

func describe(_ dims: Dimensions) -> String {
    "[" + dims.map { $0.map(String.init) ?? "?" }.joined(separator: ",") + "]"
}

func describe(_ dims: [Int]) -> String {
    "[" + dims.map(String.init).joined(separator: ",") + "]"
}

/// What a model's input or output port is: its name, shape and element type.
struct PortInfo: Sendable, Equatable {
    /// The name Vantage shows: OpenVINO's, or the better-known alias it was found by.
    var name: String
    /// The name OpenVINO reports first for the tensor (one of possibly several).
    var openVINOName: String
    var dimensions: Dimensions
    var elementType: ElementType?
    var elementTypeName: String

    var isStatic: Bool { !dimensions.contains(nil) }
    var staticShape: [Int]? { isStatic ? dimensions.map { $0! } : nil }
}

/// Reads name, shape and element type of a port, then frees the port.
func portInfo(_ port: OpaquePointer) throws(OpenVINOFailure) -> PortInfo {
    var name: UnsafeMutablePointer<CChar>?
    try check(ov_port_get_any_name(port, &name), "ov_port_get_any_name")
    defer { ov_free(name) }
    var shape = ov_partial_shape_t()
    try check(ov_port_get_partial_shape(port, &shape), "ov_port_get_partial_shape")
    defer { ov_partial_shape_free(&shape) }
    var dims: Dimensions = []
    if !ov_rank_is_dynamic(shape.rank), let raw = shape.dims {
        for i in 0..<Int(shape.rank.max) {
            let d = raw[i]
            dims.append(d.min == d.max && d.min >= 0 ? Int(d.min) : nil)
        }
    }
    var type = DYNAMIC
    try check(ov_port_get_element_type(port, &type), "ov_port_get_element_type")
    let element = ElementType(type)
    let text = name.map { String(cString: $0) } ?? ""
    return PortInfo(
        name: text, openVINOName: text, dimensions: dims, elementType: element,
        elementTypeName: element?.rawValue ?? "type #\(type.rawValue)")
}

/// Builds an `ov_shape_t` for the duration of `body`.
func withShape<R>(_ dims: [Int], _ body: (ov_shape_t) throws(OpenVINOFailure) -> R) throws(OpenVINOFailure) -> R {
    var shape = ov_shape_t()
    let values = dims.map { Int64($0) }
    try check(ov_shape_create(Int64(values.count), values, &shape), "ov_shape_create")
    defer { ov_shape_free(&shape) }
    return try body(shape)
}

// MARK: - Core

/// The process-wide OpenVINO core. OpenVINO's `Core` is thread-safe, and one per process keeps plugins and the
/// compiled-model cache shared.
final class OpenVINOCore: @unchecked Sendable {
    // Unchecked: `handle` is set once and OpenVINO's `Core` may be used from any thread at once.
    let handle: OpaquePointer

    private init(handle: OpaquePointer) { self.handle = handle }
    deinit { ov_core_free(handle) }

    static let shared: Result<OpenVINOCore, OpenVINOFailure> = {
        var core: OpaquePointer?
        let status = ov_core_create(&core)
        guard status == OK, let core else { return .failure(failure(status, "ov_core_create")) }
        return .success(OpenVINOCore(handle: core))
    }()

    /// `major.minor.patch` and build of the OpenVINO library in use.
    static let version: String = {
        var version = ov_version_t()
        guard ov_get_openvino_version(&version) == OK else { return "unknown" }
        defer { ov_version_free(&version) }
        return String(cString: version.buildNumber)
    }()

    func availableDevices() throws(OpenVINOFailure) -> [String] {
        var devices = ov_available_devices_t()
        try check(ov_core_get_available_devices(handle, &devices), "ov_core_get_available_devices")
        defer { ov_available_devices_free(&devices) }
        return (0..<devices.size).compactMap { devices.devices[$0].map { String(cString: $0) } }
    }

    func readModel(path: String, weights: String?) throws(OpenVINOFailure) -> OpenVINOModel {
        var model: OpaquePointer?
        try check(ov_core_read_model(handle, path, weights, &model), "ov_core_read_model")
        return OpenVINOModel(handle: model!)
    }

    /// Compiles with string-valued properties through the non-variadic `_props` call (Swift cannot call C variadics).
    func compile(
        _ model: OpenVINOModel, device: String, properties: [(key: String, value: String)]
    ) throws(OpenVINOFailure) -> OpenVINOCompiledModel {
        let keys = properties.map { strdup($0.key)! }
        let values = properties.map { strdup($0.value)! }
        defer {
            keys.forEach { free($0) }
            values.forEach { free($0) }
        }
        let props = zip(keys, values).map { ov_property_t(key: UnsafePointer($0), value: UnsafeRawPointer($1)) }
        var compiled: OpaquePointer?
        try check(
            ov_core_compile_model_props(handle, model.handle, device, props.count, props, &compiled),
            "ov_core_compile_model_props")
        return OpenVINOCompiledModel(handle: compiled!)
    }
}

// MARK: - Model

/// A read (not yet compiled) model. Confined to the thread that loads it.
final class OpenVINOModel {
    let handle: OpaquePointer

    init(handle: OpaquePointer) { self.handle = handle }
    deinit { ov_model_free(handle) }

    func inputs() throws(OpenVINOFailure) -> [PortInfo] {
        var count = 0
        try check(ov_model_inputs_size(handle, &count), "ov_model_inputs_size")
        var result: [PortInfo] = []
        for i in 0..<count {
            var port: OpaquePointer?
            try check(ov_model_const_input_by_index(handle, i, &port), "ov_model_const_input_by_index")
            defer { ov_output_const_port_free(port) }
            result.append(try portInfo(port!))
        }
        return result
    }

    func outputs() throws(OpenVINOFailure) -> [PortInfo] {
        var count = 0
        try check(ov_model_outputs_size(handle, &count), "ov_model_outputs_size")
        var result: [PortInfo] = []
        for i in 0..<count {
            var port: OpaquePointer?
            try check(ov_model_const_output_by_index(handle, i, &port), "ov_model_const_output_by_index")
            defer { ov_output_const_port_free(port) }
            result.append(try portInfo(port!))
        }
        return result
    }

    /// Looks a name up among all the names of each input (a tensor may have several); returns the input's index.
    /// Matches shown names first, then any name OpenVINO knows.
    func inputIndex(named name: String, among inputs: [PortInfo]) -> Int? {
        if let i = inputs.firstIndex(where: { $0.name == name }) { return i }
        var port: OpaquePointer?
        guard ov_model_const_input_by_name(handle, name, &port) == OK, let port else { return nil }
        defer { ov_output_const_port_free(port) }
        guard let info = try? portInfo(port) else { return nil }
        return inputs.firstIndex { $0.openVINOName == info.openVINOName }
    }

    /// Same for outputs.
    func outputIndex(named name: String, among outputs: [PortInfo]) -> Int? {
        if let i = outputs.firstIndex(where: { $0.name == name }) { return i }
        var port: OpaquePointer?
        guard ov_model_const_output_by_name(handle, name, &port) == OK, let port else { return nil }
        defer { ov_output_const_port_free(port) }
        guard let info = try? portInfo(port) else { return nil }
        return outputs.firstIndex { $0.openVINOName == info.openVINOName }
    }

    func reshapeInput(named name: String, to dims: [Int]) throws(OpenVINOFailure) {
        var shape = ov_partial_shape_t()
        let values = dims.map { Int64($0) }
        try check(ov_partial_shape_create_static(Int64(values.count), values, &shape), "ov_partial_shape_create_static")
        defer { ov_partial_shape_free(&shape) }
        try check(ov_model_reshape_input_by_name(handle, name, shape), "ov_model_reshape_input_by_name")
    }
}

// MARK: - Pre- and post-processing

/// OpenVINO's pre/post-processing builder. It edits the model it was made from, in place.
final class OpenVINOPrePostProcessor {
    let handle: OpaquePointer

    init(_ model: OpenVINOModel) throws(OpenVINOFailure) {
        var ppp: OpaquePointer?
        try check(ov_preprocess_prepostprocessor_create(model.handle, &ppp), "ov_preprocess_prepostprocessor_create")
        handle = ppp!
    }
    deinit { ov_preprocess_prepostprocessor_free(handle) }

    /// What the application hands in (`tensor`), what the model wants (`model`), and the steps between them.
    struct InputPlan {
        var tensorElementType: ElementType
        var tensorLayout: String
        var modelLayout: String
        var convertToFloat: Bool
        var mean: [Float]?
        var scale: [Float]?
    }

    func configureInput(index: Int, _ plan: InputPlan) throws(OpenVINOFailure) {
        var input: OpaquePointer?
        try check(
            ov_preprocess_prepostprocessor_get_input_info_by_index(handle, index, &input),
            "ov_preprocess_prepostprocessor_get_input_info_by_index")
        defer { ov_preprocess_input_info_free(input) }

        var tensor: OpaquePointer?
        try check(ov_preprocess_input_info_get_tensor_info(input, &tensor), "ov_preprocess_input_info_get_tensor_info")
        defer { ov_preprocess_input_tensor_info_free(tensor) }
        try check(
            ov_preprocess_input_tensor_info_set_element_type(tensor, plan.tensorElementType.openVINO),
            "ov_preprocess_input_tensor_info_set_element_type")
        try withLayout(plan.tensorLayout) { layout throws(OpenVINOFailure) in
            try check(
                ov_preprocess_input_tensor_info_set_layout(tensor, layout), "ov_preprocess_input_tensor_info_set_layout"
            )
        }

        var modelInfo: OpaquePointer?
        try check(ov_preprocess_input_info_get_model_info(input, &modelInfo), "ov_preprocess_input_info_get_model_info")
        defer { ov_preprocess_input_model_info_free(modelInfo) }
        try withLayout(plan.modelLayout) { layout throws(OpenVINOFailure) in
            try check(
                ov_preprocess_input_model_info_set_layout(modelInfo, layout),
                "ov_preprocess_input_model_info_set_layout")
        }

        var steps: OpaquePointer?
        try check(
            ov_preprocess_input_info_get_preprocess_steps(input, &steps),
            "ov_preprocess_input_info_get_preprocess_steps")
        defer { ov_preprocess_preprocess_steps_free(steps) }
        if plan.convertToFloat {
            try check(
                ov_preprocess_preprocess_steps_convert_element_type(steps, F32),
                "ov_preprocess_preprocess_steps_convert_element_type")
        }
        if let mean = plan.mean {
            try check(
                ov_preprocess_preprocess_steps_mean_multi_channels(steps, mean, Int32(mean.count)),
                "ov_preprocess_preprocess_steps_mean_multi_channels")
        }
        if let scale = plan.scale {
            try check(
                ov_preprocess_preprocess_steps_scale_multi_channels(steps, scale, Int32(scale.count)),
                "ov_preprocess_preprocess_steps_scale_multi_channels")
        }
        // Layout (NHWC → model's) and the final element type conversion are implied by tensor vs. model info.
    }

    func setOutputElementType(index: Int, _ type: ElementType) throws(OpenVINOFailure) {
        var output: OpaquePointer?
        try check(
            ov_preprocess_prepostprocessor_get_output_info_by_index(handle, index, &output),
            "ov_preprocess_prepostprocessor_get_output_info_by_index")
        defer { ov_preprocess_output_info_free(output) }
        var tensor: OpaquePointer?
        try check(
            ov_preprocess_output_info_get_tensor_info(output, &tensor), "ov_preprocess_output_info_get_tensor_info")
        defer { ov_preprocess_output_tensor_info_free(tensor) }
        try check(ov_preprocess_output_set_element_type(tensor, type.openVINO), "ov_preprocess_output_set_element_type")
    }

    /// Applies the steps. The returned handle refers to the same (now edited) model.
    func build() throws(OpenVINOFailure) -> OpenVINOModel {
        var model: OpaquePointer?
        try check(ov_preprocess_prepostprocessor_build(handle, &model), "ov_preprocess_prepostprocessor_build")
        return OpenVINOModel(handle: model!)
    }

    private func withLayout(
        _ description: String, _ body: (OpaquePointer) throws(OpenVINOFailure) -> Void
    ) throws(OpenVINOFailure) {
        var layout: OpaquePointer?
        try check(ov_layout_create(description, &layout), "ov_layout_create(\(description))")
        defer { ov_layout_free(layout) }
        try body(layout!)
    }
}

// MARK: - Compiled model

/// A model compiled for a device. OpenVINO's `CompiledModel` is thread-safe: any thread may create requests or
/// read properties.
final class OpenVINOCompiledModel: @unchecked Sendable {
    // Unchecked: `handle` is set once and a `CompiledModel` may be used from any thread at once.
    let handle: OpaquePointer

    init(handle: OpaquePointer) { self.handle = handle }
    deinit { ov_compiled_model_free(handle) }

    func property(_ key: String) -> String? {
        var value: UnsafeMutablePointer<CChar>?
        guard ov_compiled_model_get_property(handle, key, &value) == OK, let value else { return nil }
        defer { ov_free(value) }
        return String(cString: value)
    }

    func inputs() throws(OpenVINOFailure) -> [PortInfo] {
        var count = 0
        try check(ov_compiled_model_inputs_size(handle, &count), "ov_compiled_model_inputs_size")
        var result: [PortInfo] = []
        for i in 0..<count {
            var port: OpaquePointer?
            try check(ov_compiled_model_input_by_index(handle, i, &port), "ov_compiled_model_input_by_index")
            defer { ov_output_const_port_free(port) }
            result.append(try portInfo(port!))
        }
        return result
    }

    func outputs() throws(OpenVINOFailure) -> [PortInfo] {
        var count = 0
        try check(ov_compiled_model_outputs_size(handle, &count), "ov_compiled_model_outputs_size")
        var result: [PortInfo] = []
        for i in 0..<count {
            var port: OpaquePointer?
            try check(ov_compiled_model_output_by_index(handle, i, &port), "ov_compiled_model_output_by_index")
            defer { ov_output_const_port_free(port) }
            result.append(try portInfo(port!))
        }
        return result
    }

    func makeRequest() throws(OpenVINOFailure) -> OpenVINOInferRequest {
        var request: OpaquePointer?
        try check(ov_compiled_model_create_infer_request(handle, &request), "ov_compiled_model_create_infer_request")
        return OpenVINOInferRequest(handle: request!, compiledModel: self)
    }
}

// MARK: - Tensors

/// A tensor handle. When made over host memory, the memory belongs to whoever made it and must outlive the tensor.
final class OpenVINOTensor {
    let handle: OpaquePointer
    /// The memory a host-pointer tensor reads and writes, kept alive with it (nil when OpenVINO owns the memory or
    /// the caller guarantees it for the tensor's lifetime).
    private let memoryOwner: HostBuffer?

    init(handle: OpaquePointer) {
        self.handle = handle
        memoryOwner = nil
    }

    /// A tensor over memory that is not OpenVINO's: `owner`'s, or the caller's when `owner` is nil.
    init(
        wrapping memory: UnsafeMutableRawPointer, type: ElementType, shape: [Int], owner: HostBuffer?
    ) throws(OpenVINOFailure) {
        var tensor: OpaquePointer?
        try withShape(shape) { shape throws(OpenVINOFailure) in
            try check(
                ov_tensor_create_from_host_ptr(type.openVINO, shape, memory, &tensor), "ov_tensor_create_from_host_ptr")
        }
        handle = tensor!
        memoryOwner = owner
    }

    deinit { ov_tensor_free(handle) }

    func data() throws(OpenVINOFailure) -> UnsafeMutableRawPointer? {
        var data: UnsafeMutableRawPointer?
        try check(ov_tensor_data(handle, &data), "ov_tensor_data")
        return data
    }

    func byteSize() throws(OpenVINOFailure) -> Int {
        var size = 0
        try check(ov_tensor_get_byte_size(handle, &size), "ov_tensor_get_byte_size")
        return size
    }

    func shape() throws(OpenVINOFailure) -> [Int] {
        var shape = ov_shape_t()
        try check(ov_tensor_get_shape(handle, &shape), "ov_tensor_get_shape")
        defer { ov_shape_free(&shape) }
        return (0..<Int(shape.rank)).map { Int(shape.dims[$0]) }
    }

    func elementType() throws(OpenVINOFailure) -> ElementType? {
        var type = DYNAMIC
        try check(ov_tensor_get_element_type(handle, &type), "ov_tensor_get_element_type")
        return ElementType(type)
    }
}

/// Memory we hand to OpenVINO as a tensor's storage: 64-byte aligned (what OpenVINO's CPU kernels prefer), zeroed,
/// freed when the last tensor or request using it is gone.
final class HostBuffer {
    let pointer: UnsafeMutableRawPointer
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = .allocate(byteCount: max(count, 1), alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: pointer, count: count) }
}

// MARK: - Infer requests

/// Where a request's completion lands: OpenVINO calls `inferenceCompleted` on one of its own threads, which resumes
/// the task waiting in `OpenVINOInferRequest.run()`. The context is `Sendable`: its only state is behind a `Mutex`.
final class CompletionSignal: Sendable {
    private let waiting = Mutex<CheckedContinuation<Void, Never>?>(nil)

    func arm(_ continuation: CheckedContinuation<Void, Never>) {
        waiting.withLock { $0 = continuation }
    }

    /// Resumes the waiting task, once; a second call (start failed and the callback fired anyway) does nothing.
    func fire() {
        let continuation = waiting.withLock { slot in
            let taken = slot
            slot = nil
            return taken
        }
        continuation?.resume()
    }
}

/// OpenVINO's completion callback: a plain C function; the signal travels as the unretained `args` pointer and is
/// kept alive by the request that registered it (the request is freed first, and OpenVINO's request destructor
/// waits for a running callback to finish).
private func inferenceCompleted(_ args: UnsafeMutableRawPointer?) {
    guard let args else { return }
    Unmanaged<CompletionSignal>.fromOpaque(args).takeUnretainedValue().fire()
}

/// One OpenVINO infer request. Not thread-safe: one user at a time (the owning `InferenceRequest` enforces it);
/// `cancel()` alone may come from another thread, as OpenVINO allows.
final class OpenVINOInferRequest: @unchecked Sendable {
    // Unchecked: one user at a time (`InferenceRequest` refuses a second concurrent call); only `cancel` may come
    // from another thread, which OpenVINO allows.
    let handle: OpaquePointer
    private let signal = CompletionSignal()
    /// OpenVINO's C API keeps the *pointer* to the callback description, not a copy: it lives as long as the request.
    private let callback: UnsafeMutablePointer<ov_callback_t>
    /// Keeps the compiled model alive as long as its requests.
    private let compiledModel: OpenVINOCompiledModel
    /// Tensors set on the request whose wrappers must live as long as the binding.
    private var boundTensors: [OpenVINOTensor] = []

    init(handle: OpaquePointer, compiledModel: OpenVINOCompiledModel) {
        self.handle = handle
        self.compiledModel = compiledModel
        callback = .allocate(capacity: 1)
        callback.initialize(
            to: ov_callback_t(callback_func: inferenceCompleted, args: Unmanaged.passUnretained(signal).toOpaque()))
    }

    deinit {
        ov_infer_request_free(handle)
        callback.deallocate()
    }

    func registerCallback() throws(OpenVINOFailure) {
        try check(ov_infer_request_set_callback(handle, callback), "ov_infer_request_set_callback")
    }

    func setInputTensor(index: Int, _ tensor: OpenVINOTensor, keep: Bool) throws(OpenVINOFailure) {
        try check(
            ov_infer_request_set_input_tensor_by_index(handle, index, tensor.handle),
            "ov_infer_request_set_input_tensor_by_index")
        if keep { boundTensors.append(tensor) }
    }

    func setOutputTensor(index: Int, _ tensor: OpenVINOTensor) throws(OpenVINOFailure) {
        try check(
            ov_infer_request_set_output_tensor_by_index(handle, index, tensor.handle),
            "ov_infer_request_set_output_tensor_by_index")
        boundTensors.append(tensor)
    }

    func outputTensor(index: Int) throws(OpenVINOFailure) -> OpenVINOTensor {
        var tensor: OpaquePointer?
        try check(
            ov_infer_request_get_output_tensor_by_index(handle, index, &tensor),
            "ov_infer_request_get_output_tensor_by_index")
        return OpenVINOTensor(handle: tensor!)
    }

    /// Runs the request asynchronously: starts it and suspends (no thread blocked) until OpenVINO's callback fires,
    /// then collects the outcome. Cancelling the task cancels the inference.
    func run() async throws(OpenVINOFailure) {
        var startStatus = OK
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                signal.arm(continuation)
                startStatus = ov_infer_request_start_async(handle)
                if startStatus != OK { signal.fire() }
            }
        } onCancel: {
            ov_infer_request_cancel(handle)
        }
        try check(startStatus, "ov_infer_request_start_async")
        // The request has finished: `wait` returns at once with the inference's own outcome (the callback cannot
        // carry it in the C API).
        try check(ov_infer_request_wait(handle), "ov_infer_request_wait")
    }
}
