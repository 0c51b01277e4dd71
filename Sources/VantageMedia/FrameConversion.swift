internal import CFFmpeg

/// Converts decoded frames to packed BGR24 at a given size with swscale; reuses its context between calls.
struct BGRConverter: ~Copyable {
    private var context: OpaquePointer? = nil

    deinit { sws_freeContext(context) }

    /// Writes `frame` as BGR24 of `width`×`height` into `destination` with rows `stride` bytes apart.
    mutating func convert(
        _ frame: UnsafeMutablePointer<AVFrame>, to destination: UnsafeMutableRawPointer, width: Int, height: Int,
        stride: Int
    ) -> Bool {
        scale(frame, to: destination, width: width, height: height, stride: stride, format: AV_PIX_FMT_BGR24)
    }

    mutating func scale(
        _ frame: UnsafeMutablePointer<AVFrame>, to destination: UnsafeMutableRawPointer, width: Int, height: Int,
        stride: Int, format: AVPixelFormat
    ) -> Bool {
        let f = frame.pointee
        context = sws_getCachedContext(
            context, f.width, f.height, AVPixelFormat(rawValue: f.format), Int32(width), Int32(height), format,
            Int32(SWS_BILINEAR), nil, nil, nil)
        guard let context else { return false }
        var planes:
            (
                UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?,
                UnsafeMutablePointer<UInt8>?
            ) = (destination.assumingMemoryBound(to: UInt8.self), nil, nil, nil)
        var strides: (Int32, Int32, Int32, Int32) = (Int32(stride), 0, 0, 0)
        let rows = withUnsafePointer(to: frame.pointee.data) { data in
            withUnsafePointer(to: frame.pointee.linesize) { linesize in
                withUnsafeMutablePointer(to: &planes) { dst in
                    withUnsafeMutablePointer(to: &strides) { dstStride in
                        sws_scale(
                            context,
                            UnsafeRawPointer(data).assumingMemoryBound(to: UnsafePointer<UInt8>?.self),
                            UnsafeRawPointer(linesize).assumingMemoryBound(to: Int32.self),
                            0, f.height,
                            UnsafeMutableRawPointer(dst).assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self),
                            UnsafeMutableRawPointer(dstStride).assumingMemoryBound(to: Int32.self))
                    }
                }
            }
        }
        return rows > 0
    }
}

/// The channel order a model wants its pixels in.
public enum PixelOrder: String, Sendable, Codable { case rgb = "RGB", bgr = "BGR" }

/// Scales a camera's frame to a model's input size and channel order, straight into the model's input tensor.
/// One per inference worker; not shared between threads.
public final class FrameScaler {
    private var converter = BGRConverter()

    public init() {}

    /// Scales the decoded original of `slot` (not the BGR copy the application may have drawn on) into
    /// `destination`: packed 8-bit, `width`×`height`, rows `width*3` bytes apart. The caller holds the slot.
    public func scale(
        _ camera: CameraStream, slot: Int, width: Int, height: Int, order: PixelOrder,
        into destination: UnsafeMutableRawPointer
    ) -> Bool {
        let frame = camera.pool.frames[slot]
        guard frame.pointee.width > 0 else { return false }
        let started = threadCPUNanos()
        defer { camera.costs.addScale(nanos: threadCPUNanos() &- started) }
        return converter.scale(
            frame, to: destination, width: width, height: height, stride: width * 3,
            format: order == .rgb ? AV_PIX_FMT_RGB24 : AV_PIX_FMT_BGR24)
    }
}
