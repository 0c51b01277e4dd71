internal import CFFmpeg
import Foundation
import VantageCore

/// A clip written from a camera's packet ring.
public struct ClipInfo: Sendable, Equatable {
    /// Wall-clock time of the clip's first frame: at or before the asked start when the ring held it, later
    /// when the ring began later (see `isPartial`).
    public var start: Date
    /// Wall-clock time of the clip's last frame: the last one at or before the asked end.
    public var end: Date
    /// Video frames (packets) in the clip.
    public var frames: Int
    /// Size of the MP4 file.
    public var bytes: Int
    /// Whether the clip starts on a key frame, so every frame of it decodes. False only when the ring held no
    /// key frame for the range: a player shows the first frames damaged until the camera's next key frame.
    public var keyFrameAligned: Bool
    /// True when the ring did not hold the whole range: the clip starts later or ends earlier than asked (the
    /// ring began later, the post-roll has not arrived yet, or the camera reconnected with another format).
    public var isPartial: Bool

    public init(start: Date, end: Date, frames: Int, bytes: Int, keyFrameAligned: Bool, isPartial: Bool = false) {
        self.start = start
        self.end = end
        self.frames = frames
        self.bytes = bytes
        self.keyFrameAligned = keyFrameAligned
        self.isPartial = isPartial
    }
}

extension MediaError.Code {
    /// The camera's packet ring holds nothing for the asked time range.
    public static let clipUnavailable = MediaError.Code(name: "clipUnavailable")
    /// The camera keeps no packet ring (`packetRingSeconds` is 0), so no clip can be cut.
    public static let packetRingOff = MediaError.Code(name: "packetRingOff")
    /// A file could not be written (missing folder, no permission, disk full).
    public static let writeFailed = MediaError.Code(name: "writeFailed")
}

extension CameraStream {
    /// Wall-clock times of the oldest and newest packets in the camera's packet ring; nil while it is empty or
    /// off. A caller that wants a post-roll waits until `newest` passes the clip's end.
    public var packetRingSpan: (oldest: Date, newest: Date)? {
        guard let span = packetRing?.spanMicros else { return nil }
        return (Date(wallMicros: span.oldest), Date(wallMicros: span.newest))
    }

    /// Blocks the calling thread (a clip's own, never the cooperative pool) until the packet ring holds video up to
    /// `end`, the camera finished, or `limit` passed: a post-roll still on its way (a camera behind real time). Woken
    /// by each new frame, not polled.
    public func waitForPackets(through end: Date, upTo limit: Duration) {
        let signal = FrameSignal()
        addObserver(signal)
        defer { removeObserver(signal) }
        let deadline = ContinuousClock.now + limit
        while (packetRingSpan?.newest ?? .distantPast) < end && !isFinished {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return }
            signal.wait(timeoutMillis: max(1, Int(left.seconds * 1000)))
        }
    }

    /// Writes the video from `start` to `end` (wall clock) as an MP4 file at `url`, cut from the camera's packet
    /// ring without re-encoding.
    ///
    /// The clip starts at the last key frame at or before `start`, so it decodes from its first frame, and ends
    /// at the last frame at or before `end`; its timestamps start at 0. A reconnect or a file loop inside the
    /// range is bridged when the stream kept its format (the timestamps continue, the gap is left out); when
    /// the format changed, the clip covers only the part of the range in one format. If the ring holds only part
    /// of the range, the clip holds that part and `ClipInfo` says so. The file is written beside `url` under a
    /// temporary name and renamed into place, so `url` never holds a half-written clip.
    ///
    /// Safe to call from any thread: the packets are picked under the ring's lock (references only, no copy)
    /// and the file is written outside it, while the camera goes on.
    public func writeClip(from start: Date, to end: Date, into url: URL) throws(MediaError) -> ClipInfo {
        let name = source.name
        guard let ring = packetRing else {
            throw MediaError(
                .packetRingOff, "camera \(name): cannot cut a clip, the camera keeps no packet ring",
                hint: "set packetRingSeconds above 0 (30 by default) for cameras whose events carry clips")
        }
        let clip: ClipPackets
        switch ring.selectClip(startMicros: start.wallMicros, endMicros: end.wallMicros) {
        case .success(let selected): clip = selected
        case .failure(.empty):
            throw MediaError(
                .clipUnavailable, "camera \(name): no video for a clip yet, the camera's packet ring is empty",
                hint: "wait until the camera streams")
        case .failure(.notHeld(let oldest, let newest)):
            let held = "\(Date(wallMicros: oldest).clipTimeText)–\(Date(wallMicros: newest).clipTimeText)"
            let asked = "\(start.clipTimeText)–\(end.clipTimeText)"
            throw MediaError(
                .clipUnavailable,
                "camera \(name): no video for a clip of \(asked), the camera's packet ring holds \(held)",
                hint: end.wallMicros < oldest
                    ? "raise packetRingSeconds or shorten the pre-roll"
                    : "wait until packetRingSpan.newest passes the clip's end")
        case .failure(.outOfMemory):
            throw MediaError(.outOfMemory, "camera \(name): out of memory cutting a clip")
        }
        // The MP4 muxer reports its second pass (faststart) at FFmpeg's default `info` level: keep warnings only.
        if av_log_get_level() > AV_LOG_WARNING { av_log_set_level(AV_LOG_WARNING) }
        let written = try writeMP4(clip, to: url, camera: name)
        return ClipInfo(
            start: Date(wallMicros: clip.wallMicros[written.firstIndex]),
            end: Date(wallMicros: clip.wallMicros.last!),
            frames: written.frames, bytes: written.bytes, keyFrameAligned: clip.keyFrameAligned,
            isPartial: !clip.coversStart || !clip.coversEnd)
    }
}

/// Remuxes a clip's packets into an MP4 file (`-c copy -movflags +faststart`): timestamps rebased to start at 0
/// and to run on across segments; packets of a later segment before its first key frame are left out.
/// Returns the index of the first packet written, the frames written and the file's size.
private func writeMP4(_ clip: ClipPackets, to url: URL, camera name: String) throws(MediaError)
    -> (firstIndex: Int, frames: Int, bytes: Int)
{
    guard url.isFileURL else {
        throw MediaError(.writeFailed, "camera \(name): cannot write a clip to \(url), it is not a file path")
    }
    let folder = url.deletingLastPathComponent()
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder), isFolder.boolValue else {
        throw MediaError(
            .writeFailed, "camera \(name): cannot write the clip \(url.path), the folder \(folder.path) does not exist",
            hint: "create the folder or point the clip path elsewhere")
    }
    let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).partial").path
    let failure = { (status: Int32, what: String) in
        MediaError(
            .writeFailed, "camera \(name): cannot write the clip \(url.path) (\(what))",
            hint: "check that the folder is writable and the disk has space", cause: ffmpegErrorText(status))
    }

    var written = (firstIndex: 0, frames: 0, bytes: 0)
    do throws(MediaError) {
        var format: UnsafeMutablePointer<AVFormatContext>? = nil
        try check(
            avformat_alloc_output_context2(&format, nil, "mp4", temporary), .writeFailed,
            "camera \(name): this FFmpeg cannot write MP4 files", hint: "install FFmpeg with the mp4 muxer")
        guard let output = format else { throw MediaError(.outOfMemory, "camera \(name): out of memory") }
        var opened = false
        defer {
            if opened { avio_closep(&output.pointee.pb) }
            avformat_free_context(output)
        }
        guard let stream = avformat_new_stream(output, nil) else {
            throw MediaError(.outOfMemory, "camera \(name): out of memory")
        }
        let first = clip.segments[0]
        try check(
            avcodec_parameters_copy(stream.pointee.codecpar, first.parameters), .outOfMemory,
            "camera \(name): out of memory")
        stream.pointee.codecpar.pointee.codec_tag = 0  // let the MP4 muxer choose the tag for the codec
        stream.pointee.time_base = first.timeBase
        var status = avio_open(&output.pointee.pb, temporary, AVIO_FLAG_WRITE)
        guard status >= 0 else { throw failure(status, "creating it") }
        opened = true
        var options: OpaquePointer? = nil
        defer { av_dict_free(&options) }
        av_dict_set(&options, "movflags", "+faststart", 0)
        status = avformat_write_header(output, &options)
        guard status >= 0 else {
            if status == vantage_averror_enomem() || output.pointee.pb.pointee.error < 0 {
                throw failure(status, "writing its header")
            }
            throw MediaError(
                .unsupportedCodec,
                "camera \(name): MP4 cannot hold this camera's video (\(String(cString: avcodec_get_name(first.parameters.pointee.codec_id))))",
                hint: "clips need H.264 or H.265 cameras", cause: ffmpegErrorText(status))
        }

        var rebaser = ClipTimestamps(timeBase: first.timeBase)
        var firstIndex: Int? = nil
        for (index, packet) in clip.packets.enumerated() {
            guard rebaser.rebase(packet, segment: clip.segments[index]) else { continue }
            if firstIndex == nil { firstIndex = index }
            av_packet_rescale_ts(packet, first.timeBase, stream.pointee.time_base)
            packet.pointee.stream_index = 0
            packet.pointee.pos = -1
            status = av_interleaved_write_frame(output, packet)
            guard status >= 0 else { throw failure(status, "writing frame \(written.frames + 1)") }
            written.frames += 1
        }
        status = av_write_trailer(output)
        guard status >= 0, output.pointee.pb.pointee.error >= 0 else {
            throw failure(status < 0 ? status : output.pointee.pb.pointee.error, "finishing it")
        }
        opened = false
        status = avio_closep(&output.pointee.pb)
        guard status >= 0 else { throw failure(status, "closing it") }
        written.firstIndex = firstIndex ?? 0
    } catch {
        unlink(temporary)
        throw error
    }
    guard rename(temporary, url.path) == 0 else {
        let reason = String(cString: strerror(errno))
        unlink(temporary)
        throw MediaError(
            .writeFailed, "camera \(name): cannot move the clip into place at \(url.path) (\(reason))",
            hint: "check that the folder is writable")
    }
    let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? nil
    written.bytes = size ?? 0
    return written
}

/// Rebases a clip's timestamps, in the first segment's time base: the first packet's decoding time is 0, each
/// later segment continues one frame after the previous segment's last packet, and decoding times always rise
/// (the MP4 muxer refuses anything else).
struct ClipTimestamps {
    let timeBase: AVRational
    private var segment: UInt64? = nil
    /// The current segment's first decoding time (in `timeBase`), subtracted from its packets.
    private var origin: Int64? = nil
    /// Added to the current segment's packets: where it starts in the clip.
    private var offset: Int64 = 0
    private var lastDTS: Int64? = nil
    private var lastDuration: Int64 = 0
    /// The last step between decoding times: stands in for a missing duration.
    private var step: Int64 = 0
    private var waitingForKeyFrame = false

    init(timeBase: AVRational) { self.timeBase = timeBase }

    /// Rewrites a packet's timestamps and duration for the clip; false when the packet is to be left out (it
    /// precedes the first key frame of a segment after the first, so it could not be decoded).
    mutating func rebase(_ packet: UnsafeMutablePointer<AVPacket>, segment next: PacketSegment) -> Bool {
        if next.id != segment {
            if let lastDTS {
                offset = lastDTS + max(lastDuration, step, 1)
                waitingForKeyFrame = true
            }
            segment = next.id
            origin = nil
        }
        if waitingForKeyFrame {
            guard packet.pointee.flags & AV_PKT_FLAG_KEY != 0 else { return false }
            waitingForKeyFrame = false
        }
        av_packet_rescale_ts(packet, next.timeBase, timeBase)
        let none = vantage_av_nopts_value()
        let pts = packet.pointee.pts
        let sourceDTS = packet.pointee.dts != none ? packet.pointee.dts : pts != none ? pts : nil
        var dts: Int64
        if let sourceDTS {
            if origin == nil { origin = sourceDTS }
            dts = sourceDTS - origin! + offset
        } else {
            dts = lastDTS.map { $0 + max(step, 1) } ?? offset
        }
        if let lastDTS, dts <= lastDTS { dts = lastDTS + 1 }
        var presentation = pts != none && origin != nil ? pts - origin! + offset : dts
        if presentation < dts { presentation = dts }
        if let lastDTS { step = dts - lastDTS }
        if packet.pointee.duration <= 0 { packet.pointee.duration = step }
        packet.pointee.dts = dts
        packet.pointee.pts = presentation
        lastDTS = dts
        lastDuration = packet.pointee.duration
        return true
    }
}

extension Date {
    /// The date of a wall-clock time in microseconds since 1970.
    init(wallMicros: Int64) { self.init(timeIntervalSince1970: Double(wallMicros) / 1_000_000) }

    /// Microseconds since 1970, as `wallClockMicros()` counts.
    var wallMicros: Int64 { Int64((timeIntervalSince1970 * 1_000_000).rounded()) }

    /// The time as a clip error shows it: ISO 8601, UTC, with milliseconds.
    var clipTimeText: String {
        iso8601Text
    }
}
