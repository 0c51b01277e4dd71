import Foundation
import Logging
import Synchronization
import VantageCore
import VantageMedia
import VantageOutputs

/// Where a runtime's events go when not to a file: `vantage agent` stores them in its outbox.
public protocol EventDestination: Sendable {
    /// Stores one event durably before returning; throws (with a message for the application) when it cannot.
    func store(_ event: RuntimeEvent) throws
}

/// One event an application published.
public struct RuntimeEvent: Sendable {
    public var time: Date
    public var application: String
    /// The code node that published it.
    public var node: String
    /// The camera stream of its snapshot's frame, when it has one.
    public var stream: String?
    /// The application's JSON object, as it sent it.
    public var payload: String
    /// The snapshot with its overlays drawn, as JPEG.
    public var snapshotJPEG: [UInt8]?
    /// Unique per event (the same for every phase of an object's event).
    public var id: String = UUID().uuidString.lowercased()
    /// The event's type: the payload's `"type"`, `app`, or an analytics type such as `line.cross`.
    public var type: String = "app"
}

/// Records events: each gets an ID and a type, its snapshot JPEG is written to the local event folder, a JSON line
/// goes to the events file (or standard output), and — when outputs are configured — the event enters the sinks'
/// outbox, which may ask for a clip (cut from the camera's packet ring once the post-roll is recorded).
///
/// An event is acknowledged to the application only after its line (and snapshot) were written and flushed and the
/// outbox stored it, so an accepted event is not lost; a write that fails (disk full, folder gone) is refused with a
/// message saying so.
final class EventSink: @unchecked Sendable {
    // Unchecked: the mutable stored properties (a non-Sendable JPEG encoder among them) are only touched under
    // `lock`.

    private let lock = NSLock()
    private let handle: FileHandle
    private let encoder = JPEGEncoder(quality: 85)
    private var scratch: [UInt8] = []
    private var jpeg: [UInt8] = []
    private var written: UInt64 = 0
    private let snapshotsDirectory: URL
    private let clipsDirectory: URL
    let destinationName: String
    /// When set, events go there instead of to `handle`.
    private let destination: (any EventDestination)?
    /// The sinks' outbox and workers, when outputs are configured.
    let pipeline: EventPipeline?
    /// Cuts a clip of a camera (by its name in the application) covering a time range into a file.
    private let clipWriter: (@Sendable (String, Date, Date, URL) throws -> Void)?
    private let logger: Logger

    init(
        file: URL?, snapshotsDirectory: URL, clipsDirectory: URL? = nil, destination: (any EventDestination)? = nil,
        pipeline: EventPipeline? = nil, clipWriter: (@Sendable (String, Date, Date, URL) throws -> Void)? = nil,
        logger: Logger = Logger(label: "vantage.events")
    ) throws {
        self.destination = destination
        self.pipeline = pipeline
        self.clipWriter = clipWriter
        self.logger = logger
        if let destination {
            handle = FileHandle.standardOutput
            destinationName = "\(type(of: destination))"
        } else if let file {
            let fm = FileManager.default
            try fm.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            if !fm.fileExists(atPath: file.path) { _ = fm.createFile(atPath: file.path, contents: nil) }
            guard let h = FileHandle(forWritingAtPath: file.path) else {
                throw RuntimeError("cannot write events to \(file.path): check the folder's permissions")
            }
            h.seekToEndOfFile()
            handle = h
            destinationName = file.path
        } else {
            handle = FileHandle.standardOutput
            destinationName = "standard output"
        }
        self.snapshotsDirectory = snapshotsDirectory
        self.clipsDirectory =
            clipsDirectory ?? snapshotsDirectory.deletingLastPathComponent().appendingPathComponent("clips")
    }

    var count: UInt64 { lock.withLock { written } }

    /// A snapshot to write with an event: a frame's pixels and the overlays to draw on a copy of them.
    struct Snapshot {
        var image: ImageBuffer
        var overlays: [Overlay]
        var stream: String
    }

    /// An event's snapshot: a frame to encode now, or a JPEG encoded earlier (an object's best view).
    enum SnapshotSource {
        case frame(Snapshot)
        case jpeg([UInt8], stream: String)

        var stream: String {
            switch self {
            case .frame(let s): s.stream
            case .jpeg(_, let stream): stream
            }
        }
    }

    /// What an event is, besides its payload.
    struct Envelope {
        var id = UUID().uuidString.lowercased()
        var type: String
        var time = Date()
        var camera: String?
        /// `node:<code node>` or `analytics:<analytics node>`.
        var source: String
        var phase: String?
    }

    /// Writes one event an application published. `payload` is the application's JSON object, kept as it is; its
    /// `"type"` member, when it is text, is the event's type (`app` otherwise).
    func write(application: String, node: String, payload: String, snapshot: Snapshot?) throws {
        let parsed = JSONValue(parsing: payload) ?? .object([:])
        let type = parsed["type"]?.stringValue ?? "app"
        try emit(
            Envelope(type: type, camera: snapshot?.stream, source: "node:\(node)"), application: application,
            payload: payload, parsed: parsed, snapshot: snapshot.map(SnapshotSource.frame))
    }

    /// Writes one event: snapshot file, JSON line (or the agent's destination), then the sinks' outbox.
    func emit(
        _ envelope: Envelope, application: String, payload: String, parsed: JSONValue? = nil, snapshot: SnapshotSource?
    ) throws {
        let time = envelope.time
        let node = envelope.source.hasPrefix("node:") ? String(envelope.source.dropFirst(5)) : envelope.source
        if let destination {
            let jpeg = try snapshot.map { snapshot in try lock.withLock { try encodeSnapshot(snapshot) } }
            try destination.store(
                RuntimeEvent(
                    time: time, application: application, node: node, stream: snapshot?.stream, payload: payload,
                    snapshotJPEG: jpeg, id: envelope.id, type: envelope.type))
            lock.withLock { written += 1 }
            if pipeline != nil {
                // The JPEG made for the destination, written as it is (not encoded again).
                let path = try jpeg.map { bytes in
                    try lock.withLock {
                        try writeSnapshot(.jpeg(bytes, stream: snapshot!.stream), time: time, id: envelope.id)
                    }
                }
                try record(envelope, payload: parsed ?? JSONValue(parsing: payload) ?? .object([:]), snapshotFile: path)
            }
            return
        }
        try lock.withLock {
            var snapshotPath: String?
            if let snapshot {
                snapshotPath = try writeSnapshot(snapshot, time: time, id: envelope.id)
            }
            var line = "{\"time\":\"\(Self.format(time))\",\"id\":\(jsonString(envelope.id)),"
            line += "\"type\":\(jsonString(envelope.type)),\"application\":\(jsonString(application)),"
            line += "\"node\":\(jsonString(node)),"
            if let camera = envelope.camera ?? snapshot?.stream { line += "\"camera\":\(jsonString(camera))," }
            if let phase = envelope.phase { line += "\"phase\":\(jsonString(phase))," }
            if let snapshot {
                line += "\"stream\":\(jsonString(snapshot.stream)),\"snapshot\":\(jsonString(snapshotPath!)),"
            }
            line += "\"payload\":\(payload)}\n"
            do {
                try handle.write(contentsOf: Data(line.utf8))
                try handle.synchronize()
            } catch let error as NSError where error.domain == NSPOSIXErrorDomain && error.code == Int(EINVAL) {
                // Standard output to a terminal or pipe cannot be synchronised; the write itself went through.
            } catch {
                throw RuntimeError(
                    "cannot write the event to \(destinationName): \(error.localizedDescription); free disk space or fix the path"
                )
            }
            written += 1
            if pipeline != nil {
                try record(
                    envelope, payload: parsed ?? JSONValue(parsing: payload) ?? .object([:]), snapshotFile: snapshotPath
                )
            }
        }
    }

    /// Puts the event into the sinks' outbox and, when a rule asks for a clip, schedules it after the post-roll.
    private func record(_ envelope: Envelope, payload: JSONValue, snapshotFile: String?) throws {
        guard let pipeline else { return }
        let recorded: EventPipeline.Recorded
        do {
            recorded = try pipeline.record(
                OutgoingEvent(
                    id: envelope.id, type: envelope.type, time: envelope.time, camera: envelope.camera,
                    source: envelope.source, phase: envelope.phase, payload: payload, snapshotFile: snapshotFile))
        } catch {
            throw RuntimeError("the event could not be stored for its sinks: \(error)")
        }
        guard recorded.wantsClip, let sequence = recorded.sequence else { return }
        let events = pipeline.configuration.events
        guard let camera = envelope.camera, let clipWriter else {
            try? pipeline.clipFinished(
                sequence: sequence, file: nil,
                error: envelope.camera == nil ? "the event names no camera" : "clips are not available here")
            return
        }
        let file = clipsDirectory.appendingPathComponent(
            "\(Self.fileStamp(envelope.time))-\(camera)-\(envelope.id).mp4")
        let from = envelope.time.addingTimeInterval(-events.clipPreRoll)
        let to = envelope.time.addingTimeInterval(events.clipPostRoll)
        let logger = self.logger
        let directory = clipsDirectory
        DispatchQueue.global().asyncAfter(deadline: .now() + events.clipPostRoll + 0.5) {
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                try clipWriter(camera, from, to, file)
                try pipeline.clipFinished(sequence: sequence, file: file.path, error: nil)
            } catch {
                logger.warning(
                    "could not cut the event's clip", metadata: ["camera": "\(camera)", "error": "\(error)"])
                try? pipeline.clipFinished(sequence: sequence, file: nil, error: "\(error)")
            }
        }
    }

    /// Draws the overlays on a copy of the frame and encodes it as JPEG into `jpeg`; answers a copy of the bytes.
    /// Called under `lock`.
    @discardableResult
    private func encodeSnapshot(_ source: SnapshotSource) throws -> [UInt8] {
        switch source {
        case .jpeg(let bytes, _):
            jpeg = bytes
        case .frame(let snapshot):
            jpeg = try Self.encode(snapshot, encoder: encoder, scratch: &scratch)
        }
        return jpeg
    }

    /// Draws `snapshot`'s overlays on a copy of its frame (in `scratch`) and encodes the copy as JPEG.
    static func encode(_ snapshot: Snapshot, encoder: JPEGEncoder, scratch: inout [UInt8]) throws -> [UInt8] {
        let image = snapshot.image
        let bytes = image.stride * image.height
        if scratch.count < bytes { scratch = [UInt8](repeating: 0, count: bytes) }
        var out: [UInt8] = []
        try scratch.withUnsafeMutableBytes { raw in
            raw.baseAddress!.copyMemory(from: image.base, byteCount: bytes)
            let copy = ImageBuffer(
                base: raw.baseAddress!, width: image.width, height: image.height, stride: image.stride)
            ImageCanvas.draw(snapshot.overlays, on: copy)
            try encoder.encode(copy, into: &out)
        }
        return out
    }

    /// Encodes the snapshot and writes it as a JPEG (flushed to disk). Called under `lock`.
    private func writeSnapshot(_ snapshot: SnapshotSource, time: Date, id: String) throws -> String {
        try encodeSnapshot(snapshot)
        let fm = FileManager.default
        try fm.createDirectory(at: snapshotsDirectory, withIntermediateDirectories: true)
        let stamp = Self.fileStamp(time)
        let url = snapshotsDirectory.appendingPathComponent("\(stamp)-\(snapshot.stream)-\(id.prefix(8)).jpg")
        do {
            try Data(jpeg).write(to: url, options: .atomic)
            if let h = FileHandle(forWritingAtPath: url.path) {
                try? h.synchronize()
                try? h.close()
            }
        } catch {
            throw RuntimeError(
                "cannot write the snapshot \(url.path): \(error.localizedDescription); free disk space or choose --snapshots DIR"
            )
        }
        return url.path
    }

    private static func format(_ date: Date) -> String {
        date.formatted(
            .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    private static func fileStamp(_ date: Date) -> String {
        let micros = Int64(date.timeIntervalSince1970 * 1e6)
        return "\(micros / 1_000_000)-\(String(format: "%06d", Int(micros % 1_000_000)))"
    }
}

/// A runtime failure worded for the user.
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
