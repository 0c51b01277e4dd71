import Foundation
import Logging
import Synchronization
import VantageAPI
import VantageCore

/// The agent's log lines on their way to the server, and on disk: a bounded queue (the oldest lines go first when
/// the server is away too long; each loss counted) and a rotated file (`logs/agent.log`, 3 × 10 MiB). Lines
/// logged with `instance.id` metadata are that instance's; the rest are the agent's own.
public final class LogBuffer: Sendable {
    public static let shared = LogBuffer()

    struct State {
        var lines: [LogLine] = []
        var dropped: Int64 = 0
        var file: FileHandle?
        var fileURL: URL?
        var fileBytes: Int = 0
    }

    private let state = Mutex(State())
    let capacity: Int
    static let rotateBytes = 10 << 20
    static let keptFiles = 3

    public init(capacity: Int = 5000) { self.capacity = capacity }

    /// Also write every line to `file`, rotated (`file.1`, `file.2`) past 10 MiB.
    public func writeToFile(_ file: URL) throws {
        try FileManager.default.createDirectory(
            at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: file.path) {
            _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: file)
        let size = Int(try handle.seekToEnd())
        state.withLock {
            $0.file = handle
            $0.fileURL = file
            $0.fileBytes = size
        }
    }

    func append(_ line: LogLine, rendered: String) {
        state.withLock { state in
            if state.lines.count >= capacity {
                state.lines.removeFirst(state.lines.count - capacity + 1)
                state.dropped += 1
            }
            state.lines.append(line)
            guard let file = state.file, let url = state.fileURL else { return }
            let data = Data(rendered.utf8)
            try? file.write(contentsOf: data)
            state.fileBytes += data.count
            if state.fileBytes > Self.rotateBytes {
                try? file.close()
                let manager = FileManager.default
                for index in stride(from: Self.keptFiles - 1, through: 1, by: -1) {
                    let from = index == 1 ? url : url.appendingPathExtension("\(index - 1)")
                    let to = url.appendingPathExtension("\(index)")
                    try? manager.removeItem(at: to)
                    try? manager.moveItem(at: from, to: to)
                }
                _ = manager.createFile(atPath: url.path, contents: nil)
                state.file = try? FileHandle(forWritingTo: url)
                state.fileBytes = 0
            }
        }
    }

    /// Deletes the rotated log files (`agent.log.1`, `agent.log.2`), for a full disk; the current file stays.
    /// Answers the bytes freed.
    func deleteRotatedFiles() -> Int64 {
        guard let url = state.withLock({ $0.fileURL }) else { return 0 }
        var freed: Int64 = 0
        for index in 1..<Self.keptFiles {
            let file = url.appendingPathExtension("\(index)")
            let size = DataVolume.size(of: file.path)
            if (try? FileManager.default.removeItem(at: file)) != nil { freed += size }
        }
        return freed
    }

    /// The oldest `limit` lines, left in the queue until ``remove(_:)``.
    func peek(limit: Int) -> [LogLine] { state.withLock { Array($0.lines.prefix(limit)) } }

    /// Removes the `count` oldest lines (sent).
    func remove(_ count: Int) { state.withLock { $0.lines.removeFirst(min(count, $0.lines.count)) } }

    /// Lines lost because the queue was full.
    public var dropped: Int64 { state.withLock { $0.dropped } }
}

/// A log handler writing to standard error (as `vantage run` does) and into a ``LogBuffer`` for the server.
public struct ShippingLogHandler: LogHandler {
    private var stream: StreamLogHandler
    private let buffer: LogBuffer
    private let label: String

    public init(label: String, buffer: LogBuffer = .shared) {
        self.label = label
        self.buffer = buffer
        stream = StreamLogHandler.standardError(label: label)
    }

    public var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { stream.metadata }
        set { stream.metadata = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { stream[metadataKey: key] }
        set { stream[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        stream.log(event: event)
        let (level, message, explicit) = (event.level, event.message, event.metadata)
        var all = stream.metadata
        if let explicit { all.merge(explicit) { $1 } }
        let instance = all.removeValue(forKey: "instance.id").map { "\($0)" }
        let details = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let text = details.isEmpty ? "\(message)" : "\(message) \(details)"
        let now = Date()
        buffer.append(
            LogLine(time: now, instanceId: instance, level: level.rawValue, message: text),
            rendered: "\(APIJSON.formatTime(now)) \(level.rawValue) \(instance.map { "[\($0)] " } ?? "")\(text)\n")
    }
}
