import Foundation
import Testing

/// `vantage run` on the sample video file: the whole path a user takes, with real decoding and real inference.
@Suite(
    "vantage run on a video file", .serialized,
    .enabled(if: Repo.isSetUp, "needs scripts/setup and a build (make test does both)"))
struct RunFileTests {
    @Test("the people counter counts the people in the sample video, then prints a summary and exits 0")
    func countsPeopleInFile() async throws {
        let run = try VantageRun(["--camera", "camera_node=\(Repo.sampleVideo.path)", "--json-summary"], http: false)
        let status = try #require(run.waitForExit(timeout: 240), "did not finish; stderr:\n\(run.stderr.suffix(2000))")
        #expect(status == 0, "stderr:\n\(run.stderr.suffix(2000))")

        // The summary: every one of the 795 frames went through the application, none dropped.
        let summaryLine = try #require(run.stderr.split(separator: "\n").last { $0.hasPrefix("{") })
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(summaryLine.utf8)) as? [String: Any])
        #expect((summary["frames"] as? NSNumber)?.intValue == 795)
        #expect((summary["dropped"] as? NSNumber)?.intValue == 0)
        #expect(((summary["framesPerSecond"] as? NSNumber)?.doubleValue ?? 0) > 5)

        // Events: the count in view changes as people walk; at frame 201 seven people are in view, several small
        // and far away: SSDLite at score 0.5 finds three to seven of them (median of five frames).
        let events = run.events
        #expect(events.count >= 10, "events: \(events.count)")
        var countAt201: Int?
        for event in events {
            let payload = try #require(event["payload"] as? [String: Any])
            #expect(event["application"] as? String == "people-counter")
            let frame = (payload["frame"] as? NSNumber)?.intValue ?? 0
            if frame <= 201 { countAt201 = (payload["count"] as? NSNumber)?.intValue }
        }
        let count = try #require(countAt201)
        #expect((3...7).contains(count), "count at frame 201: \(count)")

        // The first event carries a snapshot: a JPEG of the frame beside the event.
        let snapshot = try #require((events.first?["snapshot"] as? [String: Any])?["file"] as? String)
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: snapshot))
        #expect(jpeg.prefix(2) == Data([0xFF, 0xD8]) && jpeg.suffix(2) == Data([0xFF, 0xD9]))
        #expect(jpeg.count > 10_000)
        // Events go to the events file; standard output stays clean for them.
        #expect(run.stdout.isEmpty)
        // Nothing is left behind in shared memory or /tmp.
        let pid = run.process.processIdentifier
        let leftovers =
            ((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? [])
            + ((try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? [])
        #expect(leftovers.filter { $0.hasPrefix("vantage-\(pid)-") }.isEmpty, "\(leftovers)")
    }

    @Test("--param changes what the application does: a higher min_score counts fewer people")
    func parameterOverride() async throws {
        func meanCount(_ minScore: String) throws -> Double {
            let run = try VantageRun(
                ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--param", "min_score=\(minScore)"], http: false)
            #expect(run.waitForExit(timeout: 240) == 0, "stderr:\n\(run.stderr.suffix(2000))")
            let counts = run.events.compactMap {
                (($0["payload"] as? [String: Any])?["count"] as? NSNumber)?.doubleValue
            }
            return counts.isEmpty ? 0 : counts.reduce(0, +) / Double(counts.count)
        }
        let lenient = try meanCount("0.3")
        let strict = try meanCount("0.9")
        #expect(strict < lenient, "mean count at min_score 0.9: \(strict), at 0.3: \(lenient)")
    }

    @Test("a file that does not exist: exit 1 with a message naming the camera and the file")
    func missingFile() throws {
        let run = try VantageRun(["--camera", "camera_node=/nonexistent/video.mp4"], http: false)
        #expect(run.waitForExit(timeout: 60) == 1)
        #expect(run.stderr.contains("error: camera camera_node: cannot open /nonexistent/video.mp4"))
        #expect(run.stderr.contains("check that the file exists"))
    }

    @Test("a camera node that is not in the graph: exit 1, and the message lists the camera nodes")
    func unknownCameraNode() throws {
        let run = try VantageRun(["--camera", "lobby=rtsp://admin:secret@10.0.0.5/s"], http: false)
        #expect(run.waitForExit(timeout: 30) == 1)
        #expect(run.stderr.contains("lobby"))
        #expect(run.stderr.contains("camera_node"))
        #expect(!run.stderr.contains("secret"), "the password must not be printed")
    }

    @Test("a corrupt model: exit 1 with a message naming the model, its file and what to do")
    func corruptModel() throws {
        let app = try Repo.copyOfPeopleCounter()
        let bad = app.appendingPathComponent("corrupt.pb")
        try Data((0..<4096).map { _ in UInt8.random(in: 0...255) }).write(to: bad)
        let descriptor = app.appendingPathComponent("packages/123456789012-people_detector-1.0/descriptor.json")
        var text = try String(contentsOf: descriptor, encoding: .utf8)
        text = text.replacingOccurrences(of: "../../.deps/models/ssdlite/frozen_inference_graph.pb", with: "corrupt.pb")
        try text.write(to: descriptor, atomically: true, encoding: .utf8)
        let run = try VantageRun(app: app, ["--camera", "camera_node=\(Repo.sampleVideo.path)"], http: false)
        #expect(run.waitForExit(timeout: 60) == 1)
        let stderr = run.stderr
        #expect(stderr.contains("model_node"), "stderr:\n\(stderr.suffix(2000))")
        #expect(stderr.contains("corrupt.pb"))
        #expect(stderr.contains("re-export or re-download it"))
    }

    @Test("a live-view port already in use: exit 1 at once, saying which port and what to do")
    func httpPortInUse() async throws {
        let first = try VantageRun(["--camera", "camera_node=\(Repo.sampleVideo.path)", "--loop"])
        let port = try first.port()
        // The last --http wins over VantageRun's own.
        let second = try VantageRun(
            ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--http", "127.0.0.1:\(port)"])
        #expect(second.waitForExit(timeout: 30) == 1)
        #expect(
            second.stderr.contains("cannot serve the live view on 127.0.0.1:\(port)"), "\(second.stderr.suffix(1000))")
        #expect(second.stderr.contains("--http HOST:PORT") && second.stderr.contains("--no-http"))
        #expect(first.interrupt() == 0, "the first run is not disturbed")
    }
}
