// Child processes for end-to-end tests: start a program (`vantage run …`, `ffmpeg`, the RTSP test
// camera), collect its stdout and stderr line by line, wait (async, with a timeout) for a line
// that matches a predicate, send it signals, and wait for it to exit.
//
//     let run = try ChildProcess(Repo.vantageBinary, arguments: ["run", app, "--camera", "Camera_1=\(url)"])
//     try await run.waitForLine(containing: "inferring", timeout: .seconds(20))
//     run.interrupt()                                        // SIGINT, like Ctrl-C
//     let result = try await run.waitForExit(timeout: .seconds(10))
//     #expect(result.exitStatus == 0, "\(result)")
//
//     let probe = try await ProcessRunner.run("ffprobe", arguments: [...], timeout: .seconds(15))
//
// A `ChildProcess` that is dropped while its program still runs kills the program (SIGKILL), so a
// failing test leaves nothing behind. Errors carry the command line and the tail of both outputs.

import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How a child process ended, with everything it wrote.
struct ProcessResult: Sendable, CustomStringConvertible {
    /// The program and its arguments, shell-quoted, for messages.
    let commandLine: String
    /// The exit code, or the signal number when `killedBySignal`.
    let exitStatus: Int32
    /// Whether a signal ended the process (then `exitStatus` is the signal number).
    let killedBySignal: Bool
    /// Whether `ProcessRunner.run` gave up waiting and killed the process.
    let timedOut: Bool
    /// Everything written on stdout (empty when stdout was not captured).
    let stdout: String
    /// Everything written on stderr (empty when stderr was not captured).
    let stderr: String
    /// From start to exit (or to the timeout).
    let duration: Duration

    /// Exited by itself with status 0.
    var succeeded: Bool { !timedOut && !killedBySignal && exitStatus == 0 }
    var stdoutLines: [String] { ChildProcess.splitLines(stdout) }
    var stderrLines: [String] { ChildProcess.splitLines(stderr) }

    var description: String {
        let how =
            timedOut
            ? "timed out after \(duration) and was killed"
            : killedBySignal ? "was killed by signal \(exitStatus)" : "exited with status \(exitStatus)"
        return "`\(commandLine)` \(how)\n"
            + "--- stdout (tail) ---\n\(ChildProcess.tail(stdout))\n"
            + "--- stderr (tail) ---\n\(ChildProcess.tail(stderr))"
    }
}

/// Why waiting on a child process failed.
enum ProcessError: Error, CustomStringConvertible {
    /// The program could not be started at all.
    case launchFailed(commandLine: String, reason: String)
    /// No matching line (or no exit) within the time allowed.
    case timedOut(waitingFor: String, after: Duration, commandLine: String, stdoutTail: String, stderrTail: String)
    /// The process ended without writing the line being waited for.
    case exitedBeforeLine(waitingFor: String, result: ProcessResult)

    var description: String {
        switch self {
        case .launchFailed(let commandLine, let reason):
            return "could not start `\(commandLine)`: \(reason)"
        case .timedOut(let what, let after, let commandLine, let stdoutTail, let stderrTail):
            return "timed out after \(after) waiting for \(what) from `\(commandLine)`\n"
                + "--- stdout (tail) ---\n\(stdoutTail)\n--- stderr (tail) ---\n\(stderrTail)"
        case .exitedBeforeLine(let what, let result):
            return "process ended before \(what): \(result)"
        }
    }
}

/// A running child process whose stdout and stderr are collected line by line.
///
/// Lines are split at `\n`, `\r\n` and a lone `\r` (ffmpeg's progress line), without the
/// terminator. All members are safe to use from any task or thread.
final class ChildProcess: Sendable {
    /// One of the two outputs.
    enum Stream: Sendable, Hashable {
        case stdout, stderr
    }

    /// Where an output goes.
    enum Destination: Sendable {
        /// Collected in memory: lines can be waited for, and `stdout`/`stderr` return it.
        case capture
        /// Appended to a file (created if needed); not collected.
        case file(URL)
        /// Thrown away.
        case discard
    }

    /// A position in the output, from `mark()`: waits `after:` it see only later lines.
    struct Mark: Sendable {
        fileprivate let stdoutLines: Int
        fileprivate let stderrLines: Int
    }

    let executable: URL
    let arguments: [String]
    /// The process id.
    let pid: Int32
    /// The program and its arguments, shell-quoted, for messages.
    let commandLine: String

    // The process object is only touched here and in deinit; the collector is what the reader
    // threads and the termination handler share, so that they never keep `self` alive.
    private let process: Process
    private let collector: Collector

    /// Starts `executable` with `arguments`. `environment` entries are added to (and override)
    /// this process's environment. stdin is /dev/null.
    init(
        _ executable: URL, arguments: [String] = [], environment: [String: String] = [:],
        currentDirectory: URL? = nil, stdout: Destination = .capture, stderr: Destination = .capture
    ) throws {
        self.executable = executable
        self.arguments = arguments
        self.commandLine = ([executable.path] + arguments).map(ChildProcess.shellQuoted).joined(separator: " ")

        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        process.standardInput = FileHandle.nullDevice

        let collector = Collector(
            commandLine: commandLine, capturing: [.stdout: stdout.isCapture, .stderr: stderr.isCapture])
        var readers: [(Stream, FileHandle)] = []
        for (stream, destination) in [(Stream.stdout, stdout), (Stream.stderr, stderr)] {
            let target: Any
            switch destination {
            case .capture:
                let pipe = Pipe()
                readers.append((stream, pipe.fileHandleForReading))
                target = pipe
            case .file(let url):
                if !FileManager.default.fileExists(atPath: url.path) {
                    _ = FileManager.default.createFile(atPath: url.path, contents: nil)
                }
                do {
                    let handle = try FileHandle(forWritingTo: url)
                    _ = try handle.seekToEnd()
                    target = handle
                } catch {
                    throw ProcessError.launchFailed(
                        commandLine: commandLine, reason: "cannot write \(url.path): \(error)")
                }
            case .discard:
                target = FileHandle.nullDevice
            }
            if stream == .stdout { process.standardOutput = target } else { process.standardError = target }
        }
        process.terminationHandler = { [collector] finished in
            collector.terminated(
                status: finished.terminationStatus, bySignal: finished.terminationReason == .uncaughtSignal)
        }
        do {
            try ChildProcess.launchWithSignalsUnblocked(process)
        } catch {
            throw ProcessError.launchFailed(commandLine: commandLine, reason: "\(error)")
        }
        self.process = process
        self.collector = collector
        self.pid = process.processIdentifier
        // Our copies of the files given to the child are no longer needed.
        for case let handle as FileHandle in [process.standardOutput, process.standardError]
        where handle !== FileHandle.nullDevice {
            try? handle.close()
        }
        for (stream, handle) in readers {
            let thread = Thread { [collector] in
                while true {
                    let data = handle.availableData
                    if data.isEmpty { break }
                    collector.append(data, to: stream)
                }
                try? handle.close()
                collector.reachedEnd(of: stream)
            }
            thread.name = "ChildProcess \(pid) \(stream)"
            thread.start()
        }
    }

    deinit {
        // Never leave a program running behind a finished (or failed) test.
        if !collector.hasTerminated { ChildProcess.signal(pid, SIGKILL) }
    }

    // MARK: Output

    /// Everything written on stdout so far (when captured).
    var stdout: String { collector.text(of: .stdout) }
    /// Everything written on stderr so far (when captured).
    var stderr: String { collector.text(of: .stderr) }
    /// The complete lines written on `stream` so far.
    func lines(of stream: Stream) -> [String] { collector.lines(of: stream) }
    /// The current end of both outputs, to wait only for lines written after it.
    func mark() -> Mark { collector.mark() }

    /// Waits for a line on one of `streams`, written after `mark` (or at any time, already
    /// written lines included, when `mark` is nil), for which `predicate` holds, and returns it.
    /// Throws `ProcessError.timedOut` after `timeout`, `ProcessError.exitedBeforeLine` when the
    /// process ends first, or `CancellationError` when the task is cancelled.
    @discardableResult
    func waitForLine(
        on streams: Set<Stream> = [.stdout, .stderr], after mark: Mark? = nil,
        timeout: Duration = .seconds(10), _ description: String = "a matching line",
        where predicate: @escaping @Sendable (String) -> Bool
    ) async throws -> String {
        try await collector.waitForLine(
            streams: streams, after: mark, timeout: timeout, description: description, predicate: predicate)
    }

    /// Waits for a line that contains `text`; see `waitForLine(on:after:timeout:_:where:)`.
    @discardableResult
    func waitForLine(
        containing text: String, on streams: Set<Stream> = [.stdout, .stderr], after mark: Mark? = nil,
        timeout: Duration = .seconds(10)
    ) async throws -> String {
        try await waitForLine(on: streams, after: mark, timeout: timeout, "a line containing \"\(text)\"") {
            $0.contains(text)
        }
    }

    // MARK: Signals and exit

    /// Whether the process has not ended yet.
    var isRunning: Bool { !collector.hasTerminated }

    /// Sends `signal` (e.g. `SIGUSR1`) to the process, unless it has ended.
    func send(signal: Int32) {
        if !collector.hasTerminated { ChildProcess.signal(pid, signal) }
    }
    /// SIGINT, as Ctrl-C in a terminal: a graceful stop.
    func interrupt() { send(signal: SIGINT) }
    /// SIGTERM.
    func terminate() { send(signal: SIGTERM) }
    /// SIGKILL: the process dies at once, as in a crash or power loss.
    func kill() { send(signal: SIGKILL) }

    /// Waits until the process has ended and its outputs are read, and returns how it ended.
    /// Throws `ProcessError.timedOut` after `timeout` (the process keeps running).
    @discardableResult
    func waitForExit(timeout: Duration = .seconds(10)) async throws -> ProcessResult {
        try await collector.waitForExit(timeout: timeout)
    }

    /// Stops the process: `signal` (SIGTERM by default; SIGINT for a graceful stop), then SIGKILL
    /// if it has not ended within `gracePeriod`. Returns how it ended.
    @discardableResult
    func stop(signal: Int32 = SIGTERM, gracePeriod: Duration = .seconds(5)) async -> ProcessResult {
        send(signal: signal)
        if let result = try? await waitForExit(timeout: gracePeriod) { return result }
        kill()
        if let result = try? await waitForExit(timeout: .seconds(10)) { return result }
        return collector.result(timedOut: true)  // unkillable or outputs held open by a grandchild
    }

    // MARK: Helpers

    /// Starts `process` from a new thread whose signal mask is empty. A child inherits the signal
    /// mask of the thread that spawns it, Foundation's `Process` does not reset it, and the
    /// threads that run Swift tasks block SIGINT, SIGTERM, SIGUSR1, SIGUSR2 and more: a child
    /// started from a test would never see the signals that `interrupt()` and friends send.
    private static func launchWithSignalsUnblocked(_ process: Process) throws {
        let outcome = Mutex<Result<Void, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            #if canImport(Glibc)
                var none = sigset_t()
                sigemptyset(&none)
                pthread_sigmask(SIG_SETMASK, &none, nil)
            #endif
            let result = Result { try process.run() }
            outcome.withLock { $0 = result }
            done.signal()
        }
        thread.name = "ChildProcess launcher"
        thread.start()
        done.wait()
        try outcome.withLock { $0 }!.get()
    }

    fileprivate static func signal(_ pid: Int32, _ signal: Int32) {
        #if canImport(Glibc)
            _ = Glibc.kill(pid, signal)
        #elseif canImport(Darwin)
            _ = Darwin.kill(pid, signal)
        #endif
    }

    static func shellQuoted(_ word: String) -> String {
        let plain = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }
        if plain && !word.isEmpty { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func splitLines(_ text: String) -> [String] {
        var lines: [String] = []
        var current = ""
        var lastWasCR = false
        for scalar in text.unicodeScalars {
            if scalar == "\n" {
                if !lastWasCR { lines.append(current) }
                current = ""
                lastWasCR = false
            } else if scalar == "\r" {
                lines.append(current)
                current = ""
                lastWasCR = true
            } else {
                current.unicodeScalars.append(scalar)
                lastWasCR = false
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }

    /// The last `lines` lines of `text`, for error messages.
    static func tail(_ text: String, lines: Int = 25) -> String {
        let all = splitLines(text)
        let kept = all.suffix(lines)
        return (all.count > lines ? "[… \(all.count - lines) lines]\n" : "") + kept.joined(separator: "\n")
    }
}

extension ChildProcess.Destination {
    fileprivate var isCapture: Bool {
        if case .capture = self { return true }
        return false
    }
}

/// Runs programs to completion.
enum ProcessRunner {
    /// Runs `executable` until it exits and returns its result. After `timeout` the process gets
    /// SIGINT, then SIGKILL after `gracePeriod`, and the result has `timedOut == true` (no throw).
    /// Throws only when the program cannot be started.
    static func run(
        _ executable: URL, arguments: [String] = [], environment: [String: String] = [:],
        currentDirectory: URL? = nil, timeout: Duration = .seconds(30), gracePeriod: Duration = .seconds(3)
    ) async throws -> ProcessResult {
        let child = try ChildProcess(
            executable, arguments: arguments, environment: environment, currentDirectory: currentDirectory)
        do {
            return try await child.waitForExit(timeout: timeout)
        } catch is ProcessError {
            let ended = await child.stop(signal: SIGINT, gracePeriod: gracePeriod)
            return ProcessResult(
                commandLine: ended.commandLine, exitStatus: ended.exitStatus, killedBySignal: ended.killedBySignal,
                timedOut: true, stdout: ended.stdout, stderr: ended.stderr, duration: ended.duration)
        }
    }

    /// Runs a program found on PATH (`"ffprobe"`); see `run(_:arguments:…)`.
    static func run(
        _ command: String, arguments: [String] = [], environment: [String: String] = [:],
        currentDirectory: URL? = nil, timeout: Duration = .seconds(30), gracePeriod: Duration = .seconds(3)
    ) async throws -> ProcessResult {
        guard let executable = which(command) else {
            throw ProcessError.launchFailed(commandLine: command, reason: "\(command) is not on PATH")
        }
        return try await run(
            executable, arguments: arguments, environment: environment, currentDirectory: currentDirectory,
            timeout: timeout, gracePeriod: gracePeriod)
    }

    /// The executable `command` on PATH (or `command` itself when it is a path), if any.
    static func which(_ command: String) -> URL? {
        if command.contains("/") {
            return FileManager.default.isExecutableFile(atPath: command) ? URL(fileURLWithPath: command) : nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(command)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return URL(fileURLWithPath: candidate) }
        }
        return nil
    }
}

// MARK: - Shared state of one child process

/// Output, exit status and waiters of one child process, shared by the reader threads, the
/// termination handler and the tasks that wait.
private final class Collector: Sendable {
    private struct Output {
        var bytes = Data()  // everything, for `text(of:)`
        var pending = Data()  // the unfinished last line
        var lines: [String] = []
        var pendingCR = false  // the last byte was \r: a following \n ends no line
        var ended = false
    }

    private struct LineWaiter {
        let streams: Set<ChildProcess.Stream>
        let start: [ChildProcess.Stream: Int]
        let description: String
        let predicate: @Sendable (String) -> Bool
        let continuation: CheckedContinuation<String, any Error>
        let timer: Task<Void, Never>
    }

    private struct ExitWaiter {
        let continuation: CheckedContinuation<ProcessResult, any Error>
        let timer: Task<Void, Never>
    }

    private struct State {
        var outputs: [ChildProcess.Stream: Output] = [.stdout: Output(), .stderr: Output()]
        var status: (code: Int32, bySignal: Bool)?
        var terminatedAt: ContinuousClock.Instant?
        var finished = false  // terminated and outputs read to the end
        var lineWaiters: [UInt64: LineWaiter] = [:]
        var exitWaiters: [UInt64: ExitWaiter] = [:]
        var nextID: UInt64 = 0
    }

    let commandLine: String
    private let started = ContinuousClock.now
    private let state: Mutex<State>

    init(commandLine: String, capturing: [ChildProcess.Stream: Bool]) {
        self.commandLine = commandLine
        var initial = State()
        for (stream, captured) in capturing where !captured { initial.outputs[stream]?.ended = true }
        self.state = Mutex(initial)
    }

    var hasTerminated: Bool { state.withLock { $0.status != nil } }

    func text(of stream: ChildProcess.Stream) -> String {
        state.withLock { String(decoding: $0.outputs[stream]!.bytes, as: UTF8.self) }
    }

    func lines(of stream: ChildProcess.Stream) -> [String] {
        state.withLock { $0.outputs[stream]!.lines }
    }

    func mark() -> ChildProcess.Mark {
        state.withLock {
            ChildProcess.Mark(
                stdoutLines: $0.outputs[.stdout]!.lines.count, stderrLines: $0.outputs[.stderr]!.lines.count)
        }
    }

    // MARK: Feeding (reader threads, termination handler)

    func append(_ data: Data, to stream: ChildProcess.Stream) {
        var matched: [(CheckedContinuation<String, any Error>, String, Task<Void, Never>)] = []
        state.withLock { state in
            var output = state.outputs[stream]!
            output.bytes.append(data)
            var newLines: [String] = []
            for byte in data {
                switch byte {
                case UInt8(ascii: "\n"):
                    if !output.pendingCR { newLines.append(String(decoding: output.pending, as: UTF8.self)) }
                    output.pending.removeAll(keepingCapacity: true)
                    output.pendingCR = false
                case UInt8(ascii: "\r"):
                    newLines.append(String(decoding: output.pending, as: UTF8.self))
                    output.pending.removeAll(keepingCapacity: true)
                    output.pendingCR = true
                default:
                    output.pending.append(byte)
                    output.pendingCR = false
                }
            }
            let firstNew = output.lines.count
            output.lines.append(contentsOf: newLines)
            state.outputs[stream] = output
            if !newLines.isEmpty {
                matched = Collector.match(&state, stream: stream, from: firstNew)
            }
        }
        for (continuation, line, timer) in matched {
            timer.cancel()
            continuation.resume(returning: line)
        }
    }

    func reachedEnd(of stream: ChildProcess.Stream) {
        var matched: [(CheckedContinuation<String, any Error>, String, Task<Void, Never>)] = []
        state.withLock { state in
            var output = state.outputs[stream]!
            let firstNew = output.lines.count
            if !output.pending.isEmpty {
                output.lines.append(String(decoding: output.pending, as: UTF8.self))
                output.pending.removeAll()
            }
            output.ended = true
            state.outputs[stream] = output
            matched = Collector.match(&state, stream: stream, from: firstNew)
        }
        for (continuation, line, timer) in matched {
            timer.cancel()
            continuation.resume(returning: line)
        }
        finishIfDone()
    }

    func terminated(status: Int32, bySignal: Bool) {
        state.withLock { state in
            state.status = (status, bySignal)
            state.terminatedAt = .now
        }
        finishIfDone()
        // A grandchild that inherited stdout/stderr can hold them open after the child is gone:
        // do not wait for their end for ever.
        Task { [self] in
            try? await Task.sleep(for: .seconds(2))
            finishIfDone(force: true)
        }
    }

    /// Removes the line waiters that `stream`'s lines from `first` on satisfy.
    private static func match(
        _ state: inout State, stream: ChildProcess.Stream, from first: Int
    ) -> [(CheckedContinuation<String, any Error>, String, Task<Void, Never>)] {
        var matched: [(CheckedContinuation<String, any Error>, String, Task<Void, Never>)] = []
        let lines = state.outputs[stream]!.lines
        for (id, waiter) in state.lineWaiters where waiter.streams.contains(stream) {
            let start = max(first, waiter.start[stream] ?? 0)
            guard start < lines.count else { continue }
            if let line = lines[start...].first(where: waiter.predicate) {
                state.lineWaiters[id] = nil
                matched.append((waiter.continuation, line, waiter.timer))
            }
        }
        return matched
    }

    private func finishIfDone(force: Bool = false) {
        var lineWaiters: [LineWaiter] = []
        var exitWaiters: [ExitWaiter] = []
        var result: ProcessResult?
        state.withLock { state in
            guard !state.finished, state.status != nil else { return }
            guard force || state.outputs.values.allSatisfy(\.ended) else { return }
            state.finished = true
            lineWaiters = Array(state.lineWaiters.values)
            exitWaiters = Array(state.exitWaiters.values)
            state.lineWaiters = [:]
            state.exitWaiters = [:]
            result = makeResult(state, timedOut: false)
        }
        guard let result else { return }
        for waiter in lineWaiters {
            waiter.timer.cancel()
            waiter.continuation.resume(
                throwing: ProcessError.exitedBeforeLine(waitingFor: waiter.description, result: result))
        }
        for waiter in exitWaiters {
            waiter.timer.cancel()
            waiter.continuation.resume(returning: result)
        }
    }

    private func makeResult(_ state: State, timedOut: Bool) -> ProcessResult {
        let end = state.terminatedAt ?? .now
        return ProcessResult(
            commandLine: commandLine, exitStatus: state.status?.code ?? -1,
            killedBySignal: state.status?.bySignal ?? false,
            timedOut: timedOut, stdout: String(decoding: state.outputs[.stdout]!.bytes, as: UTF8.self),
            stderr: String(decoding: state.outputs[.stderr]!.bytes, as: UTF8.self), duration: end - started)
    }

    func result(timedOut: Bool) -> ProcessResult {
        state.withLock { makeResult($0, timedOut: timedOut) }
    }

    private func timeoutError(_ what: String, _ timeout: Duration) -> ProcessError {
        state.withLock { state in
            ProcessError.timedOut(
                waitingFor: what, after: timeout, commandLine: commandLine,
                stdoutTail: ChildProcess.tail(String(decoding: state.outputs[.stdout]!.bytes, as: UTF8.self)),
                stderrTail: ChildProcess.tail(String(decoding: state.outputs[.stderr]!.bytes, as: UTF8.self)))
        }
    }

    // MARK: Waiting

    func waitForLine(
        streams: Set<ChildProcess.Stream>, after mark: ChildProcess.Mark?, timeout: Duration, description: String,
        predicate: @escaping @Sendable (String) -> Bool
    ) async throws -> String {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String, any Error>) in
                let timer = Task { [self] in
                    try? await Task.sleep(for: timeout)
                    if Task.isCancelled { return }
                    let error = timeoutError(description, timeout)
                    if let waiter = state.withLock({ $0.lineWaiters.removeValue(forKey: id) }) {
                        waiter.continuation.resume(throwing: error)
                    }
                }
                enum Outcome { case found(String), ended(ProcessResult), waiting }
                let outcome = state.withLock { state -> Outcome in
                    let start: [ChildProcess.Stream: Int] = [
                        .stdout: mark?.stdoutLines ?? 0, .stderr: mark?.stderrLines ?? 0,
                    ]
                    for stream in [ChildProcess.Stream.stdout, .stderr] where streams.contains(stream) {
                        let lines = state.outputs[stream]!.lines
                        if start[stream]! < lines.count, let line = lines[start[stream]!...].first(where: predicate) {
                            return .found(line)
                        }
                    }
                    if state.finished { return .ended(makeResult(state, timedOut: false)) }
                    state.lineWaiters[id] = LineWaiter(
                        streams: streams, start: start, description: description, predicate: predicate,
                        continuation: continuation, timer: timer)
                    return .waiting
                }
                switch outcome {
                case .found(let line):
                    timer.cancel()
                    continuation.resume(returning: line)
                case .ended(let result):
                    timer.cancel()
                    continuation.resume(
                        throwing: ProcessError.exitedBeforeLine(waitingFor: description, result: result))
                case .waiting:
                    break
                }
            }
        } onCancel: {
            if let waiter = state.withLock({ $0.lineWaiters.removeValue(forKey: id) }) {
                waiter.timer.cancel()
                waiter.continuation.resume(throwing: CancellationError())
            }
        }
    }

    func waitForExit(timeout: Duration) async throws -> ProcessResult {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProcessResult, any Error>) in
                let timer = Task { [self] in
                    try? await Task.sleep(for: timeout)
                    if Task.isCancelled { return }
                    let error = timeoutError("the process to exit", timeout)
                    if let waiter = state.withLock({ $0.exitWaiters.removeValue(forKey: id) }) {
                        waiter.continuation.resume(throwing: error)
                    }
                }
                let result = state.withLock { state -> ProcessResult? in
                    if state.finished { return makeResult(state, timedOut: false) }
                    state.exitWaiters[id] = ExitWaiter(continuation: continuation, timer: timer)
                    return nil
                }
                if let result {
                    timer.cancel()
                    continuation.resume(returning: result)
                }
            }
        } onCancel: {
            if let waiter = state.withLock({ $0.exitWaiters.removeValue(forKey: id) }) {
                waiter.timer.cancel()
                waiter.continuation.resume(throwing: CancellationError())
            }
        }
    }
}
