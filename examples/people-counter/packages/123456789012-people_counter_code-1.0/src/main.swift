// The people counter: detects people on every camera with the SSDLite model node, draws their boxes and the
// count on the live view, and publishes an event when the count in view changes, with a snapshot when it goes
// above the `max_people` parameter. The count is the median of the last five frames' detections, so one frame
// where the detector misses somebody does not make two events. An event the runtime cannot store (a full disk) is
// logged, at most once every ten seconds, and the counting goes on: an error that escapes `main` ends the process and
// the runtime restarts it, over and over while the disk stays full.
import Foundation
import VantageSDK

/// The event this application publishes.
struct CountEvent: Encodable {
    var type: String
    var stream: String
    var count: Int
    var previous: Int
    var maxPeople: Int
    var frame: UInt64
}

@main
struct PeopleCounter {
    static func main() async throws {
        let node = try Node.connect()
        let model = node.string("model_name") ?? "model_node"
        let minScore = node.float("min_score") ?? 0.5
        let maxPeople = node.int("max_people") ?? 5
        var counts: [String: Int] = [:]
        var recent: [String: [Int]] = [:]
        var publishErrors = ThrottledLog(every: .seconds(10))
        log("people counter on \(node.config.cameras.map(\.name)); min_score \(minScore), max_people \(maxPeople)")

        // The counter never reads pixels itself (the runtime draws its overlays), so it skips the BGR copies.
        while var frames = try await node.frames("video_in", images: false) {
            // Every new frame's inference is in flight at once: the runtime runs them concurrently.
            let results = try await withThrowingTaskGroup(of: (Int, [Detection]).self) { group in
                for (i, frame) in frames.enumerated() where !frame.isCached {
                    group.addTask { (i, try await node.detect(model, on: frame)) }
                }
                var results: [Int: [Detection]] = [:]
                for try await (i, detections) in group { results[i] = detections }
                return results
            }
            for (i, detections) in results.sorted(by: { $0.key < $1.key }) {
                let people = detections.filter { $0.classId == 1 && $0.score >= minScore }
                var frame = frames[i]
                for p in people {
                    frame.addRect(p.xMin, p.yMin, p.xMax, p.yMax)
                    frame.addLabel("person \(Int(p.score * 100))%", x: p.xMin, y: p.yMin)
                }
                var window = recent[frame.streamId, default: []]
                window.append(people.count)
                if window.count > 5 { window.removeFirst() }
                recent[frame.streamId] = window
                let count = window.sorted()[window.count / 2]
                let over = count > maxPeople
                frame.addLabel(
                    "\(frame.streamId): \(count) people", x: 0.02, y: 0.06, color: over ? 0xFF3030 : 0xFFFFFF)
                frames[i] = frame
                let previous = counts[frame.streamId]
                counts[frame.streamId] = count
                if previous != count {
                    let crossed = (previous ?? 0) <= maxPeople && over
                    let event = CountEvent(
                        type: crossed ? "over_threshold" : "count_changed", stream: frame.streamId, count: count,
                        previous: previous ?? 0, maxPeople: maxPeople, frame: frame.ref.sequence)
                    do {
                        try await node.publish(event, snapshot: crossed || previous == nil ? frame : nil)
                    } catch {
                        publishErrors.report("could not publish the \(event.type) event (counting goes on): \(error)")
                    }
                }
            }
            try node.put(frames, to: "video_out")
        }
        log("sources ended; counts: \(counts)")
    }

    static func log(_ message: String) {
        FileHandle.standardError.write(Data("people-counter: \(message)\n".utf8))
    }
}

/// Logs a recurring error at most once per interval, with how many were held back meanwhile.
struct ThrottledLog {
    let interval: Duration
    private var last: ContinuousClock.Instant?
    private var heldBack = 0

    init(every interval: Duration) { self.interval = interval }

    mutating func report(_ message: String) {
        let now = ContinuousClock.now
        if let last, now - last < interval {
            heldBack += 1
            return
        }
        PeopleCounter.log(message + (heldBack > 0 ? " (and \(heldBack) more since the last report)" : ""))
        last = now
        heldBack = 0
    }
}
