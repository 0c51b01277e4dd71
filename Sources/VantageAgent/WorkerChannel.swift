import Foundation
import Synchronization
import VantageAPI
import VantageApp
import VantageOutputs
import VantageRuntime

// The channel between the agent and a runtime worker (`vantage agent-runtime`, one child process per instance): one
// JSON object per line, over the worker's standard input (agent → worker) and a copy of its standard output
// (worker → agent). The worker's own standard output and error go to its standard error, which the agent logs, so
// that a stray print or a crash report can never corrupt the channel.

/// What the agent sends a runtime worker.
enum SupervisorMessage: Codable, Sendable {
    /// The first message: what to run.
    case start(WorkerSpec)
    /// The answer to ``WorkerMessage/event(sequence:event:)``: recorded in the instance's outbox (with its place
    /// there and whether a rule asked for a clip), or why not.
    case stored(sequence: Int, error: String?, recorded: EventPipeline.Recorded?)
    /// New credentials for running cameras (a rotated password): each stream uses them from its next connection;
    /// nothing is restarted.
    case cameraCredentials([CameraSource])
    /// Relay the live view (every camera stream, at most this many frames a second each), or stop (nil).
    case live(framesPerSecond: Double?)
    /// Pause or resume a camera node (a ``CameraSignal`` from the console); answered with
    /// ``WorkerMessage/signalResult(id:ok:message:)``.
    case signal(id: String, node: String, signal: String)
}

/// What a runtime worker sends the agent.
enum WorkerMessage: Codable, Sendable {
    /// The instance runs (its models are loaded and its code nodes started).
    case ready
    /// The instance could not start; the worker exits after sending it.
    case failed(String)
    /// Health and figures, about once a second.
    case status(WorkerStatus)
    /// An event to record in the instance's outbox, which the agent holds; the worker waits for
    /// ``SupervisorMessage/stored(sequence:error:recorded:)``.
    case event(sequence: Int, event: OutgoingEvent)
    /// The clip a recorded event asked for was cut (`file`) or could not be (`error`).
    case clip(outboxSequence: Int64, file: String?, error: String?)
    /// The snapshot of an event recorded with its snapshot pending was written (`file`) or could not be (`error`).
    case snapshot(outboxSequence: Int64, file: String?, error: String?)
    /// A log line of the runtime, for the agent's log (and so the server).
    case log(WorkerLogLine)
    /// An annotated JPEG of a camera stream, while the agent asked for the live view.
    /// `time`: when it was encoded (Unix seconds), so the relay's delay can be measured.
    case liveFrame(stream: String, jpeg: Data, time: Double)
    /// How a ``SupervisorMessage/signal(id:node:signal:)`` went.
    case signalResult(id: String, ok: Bool, message: String)
}

/// Everything a worker needs to run one instance: the ``RuntimeSpec`` the agent made (the worker resolves nothing),
/// and what names its figures. It travels over the pipe, never on the command line or in a file, because the spec
/// holds camera passwords and AWS keys.
struct WorkerSpec: Codable, Sendable {
    var runtime: RuntimeSpec
    var instanceID: String
    /// Camera node -> camera id, for the heartbeat figures.
    var cameraIDs: [String: String]
    /// The agent's log level (`info`, `debug`, …).
    var logLevel: String
    /// The agent's process id: a worker whose parent is not this process exits (the agent died while it started).
    var agentPID: Int32
}

/// A worker's health counters and heartbeat figures since it started.
struct WorkerStatus: Codable, Sendable, Equatable {
    var framesInferred: UInt64
    /// Code-node restarts inside the worker.
    var crashes: Int
    var lastError: String?
    /// The runtime ended by itself (its code nodes gave up).
    var finished: Bool
    /// Camera streams the worker has open.
    var camerasOpen: Int
    /// `camera.<id>.fps` and the like, as ``RuntimeFigures`` names them.
    var metrics: [String: Double]
}

/// One log line from a worker.
struct WorkerLogLine: Codable, Sendable {
    var level: String
    var message: String
    var metadata: [String: String]
}

/// Writes one JSON object per line to a file descriptor; safe from any thread.
final class LineWriter: Sendable {
    private let fd: Int32
    private let lock = Mutex(())

    init(fd: Int32) { self.fd = fd }

    /// Writes `message` as one line. Throws when the other end is gone (the pipe is closed).
    func send<Message: Encodable>(_ message: Message) throws {
        var line = try JSONEncoder().encode(message)
        line.append(0x0A)
        try lock.withLock { _ in
            try line.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw WorkerChannelError("the pipe is closed (\(String(cString: strerror(errno))))")
                    }
                    offset += written
                }
            }
        }
    }
}

/// Reads lines from a file descriptor, blocking; for one reader thread.
final class LineReader: @unchecked Sendable {
    // Unchecked: the buffer is mutable state; a reader is made on one thread and then used by one thread only (handed
    // to it when the thread starts).

    private let fd: Int32
    private let maxLine: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var chunk = [UInt8](repeating: 0, count: 64 << 10)

    /// `maxLine` bounds one line: a longer one is an error, so that a broken peer cannot exhaust memory.
    init(fd: Int32, maxLine: Int = 64 << 20) {
        self.fd = fd
        self.maxLine = maxLine
    }

    /// The next line without its newline; nil at end of file (a last line without a newline is returned first).
    func next() throws -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                let line = buffer[start..<newline]
                start = newline + 1
                return line
            }
            if buffer.count - start > maxLine {
                throw WorkerChannelError("a line longer than \(maxLine) bytes")
            }
            if start > 0 {
                buffer.removeSubrange(0..<start)
                start = 0
            }
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw WorkerChannelError("reading failed (\(String(cString: strerror(errno))))")
            }
            if count == 0 {
                guard start < buffer.count else { return nil }
                let line = buffer[start...]
                start = buffer.count
                return line
            }
            buffer.append(contentsOf: chunk[0..<count])
        }
    }
}

struct WorkerChannelError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
