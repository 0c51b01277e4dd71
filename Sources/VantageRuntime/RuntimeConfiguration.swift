import Foundation
import VantageCore
import VantageInference
import VantageMedia
import VantageOutputs

/// How `vantage run` runs an application. Every field has a default; the CLI fills them from flags.
public struct RuntimeConfiguration: Sendable, Codable {
    /// Files: play at their frame rate instead of as fast as possible.
    public var realtime = false
    /// Files: start again at the end.
    public var loop = false
    /// RTSP transport for every camera.
    public var transport: StreamSource.Transport = .tcp
    /// Where the live view and status endpoint listen; port 0 picks a free port. nil turns HTTP off.
    public var httpHost = "127.0.0.1"
    public var httpPort: Int? = 7450
    /// Names the live view may be reached by besides IP addresses, localhost, `httpHost` and this machine's name
    /// (`--http-allowed-host`): requests naming another host are refused (DNS rebinding).
    public var httpAllowedHosts: [String] = []
    /// Make the live view (frames encoded only while watched) even without HTTP: the agent relays it to the control
    /// plane (``Runtime/liveView``), at most `liveFramesPerSecond` frames a second per stream.
    public var liveRelay = false
    public var liveFramesPerSecond: Double = 15
    /// Events as JSON lines (the built-in `@events` sink of the runtime's own pipeline): to this file, or to standard
    /// output when nil. Not used when events are recorded elsewhere (the agent's pipeline).
    public var eventsFile: URL?
    /// The bound of the runtime's own outbox (`<state>/outputs.sqlite`) on disk.
    public var outboxLimitBytes: Int64 = 256 << 20
    /// An `outputs` document (sinks, rules, analytics) applied over the manifest's (`vantage run --outputs FILE`).
    public var outputsFile: URL?
    /// An `outputs` document given as a value (the agent's desired instance), applied after `outputsFile`.
    public var outputsDocument: JSONValue?
    /// Names this device and this instance in event messages and topic templates (`{device}`, `{instance}`);
    /// by default the host name and the application's name.
    public var deviceName: String?
    public var instanceName: String?
    /// The environment `${NAME}` in the outputs' settings is read from.
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// Where snapshot JPEGs are written (default: `<state directory>/snapshots`).
    public var snapshotsDirectory: URL?
    /// Per-application state: `storage/` and `logs/` for the app, sockets, the compiled-model cache.
    public var stateDirectory: URL
    /// Compiled models are cached here so a restart does not recompile (default `<state directory>/model-cache`).
    public var modelCacheDirectory: URL?
    /// How often a status line per camera and app goes to standard error; nil for never.
    public var statusInterval: Duration? = .seconds(5)
    /// Camera timeouts and backoff.
    public var stallTimeout: Duration = .seconds(5)
    public var openTimeout: Duration = .seconds(10)
    public var reconnectMaxDelay: Duration = .seconds(5)
    /// While a camera is unreachable, the log says so at most this often (`StreamSource.outageLogInterval`).
    public var cameraLogInterval: Duration = .seconds(600)
    /// OpenVINO's performance hint; nil chooses: `latency` for one camera (each inference on every core),
    /// `throughput` for several (one inference per core, several in flight).
    public var inferenceHint: InferenceModel.PerformanceHint?
    /// Whether a model called on every frame of a camera runs on each frame as it is decoded, before the
    /// application's call (`FrameLookahead`; `vantage run --no-infer-ahead` turns it off).
    public var inferAhead = true
    /// Frame slots per camera shared with the application (the decoder, the latest frame and the app's batches).
    public var slotsPerCamera = 4
    /// Tensor slots an application may fill at once, and their size.
    public var tensorSlots = 8
    public var tensorSlotBytes = 16 << 20
    /// An application that exits or crashes is restarted after this delay, doubled each time up to the maximum.
    public var appRestartInitialDelay: Duration = .milliseconds(500)
    public var appRestartMaxDelay: Duration = .seconds(30)
    /// An application that sends nothing for this long while its cameras still run is considered hung, killed and
    /// restarted. Frames are asked for many times a second, so the default is generous.
    public var appHangTimeout: Duration = .seconds(30)
    /// How long an application may take to connect after it started.
    public var appConnectTimeout: Duration = .seconds(30)
    /// Where to find code-node executables given by bare name, before the package's `src/` and PATH
    /// (by default, the folder of the `vantage` binary).
    public var executableSearchPath: [URL] = []
    /// Where Python code nodes' virtual environments are cached (by the digest of their dependencies); by default
    /// `~/.cache/vantage/python`.
    public var pythonCacheDirectory: URL?
    /// The address the ports of `networkRoutingRules` are opened on: the loopback interface unless told otherwise.
    public var publishAddress = "127.0.0.1"
    /// Variables added to every code node's environment (an instance's AWS credentials as `AWS_*`). Secret: never
    /// logged.
    public var applicationEnvironment: [String: String] = [:]
    /// Run each code node in a private mount namespace where `/panorama` and `/opt/aws/panorama/{storage,logs}` are
    /// its folders, when this machine allows one (bubblewrap; root or unprivileged user namespaces).
    public var panoramaMounts = true
    /// After the last file source ended, how long code nodes may go on before they are stopped (SIGTERM, then
    /// SIGKILL), so that an app looping on `get()` inside `try: … except: pass` cannot keep the run alive.
    public var endGracePeriod: Duration = .seconds(10)

    public init(stateDirectory: URL) {
        self.stateDirectory = stateDirectory
    }
}
