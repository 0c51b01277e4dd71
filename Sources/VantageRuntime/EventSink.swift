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
/// An event is acknowledged to the application only after the outbox stored it, so an accepted event is not lost; a
/// write that fails (disk full, folder gone) is refused with a message saying so. A code node's snapshot is not on
/// that path: the frame is copied into a buffer of a ``SnapshotWorker``, the event is stored with its snapshot
/// pending (its file named already), the application is answered, and the worker encodes and writes the JPEG and
/// tells the outbox, whose sinks wait for it meanwhile. When every buffer is taken (the worker is behind), the
/// snapshot is encoded and written before the event is stored, as an analytics node's are: the publish is slower,
/// but a code node's picture is never dropped.
final class EventSink: @unchecked Sendable {
    // Unchecked: the mutable stored properties (a non-Sendable JPEG encoder among them) are only touched under
    // `lock`.

    private let lock = NSLock()
    private let encoder = JPEGEncoder(quality: 85)
    private var scratch: [UInt8] = []
    private var written: UInt64 = 0
    /// Writes code nodes' snapshots after their events are stored; made at the first one.
    private var worker: SnapshotWorker?
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

    deinit {
        // The snapshots still queued are written (their events wait for them in the outbox).
        worker?.finish()
    }

    var count: UInt64 { lock.withLock { written } }

    /// Code nodes' snapshots encoded on the publish path because every buffer of the worker was taken.
    var inlineSnapshots: UInt64 { lock.withLock { worker?.skippedPictures ?? 0 } }

    /// Writes the snapshots queued so far; returns when they are written and their events told.
    func finishSnapshots() {
        let worker = lock.withLock {
            defer { self.worker = nil }
            return self.worker
        }
        worker?.finish()
    }

    /// A snapshot to write with an event: a frame's pixels and the overlays to draw on a copy of them.
    struct Snapshot {
        var image: ImageBuffer
        var overlays: [Overlay]
        var stream: String
        /// The camera's main stream, to decode the snapshot from at `timeMicros` (the image is kept in case it cannot).
        var main: MainStreamStills?
        var timeMicros: Int64?
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

    /// Writes one event an application published. `payload` is the application's JSON object, kept as it is; its
    /// `"type"` member, when it is text, is the event's type (`app` otherwise). The snapshot's frame is copied before
    /// this returns (the caller may reuse it at once) and written after the event is stored (see the type's comment).
    func write(application: String, node: String, payload: String, snapshot: Snapshot?) throws {
        let parsed = JSONValue(parsing: payload) ?? .object([:])
        var event = OutgoingEvent(
            type: parsed["type"]?.stringValue ?? "app", camera: snapshot?.stream, source: "node:\(node)",
            payload: parsed)
        guard let snapshot else { return try emit(event, snapshot: nil) }
        let worker = snapshotWorker()
        guard
            let picture = worker.copy(
                snapshot.image, overlays: snapshot.overlays, timeMicros: snapshot.timeMicros, main: snapshot.main)
        else {
            // Every buffer is taken: encode it here rather than lose the application's picture.
            return try emit(event, snapshot: .frame(snapshot))
        }
        let file = snapshotURL(time: event.time, stream: snapshot.stream, id: event.id)
        event.snapshotFile = file.path
        event.snapshotPending = true
        let recorded: EventPipeline.Recorded
        do {
            recorded = try record(event)
        } catch {
            worker.release(picture)
            throw error
        }
        worker.submit(.write(picture, file: file, sequence: recorded.sequence))
        scheduleClip(for: event, recorded: recorded)
    }

    /// Records one event: its snapshot file first (encoded here when it is a frame), then the event in the outbox.
    func emit(_ event: OutgoingEvent, snapshot: SnapshotSource?) throws {
        var event = event
        if let snapshot {
            if event.camera == nil { event.camera = snapshot.stream }
            event.snapshotFile = try lock.withLock {
                try writeSnapshot(snapshot, time: event.time, id: event.id).path
            }
        }
        scheduleClip(for: event, recorded: try record(event))
    }

    /// Stores the event in the outbox (durably) and counts it.
    private func record(_ event: OutgoingEvent) throws -> EventPipeline.Recorded {
        let recorded: EventPipeline.Recorded
        do {
            recorded = try recorder.record(event)
        } catch let error as RuntimeError {
            throw error
        } catch {
            throw RuntimeError("the event could not be stored: \(error)")
        }
        lock.withLock { written += 1 }
        return recorded
    }

    /// The code nodes' snapshot worker, made at the first snapshot.
    private func snapshotWorker() -> SnapshotWorker {
        lock.withLock {
            if let worker { return worker }
            let logger = self.logger
            let made = SnapshotWorker(recorder: recorder) { error in
                logger.warning("the snapshot of an event could not be written", metadata: ["error": "\(error)"])
            }
            worker = made
            return made
        }
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
        // Cutting waits for the post-roll (the clip writer waits, woken by the camera's frames) and writes a file:
        // blocking work, on a thread of its own (clips are rare).
        let thread = Thread {
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

    /// Where the snapshot of event `id` goes: named before it is written, so that its event can name it.
    private func snapshotURL(time: Date, stream: String, id: String) -> URL {
        snapshotsDirectory.appendingPathComponent("\(Self.fileStamp(time))-\(stream)-\(id.prefix(8)).jpg")
    }

    /// Encodes the snapshot (a frame) and writes it as a JPEG, flushed to disk. Called under `lock`.
    private func writeSnapshot(_ snapshot: SnapshotSource, time: Date, id: String) throws -> URL {
        let jpeg: [UInt8]
        switch snapshot {
        case .jpeg(let bytes, _): jpeg = bytes
        case .frame(let frame): jpeg = try Self.encode(frame, encoder: encoder, scratch: &scratch)
        }
        let url = snapshotURL(time: time, stream: snapshot.stream, id: id)
        try Self.store(jpeg, at: url)
        return url
    }

    /// Writes a JPEG to `url` (its folder made when needed) and flushes it to disk.
    static func store(_ jpeg: [UInt8], at url: URL) throws {
        do {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
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
