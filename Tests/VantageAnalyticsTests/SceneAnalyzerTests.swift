import Foundation
import Testing
import VantageAnalytics
import VantageCore

/// Zones and counting lines on constructed tracks (10 frames per second).
@Suite("Zones and counting lines")
struct SceneAnalyzerTests {
    /// A vertical door drawn from the bottom of the picture to the top: walking left to right is "in".
    static let door = CountingLine(name: "door", from: Point(x: 0.5, y: 0.9), to: Point(x: 0.5, y: 0.1))

    /// Feeds one track along the feet positions `xs` (at feet height `y`), one per frame from `start`; answers every
    /// event.
    static func walk(
        _ scene: inout SceneAnalyzer, id: Int = 1, xs: [Double], feet y: Double = 0.6, state: Track.State = .confirmed,
        classId: Int = 1, start: Int = 0
    ) -> [SceneEvent] {
        var events: [SceneEvent] = []
        for (i, x) in xs.enumerated() {
            let time = Double(start + i) / 10
            let t = track(id, x: x, feet: y, state: state, classId: classId, time: time)
            events += scene.update(tracks: [t], ended: [], time: time)
        }
        return events
    }

    static func steps(from a: Double, to b: Double, by step: Double) -> [Double] {
        Array(stride(from: a, through: b, by: a < b ? step : -step))
    }

    @Test("Walking left to right across a line drawn upwards is in; the other way is out; the totals follow")
    func direction() {
        var scene = SceneAnalyzer(lines: [Self.door])
        let right = Self.walk(&scene, id: 1, xs: Self.steps(from: 0.3, to: 0.7, by: 0.02))
        let left = Self.walk(&scene, id: 2, xs: Self.steps(from: 0.7, to: 0.3, by: 0.02), start: 30)
        #expect(right.compactMap(\.crossing?.direction) == [.in])
        #expect(left.compactMap(\.crossing?.direction) == [.out])
        guard case .lineCross(_, _, _, let countIn, let countOut) = left.first else {
            Issue.record("no crossing: \(left)")
            return
        }
        #expect(countIn == 1 && countOut == 1)
        #expect(scene.counts["door"]?.in == 1 && scene.counts["door"]?.out == 1)

        // The same walk across the line drawn the other way round (top to bottom) is out.
        var reversed = SceneAnalyzer(lines: [CountingLine(name: "door", from: Self.door.to, to: Self.door.from)])
        #expect(
            Self.walk(&reversed, xs: Self.steps(from: 0.3, to: 0.7, by: 0.02)).compactMap(\.crossing?.direction) == [
                .out
            ])
        // A line drawn left to right: walking down the picture (towards the camera) is in.
        var across = SceneAnalyzer(
            lines: [CountingLine(name: "kerb", from: Point(x: 0.1, y: 0.5), to: Point(x: 0.9, y: 0.5))])
        var events: [SceneEvent] = []
        for (i, y) in Self.steps(from: 0.3, to: 0.7, by: 0.02).enumerated() {
            events += across.update(tracks: [track(1, x: 0.5, feet: y)], ended: [], time: Double(i) / 10)
        }
        #expect(events.compactMap(\.crossing?.direction) == [.in])
    }

    @Test("A track whose feet wobble on the line counts once, for the crossing it really made")
    func wobbleCountsOnce() {
        var scene = SceneAnalyzer(lines: [Self.door])  // hysteresis 0.01
        // Walks in, then stands on the line with the feet jittering ±0.008 across it for 5 seconds.
        var xs = Self.steps(from: 0.3, to: 0.52, by: 0.02)
        for i in 0..<50 { xs.append(i % 2 == 0 ? 0.492 : 0.508) }
        xs += Self.steps(from: 0.52, to: 0.7, by: 0.02)
        let events = Self.walk(&scene, xs: xs)
        #expect(events.compactMap(\.crossing?.direction) == [.in])
        #expect(scene.counts["door"]?.in == 1 && scene.counts["door"]?.out == 0)
    }

    @Test("Pacing back and forth across the line counts at most one in and one out per track")
    func pacingCountsOncePerDirection() {
        var scene = SceneAnalyzer(lines: [Self.door])
        var xs: [Double] = []
        for _ in 0..<4 { xs += Self.steps(from: 0.4, to: 0.6, by: 0.02) + Self.steps(from: 0.6, to: 0.4, by: 0.02) }
        let events = Self.walk(&scene, xs: xs)
        #expect(events.compactMap(\.crossing?.direction) == [.in, .out])
    }

    @Test("A tentative track never counts; a crossing made while tentative counts once the track is confirmed")
    func onlyConfirmedTracksCount() {
        var scene = SceneAnalyzer(lines: [Self.door])
        // Track 1 crosses while tentative and is dropped (ended) without ever being confirmed.
        var events = Self.walk(&scene, id: 1, xs: [0.46, 0.5, 0.54], state: .tentative)
        events += scene.update(
            tracks: [], ended: [track(1, x: 0.54, feet: 0.6, state: .tentative, time: 0.2)], time: 0.3)
        #expect(events.isEmpty)
        #expect(scene.counts["door"]?.in == 0)

        // Track 2 crosses on its first two frames and is confirmed on the third, past the line.
        events = Self.walk(&scene, id: 2, xs: [0.46, 0.54], state: .tentative, start: 10)
        #expect(events.isEmpty)
        events = Self.walk(&scene, id: 2, xs: [0.58, 0.62], state: .confirmed, start: 12)
        #expect(events.compactMap(\.crossing?.track) == [2])
        #expect(scene.counts["door"]?.in == 1)
    }

    @Test("Passing beyond the end of the line is not a crossing")
    func aroundTheEndDoesNotCount() {
        var scene = SceneAnalyzer(lines: [Self.door])  // from y 0.9 up to y 0.1
        #expect(Self.walk(&scene, xs: Self.steps(from: 0.3, to: 0.7, by: 0.02), feet: 0.95).isEmpty)
        #expect(Self.walk(&scene, id: 2, xs: Self.steps(from: 0.3, to: 0.7, by: 0.02), feet: 0.85).count == 1)
    }

    @Test("Lines and zones count only their classes")
    func classesFilter() {
        var line = Self.door
        line.classes = [1]
        let zone = Zone(
            name: "yard",
            polygon: [Point(x: 0.6, y: 0.3), Point(x: 0.9, y: 0.3), Point(x: 0.9, y: 0.9), Point(x: 0.6, y: 0.9)],
            classes: [1])
        var scene = SceneAnalyzer(zones: [zone], lines: [line])
        let car = Self.walk(&scene, id: 1, xs: Self.steps(from: 0.3, to: 0.8, by: 0.02), classId: 3)
        #expect(car.isEmpty, "\(car)")
        let person = Self.walk(&scene, id: 2, xs: Self.steps(from: 0.3, to: 0.8, by: 0.02), start: 30)
        #expect(person.compactMap(\.crossing?.track) == [2])
        #expect(person.contains(.zoneOccupancy(zone: "yard", count: 1)))
    }

    @Test("The anchor decides which point of the box crosses: the feet by default, or the centre")
    func anchorChoice() {
        // A horizontal line at y 0.5; a person (box 0.2 high) walks down from feet 0.45 to feet 0.6: the feet cross,
        // the centre (0.1 higher) does not.
        let feet = CountingLine(name: "feet", from: Point(x: 0.1, y: 0.5), to: Point(x: 0.9, y: 0.5))
        var centre = feet
        centre.name = "centre"
        centre.anchor = .center
        var scene = SceneAnalyzer(lines: [feet, centre])
        var events: [SceneEvent] = []
        for (i, y) in Self.steps(from: 0.45, to: 0.6, by: 0.01).enumerated() {
            events += scene.update(tracks: [track(1, x: 0.5, feet: y)], ended: [], time: Double(i) / 10)
        }
        #expect(events.compactMap(\.crossing?.line) == ["feet"])
    }

    @Test("Zones: enter, one dwell, leave with the time inside, and occupancy only when the count changes")
    func zoneLifecycle() {
        let zone = Zone(
            name: "queue",
            polygon: [Point(x: 0.4, y: 0.4), Point(x: 0.8, y: 0.4), Point(x: 0.8, y: 0.8), Point(x: 0.4, y: 0.8)],
            dwellSeconds: 1.95)
        var scene = SceneAnalyzer(zones: [zone])
        var log: [(frame: Int, event: SceneEvent)] = []
        for frame in 0..<60 {
            let time = Double(frame) / 10
            var tracks: [Track] = []
            // Track 1 walks in at frame 5 and out at frame 45; track 2 stands inside from frame 10 to 20.
            let x = 0.31 + 0.02 * Double(min(frame, 10)) + 0.02 * Double(max(0, frame - 40))
            tracks.append(track(1, x: x, feet: 0.6, time: time))
            if (10...20).contains(frame) { tracks.append(track(2, x: 0.6, feet: 0.7, time: time)) }
            for event in scene.update(tracks: tracks, ended: [], time: time) { log.append((frame, event)) }
        }
        let summary = log.map { entry -> String in
            switch entry.event {
            case .zoneEnter(_, let t): "\(entry.frame) enter \(t.id)"
            case .zoneLeave(_, let t, let s): "\(entry.frame) leave \(t.id) \(String(format: "%.1f", s))"
            case .zoneDwell(_, let t, let s): "\(entry.frame) dwell \(t.id) \(String(format: "%.1f", s))"
            case .zoneOccupancy(_, let n): "\(entry.frame) occupancy \(n)"
            case .lineCross: "\(entry.frame) cross"
            }
        }
        // Track 1's feet pass x 0.4 at frame 5; it stands at 0.51 from frame 10 to 40, then walks out past 0.8 at
        // frame 55. Track 2 is seen from 10 to 20 and then nothing more is heard of it.
        #expect(
            summary == [
                "5 enter 1", "5 occupancy 1", "10 enter 2", "10 occupancy 2", "25 dwell 1 2.0", "55 leave 1 5.0",
                "55 occupancy 1",
            ])
        #expect(scene.occupancy["queue"] == 1, "track 2 was never seen leaving nor reported ended")

        // Track 2 ends (the tracker gave up on it): it leaves, with the time it was last seen.
        let events = scene.update(tracks: [], ended: [track(2, x: 0.6, feet: 0.7, state: .lost, time: 2.0)], time: 6.0)
        #expect(events.count == 2)
        guard case .zoneLeave(_, let t, let inside) = events.first else {
            Issue.record("no leave: \(events)")
            return
        }
        #expect(t.id == 2 && abs(inside - 1.0) < 1e-9)
        #expect(events.last == .zoneOccupancy(zone: "queue", count: 0))
    }

    @Test("Zones and lines read from JSON with their defaults; ones that cannot work are refused with what to fix")
    func configurationFromJSON() throws {
        let json = """
            {"zones": [{"name": "dock", "polygon": [{"x": 0.1, "y": 0.1}, {"x": 0.5, "y": 0.1}, {"x": 0.3, "y": 0.5}]}],
             "lines": [{"name": "gate", "from": {"x": 0.2, "y": 0.9}, "to": {"x": 0.2, "y": 0.1}, "classes": [1]}]}
            """
        struct Scene: Decodable {
            var zones: [Zone]
            var lines: [CountingLine]
        }
        let scene = try JSONDecoder().decode(Scene.self, from: Data(json.utf8))
        #expect(
            scene.zones[0].anchor == .bottomCenter && scene.zones[0].classes == nil
                && scene.zones[0].dwellSeconds == nil)
        #expect(
            scene.lines[0].anchor == .bottomCenter && scene.lines[0].hysteresis == 0.01 && scene.lines[0].classes == [1]
        )
        try SceneAnalyzer(zones: scene.zones, lines: scene.lines).validate()

        let flat = Zone(name: "flat", polygon: [Point(x: 0, y: 0), Point(x: 1, y: 1)])
        #expect(throws: SceneConfigurationError.self) { try flat.validate() }
        do {
            try SceneAnalyzer(zones: [flat]).validate()
        } catch {
            #expect(error.description.contains("zone flat has 2 points: give at least 3 corners"))
        }
        let dot = CountingLine(name: "dot", from: Point(x: 0.5, y: 0.5), to: Point(x: 0.5, y: 0.5))
        #expect(
            throws: SceneConfigurationError("line dot starts and ends at the same point: give two different points")
        ) {
            try dot.validate()
        }
        #expect(throws: SceneConfigurationError.self) {
            try SceneAnalyzer(zones: scene.zones, lines: [Self.door, Self.door]).validate()
        }
    }
}
