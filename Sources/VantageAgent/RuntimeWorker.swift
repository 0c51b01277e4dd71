import CVantageShims
import Foundation
import Logging
import Synchronization
import VantageAPI
import VantageApp
import VantageOutputs
import VantageRuntime

/// The child-process side of the agent's process boundary (`vantage agent-runtime`, started by
/// ``ProcessRuntimeRunner``): runs one instance with ``RuntimeRunner``, exactly as the agent ran it in its own
/// process before, and talks to the agent over ``WorkerChannel``'s lines. Whatever goes wrong in here (a trap in
/// the runtime, a crash in FFmpeg or OpenVINO, memory exhaustion) ends this process only; the agent reports it and
/// starts the worker again.
public enum RuntimeWorker {
    /// Runs the worker until the agent stops it (SIGTERM, or its end of the pipe closes). Returns the exit status.
    public static func main() async -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        // The channel is a copy of standard output; standard output itself goes to standard error, so that nothing
        // else this process (or a library) prints can end up inside a message.
        let channelFD = dup(STDOUT_FILENO)
        guard channelFD >= 0, dup2(STDERR_FILENO, STDOUT_FILENO) >= 0 else {
            FileHandle.standardError.write(Data("agent-runtime: cannot set up the channel to the agent\n".utf8))
            return 70
        }
        let writer = LineWriter(fd: channelFD)
        let reader = LineReader(fd: STDIN_FILENO)
        let spec: WorkerSpec
        do {
            guard let line = try reader.next(),
                case .start(let start) = try JSONDecoder().decode(
                    SupervisorMessage.self, from: Data(line))
            else {
                FileHandle.standardError.write(
                    Data("agent-runtime: run by `vantage agent` only (the first message is not a start)\n".utf8))
                return 64
            }
            spec = start
        } catch {
            FileHandle.standardError.write(Data("agent-runtime: cannot read what to run: \(error)\n".utf8))
            return 64
        }
        // Die with the agent: a worker left behind by a killed agent would run the instance twice.
        _ = vantage_set_parent_death_signal(SIGKILL)
        guard getppid() == spec.agentPID else { return 0 }

        let level = Logger.Level(rawValue: spec.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = ChannelLogHandler(writer: writer)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "vantage.agent")
        let acks = Acknowledgements()
        let stop = StopSignal()
        // The runtime once it runs, for camera credentials the agent sends meanwhile (kept until then).
        let cameraUpdates = Mutex<(runtime: Runtime?, pending: [CameraSource])>((nil, []))
        let live = LiveFollower(writer: writer)
        // Reads the agent's answers; the end of the pipe means the agent is gone.
        let listener = Thread {
            while let line = try? reader.next() {
                switch try? JSONDecoder().decode(SupervisorMessage.self, from: Data(line)) {
                case .stored(let sequence, let error, let recorded)?:
                    acks.resolve(
                        sequence,
                        answer: recorded.map { .success($0) } ?? .failure(.init(error ?? "not stored")))
                case .cameraCredentials(let cameras)?:
                    let runtime = cameraUpdates.withLock { state -> Runtime? in
                        if state.runtime == nil { state.pending += cameras }
                        return state.runtime
                    }
                    if let runtime {
                        let names = runtime.updateCameraCredentials(cameras)
                        logger.info(
                            "camera credentials updated; the stream uses them from its next connection",
                            metadata: ["cameras": "\(names)"])
                    }
                case .live(let framesPerSecond)?:
                    live.relay(framesPerSecond: framesPerSecond)
                case .signal(let id, let node, let signal)?:
                    let runtime = cameraUpdates.withLock { $0.runtime }
                    let answer: WorkerMessage
                    do {
                        guard let runtime else { throw RuntimeError("the instance is still starting: try again") }
                        _ = try runtime.signal(node: node, signal)
                        answer = .signalResult(
                            id: id, ok: true, message: "camera node \(node) \(signal == "pause" ? "paused" : "resumed")"
                        )
                    } catch {
                        answer = .signalResult(id: id, ok: false, message: "\(error)")
                    }
                    try? writer.send(answer)
                default: break
                }
            }
            live.relay(framesPerSecond: nil)
            acks.closeAll()
            stop.fire()
        }
        listener.name = "agent-runtime channel"
        listener.start()
        signal(SIGTERM, SIG_IGN)
        let term = DispatchSource.makeSignalSource(signal: SIGTERM)
        term.setEventHandler { stop.fire() }
        term.resume()

        // The spec the agent made, run as it is: events go back over the channel to the instance's pipeline.
        let running: RuntimeInstance
        do {
            let runtime = try await Runtime.make(
                spec: spec.runtime, recorder: ChannelRecorder(writer: writer, acks: acks), logger: logger)
            running = RuntimeInstance(
                runtime: runtime, instanceID: spec.instanceID, cameraIDs: spec.cameraIDs, stopped: {})
            let pending = cameraUpdates.withLock { state in
                state.runtime = runtime
                defer { state.pending = [] }
                return state.pending
            }
            if !pending.isEmpty { runtime.updateCameraCredentials(pending) }
            live.started(runtime)
        } catch {
            try? writer.send(WorkerMessage.failed("\(error)"))
            return 1
        }
        try? writer.send(WorkerMessage.ready)
        while !stop.fired {
            let health = running.health()
            let status = WorkerStatus(
                framesInferred: health.framesInferred, crashes: health.crashes, lastError: health.lastError,
                finished: health.crashes >= Int.max / 2, camerasOpen: running.runtime.application.cameras.count,
                metrics: running.metrics())
            if (try? writer.send(WorkerMessage.status(status))) == nil { break }
            try? await Task.sleep(for: .seconds(1))
        }
        live.relay(framesPerSecond: nil)
        await running.stop()
        return 0
    }
}

/// The worker's side of the live relay: while the agent asks for it, follows every camera stream of the runtime's
/// live view and sends each frame to the agent (``WorkerMessage/liveFrame(stream:jpeg:)``), at most
/// `framesPerSecond` a stream. A request that comes before the runtime runs waits for it.
final class LiveFollower: Sendable {
    private struct State {
        var runtime: Runtime?
        var framesPerSecond: Double?
        var tasks: [Task<Void, Never>] = []
    }

    private let state = Mutex(State())
    let writer: LineWriter

    init(writer: LineWriter) { self.writer = writer }

    /// The runtime runs: start following if the agent asked already.
    func started(_ runtime: Runtime) {
        state.withLock { state in
            state.runtime = runtime
            restart(&state)
        }
    }

    /// Follow at this rate, or stop (nil).
    func relay(framesPerSecond: Double?) {
        state.withLock { state in
            state.framesPerSecond = framesPerSecond.map { max(0.1, $0) }
            restart(&state)
        }
    }

    private func restart(_ state: inout State) {
        for task in state.tasks { task.cancel() }
        state.tasks = []
        guard let fps = state.framesPerSecond, let liveView = state.runtime?.liveView else { return }
        let interval = Duration.seconds(1 / fps)
        let writer = writer
        for name in liveView.streamNames {
            state.tasks.append(
                Task.detached {
                    var last = ContinuousClock.now - interval
                    await liveView.follow(stream: name) { jpeg in
                        // Slower than the live view encodes: the frames in between are skipped (with a little
                        // slack, so that 5 fps in and 5 fps asked give 5, not 2.5).
                        guard ContinuousClock.now - last >= interval * 0.8, !Task.isCancelled else { return }
                        last = .now
                        try? writer.send(
                            WorkerMessage.liveFrame(stream: name, jpeg: jpeg, time: Date().timeIntervalSince1970))
                    }
                })
        }
    }
}

/// Set once: SIGTERM, or the agent's end of the pipe closed.
final class StopSignal: Sendable {
    private let value = Atomic(false)
    var fired: Bool { value.load(ordering: .acquiring) }
    func fire() { value.store(true, ordering: .releasing) }
}

/// Events sent to the agent and waiting for its answer, by sequence.
final class Acknowledgements: Sendable {
    /// Recorded (where, and whether a clip is wanted), or the agent's reason why not.
    typealias Answer = Result<EventPipeline.Recorded, ChannelFailure>

    struct ChannelFailure: Error, ExpressibleByStringLiteral, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
        init(stringLiteral value: String) { description = value }
    }

    private struct State {
        var next = 0
        var answers: [Int: Answer] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    private let condition = NSCondition()

    /// A new sequence number to send an event with.
    func reserve() -> Int {
        state.withLock {
            $0.next += 1; return $0.next
        }
    }

    /// Waits for the answer to `sequence`.
    func wait(for sequence: Int, timeout: Duration) -> Answer {
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds))
        condition.lock()
        defer { condition.unlock() }
        while true {
            let (answer, closed) = state.withLock { state in
                (state.answers.removeValue(forKey: sequence), state.closed)
            }
            if let answer { return answer }
            if closed { return .failure(ChannelFailure("the agent is gone")) }
            if !condition.wait(until: deadline) {
                return .failure(
                    ChannelFailure("the agent did not store the event within \(timeout.components.seconds) s"))
            }
        }
    }

    func resolve(_ sequence: Int, answer: Answer) {
        state.withLock { $0.answers[sequence] = answer }
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    func closeAll() {
        state.withLock { $0.closed = true }
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }
}

/// A worker's event recorder: the event goes to the agent, which records it in the instance's outbox; ``record(_:)``
/// returns once it is stored, so an event the application was told is accepted is on disk, as in process.
struct ChannelRecorder: EventRecorder {
    let writer: LineWriter
    let acks: Acknowledgements

    func record(_ event: OutgoingEvent) throws -> EventPipeline.Recorded {
        Self.crashHook()
        let sequence = acks.reserve()
        do {
            try writer.send(WorkerMessage.event(sequence: sequence, event: event))
        } catch {
            throw RuntimeError("the event could not be stored on the device: the agent is gone")
        }
        switch acks.wait(for: sequence, timeout: .seconds(60)) {
        case .success(let recorded): return recorded
        case .failure(let failure):
            let error = failure.description
            throw RuntimeError(error.hasPrefix("the event") ? error : "the event could not be stored: \(error)")
        }
    }

    func clipFinished(sequence: Int64, file: String?, error: String?) throws {
        try writer.send(WorkerMessage.clip(outboxSequence: sequence, file: file, error: error))
    }

    func snapshotFinished(sequence: Int64, file: String?, error: String?) throws {
        try writer.send(WorkerMessage.snapshot(outboxSequence: sequence, file: file, error: error))
    }
}

extension ChannelRecorder {
    /// For the agent's end-to-end tests: `VANTAGE_RUNTIME_CRASH_AT=event:MARKER` makes the worker trap (as a bug in
    /// the runtime would) on its first event, once: the marker file records that it happened.
    static func crashHook() {
        guard let spec = ProcessInfo.processInfo.environment["VANTAGE_RUNTIME_CRASH_AT"], spec.hasPrefix("event:")
        else { return }
        let marker = String(spec.dropFirst("event:".count))
        guard !FileManager.default.fileExists(atPath: marker) else { return }
        _ = FileManager.default.createFile(atPath: marker, contents: Data("event".utf8))
        fatalError("a crash asked for by VANTAGE_RUNTIME_CRASH_AT (a test hook)")
    }
}

/// Sends the worker's log lines to the agent, which logs them as its own (and so ships them to the server).
struct ChannelLogHandler: LogHandler {
    let writer: LineWriter
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let line = WorkerLogLine(
            level: event.level.rawValue, message: "\(event.message)",
            metadata: merged.mapValues { "\($0)" })
        if (try? writer.send(WorkerMessage.log(line))) == nil {
            FileHandle.standardError.write(Data("\(event.level): \(event.message)\n".utf8))
        }
    }
}
