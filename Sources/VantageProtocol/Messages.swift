import Foundation

/// Sent by the runtime after `hello`: everything the application needs to know about its node.
public struct AppConfig: Codable, Sendable, Equatable {
    public var protocolVersion: UInt32
    public var application: String
    public var node: String
    public var inputs: [PortConfig]
    public var outputs: [PortConfig]
    public var models: [ModelConfig]
    public var cameras: [CameraConfig]
    public var tensorArena: TensorArenaConfig
    /// Writable folders: `storage` persists across restarts (Panorama's /opt/aws/panorama/storage), `logs` is
    /// where the app's logs go (Panorama's /opt/aws/panorama/logs).
    public var storageDirectory: String
    public var logsDirectory: String

    public init(
        protocolVersion: UInt32 = appProtocolVersion, application: String, node: String, inputs: [PortConfig],
        outputs: [PortConfig], models: [ModelConfig], cameras: [CameraConfig], tensorArena: TensorArenaConfig,
        storageDirectory: String, logsDirectory: String
    ) {
        self.protocolVersion = protocolVersion
        self.application = application
        self.node = node
        self.inputs = inputs
        self.outputs = outputs
        self.models = models
        self.cameras = cameras
        self.tensorArena = tensorArena
        self.storageDirectory = storageDirectory
        self.logsDirectory = logsDirectory
    }
}

/// A port of the code node. Parameter inputs carry their value; media inputs the indices of their cameras.
public struct PortConfig: Codable, Sendable, Equatable {
    public var name: String
    /// `media`, `string`, `int32`, `float32` or `boolean`.
    public var type: String
    public var value: ParameterLiteral?
    /// Media inputs: indices into `AppConfig.cameras`, in the order frames are delivered.
    public var cameras: [Int]?

    public init(name: String, type: String, value: ParameterLiteral? = nil, cameras: [Int]? = nil) {
        self.name = name
        self.type = type
        self.value = value
        self.cameras = cameras
    }
}

/// A parameter's value as a JSON literal.
public enum ParameterLiteral: Codable, Sendable, Equatable {
    case string(String), int(Int64), float(Double), bool(Bool)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .float(d)
        } else {
            self = .string(try c.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .int(let i): try c.encode(i)
        case .float(let d): try c.encode(d)
        case .bool(let b): try c.encode(b)
        }
    }
}

/// A model node the application may call by name.
public struct ModelConfig: Codable, Sendable, Equatable {
    public var name: String
    /// `ssd`, `yolo`, `classification` or `raw`.
    public var decoder: String
    public var labels: [String]
    public var inputs: [TensorSpec]
    public var outputs: [String]

    public init(name: String, decoder: String, labels: [String], inputs: [TensorSpec], outputs: [String]) {
        self.name = name
        self.decoder = decoder
        self.labels = labels
        self.inputs = inputs
        self.outputs = outputs
    }
}

/// A model input as the model itself declares it (for tensor calls).
public struct TensorSpec: Codable, Sendable, Equatable {
    public var name: String
    /// Dimensions; -1 where dynamic.
    public var shape: [Int]
    public var elementType: String

    public init(name: String, shape: [Int], elementType: String) {
        self.name = name
        self.shape = shape
        self.elementType = elementType
    }
}

/// A camera stream and the shared-memory file its frames live in.
public struct CameraConfig: Codable, Sendable, Equatable {
    /// The stream id (Panorama's `media.stream_id`).
    public var name: String
    /// The source without credentials (Panorama's `media.stream_uri`).
    public var uri: String
    public var sharedMemoryPath: String
    public var slotCount: Int
    public var slotCapacity: Int

    public init(name: String, uri: String, sharedMemoryPath: String, slotCount: Int, slotCapacity: Int) {
        self.name = name
        self.uri = uri
        self.sharedMemoryPath = sharedMemoryPath
        self.slotCount = slotCount
        self.slotCapacity = slotCapacity
    }
}

/// Shared memory where the application writes input tensors: `slotCount` slots of `slotCapacity` bytes. The
/// application owns the slots: it writes one, sends `infer` naming it, and may reuse it once the answer came.
public struct TensorArenaConfig: Codable, Sendable, Equatable {
    public var sharedMemoryPath: String
    public var slotCount: Int
    public var slotCapacity: Int

    public init(sharedMemoryPath: String, slotCount: Int, slotCapacity: Int) {
        self.sharedMemoryPath = sharedMemoryPath
        self.slotCount = slotCount
        self.slotCapacity = slotCapacity
    }
}

/// Names a frame in a camera's shared memory.
public struct FrameRef: Sendable, Equatable, Hashable {
    public var camera: UInt32
    public var slot: UInt32
    public var sequence: UInt64

    public init(camera: UInt32, slot: UInt32, sequence: UInt64) {
        self.camera = camera
        self.slot = slot
        self.sequence = sequence
    }
}

/// A frame as delivered in a `frames` message.
public struct FrameDescriptor: Sendable, Equatable {
    public var ref: FrameRef
    public var width: UInt32
    public var height: UInt32
    /// Bytes per row of the BGR image.
    public var stride: UInt32
    public var timestampMicros: Int64
    /// True when the camera had no new frame and this one was delivered before (Panorama's `is_cached`).
    public var isCached: Bool

    public init(
        ref: FrameRef, width: UInt32, height: UInt32, stride: UInt32, timestampMicros: Int64, isCached: Bool
    ) {
        self.ref = ref
        self.width = width
        self.height = height
        self.stride = stride
        self.timestampMicros = timestampMicros
        self.isCached = isCached
    }
}

/// An overlay the application attaches to a frame: a rectangle or a label, coordinates in 0–1.
public struct OverlayItem: Sendable, Equatable {
    public enum Kind: UInt8, Sendable { case rect = 1, label = 2 }
    public var kind: Kind
    public var x0: Float, y0: Float, x1: Float, y1: Float
    /// 0xRRGGBB.
    public var color: UInt32
    public var text: String

    public static func rect(_ x0: Float, _ y0: Float, _ x1: Float, _ y1: Float, color: UInt32 = 0x00FF00) -> Self {
        OverlayItem(kind: .rect, x0: x0, y0: y0, x1: x1, y1: y1, color: color, text: "")
    }

    public static func label(_ text: String, _ x: Float, _ y: Float, color: UInt32 = 0xFFFFFF) -> Self {
        OverlayItem(kind: .label, x0: x, y0: y, x1: x, y1: y, color: color, text: text)
    }
}

/// Element types of tensors on the wire.
public enum TensorElementType: UInt8, Sendable, Codable {
    case u8 = 1, f32 = 2, i32 = 3, i64 = 4, f16 = 5

    public var byteSize: Int {
        switch self {
        case .u8: 1
        case .f16: 2
        case .f32, .i32: 4
        case .i64: 8
        }
    }

    public init?(name: String) {
        switch name.lowercased() {
        case "u8", "uint8": self = .u8
        case "f32", "float32", "float": self = .f32
        case "i32", "int32": self = .i32
        case "i64", "int64": self = .i64
        case "f16", "float16": self = .f16
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .u8: "u8"
        case .f32: "f32"
        case .i32: "i32"
        case .i64: "i64"
        case .f16: "f16"
        }
    }
}

/// What an `infer` request asks back (flags).
public struct InferWants: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// The model's decoder results (detections or classes).
    public static let decoded = InferWants(rawValue: 1)
    /// The raw output tensors, in the model's output order.
    public static let tensors = InferWants(rawValue: 2)
}

/// Error codes of `error` replies.
public enum RemoteErrorCode: UInt32, Sendable {
    case badRequest = 1, unknownModel = 2, unknownPort = 3, inferenceFailed = 4, unknownFrame = 5, eventRejected = 6
}

extension WireWriter {
    public mutating func frameRef(_ r: FrameRef) {
        u32(r.camera)
        u32(r.slot)
        u64(r.sequence)
    }

    public mutating func frame(_ f: FrameDescriptor) {
        frameRef(f.ref)
        u32(f.width)
        u32(f.height)
        u32(f.stride)
        i64(f.timestampMicros)
        bool(f.isCached)
    }

    public mutating func overlay(_ o: OverlayItem) {
        u8(o.kind.rawValue)
        f32(o.x0)
        f32(o.y0)
        f32(o.x1)
        f32(o.y1)
        u32(o.color)
        string(o.text)
    }
}

extension WireReader {
    public mutating func frameRef() throws(ProtocolError) -> FrameRef {
        FrameRef(camera: try u32(), slot: try u32(), sequence: try u64())
    }

    public mutating func frame() throws(ProtocolError) -> FrameDescriptor {
        FrameDescriptor(
            ref: try frameRef(), width: try u32(), height: try u32(), stride: try u32(),
            timestampMicros: try i64(), isCached: try bool())
    }

    public mutating func overlay() throws(ProtocolError) -> OverlayItem {
        guard let kind = OverlayItem.Kind(rawValue: try u8()) else { throw ProtocolError("unknown overlay kind") }
        return OverlayItem(
            kind: kind, x0: try f32(), y0: try f32(), x1: try f32(), y1: try f32(), color: try u32(),
            text: try string())
    }
}
