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
        try copyExample("defect-alert", to: app)
        // The example's own outputs send to sinks; this test uses only its camera and model.
        let graphFile = app.appendingPathComponent("graphs/defect-alert/graph.json")
        var graph = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: graphFile)) as? [String: Any])
        var body = try #require(graph["nodeGraph"] as? [String: Any])
        body["outputs"] = nil
        graph["nodeGraph"] = body
        try JSONSerialization.data(withJSONObject: graph).write(to: graphFile)

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
