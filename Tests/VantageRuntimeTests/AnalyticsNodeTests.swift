import Foundation
import Logging
import Testing
import VantageApp
import VantageCore

@testable import VantageRuntime

/// A no-code analytics node in the real runtime: the person detector on every frame of the sample video, the
/// tracker, the hand-counted line of Tests/GroundTruth and a zone, with object events — no code node at all.
@Suite("Analytics nodes", .enabled(if: sdkTestReady, "run scripts/setup: the sample video and the person detector"))
struct AnalyticsNodeTests {
    @Test("Counts the ground truth's line within one per direction, one object event per person, no code")
    func countsWithoutCode() async throws {
        let fm = FileManager.default
        let work = fm.temporaryDirectory.appendingPathComponent("vantage-analytics-\(UUID().uuidString)")
        defer { try? fm.removeItem(at: work) }
        let app = work.appendingPathComponent("app")
        try copyCameraAndDetector(to: app)

        let truth = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: repoRoot.appendingPathComponent("Tests/GroundTruth/vtest-line-crossings.json")))
                as? [String: Any])
        let line = try #require(truth["line"] as? [String: Any])
        let from = try #require(line["from"] as? [String: Double])
        let to = try #require(line["to"] as? [String: Double])
        let totals = try #require(truth["totals"] as? [String: Int])
        let outputs = work.appendingPathComponent("outputs.json")
        try """
        {"analytics": [{"name": "plaza", "camera": "camera_node", "model": "model_node", "classes": ["person"],
          "lines": [{"name": "path", "from": [\(from["x"]!), \(from["y"]!)], "to": [\(to["x"]!), \(to["y"]!)]}],
          "zones": [{"name": "lawn", "polygon": [[0, 0.62], [1, 0.85], [1, 1], [0, 1]]}]}]}
        """.write(to: outputs, atomically: true, encoding: .utf8)

        var (application, configuration) = try sampleVideoRun(of: app, in: work)
        configuration.outputsFile = outputs
        let eventsFile = configuration.eventsFile!
        let runtime = try await Runtime.make(
            application: application, configuration: configuration, logger: Logger(label: "test"))
        try await runtime.run()  // the file plays once, as fast as inference allows, then the run ends

        let events = try String(contentsOf: eventsFile, encoding: .utf8).split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        func payload(_ e: [String: Any]) -> [String: Any] { e["payload"] as? [String: Any] ?? [:] }
        let crossings = events.filter { $0["type"] as? String == "line.cross" }
        let countIn = crossings.count { payload($0)["direction"] as? String == "in" }
        let countOut = crossings.count { payload($0)["direction"] as? String == "out" }
        print("analytics node on vtest: in \(countIn) out \(countOut), truth in \(totals["in"]!) out \(totals["out"]!)")
        #expect(abs(countIn - totals["in"]!) <= 1 && abs(countOut - totals["out"]!) <= 1)
        // The status agrees with the events, and the last crossing event carries the running totals.
        let status = try #require(runtime.status().analytics.first)
        #expect(status.lineCounts["path"] == ["in": countIn, "out": countOut])
        #expect(payload(try #require(crossings.last))["in"] as? Int == countIn)
        #expect(status.frames > 700, "the node analysed \(status.frames) of 795 frames")

        // One object event per person: each has a start and an end with the same ID, its best view attached.
        let objects = events.filter { $0["type"] as? String == "object" }
        let starts = objects.filter { $0["phase"] as? String == "start" }.compactMap { $0["id"] as? String }
        let ends = objects.filter { $0["phase"] as? String == "end" }.compactMap { $0["id"] as? String }
        #expect(Set(starts).count == starts.count, "an object started twice")
        #expect(Set(starts) == Set(ends), "every object that started ends, once")
        #expect(
            starts.count >= 10 && starts.count < 80, "\(starts.count) objects for the few dozen people in the video")
        for end in objects where end["phase"] as? String == "end" {
            let file = try #require((end["snapshot"] as? [String: Any])?["file"] as? String)
            #expect(fm.fileExists(atPath: file))
            #expect((payload(end)["seconds"] as? Double ?? 0) >= 0)
        }
        // Zone events pair up: every enter has its leave (the video ends with everyone leaving or ending).
        let enters = events.count { $0["type"] as? String == "zone.enter" }
        let leaves = events.count { $0["type"] as? String == "zone.leave" }
        #expect(enters > 0 && enters == leaves)
    }
}

/// examples/defect-alert's camera and person detector at `app`, without the example's own outputs (they send to
/// sinks): the tests add the analytics they need.
func copyCameraAndDetector(to app: URL) throws {
    try copyExample("defect-alert", to: app)
    let graphFile = app.appendingPathComponent("graphs/defect-alert/graph.json")
    var graph = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: graphFile)) as? [String: Any])
    var body = try #require(graph["nodeGraph"] as? [String: Any])
    body["outputs"] = nil
    graph["nodeGraph"] = body
    try JSONSerialization.data(withJSONObject: graph).write(to: graphFile)
}

/// The detector apart from the camera rate, and only where something moves, on the real sample video: the hand-counted
/// line of Tests/GroundTruth must still be counted within one per direction, with half the detections or fewer.
@Suite(
    "Analytics nodes: detection rate and motion gating",
    .enabled(if: sdkTestReady, "run scripts/setup: the sample video and the person detector"))
struct AnalyticsDetectionRateTests {
    struct Run {
        var countIn = 0
        var countOut = 0
        var status: StatusReport.Analytics
    }

    /// The defect-alert example's camera and detector with one analytics node counting the ground truth's line,
    /// `fields` added to the node, on `video`.
    static func run(video: URL, fields: String, in work: URL) async throws -> Run {
        let app = work.appendingPathComponent("app")
        try copyCameraAndDetector(to: app)
        let outputs = work.appendingPathComponent("outputs.json")
        try """
        {"analytics": [{"name": "plaza", "camera": "camera_node", "model": "model_node", "classes": ["person"],
          "lines": [{"name": "path", "from": [0.3, 0.62], "to": [0.3, 0.3]}]\(fields)}]}
        """.write(to: outputs, atomically: true, encoding: .utf8)
        var (_, configuration) = try sampleVideoRun(of: app, in: work)
        var overrides = RunOverrides()
        try overrides.addCamera(argument: "camera_node=\(video.path)")
        let application = try ApplicationProject.load(app).resolve(overrides)
        configuration.outputsFile = outputs
        let runtime = try await Runtime.make(
            application: application, configuration: configuration, logger: Logger(label: "test"))
        try await runtime.run()
        let status = try #require(runtime.status().analytics.first)
        let counts = status.lineCounts["path"] ?? [:]
        return Run(countIn: counts["in"] ?? 0, countOut: counts["out"] ?? 0, status: status)
    }

    static func truth() throws -> (in: Int, out: Int) {
        let truth = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: repoRoot.appendingPathComponent("Tests/GroundTruth/vtest-line-crossings.json")))
                as? [String: Any])
        let totals = try #require(truth["totals"] as? [String: Int])
        return (totals["in"]!, totals["out"]!)
    }

    @Test("detectFps 5 on a 10 fps camera: the detector runs on every other frame, every frame is still looked at")
    func halfTheDetections() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-rate-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let r = try await Self.run(
            video: repoRoot.appendingPathComponent(".deps/media/vtest.mp4"), fields: #", "detectFps": 5"#, in: work)
        let truth = try Self.truth()
        print(
            "detectFps 5 on vtest: in \(r.countIn) out \(r.countOut), detections \(r.status.detections) of \(r.status.frames)"
        )
        #expect(r.status.frames > 700, "every frame is looked at")
        let share = Double(r.status.detections) / Double(r.status.frames)
        #expect(share > 0.45 && share < 0.55, "the detector ran on \(r.status.detections) of \(r.status.frames) frames")
        #expect(abs(r.countIn - truth.in) <= 1 && abs(r.countOut - truth.out) <= 1)
    }

    /// The video: 8 s of the plaza with nobody in it (the median of the sample video's frames, which removes the
    /// walkers), with per-pixel noise as a real camera's sensor gives, then the sample video itself.
    static func stillThenWalkers(in work: URL) throws -> URL {
        let sample = repoRoot.appendingPathComponent(".deps/media/vtest.mp4").path
        let empty = work.appendingPathComponent("plaza.png").path
        let video = work.appendingPathComponent("still-then-walkers.mp4")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        func ffmpeg(_ arguments: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
            p.arguments = ["-nostdin", "-loglevel", "error", "-y"] + arguments
            try p.run()
            p.waitUntilExit()
            try #require(p.terminationStatus == 0, "ffmpeg \(arguments.joined(separator: " "))")
        }
        try ffmpeg([
            "-i", sample, "-vf", "select='not(mod(n,20))',tmedian=radius=19", "-vsync", "0", "-update", "1",
            "-frames:v", "40", empty,
        ])
        try ffmpeg([
            "-loop", "1", "-framerate", "10", "-t", "8", "-i", empty, "-i", sample, "-filter_complex",
            "[0:v]format=yuv420p,noise=alls=6:allf=t[a];[a][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264",
            "-preset", "veryfast", "-g", "25", "-bf", "0", "-pix_fmt", "yuv420p", video.path,
        ])
        return video
    }

    @Test("Motion gating: an empty scene costs no detection at all; the people walking in after it are counted")
    func stillSceneIsFree() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-motion-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let video = try Self.stillThenWalkers(in: work)
        let gated = try await Self.run(video: video, fields: #", "detectFps": 5, "motion": true"#, in: work)
        let truth = try Self.truth()
        print(
            "detectFps 5 + motion on still+vtest: in \(gated.countIn) out \(gated.countOut), detections "
                + "\(gated.status.detections), still \(gated.status.stillFrames) of \(gated.status.frames)")
        #expect(gated.status.frames > 780)
        // While nothing moves, a detection stays due and every frame of the 8 s (80) is skipped as still.
        #expect(gated.status.stillFrames >= 76, "\(gated.status.stillFrames) due frames skipped as still")
        // The walkers move all the time: from then on the detector runs at its rate (795 frames at 10 fps → ≤ 398).
        #expect(gated.status.detections <= 400 && gated.status.detections >= 360)
        #expect(abs(gated.countIn - truth.in) <= 1 && abs(gated.countOut - truth.out) <= 1)
    }
}

/// A camera that detects on its sub-stream: the analytics see the 640x360 frames, and clips are cut from the 1080p
/// main stream, which is read but never decoded. Files stand in for the two RTSP streams here (the RTSP camera serving
/// both is in EndToEndTests' SubStreamTests); a main stream that is not decoded is read at once to its end.
@Suite(
    "Sub-streams: detect on the small stream, clip from the main one",
    .enabled(
        if: sdkTestReady
            && FileManager.default.fileExists(
                atPath: repoRoot.appendingPathComponent(".deps/media/vtest-360p.mp4").path),
        "run scripts/setup: the 1080p and 360p sample videos and the person detector"))
struct SubStreamClipTests {
    @Test("The analytics node gets 640x360 frames; a clip of the camera is 1920x1080, from the main stream")
    func clipsComeFromTheMainStream() async throws {
        let fm = FileManager.default
        let work = fm.temporaryDirectory.appendingPathComponent("vantage-substream-\(UUID().uuidString)")
        defer { try? fm.removeItem(at: work) }
        let app = work.appendingPathComponent("app")
        try copyCameraAndDetector(to: app)
        let outputs = work.appendingPathComponent("outputs.json")
        try
            #"{"analytics": [{"name": "plaza", "camera": "camera_node", "model": "model_node", "classes": ["person"]}]}"#
            .write(to: outputs, atomically: true, encoding: .utf8)
        var (_, configuration) = try sampleVideoRun(of: app, in: work)
        configuration.outputsFile = outputs
        var overrides = RunOverrides()
        try overrides.addCamera(
            argument: "camera_node=\(repoRoot.appendingPathComponent(".deps/media/vtest-1080p.mp4").path)")
        try overrides.addDetectStream(
            argument: "camera_node=\(repoRoot.appendingPathComponent(".deps/media/vtest-360p.mp4").path)")
        let application = try ApplicationProject.load(app).resolve(overrides)
        #expect(application.cameras.first?.detectURL?.hasSuffix("vtest-360p.mp4") == true)
        let runtime = try await Runtime.make(
            application: application, configuration: configuration, logger: Logger(label: "test"))
        try await runtime.run()

        let status = runtime.status()
        let camera = try #require(status.cameras.first)
        #expect(camera.counters.width == 640 && camera.counters.height == 360, "frames come from the sub-stream")
        #expect((status.analytics.first?.frames ?? 0) > 700)
        let main = try #require(camera.main, "the status shows the main stream")
        #expect(main.counters.received >= 795 && main.counters.decoded == 0, "read, never decoded: \(main.counters)")

        let source = try #require(
            Runtime.clipCameras(names: runtime.cameraNames, cameras: runtime.cameras, mainStreams: runtime.mainStreams)[
                "camera_node"])
        #expect(source === runtime.mainStreams["camera_node"])
        let clip = work.appendingPathComponent("clip.mp4")
        _ = try source.writeClip(from: Date().addingTimeInterval(-120), to: Date(), into: clip)
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/ffprobe")
        probe.arguments = [
            "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0",
            clip.path,
        ]
        let pipe = Pipe()
        probe.standardOutput = pipe
        try probe.run()
        probe.waitUntilExit()
        let size = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(size.trimmingCharacters(in: .whitespacesAndNewlines) == "1920,1080", "the clip is \(size)")
    }
}
