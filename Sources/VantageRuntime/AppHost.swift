import Foundation
import Logging
import Synchronization
import VantageApp
import VantageCore
import VantageInference
import VantageMedia
import VantageProtocol

/// Runs one code node: starts its process, serves the Vantage app protocol to it, restarts it with backoff when
/// it crashes, exits or hangs up, and counts what it does. The runtime and the cameras keep running meanwhile.
final class AppHost: @unchecked Sendable {
    // Unchecked: `overlayScratch` is touched only by the connection's thread (one at a time: a restart serves after
    // the previous connection ended). The per-run state (`process`, `channel`) is in `running` (Mutex), the counters
    // in Mutex/Atomic values; the rest is set in init and read-only afterwards.
    enum Phase: String, Codable, Sendable { case starting, running, restarting, finished, failed }

    struct Counters: Sendable {
        var phase: Phase = .starting
        var restarts = 0
        var lastExit: String?
        /// Why the runtime ended the current process itself (hung, never connected), told with its exit.
        var stopNote: String?
        var pid: Int32 = 0
        var batches: UInt64 = 0
        var framesDelivered: UInt64 = 0
        var framesPut: UInt64 = 0
        var inferences: UInt64 = 0
        var events: UInt64 = 0
        var decisionLatency = LatencyHistogram()
    }

    let node: CodeNode
    let application: String
    /// How to start a Python node (interpreter, SDK on PYTHONPATH); nil for other programs.
    private let python: PythonLaunch?
    /// Whether the node runs Python (Panorama applications call models with tensors they make).
    var isPython: Bool { python != nil }
    private let cameras: [CameraStream]
    /// Per camera (same index), its main stream's stills when it detects on a sub-stream.
    private let stills: [MainStreamStills?]
    private let models: ModelService
    private let liveView: LiveView?
    private let events: EventSink
    private let configuration: RuntimeConfiguration
    private let logger: Logger
    private let tensorArena: SharedMemoryRegion
    private let socketPath: String
    /// The runtime's `PID-N` tag in its file names.
    private let fileTag: String
    /// The application's name and the shared-memory path of each camera stream (by index in `cameras`).
    private let cameraNames: [String]
    private let cameraPaths: [String]
    private let storageDirectory: URL
    private let logsDirectory: URL
    /// Media input ports and the indices (into `cameras`) of the streams wired to each.
    private let mediaInputs: [String: [Int]]
    /// Output ports wired to the live view.
    private let liveViewPorts: Set<String>
    let counters = Mutex(Counters())
    private let stopping = Atomic<Bool>(false)
    /// Set by `stop()` (and when supervision ends): wakes `enforceStop`, which kills a process that ignores SIGTERM.
    private let stopRequested = AsyncLatch()
    /// When the application was last told its sources ended (monotonic ns).
    private let lastEndAnswer = Atomic<UInt64>(0)
    /// When the application last sent anything (monotonic ns): the hang watchdog's clock.
    private let lastMessage = Atomic<UInt64>(0)
    private let signal = FrameSignal()
    private struct Running {
        var process: ChildProcess?
        var channel: MessageChannel?
    }
    private let running = Mutex(Running())

    init(
        node: CodeNode, application: String, cameras: [CameraStream], cameraNames: [String], cameraPaths: [String],
        cameraIndex: [String: Int], stills: [MainStreamStills?] = [],
        models: ModelService, liveView: LiveView?, events: EventSink, configuration: RuntimeConfiguration,
        fileTag: String, socketPath: String, python: PythonLaunch? = nil, logger: Logger
    ) throws {
        self.fileTag = fileTag
        self.cameraNames = cameraNames
        self.cameraPaths = cameraPaths
        self.node = node
        self.application = application
        self.python = python
        self.cameras = cameras
        self.stills = stills
        self.models = models
        self.liveView = liveView
        self.events = events
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "app.node"] = "\(node.name)"
        self.logger = logger
        var media: [String: [Int]] = [:]
        for port in node.inputs {
            if case .cameras(let names) = port.binding { media[port.name] = names.compactMap { cameraIndex[$0] } }
        }
        mediaInputs = media
        liveViewPorts = Set(node.outputs.filter { $0.type == .media && !$0.sinks.isEmpty }.map(\.name))
        let base = configuration.stateDirectory.appendingPathComponent(node.name)
        storageDirectory = base.appendingPathComponent("storage")
        logsDirectory = base.appendingPathComponent("logs")
        for dir in [storageDirectory, logsDirectory] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
        self.socketPath = socketPath
        tensorArena = try SharedMemoryRegion(
            creating: "/dev/shm/vantage-\(fileTag)-\(node.name)-tensors",
            size: configuration.tensorSlots * configuration.tensorSlotBytes)
        for camera in cameras { camera.addObserver(signal) }
    }

    /// Every frame source of this node has ended and nothing new is left to deliver.
    private var sourcesEnded: Bool {
        mediaInputs.values.allSatisfy { indices in indices.allSatisfy { cameras[$0].isFinished } }
    }

    // MARK: Supervision

    /// Runs the node until it finishes (its sources ended and it exited) or the runtime stops; meanwhile the lines
    /// it writes into its logs folder go to the runtime's log.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                let collector = AppLogCollector(directory: logsDirectory, node: node.name, logger: logger)
                await collector.run { self.stopping.load(ordering: .relaxed) }
            }
            group.addTask { [self] in await enforceStop() }
            await supervise()
            stopRequested.set()  // supervision is over: `enforceStop` finds nothing left to stop
            group.cancelAll()
        }
    }

    private func supervise() async {
        var delay = configuration.appRestartInitialDelay
        while !stopping.load(ordering: .relaxed) {
            let started = ContinuousClock.now
            let outcome = await runOnce()
            if stopping.load(ordering: .relaxed) { break }
            if outcome == .finished {
                counters.withLock { $0.phase = .finished }
                logger.info("application finished")
                return
            }
            if ContinuousClock.now - started > .seconds(30) { delay = configuration.appRestartInitialDelay }
            counters.withLock {
                $0.phase = .restarting; $0.restarts += 1
            }
            let last = counters.withLock { $0.lastExit ?? "" }
            logger.warning(
                "application stopped; restarting", metadata: ["reason": "\(last)", "delay": "\(delay)"])
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, configuration.appRestartMaxDelay)
        }
        counters.withLock { if $0.phase != .failed { $0.phase = .finished } }
    }

    /// Removes the node's shared-memory and socket files (at the end of the run).
    func removeFiles() {
        tensorArena.removeFile()
        unlink(socketPath)
    }

    /// Stops the node: terminates its process (SIGTERM, then SIGKILL after 3 s: see `enforceStop`) and closes its
    /// connection.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        signal.notify()
        let (process, channel) = running.withLock { ($0.process, $0.channel) }
        if let process, !process.hasExited {
            // SIGTERM first, the connection left open: an app that catches the SystemExit and asks again waits on a
            // get() that no longer answers rather than spinning on a closed connection.
            Self.terminate(process)
        } else {
            channel?.close()
        }
        stopRequested.set()
    }

    /// The one scheduled kill of a stop: once `stop()` sent SIGTERM, the process gets 3 s to exit; then its
    /// connection is closed and it is killed. Runs beside the supervision for as long as it does.
    private func enforceStop() async {
        await stopRequested.wait()
        guard let process = running.withLock({ $0.process }), !process.hasExited else { return }
        let exited = await process.waitForExit(upTo: .seconds(3))
        running.withLock { $0.channel }?.close()
        if !exited { Self.killHard(process) }
    }

    /// Whether the process is `bwrap` running the node's program in its mount namespace.
    static func isWrapped(_ process: ChildProcess) -> Bool {
        process.process.executableURL?.lastPathComponent == "bwrap"
    }

    /// Under `bwrap`, the program it runs (its children); otherwise none.
    static func wrappedPrograms(of process: ChildProcess) -> [Int32] {
        guard isWrapped(process) else { return [] }
        let pid = process.processIdentifier
        let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        return children.split(separator: " ").compactMap { Int32($0) }
    }

    /// The application's own process ID: under `bwrap`, its child (the program the entry names) once bwrap started
    /// it, else bwrap's own; otherwise the process itself. What `/status` shows and what a user signals: it is
    /// read again when the application connects, by which time the program surely runs.
    static func programPID(of process: ChildProcess) -> Int32 {
        wrappedPrograms(of: process).first ?? process.processIdentifier
    }

    /// SIGKILL to the application and, under `bwrap`, to the program it runs.
    static func killHard(_ process: ChildProcess) {
        for child in wrappedPrograms(of: process) { kill(child, SIGKILL) }
        kill(process.processIdentifier, SIGKILL)
    }

    /// SIGTERM to the application: to the program itself, which under `bwrap` is bwrap's child (bwrap passes no
    /// signal on; killed, it takes its child with it).
    static func terminate(_ process: ChildProcess) {
        let children = wrappedPrograms(of: process)
        if children.isEmpty {
            kill(process.processIdentifier, SIGTERM)
        } else {
            for child in children { kill(child, SIGTERM) }
        }
    }

    private enum Outcome { case finished, stopped }

    private func runOnce() async -> Outcome {
        let listener: MessageListener
        let process: ChildProcess
        do {
            listener = try MessageListener(path: socketPath)
            process = try launch()
        } catch {
            counters.withLock {
                $0.lastExit = "\(error)"; $0.phase = .failed
            }
            logger.error("cannot start the application", metadata: ["error": "\(error)"])
            return .stopped
        }
        running.withLock { $0.process = process }
        counters.withLock {
            $0.pid = Self.programPID(of: process); $0.phase = .starting
        }
        // Serve the connection on a thread of its own: its reads block. Its inference requests run meanwhile as child
        // tasks here (several at once, answered as each is done), and all have ended before the outcome is decided.
        let (inferences, submit) = AsyncStream.makeStream(of: InferenceJob.self)
        let ended = await withDiscardingTaskGroup(returning: Bool.self) { group in
            group.addTask {
                await withDiscardingTaskGroup { jobs in
                    for await job in inferences { jobs.addTask(operation: job) }
                }
            }
            let ended: Bool = await withCheckedContinuation { continuation in
                let thread = Thread { [self] in
                    continuation.resume(returning: serve(listener: listener, process: process, inferences: submit))
                }
                thread.name = "app \(node.name)"
                thread.start()
            }
            submit.finish()
            return ended
        }
        // Give the process a moment to exit by itself, then make sure it is gone.
        if await !process.waitForExit(upTo: .seconds(ended ? 10 : 2)) {
            Self.terminate(process)
            if await !process.waitForExit(upTo: .seconds(2)) { Self.killHard(process) }
        }
        await process.waitForExit()
        // bwrap exits with 128 + N when the program it runs was killed by signal N.
        let wrapped = Self.isWrapped(process)
        let status = process.terminationStatus
        let reason =
            process.terminationReason == .uncaughtSignal
            ? "killed by signal \(status)"
            : wrapped && status > 128 && status < 128 + 65
                ? "killed by signal \(status - 128)" : "exited with status \(status)"
        counters.withLock { s in
            s.lastExit = s.stopNote.map { "\($0), then \(reason)" } ?? reason
            s.stopNote = nil
        }
        running.withLock { $0.process = nil }
        // Exit 0 after the end of its sources, or from a node no camera feeds (it serves HTTP, reads its own
        // sources): the node is done, not crashed.
        let fedByCameras = mediaInputs.values.contains { !$0.isEmpty }
        if (ended || !fedByCameras) && process.terminationReason == .exit && process.terminationStatus == 0 {
            return .finished
        }
        return .stopped
    }

    /// Panorama's paths for this node's processes, when the runtime can give it a mount namespace.
    var mounts: PanoramaMounts? {
        guard configuration.panoramaMounts, PanoramaMounts.unavailable == nil else { return nil }
        return PanoramaMounts(binds: [
            ("/panorama", node.sourceDirectory.path),
            ("/opt/aws/panorama/storage", storageDirectory.path),
            ("/opt/aws/panorama/logs", logsDirectory.path),
        ])
    }

    private func launch() throws -> ChildProcess {
        let process = Process()
        // A shell entry runs the shell; the Python it starts finds the package's environment first on PATH.
        let isShell = PythonEnvironment.isShell(node.entry.executable)
        let program =
            try (isShell ? nil : python?.interpreter)
            ?? Self.resolveExecutable(node, searchPath: configuration.executableSearchPath)
        if let mounts {
            process.executableURL = URL(fileURLWithPath: PanoramaMounts.program)
            process.arguments =
                mounts.arguments(workingDirectory: node.sourceDirectory.path) + [program.path] + node.entry.arguments
        } else {
            process.executableURL = program
            process.arguments = node.entry.arguments
        }
        process.currentDirectoryURL = node.sourceDirectory
        var environment = ProcessInfo.processInfo.environment
        // The operator's own AWS credentials never reach an application by inheritance: an instance gets AWS_* only
        // through `applicationEnvironment` (Panorama gave each application its own role's credentials).
        for key in environment.keys where key.hasPrefix("AWS_") { environment[key] = nil }
        for (k, v) in python?.environment ?? [:] { environment[k] = v }
        if isShell, let python {
            let bin = python.interpreter.deletingLastPathComponent().path
            environment["PATH"] = bin + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        }
        for (k, v) in node.entry.environment { environment[k] = v }
        // A home of its own, as in Panorama's container: boto3 and the AWS SDKs read ~/.aws by themselves, and the
        // operator's files must not reach the application (it gets credentials only through applicationEnvironment).
        let home = storageDirectory.deletingLastPathComponent().appendingPathComponent("home")
        try? FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        environment["HOME"] = home.path
        for (k, v) in configuration.applicationEnvironment { environment[k] = v }
        environment["VANTAGE_SOCKET"] = socketPath
        environment["VANTAGE_NODE"] = node.name
        environment["VANTAGE_APPLICATION"] = application
        environment["VANTAGE_STORAGE"] = storageDirectory.path
        environment["VANTAGE_LOGS"] = logsDirectory.path
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        // Standard output carries the event stream: the application's prints go to standard error instead, through
        // a relay that holds back a line repeated many times a second.
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let child = ChildProcess(process)
        do {
            try child.run()
        } catch {
            throw RuntimeError(
                "cannot start code node \(node.name) (\(program.path)): "
                    + "\(error.localizedDescription); check the entry in its descriptor.json")
        }
        try? output.fileHandleForWriting.close()
        AppOutputRelay(pipe: output).start(name: "app \(node.name) output")
        logger.info("application started", metadata: ["pid": "\(Self.programPID(of: child))"])
        return child
    }

    /// An entry's executable: absolute as given; with a slash, relative to the package's `src/`; a bare name beside
    /// the `vantage` binary, in `src/`, then on PATH.
    static func resolveExecutable(_ node: CodeNode, searchPath: [URL]) throws -> URL {
        let name = node.entry.executable
        let fm = FileManager.default
        if name.hasPrefix("/") { return URL(fileURLWithPath: name) }
        if name.contains("/") { return node.sourceDirectory.appendingPathComponent(name) }
        var candidates = searchPath
        candidates.append(node.sourceDirectory)
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            candidates.append(URL(fileURLWithPath: String(dir)))
        }
        for dir in candidates {
            let url = dir.appendingPathComponent(name)
            if fm.isExecutableFile(atPath: url.path) { return url }
        }
        throw RuntimeError(
            "code node \(node.name): cannot find the executable \(name) of its descriptor's entry beside vantage, "
                + "in \(node.sourceDirectory.path) or on PATH; build it (make build) or fix entry.path")
    }

    // MARK: The connection

    /// Frames the application holds per media port: the current batch (released at its next `get`).
    private struct Held {
        var batches: [String: [HeldFrame]] = [:]
        var lastSequence: [UInt64]
    }

    private struct HeldFrame {
        var camera: Int
        var info: FrameInfo
    }

    private let held = Mutex(Held(lastSequence: []))

    /// Serves one connection until it closes. Returns true when the application was told the sources ended.
    /// One inference request of a connection, run as a child task of `runOnce`.
    typealias InferenceJob = @Sendable () async -> Void

    private func serve(
        listener: MessageListener, process: ChildProcess, inferences: AsyncStream<InferenceJob>.Continuation
    ) -> Bool {
        // Accept, giving up if the process dies or takes too long.
        let deadline = ContinuousClock.now + configuration.appConnectTimeout
        var accepted: MessageChannel?
        while accepted == nil {
            if stopping.load(ordering: .relaxed) || process.hasExited { return false }
            if ContinuousClock.now > deadline {
                counters.withLock { $0.stopNote = "did not connect within \(configuration.appConnectTimeout)" }
                return false
            }
            accepted = try? listener.accept(timeoutMillis: 100)
        }
        let channel = accepted!
        // Connected: under `bwrap` the program surely runs now, so its own ID replaces bwrap's.
        counters.withLock { $0.pid = Self.programPID(of: process) }
        lastMessage.store(monotonicNanos(), ordering: .relaxed)
        running.withLock { $0.channel = channel }
        held.withLock { $0 = Held(lastSequence: Array(repeating: 0, count: cameras.count)) }
        defer {
            channel.close()
            releaseAllHeld()
            running.withLock { $0.channel = nil }
        }
        let endSent = Atomic<Bool>(false)
        let getQueue = GetQueue()
        let delivery = Thread { [self] in
            deliverFrames(channel: channel, queue: getQueue, endSent: endSent, process: process)
        }
        delivery.name = "app \(node.name) frames"
        delivery.start()
        defer { getQueue.close(); signal.notify() }

        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var writer = WireWriter()
        // Every message is decoded and checked here before anything acts on it: a bad one is answered with a
        // bad-request error and the connection goes on (the message's length kept the stream in step).
        var decoder = AppRequestDecoder(
            limits: AppRequestLimits(
                tensorSlots: configuration.tensorSlots, tensorSlotBytes: configuration.tensorSlotBytes))
        var badRequests = 0
        func decode(type: UInt16, payloadLength: Int) throws(ProtocolError) -> AppRequest {
            let decoded = buffer.withUnsafeBytes { raw in
                let payload = UnsafeRawBufferPointer(
                    rebasing: raw[messageHeaderSize..<messageHeaderSize + payloadLength])
                return Result { () throws(ProtocolError) -> AppRequest in
                    try decoder.decode(type: type, payload: payload)
                }
            }
            return try decoded.get()
        }
        do {
            let hello = try channel.receive(into: &buffer, maxLength: Self.maxMessageBytes)
            guard hello.type == MessageType.hello.rawValue,
                case .hello = try decode(type: hello.type, payloadLength: hello.payloadLength)
            else {
                throw ProtocolError("the application spoke before saying hello")
            }
            writer.begin(.config)
            let config = try JSONEncoder().encode(makeConfig())
            writer.raw(config)
            try channel.send(&writer)
            counters.withLock { $0.phase = .running }
            while true {
                let header = try channel.receive(into: &buffer, maxLength: Self.maxMessageBytes)
                lastMessage.store(monotonicNanos(), ordering: .relaxed)
                let request: AppRequest
                do {
                    request = try decode(type: header.type, payloadLength: header.payloadLength)
                } catch {
                    badRequests += 1
                    logger.log(
                        level: badRequests == 1 ? .warning : .debug, "application sent a bad request",
                        metadata: ["error": "\(error)", "bad.requests": "\(badRequests)"])
                    try sendError(.badRequest, error.message, requestId: header.requestId, channel: channel)
                    continue
                }
                try handle(
                    request, requestId: header.requestId, channel: channel, writer: &writer, getQueue: getQueue,
                    inferences: inferences)
            }
        } catch {
            if !stopping.load(ordering: .relaxed) && !endSent.load(ordering: .relaxed) {
                logger.debug("application connection closed", metadata: ["reason": "\(error)"])
            }
        }
        return endSent.load(ordering: .relaxed)
    }

    private func makeConfig() -> AppConfig {
        var cameraConfigs: [CameraConfig] = []
        for (i, camera) in cameras.enumerated() {
            let storage = camera.storage
            cameraConfigs.append(
                CameraConfig(
                    name: cameraNames[i], uri: camera.source.redactedURL, sharedMemoryPath: cameraPaths[i],
                    slotCount: storage.slotCount,
                    slotCapacity: storage.slotCapacity))
        }
        let inputs = node.inputs.map { port -> PortConfig in
            switch port.binding {
            case .cameras: return PortConfig(name: port.name, type: port.type.rawValue, cameras: mediaInputs[port.name])
            case .parameter(let value):
                return PortConfig(name: port.name, type: port.type.rawValue, value: value.literal)
            default: return PortConfig(name: port.name, type: port.type.rawValue)
            }
        }
        return AppConfig(
            application: application, node: node.name, inputs: inputs,
            outputs: node.outputs.map { PortConfig(name: $0.name, type: $0.type.rawValue) }, models: models.configs,
            cameras: cameraConfigs,
            tensorArena: TensorArenaConfig(
                sharedMemoryPath: tensorArena.path, slotCount: configuration.tensorSlots,
                slotCapacity: configuration.tensorSlotBytes),
            storageDirectory: storageDirectory.path, logsDirectory: logsDirectory.path)
    }

    /// The largest message an application may send (an event's JSON is the only long one): bigger ones close the
    /// connection before anything is allocated for them.
    static let maxMessageBytes = 16 << 20

    private func handle(
        _ request: AppRequest, requestId: UInt32, channel: MessageChannel, writer: inout WireWriter,
        getQueue: GetQueue, inferences: AsyncStream<InferenceJob>.Continuation
    ) throws {
        switch request {
        case .get(let get):
            guard mediaInputs[get.port] != nil else {
                return try sendError(
                    .unknownPort,
                    "no media input named \(ProtocolError.prefix(get.port)); this node's media inputs are: "
                        + mediaInputs.keys.sorted().joined(separator: ", "), requestId: requestId, channel: channel)
            }
            getQueue.post(
                GetRequest(
                    id: requestId, port: get.port, timeoutMillis: get.timeoutMillis ?? -1,
                    wantsImages: get.wantsImages))
            signal.notify()
        case .put(let put):
            try handlePut(put, requestId: requestId, channel: channel)
        case .infer(let infer):
            try handleInfer(infer, requestId: requestId, channel: channel, inferences: inferences)
        case .event(let event):
            do {
                try handleEvent(event)
                writer.begin(.ok, requestId: requestId)
                try channel.send(&writer)
            } catch let error as RemoteError {
                try sendError(error.code, error.message, requestId: requestId, channel: channel)
            } catch let error as ProtocolError {
                throw error
            } catch {
                try sendError(.eventRejected, "\(error)", requestId: requestId, channel: channel)
            }
        case .hello:
            try sendError(
                .badRequest, "hello is sent once, first; this connection said it already", requestId: requestId,
                channel: channel)
        case .bye:
            throw ProtocolError("the application said goodbye")
        }
    }

    private func sendError(
        _ code: RemoteErrorCode, _ message: String, requestId: UInt32, channel: MessageChannel
    ) throws(ProtocolError) {
        var w = WireWriter(capacity: 256)
        w.begin(.error, requestId: requestId)
        w.u32(code.rawValue)
        w.string(message)
        try channel.send(&w)
    }

    /// The held frame named by `ref`, if the application still holds it.
    private func heldFrame(_ ref: FrameRef) -> HeldFrame? {
        held.withLock { h in
            for batch in h.batches.values {
                for f in batch
                where f.camera == Int(ref.camera) && f.info.slot == Int(ref.slot)
                    && f.info.sequence == ref.sequence
                {
                    return f
                }
            }
            return nil
        }
    }

    private func staleFrame(_ ref: FrameRef) -> RemoteError {
        RemoteError(
            .unknownFrame,
            "frame \(ref.sequence) of camera \(ref.camera) is no longer held: use a frame before asking for the "
                + "next frames of its port")
    }

    private var overlayScratch: [Overlay] = []

    /// The application's overlays as the live view and snapshots draw them (into scratch storage reused per call).
    private func overlays(_ items: ArraySlice<OverlayItem>) -> [Overlay] {
        overlayScratch.removeAll(keepingCapacity: true)
        for item in items {
            let color = OverlayColor(
                red: UInt8((item.color >> 16) & 0xFF), green: UInt8((item.color >> 8) & 0xFF),
                blue: UInt8(item.color & 0xFF))
            switch item.kind {
            case .rect: overlayScratch.append(.rect(x0: item.x0, y0: item.y0, x1: item.x1, y1: item.y1, color: color))
            case .label: overlayScratch.append(.label(text: item.text, x: item.x0, y: item.y0, color: color))
            }
        }
        return overlayScratch
    }

    private func handlePut(_ put: AppPutRequest, requestId: UInt32, channel: MessageChannel) throws {
        let toLiveView = liveViewPorts.contains(put.port)
        let now = monotonicNanos()
        for item in put.frames {
            guard let frame = heldFrame(item.ref) else {
                try sendError(.unknownFrame, staleFrame(item.ref).message, requestId: requestId, channel: channel)
                continue
            }
            let camera = cameras[frame.camera]
            if toLiveView, let liveView {
                liveView.publish(stream: cameraNames[frame.camera], overlays: overlays(put.overlays[item.overlays])) {
                    guard camera.ensureBGR(slot: frame.info.slot) else { return nil }
                    return ImageBuffer(
                        base: camera.pixels(of: frame.info.slot), width: frame.info.width,
                        height: frame.info.height, stride: frame.info.stride)
                }
            }
            counters.withLock {
                $0.framesPut += 1
                $0.decisionLatency.record(nanos: now &- frame.info.decodedAtNanos)
            }
        }
    }

    private func handleInfer(
        _ infer: AppInferRequest, requestId: UInt32, channel: MessageChannel,
        inferences: AsyncStream<InferenceJob>.Continuation
    ) throws {
        let model = infer.model
        let wants = infer.wants
        switch infer.input {
        case .frame(let ref):
            guard let frame = heldFrame(ref) else {
                return try sendError(.unknownFrame, staleFrame(ref).message, requestId: requestId, channel: channel)
            }
            let camera = cameras[frame.camera]
            camera.retain(slot: frame.info.slot)  // kept until inference is done, even if the app moves on
            inferences.yield { [self] in
                defer { camera.release(slot: frame.info.slot) }
                await reply(requestId: requestId, channel: channel) { w in
                    try await models.inferFrame(model, camera: camera, frame: frame.info, wants: wants, into: &w)
                }
            }
        case .tensors(let tensors):
            var elements: [ElementType] = []
            elements.reserveCapacity(tensors.count)
            for tensor in tensors {
                guard let element = ElementType(rawValue: tensor.elementType.name) else {
                    return try sendError(
                        .badRequest, "tensor element type \(tensor.elementType.name) is not supported",
                        requestId: requestId, channel: channel)
                }
                elements.append(element)
            }
            // The decoder checked every slot and byte count against the arena: each tensor lies inside it.
            let arena = tensorArena
            inferences.yield { [self, elements] in
                await reply(requestId: requestId, channel: channel) { w in
                    let inputs = zip(tensors, elements).map { tensor, element in
                        TensorInput(
                            name: tensor.name, shape: tensor.shape, elementType: element,
                            data: UnsafeRawBufferPointer(
                                start: arena.base + tensor.arenaOffset, count: tensor.byteCount))
                    }
                    try await models.inferTensors(model, inputs: inputs, wants: wants, into: &w)
                }
            }
        }
    }

    /// Runs `body` to fill an `inferResult` reply, or sends its error.
    private func reply(
        requestId: UInt32, channel: MessageChannel, _ body: (inout WireWriter) async throws -> Void
    ) async {
        var w = WireWriter(capacity: 2048)
        w.begin(.inferResult, requestId: requestId)
        do {
            try await body(&w)
            counters.withLock { $0.inferences += 1 }
            try channel.send(&w)
        } catch {
            let code = (error as? RemoteError)?.code ?? .inferenceFailed
            try? sendError(code, "\(error)", requestId: requestId, channel: channel)
        }
    }

    private func handleEvent(_ event: AppEventRequest) throws {
        guard (try? JSONSerialization.jsonObject(with: Data(event.json.utf8))) is [String: Any] else {
            throw RemoteError(.eventRejected, "an event's payload must be a JSON object")
        }
        var snapshot: EventSink.Snapshot?
        if let ref = event.snapshot {
            guard let frame = heldFrame(ref) else { throw staleFrame(ref) }
            let camera = cameras[frame.camera]
            guard camera.ensureBGR(slot: frame.info.slot) else {
                throw RemoteError(.eventRejected, "the snapshot's frame could not be converted")
            }
            snapshot = EventSink.Snapshot(
                image: ImageBuffer(
                    base: camera.pixels(of: frame.info.slot), width: frame.info.width, height: frame.info.height,
                    stride: frame.info.stride),
                overlays: overlays(event.overlays[...]), stream: cameraNames[frame.camera])
            // A camera that detects on its sub-stream: the snapshot comes from its main stream, unless the application
            // was given this camera's pixels (it may have drawn on them: its published frame is its picture).
            if frame.camera < stills.count, let main = stills[frame.camera], !camera.convertsEagerly {
                snapshot?.main = main
                snapshot?.timeMicros = frame.info.timestampMicros
            }
        }
        try events.write(application: application, node: node.name, payload: event.json, snapshot: snapshot)
        counters.withLock { $0.events += 1 }
    }

    // MARK: Frame delivery

    struct GetRequest: Sendable {
        var id: UInt32
        var port: String
        var timeoutMillis: Int
        /// Whether the application reads pixels; if not, frames are not converted to BGR for it.
        var wantsImages: Bool
    }

    /// The `get` requests waiting for frames (normally at most one per media port).
    final class GetQueue: Sendable {
        private struct State {
            var requests: [GetRequest] = []
            var closed = false
        }
        private let state = Mutex(State())
        func post(_ r: GetRequest) { state.withLock { $0.requests.append(r) } }
        func close() { state.withLock { $0.closed = true } }
        var isClosed: Bool { state.withLock { $0.closed } }
        func take() -> [GetRequest] {
            state.withLock { s in
                defer { s.requests.removeAll(keepingCapacity: true) }
                return s.requests
            }
        }
    }

    /// Answers `get` requests as frames arrive: the newest frame of each camera on the port (latest wins), at least
    /// one of them new; a camera without a new frame repeats its last one, marked cached.
    ///
    /// It is also the hang watchdog: an application that asks for nothing for `appHangTimeout` while its sources
    /// still run is killed, and restarted like a crashed one.
    private func deliverFrames(
        channel: MessageChannel, queue: GetQueue, endSent: borrowing Atomic<Bool>, process: ChildProcess
    ) {
        var writer = WireWriter(capacity: 1024)
        var waiting: [(GetRequest, UInt64)] = []  // with its deadline (monotonic ns, 0 = none)
        let hangNanos = UInt64(configuration.appHangTimeout.seconds * 1e9)
        while !queue.isClosed && !stopping.load(ordering: .relaxed) {
            // The last message's time is read before the clock: read after, a message arriving in between would be
            // later than "now", and the unsigned difference would wrap into a hang (it killed healthy apps under load).
            let last = lastMessage.load(ordering: .relaxed)
            let now = monotonicNanos()
            if waiting.isEmpty && !sourcesEnded && now > last && now - last > hangNanos {
                let reason = "not responding: no request for \(configuration.appHangTimeout)"
                counters.withLock { $0.stopNote = reason }
                logger.warning(
                    "application \(reason); killing it", metadata: ["pid": "\(Self.programPID(of: process))"])
                Self.killHard(process)
                channel.close()
                return
            }
            for r in queue.take() {
                let deadline = r.timeoutMillis >= 0 ? monotonicNanos() + UInt64(r.timeoutMillis) * 1_000_000 : 0
                waiting.append((r, deadline))
            }
            var index = 0
            while index < waiting.count {
                let (request, deadline) = waiting[index]
                if tryDeliver(request, channel: channel, writer: &writer, endSent: endSent) {
                    waiting.remove(at: index)
                } else if deadline != 0 && monotonicNanos() > deadline {
                    writer.begin(.timeout, requestId: request.id)
                    try? channel.send(&writer)
                    waiting.remove(at: index)
                } else {
                    index += 1
                }
            }
            signal.wait(timeoutMillis: 50)
        }
    }

    /// Sends frames (or the end) for one request if there is something new. Returns whether it answered.
    private func tryDeliver(
        _ request: GetRequest, channel: MessageChannel, writer: inout WireWriter, endSent: borrowing Atomic<Bool>
    ) -> Bool {
        // A media input with no camera wired to it never returns frames (the request's timeout, if any, answers).
        guard let indices = mediaInputs[request.port], !indices.isEmpty else { return false }
        let previous = held.withLock { $0.batches[request.port] ?? [] }
        var batch: [HeldFrame] = []
        batch.reserveCapacity(indices.count)
        var fresh = 0
        for i in indices {
            let last = held.withLock { $0.lastSequence[i] }
            if let info = cameras[i].acquireLatest(after: last) {
                batch.append(HeldFrame(camera: i, info: info))
                fresh += 1
            } else if let old = previous.first(where: { $0.camera == i }) {
                cameras[i].retain(slot: old.info.slot)
                batch.append(old)
            }
        }
        if fresh == 0 {
            for f in batch { cameras[f.camera].release(slot: f.info.slot) }
            if indices.allSatisfy({ cameras[$0].isFinished }) {
                // The end was told already and the app asks again (a bare `except:` swallowed it): answer at most
                // ten times a second, so such a loop does not spin a core until the grace period stops it.
                let now = monotonicNanos()
                if endSent.load(ordering: .relaxed) && now &- lastEndAnswer.load(ordering: .relaxed) < 100_000_000 {
                    return false
                }
                lastEndAnswer.store(now, ordering: .relaxed)
                writer.begin(.end, requestId: request.id)
                endSent.store(true, ordering: .relaxed)
                try? channel.send(&writer)
                return true
            }
            return false
        }
        if request.wantsImages {
            for f in batch {
                cameras[f.camera].convertEagerly()
                cameras[f.camera].ensureBGR(slot: f.info.slot)
            }
        }
        writer.begin(.frames, requestId: request.id)
        writer.u32(UInt32(batch.count))
        for f in batch {
            let cached = previous.contains { $0.camera == f.camera && $0.info.sequence == f.info.sequence }
            writer.frame(
                FrameDescriptor(
                    ref: FrameRef(camera: UInt32(f.camera), slot: UInt32(f.info.slot), sequence: f.info.sequence),
                    width: UInt32(f.info.width), height: UInt32(f.info.height), stride: UInt32(f.info.stride),
                    timestampMicros: f.info.timestampMicros, isCached: cached))
        }
        held.withLock { h in
            h.batches[request.port] = batch
            for f in batch { h.lastSequence[f.camera] = max(h.lastSequence[f.camera], f.info.sequence) }
        }
        for f in previous { cameras[f.camera].release(slot: f.info.slot) }
        counters.withLock {
            $0.batches += 1
            $0.framesDelivered += UInt64(fresh)
        }
        try? channel.send(&writer)
        return true
    }

    private func releaseAllHeld() {
        let batches = held.withLock { h in
            defer { h.batches.removeAll() }
            return h.batches
        }
        for batch in batches.values {
            for f in batch { cameras[f.camera].release(slot: f.info.slot) }
        }
    }
}

extension ParameterValue {
    /// The value as the protocol's JSON literal.
    var literal: ParameterLiteral {
        switch self {
        case .string(let s): .string(s)
        case .int32(let i): .int(Int64(i))
        case .float32(let f): .float(Double("\(f)") ?? Double(f))  // 0.7, not 0.699999988
        case .boolean(let b): .bool(b)
        }
    }
}
