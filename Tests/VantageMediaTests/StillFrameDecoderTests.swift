import CFFmpeg
import Foundation
import Testing

@testable import VantageMedia

/// The 1080p sample (10 fps, a key frame every 25 frames, no B-frames): the size of a camera's main stream.
private let sample1080p = sampleVideo.deletingLastPathComponent().appendingPathComponent("vtest-1080p.mp4")

/// Fills a packet ring with the file's video packets, each stamped `origin` plus its presentation time, as a camera's
/// packets are stamped with the wall clock when they arrive. Returns the frame rate's interval in microseconds.
private func load(_ file: URL, into ring: PacketRing, origin: Int64) throws -> Int64 {
    var format: UnsafeMutablePointer<AVFormatContext>? = nil
    guard avformat_open_input(&format, file.path, nil, nil) >= 0, let context = format else {
        throw MediaError(.openFailed, "cannot open \(file.path)")
    }
    defer { avformat_close_input(&format) }
    guard avformat_find_stream_info(context, nil) >= 0 else { throw MediaError(.openFailed, "no stream info") }
    let index = av_find_best_stream(context, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
    let stream = try #require(context.pointee.streams[Int(index)])
    let timeBase = stream.pointee.time_base
    ring.beginSegment(parameters: stream.pointee.codecpar, timeBase: timeBase)
    var packet: UnsafeMutablePointer<AVPacket>? = av_packet_alloc()
    defer { av_packet_free(&packet) }
    while av_read_frame(context, packet) >= 0 {
        guard packet!.pointee.stream_index == index else {
            av_packet_unref(packet)
            continue
        }
        let micros = packet!.pointee.pts * 1_000_000 * Int64(timeBase.num) / Int64(timeBase.den)
        ring.append(moving: packet!, wallMicros: origin + micros)
    }
    let rate = stream.pointee.avg_frame_rate
    return 1_000_000 * Int64(rate.den) / Int64(rate.num)
}

/// Frames `first...last` of a file as FFmpeg's own command line decodes them, packed BGR24.
private func ffmpegFrames(_ file: URL, _ first: Int, _ last: Int) throws -> [[UInt8]] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
    process.arguments = [
        "-nostdin", "-v", "error", "-i", file.path, "-vf", "select=between(n\\,\(first)\\,\(last))", "-vsync", "0",
        "-f", "rawvideo", "-pix_fmt", "bgr24", "-",
    ]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let frameBytes = 1920 * 1080 * 3
    try #require(data.count == frameBytes * (last - first + 1), "ffmpeg gave \(data.count) bytes")
    return (0...(last - first)).map { Array(data[($0 * frameBytes)..<(($0 + 1) * frameBytes)]) }
}

/// Mean absolute difference per byte between an image and packed BGR24 pixels of the same size.
private func difference(_ image: ImageBuffer, _ packed: [UInt8]) -> Double {
    var total = 0
    let row = image.width * 3
    for y in 0..<image.height {
        let p = image.base.advanced(by: y * image.stride).assumingMemoryBound(to: UInt8.self)
        for x in 0..<row { total += abs(Int(p[x]) - Int(packed[y * row + x])) }
    }
    return Double(total) / Double(row * image.height)
}

@Suite(
    "Still frames decoded from a packet ring",
    .enabled(if: FileManager.default.fileExists(atPath: sample1080p.path), "needs .deps/media/vtest-1080p.mp4"))
struct StillFrameDecoderTests {
    @Test("The frame at a time is the one nearest it, decoded from the key frame before it, at the stream's size")
    func nearestFrame() throws {
        let ring = PacketRing(seconds: 120, maxBytes: 64 << 20)
        let origin: Int64 = 1_700_000_000_000_000
        let interval = try load(sample1080p, into: ring, origin: origin)
        #expect(interval == 100_000, "the sample is 10 fps")
        let decoder = StillFrameDecoder(camera: nil, ring: ring, name: "main")

        // 3.73 s: between frames 37 (3.7 s) and 38 (3.8 s), nearer 37; its key frame is frame 25.
        let started = threadCPUNanos()
        let image = try decoder.frame(atMicros: origin + 3_730_000)
        let cost = Double(threadCPUNanos() - started) / 1e6
        #expect(image.width == 1920 && image.height == 1080)
        let reference = try ffmpegFrames(sample1080p, 36, 38)
        let (before, at, after) = (
            difference(image, reference[0]), difference(image, reference[1]), difference(image, reference[2])
        )
        #expect(at < 1.5, "frame 37 as ffmpeg decodes it: \(at) per byte apart")
        #expect(at < before / 2 && at < after / 2, "36: \(before), 37: \(at), 38: \(after)")
        print("decoding frame 37 (13 frames from its key frame) at 1080p took \(cost) CPU ms")

        // The decoder is reused: the worst case is the frame before a key frame (frame 49: 25 frames decoded).
        let again = threadCPUNanos()
        let last = try decoder.frame(atMicros: origin + 4_900_000)
        let worst = Double(threadCPUNanos() - again) / 1e6
        print("decoding frame 49 (25 frames from its key frame) at 1080p took \(worst) CPU ms")
        let reference49 = try ffmpegFrames(sample1080p, 49, 49)[0]
        #expect(last.width == 1920 && difference(last, reference49) < 1.5)
    }

    @Test("No frame near the time, or nothing received yet: frameUnavailable, saying what the ring holds")
    func unavailable() throws {
        let ring = PacketRing(seconds: 120, maxBytes: 64 << 20)
        let decoder = StillFrameDecoder(camera: nil, ring: ring, name: "main")
        #expect(throws: MediaError.self) { try decoder.frame(atMicros: 1_000_000) }
        let origin: Int64 = 1_700_000_000_000_000
        _ = try load(sample1080p, into: ring, origin: origin)
        do {
            _ = try decoder.frame(atMicros: origin + 200_000_000)
            Issue.record("a frame 200 s after the last one")
        } catch {
            #expect(error.code == .frameUnavailable)
            #expect(error.message.contains("the packet ring holds"), "\(error)")
        }
        // The decoder still works after a refusal.
        #expect(try decoder.frame(atMicros: origin).width == 1920)
    }
}
