/// A request an application sent the runtime, decoded and checked: every count, length, rank, dimension, slot and
/// byte count in it fits the message it came in and the limits it was decoded with.
///
/// The runtime decodes every application → runtime message through ``AppRequestDecoder`` before it acts on it, so
/// the code that acts never does arithmetic on a value the application chose without a check first.
public enum AppRequest: Sendable, Equatable {
    /// `hello`: the protocol version the application speaks and the node it says it is.
    case hello(protocolVersion: UInt32, node: String)
    /// `get`: the next frames of a media input.
    case get(AppGetRequest)
    /// `put`: frames with their overlays, to an output port.
    case put(AppPutRequest)
    /// `infer`: a model run on a held frame or on tensors in the tensor arena.
    case infer(AppInferRequest)
    /// `event`: a JSON object to publish, with an optional snapshot.
    case event(AppEventRequest)
    /// `bye`: the application is leaving.
    case bye
}

/// `get`: the next frames of the media input `port`.
public struct AppGetRequest: Sendable, Equatable {
    public var port: String
    /// Milliseconds to wait; nil waits for ever (any negative value on the wire).
    public var timeoutMillis: Int?
    /// Whether the application reads pixels (frames need not be converted to BGR otherwise).
    public var wantsImages: Bool

    public init(port: String, timeoutMillis: Int?, wantsImages: Bool) {
        self.port = port
        self.timeoutMillis = timeoutMillis
        self.wantsImages = wantsImages
    }
}

/// `put`: frames the application passes to an output port, each with its overlays.
public struct AppPutRequest: Sendable, Equatable {
    public var port: String
    public var frames: [AppFrameOverlays]
    /// The overlays of every frame, one after the other: a frame's are `overlays[frame.overlays]`.
    public var overlays: [OverlayItem]

    public init(port: String, frames: [AppFrameOverlays], overlays: [OverlayItem]) {
        self.port = port
        self.frames = frames
        self.overlays = overlays
    }
}

/// A frame the application names, and where its overlays are in the request's `overlays`.
public struct AppFrameOverlays: Sendable, Equatable {
    public var ref: FrameRef
    public var overlays: Range<Int>

    public init(ref: FrameRef, overlays: Range<Int>) {
        self.ref = ref
        self.overlays = overlays
    }
}

/// `infer`: a model run on a frame the application holds, or on tensors it wrote into the tensor arena.
public struct AppInferRequest: Sendable, Equatable {
    public enum Input: Sendable, Equatable {
        /// A frame the application holds (input kind 0): the runtime scales it into the model's input.
        case frame(FrameRef)
        /// Tensors in the tensor arena (input kind 1), fed to the model as they are.
        case tensors([AppTensorInput])
    }

    public var model: String
    public var wants: InferWants
    public var input: Input

    public init(model: String, wants: InferWants, input: Input) {
        self.model = model
        self.wants = wants
        self.input = input
    }
}

/// A tensor in the tensor arena, as an `infer` request names it. Checked: `slot` is a slot of the arena,
/// `byteCount` fits a slot, every dimension is 1 or more and their product times the element size fits a slot
/// (it need not equal `byteCount`: the model's own check says what the shape needs).
public struct AppTensorInput: Sendable, Equatable {
    public var name: String
    public var elementType: TensorElementType
    public var shape: [Int]
    public var slot: Int
    public var byteCount: Int
    /// Where the tensor starts in the arena: `slot × slotCapacity` (checked not to overflow).
    public var arenaOffset: Int

    public init(
        name: String, elementType: TensorElementType, shape: [Int], slot: Int, byteCount: Int, arenaOffset: Int
    ) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
        self.slot = slot
        self.byteCount = byteCount
        self.arenaOffset = arenaOffset
    }
}

/// `event`: a JSON text (not parsed here) and an optional snapshot of a held frame with overlays.
public struct AppEventRequest: Sendable, Equatable {
    public var json: String
    public var snapshot: FrameRef?
    /// The snapshot's overlays (none without a snapshot).
    public var overlays: [OverlayItem]

    public init(json: String, snapshot: FrameRef?, overlays: [OverlayItem]) {
        self.json = json
        self.snapshot = snapshot
        self.overlays = overlays
    }
}

/// What an application's requests may ask for: the tensor arena it was given, and bounds on counts that keep a
/// single message from making the runtime allocate much more than the message's own size.
public struct AppRequestLimits: Sendable, Equatable {
    /// The tensor arena: its slots and their size in bytes.
    public var tensorSlots: Int
    public var tensorSlotBytes: Int
    /// Frames one `put` may name.
    public var maxFramesPerPut = 256
    /// Overlays one frame may carry.
    public var maxOverlaysPerFrame = 4096
    /// Tensors one `infer` may send.
    public var maxTensors = 64
    /// Dimensions one tensor may have.
    public var maxRank = 16
    /// Bytes of a name (port, model, tensor) and of an overlay's text; an event's JSON may be as long as its message.
    public var maxNameBytes = 4096

    public init(tensorSlots: Int, tensorSlotBytes: Int) {
        self.tensorSlots = tensorSlots
        self.tensorSlotBytes = tensorSlotBytes
    }
}

/// Decodes application → runtime messages into ``AppRequest`` values. Pure: it looks at the bytes and the limits
/// only, and keeps nothing between calls but reusable capacity (a warm decoder allocates nothing for a `put` or an
/// `event` but the strings it returns).
///
/// Guarantee: for any message type and any payload bytes, `decode` either returns a request whose values all hold
/// to ``AppRequestLimits`` and the fields' documentation, or throws a ``ProtocolError`` whose message names the
/// message and the field that is wrong (quoting at most a short prefix of any text). It never traps: no integer the
/// application sent is converted, multiplied, added or used as a count without an overflow-safe check, and no count
/// allocates before it is bounded by the bytes left in the payload. Fuzz targets call it directly.
///
/// Bytes after the fields a message type defines are ignored (a later version may add fields).
public struct AppRequestDecoder: Sendable {
    public var limits: AppRequestLimits
    private var frames: [AppFrameOverlays] = []
    private var overlays: [OverlayItem] = []
    private var tensors: [AppTensorInput] = []

    public init(limits: AppRequestLimits) {
        self.limits = limits
    }

    /// Decodes one message without keeping scratch capacity: for tests and fuzzing.
    public static func decode(
        type: UInt16, payload: UnsafeRawBufferPointer, limits: AppRequestLimits
    ) throws(ProtocolError) -> AppRequest {
        var decoder = AppRequestDecoder(limits: limits)
        return try decoder.decode(type: type, payload: payload)
    }

    /// Decodes one message's payload (the bytes after the 12-byte header).
    public mutating func decode(type: UInt16, payload: UnsafeRawBufferPointer) throws(ProtocolError) -> AppRequest {
        guard let messageType = MessageType(rawValue: type) else {
            throw ProtocolError("unknown message type \(type): this runtime speaks app protocol \(appProtocolVersion)")
        }
        switch messageType {
        case .hello:
            var r = FieldReader(payload, message: "hello")
            let version = try r.u32("protocolVersion")
            return .hello(protocolVersion: version, node: try r.name("node", limit: limits.maxNameBytes))
        case .get:
            var r = FieldReader(payload, message: "get")
            let port = try r.name("port", limit: limits.maxNameBytes)
            let timeout = try r.i32("timeoutMillis")
            let wantsImages = r.remaining > 0 ? try r.u8("images") != 0 : true
            return .get(
                AppGetRequest(port: port, timeoutMillis: timeout < 0 ? nil : Int(timeout), wantsImages: wantsImages))
        case .put:
            return .put(try decodePut(FieldReader(payload, message: "put")))
        case .infer:
            return .infer(try decodeInfer(FieldReader(payload, message: "infer")))
        case .event:
            return .event(try decodeEvent(FieldReader(payload, message: "event")))
        case .bye:
            return .bye
        case .config, .frames, .end, .timeout, .inferResult, .ok, .error:
            throw ProtocolError(
                "message type \(type) (\(messageType)) goes from the runtime to an application, not back")
        }
    }

    // MARK: Messages

    private mutating func decodePut(_ reader: FieldReader) throws(ProtocolError) -> AppPutRequest {
        var r = reader
        let port = try r.name("port", limit: limits.maxNameBytes)
        // A frame takes at least a FrameRef and an overlay count.
        let count = try r.count("count", minimumBytesEach: 16 + 4, limit: limits.maxFramesPerPut)
        frames.removeAll(keepingCapacity: true)
        overlays.removeAll(keepingCapacity: true)
        for index in 0..<count {
            let ref = try r.frameRef("frame \(index)")
            let range = try readOverlays(&r, of: "frame \(index)")
            frames.append(AppFrameOverlays(ref: ref, overlays: range))
        }
        return AppPutRequest(port: port, frames: frames, overlays: overlays)
    }

    private mutating func decodeEvent(_ reader: FieldReader) throws(ProtocolError) -> AppEventRequest {
        var r = reader
        let json = try r.text("json")
        overlays.removeAll(keepingCapacity: true)
        guard try r.u8("hasSnapshot") != 0 else { return AppEventRequest(json: json, snapshot: nil, overlays: []) }
        let ref = try r.frameRef("snapshot")
        _ = try readOverlays(&r, of: "snapshot")
        return AppEventRequest(json: json, snapshot: ref, overlays: overlays)
    }

    /// Appends a frame's overlays to `overlays` and returns where they are.
    private mutating func readOverlays(
        _ r: inout FieldReader, of what: @autoclosure () -> String
    ) throws(ProtocolError) -> Range<Int> {
        // An overlay takes at least its kind, four coordinates, a color and a text length.
        let count = try r.count(
            "\(what())'s overlay count", minimumBytesEach: 1 + 16 + 4 + 4, limit: limits.maxOverlaysPerFrame)
        let start = overlays.count
        for index in 0..<count {
            let rawKind = try r.u8("\(what())'s overlay \(index)")
            guard let kind = OverlayItem.Kind(rawValue: rawKind) else {
                throw r.failure("\(what())'s overlay \(index) has unknown kind \(rawKind) (1 rectangle, 2 label)")
            }
            let x0 = try r.f32("\(what())'s overlay \(index)")
            let y0 = try r.f32("\(what())'s overlay \(index)")
            let x1 = try r.f32("\(what())'s overlay \(index)")
            let y1 = try r.f32("\(what())'s overlay \(index)")
            let color = try r.u32("\(what())'s overlay \(index)")
            let text = try r.name("\(what())'s overlay \(index) text", limit: limits.maxNameBytes)
            overlays.append(OverlayItem(kind: kind, x0: x0, y0: y0, x1: x1, y1: y1, color: color, text: text))
        }
        return start..<overlays.count
    }

    private mutating func decodeInfer(_ reader: FieldReader) throws(ProtocolError) -> AppInferRequest {
        var r = reader
        let model = try r.name("model", limit: limits.maxNameBytes)
        let wants = InferWants(rawValue: try r.u8("wants"))
        let kind = try r.u8("inputKind")
        switch kind {
        case 0:
            return AppInferRequest(model: model, wants: wants, input: .frame(try r.frameRef("frame")))
        case 1:
            // A tensor takes at least a name's length, element type, rank, slot and byte count.
            let count = try r.count("tensor count", minimumBytesEach: 4 + 1 + 1 + 4 + 8, limit: limits.maxTensors)
            tensors.removeAll(keepingCapacity: true)
            for index in 0..<count { tensors.append(try tensor(&r, index: index)) }
            return AppInferRequest(model: model, wants: wants, input: .tensors(tensors))
        default:
            throw r.failure("unknown input kind \(kind) (0 a frame, 1 tensors)")
        }
    }

    private func tensor(_ r: inout FieldReader, index: Int) throws(ProtocolError) -> AppTensorInput {
        let name = try r.name("tensor \(index)'s name", limit: limits.maxNameBytes)
        let label = "tensor \(index) ('\(ProtocolError.prefix(name))')"
        let rawType = try r.u8("\(label)'s element type")
        guard let elementType = TensorElementType(rawValue: rawType) else {
            throw r.failure("\(label) has unknown element type \(rawType) (1 u8, 2 f32, 3 i32, 4 i64, 5 f16)")
        }
        let rank = Int(try r.u8("\(label)'s rank"))
        guard rank <= limits.maxRank else {
            throw r.failure("\(label) has \(rank) dimensions, more than the \(limits.maxRank) allowed")
        }
        guard rank <= r.remaining / 8 else { throw r.failure("the message ends early, in \(label)'s dimensions") }
        var shape: [Int] = []
        shape.reserveCapacity(rank)
        // The bytes the shape needs so far, kept at most a slot's size: the product can never overflow.
        var needed = elementType.byteSize
        for axis in 0..<rank {
            let dimension = try r.i64("\(label)'s dimensions")
            guard dimension > 0, let size = Int(exactly: dimension) else {
                throw r.failure(
                    "\(label) has dimension \(dimension) at axis \(axis): every dimension must be 1 or more")
            }
            let (product, overflow) = needed.multipliedReportingOverflow(by: size)
            guard !overflow, product <= limits.tensorSlotBytes else {
                throw r.failure(
                    "\(label)'s shape needs more than a tensor slot's \(limits.tensorSlotBytes) bytes: send a smaller "
                        + "tensor, or start vantage run with a larger --tensor-slot-mb")
            }
            needed = product
            shape.append(size)
        }
        let rawSlot = try r.u32("\(label)'s arenaSlot")
        let rawBytes = try r.u64("\(label)'s byteCount")
        guard let slot = Int(exactly: rawSlot), slot < limits.tensorSlots else {
            throw r.failure(
                "\(label) names tensor slot \(rawSlot), but the arena's slots are 0 to \(limits.tensorSlots - 1)")
        }
        guard let byteCount = Int(exactly: rawBytes), byteCount <= limits.tensorSlotBytes else {
            throw r.failure(
                "\(label) has \(rawBytes) bytes, more than a tensor slot's \(limits.tensorSlotBytes): send a smaller "
                    + "tensor, or start vantage run with a larger --tensor-slot-mb")
        }
        let (offset, overflow) = slot.multipliedReportingOverflow(by: limits.tensorSlotBytes)
        guard !overflow else { throw r.failure("\(label)'s tensor slot \(slot) is outside the arena") }
        return AppTensorInput(
            name: name, elementType: elementType, shape: shape, slot: slot, byteCount: byteCount, arenaOffset: offset)
    }
}

extension ProtocolError {
    /// At most the first 64 characters of a text an application sent, for error messages.
    public static func prefix(_ text: String) -> String {
        text.count > 64 ? String(text.prefix(64)) + "…" : text
    }
}

/// Reads the fields of one message, naming the message and the field when one is missing or wrong. The field's
/// description is built only on failure (the hot path formats nothing).
private struct FieldReader {
    private var reader: WireReader
    let message: StaticString

    init(_ payload: UnsafeRawBufferPointer, message: StaticString) {
        reader = WireReader(payload)
        self.message = message
    }

    var remaining: Int { reader.remaining }

    func failure(_ text: String) -> ProtocolError { ProtocolError("\(message): \(text)") }

    private func endsEarly(_ what: String) -> ProtocolError {
        failure("the message ends early, in \(what)")
    }

    private mutating func read<T: FixedWidthInteger>(
        _: T.Type, _ what: () -> String
    ) throws(ProtocolError) -> T {
        guard reader.remaining >= MemoryLayout<T>.size else { throw endsEarly(what()) }
        return try reader.integer(T.self)
    }

    mutating func u8(_ what: @autoclosure () -> String) throws(ProtocolError) -> UInt8 { try read(UInt8.self, what) }
    mutating func u32(_ what: @autoclosure () -> String) throws(ProtocolError) -> UInt32 { try read(UInt32.self, what) }
    mutating func i32(_ what: @autoclosure () -> String) throws(ProtocolError) -> Int32 { try read(Int32.self, what) }
    mutating func u64(_ what: @autoclosure () -> String) throws(ProtocolError) -> UInt64 { try read(UInt64.self, what) }
    mutating func i64(_ what: @autoclosure () -> String) throws(ProtocolError) -> Int64 { try read(Int64.self, what) }
    mutating func f32(_ what: @autoclosure () -> String) throws(ProtocolError) -> Float {
        Float(bitPattern: try read(UInt32.self, what))
    }

    mutating func frameRef(_ what: @autoclosure () -> String) throws(ProtocolError) -> FrameRef {
        guard reader.remaining >= 16 else { throw endsEarly("\(what())'s FrameRef") }
        return try reader.frameRef()
    }

    /// A `u32` count of items that take at least `minimumBytesEach` bytes: no more than `limit`, nor than the rest
    /// of the payload can hold (checked before anything is allocated for them).
    mutating func count(
        _ what: @autoclosure () -> String, minimumBytesEach: Int, limit: Int
    ) throws(ProtocolError) -> Int {
        let raw = try read(UInt32.self, what)
        guard let count = Int(exactly: raw), count <= limit else {
            throw failure("\(what()) is \(raw), more than the \(limit) allowed")
        }
        guard count <= reader.remaining / minimumBytesEach else {
            throw failure(
                "\(what()) is \(count), but only \(reader.remaining) bytes follow (each takes at least "
                    + "\(minimumBytesEach))")
        }
        return count
    }

    /// A string of at most `limit` bytes.
    mutating func name(_ what: @autoclosure () -> String, limit: Int) throws(ProtocolError) -> String {
        let bytes = try blob(what)
        guard bytes.count <= limit else {
            throw failure("\(what()) is \(bytes.count) bytes long, more than the \(limit) allowed")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A string as long as the message holds.
    mutating func text(_ what: @autoclosure () -> String) throws(ProtocolError) -> String {
        String(decoding: try blob(what), as: UTF8.self)
    }

    private mutating func blob(_ what: () -> String) throws(ProtocolError) -> UnsafeRawBufferPointer {
        let length = try read(UInt32.self, what)
        guard let count = Int(exactly: length), count <= reader.remaining else {
            throw failure("\(what()) claims \(length) bytes, but only \(reader.remaining) follow")
        }
        return try reader.blob(count: count)
    }
}
