import Foundation
import Logging
import Synchronization
import VantageCore
import VantageMedia
import VantageOutputs

/// Makes a runtime's events: each gets an ID and a type, its snapshot (the frame with its overlays, as JPEG) is
/// written once to the local event folder, and the event is recorded in the instance's one outbox through its
/// ``EventRecorder`` (the runtime's own ``EventPipeline`` under `vantage run`, whose built-in `@events` sink writes
/// the JSON lines; the agent's pipeline for the instance under `vantage agent`). A rule may ask for a clip, cut from
/// the camera's packet ring once the post-roll is recorded.
///
/// An event is acknowledged to the application only after its snapshot was written and flushed and the outbox
/// stored it, so an accepted event is not lost; a write that fails (disk full, folder gone) is refused with a
/// message saying so.
final class EventSink: @unchecked Sendable {
    // Unchecked: the mutable stored properties (a non-Sendable JPEG encoder among them) are only touched under
    // `lock`.

    private let lock = NSLock()
    private let encoder = JPEGEncoder(quality: 85)
    private var scratch: [UInt8] = []
    private var jpeg: [UInt8] = []
    private var written: UInt64 = 0
    private let snapshotsDirectory: URL
    private let clipsDirectory: URL
    /// Where events are recorded.
    let recorder: any EventRecorder
    /// Seconds of video before and after an event's time in its clip.
    private let clipPreRoll: Double
    private let clipPostRoll: Double
    /// Cuts a clip of a camera (by its name in the application) covering a time range into a file.
    private let clipWriter: (@Sendable (String, Date, Date, URL) throws -> Void)?
    private let logger: Logger

    init(
        recorder: any EventRecorder, snapshotsDirectory: URL, clipsDirectory: URL? = nil,
        clipPreRoll: Double = 5, clipPostRoll: Double = 5,
        clipWriter: (@Sendable (String, Date, Date, URL) throws -> Void)? = nil,
        logger: Logger = Logger(label: "vantage.events")
    ) {
        self.recorder = recorder
        self.clipPreRoll = clipPreRoll
        self.clipPostRoll = clipPostRoll
        self.clipWriter = clipWriter
        self.logger = logger
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

    /// Records one event: its snapshot file first, then the event in the outbox.
    func emit(
        _ envelope: Envelope, application: String, payload: String, parsed: JSONValue? = nil, snapshot: SnapshotSource?
    ) throws {
        let snapshotPath = try snapshot.map { snapshot in
            try lock.withLock { try writeSnapshot(snapshot, time: envelope.time, id: envelope.id) }
        }
        let event = OutgoingEvent(
            id: envelope.id, type: envelope.type, time: envelope.time, camera: envelope.camera ?? snapshot?.stream,
            source: envelope.source, phase: envelope.phase,
            payload: parsed ?? JSONValue(parsing: payload) ?? .object([:]), snapshotFile: snapshotPath)
        let recorded: EventPipeline.Recorded
        do {
            recorded = try recorder.record(event)
        } catch let error as RuntimeError {
            throw error
        } catch {
            throw RuntimeError("the event could not be stored: \(error)")
        }
        lock.withLock { written += 1 }
        scheduleClip(for: event, recorded: recorded)
    }

    /// When a rule asked for a clip, cuts it once the post-roll is recorded and tells the outbox.
    private func scheduleClip(for event: OutgoingEvent, recorded: EventPipeline.Recorded) {
        guard recorded.wantsClip, let sequence = recorded.sequence else { return }
        let recorder = self.recorder
        guard let camera = event.camera, let clipWriter else {
            try? recorder.clipFinished(
                sequence: sequence, file: nil,
                error: event.camera == nil ? "the event names no camera" : "clips are not available here")
            return
        }
        let file = clipsDirectory.appendingPathComponent("\(Self.fileStamp(event.time))-\(camera)-\(event.id).mp4")
        let from = event.time.addingTimeInterval(-clipPreRoll)
        let to = event.time.addingTimeInterval(clipPostRoll)
        let logger = self.logger
        let directory = clipsDirectory
        let postRoll = clipPostRoll
        // Cutting waits for the post-roll and writes a file: blocking work, on a thread of its own (clips are rare).
        let thread = Thread {
            Thread.sleep(forTimeInterval: postRoll + 0.5)
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                try clipWriter(camera, from, to, file)
                try recorder.clipFinished(sequence: sequence, file: file.path, error: nil)
            } catch {
                logger.warning(
                    "could not cut the event's clip", metadata: ["camera": "\(camera)", "error": "\(error)"])
                try? recorder.clipFinished(sequence: sequence, file: nil, error: "\(error)")
            }
        }
        thread.name = "vantage.clip"
        thread.start()
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
