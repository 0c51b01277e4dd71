// VantageSDK: write a Vantage application's code node in Swift.
//
// The runtime starts the node's executable and hands it a socket (VANTAGE_SOCKET). `Node.connect()` speaks the
// Vantage app protocol over it: frames arrive as lists per `frames()` (one per camera wired to the port), models
// are called by name, overlays and frames go out with `put`, events with `publish`.
import Foundation
import Synchronization
@_exported import VantageAnalytics
// The geometry, zones, lines and tracker settings the tracker takes live in VantageCore.
@_exported import VantageCore
@_exported import VantageProtocol

/// An error from the runtime or the connection, with what to do.
public struct NodeError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A result of a model call.
public struct InferenceResult: Sendable {
    /// Objects found (models with an `ssd` or `yolo` decoder), boxes in 0–1 of the frame.
    public var detections: [Detection] = []
    /// Classes (models with a `classification` decoder), best first.
    public var classes: [ClassScore] = []
    /// The raw output tensors, in the model's order (when asked for).
    public var tensors: [Tensor] = []
}

/// One object a detector found.
public struct Detection: Sendable, Equatable {
    public var classId: Int
    public var label: String
    public var score: Float
    public var xMin: Float, yMin: Float, xMax: Float, yMax: Float
}

/// One class a classifier reported.
public struct ClassScore: Sendable, Equatable {
    public var classId: Int
    public var label: String
    public var score: Float
}

/// A tensor, to send to a model or as it came back.
public struct Tensor: Sendable {
    public var name: String
    public var shape: [Int]
    public var elementType: TensorElementType
    public var data: [UInt8]

    public init(name: String, shape: [Int], elementType: TensorElementType, data: [UInt8]) {
        self.name = name
        self.shape = shape
        self.elementType = elementType
        self.data = data
    }

    /// The data as Float values (for `f32` tensors).
    public var floats: [Float] {
        data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}

/// A camera frame: BGR pixels in shared memory (writable: drawing on them shows in the live view), plus the
/// overlays the application attaches.
public struct Frame: @unchecked Sendable {
    // Unchecked: `pixels` points into shared memory that stays mapped for the node's life; the runtime does not
    // reuse the frame's slot until the application asked for the next frames of the port.
    public let streamId: String
    public let ref: FrameRef
    public let width: Int
    public let height: Int
    /// Bytes per row.
    public let stride: Int
    /// Packed BGR, `height` rows of `stride` bytes.
    public let pixels: UnsafeMutableRawPointer
    public let timestamp: Date
    /// True when the camera had no new frame since the last `frames()` (Panorama's `is_cached`).
    public let isCached: Bool
    public var overlays: [OverlayItem] = []

    /// Adds a rectangle, in 0–1 coordinates (Panorama's `add_rect(l, t, r, b)`).
    public mutating func addRect(_ left: Float, _ top: Float, _ right: Float, _ bottom: Float, color: UInt32 = 0x00FF00)
    {
        overlays.append(.rect(left, top, right, bottom, color: color))
    }

    /// Adds a text label at (x, y) in 0–1 coordinates (Panorama's `add_label(text, x, y)`).
    public mutating func addLabel(_ text: String, x: Float, y: Float, color: UInt32 = 0xFFFFFF) {
        overlays.append(.label(text, x, y, color: color))
    }
}

/// The application's side of the Vantage app protocol.
public final class Node: Sendable {
    // The mutable state is in `pending` and `freeArenaSlots` (Mutex); the rest is set once in init.
    /// Everything the runtime said about this node: ports, parameters, models, cameras.
    public let config: AppConfig
    public var name: String { config.node }
    private let channel: MessageChannel
    private let cameras: [SharedMemoryRegion]
    private let arena: SharedMemoryRegion
    private let pending = Mutex<[UInt32: CheckedContinuation<Reply, any Error>]>([:])
    private let nextRequest = Atomic<UInt32>(1)
    private let freeArenaSlots: Mutex<[Int]>
    private let closed = Atomic<Bool>(false)

    struct Reply: Sendable {
        var type: MessageType
        var payload: [UInt8]
    }

    /// Connects to the runtime that started this process (`VANTAGE_SOCKET`) and reads the node's configuration.
    public static func connect() throws -> Node {
        guard let path = ProcessInfo.processInfo.environment["VANTAGE_SOCKET"] else {
            throw NodeError(
                "VANTAGE_SOCKET is not set: this program is a Vantage code node; start it with `vantage run APP_DIR`")
        }
        return try Node(socketPath: path)
    }

    /// Connects to the runtime at `socketPath`.
    public init(socketPath: String) throws {
        channel = try MessageChannel.connect(path: socketPath)
        var writer = WireWriter()
        writer.begin(.hello)
        writer.u32(appProtocolVersion)
        writer.string(ProcessInfo.processInfo.environment["VANTAGE_NODE"] ?? "")
        try channel.send(&writer)
        var buffer = [UInt8]()
        let header = try channel.receive(into: &buffer)
        let payload = Array(buffer[messageHeaderSize..<messageHeaderSize + header.payloadLength])
        guard header.type == MessageType.config.rawValue else {
            if header.type == MessageType.error.rawValue {
                throw NodeError("the runtime refused this node: \(Self.errorText(payload))")
            }
            throw NodeError("the runtime sent \(header.type) instead of its configuration")
        }
        config = try JSONDecoder().decode(AppConfig.self, from: Data(payload))
        cameras = try config.cameras.map {
            try SharedMemoryRegion(opening: $0.sharedMemoryPath, size: $0.slotCount * $0.slotCapacity)
        }
        arena = try SharedMemoryRegion(
            opening: config.tensorArena.sharedMemoryPath,
            size: config.tensorArena.slotCount * config.tensorArena.slotCapacity)
        freeArenaSlots = Mutex(Array(0..<config.tensorArena.slotCount))
        let thread = Thread { [self] in readReplies() }
        thread.name = "vantage-sdk"
        thread.start()
    }

    // MARK: Parameters

    /// A parameter input's value (Panorama: `self.inputs.<name>.get()`).
    public func parameter(_ name: String) -> ParameterLiteral? {
        config.inputs.first { $0.name == name }?.value
    }

    public func float(_ name: String) -> Float? {
        switch parameter(name) {
        case .float(let d): Float(d)
        case .int(let i): Float(i)
        default: nil
        }
    }

    public func int(_ name: String) -> Int? {
        if case .int(let i) = parameter(name) { return Int(i) }
        return nil
    }

    public func string(_ name: String) -> String? {
        if case .string(let s) = parameter(name) { return s }
        return nil
    }

    public func bool(_ name: String) -> Bool? {
        if case .bool(let b) = parameter(name) { return b }
        return nil
    }

    // MARK: Frames

    /// The next frames of a media input: one per camera wired to it, at least one of them new. Returns nil when
    /// every source has ended (files played to their end); throws `NodeError` on timeout.
    ///
    /// With `images: false` the application promises not to read or draw on `pixels` (it only runs models and
    /// attaches overlays): the runtime then skips converting frames to BGR for it, which saves a few ms of CPU
    /// per 1080p frame. The live view and snapshots still get their pixels.
    public func frames(_ port: String = "video_in", timeout: Duration? = nil, images: Bool = true) async throws
        -> [Frame]?
    {
        let reply = try await request(.get) { w in
            w.string(port)
            w.i32(
                timeout.map {
                    Int32(clamping: $0.milliseconds)
                } ?? -1)
            w.bool(images)
        }
        switch reply.type {
        case .end: return nil
        case .timeout: throw NodeError("no frame on \(port) within the timeout")
        case .frames:
            return try reply.payload.withUnsafeBytes { raw in
                var r = WireReader(raw)
                let count = Int(try r.u32())
                var frames: [Frame] = []
                frames.reserveCapacity(count)
                for _ in 0..<count {
                    let d = try r.frame()
                    let camera = Int(d.ref.camera)
                    let region = cameras[camera]
                    let slotCapacity = config.cameras[camera].slotCapacity
                    frames.append(
                        Frame(
                            streamId: config.cameras[camera].name, ref: d.ref, width: Int(d.width),
                            height: Int(d.height), stride: Int(d.stride),
                            pixels: region.base + Int(d.ref.slot) * slotCapacity,
                            timestamp: Date(timeIntervalSince1970: Double(d.timestampMicros) / 1e6),
                            isCached: d.isCached))
                }
                return frames
            }
        default: throw NodeError("unexpected reply \(reply.type) to frames()")
        }
    }

    /// Sends frames (with their overlays, and whatever was drawn on their pixels) to an output port, e.g. the
    /// live view (Panorama: `self.outputs.video_out.put(streams)`).
    public func put(_ frames: [Frame], to port: String = "video_out") throws {
        guard !frames.isEmpty else { throw NodeError("put() needs at least one frame") }
        var w = WireWriter()
        w.begin(.put)
        w.string(port)
        w.u32(UInt32(frames.count))
        for f in frames {
            w.frameRef(f.ref)
            w.u32(UInt32(f.overlays.count))
            for o in f.overlays { w.overlay(o) }
        }
        try channel.send(&w)
    }

    // MARK: Models

    /// Runs a detector on a frame (the runtime scales and converts it for the model) and returns what it found.
    public func detect(_ model: String, on frame: Frame) async throws -> [Detection] {
        try await infer(model, on: frame).detections
    }

    /// Runs a model on a frame; pre-processing is done by the runtime, fused into the model.
    public func infer(_ model: String, on frame: Frame, tensors: Bool = false) async throws -> InferenceResult {
        let wants: InferWants = tensors ? [.decoded, .tensors] : .decoded
        let reply = try await request(.infer) { w in
            w.string(model)
            w.u8(wants.rawValue)
            w.u8(0)
            w.frameRef(frame.ref)
        }
        return try decodeResult(reply, model: model)
    }

    /// Runs a model on tensors the application made (already pre-processed). They travel in shared memory.
    public func infer(_ model: String, tensors inputs: [Tensor]) async throws -> InferenceResult {
        var slots: [Int] = []
        defer { freeArenaSlots.withLock { $0.append(contentsOf: slots) } }
        for input in inputs {
            guard input.data.count <= config.tensorArena.slotCapacity else {
                throw NodeError(
                    "tensor \(input.name) has \(input.data.count) bytes; the runtime's tensor slots hold "
                        + "\(config.tensorArena.slotCapacity): start vantage run with a larger --tensor-slot-mb")
            }
            guard let slot = freeArenaSlots.withLock({ $0.popLast() }) else {
                throw NodeError("more than \(config.tensorArena.slotCount) tensor calls in flight at once")
            }
            slots.append(slot)
            input.data.withUnsafeBytes { raw in
                (arena.base + slot * config.tensorArena.slotCapacity).copyMemory(
                    from: raw.baseAddress!, byteCount: raw.count)
            }
        }
        let reply = try await request(.infer) { w in
            w.string(model)
            w.u8(InferWants([.decoded, .tensors]).rawValue)
            w.u8(1)
            w.u32(UInt32(inputs.count))
            for (input, slot) in zip(inputs, slots) {
                w.string(input.name)
                w.u8(input.elementType.rawValue)
                w.u8(UInt8(input.shape.count))
                for d in input.shape { w.i64(Int64(d)) }
                w.u32(UInt32(slot))
                w.u64(UInt64(input.data.count))
            }
        }
        return try decodeResult(reply, model: model)
    }

    private func decodeResult(_ reply: Reply, model: String) throws -> InferenceResult {
        guard reply.type == .inferResult else { throw NodeError("unexpected reply \(reply.type) to infer()") }
        let labels = config.models.first { $0.name == model }?.labels ?? []
        func label(_ id: Int) -> String { id >= 0 && id < labels.count ? labels[id] : "class \(id)" }
        return try reply.payload.withUnsafeBytes { raw in
            var r = WireReader(raw)
            var result = InferenceResult()
            let detections = Int(try r.u32())
            result.detections.reserveCapacity(detections)
            for _ in 0..<detections {
                let id = Int(try r.i32())
                result.detections.append(
                    Detection(
                        classId: id, label: label(id), score: try r.f32(), xMin: try r.f32(), yMin: try r.f32(),
                        xMax: try r.f32(), yMax: try r.f32()))
            }
            let classes = Int(try r.u32())
            for _ in 0..<classes {
                let id = Int(try r.i32())
                result.classes.append(ClassScore(classId: id, label: label(id), score: try r.f32()))
            }
            let tensors = Int(try r.u32())
            for _ in 0..<tensors {
                let name = try r.string()
                guard let type = TensorElementType(rawValue: try r.u8()) else { throw NodeError("bad tensor type") }
                let rank = Int(try r.u8())
                var shape: [Int] = []
                for _ in 0..<rank { shape.append(Int(try r.i64())) }
                let data = Array(try r.blob())
                result.tensors.append(Tensor(name: name, shape: shape, elementType: type, data: data))
            }
            return result
        }
    }

    // MARK: Events

    /// Publishes an event (a JSON object) with an optional snapshot of a frame, drawn with its overlays. Returns
    /// once the runtime has stored it: an accepted event is not lost.
    public func publish(_ payload: some Encodable, snapshot: Frame? = nil) async throws {
        let json = try JSONEncoder().encode(payload)
        let reply = try await request(.event) { w in
            w.string(String(decoding: json, as: UTF8.self))
            w.bool(snapshot != nil)
            if let snapshot {
                w.frameRef(snapshot.ref)
                w.u32(UInt32(snapshot.overlays.count))
                for o in snapshot.overlays { w.overlay(o) }
            }
        }
        guard reply.type == .ok else { throw NodeError("unexpected reply \(reply.type) to publish()") }
    }

    // MARK: Plumbing

    private func request(_ type: MessageType, _ body: (inout WireWriter) -> Void) async throws -> Reply {
        let id = nextRequest.add(1, ordering: .relaxed).oldValue
        var writer = WireWriter(capacity: 256)
        writer.begin(type, requestId: id)
        body(&writer)
        let reply = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Reply, any Error>) in
            if closed.load(ordering: .relaxed) {
                continuation.resume(throwing: NodeError("the connection to the runtime is closed"))
                return
            }
            pending.withLock { $0[id] = continuation }
            do {
                try channel.send(&writer)
            } catch {
                if let c = pending.withLock({ $0.removeValue(forKey: id) }) { c.resume(throwing: error) }
            }
        }
        if reply.type == .error { throw NodeError(Self.errorText(reply.payload)) }
        return reply
    }

    private static func errorText(_ payload: [UInt8]) -> String {
        payload.withUnsafeBytes { raw in
            var r = WireReader(raw)
            _ = try? r.u32()
            return (try? r.string()) ?? "unknown error"
        }
    }

    private func readReplies() {
        var buffer = [UInt8]()
        while true {
            do {
                let header = try channel.receive(into: &buffer)
                let payload = Array(buffer[messageHeaderSize..<messageHeaderSize + header.payloadLength])
                guard let type = MessageType(rawValue: header.type) else { continue }
                if header.requestId == 0 {
                    if type == .error {
                        FileHandle.standardError.write(Data("vantage: \(Self.errorText(payload))\n".utf8))
                    }
                    continue
                }
                let continuation = pending.withLock { $0.removeValue(forKey: header.requestId) }
                continuation?.resume(returning: Reply(type: type, payload: payload))
            } catch {
                closed.store(true, ordering: .relaxed)
                let waiting = pending.withLock { p in
                    defer { p.removeAll() }; return Array(p.values)
                }
                for c in waiting { c.resume(throwing: NodeError("the runtime closed the connection: \(error)")) }
                return
            }
        }
    }
}
