import Testing
import VantageAnalytics
import VantageCore

/// The tracker on constructed detections: people walking at 0.2 of the frame per second, 10 frames per second
/// unless a test says otherwise.
@Suite("ByteTracker")
struct TrackerTests {
    /// The confirmed track IDs each actor's detections were matched to (a track matches the detection it overlaps
    /// most, of its class).
    static func ids(
        of actors: [String: TrackerDetection], in tracks: [Track], into result: inout [String: Set<Int>]
    ) {
        for track in tracks where track.state == .confirmed {
            let best = actors.max { a, b in
                (a.value.classId == track.classId ? track.box.iou(a.value.box) : -1)
                    < (b.value.classId == track.classId ? track.box.iou(b.value.box) : -1)
            }
            if let best, best.value.classId == track.classId { result[best.key, default: []].insert(track.id) }
        }
    }

    @Test("A person keeps their ID while hidden for half a second, and is reported lost meanwhile")
    func stableThroughOcclusion() throws {
        var tracker = ByteTracker()
        var idsSeen = Set<Int>()
        for frame in 0...40 {
            let time = Double(frame) / 10
            let hidden = (15...19).contains(frame)
            let seen = tracker.update(hidden ? [] : [person(x: 0.1 + 0.02 * Double(frame), feet: 0.6)], time: time)
            if hidden {
                #expect(seen.isEmpty)
                #expect(tracker.tracks.map(\.state) == [.lost], "frame \(frame)")
            } else if frame >= 2 {
                #expect(seen.map(\.state) == [.confirmed], "frame \(frame)")
            }
            idsSeen.formUnion(seen.map(\.id))
        }
        #expect(idsSeen == [1])
        // The box kept moving while hidden: after the gap it is where the person is.
        let box = try #require(tracker.tracks.first?.box)
        #expect(abs(box.center.x - 0.9) < 0.01)
    }

    @Test("Two people crossing paths keep their IDs, also when the one behind is hidden where they meet")
    func crossingPathsKeepIDs() {
        for hideTheOneBehind in [false, true] {
            var tracker = ByteTracker()
            var ids: [String: Set<Int>] = [:]
            for frame in 0...30 {
                let a = 0.2 + 0.02 * Double(frame)
                let b = 0.8 - 0.02 * Double(frame)
                var actors = ["a": person(x: a, feet: 0.6), "b": person(x: b, feet: 0.63)]
                if hideTheOneBehind && abs(a - b) < 0.05 { actors["a"] = nil }
                let seen = tracker.update(
                    Array(actors.values).sorted { $0.box.xMin < $1.box.xMin }, time: Double(frame) / 10)
                Self.ids(of: actors, in: seen, into: &ids)
            }
            #expect(ids == ["a": [1], "b": [2]], "hidden where they meet: \(hideTheOneBehind)")
        }
    }

    @Test("A track unseen for longer than maxLostSeconds ends, in seconds whatever the frame rate")
    func staleTracksEndAfterMaxLostSeconds() {
        for fps in [5.0, 10, 30] {
            var tracker = ByteTracker(TrackerConfiguration(maxLostSeconds: 1.5))
            var endedAt: Double?
            var endedTrack: Track?
            var frame = 0
            while endedAt == nil && frame < Int(10 * fps) {
                let time = Double(frame) / fps
                _ = tracker.update(time < 1 ? [person(x: 0.3 + 0.2 * time, feet: 0.6)] : [], time: time)
                if let ended = tracker.ended.first {
                    endedAt = time
                    endedTrack = ended
                }
                frame += 1
            }
            let lastSeen = endedTrack?.lastSeen ?? -1
            let gap = (endedAt ?? 99) - lastSeen
            #expect(
                gap > 1.5 && gap <= 1.5 + 1 / fps + 1e-9,
                "at \(fps) frames/s the track ended \(gap) s after it was last seen")
            #expect(endedTrack?.state == .lost)
            #expect(tracker.tracks.isEmpty, "the stale track is gone at \(fps) frames/s")
            // A newcomer gets a new ID; ended IDs are never reused.
            let next = tracker.update([person(x: 0.3, feet: 0.6)], time: (endedAt ?? 0) + 0.1)
            #expect(next.map(\.id) == [2])
        }
    }

    @Test("A track starts only from a confident detection, is confirmed after confirmFrames, and a flicker is dropped")
    func confirmationAndFlicker() {
        var tracker = ByteTracker()  // newTrackScore 0.6, confirmFrames 3
        #expect(tracker.update([person(x: 0.5, feet: 0.6, score: 0.55)], time: 0).isEmpty, "0.55 starts nothing")
        #expect(tracker.tracks.isEmpty)

        var states: [Track.State] = []
        for frame in 1...4 {
            let seen = tracker.update([person(x: 0.5 + 0.02 * Double(frame), feet: 0.6)], time: Double(frame) / 10)
            states += seen.map(\.state)
        }
        #expect(states == [.tentative, .tentative, .confirmed, .confirmed])

        // A one-frame false detection elsewhere: tentative, then dropped at its first miss, and reported ended.
        _ = tracker.update([person(x: 0.6, feet: 0.6), person(x: 0.1, feet: 0.3)], time: 0.5)
        #expect(tracker.tracks.count == 2)
        _ = tracker.update([person(x: 0.62, feet: 0.6)], time: 0.6)
        #expect(tracker.ended.map(\.id) == [2])
        #expect(tracker.ended.map(\.state) == [.tentative])
        #expect(tracker.tracks.map(\.id) == [1])
    }

    @Test("Faint detections keep a track going through a partial occlusion but never start one")
    func lowScoreDetectionsExtendTracks() {
        var tracker = ByteTracker()
        for frame in 0..<5 {
            _ = tracker.update([person(x: 0.2 + 0.02 * Double(frame), feet: 0.6)], time: Double(frame) / 10)
        }
        for frame in 5..<15 {
            let seen = tracker.update(
                [person(x: 0.2 + 0.02 * Double(frame), feet: 0.6, score: 0.2)], time: Double(frame) / 10)
            #expect(seen.map(\.id) == [1] && seen.map(\.state) == [.confirmed], "frame \(frame)")
        }
        // 0.4 alone, far from any track: below highScore, so it starts nothing.
        #expect(tracker.update([person(x: 0.9, feet: 0.3, score: 0.4)], time: 1.5).isEmpty)
        #expect(tracker.tracks.map(\.id) == [1])
    }

    @Test("A person never matches a car, even in the same place")
    func classesNeverMix() {
        // A person stands still, then a car's box appears exactly where the person was: it starts its own track.
        var tracker = ByteTracker()
        var ids: [String: Set<Int>] = [:]
        for frame in 0..<20 {
            let actors =
                frame < 10 ? ["person": person(x: 0.5, feet: 0.6)] : ["car": person(x: 0.5, feet: 0.6, classId: 3)]
            let seen = tracker.update(Array(actors.values), time: Double(frame) / 10)
            Self.ids(of: actors, in: seen, into: &ids)
            for track in seen { #expect(track.classId == (track.id == 1 ? 1 : 3)) }
        }
        #expect(ids == ["person": [1], "car": [2]])
        #expect(tracker.tracks.first { $0.id == 1 }?.state == .lost, "the car's boxes did not keep the person's track")
    }

    @Test("A second box the detector puts on a tracked person starts no track")
    func duplicateBoxStartsNoTrack() {
        var tracker = ByteTracker()
        for frame in 0..<10 {
            let x = 0.3 + 0.02 * Double(frame)
            var detections = [person(x: x, feet: 0.6, score: 0.9)]
            if frame >= 4 { detections.append(person(x: x + 0.012, feet: 0.61, score: 0.8)) }
            _ = tracker.update(detections, time: Double(frame) / 10)
        }
        #expect(tracker.tracks.map(\.id) == [1])
    }
}
