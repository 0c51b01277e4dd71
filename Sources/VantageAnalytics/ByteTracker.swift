import VantageCore

/// One detection handed to the tracker.
public struct TrackerDetection: Sendable, Equatable {
    /// The model's class id; tracks never change class, and a detection only matches tracks of its class.
    public var classId: Int
    /// The detector's confidence, 0–1.
    public var score: Double
    public var box: Rect

    public init(classId: Int, score: Double, box: Rect) {
        self.classId = classId
        self.score = score
        self.box = box
    }
}

/// A tracked object as the tracker reports it.
public struct Track: Sendable, Equatable {
    /// Where a track is in its life.
    public enum State: String, Sendable, Codable, Equatable {
        /// New and not yet seen `confirmFrames` times in a row: may be a false detection; counts nowhere.
        case tentative
        /// Seen this frame (or in the frames before) and trusted.
        case confirmed
        /// Confirmed, but not seen this frame; its box is where the motion model predicts it.
        case lost
    }

    /// Stable for the object's life, increasing from 1 in the order tracks start.
    public var id: Int
    public var classId: Int
    /// The filtered box (the motion model's estimate corrected by this frame's detection).
    public var box: Rect
    /// The score of the last detection matched.
    public var score: Double
    public var state: State
    /// When the track started and was last matched to a detection (seconds, as given to `update`).
    public var firstSeen: Double
    public var lastSeen: Double
    /// Frames in which the track was matched.
    public var hits: Int

    public init(
        id: Int, classId: Int, box: Rect, score: Double, state: State, firstSeen: Double, lastSeen: Double, hits: Int
    ) {
        self.id = id
        self.classId = classId
        self.box = box
        self.score = score
        self.state = state
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.hits = hits
    }
}

/// A ByteTrack-style multi-object tracker: give it each frame's detections, it answers the tracks, with IDs that stay
/// with the same object from frame to frame.
///
/// - Motion: each track's box is predicted by a constant-velocity Kalman filter, one per box coordinate (centre x,
///   centre y, width, height), time-aware (the prediction spans the seconds since the last frame). Its noise scales
///   with the box's height, so people far away and close by are treated alike.
/// - Association, per frame: high-score detections (≥ `highScore`) are matched to all tracks first, then low-score
///   ones (≥ `lowScore`) to the tracks still unmatched, each greedily by IoU of predicted box and detection (the best
///   pair first; ties go to the older track and the earlier detection) above `matchIoU`. A detection only matches a
///   track of its class: a person never matches a car.
/// - Lifecycle: an unmatched high-score detection (≥ `newTrackScore`) starts a tentative track, unless it overlaps a
///   box matched this frame by `matchIoU` (detectors sometimes give one person two boxes). A tentative track is
///   confirmed after `confirmFrames` consecutive hits and dropped at its first miss. An unmatched confirmed track is
///   lost (its box keeps moving with its velocity) and ends `maxLostSeconds` after it was last seen.
///
/// Allocation-free once warm: the tracker's storage is reused from frame to frame.
public struct ByteTracker: Sendable {
    public let configuration: TrackerConfiguration

    private var entries: [Entry] = []
    private var nextID = 1
    private var lastTime: Double?
    private var seen: [Track] = []
    private var endedTracks: [Track] = []
    // Scratch, reused every frame.
    private var predicted: [Rect] = []
    private var detectionOf: [Int] = []
    private var used: [Bool] = []
    private var pairs: [Pair] = []
    private var claimed: [Rect] = []
    private var claimedClass: [Int] = []

    public init(_ configuration: TrackerConfiguration = .init()) {
        self.configuration = configuration
    }

    /// All live tracks: tentative, confirmed and lost (lost ones at their predicted box), oldest first.
    public var tracks: [Track] { entries.map(\.track) }

    /// The tracks removed by the last update: dropped tentative ones (state `.tentative`) and lost ones gone longer
    /// than `maxLostSeconds` (state `.lost`, `lastSeen` when they were last seen). Hand them to
    /// ``SceneAnalyzer/update(tracks:ended:time:)`` so zones see them leave.
    public var ended: [Track] { endedTracks }

    /// Where the confirmed and lost tracks are at `time` (after the last update), as the motion model predicts:
    /// for frames the detector skips (a detection rate below the camera's). Changes nothing in the tracker; writes
    /// into `result` (emptied first), so a caller reusing it allocates nothing.
    public func predict(at time: Double, into result: inout [Track]) {
        result.removeAll(keepingCapacity: true)
        let dt = lastTime.map { max(0, time - $0) } ?? 0
        for entry in entries where entry.state != .tentative {
            var moved = entry
            moved.predict(dt)
            result.append(moved.track)
        }
    }

    /// Whether any track is alive (tentative, confirmed or lost): the detector must keep looking.
    public var hasTracks: Bool { !entries.isEmpty }

    /// One frame's detections at `time` (seconds, any monotonic origin). Answers the tracks seen in this frame,
    /// tentative and confirmed, oldest first.
    ///
    /// The answer shares storage with the tracker until the next update: keeping it past then costs a copy.
    public mutating func update(_ detections: [TrackerDetection], time: Double) -> [Track] {
        let config = configuration
        let dt = lastTime.map { max(0, time - $0) } ?? 0
        lastTime = time
        endedTracks.removeAll(keepingCapacity: true)
        seen.removeAll(keepingCapacity: true)

        predicted.removeAll(keepingCapacity: true)
        detectionOf.removeAll(keepingCapacity: true)
        for i in entries.indices {
            entries[i].predict(dt)
            predicted.append(entries[i].box)
            detectionOf.append(-1)
        }
        used.removeAll(keepingCapacity: true)
        for _ in detections { used.append(false) }

        // 1. High-score detections against every track.
        associate(detections, minScore: config.highScore, maxScore: .infinity)
        // 2. Low-score detections against the tracks still unmatched (lost ones too: a person the detector missed
        //    for a frame is still the best owner of a faint box where they walk).
        associate(detections, minScore: config.lowScore, maxScore: config.highScore)

        claimed.removeAll(keepingCapacity: true)
        claimedClass.removeAll(keepingCapacity: true)
        var kept = 0
        for i in entries.indices {
            var entry = entries[i]
            let j = detectionOf[i]
            if j >= 0 {
                let detection = detections[j]
                entry.correct(detection.box)
                entry.score = detection.score
                entry.lastSeen = time
                entry.hits += 1
                if entry.state == .lost || (entry.state == .tentative && entry.hits >= config.confirmFrames) {
                    entry.state = .confirmed
                }
                claimed.append(detection.box)
                claimedClass.append(detection.classId)
            } else if entry.state == .tentative {
                endedTracks.append(entry.track)
                continue
            } else {
                entry.state = .lost
                if time - entry.lastSeen > config.maxLostSeconds {
                    endedTracks.append(entry.track)
                    continue
                }
            }
            entries[kept] = entry
            if j >= 0 { seen.append(entry.track) }
            kept += 1
        }
        entries.removeLast(entries.count - kept)

        // 3. New tracks from confident detections nobody claimed, unless the detection is a second box on an object
        //    matched in this frame.
        for j in detections.indices where !used[j] {
            let detection = detections[j]
            guard detection.score >= config.highScore, detection.score >= config.newTrackScore else { continue }
            if claimed.indices.contains(where: {
                claimedClass[$0] == detection.classId && claimed[$0].iou(detection.box) >= config.matchIoU
            }) {
                continue
            }
            var entry = Entry(id: nextID, detection: detection, time: time)
            nextID += 1
            claimed.append(detection.box)
            claimedClass.append(detection.classId)
            if config.confirmFrames <= 1 { entry.state = .confirmed }
            entries.append(entry)
            seen.append(entry.track)
        }
        return seen
    }

    /// Greedy IoU matching of the unused detections scoring in [minScore, maxScore) to the unmatched tracks.
    private mutating func associate(
        _ detections: [TrackerDetection], minScore: Double, maxScore: Double
    ) {
        let threshold = configuration.matchIoU
        pairs.removeAll(keepingCapacity: true)
        for i in entries.indices where detectionOf[i] < 0 {
            for j in detections.indices where !used[j] {
                let detection = detections[j]
                guard detection.score >= minScore, detection.score < maxScore,
                    detection.classId == entries[i].classId
                else { continue }
                let iou = predicted[i].iou(detection.box)
                if iou >= threshold { pairs.append(Pair(iou: iou, track: i, detection: j)) }
            }
        }
        Pair.sortBestFirst(&pairs)
        for pair in pairs where detectionOf[pair.track] < 0 && !used[pair.detection] {
            detectionOf[pair.track] = pair.detection
            used[pair.detection] = true
        }
    }
}

/// A candidate match.
private struct Pair {
    var iou: Double
    var track: Int
    var detection: Int

    /// Best IoU first; ties by track, then detection. Insertion sort, in place: the lists are short (only
    /// overlapping boxes make pairs) and the standard sort may allocate.
    static func sortBestFirst(_ pairs: inout [Pair]) {
        guard pairs.count > 1 else { return }
        for i in 1..<pairs.count {
            let p = pairs[i]
            var k = i
            while k > 0 && p.precedes(pairs[k - 1]) {
                pairs[k] = pairs[k - 1]
                k -= 1
            }
            pairs[k] = p
        }
    }

    func precedes(_ other: Pair) -> Bool {
        if iou != other.iou { return iou > other.iou }
        if track != other.track { return track < other.track }
        return detection < other.detection
    }
}

// Kalman filter noise, relative to the box's height. Shared with python/panoramasdk/tracking.py: change both.
private let measurementNoise = 0.05  // detector's box jitter, × height
private let initialVelocityNoise = 1.0  // × height per second
private let accelerationNoise = 0.5  // × height per second²: people walk at a steady pace
private let minSize = 1e-4

/// A constant-velocity Kalman filter on one box coordinate: position, velocity and their covariance.
private struct Axis {
    var p: Double
    var v = 0.0
    var p00: Double
    var p01 = 0.0
    var p11: Double

    init(_ z: Double, scale: Double) {
        p = z
        let r = 2 * measurementNoise * scale
        let q = initialVelocityNoise * scale
        p00 = r * r
        p11 = q * q
    }

    mutating func predict(_ dt: Double, scale: Double) {
        guard dt > 0 else { return }
        p += v * dt
        let a = accelerationNoise * scale
        let q = a * a
        let n00 = p00 + dt * (2 * p01 + dt * p11) + q * dt * dt * dt / 3
        let n01 = p01 + dt * p11 + q * dt * dt / 2
        p11 = p11 + q * dt
        p00 = n00
        p01 = n01
    }

    mutating func correct(_ z: Double, scale: Double) {
        let r = measurementNoise * scale
        let s = p00 + r * r
        let k0 = p00 / s
        let k1 = p01 / s
        let y = z - p
        p += k0 * y
        v += k1 * y
        let o00 = p00
        let o01 = p01
        let o11 = p11
        p00 = (1 - k0) * o00
        p01 = (1 - k0) * o01
        p11 = o11 - k1 * o01
    }
}

/// A track with its motion model.
private struct Entry {
    var id: Int
    var classId: Int
    var score: Double
    var state: Track.State = .tentative
    var firstSeen: Double
    var lastSeen: Double
    var hits = 1
    var cx, cy, w, h: Axis

    init(id: Int, detection: TrackerDetection, time: Double) {
        self.id = id
        classId = detection.classId
        score = detection.score
        firstSeen = time
        lastSeen = time
        let b = detection.box
        let scale = max(b.height, minSize)
        cx = Axis((b.xMin + b.xMax) / 2, scale: scale)
        cy = Axis((b.yMin + b.yMax) / 2, scale: scale)
        w = Axis(b.width, scale: scale)
        h = Axis(b.height, scale: scale)
    }

    var box: Rect {
        let width = max(w.p, minSize)
        let height = max(h.p, minSize)
        return Rect(xMin: cx.p - width / 2, yMin: cy.p - height / 2, xMax: cx.p + width / 2, yMax: cy.p + height / 2)
    }

    var track: Track {
        Track(
            id: id, classId: classId, box: box, score: score, state: state, firstSeen: firstSeen, lastSeen: lastSeen,
            hits: hits)
    }

    mutating func predict(_ dt: Double) {
        let scale = max(h.p, minSize)
        if state == .lost {  // an unseen box keeps moving but stops growing or shrinking
            w.v = 0
            h.v = 0
        }
        cx.predict(dt, scale: scale)
        cy.predict(dt, scale: scale)
        w.predict(dt, scale: scale)
        h.predict(dt, scale: scale)
    }

    mutating func correct(_ b: Rect) {
        let scale = max(b.height, minSize)
        cx.correct((b.xMin + b.xMax) / 2, scale: scale)
        cy.correct((b.yMin + b.yMax) / 2, scale: scale)
        w.correct(b.width, scale: scale)
        h.correct(b.height, scale: scale)
    }
}
