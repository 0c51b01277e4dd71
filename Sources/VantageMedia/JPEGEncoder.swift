internal import CFFmpeg

/// Encodes BGR24 images to JPEG with libavcodec's `mjpeg` encoder.
///
/// The encoder keeps its codec context, YUV frame, packet and colour converter between calls and
/// only re-creates them when the image size or ``quality`` changes, so encoding a stream of
/// same-sized frames allocates nothing but the output. Not thread-safe: use one encoder per
/// thread or behind a lock. Failures throw ``MediaError`` (`encodeFailed`, `outOfMemory`, or
/// `unsupportedCodec` where FFmpeg was built without the `mjpeg` encoder).
public final class JPEGEncoder {
    /// JPEG quality from 1 (smallest) to 100 (best); mapped onto the encoder's fixed quantiser
    /// scale 31…2. Values outside 1–100 are clamped.
    public var quality: Int {
        didSet {
            quality = min(100, max(1, quality))
            if quality != oldValue { releaseCodec() }
        }
    }

    private var codecContext: UnsafeMutablePointer<AVCodecContext>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var converter: OpaquePointer?  // SwsContext
    private var width = 0
    private var height = 0
    private var framesEncoded: Int64 = 0

    /// Creates an encoder; FFmpeg is set up on the first ``encode(_:into:)``.
    public init(quality: Int = 80) {
        self.quality = min(100, max(1, quality))
    }

    deinit {
        releaseCodec()
    }

    /// The fixed quantiser scale for ``quality``: 2 (best) … 31 (worst).
    var quantiserScale: Int32 {
        Int32(31 - ((quality - 1) * 29 + 49) / 99)
    }

    /// Encodes `image` and replaces the contents of `output` with the JPEG bytes, reusing
    /// `output`'s storage when it is large enough.
    public func encode(_ image: ImageBuffer, into output: inout [UInt8]) throws {
        try withEncodedJPEG(image) { bytes in
            output.removeAll(keepingCapacity: true)
            output.append(contentsOf: bytes)
        }
    }

    /// Encodes `image` and returns the JPEG bytes.
    public func encode(_ image: ImageBuffer) throws -> [UInt8] {
        try withEncodedJPEG(image) { Array($0) }
    }

    /// Encodes `image` and lends the JPEG bytes to `body`; they are valid only inside `body`.
    /// Use this to copy the bytes straight into a buffer of your own.
    public func withEncodedJPEG<Result>(
        _ image: ImageBuffer,
        _ body: (UnsafeRawBufferPointer) throws -> Result
    ) throws -> Result {
        guard image.width > 0, image.height > 0 else {
            throw MediaError(
                .encodeFailed,
                "cannot encode a \(image.width)×\(image.height) image as JPEG: it has no pixels",
                hint: "pass an image at least 1×1"
            )
        }
        guard image.width <= 65_500, image.height <= 65_500 else {
            throw MediaError(
                .encodeFailed,
                "cannot encode a \(image.width)×\(image.height) image as JPEG: it allows at most 65500 per side",
                hint: "scale the image down first"
            )
        }
        if codecContext == nil || image.width != width || image.height != height {
            try openCodec(width: image.width, height: image.height)
        }
        guard let codecContext, let frame, let packet, let converter else {
            throw MediaError(.encodeFailed, "the JPEG encoder is not set up")
        }

        try check(av_frame_make_writable(frame), .outOfMemory, "preparing the YUV frame for the JPEG encoder")
        // swscale reads four plane pointers and strides even for a packed format.
        let source = UnsafePointer<UInt8>(image.base.assumingMemoryBound(to: UInt8.self))
        var sourcePlanes: (UnsafePointer<UInt8>?, UnsafePointer<UInt8>?, UnsafePointer<UInt8>?, UnsafePointer<UInt8>?) =
            (source, nil, nil, nil)
        var sourceStrides: (Int32, Int32, Int32, Int32) = (Int32(image.stride), 0, 0, 0)
        let rows = withUnsafeBytes(of: &sourcePlanes) { sourcePlanes in
            withUnsafeBytes(of: &sourceStrides) { sourceStrides in
                withUnsafeMutableBytes(of: &frame.pointee.data) { planes in
                    withUnsafeMutableBytes(of: &frame.pointee.linesize) { strides in
                        sws_scale(
                            converter,
                            sourcePlanes.baseAddress!.assumingMemoryBound(to: UnsafePointer<UInt8>?.self),
                            sourceStrides.baseAddress!.assumingMemoryBound(to: Int32.self),
                            0,
                            Int32(image.height),
                            planes.baseAddress!.assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self),
                            strides.baseAddress!.assumingMemoryBound(to: Int32.self)
                        )
                    }
                }
            }
        }
        guard rows == Int32(image.height) else {
            throw MediaError(
                .encodeFailed,
                "converting the BGR image to YUV for JPEG produced \(rows) of \(image.height) rows"
            )
        }

        frame.pointee.pts = framesEncoded
        frame.pointee.quality = codecContext.pointee.global_quality
        framesEncoded += 1
        try check(avcodec_send_frame(codecContext, frame), .encodeFailed, "sending a frame to the JPEG encoder")
        try check(avcodec_receive_packet(codecContext, packet), .encodeFailed, "receiving the JPEG from the encoder")
        defer { av_packet_unref(packet) }
        return try body(UnsafeRawBufferPointer(start: packet.pointee.data, count: Int(packet.pointee.size)))
    }

    private func openCodec(width: Int, height: Int) throws {
        releaseCodec()
        guard let codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG) else {
            throw MediaError(
                .unsupportedCodec,
                "FFmpeg has no mjpeg encoder, so the live view cannot make JPEGs",
                hint: "install Debian's full libavcodec (libavcodec59)"
            )
        }
        guard let context = avcodec_alloc_context3(codec) else {
            throw MediaError(.outOfMemory, "out of memory creating the JPEG encoder")
        }
        codecContext = context
        context.pointee.width = Int32(width)
        context.pointee.height = Int32(height)
        context.pointee.pix_fmt = AV_PIX_FMT_YUVJ420P
        context.pointee.color_range = AVCOL_RANGE_JPEG
        context.pointee.time_base = AVRational(num: 1, den: 25)
        context.pointee.thread_count = 1
        // A fixed quantiser: every frame gets the same quality, whatever its content.
        context.pointee.flags |= Int32(AV_CODEC_FLAG_QSCALE)
        context.pointee.global_quality = Int32(FF_QP2LAMBDA) * quantiserScale
        do {
            try check(
                avcodec_open2(context, codec, nil),
                .encodeFailed,
                "opening the JPEG encoder for \(width)×\(height)"
            )

            guard let frame = av_frame_alloc(), let packet = av_packet_alloc() else {
                throw MediaError(.outOfMemory, "out of memory creating the JPEG encoder's frame")
            }
            self.frame = frame
            self.packet = packet
            frame.pointee.format = AV_PIX_FMT_YUVJ420P.rawValue
            frame.pointee.width = Int32(width)
            frame.pointee.height = Int32(height)
            frame.pointee.color_range = AVCOL_RANGE_JPEG
            try check(
                av_frame_get_buffer(frame, 0),
                .outOfMemory,
                "allocating a \(width)×\(height) YUV frame for JPEG"
            )

            // Plain YUV420P with full-range output is YUVJ420P's layout, without swscale's
            // warning about the deprecated "J" formats.
            guard
                let converter = sws_getContext(
                    Int32(width),
                    Int32(height),
                    AV_PIX_FMT_BGR24,
                    Int32(width),
                    Int32(height),
                    AV_PIX_FMT_YUV420P,
                    Int32(SWS_BILINEAR),
                    nil,
                    nil,
                    nil
                )
            else {
                throw MediaError(.encodeFailed, "swscale cannot convert \(width)×\(height) BGR24 to YUV420P")
            }
            self.converter = converter
            let bt601 = sws_getCoefficients(SWS_CS_ITU601)
            _ = sws_setColorspaceDetails(converter, bt601, 1, bt601, 1, 0, 1 << 16, 1 << 16)
        } catch {
            releaseCodec()
            throw error
        }
        self.width = width
        self.height = height
    }

    private func releaseCodec() {
        if codecContext != nil { avcodec_free_context(&codecContext) }
        if frame != nil { av_frame_free(&frame) }
        if packet != nil { av_packet_free(&packet) }
        if let converter { sws_freeContext(converter) }
        converter = nil
        width = 0
        height = 0
    }
}
