import Foundation
import VantageCore
import VantageMedia
import VantageProtocol

/// Decides, frame by frame, whether a camera's frame goes to the detector: at most `detectFps` a second and, with
/// motion gating, only when something moves or something is in view. The one mechanism behind an analytics node's
/// `detectFps`/`motion` and a model node's (`detection` in the outputs document).
///
/// One per camera and detector; used by one task at a time. The motion detector sees every frame (it keeps its
/// background current and its motion boxes are what the live view shows), whether or not the frame is due.
final class DetectionGate {
    enum Decision: Equatable {
        /// Run the detector on this frame.
        case detect
        /// Not yet: less than 1/`detectFps` since the last detection.
        case notDue
        /// Due, but nothing moves and nothing is in view.
        case still
    }

    /// Seconds between detections (nil: every frame).
    let interval: Double?
    let motion: MotionDetector?
    private var lastDetection = -Double.infinity

    init(detectFps: Double?, motion: MotionSettings?) {
        interval = detectFps.map { 1 / $0 }
        self.motion = motion.map(MotionDetector.init(settings:))
    }

    /// Whether the gate lets every frame through (no rate, no motion gating): callers skip it altogether.
    var isOpen: Bool { interval == nil && motion == nil }

    /// The decision for `frame` of `camera` (held by the caller). `inView`: something was detected or is tracked,
    /// so the detector keeps looking at its rate even without motion (a person standing still is not lost).
    func decide(camera: CameraStream, frame: FrameInfo, inView: Bool) -> Decision {
        let time = Double(frame.timestampMicros) / 1e6
        let moving = motion?.update(camera: camera, slot: frame.slot, time: time) ?? true
        // Due when the interval has (nearly: camera clocks jitter) passed since the last detection.
        if let interval, time - lastDetection < interval * 0.9 { return .notDue }
        if !moving && !inView { return .still }
        lastDetection = time
        return .detect
    }
}

/// A `DetectionGate` for a model node's frame calls, with the camera's last answer to give frames the model skips.
final class FrameGate: @unchecked Sendable {
    // Unchecked: every field is touched under `lock`.
    private let lock = NSLock()
    private let gate: DetectionGate
    private var reply: [UInt8] = []
    private var replyWants: InferWants = []
    private var inView = true

    init(_ gate: DetectionGate) {
        self.gate = gate
        reply.reserveCapacity(4096)
    }

    /// Writes the previous answer into `writer` when the gate skips `frame`; false when the model must run (the frame
    /// is due, or there is no previous answer of the kind asked for).
    func replay(camera: CameraStream, frame: FrameInfo, wants: InferWants, into writer: inout WireWriter) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let decision = gate.decide(camera: camera, frame: frame, inView: inView)
        guard decision != .detect, !reply.isEmpty, replyWants == wants else { return false }
        writer.raw(reply)
        return true
    }

    /// Keeps the answer the model just gave (the `inferResult` payload) for the frames it will skip.
    func remember(_ payload: ArraySlice<UInt8>, wants: InferWants, inView: Bool) {
        lock.lock()
        defer { lock.unlock() }
        reply.removeAll(keepingCapacity: true)
        reply.append(contentsOf: payload)
        replyWants = wants
        self.inView = inView
    }
}
