import Foundation
import VantageAnalytics
import VantageCore

/// The repository root, from this file's path (`Tests/VantageAnalyticsTests/Support.swift`).
let repositoryRoot = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A person-sized box (0.06 × 0.2 of the frame) standing with its feet at (x, y).
func personBox(x: Double, feet y: Double, width: Double = 0.06, height: Double = 0.2) -> Rect {
    Rect(xMin: x - width / 2, yMin: y - height, xMax: x + width / 2, yMax: y)
}

/// A detection of a person (class 1) with its feet at (x, y).
func person(x: Double, feet y: Double, score: Double = 0.9, classId: Int = 1) -> TrackerDetection {
    TrackerDetection(classId: classId, score: score, box: personBox(x: x, feet: y))
}

/// A track as the tracker would report it, with its feet at (x, y).
func track(_ id: Int, x: Double, feet y: Double, state: Track.State = .confirmed, classId: Int = 1, time: Double = 0)
    -> Track
{
    Track(
        id: id, classId: classId, box: personBox(x: x, feet: y), score: 0.9, state: state, firstSeen: 0,
        lastSeen: time, hits: state == .tentative ? 1 : 10)
}

extension SceneEvent {
    /// The line crossing's direction and track ID, or nil for other events.
    var crossing: (line: String, track: Int, direction: CountingLine.Direction)? {
        if case .lineCross(let line, let track, let direction, _, _) = self { return (line, track.id, direction) }
        return nil
    }
}
