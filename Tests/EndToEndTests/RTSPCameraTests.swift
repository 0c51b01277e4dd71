// Proves that the RTSP test camera (scripts/rtsp-camera, driven by `RTSPCamera`) behaves as the
// end-to-end tests need: a real H.264 RTSP stream, paced in real time, that survives a camera
// restart on the same URL, and that can be stalled and resumed. FFmpeg's command-line tools play
// the client.

import Foundation
import Testing

@Suite(
    "RTSP test camera",
    // The camera needs scripts/setup's GStreamer RTSP server, sample video and ffmpeg/ffprobe.
    .enabled(
        if: Repo.isAvailable(.sampleVideo, .rtspCamera, .tool("ffmpeg"), .tool("ffprobe")),
        "needs scripts/setup (sample video, GStreamer RTSP server, ffmpeg)"),
    // Timing-based checks on a 2-core machine: one camera and one client at a time.
    .serialized
)
struct RTSPCameraTests {
    @Test("ffprobe finds H.264 768x576 at the stream URL")
    func probe() async throws {
        let camera = try await RTSPCamera()
        let result = try await ProcessRunner.run(
            "ffprobe",
            arguments: [
                "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v:0",
                "-show_entries", "stream=codec_name,width,height", "-of", "default=noprint_wrappers=1",
                camera.url(),
            ],
            timeout: .seconds(15))
        #expect(result.succeeded, "\(result)\n\(camera.log())")
        let fields = Dictionary(
            result.stdoutLines.compactMap { line -> (String, String)? in
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                return parts.count == 2 ? (parts[0], parts[1]) : nil
            }, uniquingKeysWith: { first, _ in first })
        #expect(fields["codec_name"] == "h264", "\(result)")
        #expect(fields["width"] == "768", "\(result)")
        #expect(fields["height"] == "576", "\(result)")
        await camera.stop()
    }

    @Test(
        "H.265 and MJPEG files are served in their own codec, passed through; --sdp-codec renames the codec in the SDP",
        arguments: [
            ("hevc", ["-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1"], "mp4"),
            ("mjpeg", ["-c:v", "mjpeg", "-q:v", "5"], "mov"),
        ])
    func otherCodecs(codec: String, encoder: [String], container: String) async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vantage-\(codec)-\(UUID()).\(container)")
        defer { try? FileManager.default.removeItem(at: file) }
        let encoded = try await ProcessRunner.run(
            "ffmpeg",
            arguments: ["-v", "error", "-y", "-i", Repo.sampleVideo.path, "-t", "3", "-an"] + encoder + [file.path],
            timeout: .seconds(120))
        try #require(encoded.succeeded, "ffmpeg could not make the \(codec) file: \(encoded)")
        let camera = try await RTSPCamera(file: file)
        let frames = try await readFrames(10, from: camera.url(), timeout: .seconds(15))
        #expect(frames == 10, "\(camera.log())")
        let probe = try await ProcessRunner.run(
            "ffprobe",
            arguments: [
                "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v:0", "-show_entries", "stream=codec_name",
                "-of", "default=noprint_wrappers=1:nokey=1", camera.url(),
            ], timeout: .seconds(15))
        #expect(probe.stdoutLines.first == codec, "\(probe)\n\(camera.log())")
        await camera.stop()

        // The same stream with its codec renamed in the SDP (which ffprobe prints at -v verbose). FFmpeg 5.1 knows no
        // RTP codec "AV1", gets no packets for it and probes until killed: the SDP is all that is looked at here.
        let renamed = try await RTSPCamera(file: file, options: ["--sdp-codec", "AV1"])
        let verbose = try await ProcessRunner.run(
            "ffprobe", arguments: ["-v", "verbose", "-rtsp_transport", "tcp", renamed.url()], timeout: .seconds(5))
        #expect(verbose.stderr.contains("a=rtpmap:96 AV1/90000"), "\(verbose)")
        #expect(!verbose.stderr.contains("a=fmtp:"), "the real codec's parameters are gone: \(verbose)")
        await renamed.stop()
    }

    @Test("a client reads 30 frames over RTSP/TCP, in real time")
    func readFrames() async throws {
        let camera = try await RTSPCamera()
        let started = ContinuousClock.now
        let frames = try await readFrames(30, from: camera.url(), timeout: .seconds(15))
        let elapsed = ContinuousClock.now - started
        #expect(frames == 30, "\(camera.log())")
        // 30 frames at 10 frames/s: a camera paced in real time cannot deliver them in 2 s.
        #expect(elapsed > .seconds(2), "30 frames in \(elapsed): the stream is not paced in real time")
        await camera.stop()
    }

    @Test("the file loops without a break: timestamps keep increasing across the end of the file")
    func loops() async throws {
        // A 3-second clip (30 frames, key frames at 0 and 25), cut without re-encoding.
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("vantage-loop-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let clip = directory.appendingPathComponent("clip.mp4")
        let cut = try await ProcessRunner.run(
            "ffmpeg",
            arguments: [
                "-nostdin", "-loglevel", "error", "-i", Repo.sampleVideo.path, "-c", "copy", "-frames:v", "30",
                clip.path,
            ],
            timeout: .seconds(15))
        try #require(cut.succeeded, "\(cut)")

        let camera = try await RTSPCamera(file: clip)
        // 5 seconds of stream: more than one and a half passes over the clip.
        let result = try await ProcessRunner.run(
            "ffprobe",
            arguments: [
                "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v:0", "-read_intervals", "%+5",
                "-show_entries", "packet=pts_time", "-of", "csv=p=0", camera.url(),
            ],
            timeout: .seconds(15))
        #expect(result.succeeded, "\(result)")
        let times = result.stdoutLines.compactMap {
            Double($0.trimmingCharacters(in: .whitespaces.union(.init(charactersIn: ","))))
        }
        #expect(times.count >= 45, "\(times.count) packets in 5 s of stream: \(result)")
        let steps = zip(times, times.dropFirst()).map { $1 - $0 }
        #expect(steps.allSatisfy { abs($0 - 0.1) < 0.02 }, "timestamps are not 0.1 s apart: \(times)")
        await camera.stop()
    }

    @Test("each mount serves its file; an unknown mount gets 404")
    func mounts() async throws {
        let camera = try await RTSPCamera(streams: [
            .init(mount: "/cam1", file: Repo.sampleVideo), .init(mount: "/cam2", file: Repo.sampleVideo),
        ])
        #expect(camera.url(mount: "/cam2") == "rtsp://127.0.0.1:\(camera.port)/cam2")
        #expect(try await readFrames(5, from: camera.url(mount: "/cam1"), timeout: .seconds(15)) == 5)
        #expect(try await readFrames(5, from: camera.url(mount: "/cam2"), timeout: .seconds(15)) == 5)
        let missing = try await ProcessRunner.run(
            "ffprobe", arguments: ["-v", "error", "-rtsp_transport", "tcp", camera.url(mount: "/nope")],
            timeout: .seconds(10))
        #expect(!missing.succeeded && !missing.timedOut, "\(missing)")
        #expect(missing.stderr.contains("404"), "\(missing)")
        await camera.stop()
    }

    @Test("after kill() and restart() a new client gets frames again on the same URL")
    func killAndRestart() async throws {
        let camera = try await RTSPCamera()
        let url = camera.url()
        #expect(try await readFrames(10, from: url, timeout: .seconds(15)) == 10)

        await camera.kill()
        #expect(!camera.isRunning)
        let refused = try await ProcessRunner.run(
            "ffprobe", arguments: ["-v", "error", "-rtsp_transport", "tcp", url], timeout: .seconds(10))
        #expect(!refused.succeeded && !refused.timedOut, "a dead camera must refuse connections: \(refused)")

        try await camera.restart()
        #expect(camera.url() == url)
        #expect(try await readFrames(10, from: url, timeout: .seconds(15)) == 10, "\(camera.log())")
        await camera.stop()
    }

    @Test("stall() stops the frames of an open session for 3 s; resume() brings them back")
    func stallAndResume() async throws {
        let camera = try await RTSPCamera()
        // A client that keeps reading and reports its frame count every 0.25 s on stdout. Small
        // probing, so ffmpeg hands frames on as they arrive instead of holding its first seconds.
        let client = try ChildProcess(
            ProcessRunner.which("ffmpeg")!,
            arguments: [
                "-nostdin", "-loglevel", "error", "-probesize", "32", "-analyzeduration", "0",
                "-rtsp_transport", "tcp", "-i", camera.url(), "-f", "null",
                "-progress", "pipe:1", "-stats_period", "0.25", "-",
            ])
        let frames: @Sendable () -> Int = {
            client.lines(of: .stdout).last { $0.hasPrefix("frame=") }.flatMap { Int($0.dropFirst(6)) } ?? 0
        }
        try await client.waitForLine(on: [.stdout], timeout: .seconds(10), "frame=10 or more") {
            $0.hasPrefix("frame=") && (Int($0.dropFirst(6)) ?? 0) >= 10
        }

        try await camera.stall()
        try await Task.sleep(for: .seconds(1))  // frames already on their way still arrive
        let before = frames()
        try await Task.sleep(for: .seconds(3))
        let after = frames()
        #expect(after - before <= 1, "\(after - before) frames arrived during a stall")
        #expect(client.isRunning, "the session must stay open during a stall: \(client.stderr)")

        try await camera.resume()
        let resumed = after
        try await client.waitForLine(on: [.stdout], timeout: .seconds(5), "10 more frames after resume") {
            $0.hasPrefix("frame=") && (Int($0.dropFirst(6)) ?? 0) >= resumed + 10
        }
        let result = await client.stop(signal: SIGINT, gracePeriod: .seconds(3))
        #expect(!result.stderr.contains("rror"), "\(result)")
        await camera.stop()
    }

    @Test("a client that connects during a stall gets no frames and times out")
    func connectDuringStall() async throws {
        let camera = try await RTSPCamera()
        try await camera.stall()
        // -timeout: give up after 2 s without data on the RTSP connection.
        let result = try await ProcessRunner.run(
            "ffmpeg",
            arguments: [
                "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-timeout", "2000000",
                "-i", camera.url(), "-frames:v", "5", "-f", "null", "-progress", "pipe:1", "-",
            ],
            timeout: .seconds(15))
        #expect(!result.succeeded && !result.timedOut, "\(result)")
        let frames = result.stdoutLines.last { $0.hasPrefix("frame=") }.flatMap { Int($0.dropFirst(6)) } ?? 0
        #expect(frames < 5, "\(result)")

        try await camera.resume()
        #expect(try await readFrames(5, from: camera.url(), timeout: .seconds(15)) == 5, "\(camera.log())")
        await camera.stop()
    }

    /// Reads `count` frames from `url` with ffmpeg over RTSP/TCP; returns how many it decoded.
    private func readFrames(_ count: Int, from url: String, timeout: Duration) async throws -> Int {
        let result = try await ProcessRunner.run(
            "ffmpeg",
            arguments: [
                "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url,
                "-frames:v", String(count), "-f", "null", "-progress", "pipe:1", "-",
            ],
            timeout: timeout)
        #expect(result.succeeded, "\(result)")
        return result.stdoutLines.last { $0.hasPrefix("frame=") }.flatMap { Int($0.dropFirst(6)) } ?? 0
    }
}
