internal import CFFmpeg
import Foundation
import VantageCore

extension MediaError.Code {
    /// The camera's packet ring holds no decodable video near the asked time (the stream is not connected yet,
    /// it stalled, or its ring does not reach back that far).
    public static let frameUnavailable = MediaError.Code(name: "frameUnavailable")
}

/// Decodes single frames of a camera that is read but not decoded (a main stream, whose camera detects on its
/// sub-stream) from its packet ring: the pictures of event snapshots at the main stream's resolution.
///
/// A frame costs decoding its group of pictures up to it: from the key frame at or before it, up to the camera's
/// key-frame interval (25 frames of 1080p H.264 is about 150 core-ms), so this is for rare pictures (an event's
/// snapshot), never for every frame. The decoder context, its frames and the BGR buffer are made at the first frame
/// and reused (the context is made again only when the camera's codec parameters change); each call takes
/// references to the packets it decodes (the compressed data is shared with the ring, not copied).
///
/// Not thread-safe: one decoder per thread (a snapshot worker's).
public final class StillFrameDecoder {
    private let camera: CameraStream?
    private let ring: PacketRing?
    private let name: String
    private let maxWidth: Int
    private let maxHeight: Int
    private var codec: UnsafeMutablePointer<AVCodecContext>?
    /// The segment whose parameters `codec` was opened with.
    private var openedFor: PacketSegment?
    private let decoded: UnsafeMutablePointer<AVFrame>
    private let chosen: UnsafeMutablePointer<AVFrame>
    private var converter = BGRConverter()
    private var pixels = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// How far from the asked time the frame may be.
    static let toleranceMicros: Int64 = 1_000_000

    /// A decoder for the frames of `camera`, which keeps a packet ring (`packetRingSeconds` above 0). Frames larger
    /// than the camera's `maxWidth`×`maxHeight` are scaled down to fit, as decoded frames are.
    public convenience init(camera: CameraStream) {
        self.init(
            camera: camera, ring: camera.packetRing, name: camera.source.name, maxWidth: camera.source.maxWidth,
            maxHeight: camera.source.maxHeight)
    }

    init(camera: CameraStream?, ring: PacketRing?, name: String, maxWidth: Int = 1920, maxHeight: Int = 1080) {
        self.camera = camera
        self.ring = ring
        self.name = name
        self.maxWidth = maxWidth
        self.maxHeight = maxHeight
        decoded = av_frame_alloc()!
        chosen = av_frame_alloc()!
    }

    deinit {
        closeCodec()
        var d: UnsafeMutablePointer<AVFrame>? = decoded
        av_frame_free(&d)
        var c: UnsafeMutablePointer<AVFrame>? = chosen
        av_frame_free(&c)
        pixels.deallocate()
    }

    /// The frame of the camera nearest `time` (wall clock), as BGR. When the camera streams but has not read up to
    /// `time` yet (a main stream a little behind its sub-stream), waits for it at most `limit` — unless it is so far
    /// behind that it could not get there in time (stalled), so that a dead stream does not hold up every picture.
    /// The image lives in the decoder's buffer: valid until the next call, and the caller may draw on it.
    public func frame(at time: Date, waitUpTo limit: Duration = .seconds(1)) throws(MediaError) -> ImageBuffer {
        waitForCamera(through: time, upTo: limit)
        return try frame(atMicros: time.wallMicros)
    }

    /// Waits, at most `limit`, until the camera has read up to `time` — unless it is not streaming or so far behind
    /// that it could not get there in time (stalled).
    public func waitForCamera(through time: Date, upTo limit: Duration) {
        if let camera, camera.snapshot.state == .streaming, let newest = camera.packetRingSpan?.newest,
            newest < time, newest.addingTimeInterval(limit.seconds) >= time
        {
            camera.waitForPackets(through: time, upTo: limit)
        }
    }

    /// The frame nearest `atMicros` (wall clock) from the packets the ring holds now.
    func frame(atMicros: Int64) throws(MediaError) -> ImageBuffer {
        guard let ring else {
            throw MediaError(
                .packetRingOff, "camera \(name): no frame can be decoded, the camera keeps no packet ring",
                hint: "set packetRingSeconds above 0")
        }
        let packets: ClipPackets
        switch ring.selectFrame(atMicros: atMicros, toleranceMicros: Self.toleranceMicros) {
        case .frame(let selected): packets = selected
        case .empty:
            throw MediaError(.frameUnavailable, "camera \(name): no video yet, the camera's packet ring is empty")
        case .notHeld(let oldest, let newest):
            let held = "\(Date(wallMicros: oldest).clipTimeText)–\(Date(wallMicros: newest).clipTimeText)"
            throw MediaError(
                .frameUnavailable,
                "camera \(name): no video near \(Date(wallMicros: atMicros).clipTimeText), the packet ring holds \(held)"
            )
        case .noKeyFrame:
            throw MediaError(
                .frameUnavailable, "camera \(name): no key frame before \(Date(wallMicros: atMicros).clipTimeText)")
        case .outOfMemory:
            throw MediaError(.outOfMemory, "camera \(name): out of memory taking the packets of a frame")
        }
        let codec = try decoder(for: packets.segments[0])
        defer {
            avcodec_flush_buffers(codec)  // ready for the next frame, which starts at a key frame again
            av_frame_unref(chosen)
        }
        try decode(packets, with: codec)
        guard chosen.pointee.width > 0 else {
            throw MediaError(.decodeFailed, "camera \(name): the decoder gave no frame for the packets it was given")
        }
        return try convertChosen()
    }

    /// Sends the packets, drains the decoder and keeps in `chosen` the frame of the last packet (the one with its
    /// presentation time, should the camera reorder frames; else the last one out).
    private func decode(_ packets: ClipPackets, with codec: UnsafeMutablePointer<AVCodecContext>) throws(MediaError) {
        let none = vantage_av_nopts_value()
        let targetPTS = packets.packets.last!.pointee.pts
        var found = false
        func receive() throws(MediaError) {
            while true {
                let status = avcodec_receive_frame(codec, decoded)
                if status == vantage_averror_eagain() || status == vantage_averror_eof() { return }
                try check(status, .decodeFailed, "camera \(name): the decoder failed on a snapshot's frame")
                let pts = decoded.pointee.best_effort_timestamp
                if !found {
                    found = targetPTS != none && pts == targetPTS
                    av_frame_unref(chosen)
                    av_frame_move_ref(chosen, decoded)
                } else {
                    av_frame_unref(decoded)
                }
            }
        }
        for packet in packets.packets {
            let sent = avcodec_send_packet(codec, packet)
            if sent < 0 && sent != vantage_averror_eagain() {
                throw MediaError(
                    .decodeFailed, "camera \(name): the decoder refused a packet of a snapshot's frame",
                    cause: ffmpegErrorText(sent))
            }
            try receive()
        }
        avcodec_send_packet(codec, nil)  // drain: a decoder with delay holds the last frames back
        try receive()
    }

    /// The decoder for a segment's packets: the one already open when the parameters are the same.
    private func decoder(for segment: PacketSegment) throws(MediaError) -> UnsafeMutablePointer<AVCodecContext> {
        if let codec, let openedFor, openedFor === segment || openedFor.continues(into: segment) {
            self.openedFor = segment
            return codec
        }
        closeCodec()
        let parameters = segment.parameters
        guard let decoder = avcodec_find_decoder(parameters.pointee.codec_id) else {
            throw MediaError(
                .unsupportedCodec,
                "camera \(name): this box cannot decode \(String(cString: avcodec_get_name(parameters.pointee.codec_id)))",
                hint: "set the camera's main stream to H.264")
        }
        guard let context = avcodec_alloc_context3(decoder) else {
            throw MediaError(.outOfMemory, "camera \(name): out of memory creating a decoder")
        }
        codec = context
        try check(
            avcodec_parameters_to_context(context, parameters), .unsupportedCodec,
            "camera \(name): cannot configure the decoder")
        context.pointee.pkt_timebase = segment.timeBase
        // One thread: a snapshot is decoded off the frame loop, beside the cameras' own decoding and inference.
        context.pointee.thread_count = 1
        try check(avcodec_open2(context, decoder, nil), .unsupportedCodec, "camera \(name): cannot open the decoder")
        openedFor = segment
        return context
    }

    private func closeCodec() {
        if codec != nil { avcodec_free_context(&codec) }
        openedFor = nil
    }

    /// `chosen` as BGR in `pixels` (grown only for a larger frame), fitted within the maximum size.
    private func convertChosen() throws(MediaError) -> ImageBuffer {
        var width = Int(chosen.pointee.width)
        var height = Int(chosen.pointee.height)
        if width > maxWidth || height > maxHeight {
            let scale = min(Double(maxWidth) / Double(width), Double(maxHeight) / Double(height))
            width = Int(Double(width) * scale) & ~1
            height = Int(Double(height) * scale) & ~1
        }
        let stride = FramePool.alignedStride(width: width)
        if pixels.count < stride * height {
            pixels.deallocate()
            pixels = UnsafeMutableRawBufferPointer.allocate(byteCount: stride * height, alignment: 64)
        }
        guard let base = pixels.baseAddress,
            converter.convert(chosen, to: base, width: width, height: height, stride: stride)
        else {
            throw MediaError(.decodeFailed, "camera \(name): cannot convert a \(width)x\(height) frame to BGR")
        }
        return ImageBuffer(base: base, width: width, height: height, stride: stride)
    }
}
