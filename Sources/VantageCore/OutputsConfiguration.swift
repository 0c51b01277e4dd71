import Foundation

/// Where an application instance's events go, and the no-code analytics that make events without code: the
/// `outputs` object of graph.json's `nodeGraph`, of an overrides document's `nodeGraphOverrides`, or of a file given
/// with `vantage run --outputs FILE`. See docs/outputs.md for the whole format with examples.
///
/// ```json
/// {
///   "events":    {"maxAge": "7d", "maxSize": "2GB", "clips": {"preRoll": 5, "postRoll": 5}},
///   "analytics": [{"name": "people", "camera": "camera_node", "model": "model_node", "classes": ["person"],
///                  "zones": [{"name": "dock", "polygon": [[0.1, 0.5], [0.5, 0.5], [0.5, 1], [0.1, 1]]}],
///                  "lines": [{"name": "door", "from": [0, 0.6], "to": [1, 0.6]}]}],
///   "sinks":     {"alerts": {"type": "mqtt", "url": "mqtt://broker:1883", "topic": "vantage/{device}/{camera}/{type}"},
///                 "images": {"type": "s3", "bucket": "defects", "region": "eu-west-1",
///                            "accessKeyId": "${S3_KEY}", "secretAccessKey": "${S3_SECRET}"}},
///   "rules":     [{"when": {"type": "zone.enter", "payload": {"zone": "dock"}}, "send": ["alerts", "images"],
///                  "atMostEvery": "5m"}]
/// }
/// ```
public struct OutputsConfiguration: Sendable, Equatable, Codable {
    /// The local record of events (always kept): retention and clip lengths.
    public var events = LocalEvents()
    /// Built-in analytics nodes: detector → tracker → zones and lines, without code.
    public var analytics: [AnalyticsNode] = []
    /// When model nodes run on the frames an application gives them, by model node: at most `detectFps` a second per
    /// camera, and only with motion. Frames in between get the camera's previous answer.
    public var detection: [String: Detection] = [:]
    /// Named sinks, in the order written.
    public var sinks: [SinkConfiguration] = []
    /// Which events go to which sinks. A sink no rule names receives every event.
    public var rules: [Rule] = []

    public init() {}

    /// Whether nothing is configured (the defaults: events on local disk only).
    public var isEmpty: Bool {
        analytics.isEmpty && detection.isEmpty && sinks.isEmpty && rules.isEmpty && events == LocalEvents()
    }

    /// The sink named `name`.
    public func sink(named name: String) -> SinkConfiguration? { sinks.first { $0.name == name } }

    /// The local event record: snapshots and clips on disk, deleted by age and total size.
    public struct LocalEvents: Sendable, Equatable, Codable {
        /// Media older than this is deleted (seconds; nil keeps them).
        public var maxAge: Double? = 7 * 86_400
        /// The snapshots and clips together are kept under this many bytes, the oldest deleted first.
        public var maxBytes: Int64? = 2 << 30
        /// Seconds of video before and after the event's time in its clip.
        public var clipPreRoll: Double = 5
        public var clipPostRoll: Double = 5
        /// Draw the app's overlays (and the analytics' boxes, zones and lines) on snapshots.
        public var snapshotOverlays = true
        public init() {}
    }

    /// A built-in analytics node: runs `model` on every frame of `camera`, tracks the objects, and raises object,
    /// zone and line events.
    public struct AnalyticsNode: Sendable, Equatable, Codable {
        public var name: String
        /// The camera node whose frames are analysed.
        public var camera: String
        /// The model node (a detector) run on each frame.
        public var model: String
        /// Class ids or labels to keep (e.g. `["person"]`, `[1]`); empty keeps every class.
        public var classes: [String] = []
        /// Detections scoring below this are ignored. Low (0.1, ByteTrack's floor) by default: the tracker uses
        /// low-scoring detections only to keep tracks it has (a half-hidden person), never to start one. The model's
        /// own `decoder.minScore` (in its descriptor) applies first: lower it too for the tracker to see them.
        public var minScore: Double = 0.1
        public var tracker = TrackerConfiguration()
        public var zones: [Zone] = []
        public var lines: [CountingLine] = []
        /// Raise `object.start` / `object.update` / `object.end` events for every confirmed track.
        public var objectEvents = true
        /// How often (per second) the detector runs on the camera's frames; nil runs it on every frame. The frames in
        /// between are still decoded and shown, and the tracker predicts where its objects are on them.
        public var detectFps: Double?
        /// Run the detector only on frames with motion (and while tracks are in view, so they are not lost); nil
        /// runs it whatever moves.
        public var motion: MotionSettings?
        public init(name: String, camera: String, model: String) {
            self.name = name
            self.camera = camera
            self.model = model
        }
    }

    /// A model node's detection rate and motion gating for frames applications call it on (`detection`).
    public struct Detection: Sendable, Equatable, Codable {
        public var detectFps: Double?
        public var motion: MotionSettings?
        public init(detectFps: Double? = nil, motion: MotionSettings? = nil) {
            self.detectFps = detectFps
            self.motion = motion
        }
    }

    /// When an event matches, send it to `send` (at most once per `atMostEvery` seconds).
    public struct Rule: Sendable, Equatable, Codable {
        public var name: String
        /// Event types this rule takes: exact (`zone.enter`), a prefix with `*` (`zone.*`), or empty for every type.
        public var types: [String] = []
        /// Camera nodes this rule takes; empty for every camera.
        public var cameras: [String] = []
        /// Conditions on the event's payload (all must hold).
        public var payload: [PayloadCondition] = []
        /// Sink names.
        public var send: [String] = []
        /// Attach the event's snapshot (uploaded to the object-storage sinks in `send`).
        public var snapshot = true
        /// Cut a clip around the event (pre-roll and post-roll from `events.clips`) and attach it.
        public var clip = false
        /// At most one matching event is sent per this many seconds (per camera); nil for no limit.
        public var atMostEvery: Double?
        public init(name: String) { self.name = name }
    }

    /// One condition on a payload value, addressed by a dotted path (`box.score`).
    public struct PayloadCondition: Sendable, Equatable, Codable {
        public enum Operator: String, Sendable, Codable, CaseIterable {
            case equal = "=="
            case notEqual = "!="
            case less = "<"
            case lessOrEqual = "<="
            case greater = ">"
            case greaterOrEqual = ">="
            case oneOf = "in"
            case exists = "exists"
        }
        public var path: [String]
        public var op: Operator
        /// The value compared with, as JSON text (`"dock"`, `3`, `["a","b"]`, `true`).
        public var value: String
        public init(path: [String], op: Operator, value: String) {
            self.path = path
            self.op = op
            self.value = value
        }
    }
}

/// One named sink and its settings. Secret settings (passwords, keys) are kept out of ``description``.
public struct SinkConfiguration: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case mqtt, s3, webhook
    }
    public var name: String
    public var kind: Kind
    /// The settings as written (after `${ENV}` expansion), by key. Each kind reads its own.
    public var settings: [String: SettingValue]

    public init(name: String, kind: Kind, settings: [String: SettingValue]) {
        self.name = name
        self.kind = kind
        self.settings = settings
    }

    /// Settings whose values are secrets: never printed.
    public static let secretKeys: Set<String> = ["password", "secretAccessKey", "sessionToken", "secret"]

    public var description: String {
        let shown = settings.keys.sorted().map { key in
            Self.secretKeys.contains(key) ? "\(key)=<redacted>" : "\(key)=\(settings[key]!)"
        }
        return "\(kind.rawValue) sink \(name) (\(shown.joined(separator: ", ")))"
    }

    /// A setting's value: text, number or flag.
    public enum SettingValue: Sendable, Equatable, Codable, CustomStringConvertible {
        case string(String)
        case number(Double)
        case bool(Bool)
        case strings([String])
        public var description: String {
            switch self {
            case .string(let s): s
            case .number(let n): n == n.rounded() ? String(Int64(n)) : String(n)
            case .bool(let b): String(b)
            case .strings(let s): s.joined(separator: ",")
            }
        }
    }

    /// A text setting, or nil.
    public func string(_ key: String) -> String? {
        if case .string(let s) = settings[key] { return s }
        return nil
    }
    /// A number setting, or nil.
    public func number(_ key: String) -> Double? {
        if case .number(let n) = settings[key] { return n }
        return nil
    }
    /// A flag setting, or nil.
    public func bool(_ key: String) -> Bool? {
        if case .bool(let b) = settings[key] { return b }
        return nil
    }
}

/// A mistake in an `outputs` object, naming where it is and what to write instead.
public struct OutputsConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Where, as a path: `outputs.sinks.alerts.qos`.
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }
}
