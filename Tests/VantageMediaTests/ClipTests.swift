import CFFmpeg
import Foundation
import Logging
import Testing

@testable import VantageMedia

/// Runs one of FFmpeg's command-line tools and returns what it printed (stdout, stderr).
private func runTool(_ tool: String, _ arguments: [String]) throws -> (output: String, errors: String) {
    let path = "/usr/bin/\(tool)"
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw ToolMissing(message: "\(path) is missing: run scripts/setup (it installs Debian's ffmpeg)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    // Read both pipes before waiting, so a large output cannot fill a pipe and block the tool.
    let errorText = ErrorText()
    let errorsRead = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        errorText.data = errors.fileHandleForReading.readDataToEndOfFile()
        errorsRead.signal()
    }
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    errorsRead.wait()
    process.waitUntilExit()
    return (String(decoding: outputData, as: UTF8.self), String(decoding: errorText.data, as: UTF8.self))
}

private final class ErrorText: @unchecked Sendable {
    // Unchecked: written by one reader before the semaphore is signalled, read only after the wait.
    var data = Data()
}

private struct ToolMissing: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// ffprobe's JSON about a file.
private func probe(_ file: URL, _ arguments: [String]) throws -> [String: Any] {
    let (output, _) = try runTool("ffprobe", ["-v", "error", "-of", "json"] + arguments + [file.path])
    return try #require(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
}

/// The MD5 of each video packet's data, in decoding order (`ffmpeg -c copy -f framemd5`): equal lists mean the
/// same compressed frames, byte for byte.
private func packetHashes(_ file: URL) throws -> [String] {
    let (output, _) = try runTool(
        "ffmpeg", ["-nostdin", "-v", "error", "-i", file.path, "-map", "0:v:0", "-c", "copy", "-f", "framemd5", "-"])
    return output.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap {
        $0.split(separator: ",").last.map { $0.trimmingCharacters(in: .whitespaces) }
    }
}

/// Decoding errors FFmpeg reports for a file (empty when every frame decodes).
private func decodeErrors(_ file: URL) throws -> String {
    try runTool("ffmpeg", ["-nostdin", "-v", "error", "-i", file.path, "-f", "null", "-"]).errors
}

/// A fresh folder for a test's clips, removed by `remove()`.
private struct ClipFolder {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-clips-\(UUID().uuidString)")
    init() throws { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// The sample video's packet hashes, computed once.
private let sourceHashes: Result<[String], any Error> = Result { try packetHashes(sampleVideo) }

/// Takes every frame as fast as the camera decodes it until `done` says stop (a file read as fast as possible
/// waits for its consumer, so a test that stops taking frames freezes the camera where it is).
private func consume(_ camera: CameraStream, until done: () -> Bool) {
    let signal = FrameSignal()
    camera.addObserver(signal)
    var last: UInt64 = 0
    let deadline = Date().addingTimeInterval(60)
    while !done() && !camera.isFinished && Date() < deadline {
        guard let frame = camera.acquireLatest(after: last) else {
            signal.wait(timeoutMillis: 50)
            continue
        }
        last = frame.sequence
        camera.release(slot: frame.slot)
    }
}

@Suite("Clips from the packet ring", .enabled(if: haveSample, "needs .deps/media/vtest.mp4 from scripts/setup"))
struct ClipTests {
    let logger = Logger(label: "test")

    @Test("a clip of an event's pre-roll and post-roll is the camera's own H.264, from a key frame, not re-encoded")
    func clipAroundEvent() throws {
        let folder = try ClipFolder()
        defer { folder.remove() }
        let memory = TestStorage()
        var source = StreamSource(name: "yard", url: sampleVideo.path)
        source.realtime = true
        let camera = CameraStream(source: source, storage: memory.storage, logger: logger)
        camera.start()
        defer { camera.stop() }

        // The event happens after 4 s of video; the clip is 2 s before it to 1 s after.
        #expect(
            waitUntil(seconds: 15) {
                camera.packetRingSpan.map { $0.newest.timeIntervalSince($0.oldest) >= 4 } ?? false
            })
        let event = Date()
        let (start, end) = (event.addingTimeInterval(-2), event.addingTimeInterval(1))
        #expect(
            waitUntil(seconds: 10) { (camera.packetRingSpan?.newest ?? .distantPast) >= end }, "the post-roll arrives")
        let url = folder.file("event.mp4")
        let info = try camera.writeClip(from: start, to: end, into: url)
        camera.stop()

        #expect(info.keyFrameAligned && !info.isPartial)
        #expect(info.start <= start && start.timeIntervalSince(info.start) <= 2.6, "starts at the key frame before")
        #expect(info.end <= end && end.timeIntervalSince(info.end) < 0.5, "ends at the last frame before the end")
        #expect((25...60).contains(info.frames), "\(info.frames) frames at 10 fps for 3 s plus the lead-in")
        let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int
        #expect(info.bytes == size)

        let file = try probe(url, ["-show_streams", "-show_format"])
        let stream = try #require((file["streams"] as? [[String: Any]])?.first)
        #expect(stream["codec_name"] as? String == "h264")
        #expect(stream["width"] as? Int == 768 && stream["height"] as? Int == 576)
        let format = try #require(file["format"] as? [String: Any])
        let duration = try #require(Double(format["duration"] as? String ?? ""))
        #expect(duration >= 2.5 && duration <= 3 + 2.5 + 0.5, "duration \(duration) s: 3 s plus at most one GOP")
        let packets = try #require(
            try probe(url, ["-select_streams", "v:0", "-show_entries", "packet=flags", "-show_packets"])["packets"]
                as? [[String: Any]])
        #expect(packets.count == info.frames)
        #expect((packets.first?["flags"] as? String)?.hasPrefix("K") == true, "the first packet is a key frame")

        // Byte for byte the source's packets: a run of the file's frames starting at a key frame (GOP 25).
        let clip = try packetHashes(url)
        let original = try sourceHashes.get()
        let at = try #require(original.firstIndex(of: clip[0]), "the clip's first frame is one of the file's")
        #expect(at % 25 == 0, "frame \(at) of the file is a key frame")
        #expect(Array(original[at..<min(original.count, at + clip.count)]) == clip, "no frame re-encoded or missing")
        #expect(try decodeErrors(url).isEmpty, "every frame decodes")
    }

    @Test("a clip across the loop point of a file runs on with rebased timestamps and never mixes the two passes")
    func clipAcrossLoop() throws {
        let folder = try ClipFolder()
        defer { folder.remove() }
        let memory = TestStorage()
        var source = StreamSource(name: "loop", url: sampleVideo.path)
        source.loop = true
        let camera = CameraStream(source: source, storage: memory.storage, logger: logger)
        camera.start()
        defer { camera.stop() }
        consume(camera) { camera.snapshot.decoded >= 795 + 50 }  // then the camera waits, the ring stays as it is
        let ring = try #require(camera.packetRing)
        let starts = ring.segmentStartsMicros
        try #require(starts.count == 2, "the ring holds the end of the first pass and the start of the second")

        // From just before the loop point to the second pass's first frame.
        let loopPoint = Date(wallMicros: starts[1])
        let url = folder.file("loop.mp4")
        let info = try camera.writeClip(from: loopPoint.addingTimeInterval(-0.000_01), to: loopPoint, into: url)
        #expect(info.keyFrameAligned && !info.isPartial)
        let clip = try packetHashes(url)
        let original = try sourceHashes.get()
        // The last key frame of the first pass is frame 775: its 20 frames, then the second pass from frame 0.
        try #require(clip.count == info.frames && clip.count >= 21, "\(clip.count) frames")
        #expect(Array(clip.prefix(20)) == Array(original[775..<795]), "the end of the first pass")
        #expect(Array(clip.dropFirst(20)) == Array(original.prefix(clip.count - 20)), "then the start of the second")
        let file = try probe(url, ["-show_format"])
        let duration = try #require(Double((file["format"] as? [String: Any])?["duration"] as? String ?? ""))
        #expect(abs(duration - Double(clip.count) / 10) < 0.15, "duration \(duration) s: timestamps run on, no jump")
        #expect(try decodeErrors(url).isEmpty, "every frame decodes")

        // A clip from before the ring began starts at its first key frame and says it is partial.
        let span = try #require(camera.packetRingSpan)
        let partial = try camera.writeClip(
            from: span.oldest.addingTimeInterval(-10), to: loopPoint.addingTimeInterval(-0.000_01),
            into: folder.file("partial.mp4"))
        #expect(partial.isPartial && partial.keyFrameAligned)
        #expect(partial.start >= span.oldest && partial.start < loopPoint)
    }

    @Test("the ring keeps within its byte and packet bounds while a file loops")
    func ringBounds() throws {
        let memory = TestStorage()
        // Bytes bind: 512 KiB is about 50 of the sample's packets.
        var bytesBound = StreamSource(name: "bytes", url: sampleVideo.path)
        bytesBound.loop = true
        bytesBound.packetRingMaxBytes = 512 << 10
        let camera = CameraStream(source: bytesBound, storage: memory.storage, logger: logger)
        camera.start()
        defer { camera.stop() }
        let ring = try #require(camera.packetRing)
        var worst = (packets: 0, bytes: 0, segments: 0)
        consume(camera) {
            let usage = ring.usage
            worst = (
                max(worst.packets, usage.packets), max(worst.bytes, usage.bytes), max(worst.segments, usage.segments)
            )
            return camera.snapshot.decoded >= 795 + 100
        }
        camera.stop()
        #expect(worst.bytes <= 512 << 10, "at most 512 KiB held (\(worst.bytes))")
        #expect(worst.bytes >= 384 << 10, "and it is used up to about its bound (\(worst.bytes))")
        #expect(worst.segments <= 2, "old passes are forgotten")
        #expect(ring.usage.segments <= 2)

        // Packets bind: a 0.25 s ring has 64 slots, fewer than a file read flat out passes in 0.25 s.
        let memory2 = TestStorage()
        var countBound = StreamSource(name: "count", url: sampleVideo.path)
        countBound.loop = true
        countBound.packetRingSeconds = 0.25
        let second = CameraStream(source: countBound, storage: memory2.storage, logger: logger)
        second.start()
        defer { second.stop() }
        let small = try #require(second.packetRing)
        #expect(small.capacity == 64)
        var most = 0
        var longest: Int64 = 0
        consume(second) {
            most = max(most, small.usage.packets)
            if let span = small.spanMicros { longest = max(longest, span.newest - span.oldest) }
            return second.snapshot.decoded >= 795 + 100
        }
        #expect(most <= 64, "at most 64 packets held (\(most))")
        #expect(longest <= 250_000, "at most 0.25 s held (\(longest) µs)")
    }

    @Test("asking for video the ring no longer holds, or into a missing folder, fails with what to do")
    func clipErrors() throws {
        let folder = try ClipFolder()
        defer { folder.remove() }
        let memory = TestStorage()
        let camera = CameraStream(
            source: StreamSource(name: "gate", url: sampleVideo.path), storage: memory.storage, logger: logger)
        camera.start()
        defer { camera.stop() }
        // Nobody takes frames: the camera fills its frame buffers and waits, with a few packets in the ring.
        #expect(waitUntil(seconds: 10) { camera.packetRingSpan != nil })
        let now = Date()
        let url = folder.file("old.mp4")
        let old = #expect(throws: MediaError.self) {
            try camera.writeClip(from: now.addingTimeInterval(-120), to: now.addingTimeInterval(-100), into: url)
        }
        #expect(old?.code == .clipUnavailable)
        #expect(old?.description.contains("camera gate") == true)
        #expect(old?.description.contains("the camera's packet ring holds") == true)
        #expect(old?.description.contains("raise packetRingSeconds or shorten the pre-roll") == true)
        #expect(!FileManager.default.fileExists(atPath: url.path), "no file is left behind")

        let missing = #expect(throws: MediaError.self) {
            try camera.writeClip(
                from: now.addingTimeInterval(-5), to: now.addingTimeInterval(5),
                into: folder.file("no/such/folder/clip.mp4"))
        }
        #expect(missing?.code == .writeFailed)
        #expect(missing?.description.contains("does not exist") == true)
        let left = try FileManager.default.contentsOfDirectory(atPath: folder.url.path)
        #expect(left.isEmpty, "no temporary file is left behind: \(left)")
    }

    @Test("a camera with packetRingSeconds = 0 keeps no ring and says so when asked for a clip")
    func ringOff() throws {
        let memory = TestStorage()
        var source = StreamSource(name: "porch", url: sampleVideo.path)
        source.packetRingSeconds = 0
        let camera = CameraStream(source: source, storage: memory.storage, logger: logger)
        camera.start()
        defer { camera.stop() }
        #expect(waitUntil(seconds: 10) { camera.snapshot.decoded > 0 })
        #expect(camera.packetRing == nil && camera.packetRingSpan == nil)
        let error = #expect(throws: MediaError.self) {
            try camera.writeClip(
                from: Date().addingTimeInterval(-2), to: Date(),
                into: FileManager.default.temporaryDirectory.appendingPathComponent("never.mp4"))
        }
        #expect(error?.code == .packetRingOff)
        #expect(error?.description.contains("keeps no packet ring") == true)
        #expect(error?.description.contains("set packetRingSeconds above 0") == true)
    }
}

@Suite("Packet ring")
struct PacketRingTests {
    /// Fills `packet` as a demuxer would: `size` bytes in a reference-counted buffer.
    func fill(_ packet: UnsafeMutablePointer<AVPacket>, size: Int, key: Bool = false) {
        av_packet_unref(packet)
        _ = av_new_packet(packet, Int32(size))
        if key { packet.pointee.flags |= AV_PKT_FLAG_KEY }
    }

    func withParameters(_ body: (UnsafeMutablePointer<AVCodecParameters>) -> Void) {
        var parameters = avcodec_parameters_alloc()
        defer { avcodec_parameters_free(&parameters) }
        parameters!.pointee.codec_type = AVMEDIA_TYPE_VIDEO
        parameters!.pointee.codec_id = AV_CODEC_ID_H264
        body(parameters!)
    }

    @Test("the ring drops its oldest packets to keep within its age, its bytes and its packet count")
    func bounds() {
        var packet = av_packet_alloc()
        defer { av_packet_free(&packet) }
        let timeBase = AVRational(num: 1, den: 90_000)
        withParameters { parameters in
            // Age: packets 100 ms apart in a 1 s ring.
            let byAge = PacketRing(seconds: 1, maxBytes: 64 << 20)
            byAge.beginSegment(parameters: parameters, timeBase: timeBase)
            for i in 0..<50 {
                fill(packet!, size: 1000)
                byAge.append(moving: packet!, wallMicros: Int64(i) * 100_000)
            }
            #expect(byAge.usage.packets == 11)
            #expect(byAge.spanMicros! == (oldest: 3_900_000, newest: 4_900_000))

            // Count: a 1 s ring has 120 slots; 300 packets 1 ms apart overflow them.
            let byCount = PacketRing(seconds: 1, maxBytes: 64 << 20)
            #expect(byCount.capacity == 120)
            byCount.beginSegment(parameters: parameters, timeBase: timeBase)
            for i in 0..<300 {
                fill(packet!, size: 1000)
                byCount.append(moving: packet!, wallMicros: Int64(i) * 1000)
            }
            #expect(byCount.usage.packets == 120)
            #expect(byCount.spanMicros! == (oldest: 180_000, newest: 299_000))

            // Bytes: 1000-byte packets (plus FFmpeg's 64 bytes of padding) in a 10 000-byte ring.
            let byBytes = PacketRing(seconds: 30, maxBytes: 10_000)
            byBytes.beginSegment(parameters: parameters, timeBase: timeBase)
            for i in 0..<100 {
                fill(packet!, size: 1000)
                byBytes.append(moving: packet!, wallMicros: Int64(i) * 1000)
                #expect(byBytes.usage.bytes <= 10_000)
            }
            #expect(byBytes.usage.packets == 9)
        }
    }

    @Test("a segment is forgotten once its last packet leaves the ring; a segment that got no packet is replaced")
    func segments() {
        var packet = av_packet_alloc()
        defer { av_packet_free(&packet) }
        let timeBase = AVRational(num: 1, den: 90_000)
        withParameters { parameters in
            let ring = PacketRing(seconds: 1, maxBytes: 64 << 20)
            ring.beginSegment(parameters: parameters, timeBase: timeBase)
            for i in 0..<5 {
                fill(packet!, size: 100, key: i == 0)
                ring.append(moving: packet!, wallMicros: Int64(i) * 100_000)
            }
            ring.beginSegment(parameters: parameters, timeBase: timeBase)  // a reconnect that broke at once
            ring.beginSegment(parameters: parameters, timeBase: timeBase)
            #expect(ring.usage.segments == 2)
            for i in 5..<12 {
                fill(packet!, size: 100, key: i == 5)
                ring.append(moving: packet!, wallMicros: Int64(i) * 100_000)
            }
            #expect(ring.segmentStartsMicros == [100_000, 500_000])
            for i in 12..<16 {
                fill(packet!, size: 100)
                ring.append(moving: packet!, wallMicros: Int64(i) * 100_000)
            }
            #expect(ring.segmentStartsMicros == [500_000])
            #expect(ring.usage.segments == 1)
        }
    }
}
