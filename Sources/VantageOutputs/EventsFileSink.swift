import Foundation

/// The local events file of `vantage run` (`--events FILE`, or standard output): one JSON line per event, the same
/// message every other sink gets, with the local snapshot (and clip) as `{"file": PATH}` when no object store took
/// it. A built-in sink (`@events`): it takes every event, whatever the rules say, and writes it flushed to disk.
public final class EventsFileSink: StoredEventSink {
    /// The built-in sink's name.
    public static let name = "@events"

    private let handle: FileHandle
    /// The file, or "standard output", for messages.
    public let destination: String
    private let synchronize: Bool

    /// Appends to `file` (created with its folder when missing), or writes to standard output when nil.
    public init(file: URL?) throws(SinkError) {
        if let file {
            let fm = FileManager.default
            do {
                try fm.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            } catch {
                throw SinkError(
                    sink: Self.name, "cannot create the folder of \(file.path): \(error.localizedDescription)",
                    retryable: false)
            }
            if !fm.fileExists(atPath: file.path) { _ = fm.createFile(atPath: file.path, contents: nil) }
            guard let h = FileHandle(forWritingAtPath: file.path) else {
                throw SinkError(
                    sink: Self.name, "cannot write events to \(file.path): check the folder's permissions",
                    retryable: false)
            }
            h.seekToEndOfFile()
            handle = h
            destination = file.path
            synchronize = true
        } else {
            handle = FileHandle.standardOutput
            destination = "standard output"
            synchronize = false
        }
    }

    public func deliver(_ event: StoredEvent, message: JSONValue) async throws(SinkError) {
        var line = Self.line(event, message: message)
        line.append(0x0A)
        do {
            try handle.write(contentsOf: line)
            if synchronize { try handle.synchronize() }
        } catch {
            throw SinkError(
                sink: Self.name,
                "cannot write the event to \(destination): \(error.localizedDescription); free disk space or fix the "
                    + "path (the event stays in the outbox and is written when it can be)")
        }
    }

    /// The event's line: its message, with the local snapshot and clip files where no object store named them.
    static func line(_ event: StoredEvent, message: JSONValue) -> Data {
        guard case .object(var o) = message else { return Data(message.jsonText.utf8) }
        if o["snapshot"] == nil, let file = event.snapshotFile { o["snapshot"] = .object(["file": .string(file)]) }
        if o["clip"] == nil, event.clipState == .ready, let file = event.clipFile {
            o["clip"] = .object(["file": .string(file)])
        }
        return Data(JSONValue.object(o).jsonText.utf8)
    }

    public func shutdown() async {}
}
