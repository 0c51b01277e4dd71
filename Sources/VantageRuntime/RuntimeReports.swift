import Foundation
import VantageMedia

// What a runtime reports: the summary `vantage run` prints at the end, and the status of `/status` and the status
// lines.

/// What a finished run did, printed by `vantage run` at the end.
public struct RunSummary: Sendable, Codable {
    public var seconds: Double
    public var frames: UInt64
    public var framesPerSecond: Double
    /// Seconds from the start until the cameras started: loading and warming up the models (and, meanwhile,
    /// starting the code nodes).
    public var startupSeconds: Double?
    /// Frames per second once the cameras started: the throughput without the one-off start-up.
    public var streamingFramesPerSecond: Double?
    public var events: UInt64
    public var dropped: UInt64
    public var appRestarts: Int
    public var decisionLatencyP50Ms: Double?
    public var decisionLatencyP99Ms: Double?
    /// Frames the analytics nodes' detectors ran on.
    public var detections: UInt64 = 0
    public var cameras: [String: CameraCounters]
    /// CPU time used from the moment the cameras started to the end: with each camera's `costs` (decode, scale,
    /// colour conversion), what a frame's core-time went to (`bench/run` prints the breakdown).
    public var streamingCPU: CPUUse?
}

/// CPU time used by the runtime's process and by the processes it started and saw end (code nodes), in seconds, and
/// the cores it had.
public struct CPUUse: Sendable, Codable, Equatable {
    /// The runtime itself: decode, scaling, inference (OpenVINO's threads), the app protocol, events, live view.
    public var runtimeSeconds: Double
    /// The code nodes' processes (and anything else the runtime started) that ended and were waited for.
    public var applicationSeconds: Double
    /// The cores this process may run on.
    public var cores: Int

    public init(runtimeSeconds: Double, applicationSeconds: Double, cores: Int) {
        self.runtimeSeconds = runtimeSeconds
        self.applicationSeconds = applicationSeconds
        self.cores = cores
    }

    /// The CPU time used so far (`getrusage` of this process and of its ended children).
    public static func now() -> CPUUse {
        func seconds(_ who: Int32) -> Double {
            var usage = rusage()
            guard getrusage(who, &usage) == 0 else { return 0 }
            return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
                + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        }
        return CPUUse(
            runtimeSeconds: seconds(RUSAGE_SELF.rawValue), applicationSeconds: seconds(RUSAGE_CHILDREN.rawValue),
            cores: ProcessInfo.processInfo.activeProcessorCount)
    }

    /// What was used since `start`.
    public func since(_ start: CPUUse) -> CPUUse {
        CPUUse(
            runtimeSeconds: max(0, runtimeSeconds - start.runtimeSeconds),
            applicationSeconds: max(0, applicationSeconds - start.applicationSeconds), cores: cores)
    }
}

/// The status document: per camera, per code node and per model.
public struct StatusReport: Sendable, Codable {
    public struct Camera: Sendable, Codable {
        public var name: String
        public var uri: String
        public var framesPerSecond: Double
        public var counters: CameraCounters
        /// When the camera detects on a sub-stream (`uri`): its main stream, read for clips, never decoded
        /// (`counters.received` packets, `decoded` 0).
        public var main: MainStream?

        public struct MainStream: Sendable, Codable {
            public var uri: String
            public var counters: CameraCounters
            /// Analytics events whose snapshot was decoded from this stream (at its resolution).
            public var snapshots: UInt64 = 0
            /// Analytics events whose snapshot is the sub-stream's frame because this stream had none for its time
            /// (not connected, stalled, a decode failure), and the last reason.
            public var snapshotFallbacks: UInt64 = 0
            public var lastSnapshotFallback: String?
            /// CPU time of one snapshot decoded from this stream, on average: its group of pictures, the colour
            /// conversion, the overlays and the JPEG.
            public var snapshotCPUMs: Double?
        }
    }

    public struct Application: Sendable, Codable {
        public var node: String
        public var phase: String
        public var pid: Int32
        public var restarts: Int
        public var lastExit: String?
        public var framesPerSecond: Double
        public var framesDelivered: UInt64
        public var framesPut: UInt64
        public var inferences: UInt64
        public var events: UInt64
        public var decisionLatencyP50Ms: Double?
        public var decisionLatencyP99Ms: Double?
    }

    public struct Model: Sendable, Codable {
        public var name: String
        public var inferences: UInt64
        /// Frames answered with their camera's previous result (the model's `detection` settings), not inferred.
        public var skippedFrames: UInt64 = 0
        /// Frame calls answered by an inference run ahead, as the frame was decoded (`FrameLookahead`).
        public var inferredAhead: UInt64 = 0
        /// Frames run ahead that the application never asked for (it skipped them; the lookahead paused).
        public var wastedAhead: UInt64 = 0
        public var latencyP50Ms: Double?
        public var latencyP99Ms: Double?
        /// What the model runs in: `INT8` (a quantized model, `vantage models optimize`), `FP32`, `BF16` or `FP16`.
        public var precision: String?
    }

    /// A built-in analytics node: frames analysed, events raised, tracks in view, line counts and zone occupancy.
    public struct Analytics: Sendable, Codable {
        public var name: String
        public var camera: String
        public var frames: UInt64
        /// Frames the detector ran on (fewer than `frames` with `detectFps` or motion gating).
        public var detections: UInt64 = 0
        /// Frames due for detection but skipped because nothing moved and no track was in view.
        public var stillFrames: UInt64 = 0
        public var events: UInt64
        public var activeTracks: Int
        public var lineCounts: [String: [String: Int]]
        public var occupancy: [String: Int]
        public var lastError: String?
    }

    /// A sink: deliveries waiting in the outbox, delivered and failed since start, and the current failure.
    public struct Sink: Sendable, Codable {
        public var name: String
        public var type: String
        public var pending: Int
        public var delivered: Int
        public var failures: Int
        public var lastError: String?
    }

    public var application: String
    public var uptimeSeconds: Double
    public var cameras: [Camera]
    public var applications: [Application]
    public var models: [Model]
    public var analytics: [Analytics] = []
    public var sinks: [Sink] = []

    /// One line per camera and per code node, for the terminal.
    public var lines: [String] {
        func one(_ v: Double) -> String { String(format: "%.1f", v) }
        func ms(_ v: Double?) -> String { v.map { one($0) + " ms" } ?? "-" }
        var lines = cameras.map { c in
            var line =
                "camera \(c.name): \(c.counters.state.rawValue) \(one(c.framesPerSecond)) fps, "
                + "decoded \(c.counters.decoded), dropped \(c.counters.dropped), reconnects \(c.counters.reconnects)"
            if let e = c.counters.lastError, c.counters.state != .streaming { line += " — \(e)" }
            return line
        }
        lines += applications.map { a in
            "app \(a.node): \(a.phase) \(one(a.framesPerSecond)) fps, inferences \(a.inferences), events \(a.events), "
                + "restarts \(a.restarts), decision p50 \(ms(a.decisionLatencyP50Ms)) p99 \(ms(a.decisionLatencyP99Ms))"
        }
        lines += analytics.map { a in
            var line =
                "analytics \(a.name): frames \(a.frames), detected \(a.detections), tracks \(a.activeTracks), "
                + "events \(a.events)"
            for (name, c) in a.lineCounts.sorted(by: { $0.key < $1.key }) {
                line += ", \(name) in \(c["in"] ?? 0) out \(c["out"] ?? 0)"
            }
            for (name, n) in a.occupancy.sorted(by: { $0.key < $1.key }) { line += ", \(name) \(n)" }
            return line
        }
        lines += sinks.map { s in
            "sink \(s.name) (\(s.type)): delivered \(s.delivered), pending \(s.pending)"
                + (s.lastError.map { " — failing: \($0)" } ?? "")
        }
        return lines
    }
}
