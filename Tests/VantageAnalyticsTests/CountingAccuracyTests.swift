import Foundation
import Logging
import Testing
import VantageAnalytics
import VantageCore
import VantageInference
import VantageMedia

/// Counting accuracy on the sample video against the hand-made ground truth in
/// Tests/GroundTruth/vtest-line-crossings.json: every frame of vtest.mp4 decoded by VantageMedia, people found by the
/// SSDLite person detector (the demo's model, through the runtime's path: swscale to 300×300 RGB), tracked with the
/// default tracker settings, and counted on the line the ground truth uses.
@Suite("Counting accuracy on vtest.mp4")
struct CountingAccuracyTests {
    struct GroundTruth: Decodable {
        struct Crossing: Decodable {
            var time: Double
            var direction: CountingLine.Direction
            var note: String
        }
        struct Totals: Decodable {
            var `in`: Int
            var out: Int
        }
        var line: CountingLine
        var crossings: [Crossing]
        var totals: Totals
    }

    /// Frame storage for the camera: plain memory standing in for the runtime's shared memory.
    final class Memory: @unchecked Sendable {
        // Written only by the camera's decoder thread into slots it owns, read after acquire: the pool's protocol.
        let base: UnsafeMutableRawPointer
        let storage: FrameStorage
        init(slots: Int = 4) {
            let bytes = FrameStorage.slotBytes(maxWidth: 768, maxHeight: 576)
            base = UnsafeMutableRawPointer.allocate(byteCount: slots * bytes, alignment: 64)
            storage = FrameStorage(base: base, slotCount: slots, slotCapacity: bytes, owner: nil)
        }
        deinit { base.deallocate() }
    }

    static let video = repositoryRoot.appendingPathComponent(".deps/media/vtest.mp4")
    static let model = repositoryRoot.appendingPathComponent(".deps/models/ssdlite/frozen_inference_graph.pb")
    static let truthFile = repositoryRoot.appendingPathComponent("Tests/GroundTruth/vtest-line-crossings.json")

    /// The error allowed per direction. The ground truth has 6 in and 8 out; two of them (30.5 s in, 70.8 s in)
    /// happen while two people walking opposite ways hide each other on the line, where an IoU tracker on one
    /// detector may swap or lose one of them, and the SSDLite boxes of the farthest walkers flicker below the
    /// detector's 0.1 floor. One crossing per direction either way is the bound; the test prints the exact figures.
    static let allowedErrorPerDirection = 1

    static func seconds(_ t: Double) -> String { String(format: "%.1f", t) }

    @Test("People counted crossing the line match the hand-made ground truth within one per direction")
    func countsMatchGroundTruth() async throws {
        for file in [Self.video, Self.model] {
            try #require(
                FileManager.default.fileExists(atPath: file.path), "\(file.path) is missing: run scripts/setup")
        }
        let truth = try JSONDecoder().decode(GroundTruth.self, from: Data(contentsOf: Self.truthFile))
        let logger = Logger(label: "vantage.analytics.tests", factory: { _ in SwiftLogNoOpLogHandler() })
        let spec = ModelSpec(
            file: ".deps/models/ssdlite/frozen_inference_graph.pb",
            inputs: [
                ModelInputSpec(name: "image_tensor:0", layout: "NHWC", colorOrder: "RGB", width: 300, height: 300)
            ],
            decoder: DecoderSpec(type: .ssd, labels: ["background", "person"], minScore: 0.1))
        let model = try await InferenceModel.load(
            name: "people", spec: spec, file: Self.model, cacheDirectory: nil, logger: logger)
        let request = try model.makeRequest()

        let memory = Memory()
        let camera = CameraStream(
            source: StreamSource(name: "vtest", url: Self.video.path), storage: memory.storage, logger: logger)
        let signal = FrameSignal()
        camera.addObserver(signal)
        camera.start()
        defer { camera.stop() }
        let scaler = FrameScaler()

        var tracker = ByteTracker()
        var scene = SceneAnalyzer(lines: [truth.line])
        var crossings: [(time: Double, direction: CountingLine.Direction, track: Int)] = []
        var detections: [TrackerDetection] = []
        var last: UInt64 = 0
        while !(camera.isFinished && camera.snapshot.decoded == last) {
            guard let frame = camera.acquireLatest(after: last) else {
                _ = signal.wait(timeoutMillis: 100)
                continue
            }
            #expect(frame.sequence == last + 1, "every frame is decoded and seen, in order")
            last = frame.sequence
            let scaled = scaler.scale(
                camera, slot: frame.slot, width: 300, height: 300, order: .rgb, into: request.frameBuffer.baseAddress!)
            camera.release(slot: frame.slot)
            try #require(scaled, "frame \(frame.sequence) could not be scaled")
            try await request.inferFrame()

            detections.removeAll(keepingCapacity: true)
            for d in request.detections where d.classId == 1 {
                let box = Rect(
                    xMin: Double(d.box.xMin), yMin: Double(d.box.yMin), xMax: Double(d.box.xMax),
                    yMax: Double(d.box.yMax))
                detections.append(TrackerDetection(classId: 1, score: Double(d.score), box: box))
            }
            let time = Double(frame.sequence - 1) / 10  // vtest is 10 frames/s
            let seen = tracker.update(detections, time: time)
            for event in scene.update(tracks: seen, ended: tracker.ended, time: time) {
                if case .lineCross(_, let track, let direction, _, _) = event {
                    crossings.append((time, direction, track.id))
                }
            }
        }
        #expect(last == 795, "vtest.mp4 has 795 frames")

        let countIn = crossings.filter { $0.direction == .in }.count
        let countOut = crossings.filter { $0.direction == .out }.count
        let errorIn = countIn - truth.totals.in
        let errorOut = countOut - truth.totals.out

        // Which counted crossings match a true one (same direction, within 1.5 s), to show where the error comes from.
        var unmatched = crossings
        var missed: [GroundTruth.Crossing] = []
        for crossing in truth.crossings {
            if let i = unmatched.firstIndex(where: {
                $0.direction == crossing.direction && abs($0.time - crossing.time) <= 1.5
            }) {
                unmatched.remove(at: i)
            } else {
                missed.append(crossing)
            }
        }
        let total = truth.totals.in + truth.totals.out
        let absolute = abs(errorIn) + abs(errorOut)
        print(
            """
            Counting accuracy on vtest.mp4, line "\(truth.line.name)" (\(last) frames, default tracker settings):
              measured: in \(countIn), out \(countOut)
              truth:    in \(truth.totals.in), out \(truth.totals.out)
              error:    in \(errorIn >= 0 ? "+" : "")\(errorIn), out \(errorOut >= 0 ? "+" : "")\(errorOut) \
            (\(absolute) of \(total) crossings, \(String(format: "%.0f", 100 * Double(absolute) / Double(total)))%)
              counted:  \(crossings.map { "\(Self.seconds($0.time)) \($0.direction.rawValue) #\($0.track)" }.joined(separator: ", "))
              missed:   \(missed.map { "\(Self.seconds($0.time)) \($0.direction.rawValue)" }.joined(separator: ", "))
              extra:    \(unmatched.map { "\(Self.seconds($0.time)) \($0.direction.rawValue) #\($0.track)" }.joined(separator: ", "))
            """)
        #expect(abs(errorIn) <= Self.allowedErrorPerDirection, "in: counted \(countIn), truth \(truth.totals.in)")
        #expect(abs(errorOut) <= Self.allowedErrorPerDirection, "out: counted \(countOut), truth \(truth.totals.out)")
    }
}
