// VantageRuntime: runs an application — its cameras, models and code nodes — and serves the live view, the
// status endpoint and the event sink. `vantage run` is a thin shell around `Runtime`.
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import VantageApp
import VantageCore
import VantageInference
import VantageMedia
import VantageOutputs
import VantageProtocol

/// The edge runtime for one application.
public final class Runtime: Service, Sendable {
    // Everything is set up in init and read-only afterwards; what changes while it runs is in Mutex values.
    public let application: ResolvedApplication
    public let configuration: RuntimeConfiguration
    /// Shares camera streams with the other runtimes of this process (the agent's in-process runner); nil: this
    /// runtime's cameras are its own.
    let cameraHub: CameraHub?
    let logger: Logger
    let cameras: [CameraStream]
    /// The application's name for each camera stream (a shared stream's own name is its first user's).
    let cameraNames: [String]
    /// Where each camera's frames are in shared memory.
    let cameraPaths: [String]
    /// The main streams of cameras that detect on a sub-stream (`CameraSource.detectURL`), by camera name: read, not
    /// decoded, for clips.
    let mainStreams: [String: CameraStream]
    /// Event snapshots decoded from those main streams (not from a file's), by camera name.
    let stills: [String: MainStreamStills]
    /// Whether the cameras were started and stopped (each happens once; stopping first means they never start).
    private let cameraPhase = Mutex(PartPhase.idle)
    private let forwardersPhase = Mutex(PartPhase.idle)
    /// Ends the run (see `RuntimeSupervisor`): the code nodes, the analytics nodes and the cameras' start count.
    let runEnd = RunEnd(parts: 3)
    private let sharedMemory: [SharedMemoryRegion]
    let models: ModelService
    let hosts: [AppHost]
    /// The annotated live view: made when HTTP serves it (`vantage run`) or the agent relays it; nil otherwise.
    public let liveView: LiveView?
    let events: EventSink
    /// The runtime's own outbox and sinks (`vantage run`); nil when events go to an outside ``EventRecorder`` (the
    /// agent's pipeline of the instance).
    let pipeline: EventPipeline?
    /// The configured outputs: sinks, rules, analytics, local retention.
    public let outputs: OutputsConfiguration
    let analytics: [AnalyticsRunner]
    let forwarders: [PortForwarder]
    let started = ContinuousClock.now
    let boundPort = Mutex<Int?>(nil)
    private let camerasStarted = Mutex<ContinuousClock.Instant?>(nil)
    /// The CPU time used when the cameras started (for the summary's `streamingCPU`).
    private let cpuAtCamerasStart = Mutex<CPUUse?>(nil)
    private let finalSummary = Mutex<RunSummary?>(nil)

    /// The folder of the running program (the `vantage` binary, or the test bundle).
    static var executableDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// `~/.cache/vantage/python`.
    static var defaultPythonCache: URL {
        FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/vantage/python")
    }

    /// Shared-memory file of a camera's frames.
    /// `PID-N`: names this runtime's shared-memory files, unique even with several runtimes in one
    /// process (`vantage agent` runs one per application instance, often with the same node names).
    let fileTag: String
    private static let runtimes = Mutex(0)

    /// A camera's frame buffers in shared memory.
    static func sharedMemoryPath(tag: String, camera: String) -> String { "/dev/shm/vantage-\(tag)-\(camera)" }

    /// The private folder of the code nodes' sockets (`VANTAGE_SOCKET`).
    let sockets: AppSocketDirectory

    /// The socket the code node `node` of this runtime connects to (for tests that play the code node).
    public func socketPath(ofNode node: String) -> String { sockets.socketPath(ofNode: node) }

    /// Loads the models and prepares cameras and code nodes on a thread of its own, and returns the runtime once it is
    /// ready; nothing runs until `run()`. Use this from async code: the construction blocks for as long as a model
    /// compiles or pip installs a code node's packages (minutes the first time), which on the cooperative pool would
    /// stall every other task of the process (on a 2-core device, the agent's heartbeats).
    ///
    /// `recorder` is where events are recorded (the agent's pipeline of the instance); nil makes the runtime's own
    /// pipeline (its outbox, its sinks, the events file). `cameraHub` shares camera streams with the other runtimes
    /// of this process that use the same hub: a camera read by two of them is decoded once.
    public static func make(
        spec: RuntimeSpec, recorder: (any EventRecorder)? = nil, cameraHub: CameraHub? = nil, logger: Logger
    ) async throws -> Runtime {
        try await onDedicatedThread(named: "vantage.runtime.make") { () throws -> Runtime in
            try Runtime(spec: spec, recorder: recorder, cameraHub: cameraHub, logger: logger)
        }
    }

    /// ``make(spec:recorder:cameraHub:logger:)`` for `application` run with `configuration`.
    public static func make(
        application: ResolvedApplication, configuration: RuntimeConfiguration, logger: Logger
    ) async throws -> Runtime {
        try await make(spec: RuntimeSpec(application: application, configuration: configuration), logger: logger)
    }

    /// Loads the models and prepares cameras and code nodes; nothing runs until `run()`. Blocks (see `make`, which
    /// async callers use).
    public convenience init(application: ResolvedApplication, configuration: RuntimeConfiguration, logger: Logger)
        throws
    {
        try self.init(spec: RuntimeSpec(application: application, configuration: configuration), logger: logger)
    }

    /// Loads the models and prepares cameras and code nodes for `spec`; nothing runs until `run()`. Blocks (see
    /// `make`, which async callers use).
    public init(
        spec: RuntimeSpec, recorder: (any EventRecorder)? = nil, cameraHub: CameraHub? = nil, logger: Logger
    ) throws {
        let application = spec.application
        let configuration = spec.configuration
        self.application = application
        self.configuration = configuration
        self.cameraHub = cameraHub
        self.logger = logger
        fileTag = "\(getpid())-\(Self.runtimes.withLock { $0 += 1; return $0 })"
        try FileManager.default.createDirectory(at: configuration.stateDirectory, withIntermediateDirectories: true)
        for notice in application.notices { logger.notice("\(notice)") }
        try Self.checkPorts(application: application, configuration: configuration)
        try Self.checkPanoramaPaths(application: application, configuration: configuration, logger: logger)
        let outputs = spec.outputs
        self.outputs = outputs
        // Frames and sockets of runs that were killed before they could remove them.
        let stale =
            SharedMemoryRegion.removeStale(in: "/dev/shm", prefix: "vantage-")
            + SharedMemoryRegion.removeStale(in: "/tmp", prefix: "vantage-")
            + AppSocketDirectory.candidates(stateDirectory: configuration.stateDirectory).reduce(0) {
                $0 + AppSocketDirectory.removeStale(in: $1)
            }
        if stale > 0 { logger.info("removed files of earlier runs that were killed", metadata: ["files": "\(stale)"]) }
        sockets = try AppSocketDirectory(
            stateDirectory: configuration.stateDirectory,
            longestNodeName: application.codeNodes.map(\.name.utf8.count).max() ?? 0)

        // Python code nodes' environments are prepared (checked, or installed the first time) while the models
        // load: both take a while, and neither needs the other. Each preparation blocks (it waits for pip) on a
        // Dispatch worker thread, and this thread waits for them below: both are off the cooperative pool as long
        // as the init itself is (`make` runs it on a dedicated thread).
        let pythonLaunches = Mutex<[String: Result<PythonLaunch, any Error>]>([:])
        let preparing = DispatchGroup()
        // A shell entry (`bash /panorama/setup.sh`) gets the same environment: such scripts end in `python3 app.py`.
        for node in application.codeNodes
        where PythonEnvironment.isPython(node.entry.executable) || PythonEnvironment.isShell(node.entry.executable) {
            let searchPath = configuration.executableSearchPath
            let cacheDirectory = configuration.pythonCacheDirectory ?? Self.defaultPythonCache
            DispatchQueue.global().async(group: preparing) {
                // Any Python entry (python3.8, /usr/bin/python3.8, …) runs with the host's Python 3.
                let result = Result { () throws -> PythonLaunch in
                    try PythonEnvironment.prepare(
                        node: node, executableDirectory: searchPath.first ?? Self.executableDirectory,
                        cacheDirectory: cacheDirectory, logger: logger)
                }
                pythonLaunches.withLock { $0[node.name] = result }
            }
        }
        defer { preparing.wait() }  // never leave a preparation running behind a failed start

        let cache =
            configuration.modelCacheDirectory
            ?? configuration.stateDirectory.appendingPathComponent("model-cache")
        // How frames reach the models decides how OpenVINO runs them. One at a time (one live camera, or only Python
        // code nodes: Panorama applications call the model for one stream after the other): LATENCY, each inference
        // on every core. Several in flight (several cameras, or one file read as fast as possible: decoded ahead,
        // its inferences run ahead four at once): THROUGHPUT, one inference per core. The inference threads are
        // pinned to cores only for several cameras: with one, its decoder is the thread that needs a core, and
        // pinned inference threads kept it from one (bench/run, docs/benchmarks.md: one camera 6-10 % faster
        // unpinned, under either hint; four cameras 4 % faster pinned).
        let python = application.codeNodes.map { PythonEnvironment.isPython($0.entry.executable) }
        let pythonOnly = !python.isEmpty && python.allSatisfy { $0 }
        let single = application.cameras.count == 1
        // Each camera's source (its sub-stream when it has one): what it is decides the models' settings below.
        var sources = application.cameras.map { camera in
            var source = StreamSource(
                name: camera.name, url: camera.detectURL ?? camera.url, username: camera.username,
                password: camera.password)
            source.transport = configuration.transport
            source.realtime = configuration.realtime
            source.loop = configuration.loop
            source.stallTimeout = configuration.stallTimeout
            source.openTimeout = configuration.openTimeout
            source.reconnectMaxDelay = configuration.reconnectMaxDelay
            source.outageLogInterval = configuration.cameraLogInterval
            return source
        }
        let filesAhead = !sources.isEmpty && configuration.inferAhead && sources.allSatisfy(\.waitsForConsumer)
        let hint =
            configuration.inferenceHint ?? (pythonOnly || (single && !filesAhead) ? .latency : .throughput)
        // Files whose inferences run ahead on every core get twice the requests (RequestQueue).
        let queue: RequestQueue =
            filesAhead && hint == .throughput ? (single ? .doubledForOneCamera : .doubled) : .optimal
        // A file read as fast as possible is decoded ahead of the application; one camera's decoder is the only source
        // of frames, so it runs further ahead and fills the gaps the cores leave: six frames (bench/run: idle 1.4 ->
        // 0.8 core-ms a frame), twelve when its inferences run ahead on every core, since an I-frame takes several
        // P-frames' decoding time and inference must not run dry meanwhile (interleaved runs: idle 0.97 -> 0.43).
        if single { sources[0].framesAhead = queue == .doubledForOneCamera ? 12 : 6 }
        models = try ModelService(
            models: application.models, cacheDirectory: cache, hint: hint, pinned: hint == .throughput && !single,
            tensorsFromDescriptors: python.contains(true), inferAhead: configuration.inferAhead, queue: queue,
            logger: logger)
        try models.configureDetection(outputs.detection)

        var cameras: [CameraStream] = []
        var names: [String] = []
        var paths: [String] = []
        var regions: [SharedMemoryRegion] = []
        var index: [String: Int] = [:]
        var mainStreams: [String: CameraStream] = [:]
        let slotBytes = FrameStorage.slotBytes()
        for (camera, cameraSource) in zip(application.cameras, sources) {
            var source = cameraSource
            if camera.detectURL != nil {
                // Frames come from the sub-stream; clips from the main stream, read without decoding.
                var main = source
                main.url = camera.url
                main.decodes = false
                source.packetRingSeconds = 0
                mainStreams[camera.name] = CameraStream(
                    source: main, storage: MainStreamStorage.make(), logger: logger)
            }
            let tag = fileTag
            let make = { (slots: Int) throws -> (CameraStream, SharedMemoryRegion, String) in
                let path = Self.sharedMemoryPath(tag: tag, camera: camera.name)
                let region = try SharedMemoryRegion(creating: path, size: slots * slotBytes)
                let stream = CameraStream(
                    source: source,
                    storage: FrameStorage(base: region.base, slotCount: slots, slotCapacity: slotBytes, owner: region),
                    logger: logger)
                return (stream, region, path)
            }
            index[camera.name] = cameras.count
            names.append(camera.name)
            if let hub = cameraHub {
                // Another instance in this process may read the same camera: one stream, twice the frame buffers.
                let key = CameraHub.Key(
                    url: source.url, username: camera.username, password: camera.password,
                    transport: "\(configuration.transport)", realtime: configuration.realtime, loop: configuration.loop)
                let (stream, path) = try hub.acquire(key) {
                    try make(configuration.slotsPerCamera * 2 + source.extraSlots)
                }
                cameras.append(stream)
                paths.append(path)
            } else {
                let (stream, region, path) = try make(configuration.slotsPerCamera + source.extraSlots)
                regions.append(region)
                cameras.append(stream)
                paths.append(path)
            }
        }
        self.cameras = cameras
        self.mainStreams = mainStreams
        var stills: [String: MainStreamStills] = [:]
        for (name, main) in mainStreams { stills[name] = MainStreamStills(camera: name, stream: main, logger: logger) }
        self.stills = stills
        cameraNames = names
        cameraPaths = paths
        sharedMemory = regions
        liveView =
            configuration.httpPort == nil && !configuration.liveRelay
            ? nil
            : LiveView(
                configuration: LiveView.Configuration(
                    appName: application.name, maxFramesPerSecond: configuration.liveFramesPerSecond),
                logger: logger)
        for camera in application.cameras { liveView?.addStream(camera.name) }
        let pipeline =
            recorder == nil
            ? try Self.makePipeline(outputs, application: application, configuration: configuration, logger: logger)
            : nil
        self.pipeline = pipeline
        let clipCameras = Self.clipCameras(names: names, cameras: cameras, mainStreams: mainStreams)
        events = EventSink(
            recorder: recorder ?? pipeline!,
            snapshotsDirectory: configuration.snapshotsDirectory
                ?? configuration.stateDirectory.appendingPathComponent("snapshots"),
            clipsDirectory: configuration.stateDirectory.appendingPathComponent("clips"),
            clipPreRoll: outputs.events.clipPreRoll, clipPostRoll: outputs.events.clipPostRoll,
            clipWriter: { name, from, to, file in
                guard let camera = clipCameras[name] else { throw RuntimeError("no camera named \(name)") }
                // The post-roll may still be on its way (a file read faster than real time is ahead, a camera behind).
                camera.waitForPackets(through: to, upTo: .seconds(max(0, to.timeIntervalSinceNow) + 10))
                _ = try camera.writeClip(from: from, to: to, into: file)
            }, logger: logger)
        var runners: [AnalyticsRunner] = []
        for node in outputs.analytics {
            guard
                let i = index[node.camera]
                    ?? names.firstIndex(where: { Self.graphNode(of: $0, in: application) == node.camera })
            else {
                throw RuntimeError(
                    "analytics node \(node.name): there is no camera \"\(node.camera)\" (cameras: "
                        + names.joined(separator: ", ") + ")")
            }
            runners.append(
                try AnalyticsRunner(
                    node: node, camera: cameras[i], cameraName: names[i], models: models, events: events,
                    liveView: liveView, application: application.name,
                    snapshotOverlays: outputs.events.snapshotOverlays, stills: stills[names[i]], logger: logger))
        }
        analytics = runners
        var hosts: [AppHost] = []
        preparing.wait()
        for node in application.codeNodes {
            let python = try pythonLaunches.withLock { $0[node.name] }?.get()
            hosts.append(
                try AppHost(
                    node: node, application: application.name, cameras: cameras, cameraNames: names,
                    cameraPaths: paths, cameraIndex: index, stills: names.map { stills[$0] }, models: models,
                    liveView: liveView, events: events,
                    configuration: configuration, fileTag: fileTag, socketPath: sockets.socketPath(ofNode: node.name),
                    python: python, logger: logger))
        }
        self.hosts = hosts
        var forwarders: [PortForwarder] = []
        for rule in application.routingRules {
            guard let hostPort = rule.hostPort, hostPort != rule.containerPort else {
                logger.notice(
                    "code node \(rule.node) listens on port \(rule.containerPort) itself (networkRoutingRules)")
                continue
            }
            forwarders.append(
                try PortForwarder(
                    node: rule.node, address: configuration.publishAddress, hostPort: hostPort,
                    containerPort: rule.containerPort, logger: logger))
        }
        self.forwarders = forwarders
    }

    /// The port the live view listens on, once it does.
    public var httpPort: Int? { boundPort.withLock { $0 } }

    /// The summary of the run, once it ended.
    public var summary: RunSummary? { finalSummary.withLock { $0 } }

    /// What went wrong for good, once the run ended: cameras that could not be read at all and code nodes that
    /// could not be started. Empty when the run succeeded.
    public var failures: [String] {
        cameras.compactMap { c in
            let s = c.snapshot
            return s.state == .failed ? (s.lastError ?? "camera \(c.source.name) failed") : nil
        }
            + hosts.compactMap { h in
                h.counters.withLock { $0.phase == .failed ? ($0.lastExit ?? "code node \(h.node.name) failed") : nil }
            }
    }

    /// Runs the runtime's parts as one `ServiceGroup` (see Runtime+Services.swift) until every source ended and the
    /// code nodes finished, `shutdown()`, or the graceful shutdown of the group this runtime runs in (Ctrl-C and
    /// SIGTERM under `vantage run`). Throws when a part failed (the live view's port taken), after stopping the rest.
    public func run() async throws {
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: parts(), logger: logger))
        defer {
            liveView?.shutdown()
            finalSummary.withLock { $0 = makeSummary() }
            for region in sharedMemory { region.removeFile() }
            for host in hosts { host.removeFiles() }
            sockets.remove()
        }
        try await group.run()
    }

    /// A service group for `vantage run`: the runtime, stopped gracefully by Ctrl-C and SIGTERM.
    public func serviceGroup() -> ServiceGroup {
        ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: self, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    }

    /// Once every camera is a file that has ended, code nodes get `endGracePeriod` to finish by themselves (the
    /// SDK tells them the end at their next `get()`); those still running then are stopped, SIGTERM then SIGKILL,
    /// and count as finished. An app that catches the end in a bare `except:` and loops on `get()` would otherwise
    /// keep the run alive for ever.
    func stopCodeAfterSourcesEnd() async {
        guard !cameras.isEmpty, !configuration.loop else { return }
        while !cameras.allSatisfy(\.isFinished) {
            do { try await Task.sleep(for: .milliseconds(200)) } catch { return }
        }
        let deadline = ContinuousClock.now + configuration.endGracePeriod
        func running() -> [AppHost] {
            hosts.filter { host in host.counters.withLock { $0.phase != .finished && $0.phase != .failed } }
        }
        while ContinuousClock.now < deadline && !running().isEmpty {
            do { try await Task.sleep(for: .milliseconds(200)) } catch { return }
        }
        for host in running() {
            let message =
                "the cameras' files ended \(configuration.endGracePeriod) ago and code node \(host.node.name) is still "
                + "running: stopping it (SIGTERM, then SIGKILL after 3 s)"
            logger.notice("\(message)")
            host.stop()
        }
    }

    /// Starts the cameras, unless the run is already stopping.
    func startCameras() {
        guard cameraPhase.withLock({ $0.start() }) else { return }
        camerasStarted.withLock { $0 = .now }
        cpuAtCamerasStart.withLock { $0 = CPUUse.now() }
        for main in mainStreams.values { main.start() }
        for camera in cameras {
            if let hub = cameraHub {
                // A shared stream starts with its first user (launch: onSignal does not pause a shared camera).
                hub.start(camera)
                continue
            }
            if application.camera(named: camera.source.name)?.launch == .onSignal {
                camera.pause()
                let node = graphNode(of: camera.source.name)
                logger.notice(
                    "camera waits for a resume signal (launch: onSignal)",
                    metadata: [
                        "camera": "\(camera.source.name)",
                        "resume": "vantage instances signal \(node) resume (POST /nodes/\(node)/resume)",
                    ])
            }
            camera.start()
        }
    }

    /// Stops the cameras (lets go of the shared ones); a later `startCameras()` starts nothing.
    func stopCameras() {
        guard cameraPhase.withLock({ $0.stop() }) else { return }
        for main in mainStreams.values { main.stop() }
        if let hub = cameraHub {
            for camera in cameras { hub.release(camera) }
        } else {
            for camera in cameras { camera.stop() }
        }
    }

    /// Where each camera's clips are cut from, by camera name: its main stream when it detects on a sub-stream,
    /// else the camera itself.
    static func clipCameras(names: [String], cameras: [CameraStream], mainStreams: [String: CameraStream]) -> [String:
        CameraStream]
    {
        Dictionary(uniqueKeysWithValues: zip(names, cameras)).merging(mainStreams) { _, main in main }
    }

    /// Opens the ports of networkRoutingRules, unless the run is already stopping.
    func startForwarders() {
        guard forwardersPhase.withLock({ $0.start() }) else { return }
        for forwarder in forwarders { forwarder.start() }
    }

    /// Closes the ports (those never opened too: their listening sockets were made with the runtime).
    func stopForwarders() {
        _ = forwardersPhase.withLock { $0.stop() }
        for forwarder in forwarders { forwarder.stop() }
    }

    /// Pauses or resumes a camera node's streams (Panorama's PAUSE and RESUME signals; `launch: onSignal` cameras
    /// start paused). `node` is a camera node of the graph (all its streams) or one stream's name. Returns the
    /// answer as JSON: `{"node": …, "signal": …, "streams": [{"name": …, "paused": …}]}`.
    public func signal(node: String, _ signal: String) throws -> String {
        let pause: Bool
        switch signal.lowercased() {
        case "pause": pause = true
        case "resume": pause = false
        default: throw RuntimeError("unknown signal \"\(signal)\": send pause or resume")
        }
        let targets = cameras.indices.filter { cameraNames[$0] == node || graphNode(of: cameraNames[$0]) == node }
        guard !targets.isEmpty else {
            let nodes = Array(Set(cameraNames.map { graphNode(of: $0) })).sorted()
            throw RuntimeError(
                "no camera node \"\(node)\" in \(application.name): camera nodes are \(nodes.joined(separator: ", "))")
        }
        if cameraHub != nil {
            throw RuntimeError(
                "camera node \"\(node)\" may be shared with other instances on this device: it is not paused")
        }
        for i in targets {
            if pause { cameras[i].pause() } else { cameras[i].resume() }
        }
        logger.notice("camera node \(pause ? "paused" : "resumed")", metadata: ["node": "\(node)"])
        let streams = targets.map { "{\"name\":\(jsonString(cameraNames[$0])),\"paused\":\(cameras[$0].isPaused)}" }
        return "{\"node\":\(jsonString(node)),\"signal\":\(jsonString(signal.lowercased())),\"streams\":["
            + streams.joined(separator: ",") + "]}"
    }

    private func graphNode(of name: String) -> String { Self.graphNode(of: name, in: application) }

    private static func graphNode(of name: String, in application: ResolvedApplication) -> String {
        application.camera(named: name)?.graphNode ?? name
    }

    /// Stops the run: every part stops, in order, and `run()` returns. May be called before `run()` and more than once.
    /// Gives running cameras new credentials (a rotated camera password) without stopping anything: each of
    /// `cameras` names a camera of this application by its name, with the same stream and other credentials; its
    /// stream uses them from its next connection. Answers the names of the cameras it updated.
    @discardableResult
    public func updateCameraCredentials(_ updated: [CameraSource]) -> [String] {
        var names: [String] = []
        for camera in updated {
            guard let index = cameraNames.firstIndex(of: camera.name) else { continue }
            cameras[index].updateCredentials(
                url: camera.detectURL ?? camera.url, username: camera.username, password: camera.password)
            mainStreams[camera.name]?.updateCredentials(
                url: camera.url, username: camera.username, password: camera.password)
            names.append(camera.name)
        }
        return names
    }

    public func shutdown() {
        runEnd.ended.set()
    }

    // MARK: Status

    private let rates = Mutex<[String: Double]>([:])

    /// Samples frames/s per camera and per code node once a second.
    func sampleRates() async throws {
        var previous: [String: UInt64] = [:]
        var last = ContinuousClock.now
        while !Task.isCancelled {
            try await Task.sleep(for: .seconds(1))
            let now = ContinuousClock.now
            let dt = (now - last).seconds
            last = now
            var current: [String: UInt64] = [:]
            for (i, c) in cameras.enumerated() { current["camera:" + cameraNames[i]] = c.snapshot.decoded }
            for h in hosts { current["app:" + h.node.name] = h.counters.withLock { $0.framesDelivered } }
            rates.withLock { r in
                for (k, v) in current { r[k] = Double(v &- (previous[k] ?? 0)) / dt }
            }
            previous = current
        }
    }

    /// The status document served at `/status`.
    public func status() -> StatusReport {
        let r = rates.withLock { $0 }
        return StatusReport(
            application: application.name,
            uptimeSeconds: (ContinuousClock.now - started).seconds,
            cameras: cameras.enumerated().map { i, c in
                StatusReport.Camera(
                    name: cameraNames[i], uri: c.source.redactedURL,
                    framesPerSecond: r["camera:" + cameraNames[i]] ?? 0,
                    counters: c.snapshot,
                    main: mainStreams[cameraNames[i]].map { mainStatus($0, camera: cameraNames[i]) })
            },
            applications: hosts.map { h in
                let s = h.counters.withLock { $0 }
                return StatusReport.Application(
                    node: h.node.name, phase: s.phase.rawValue, pid: s.pid, restarts: s.restarts, lastExit: s.lastExit,
                    framesPerSecond: r["app:" + h.node.name] ?? 0, framesDelivered: s.framesDelivered,
                    framesPut: s.framesPut, inferences: s.inferences, events: s.events,
                    decisionLatencyP50Ms: s.decisionLatency.percentile(0.5),
                    decisionLatencyP99Ms: s.decisionLatency.percentile(0.99))
            },
            models: models.entries.values.sorted { $0.node.name < $1.node.name }.map { e in
                let latency = e.latency.withLock { $0 }
                let ahead = models.aheadCounts(model: e.node.name)
                return StatusReport.Model(
                    name: e.node.name, inferences: e.inferences.load(ordering: .relaxed),
                    skippedFrames: e.skippedFrames.load(ordering: .relaxed), inferredAhead: ahead.answered,
                    wastedAhead: ahead.wasted,
                    latencyP50Ms: latency.percentile(0.5), latencyP99Ms: latency.percentile(0.99),
                    precision: e.model.precision)
            },
            analytics: analytics.map { a in
                let c = a.status
                return StatusReport.Analytics(
                    name: a.node.name, camera: a.node.camera, frames: c.frames, detections: c.detections,
                    stillFrames: c.stillFrames, events: c.events,
                    activeTracks: c.activeTracks, lineCounts: c.lineCounts, occupancy: c.occupancy,
                    lastError: c.lastError)
            },
            sinks: sinkStatus())
    }

    /// A main stream's status, with where the snapshots of its camera's events came from.
    private func mainStatus(_ main: CameraStream, camera: String) -> StatusReport.Camera.MainStream {
        var status = StatusReport.Camera.MainStream(uri: main.source.redactedURL, counters: main.snapshot)
        guard let counts = stills[camera]?.current else { return status }
        status.snapshots = counts.main
        status.snapshotFallbacks = counts.fallbacks
        status.lastSnapshotFallback = counts.lastFallback
        if counts.decoded > 0 {
            status.snapshotCPUMs = (Double(counts.cpuNanos) / Double(counts.decoded) / 1e4).rounded() / 100
        }
        return status
    }

    private func sinkStatus() -> [StatusReport.Sink] {
        guard let pipeline else { return [] }
        let backlog = Dictionary(((try? pipeline.outbox.backlog()) ?? []).map { ($0.sink, $0) }) { a, _ in a }
        let counters = pipeline.deliveryCounters
        return outputs.sinks.map { sink in
            StatusReport.Sink(
                name: sink.name, type: sink.kind.rawValue, pending: backlog[sink.name]?.pending ?? 0,
                delivered: counters[sink.name]?.delivered ?? 0, failures: counters[sink.name]?.failures ?? 0,
                lastError: backlog[sink.name]?.lastError)
        }
    }

    func statusJSON() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(status())) ?? Data("{}".utf8))
    }

    func reportStatus(every interval: Duration) async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            for line in status().lines { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        }
    }

    private func makeSummary() -> RunSummary {
        let seconds = (ContinuousClock.now - started).seconds
        // Frames the code nodes were given, and those the analytics nodes analysed.
        let frames =
            hosts.reduce(UInt64(0)) { $0 + $1.counters.withLock { $0.framesDelivered } }
            + analytics.reduce(UInt64(0)) { $0 + $1.counters.withLock { $0.frames } }
        var latency = LatencyHistogram()
        var restarts = 0
        for h in hosts {
            h.counters.withLock { s in
                restarts += s.restarts
                latency.merge(s.decisionLatency)
            }
        }
        var detections: UInt64 = 0
        for a in analytics {
            a.counters.withLock { c in
                detections += c.detections
                latency.merge(c.latency)
            }
        }
        var perCamera: [String: CameraCounters] = [:]
        for (i, c) in cameras.enumerated() { perCamera[cameraNames[i]] = c.snapshot }
        let streamingStart = camerasStarted.withLock { $0 }
        let startup = streamingStart.map { ($0 - started).seconds }
        let streaming = streamingStart.map { (ContinuousClock.now - $0).seconds }
        return RunSummary(
            seconds: seconds, frames: frames, framesPerSecond: seconds > 0 ? Double(frames) / seconds : 0,
            startupSeconds: startup,
            streamingFramesPerSecond: streaming.flatMap { $0 > 0 ? Double(frames) / $0 : nil },
            events: events.count, dropped: perCamera.values.reduce(0) { $0 + $1.dropped }, appRestarts: restarts,
            decisionLatencyP50Ms: latency.percentile(0.5), decisionLatencyP99Ms: latency.percentile(0.99),
            detections: detections, cameras: perCamera,
            streamingCPU: cpuAtCamerasStart.withLock { $0 }.map { CPUUse.now().since($0) })
    }
}
