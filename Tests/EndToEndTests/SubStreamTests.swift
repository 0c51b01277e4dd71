import Foundation
import Testing

/// A camera with a sub-stream, as IP cameras offer them (a 1080p main stream for recording and a 640x360 one for
/// analytics, both over RTSP): the real RTSP test camera serves the sample video at both sizes, and `vantage run`
/// detects on the small one while only reading the big one (for clips: `SubStreamClipTests` in the runtime's tests).
@Suite(
    "vantage run: detection on a camera's sub-stream", .serialized,
    .enabled(
        if: Repo.isSetUp && Repo.isAvailable(.sampleVideo1080p, .rtspCamera)
            && FileManager.default.fileExists(atPath: Repo.sampleVideo360p.path),
        "needs scripts/setup (the 1080p and 360p samples, the RTSP camera) and a build"))
struct SubStreamTests {
    @Test("Frames are decoded from the 640x360 sub-stream; the 1080p main stream is read, never decoded")
    func detectsOnTheSubStream() async throws {
        let camera = try await RTSPCamera(streams: [
            .init(mount: "/main", file: Repo.sampleVideo1080p), .init(mount: "/sub", file: Repo.sampleVideo360p),
        ])
        let run = try VantageRun([
            "--camera", "camera_node=\(camera.url(mount: "/main", credentials: "viewer:s3cret"))",
            "--detect-stream", "camera_node=\(camera.url(mount: "/sub", credentials: "viewer:s3cret"))",
        ])
        // The people counter counts on the sub-stream's frames.
        #expect(
            poll(timeout: 30) {
                run.events.contains { (($0["payload"] as? [String: Any])?["count"] as? NSNumber)?.intValue ?? 0 >= 1 }
            })
        let (ok, status) = try await run.waitForStatus(timeout: 60) {
            $0.appNumber("framesDelivered") >= 30
                && (($0.camera("camera_node")["main"] as? [String: Any])?["counters"] as? [String: Any])?["received"]
                    as? Int ?? 0 >= 30
        }
        #expect(ok, "no frames, or the main stream was not read: \(status)\n\(run.stderr.suffix(2000))")
        #expect(status.cameraCounter("camera_node", "width") == 640)
        #expect(status.cameraCounter("camera_node", "height") == 360)
        #expect((status.camera("camera_node")["uri"] as? String)?.hasSuffix("/sub") == true)
        let main = try #require(status.camera("camera_node")["main"] as? [String: Any])
        let mainCounters = try #require(main["counters"] as? [String: Any])
        #expect(mainCounters["decoded"] as? Int == 0, "the main stream is never decoded")
        #expect(mainCounters["state"] as? String == "streaming")
        #expect((main["uri"] as? String)?.contains("***@") == true)

        #expect(!run.stderr.contains("s3cret"))
        #expect(run.interrupt() == 0)
    }

    @Test("A --detect-stream for a node without a camera, or one too many, is refused with what to write")
    func clearErrors() throws {
        let run = try VantageRun(
            [
                "--camera", "camera_node=\(Repo.sampleVideo.path)", "--detect-stream",
                "camera_node=\(Repo.sampleVideo.path)", "--detect-stream", "camera_node=\(Repo.sampleVideo.path)",
            ], http: false)
        #expect(run.waitForExit(timeout: 60) != 0)
        #expect(
            run.stderr.contains("camera node camera_node has 1 stream(s), and this is sub-stream 2"), "\(run.stderr)")
        #expect(run.stderr.contains("one --detect-stream per --camera"))
        let other = try VantageRun(
            ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--detect-stream", "door=\(Repo.sampleVideo.path)"],
            http: false)
        #expect(other.waitForExit(timeout: 60) != 0)
        #expect(other.stderr.contains("there is no camera node \"door\""), "\(other.stderr)")
    }
}
