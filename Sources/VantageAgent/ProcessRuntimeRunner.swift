import Foundation
import Logging
import Synchronization
import VantageAPI
import VantageOutputs
import VantageRuntime

/// Runs each instance in a runtime worker of its own: a child process (`vantage agent-runtime`) that holds FFmpeg,
/// OpenVINO and the code nodes' hosts, so that nothing an application or a model does can take the agent down.
/// The agent keeps the instance's event pipeline (``InstanceEvents``): the worker sends each event over the pipe and
/// the agent records it in the instance's outbox before the application is answered. A worker that dies is reported
/// (log line, instance health ERROR, crash count) and started again after a pause that doubles from 1 s up to 30 s
/// (reset once a worker has run for a minute); the reconciler rolls back a new version whose worker keeps crashing
/// during its health check, as for any crash.
///
/// Each instance has its own worker, so one instance's crash never stops another. The price: two instances reading
/// the same camera each decode it (in process they shared one stream).
public struct ProcessRuntimeRunner: InstanceRunner {
    /// The `vantage` executable, run as `vantage agent-runtime`.
    public var executable: URL
    public var stateRoot: URL
    public var artifactsFolder: URL
    /// The instances' event pipelines.
    public var events: InstanceEvents
    public var executableSearchPath: [URL]
    public var pythonCacheDirectory: URL?
    /// Where crashes and recoveries are reported (health ERROR / RUNNING with the reason), besides the log.
    public var reporter: (any DeploymentReporter)?
    public var logLevel: Logger.Level
    public var logger: Logger
    /// The longest pause before a crashed worker starts again.
    public var maxRestartDelay: Duration = .seconds(30)
    /// Where watched instances' live frames go (nil: no live relay).
    public var live: LiveRelayHub?

    public init(
        executable: URL, stateRoot: URL, artifactsFolder: URL, events: InstanceEvents, executableSearchPath: [URL],
        pythonCacheDirectory: URL? = nil, reporter: (any DeploymentReporter)? = nil, logLevel: Logger.Level = .info,
        logger: Logger
    ) {
        self.executable = executable
        self.stateRoot = stateRoot
        self.artifactsFolder = artifactsFolder
        self.events = events
        self.executableSearchPath = executableSearchPath
        self.pythonCacheDirectory = pythonCacheDirectory
        self.reporter = reporter
        self.logLevel = logLevel
        self.logger = logger
    }

    public func start(_ instance: DesiredInstance, project: URL) async throws -> any RunningInstance {
        // The pipeline first, in the agent: the worker's first event is recorded there.
        // The spec is made here, in the agent (resolving the project, linking the model files, reading the outputs);
        // the worker runs it as it is.
        let runner = RuntimeRunner(
            stateRoot: stateRoot, artifactsFolder: artifactsFolder, events: events,
            executableSearchPath: executableSearchPath, pythonCacheDirectory: pythonCacheDirectory, logger: logger)
        let runtime = try runner.spec(for: instance, project: project)
        let pipeline = try await runner.recorder(instance, runtime)
        let spec = WorkerSpec(
            runtime: runtime, instanceID: instance.id, cameraIDs: instance.cameras.mapValues(\.cameraId),
            logLevel: logLevel.rawValue, agentPID: getpid())
        var instanceLogger = logger
        instanceLogger[metadataKey: "instance.id"] = "\(instance.id)"
        instanceLogger[metadataKey: "package.version"] = "\(instance.packageVersion)"
        let events = self.events
        let supervised = SupervisedRuntime(
            executable: executable, spec: spec, recorder: pipeline, reporter: reporter, maxDelay: maxRestartDelay,
            onStop: { events.release(instance.id) }, respec: { try runner.spec(for: $0, project: project) },
            live: live, logger: instanceLogger)
        do {
            try await supervised.startFirst()
        } catch {
            events.release(instance.id)
            throw error
        }
        return supervised
    }
}

/// One instance's worker process, started again when it dies.
final class SupervisedRuntime: RunningInstance, Sendable {
    let executable: URL
    /// What the worker runs (and a restarted worker runs): the spec it started with, with the camera credentials
    /// given since.
    var spec: WorkerSpec { state.withLock { $0.spec } }
    /// Makes the runtime spec of the instance with another desired state (new camera credentials).
    let respec: (@Sendable (DesiredInstance) throws -> RuntimeSpec)?
    /// The instance's pipeline in the agent, where the worker's events are recorded.
    let recorder: any EventRecorder
    /// Called once the instance stopped for good.
    let onStop: @Sendable () -> Void
    let reporter: (any DeploymentReporter)?
    let maxDelay: Duration
    let live: LiveRelayHub?
    let logger: Logger
    var instanceID: String { spec.instanceID }

    private struct State {
        var spec: WorkerSpec
        var process: Process?
        var stdin: LineWriter?
        var stopping = false
        /// The current worker said ready.
        var running = false
        /// Counters of workers that are gone, so health adds up across restarts.
        var baseFrames: UInt64 = 0
        var baseCrashes = 0
        var workerCrashes = 0
        var status: WorkerStatus?
        var lastError: String?
        /// The answer to the current start: ready (nil) or why not.
        var startWaiter: CheckedContinuation<String?, Never>?
        var startedAt = ContinuousClock.now
        var delay: Duration = .seconds(1)
        /// Standard error's last lines, for a crash report.
        var stderrTail: [String] = []
        /// The first line of a Swift crash report on standard error.
        var crashLine: String?
        /// Signalled when the current worker's standard error reached its end (the crash report is all read).
        var stderrEnded = DispatchSemaphore(value: 0)
    }

    private let state: Mutex<State>
    private let stopped = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let exited = Atomic(false)

    init(
        executable: URL, spec: WorkerSpec, recorder: any EventRecorder, reporter: (any DeploymentReporter)?,
        maxDelay: Duration, onStop: @escaping @Sendable () -> Void = {},
        respec: (@Sendable (DesiredInstance) throws -> RuntimeSpec)? = nil, live: LiveRelayHub? = nil,
        logger: Logger
    ) {
        self.live = live
        self.executable = executable
        self.state = Mutex(State(spec: spec))
        self.respec = respec
        self.recorder = recorder
        self.onStop = onStop
        self.reporter = reporter
        self.maxDelay = maxDelay
        self.logger = logger
    }

    /// Gives the running worker `instance`'s camera credentials (the instance differs from the one it runs in its
    /// cameras' credentials only): its streams use them from their next connection; nothing restarts. False when
    /// the new spec cannot be made or names other cameras: the caller deploys the instance again instead.
    func updateCameraCredentials(_ instance: DesiredInstance) async -> Bool {
        guard let respec, let runtime = try? respec(instance) else { return false }
        let cameras = runtime.application.cameras
        let writer = state.withLock { state -> LineWriter?? in
            guard cameras.map(\.name) == state.spec.runtime.application.cameras.map(\.name) else { return .none }
            state.spec.runtime = runtime
            state.spec.cameraIDs = instance.cameras.mapValues(\.cameraId)
            return .some(state.stdin)
        }
        guard let writer else { return false }
        if let writer { try? writer.send(SupervisorMessage.cameraCredentials(cameras)) }
        return true
    }

    var lastStatus: WorkerStatus? { state.withLock { $0.status } }

    /// The worker's last figures, its open cameras and how often it crashed.
    func metrics() -> [String: Double] {
        let (status, crashes) = state.withLock { ($0.status, $0.workerCrashes) }
        var metrics = status?.metrics ?? [:]
        metrics["cameras.open"] = Double(status?.camerasOpen ?? 0)
        metrics["instance.\(instanceID).runtime_crashes"] = Double(crashes)
        return metrics
    }
    var workerCrashes: Int { state.withLock { $0.workerCrashes } }

    /// Starts the first worker and waits until its instance runs; throws why it did not start (a worker that
    /// crashes while starting included).
    func startFirst() async throws {
        if let failure = await launch() {
            throw AgentError(failure)
        }
    }

    func health() -> InstanceHealthSample {
        state.withLock { state in
            var sample = InstanceHealthSample(
                framesInferred: state.baseFrames + (state.status?.framesInferred ?? 0),
                crashes: state.baseCrashes + state.workerCrashes + (state.status?.crashes ?? 0),
                lastError: state.lastError ?? state.status?.lastError)
            if state.status?.finished == true {
                sample.crashes = Int.max / 2
                sample.lastError = sample.lastError ?? "the application stopped by itself"
            }
            return sample
        }
    }

    func stop() async {
        let process = state.withLock { state -> Process? in
            state.stopping = true
            return state.process
        }
        defer { onStop() }
        guard let process, process.isRunning else { return }
        process.terminate()  // SIGTERM: the worker stops its instance as `vantage run` does on Ctrl-C
        let pid = process.processIdentifier
        let killer = Task {
            try await Task.sleep(for: .seconds(20))
            logger.warning("the runtime worker (pid \(pid)) did not stop within 20 s: killing it")
            kill(pid, SIGKILL)
        }
        await withCheckedContinuation { continuation in
            let already = stopped.withLock { waiting -> Bool in
                if exited.load(ordering: .acquiring) { return true }
                waiting = continuation
                return false
            }
            if already { continuation.resume() }
        }
        killer.cancel()
    }

    // MARK: The worker process

    /// Starts a worker and waits for its instance to run: nil, or why it did not.
    private func launch() async -> String? {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["agent-runtime"]
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        exited.store(false, ordering: .releasing)
        process.terminationHandler = { [self] process in
            let reason =
                process.terminationReason == .uncaughtSignal
                ? "killed by signal \(process.terminationStatus) (\(Self.signalName(process.terminationStatus)))"
                : "exit \(process.terminationStatus)"
            workerEnded(reason: reason)
        }
        return await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            state.withLock { state in
                state.startWaiter = continuation
                state.stderrTail = []
                state.crashLine = nil
                state.stderrEnded = DispatchSemaphore(value: 0)
            }
            do {
                try Spawner.shared.run(process)
            } catch {
                let waiter = state.withLock { state in
                    defer { state.startWaiter = nil }
                    return state.startWaiter
                }
                waiter?.resume(returning: "cannot start the runtime worker \(executable.path): \(error)")
                return
            }
            let writer = LineWriter(fd: input.fileHandleForWriting.fileDescriptor)
            let (stoppedMeanwhile, started) = state.withLock { state in
                state.process = process
                state.startedAt = .now
                return (state.stopping, state.spec)
            }
            // stop() ran between a restart's check and this start: this worker must not run the instance.
            if stoppedMeanwhile { process.terminate() }
            readChannel(output.fileHandleForReading, writer: writer)
            readErrors(errors.fileHandleForReading)
            do {
                try writer.send(SupervisorMessage.start(started))
            } catch {
                // It died at once; its end is reported by the termination handler.
            }
            // Only now may camera credentials go to this worker (after its start); ones given meanwhile follow.
            let latest = state.withLock { state in
                state.stdin = writer
                return state.spec
            }
            if latest.runtime.application.cameras != started.runtime.application.cameras {
                try? writer.send(SupervisorMessage.cameraCredentials(latest.runtime.application.cameras))
            }
        }
    }

    /// The worker's messages, on a thread of their own (storing an event blocks on SQLite).
    private func readChannel(_ pipe: FileHandle, writer: LineWriter) {
        let thread = Thread { [self] in
            let reader = LineReader(fd: pipe.fileDescriptor)
            let decoder = JSONDecoder()
            while true {
                let line: ArraySlice<UInt8>?
                do { line = try reader.next() } catch {
                    logger.error("the runtime worker broke the channel (\(error)): stopping it")
                    state.withLock { $0.process }?.terminate()
                    break
                }
                guard let line else { break }
                guard let message = try? decoder.decode(WorkerMessage.self, from: Data(line)) else {
                    logger.warning("the runtime worker sent a line that is not a message; ignored")
                    continue
                }
                handle(message, writer: writer)
            }
            try? pipe.close()
        }
        thread.name = "runtime worker \(spec.instanceID)"
        thread.start()
    }

    private func handle(_ message: WorkerMessage, writer: LineWriter) {
        switch message {
        case .ready:
            let (waiter, recovered) = state.withLock { state in
                defer { state.startWaiter = nil }
                state.running = true
                return (state.startWaiter, state.workerCrashes > 0)
            }
            waiter?.resume(returning: nil)
            live?.workerReady(instanceID, writer: writer)
            if recovered {
                logger.notice("the runtime worker runs the instance again")
                report(.running, "running again after the runtime crashed")
            }
        case .failed(let reason):
            let waiter = state.withLock { state in
                defer { state.startWaiter = nil }
                state.lastError = reason
                return state.startWaiter
            }
            waiter?.resume(returning: reason)
        case .status(let status):
            state.withLock { $0.status = status }
        case .event(let sequence, let event):
            do {
                let recorded = try recorder.record(event)
                try? writer.send(SupervisorMessage.stored(sequence: sequence, error: nil, recorded: recorded))
            } catch {
                try? writer.send(
                    SupervisorMessage.stored(
                        sequence: sequence, error: "the event could not be stored on the device: \(error)",
                        recorded: nil))
            }
        case .clip(let sequence, let file, let error):
            do {
                try recorder.clipFinished(sequence: sequence, file: file, error: error)
            } catch {
                logger.warning("the clip of an event could not be recorded: \(error)")
            }
        case .snapshot(let sequence, let file, let error):
            do {
                try recorder.snapshotFinished(sequence: sequence, file: file, error: error)
            } catch {
                logger.warning("the snapshot of an event could not be recorded: \(error)")
            }
        case .liveFrame(let stream, let jpeg, let time):
            live?.offer(instanceID, stream: stream, jpeg: jpeg, time: time)
        case .signalResult(let id, let ok, let message):
            live?.signalDone(id, CameraSignalResult(ok: ok, message: message))
        case .log(let line):
            var metadata = Logger.Metadata()
            for (key, value) in line.metadata { metadata[key] = "\(value)" }
            logger.log(level: Logger.Level(rawValue: line.level) ?? .info, "\(line.message)", metadata: metadata)
        }
    }

    /// The worker's standard error: a crash report, a library's message. Logged as warnings (at most 200 lines a
    /// start, so a worker cannot flood the log) and kept (the last 20) for the crash message.
    private func readErrors(_ handle: FileHandle) {
        let ended = state.withLock { $0.stderrEnded }
        let thread = Thread { [self] in
            defer { ended.signal() }
            let reader = LineReader(fd: handle.fileDescriptor, maxLine: 1 << 20)
            var logged = 0
            while let line = try? reader.next() {
                let text = String(decoding: line.prefix(2000), as: UTF8.self)
                state.withLock { state in
                    state.stderrTail.append(text)
                    if state.stderrTail.count > 20 { state.stderrTail.removeFirst() }
                    // Swift's own crash report: "Fatal error: …", "💣 Program crashed: …", then a long backtrace.
                    if state.crashLine == nil, text.contains("Fatal error") || text.contains("Program crashed") {
                        state.crashLine = text.trimmingCharacters(in: .whitespaces)
                    }
                }
                logged += 1
                if logged <= 200 { logger.warning("runtime worker: \(text)") }
            }
            try? handle.close()
        }
        thread.name = "runtime worker stderr"
        thread.start()
    }

    /// The worker process ended. Expected when stopping; while starting, the start fails with the reason; once
    /// running, a crash: counted, logged, reported, and followed by restarts with a growing pause.
    private func workerEnded(reason: String) {
        // Let the stderr reader take the crash report first: it ends with the worker's standard error, unless a
        // child of the worker still holds it open.
        _ = state.withLock { $0.stderrEnded }.wait(timeout: .now() + .seconds(1))
        if let live, let writer = state.withLock({ $0.stdin }) { live.workerGone(instanceID, writer: writer) }
        let (stopping, wasRunning, waiter, tail) = state.withLock { state in
            defer {
                state.startWaiter = nil
                state.process = nil
                state.stdin = nil
                state.running = false
            }
            if state.running && !state.stopping {
                state.workerCrashes += 1
                state.baseFrames += state.status?.framesInferred ?? 0
                state.baseCrashes += state.status?.crashes ?? 0
                state.status = nil
            }
            return (state.stopping, state.running, state.startWaiter, state.crashLine.map { [$0] } ?? state.stderrTail)
        }
        exited.store(true, ordering: .releasing)
        stopped.withLock { waiting in
            waiting?.resume()
            waiting = nil
        }
        let detail = tail.last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { ": \($0)" } ?? ""
        let message = "the runtime worker \(reason)\(detail)"
        if let waiter {
            waiter.resume(returning: stopping ? "stopped while starting" : message + "; the instance did not start")
        }
        guard wasRunning, !stopping else { return }
        state.withLock { $0.lastError = message }
        report(.error, "\(message); restarting")
        Task { [self] in await restart(after: message) }
    }

    /// Starts workers until one runs the instance again (or the instance is stopped), pausing 1 s, 2 s, 4 s … up
    /// to `maxDelay` between tries; a worker that ran for a minute resets the pause.
    private func restart(after message: String) async {
        while true {
            let delay = state.withLock { state in
                if ContinuousClock.now - state.startedAt > .seconds(60) { state.delay = .seconds(1) }
                defer { state.delay = min(state.delay * 2, maxDelay) }
                return state.delay
            }
            logger.error("\(message); the agent keeps running and starts the instance again in \(delay)")
            try? await Task.sleep(for: delay)
            guard !state.withLock({ $0.stopping }) else { return }
            guard let failure = await launch() else { return }
            state.withLock { state in
                state.workerCrashes += 1
                state.lastError = failure
            }
            logger.error("the runtime worker could not start the instance again: \(failure)")
        }
    }

    private func report(_ health: HealthStatus, _ description: String) {
        guard let reporter else { return }
        let id = spec.instanceID
        Task {
            await reporter.report(instanceId: id, InstanceReport(healthStatus: health, statusDescription: description))
        }
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGILL: "SIGILL"
        case SIGSEGV: "SIGSEGV"
        case SIGABRT: "SIGABRT"
        case SIGBUS: "SIGBUS"
        case SIGFPE: "SIGFPE"
        case SIGKILL: "SIGKILL, perhaps out of memory"
        case SIGTERM: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}

/// Starts child processes from one thread that lives as long as the agent. A worker asks the kernel to kill it when
/// its parent dies (PR_SET_PDEATHSIG), and Linux means the parent *thread*: a child started from a pool thread that
/// later exits would be killed with it.
final class Spawner: Sendable {
    static let shared = Spawner()

    private struct Job: @unchecked Sendable {
        // Unchecked: the process is handed to the spawner thread and not touched by the caller until it is started.
        let process: Process
        let done: @Sendable ((any Error)?) -> Void
    }

    private let jobs = Mutex<[Job]>([])
    private let condition = NSCondition()

    private init() {
        let thread = Thread { [self] in
            while true {
                condition.lock()
                var next = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
                while next == nil {
                    condition.wait()
                    next = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
                }
                condition.unlock()
                guard let job = next else { continue }
                do {
                    try job.process.run()
                    job.done(nil)
                } catch {
                    job.done(error)
                }
            }
        }
        thread.name = "runtime worker spawner"
        thread.start()
    }

    /// Starts `process` on the spawner thread and waits until it is started.
    func run(_ process: Process) throws {
        let result = Mutex<(any Error)??>(nil)
        let started = DispatchSemaphore(value: 0)
        condition.lock()
        jobs.withLock {
            $0.append(
                Job(process: process) { error in
                    result.withLock { $0 = .some(error) }
                    started.signal()
                })
        }
        condition.signal()
        condition.unlock()
        started.wait()
        if case .some(.some(let error)) = result.withLock({ $0 }) { throw error }
    }
}
