import Foundation
import Logging
import Synchronization
import VantageAnalytics
import VantageCore
import VantageInference
import VantageMedia
import VantageOutputs

/// A built-in analytics node (`outputs.analytics` in the manifest): runs a detector on the frames of one camera,
/// tracks the objects, and raises object, zone and line events without any code. Its annotated view (boxes with
/// track IDs, zones, lines and their counts) is a live-view stream named after the node.
///
/// Every frame is looked at; the detector runs on a frame when it is due (`detectFps`, every frame by default) and,
/// with motion gating (`motion`), only when something moves or a track is in view. On the other frames the tracker
/// predicts where its objects are (for the live view); zones and lines are judged on detected frames only.
final class AnalyticsRunner: @unchecked Sendable {
    // Unchecked: the tracker, the scene and the scratch buffers are touched only by `run()`'s one task; the
    // counters are in a Mutex.
    let node: OutputsConfiguration.AnalyticsNode
    private let camera: CameraStream
    let cameraName: String
    private let models: ModelService
    private let events: EventSink
    private let liveView: LiveView?
    private let application: String
    private let logger: Logger
    private let classes: Set<Int>?
    private let labels: (Int) -> String
    private let snapshotOverlays: Bool
    /// The camera's main stream, for the events' snapshots, when frames come from its sub-stream.
    private let stills: MainStreamStills?
    private var tracker: ByteTracker
    private var scene: SceneAnalyzer
    private var detections: [TrackerDetection] = []
    private var overlays: [Overlay] = []
    /// Predicted tracks on frames the detector skips (reused).
    private var predicted: [Track] = []
    /// When the detector runs (`detectFps`, `motion`).
    private let gate: DetectionGate
    private let stopRequested = Atomic<Bool>(false)
    /// Encodes snapshots and records events off this node's loop.
    private let snapshots: SnapshotWorker
    /// Confirmed tracks with an object event: its ID, the best view so far, and the zones it is in.
    private var objects: [Int: ObjectState] = [:]

    struct ObjectState {
        var eventID = UUID().uuidString.lowercased()
        var bestScore: Double = 0
        /// A best view was handed to the snapshot worker.
        var hasBestView = false
        var lastCapture: Double = -.infinity
        var zones: [String] = []
        var firstSeen: Double
    }

    /// What the node did, for the status line and `/status`.
    struct Counters: Sendable, Equatable {
        /// Frames looked at, and those the detector ran on.
        var frames: UInt64 = 0
        var detections: UInt64 = 0
        /// Frames due for detection that were skipped: no motion and no track in view.
        var stillFrames: UInt64 = 0
        /// Decode to decision (tracked, events raised) of every frame looked at.
        var latency = LatencyHistogram()
        var events: UInt64 = 0
        var activeTracks = 0
        var lineCounts: [String: [String: Int]] = [:]
        var occupancy: [String: Int] = [:]
        var lastError: String?
    }
    let counters = Mutex(Counters())

    /// The counters with the events the snapshot worker recorded and its last failure.
    var status: Counters {
        var c = counters.withLock { $0 }
        let (recorded, failure) = snapshots.results
        c.events = recorded
        if let failure { c.lastError = failure }
        return c
    }

    /// `stills`: the camera's main stream when `camera` is its sub-stream; events' snapshots are decoded from it.
    init(
        node: OutputsConfiguration.AnalyticsNode, camera: CameraStream, cameraName: String, models: ModelService,
        events: EventSink, liveView: LiveView?, application: String, snapshotOverlays: Bool,
        stills: MainStreamStills? = nil, logger: Logger
    ) throws {
        guard let entry = models.entries[node.model] else {
            let known = models.entries.keys.sorted().joined(separator: ", ")
            throw RuntimeError(
                "analytics node \(node.name): there is no model node \"\(node.model)\" (models: \(known.isEmpty ? "none" : known))"
            )
        }
        let model = entry.model
        self.node = node
        self.camera = camera
        self.cameraName = cameraName
        self.models = models
        self.events = events
        self.liveView = liveView
        self.application = application
        self.snapshotOverlays = snapshotOverlays
        self.stills = stills
        self.logger = logger
        let nodeName = node.name
        snapshots = SnapshotWorker(events: events, application: application, stream: cameraName) { error in
            logger.error(
                "an analytics event could not be recorded", metadata: ["node": "\(nodeName)", "error": "\(error)"])
        }
        labels = { model.label(for: $0) ?? "class \($0)" }
        if node.classes.isEmpty {
            classes = nil
        } else {
            var ids: Set<Int> = []
            for c in node.classes {
                if let id = Int(c) {
                    ids.insert(id)
                } else if let id = (0..<4096).first(where: { model.label(for: $0) == c }) {
                    ids.insert(id)
                } else {
                    throw RuntimeError(
                        "analytics node \(node.name): the model \(node.model) has no class labelled \"\(c)\"; use the "
                            + "class id (e.g. 1 for person in COCO models) or a label from its descriptor")
                }
            }
            classes = ids
        }
        var tracker = node.tracker
        tracker.lowScore = min(tracker.lowScore, node.minScore)
        self.tracker = ByteTracker(tracker)
        scene = SceneAnalyzer(zones: node.zones, lines: node.lines)
        detections.reserveCapacity(128)
        overlays.reserveCapacity(256)
        predicted.reserveCapacity(64)
        gate = DetectionGate(detectFps: node.detectFps, motion: node.motion)
        liveView?.addStream(node.name)
    }

    func stop() { stopRequested.store(true, ordering: .relaxed) }

    /// Analyses frames until the camera finished or `stop()`.
    func run() async {
        var last: UInt64 = 0
        while !stopRequested.load(ordering: .relaxed) && !Task.isCancelled {
            guard let frame = camera.acquireLatest(after: last) else {
                if camera.isFinished { break }
                try? await Task.sleep(for: .milliseconds(5))
                continue
            }
            last = frame.sequence
            do {
                try await analyse(frame)
            } catch {
                counters.withLock { $0.lastError = "\(error)" }
                logger.warning("analytics failed on a frame", metadata: ["node": "\(node.name)", "error": "\(error)"])
            }
            camera.release(slot: frame.slot)
        }
        // The camera ended: every object still in view ends with it.
        finish()
    }

    /// Decides whether the detector runs on `frame`, and runs it or predicts.
    private func analyse(_ frame: FrameInfo) async throws {
        let time = Double(frame.timestampMicros) / 1e6
        let decision = gate.decide(camera: camera, frame: frame, inView: tracker.hasTracks)
        if decision == .detect {
            try await detectAndTrack(frame, time: time)
        } else {
            if let liveView, liveView.viewerCount(stream: node.name) > 0, camera.ensureBGR(slot: frame.slot) {
                tracker.predict(at: time, into: &predicted)
                drawOverlays(tracks: predicted)
                let image = ImageBuffer(
                    base: camera.pixels(of: frame.slot), width: frame.width, height: frame.height, stride: frame.stride)
                liveView.publish(stream: node.name, overlays: overlays) { image }
            }
            let latency = monotonicNanos() - frame.decodedAtNanos
            counters.withLock { c in
                c.frames += 1
                if decision == .still { c.stillFrames += 1 }
                c.latency.record(nanos: latency)
            }
        }
    }

    /// Runs the detector on `frame`, tracks, and raises the events.
    private func detectAndTrack(_ frame: FrameInfo, time: Double) async throws {
        let minScore = node.minScore
        let classes = self.classes
        detections.removeAll(keepingCapacity: true)
        try await models.detect(node.model, camera: camera, slot: frame.slot) { found in
            for d in found where Double(d.score) >= minScore && (classes?.contains(d.classId) ?? true) {
                self.detections.append(
                    TrackerDetection(
                        classId: d.classId, score: Double(d.score),
                        box: Rect(
                            xMin: Double(d.box.xMin), yMin: Double(d.box.yMin), xMax: Double(d.box.xMax),
                            yMax: Double(d.box.yMax))))
            }
        }
        let tracks = tracker.update(detections, time: time)
        let ended = tracker.ended
        let sceneEvents = scene.update(tracks: tracks, ended: ended, time: time)

        // The picture (and the overlays drawn on snapshots and the live view) is made only when a snapshot or a
        // viewer needs it: a frame with no event and nobody watching allocates nothing.
        var image: ImageBuffer?
        func frameImage() -> ImageBuffer? {
            if image == nil, camera.ensureBGR(slot: frame.slot) {
                image = ImageBuffer(
                    base: camera.pixels(of: frame.slot), width: frame.width, height: frame.height, stride: frame.stride)
                drawOverlays(tracks: tracks)
            }
            return image
        }

        // Objects: start when confirmed, end when the tracker lets them go; the best view is kept.
        for track in tracks where track.state == .confirmed {
            if objects[track.id] == nil {
                objects[track.id] = ObjectState(firstSeen: track.firstSeen)
                capture(track, time: time, frame: frame, image: frameImage())
                if node.objectEvents { emitObject(track, phase: "start", time: time) }
            } else if track.score > objects[track.id]!.bestScore * 1.1, time - objects[track.id]!.lastCapture >= 1 {
                capture(track, time: time, frame: frame, image: frameImage())
            }
        }
        for event in sceneEvents { emitScene(event, time: time, frame: frame, image: frameImage()) }
        for track in ended where objects[track.id] != nil {
            if node.objectEvents { emitObject(track, phase: "end", time: time) }
            objects[track.id] = nil
            snapshots.submit(.forget(track: track.id))
        }

        let active = tracks.count { $0.state == .confirmed }
        let latency = monotonicNanos() - frame.decodedAtNanos
        counters.withLock { c in
            c.frames += 1
            c.detections += 1
            c.activeTracks = active
            c.latency.record(nanos: latency)
        }
        if !sceneEvents.isEmpty {  // counts and occupancy change only with an event
            let counts = scene.counts
            let occupancy = scene.occupancy
            counters.withLock { c in
                for (line, count) in counts { c.lineCounts[line] = ["in": count.in, "out": count.out] }
                c.occupancy = occupancy
            }
        }
        if let liveView, liveView.viewerCount(stream: node.name) > 0, frameImage() != nil {
            liveView.publish(stream: node.name, overlays: overlays) { frameImage() }
        }
    }

    /// The camera ended: every track still alive ends with it, leaving its zones and ending its object event.
    private func finish() {
        let remaining = tracker.tracks
        let time = remaining.map(\.lastSeen).max() ?? 0
        for event in scene.update(tracks: [], ended: remaining, time: time) {
            emitScene(event, time: time, frame: nil, image: nil)
        }
        if node.objectEvents {
            for track in remaining where objects[track.id] != nil {
                emitObject(track, phase: "end", time: track.lastSeen)
            }
        }
        objects.removeAll()
        // Every event made so far is recorded before the node ends.
        snapshots.finish()
    }

    /// Keeps the track's current view as its best snapshot.
    private func capture(_ track: Track, time: Double, frame: FrameInfo, image: ImageBuffer?) {
        guard let image, var state = objects[track.id],
            let picture = snapshots.copy(
                image, overlays: snapshotOverlays ? highlight(track) : [], timeMicros: frame.timestampMicros,
                main: stills)
        else { return }
        snapshots.submit(.capture(track: track.id, picture))
        state.hasBestView = true
        state.bestScore = track.score
        state.lastCapture = time
        objects[track.id] = state
    }

    private func highlight(_ track: Track) -> [Overlay] {
        var result = overlays
        result.append(
            .rect(
                x0: Float(track.box.xMin), y0: Float(track.box.yMin), x1: Float(track.box.xMax),
                y1: Float(track.box.yMax), color: .red))
        return result
    }

    private func boxJSON(_ box: Rect) -> JSONValue {
        .object([
            "xMin": .number(round(box.xMin * 1e4) / 1e4), "yMin": .number(round(box.yMin * 1e4) / 1e4),
            "xMax": .number(round(box.xMax * 1e4) / 1e4), "yMax": .number(round(box.yMax * 1e4) / 1e4),
        ])
    }

    private func trackFields(_ track: Track) -> [String: JSONValue] {
        [
            "trackId": .number(Double(track.id)), "label": .string(labels(track.classId)),
            "classId": .number(Double(track.classId)), "score": .number(round(track.score * 1000) / 1000),
            "box": boxJSON(track.box),
        ]
    }

    private func emitObject(_ track: Track, phase: String, time: Double) {
        guard let state = objects[track.id] else { return }
        var fields = trackFields(track)
        fields["zones"] = .array(state.zones.map(JSONValue.string))
        fields["firstSeen"] = .string(Self.iso(state.firstSeen))
        fields["lastSeen"] = .string(Self.iso(track.lastSeen))
        fields["seconds"] = .number(round((track.lastSeen - state.firstSeen) * 100) / 100)
        emit(
            type: "object", id: state.eventID, phase: phase, payload: .object(fields), time: time,
            snapshot: state.hasBestView ? .bestView(track: track.id) : nil)
    }

    private func emitScene(_ event: SceneEvent, time: Double, frame: FrameInfo?, image: ImageBuffer?) {
        var fields: [String: JSONValue]
        let type: String
        var track: Track?
        switch event {
        case .zoneEnter(let zone, let t):
            type = "zone.enter"
            track = t
            fields = trackFields(t)
            fields["zone"] = .string(zone)
            fields["occupancy"] = .number(Double(scene.occupancy[zone] ?? 0))
            objects[t.id]?.zones.append(zone)
            if node.objectEvents, objects[t.id] != nil { emitObject(t, phase: "update", time: time) }
        case .zoneLeave(let zone, let t, let dwell):
            type = "zone.leave"
            track = t
            fields = trackFields(t)
            fields["zone"] = .string(zone)
            fields["dwellSeconds"] = .number(round(dwell * 100) / 100)
            objects[t.id]?.zones.removeAll { $0 == zone }
        case .zoneDwell(let zone, let t, let seconds):
            type = "zone.dwell"
            track = t
            fields = trackFields(t)
            fields["zone"] = .string(zone)
            fields["dwellSeconds"] = .number(round(seconds * 100) / 100)
        case .zoneOccupancy(let zone, let count):
            type = "zone.occupancy"
            fields = ["zone": .string(zone), "count": .number(Double(count))]
        case .lineCross(let line, let t, let direction, let countIn, let countOut):
            type = "line.cross"
            track = t
            fields = trackFields(t)
            fields["line"] = .string(line)
            fields["direction"] = .string("\(direction)")
            fields["in"] = .number(Double(countIn))
            fields["out"] = .number(Double(countOut))
        }
        let snapshot = image.flatMap { image in
            snapshots.copy(
                image, overlays: snapshotOverlays ? (track.map(highlight) ?? overlays) : [],
                timeMicros: frame?.timestampMicros, main: stills)
        }.map(SnapshotWorker.Snapshot.picture)
        emit(
            type: type, id: UUID().uuidString.lowercased(), phase: nil, payload: .object(fields), time: time,
            snapshot: snapshot)
    }

    /// Hands the event to the snapshot worker, which encodes its snapshot and records it, in order.
    private func emit(
        type: String, id: String, phase: String?, payload: JSONValue, time: Double, snapshot: SnapshotWorker.Snapshot?
    ) {
        snapshots.submit(
            .emit(
                OutgoingEvent(
                    id: id, type: type, time: Date(timeIntervalSince1970: time), camera: cameraName,
                    source: "analytics:\(node.name)", phase: phase, payload: payload),
                snapshot: snapshot))
    }

    /// Zones, lines with their counts, and every confirmed track's box and ID.
    private func drawOverlays(tracks: [Track]) {
        overlays.removeAll(keepingCapacity: true)
        for zone in node.zones {
            let p = zone.polygon
            for i in p.indices {
                let a = p[i]
                let b = p[(i + 1) % p.count]
                overlays.append(.line(x0: Float(a.x), y0: Float(a.y), x1: Float(b.x), y1: Float(b.y), color: .yellow))
            }
            if let first = p.first {
                let count = scene.occupancy[zone.name] ?? 0
                overlays.append(
                    .label(text: "\(zone.name): \(count)", x: Float(first.x), y: Float(first.y), color: .yellow))
            }
        }
        for line in node.lines {
            overlays.append(
                .line(
                    x0: Float(line.from.x), y0: Float(line.from.y), x1: Float(line.to.x), y1: Float(line.to.y),
                    color: .cyan))
            let count = scene.counts[line.name] ?? (0, 0)
            overlays.append(
                .label(
                    text: "\(line.name) in \(count.in) out \(count.out)", x: Float(line.from.x), y: Float(line.from.y),
                    color: .cyan))
        }
        for track in tracks where track.state != .tentative {
            let b = track.box
            overlays.append(.rect(x0: Float(b.xMin), y0: Float(b.yMin), x1: Float(b.xMax), y1: Float(b.yMax)))
            overlays.append(.label(text: "#\(track.id) \(labels(track.classId))", x: Float(b.xMin), y: Float(b.yMin)))
        }
        if let motion = gate.motion, motion.settings.show {
            for b in motion.boxes {
                overlays.append(
                    .rect(x0: Float(b.xMin), y0: Float(b.yMin), x1: Float(b.xMax), y1: Float(b.yMax), color: .orange))
            }
        }
    }

    private static func iso(_ seconds: Double) -> String {
        Date(timeIntervalSince1970: seconds).iso8601Text
    }
}
