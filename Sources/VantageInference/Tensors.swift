/// The element type of a tensor, named as in a model descriptor (`"u8"`, `"f32"`, …).
public enum ElementType: String, Sendable, CaseIterable, CustomStringConvertible {
    case boolean, bf16, f16, f32, f64, i8, i16, i32, i64, u8, u16, u32, u64

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .boolean, .i8, .u8: 1
        case .bf16, .f16, .i16, .u16: 2
        case .f32, .i32, .u32: 4
        case .f64, .i64, .u64: 8
        }
    }

    /// The descriptor's name for it, e.g. `f32`.
    public var description: String { rawValue }
}

/// The order of the three colour channels in a packed frame.
public enum ChannelOrder: String, Sendable, CustomStringConvertible {
    case rgb, bgr

    /// `RGB` or `BGR`.
    public var description: String { rawValue.uppercased() }
}

/// What a frame must be turned into before ``InferenceRequest/inferFrame()``: scaled to `width` × `height`, in
/// `channelOrder`, packed 8-bit, rows of `width * 3` bytes with no padding (HWC). The model's own layout, element
/// type and normalisation are done inside the compiled model.
public struct FrameInputFormat: Sendable, Equatable, CustomStringConvertible {
    /// Pixels per row.
    public var width: Int
    /// Rows.
    public var height: Int
    /// The channel order the model expects.
    public var channelOrder: ChannelOrder

    /// A frame format of `width` × `height` pixels in `channelOrder`.
    public init(width: Int, height: Int, channelOrder: ChannelOrder) {
        self.width = width
        self.height = height
        self.channelOrder = channelOrder
    }

    /// Always 3: packed RGB or BGR.
    public var bytesPerPixel: Int { 3 }
    /// `width * 3`.
    public var bytesPerRow: Int { width * bytesPerPixel }
    /// `width * height * 3`: the size of ``InferenceRequest/frameBuffer``.
    public var byteCount: Int { bytesPerRow * height }

    /// E.g. `300x300 RGB u8 HWC`.
    public var description: String { "\(width)x\(height) \(channelOrder) u8 HWC" }
}

/// A tensor an application made itself (for instance a Panorama application's float32 NCHW array, already
/// normalised), fed to the model as it is with ``InferenceRequest/inferTensors(_:)``.
///
/// `data` is read during the call only; it must stay valid until the call returns.
public struct TensorInput {
    /// The model input's name (for a TensorFlow graph, with its `:0`).
    public var name: String
    /// Dimensions, outermost first, e.g. `[1, 3, 224, 224]`.
    public var shape: [Int]
    /// The type of each element; must be the model input's type.
    public var elementType: ElementType
    /// The elements, densely packed, `shape.reduce(1, *) * elementType.byteSize` bytes.
    public var data: UnsafeRawBufferPointer

    /// A tensor for input `name`, reading `data` during the call.
    public init(name: String, shape: [Int], elementType: ElementType, data: UnsafeRawBufferPointer) {
        self.name = name
        self.shape = shape
        self.elementType = elementType
        self.data = data
    }
}

/// One output tensor of the last inference, as the model produced it. `bytes` points into the request's memory and
/// is valid until the request's next call (copy what must outlive it).
public struct TensorView {
    /// The output's name in the model.
    public var name: String
    /// Dimensions, outermost first.
    public var shape: [Int]
    /// The element type (`f32` for every output when the model has a decoder other than `raw`).
    public var elementType: ElementType
    /// The elements, densely packed.
    public var bytes: UnsafeRawBufferPointer

    /// A view of `bytes` as a tensor.
    public init(name: String, shape: [Int], elementType: ElementType, bytes: UnsafeRawBufferPointer) {
        self.name = name
        self.shape = shape
        self.elementType = elementType
        self.bytes = bytes
    }

    /// The elements as `Float`s, when the tensor is `f32`.
    public var floats: UnsafeBufferPointer<Float>? {
        guard elementType == .f32 else { return nil }
        return bytes.assumingMemoryBound(to: Float.self)
    }
}
