import Foundation
import VantageCore

/// The local events file of `vantage run` (`--events FILE`, or standard output): one JSON line per event, the same
/// message every other sink gets, with the local snapshot (and clip) file as `"snapshot": {"file": PATH, …}`. A built-in sink (`@events`): it takes every event, whatever the rules say, and writes it flushed to disk.
public final class EventsFileSink: StoredEventSink {
    /// The built-in sink's name.
    public static let name = "@events"

    private let handle: FileHandle
    /// The file, or "standard output", for messages.
    public let destination: String
    private let synchronize: Bool
    private let io = BlockingQueue(label: "vantage.events-file")

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
        var text = Self.line(event, message: message)
        text.append(0x0A)
        let line = text
        let (handle, synchronize, destination) = (self.handle, self.synchronize, self.destination)
        // A write and an fsync: off the cooperative pool.
        try await io.run { () throws(SinkError) in
            do {
                try handle.write(contentsOf: line)
                if synchronize { try handle.synchronize() }
            } catch {
                throw SinkError(
                    sink: Self.name,
                    "cannot write the event to \(destination): \(error.localizedDescription); free disk space or fix "
                        + "the path (the event stays in the outbox and is written when it can be)")
            }
        }
    }

    /// The event's line: its message, with the local snapshot and clip files as `file` (beside what an object store
    /// said about them, when one took them).
    static func line(_ event: StoredEvent, message: JSONValue) -> Data {
        guard case .object(var o) = message else { return Data(message.jsonText.utf8) }
        func addFile(_ file: String?, to key: String) {
            guard let file else { return }
            var part: [String: JSONValue] = [:]
            if case .object(let existing)? = o[key] { part = existing }
            part["file"] = .string(file)
            o[key] = .object(part)
        }
        addFile(event.snapshotFile, to: "snapshot")
        addFile(event.clipState == .ready ? event.clipFile : nil, to: "clip")
        return Data(JSONValue.object(o).jsonText.utf8)
    }

    public func shutdown() async {}
}
