// A real RTSP camera for end-to-end tests: runs `scripts/rtsp-camera` (a GStreamer RTSP server)
// serving video files, on 127.0.0.1, passed through in their codec (H.264, H.265 or MJPEG), paced in real time,
// looping for ever. `options` go to the script as they are (e.g. ["--sdp-codec", "AV1"]).
//
//     let camera = try await RTSPCamera()                    // vtest.mp4 at /stream
//     let run = try ChildProcess(Repo.vantageBinary, arguments: ["run", app, "--camera", "Camera_1=\(camera.url())"])
//     try await camera.stall()                               // RTP stops, RTSP session stays open
//     try await camera.resume()
//     await camera.kill()                                    // the camera dies (SIGKILL)
//     try await camera.restart()                             // back, same port: same URL works again
//     await camera.stop()                                    // or let deinit kill it
//
// The camera's stderr (client connections, stalls, errors) goes to `logFile`; `log()` reads it.

import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why the camera could not do what was asked.
struct RTSPCameraError: Error, CustomStringConvertible {
    let description: String
}

/// An RTSP camera serving files at mount points of `rtsp://127.0.0.1:PORT`.
final class RTSPCamera: Sendable {
    /// One camera stream: `file` (an MP4/MOV in H.264, H.265 or MJPEG) served at `mount` (e.g. "/cam1").
    struct Stream: Sendable {
        let mount: String
        let file: URL

        init(mount: String = "/stream", file: URL = Repo.sampleVideo) {
            self.mount = mount.hasPrefix("/") ? mount : "/" + mount
            self.file = file
        }
    }

    let streams: [Stream]
    /// More options for `scripts/rtsp-camera`, kept across `restart()`.
    let options: [String]
    /// The address the camera listens on.
    let host = "127.0.0.1"
    /// The TCP port; stays the same across `restart()`.
    let port: Int
    /// The camera's stderr, across restarts.
    let logFile: URL

    private let readyTimeout: Duration
    private let child: Mutex<ChildProcess?>

    /// Starts a camera serving `file` at `mount`, and returns once it accepts connections.
    /// `port` 0 picks a free port.
    convenience init(
        file: URL = Repo.sampleVideo, mount: String = "/stream", port: Int = 0, options: [String] = [],
        readyTimeout: Duration = .seconds(20)
    ) async throws {
        try await self.init(
            streams: [Stream(mount: mount, file: file)], port: port, options: options, readyTimeout: readyTimeout)
    }

    /// Starts a camera serving each of `streams` at its own mount, and returns once it accepts
    /// connections. `port` 0 picks a free port.
    init(
        streams: [Stream], port: Int = 0, options: [String] = [], readyTimeout: Duration = .seconds(20)
    ) async throws {
        precondition(!streams.isEmpty, "an RTSP camera needs at least one stream")
        self.streams = streams
        self.options = options
        self.readyTimeout = readyTimeout
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("vantage-rtsp-camera-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.logFile = directory.appendingPathComponent("rtsp-camera.log")
        let (process, port) = try await RTSPCamera.launch(
            streams: streams, port: port, options: options, logFile: logFile, readyTimeout: readyTimeout)
        self.port = port
        self.child = Mutex(process)
    }

    deinit {
        // Dropping the ChildProcess kills the camera if it still runs.
        child.withLock { $0 = nil }
    }

    /// `rtsp://127.0.0.1:PORT`
    var baseURL: String { "rtsp://\(host):\(port)" }

    /// The URL of the stream at `mount`; by default the first stream's.
    func url(mount: String? = nil) -> String {
        let mount = mount ?? streams[0].mount
        return baseURL + (mount.hasPrefix("/") ? mount : "/" + mount)
    }

    /// Whether the camera process is running.
    var isRunning: Bool { child.withLock { $0?.isRunning ?? false } }

    /// The camera's log (its stderr) so far, for diagnostics.
    func log() -> String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }

    // MARK: Failures to simulate

    /// Freezes every stream (SIGUSR1): no more RTP packets, while RTSP sessions and their TCP
    /// connections stay open and RTSP requests are still answered, like a camera whose encoder
    /// hung. New clients get their DESCRIBE/SETUP/PLAY answered, then no media. Returns once the
    /// camera has confirmed it.
    func stall(timeout: Duration = .seconds(5)) async throws {
        try await signalAndConfirm(SIGUSR1, "STALLED", timeout: timeout)
    }

    /// Ends a stall (SIGUSR2): the streams go on in real time from where they froze. Returns once
    /// the camera has confirmed it.
    func resume(timeout: Duration = .seconds(5)) async throws {
        try await signalAndConfirm(SIGUSR2, "RESUMED", timeout: timeout)
    }

    /// Kills the camera at once (SIGKILL), like a camera losing power: connections break without
    /// an RTSP TEARDOWN. Returns once the process is gone.
    func kill() async {
        guard let process = child.withLock({ $0 }) else { return }
        process.kill()
        _ = try? await process.waitForExit(timeout: .seconds(10))
    }

    /// Starts the camera again on the same port (killing it first if it still runs), so that a
    /// client reconnecting to the same URL succeeds. Returns once it accepts connections.
    func restart() async throws {
        await kill()
        let deadline = ContinuousClock.now + readyTimeout
        var lastError: (any Error)?
        // The port can stay busy a moment after the old process is gone: try again until ready.
        while ContinuousClock.now < deadline {
            do {
                let (process, _) = try await RTSPCamera.launch(
                    streams: streams, port: port, options: options, logFile: logFile, readyTimeout: deadline - .now)
                child.withLock { $0 = process }
                return
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        throw RTSPCameraError(
            description: "the RTSP camera did not restart on port \(port): \(lastError.map { "\($0)" } ?? "timed out")")
    }

    /// Stops the camera (SIGTERM, then SIGKILL after `gracePeriod`). Safe to call twice.
    func stop(gracePeriod: Duration = .seconds(5)) async {
        guard let process = child.withLock({ $0 }) else { return }
        await process.stop(signal: SIGTERM, gracePeriod: gracePeriod)
    }

    // MARK: Internals

    private func signalAndConfirm(_ signal: Int32, _ confirmation: String, timeout: Duration) async throws {
        guard let process = child.withLock({ $0 }), process.isRunning else {
            throw RTSPCameraError(description: "the RTSP camera is not running")
        }
        let mark = process.mark()
        process.send(signal: signal)
        do {
            try await process.waitForLine(on: [.stdout], after: mark, timeout: timeout, "\(confirmation)") {
                $0 == confirmation
            }
        } catch {
            throw RTSPCameraError(description: "the RTSP camera did not confirm \(confirmation): \(error)\n\(log())")
        }
    }

    /// Starts `scripts/rtsp-camera` and waits for its `READY rtsp://HOST:PORT` line.
    private static func launch(
        streams: [Stream], port: Int, options: [String], logFile: URL, readyTimeout: Duration
    ) async throws -> (ChildProcess, Int) {
        var arguments = ["--address", "127.0.0.1", "--port", String(port)] + options
        for stream in streams { arguments += ["--stream", "\(stream.mount)=\(stream.file.path)"] }
        let process = try ChildProcess(
            Repo.rtspCameraScript, arguments: arguments, stdout: .capture, stderr: .file(logFile))
        let ready: String
        do {
            ready = try await process.waitForLine(on: [.stdout], timeout: readyTimeout, "the READY line") {
                $0.hasPrefix("READY ")
            }
        } catch {
            await process.stop(signal: SIGKILL, gracePeriod: .seconds(1))
            let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
            throw RTSPCameraError(
                description: "the RTSP camera did not start (\(process.commandLine)): \(error)\n"
                    + "--- camera log \(logFile.path) ---\n\(ChildProcess.tail(log))")
        }
        // READY rtsp://127.0.0.1:PORT
        guard let colon = ready.lastIndex(of: ":"), let bound = Int(ready[ready.index(after: colon)...]) else {
            await process.stop(signal: SIGKILL, gracePeriod: .seconds(1))
            throw RTSPCameraError(description: "the RTSP camera said \"\(ready)\", not READY rtsp://HOST:PORT")
        }
        return (process, bound)
    }
}
