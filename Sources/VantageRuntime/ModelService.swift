import Foundation
import Logging
import Synchronization
import VantageApp
import VantageCore
import VantageInference
import VantageMedia
import VantageProtocol

/// The application's models, loaded once and shared by every camera: each has a few reusable inference requests
/// so several frames are in flight at once (decode, inference and app logic overlap across frames and cameras).
final class ModelService: Sendable {
    final class Entry: Sendable {
        let node: ModelNode
        let model: InferenceModel
        let requests: RequestPool
        let latency = Mutex(LatencyHistogram())
        let inferences = Atomic<UInt64>(0)
        /// Frames answered with their camera's previous result (`detection` settings), not inferred.
        let skippedFrames = Atomic<UInt64>(0)
        /// The model's `detection` settings (rate, motion) for frames, if any.
        nonisolated(unsafe) var detection: OutputsConfiguration.Detection?

        init(node: ModelNode, model: InferenceModel, requests: RequestPool) {
            self.node = node
            self.model = model
            self.requests = requests
        }
    }

    let entries: [String: Entry]
    /// Per model and camera, when a frame call runs the model (models with `detection` settings only).
    private let gates = Mutex<[GateKey: FrameGate]>([:])
    /// Per model and camera, frames inferred before the application's call (models without `detection` settings).
    private let lookaheads = Mutex<[GateKey: FrameLookahead]>([:])
    /// Whether frame calls may be run ahead (`FrameLookahead`).
    let inferAhead: Bool
    /// How many requests each model has, and how many frames of a camera run ahead at once.
    private let queue: RequestQueue

    struct GateKey: Hashable {
        let model: String
        let camera: ObjectIdentifier
    }

    /// Loads (compiles, or takes from the cache) every model of the application. Fails with the model's own
    /// clear error.
    /// With `tensorsFromDescriptors` (the application calls models with tensors it makes, as Panorama applications
    /// do), a model whose descriptor declares the shape of its only input gets its tensor variant compiled with it.
    /// `queue` says how many requests each model gets and how many frames of a camera run ahead at once.
    init(
        models: [ModelNode], cacheDirectory: URL?, hint: InferenceModel.PerformanceHint, pinned: Bool? = nil,
        tensorsFromDescriptors: Bool = false, inferAhead: Bool = true, queue: RequestQueue = .optimal, logger: Logger
    ) throws(ModelError) {
        self.inferAhead = inferAhead
        self.queue = queue
        var entries: [String: Entry] = [:]
        for node in models {
            let model = try InferenceModel.load(
                name: node.name, spec: node.spec, file: node.modelFile, cacheDirectory: cacheDirectory,
                logger: logger, hint: hint, pinned: pinned, descriptor: node.descriptor,
                tensorsAtDescriptorShape: tensorsFromDescriptors)
            var requests: [InferenceRequest] = []
            let count = max(2, model.maxConcurrentRequests) * (queue == .optimal ? 1 : 2)
            for _ in 0..<count { requests.append(try model.makeRequest()) }
            entries[node.name] = Entry(
                node: node, model: model, requests: RequestPool(requests))
            logger.info(
                "model ready",
                metadata: [
                    "model": "\(node.name)",
                    "input": "\(model.frameInputError == nil ? "\(model.frameInput)" : "arrays only")",
                    "requests": "\(requests.count)",
                    "cached": "\(model.loadedFromCache)",
                    "precision": "\(model.precision)",
                    "hint": "\(hint.rawValue)",
                    "pinned": "\(model.pinnedToCores)",
                ])
        }
        self.entries = entries
    }

    /// Applies the outputs document's `detection` settings (by model node). Throws naming a model node that does not
    /// exist. Called once, before any frame.
    func configureDetection(_ detection: [String: OutputsConfiguration.Detection]) throws(RuntimeError) {
        for (name, settings) in detection.sorted(by: { $0.key < $1.key }) {
            guard let entry = entries[name] else {
                let known = entries.keys.sorted().joined(separator: ", ")
                throw RuntimeError(
                    "outputs.detection names the model node \"\(name)\", which the application does not have (model "
                        + "nodes: \(known.isEmpty ? "none" : known)): use one of those names, or remove the entry")
            }
            entry.detection = settings
        }
    }

    /// Runs every request once on a blank frame, so the first camera frames do not pay for OpenVINO's first
    /// inference (memory allocation, kernel selection) and get dropped behind it. With `tensors` (the application
    /// calls models with tensors it makes, as Panorama applications do), every request also runs once on blank
    /// tensors of the shapes the application sends (see `warmUpTensors`): that compiles the tensor variant for those
    /// shapes now rather than at the first frame. A model that cannot take frames is called only with tensors: it
    /// warms up on those alone.
    func warmUp(tensors: Bool = false) async {
        for entry in entries.values {
            let takesFrames = entry.model.frameInputError == nil
            if tensors || !takesFrames { await warmUpTensors(entry) }
            guard takesFrames else { continue }
            var all: [PooledRequest] = []
            for _ in 0..<entry.requests.count { all.append(await entry.requests.acquire()) }
            await withTaskGroup(of: Void.self) { group in
                for pooled in all {
                    group.addTask {
                        pooled.request.frameBuffer.initializeMemory(as: UInt8.self, repeating: 0)
                        try? await pooled.request.inferFrame()
                    }
                }
            }
            for pooled in all { entry.requests.release(pooled) }
        }
    }

    /// The largest input tensor warm-up makes (1 GiB).
    static let maxWarmUpTensorBytes = 1 << 30

    /// Runs every request once on blank tensors of the model file's own shapes, or, where the file leaves a size
    /// open, of the shapes the model's `mlModelDescriptor` declares. Skipped when neither gives every size.
    private func warmUpTensors(_ entry: Entry) async {
        var shapes: [(name: String, shape: [Int], type: ElementType)] = []
        let model = entry.model
        if model.inputShapes.allSatisfy({ $0 != nil }) {
            for (index, name) in model.inputNames.enumerated() {
                guard let shape = model.inputShapes[index], let type = model.inputElementTypes[index] else { return }
                shapes.append((name, shape, type))
            }
        } else {
            for declared in entry.node.descriptor.inputs {
                guard declared.shape.allSatisfy({ $0 > 0 }), let index = model.inputIndex(named: declared.name),
                    let type = model.inputElementTypes[index]
                else { return }
                shapes.append((declared.name, declared.shape, type))
            }
        }
        guard !shapes.isEmpty else { return }
        // A descriptor's shape too large to allocate (a typo, or a size left open written as a huge number): no
        // warm-up, and the application's first call says what is wrong.
        var sizes: [Int] = []
        for (_, shape, type) in shapes {
            guard let size = type.byteCount(ofShape: shape), size <= Self.maxWarmUpTensorBytes else { return }
            sizes.append(size)
        }
        var buffers: [UnsafeMutableRawBufferPointer] = []
        defer { for b in buffers { b.deallocate() } }
        var inputs: [TensorInput] = []
        for ((name, shape, type), size) in zip(shapes, sizes) {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            buffers.append(buffer)
            inputs.append(
                TensorInput(name: name, shape: shape, elementType: type, data: UnsafeRawBufferPointer(buffer)))
        }
        var all: [PooledRequest] = []
        for _ in 0..<entry.requests.count { all.append(await entry.requests.acquire()) }
        nonisolated(unsafe) let given = inputs  // the buffers outlive the group (deallocated after it)
        await withTaskGroup(of: Void.self) { group in
            for pooled in all {
                group.addTask { try? await pooled.request.inferTensors(given) }
            }
        }
        for pooled in all { entry.requests.release(pooled) }
    }

    /// What the application is told about each model.
    var configs: [ModelConfig] {
        entries.values.sorted { $0.node.name < $1.node.name }.map { e in
            ModelConfig(
                name: e.node.name, decoder: e.node.spec.decoder.type.rawValue, labels: e.node.spec.decoder.labels ?? [],
                inputs: e.model.inputNames.map { TensorSpec(name: $0, shape: [], elementType: "") },
                outputs: e.model.outputNames)
        }
    }

    /// Runs `model` on a camera frame the caller holds, and writes the results as an `inferResult` payload. With
    /// `detection` settings for the model, a frame that is not due (or still) gets its camera's previous answer.
    func inferFrame(
        _ name: String, camera: CameraStream, frame: FrameInfo, wants: InferWants, into writer: inout WireWriter
    ) async throws {
        guard let entry = entries[name] else { throw unknownModel(name) }
        let gate = entry.detection.map { settings in
            gates.withLock { gates in
                let key = GateKey(model: name, camera: ObjectIdentifier(camera))
                if let gate = gates[key] { return gate }
                let gate = FrameGate(DetectionGate(detectFps: settings.detectFps, motion: settings.motion))
                gates[key] = gate
                return gate
            }
        }
        if let gate, gate.replay(camera: camera, frame: frame, wants: wants, into: &writer) {
            entry.skippedFrames.add(1, ordering: .relaxed)
            return
        }
        if gate == nil, inferAhead, await lookahead(entry, camera).answer(frame, wants: wants, into: &writer) {
            return
        }
        let request = await entry.requests.acquire()
        defer { entry.requests.release(request) }
        try await inferFrame(entry, request, camera: camera, slot: frame.slot)
        let start = writer.bytes.count
        write(request.request, wants: wants, into: &writer)
        let detector = entry.node.spec.decoder.type == .ssd || entry.node.spec.decoder.type == .yolo
        gate?.remember(
            writer.bytes[start...], wants: wants, inView: !detector || !request.request.detections.isEmpty)
    }

    /// The lookahead of a model on a camera, made (and told about the camera's frames) at the first call.
    private func lookahead(_ entry: Entry, _ camera: CameraStream) -> FrameLookahead {
        let key = GateKey(model: entry.node.name, camera: ObjectIdentifier(camera))
        let (lookahead, made) = lookaheads.withLock { lookaheads -> (FrameLookahead, Bool) in
            if let lookahead = lookaheads[key] { return (lookahead, false) }
            let ahead = queue == .doubledForOneCamera ? entry.requests.count : min(2, entry.requests.count)
            let lookahead = FrameLookahead(camera: camera, ahead: ahead) {
                [weak self] frame, wants, writer in
                guard let self else { throw CancellationError() }
                let request = await entry.requests.acquire()
                defer { entry.requests.release(request) }
                try await inferFrame(entry, request, camera: camera, slot: frame.slot)
                write(request.request, wants: wants, into: &writer)
            }
            lookaheads[key] = lookahead
            return (lookahead, true)
        }
        if made { camera.addObserver(FrameSignal { [weak lookahead] in lookahead?.frameDecoded() }) }
        return lookahead
    }

    /// Frame calls of `model` answered by inference run ahead, and frames run ahead nobody asked for, all cameras.
    func aheadCounts(model: String) -> (answered: UInt64, wasted: UInt64) {
        lookaheads.withLock { lookaheads in
            lookaheads.filter { $0.key.model == model }.values.reduce((0, 0)) { sum, lookahead in
                let counts = lookahead.counts
                return (sum.0 + counts.answered, sum.1 + counts.wasted)
            }
        }
    }

    /// Runs `model` on a camera frame the caller holds and lends its decoded detections to `body` (no copy).
    func detect<T>(
        _ name: String, camera: CameraStream, slot: Int, _ body: ([Detection]) throws -> T
    ) async throws -> T {
        guard let entry = entries[name] else { throw unknownModel(name) }
        let request = await entry.requests.acquire()
        defer { entry.requests.release(request) }
        try await inferFrame(entry, request, camera: camera, slot: slot)
        return try body(request.request.detections)
    }

    /// Scales the frame into the request's input and runs the model on it. A model that cannot take frames (a fixed
    /// batch of 4, say) answers with its clear error, which goes back to the caller like any inference error.
    private func inferFrame(_ entry: Entry, _ request: PooledRequest, camera: CameraStream, slot: Int) async throws {
        if let refused = entry.model.frameInputError { throw refused }
        let input = entry.model.frameInput
        let scaled =
            request.request.frameBuffer.baseAddress.map {
                request.scaler.scale(
                    camera, slot: slot, width: input.width, height: input.height,
                    order: input.channelOrder == .rgb ? .rgb : .bgr, into: $0)
            } ?? false
        guard scaled else {
            throw RemoteError(.inferenceFailed, "model \(entry.node.name): the frame could not be scaled to \(input)")
        }
        let started = monotonicNanos()
        try await request.request.inferFrame()
        record(entry, since: started)
    }

    /// Runs `model` on tensors the application wrote into the tensor arena.
    func inferTensors(
        _ name: String, inputs: [TensorInput], wants: InferWants, into writer: inout WireWriter
    ) async throws {
        guard let entry = entries[name] else { throw unknownModel(name) }
        let request = await entry.requests.acquire()
        defer { entry.requests.release(request) }
        let started = monotonicNanos()
        try await request.request.inferTensors(inputs)
        record(entry, since: started)
        write(request.request, wants: wants, into: &writer)
    }

    private func record(_ entry: Entry, since started: UInt64) {
        let elapsed = monotonicNanos() - started
        entry.latency.withLock { $0.record(nanos: elapsed) }
        entry.inferences.add(1, ordering: .relaxed)
    }

    private func unknownModel(_ name: String) -> RemoteError {
        let known = entries.keys.sorted().joined(separator: ", ")
        return RemoteError(
            .unknownModel,
            "no model node named \(name); the application's models are: \(known.isEmpty ? "none" : known)")
    }

    /// Results in the `inferResult` layout: detections, classes, then (if asked) tensors.
    private func write(_ request: InferenceRequest, wants: InferWants, into w: inout WireWriter) {
        let detections = wants.contains(.decoded) ? request.detections : []
        w.u32(UInt32(detections.count))
        for d in detections {
            w.i32(Int32(d.classId))
            w.f32(d.score)
            w.f32(d.box.xMin)
            w.f32(d.box.yMin)
            w.f32(d.box.xMax)
            w.f32(d.box.yMax)
        }
        let classes = wants.contains(.decoded) ? request.classifications : []
        w.u32(UInt32(classes.count))
        for c in classes {
            w.i32(Int32(c.classId))
            w.f32(c.score)
        }
        if wants.contains(.tensors) {
            let outputs = request.outputs
            w.u32(UInt32(outputs.count))
            for t in outputs {
                w.string(t.name)
                w.u8((TensorElementType(name: t.elementType.rawValue) ?? .u8).rawValue)
                w.u8(UInt8(t.shape.count))
                for d in t.shape { w.i64(Int64(d)) }
                w.blob(t.bytes)
            }
        } else {
            w.u32(0)
        }
    }
}

/// How many inference requests each model gets, and how many frames of one camera run ahead at once.
enum RequestQueue: Equatable {
    /// OpenVINO's optimal number of requests (at least two); at most two frames of a camera run ahead. For live
    /// cameras and one request at a time.
    case optimal
    /// Twice the optimal number, for files read as fast as possible with their inferences run ahead under THROUGHPUT:
    /// while a request's answer waits for the application and the next frame is scaled into another, every OpenVINO
    /// stream still has a request queued (bench/run, interleaved runs: idle 0.89 -> 0.21 core-ms a frame at four
    /// files). At most two frames of a camera run ahead.
    case doubled
    /// `doubled`, with the one camera's frames run ahead on every request (idle 0.97 -> 0.43 core-ms a frame with
    /// twelve frames decoded ahead, `StreamSource.framesAhead`).
    case doubledForOneCamera
}

/// An inference request with the scaler that fills its input; used by one task at a time.
final class PooledRequest: @unchecked Sendable {
    // Unchecked: a pooled request is handed to exactly one task at a time by `RequestPool`.
    let request: InferenceRequest
    let scaler = FrameScaler()
    init(_ request: InferenceRequest) { self.request = request }
}

/// A fixed set of requests; `acquire` waits (without blocking a thread) until one is free.
final class RequestPool: Sendable {
    private struct State {
        var free: [PooledRequest]
        var waiters: [CheckedContinuation<PooledRequest, Never>] = []
    }
    private let state: Mutex<State>
    /// How many requests the pool has.
    let count: Int

    init(_ requests: [InferenceRequest]) {
        state = Mutex(State(free: requests.map(PooledRequest.init)))
        count = requests.count
    }

    func acquire() async -> PooledRequest {
        if let r = state.withLock({ $0.free.popLast() }) { return r }
        return await withCheckedContinuation { c in
            let ready = state.withLock { s -> PooledRequest? in
                if let r = s.free.popLast() { return r }
                s.waiters.append(c)
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }

    func release(_ r: PooledRequest) {
        let waiter = state.withLock { s -> CheckedContinuation<PooledRequest, Never>? in
            if s.waiters.isEmpty {
                s.free.append(r)
                return nil
            }
            return s.waiters.removeFirst()
        }
        waiter?.resume(returning: r)
    }
}

/// An error to send back to the application as an `error` reply.
struct RemoteError: Error, CustomStringConvertible {
    var code: RemoteErrorCode
    var message: String
    init(_ code: RemoteErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
    var description: String { message }
}
