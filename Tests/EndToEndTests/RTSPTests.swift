import Foundation
import Testing

/// `vantage run` against a real RTSP camera: detections, live view, status, and what happens when the camera
/// or the application misbehaves.
@Suite(
    "vantage run on RTSP cameras", .serialized,
    .enabled(if: Repo.isSetUp, "needs scripts/setup and a build (make test does both)"))
struct RTSPTests {
    @Test("people are detected on a live RTSP stream; the live view, snapshot and status show it; Ctrl-C stops")
    func liveStream() async throws {
        let camera = try await RTSPCamera()
        let run = try VantageRun(["--camera", "camera_node=\(camera.url(credentials: "viewer:s3cret"))"])
        let (ok, status) = try await run.waitForStatus(timeout: 60) { $0.appNumber("framesDelivered") >= 30 }
        #expect(ok, "frames did not reach the application: \(status)\n\(run.stderr.suffix(2000))")
        #expect(status.cameraState("camera_node") == "streaming")
        #expect(status.appPhase == "running")

        // Real detections: events with people counted.
        #expect(
            poll(timeout: 20) {
                run.events.contains { (($0["payload"] as? [String: Any])?["count"] as? NSNumber)?.intValue ?? 0 >= 1 }
            })

        // The live view: a page listing the stream and an annotated JPEG of it.
        let (pageCode, page) = try await run.get("/")
        #expect(pageCode == 200)
        #expect(String(decoding: page, as: UTF8.self).contains("/streams/camera_node.mjpeg"))
        let (jpegCode, jpeg) = try await run.get("/streams/camera_node.jpg")
        #expect(jpegCode == 200)
        #expect(jpeg.prefix(2) == Data([0xFF, 0xD8]))

        // The password is in no log line and no status field.
        #expect(!run.stderr.contains("s3cret"))
        #expect(!status.description.contains("s3cret"))
        #expect((status.camera("camera_node")["uri"] as? String)?.contains("***@") == true)

        #expect(run.interrupt() == 0, "Ctrl-C stops cleanly; stderr:\n\(run.stderr.suffix(2000))")
    }

    @Test("the RTSP server is killed and comes back: the stream recovers within 10 s")
    func serverRestart() async throws {
        let camera = try await RTSPCamera()
        let run = try VantageRun(["--camera", "camera_node=\(camera.url())", "--stall-timeout", "2"])
        try await run.waitForStatus(timeout: 60) { $0.cameraCounter("camera_node", "decoded") >= 20 }
        await camera.kill()
        try await Task.sleep(for: .seconds(3))
        let before = try await run.status().cameraCounter("camera_node", "decoded")
        try await camera.restart()
        let restarted = Date()
        let (ok, status) = try await run.waitForStatus(timeout: 10) {
            $0.cameraCounter("camera_node", "decoded") >= before + 10 && $0.cameraState("camera_node") == "streaming"
        }
        #expect(ok, "no recovery within 10 s: \(status)")
        #expect(Date().timeIntervalSince(restarted) < 10)
        #expect(status.cameraCounter("camera_node", "reconnects") >= 1)
        #expect(status.appNumber("restarts") == 0, "the application is not disturbed by the camera")
    }

    @Test("a stream that stalls (connected, no video) is detected and restarted, and resumes")
    func stall() async throws {
        let camera = try await RTSPCamera()
        let run = try VantageRun(["--camera", "camera_node=\(camera.url())", "--stall-timeout", "2"])
        try await run.waitForStatus(timeout: 60) { $0.cameraCounter("camera_node", "decoded") >= 20 }
        try await camera.stall()
        let (detected, status) = try await run.waitForStatus(timeout: 15) {
            $0.cameraCounter("camera_node", "stalls") >= 1
        }
        #expect(detected, "stall not detected: \(status)")
        #expect(status.cameraError("camera_node").contains("no video for 2"))
        try await camera.resume()
        let before = try await run.status().cameraCounter("camera_node", "decoded")
        let (recovered, after) = try await run.waitForStatus(timeout: 20) {
            $0.cameraCounter("camera_node", "decoded") >= before + 10
        }
        #expect(recovered, "no frames after resume: \(after)")
    }

    @Test("a wrong URL gets a clear error and does not slow the other camera")
    func wrongURLIsolated() async throws {
        let camera = try await RTSPCamera()
        let run = try VantageRun([
            "--camera", "camera_node=\(camera.url())",
            "--camera", "camera_node=\(camera.url(mount: "/no-such-mount", credentials: "admin:hunter2"))",
        ])
        let (ok, status) = try await run.waitForStatus(timeout: 60) {
            $0.cameraCounter("camera_node_1", "decoded") >= 30 && $0.cameraCounter("camera_node_2", "reconnects") >= 1
                && $0.appNumber("framesDelivered") >= 30  // the application gets the good camera's frames
        }
        #expect(ok, "\(status)")
        #expect(status.cameraState("camera_node_1") == "streaming")
        #expect(status.cameraCounter("camera_node_2", "decoded") == 0)
        let error = status.cameraError("camera_node_2")
        #expect(
            error.contains("camera camera_node_2: cannot open rtsp://***@127.0.0.1:\(camera.port)/no-such-mount"),
            "\(error)")
        #expect(error.contains("check the host, port, path and credentials"))
        #expect(!run.stderr.contains("hunter2") && !status.description.contains("hunter2"))
    }

    @Test("an application that crashes is restarted; the camera keeps running")
    func crashedAppRestarts() async throws {
        let camera = try await RTSPCamera()
        let run = try VantageRun(["--camera", "camera_node=\(camera.url())"])
        let (_, first) = try await run.waitForStatus(timeout: 60) { $0.appNumber("framesDelivered") >= 20 }
        let pid = Int32(first.appNumber("pid"))
        #expect(pid > 0)
        kill(pid, SIGKILL)
        let (ok, status) = try await run.waitForStatus(timeout: 20) {
            $0.appNumber("restarts") == 1 && $0.appPhase == "running" && $0.appNumber("pid") != Int(pid)
        }
        #expect(ok, "\(status)")
        #expect((status.app["lastExit"] as? String)?.contains("signal 9") == true, "\(status)")
        let delivered = status.appNumber("framesDelivered")
        let (flowing, _) = try await run.waitForStatus(timeout: 20) {
            $0.appNumber("framesDelivered") >= delivered + 10
        }
        #expect(flowing, "frames flow to the restarted application")
        #expect(status.cameraCounter("camera_node", "reconnects") == 0, "the camera was not disturbed")
    }

    @Test("an application that hangs is killed and restarted")
    func hungAppRestarts() async throws {
        let camera = try await RTSPCamera()
        let run = try VantageRun(["--camera", "camera_node=\(camera.url())", "--app-hang-timeout", "2"])
        let (_, first) = try await run.waitForStatus(timeout: 60) { $0.appNumber("framesDelivered") >= 20 }
        let pid = Int32(first.appNumber("pid"))
        kill(pid, SIGSTOP)  // frozen: alive, but asks for nothing
        let (ok, status) = try await run.waitForStatus(timeout: 20) {
            $0.appNumber("restarts") >= 1 && $0.appPhase == "running"
        }
        #expect(ok, "\(status)")
        #expect((status.app["lastExit"] as? String)?.contains("not responding") == true, "\(status)")
    }

    @Test("an HTTP MJPEG camera works too: a second runtime reads the first one's live view as its camera")
    func httpMJPEGCamera() async throws {
        let camera = try await RTSPCamera()
        let first = try VantageRun(["--camera", "camera_node=\(camera.url())"])
        let port = try first.port()
        let second = try VantageRun(["--camera", "camera_node=http://127.0.0.1:\(port)/streams/camera_node.mjpeg"])
        let (ok, status) = try await second.waitForStatus(timeout: 60) { $0.appNumber("framesDelivered") >= 20 }
        #expect(ok, "no frames from the MJPEG stream: \(status)\n\(second.stderr.suffix(2000))")
        #expect(status.cameraState("camera_node") == "streaming")
        #expect(status.cameraCounter("camera_node", "width") == 768)
        #expect(second.interrupt() == 0)
        #expect(first.interrupt() == 0)
    }
}
