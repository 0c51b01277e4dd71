import Foundation
import Testing
import VantageAnalytics
import VantageCore

/// Tests/GroundTruth/tracker-scenario.json, the scripted scene the Python SDK's tests replay too
/// (python/tests/test_tracking.py): both implementations must give the IDs, events and counts stored in it.
@Suite("Tracker scenario shared with the Python SDK")
struct ScenarioTests {
    struct Scenario: Decodable {
        struct Frame: Decodable {
            var time: Double
            var detections: [Detection]
        }
        struct Detection: Decodable {
            var actor: String
            var classId: Int
            var score: Double
            var box: [Double]
        }
        struct Expected: Decodable {
            var actorTracks: [String: [Int]]
            var events: [Event]
            var ended: [Ended]
            var counts: [String: Count]
            var liveAtEnd: [Int]
        }
        struct Event: Decodable, Equatable, CustomStringConvertible {
            var frame: Int
            var type: String
            var name: String
            var track: Int?
            var direction: String?
            var countIn: Int?
            var countOut: Int?
            var count: Int?
            var seconds: Double?
            var description: String {
                "\(frame) \(type) \(name) track \(track ?? 0) \(direction ?? "") \(countIn ?? 0)/\(countOut ?? 0) "
                    + "count \(count ?? 0) seconds \(seconds.map { String(format: "%.2f", $0) } ?? "-")"
            }
        }
        struct Ended: Decodable, Equatable {
            var frame: Int
            var track: Int
            var state: String
        }
        struct Count: Decodable {
            var `in`: Int
            var out: Int
        }
        var line: CountingLine
        var zone: Zone
        var frames: [Frame]
        var expected: Expected
    }

    static func event(_ e: SceneEvent, frame: Int) -> Scenario.Event {
        switch e {
        case .zoneEnter(let zone, let track):
            Scenario.Event(frame: frame, type: "zoneEnter", name: zone, track: track.id)
        case .zoneLeave(let zone, let track, let seconds):
            Scenario.Event(frame: frame, type: "zoneLeave", name: zone, track: track.id, seconds: seconds)
        case .zoneDwell(let zone, let track, let seconds):
            Scenario.Event(frame: frame, type: "zoneDwell", name: zone, track: track.id, seconds: seconds)
        case .zoneOccupancy(let zone, let count):
            Scenario.Event(frame: frame, type: "zoneOccupancy", name: zone, count: count)
        case .lineCross(let line, let track, let direction, let countIn, let countOut):
            Scenario.Event(
                frame: frame, type: "lineCross", name: line, track: track.id, direction: direction.rawValue,
                countIn: countIn, countOut: countOut)
        }
    }

    @Test("The scripted scene gives the stored track IDs, events, ends and counts")
    func replay() throws {
        let url = repositoryRoot.appendingPathComponent("Tests/GroundTruth/tracker-scenario.json")
        let scenario = try JSONDecoder().decode(Scenario.self, from: Data(contentsOf: url))
        var tracker = ByteTracker()
        var scene = SceneAnalyzer(zones: [scenario.zone], lines: [scenario.line])
        var events: [Scenario.Event] = []
        var ended: [Scenario.Ended] = []
        var actorTracks: [String: Set<Int>] = [:]
        for (frame, f) in scenario.frames.enumerated() {
            let detections = f.detections.map {
                TrackerDetection(
                    classId: $0.classId, score: $0.score,
                    box: Rect(xMin: $0.box[0], yMin: $0.box[1], xMax: $0.box[2], yMax: $0.box[3]))
            }
            let seen = tracker.update(detections, time: f.time)
            for track in seen where track.state == .confirmed {
                // The actor whose detection of the same class this track overlaps most.
                let best = zip(f.detections, detections).filter { $0.1.classId == track.classId }
                    .max { track.box.iou($0.1.box) < track.box.iou($1.1.box) }
                if let best { actorTracks[best.0.actor, default: []].insert(track.id) }
            }
            ended += tracker.ended.map { Scenario.Ended(frame: frame, track: $0.id, state: $0.state.rawValue) }
            events += scene.update(tracks: seen, ended: tracker.ended, time: f.time).map {
                Self.event($0, frame: frame)
            }
        }
        let expected = scenario.expected
        #expect(actorTracks == expected.actorTracks.filter { !$0.value.isEmpty }.mapValues(Set.init))
        #expect(ended == expected.ended)
        #expect(tracker.tracks.map(\.id) == expected.liveAtEnd)
        #expect(events.count == expected.events.count, "\(events)")
        for (got, want) in zip(events, expected.events) {
            var gotWithoutSeconds = got
            gotWithoutSeconds.seconds = want.seconds
            #expect(gotWithoutSeconds == want)
            #expect(abs((got.seconds ?? 0) - (want.seconds ?? 0)) < 0.01, "\(got) vs \(want)")
        }
        for (name, count) in expected.counts {
            #expect(scene.counts[name]?.in == count.in && scene.counts[name]?.out == count.out, "\(name)")
        }
    }
}
