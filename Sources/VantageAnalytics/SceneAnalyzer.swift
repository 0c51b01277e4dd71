// VantageAnalytics: multi-object tracking (`ByteTracker`), polygon zones and counting lines (`SceneAnalyzer`) on
// detections, in plain Swift whose only dependency is VantageCore (the geometry, `Zone`, `CountingLine` and
// `TrackerConfiguration`, which the outputs document holds). Coordinates are fractions of the frame (0 = left/top
// edge, 1 = right/bottom; y grows downwards), so one configuration fits every resolution; times are seconds on any
// monotonic clock, so uneven frame rates are fine. The Python SDK has the same tracker and rules
// (`panoramasdk.tracking`); Tests/GroundTruth/tracker-scenario.json keeps the two in step.

import VantageCore

/// Something that happened in a zone or on a line.
public enum SceneEvent: Sendable, Equatable {
    /// A confirmed track's anchor came into the zone (also when it is first confirmed inside).
    case zoneEnter(zone: String, track: Track)
    /// The track's anchor left the zone, or the track ended while inside; `dwellSeconds` is how long it was inside.
    case zoneLeave(zone: String, track: Track, dwellSeconds: Double)
    /// The track has been inside for the zone's `dwellSeconds` (once per visit); `seconds` is how long so far.
    case zoneDwell(zone: String, track: Track, seconds: Double)
    /// The number of confirmed tracks inside changed to `count`.
    case zoneOccupancy(zone: String, count: Int)
    /// A confirmed track crossed the line; `countIn`/`countOut` are the line's totals including this crossing.
    case lineCross(line: String, track: Track, direction: CountingLine.Direction, countIn: Int, countOut: Int)
}

/// Turns a tracker's output into zone and line events, frame by frame.
///
/// Rules:
/// - Only confirmed tracks count. A crossing made while a track is still tentative counts when it is confirmed
///   (so a person confirmed just after the line is not missed), never if the track is dropped.
/// - Lines: a crossing counts when the anchor's path between two sightings of the track passes through the line
///   *segment* (going round its end does not count) and the anchor then settles at least `hysteresis` past the line
///   on the other side. Each track counts at most once per direction per line: someone who goes out and comes back
///   counts one out and one in; someone pacing on the line counts at most one of each.
/// - Zones: enter, leave (also when the track ends inside, with the time it was last seen), dwell once per visit,
///   and occupancy events only when a zone's count changes. A lost track stays inside until it is seen outside or
///   ends.
/// - Events come in this order: leaves of ended tracks, then for each seen track its line crossings and zone
///   events, then occupancy changes in zone order.
///
/// Allocation-free once warm, apart from the answer when the caller keeps it past the next update.
public struct SceneAnalyzer: Sendable {
    public let zones: [Zone]
    public let lines: [CountingLine]
    /// A track never reported ended and not seen for this long is forgotten (and leaves its zones), so state cannot
    /// pile up if a caller drops `ended`.
    public static let forgetAfterSeconds = 60.0

    private var slots: [Slot] = []
    private var freeSlots: [Int] = []
    private var slotOfTrack: [Int: Int] = [:]
    private var countIn: [Int]
    private var countOut: [Int]
    private var inside: [Int]
    private var events: [SceneEvent] = []

    public init(zones: [Zone] = [], lines: [CountingLine] = []) {
        self.zones = zones
        self.lines = lines
        countIn = Array(repeating: 0, count: lines.count)
        countOut = Array(repeating: 0, count: lines.count)
        inside = Array(repeating: 0, count: zones.count)
    }

    /// Crossings so far per line name.
    public var counts: [String: (in: Int, out: Int)] {
        var result: [String: (in: Int, out: Int)] = [:]
        for (k, line) in lines.enumerated() { result[line.name] = (countIn[k], countOut[k]) }
        return result
    }

    /// Confirmed tracks inside each zone now, per zone name.
    public var occupancy: [String: Int] {
        var result: [String: Int] = [:]
        for (k, zone) in zones.enumerated() { result[zone.name] = inside[k] }
        return result
    }

    /// Throws on the first zone or line that cannot work, or a name used twice.
    public func validate() throws(SceneConfigurationError) {
        for zone in zones { try zone.validate() }
        for line in lines { try line.validate() }
        var names = Set<String>()
        for name in zones.map(\.name) + lines.map(\.name) where !names.insert(name).inserted {
            throw SceneConfigurationError("the name \(name) is used by two zones or lines: give each its own name")
        }
    }

    /// Feeds one frame: the tracks seen in it (``ByteTracker/update(_:time:)``'s answer), the tracks that ended
    /// (``ByteTracker/ended``) and the frame's time. Answers this frame's events.
    ///
    /// The answer shares storage with the analyzer until the next update: keeping it past then costs a copy.
    public mutating func update(tracks: [Track], ended: [Track], time: Double) -> [SceneEvent] {
        events.removeAll(keepingCapacity: true)
        for track in ended {
            guard let s = slotOfTrack.removeValue(forKey: track.id) else { continue }
            leaveAll(s, track: track, at: track.lastSeen)
            freeSlots.append(s)
        }
        for s in slots.indices where slots[s].active && time - slots[s].lastSeen > Self.forgetAfterSeconds {
            slotOfTrack[slots[s].track.id] = nil
            leaveAll(s, track: slots[s].track, at: slots[s].lastSeen)
            freeSlots.append(s)
        }
        for track in tracks {
            let s = slot(for: track)
            slots[s].lastSeen = time
            slots[s].track = track
            cross(s, track)
            visit(s, track, time)
            slots[s].bottomCenter = track.box.bottomCenter
            slots[s].center = track.box.center
            slots[s].hasAnchor = true
        }
        for k in zones.indices {
            var n = 0
            for s in slots.indices where slots[s].active && slots[s].zones[k].inside { n += 1 }
            if n != inside[k] {
                inside[k] = n
                events.append(.zoneOccupancy(zone: zones[k].name, count: n))
            }
        }
        return events
    }

    private mutating func slot(for track: Track) -> Int {
        if let s = slotOfTrack[track.id] { return s }
        let s: Int
        if let free = freeSlots.popLast() {
            s = free
            slots[s].reset(track)
        } else {
            s = slots.count
            slots.append(Slot(track: track, lines: lines.count, zones: zones.count))
        }
        slotOfTrack[track.id] = s
        return s
    }

    private mutating func cross(_ s: Int, _ track: Track) {
        for k in lines.indices where lines[k].applies(to: track.classId) {
            let line = lines[k]
            let p = track.box.point(line.anchor)
            var state = slots[s].lines[k]
            if slots[s].hasAnchor {
                let q = line.anchor == .center ? slots[s].center : slots[s].bottomCenter
                if Geometry.segmentsIntersect(q, p, line.from, line.to) { state.crossed = true }
            }
            let d = line.side(of: p)
            if abs(d) >= line.hysteresis {
                let side: Int8 = d > 0 ? 1 : -1
                if state.side != 0 && side != state.side && state.crossed {
                    if side > 0 { state.pendingIn = true } else { state.pendingOut = true }
                }
                state.side = side
                state.crossed = false
            }
            if track.state == .confirmed {
                if state.pendingIn && !state.countedIn {
                    state.countedIn = true
                    countIn[k] += 1
                    events.append(
                        .lineCross(
                            line: line.name, track: track, direction: .in, countIn: countIn[k], countOut: countOut[k]))
                }
                if state.pendingOut && !state.countedOut {
                    state.countedOut = true
                    countOut[k] += 1
                    events.append(
                        .lineCross(
                            line: line.name, track: track, direction: .out, countIn: countIn[k], countOut: countOut[k]))
                }
                state.pendingIn = false
                state.pendingOut = false
            }
            slots[s].lines[k] = state
        }
    }

    private mutating func visit(_ s: Int, _ track: Track, _ time: Double) {
        guard track.state == .confirmed else { return }
        for k in zones.indices where zones[k].applies(to: track.classId) {
            let zone = zones[k]
            let isInside = zone.contains(track.box.point(zone.anchor))
            var state = slots[s].zones[k]
            if isInside && !state.inside {
                state = ZoneState(inside: true, enteredAt: time, dwelled: false)
                events.append(.zoneEnter(zone: zone.name, track: track))
            } else if isInside {
                let stay = time - state.enteredAt
                if let dwell = zone.dwellSeconds, !state.dwelled, stay >= dwell {
                    state.dwelled = true
                    events.append(.zoneDwell(zone: zone.name, track: track, seconds: stay))
                }
            } else if state.inside {
                state.inside = false
                events.append(.zoneLeave(zone: zone.name, track: track, dwellSeconds: time - state.enteredAt))
            }
            slots[s].zones[k] = state
        }
    }

    private mutating func leaveAll(_ s: Int, track: Track, at time: Double) {
        for k in zones.indices where slots[s].zones[k].inside {
            slots[s].zones[k].inside = false
            let stay = max(0, time - slots[s].zones[k].enteredAt)
            events.append(.zoneLeave(zone: zones[k].name, track: track, dwellSeconds: stay))
        }
        slots[s].active = false
    }
}

private struct LineState {
    /// The side the anchor last settled on: -1 left, 1 right, 0 not yet.
    var side: Int8 = 0
    /// The anchor's path went through the segment since it last settled.
    var crossed = false
    var pendingIn = false
    var pendingOut = false
    var countedIn = false
    var countedOut = false
}

private struct ZoneState {
    var inside = false
    var enteredAt = 0.0
    var dwelled = false
}

/// What the analyzer remembers about one track; reused for the next track when this one ends.
private struct Slot {
    var active = true
    var track: Track
    var lastSeen = 0.0
    var hasAnchor = false
    var bottomCenter = Point(x: 0, y: 0)
    var center = Point(x: 0, y: 0)
    var lines: [LineState]
    var zones: [ZoneState]

    init(track: Track, lines: Int, zones: Int) {
        self.track = track
        self.lines = Array(repeating: LineState(), count: lines)
        self.zones = Array(repeating: ZoneState(), count: zones)
    }

    mutating func reset(_ track: Track) {
        active = true
        self.track = track
        lastSeen = 0
        hasAnchor = false
        for k in lines.indices { lines[k] = LineState() }
        for k in zones.indices { zones[k] = ZoneState() }
    }
}
