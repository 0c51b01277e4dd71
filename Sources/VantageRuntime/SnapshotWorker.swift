import Foundation
import VantageCore
import VantageMedia

/// Encodes an analytics node's snapshots and records its events on a thread of its own, in the order the node made
/// them, so that the node's frame loop never waits for a JPEG encoder or the disk (it used to encode every snapshot
/// and best view itself, about 7 core-ms a frame in `make bench`).
///
/// The loop copies a frame it needs a picture of into one of a few buffers (allocated once, at the first snapshot)
/// and hands over the copy with its overlays. When every buffer is taken — the worker is behind — the picture is
/// skipped: an object's best view is not updated, an event goes without its snapshot (counted); the event itself is
/// never dropped. Images go before metadata.
final class SnapshotWorker: @unchecked Sendable {
    // Unchecked: `jobs`, `free`, `stopping` and `skipped` are touched only under `condition`; each buffer belongs to
    // the loop (while it copies into it) or to the worker (from the job until it is encoded), never to both; the
    // encoder, the scratch and `best` are the worker thread's alone.

    /// A copy of a frame waiting to be encoded.
    struct Picture {
        var buffer: Int
        var width: Int
        var height: Int
        var stride: Int
        var overlays: [Overlay]
    }

    /// What an event's snapshot is.
    enum Snapshot {
        /// This frame, with overlays.
        case picture(Picture)
        /// The best view kept for a track so far.
        case bestView(track: Int)
    }

    enum Job {
        /// Keep this picture as the track's best view.
        case capture(track: Int, Picture)
        /// Encode the snapshot (if any) and record the event.
        case emit(EventSink.Envelope, payload: JSONValue, snapshot: Snapshot?)
        /// The track ended: forget its best view.
        case forget(track: Int)
    }

    private let events: EventSink
    private let application: String
    private let stream: String
    /// Called on the worker when an event could not be recorded.
    private let failed: @Sendable (any Error) -> Void
    /// Events recorded, and the last failure.
    private var recordedCount: UInt64 = 0
    private var lastFailure: String?
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var buffers: [UnsafeMutableRawBufferPointer] = []
    private var free: [Int] = []
    private var stopping = false
    private var finished = false
    private var skipped: UInt64 = 0
    private let encoder = JPEGEncoder(quality: 85)
    private var scratch: [UInt8] = []
    private var best: [Int: [UInt8]] = [:]
    private static let bufferCount = 4

    init(
        events: EventSink, application: String, stream: String,
        failed: @escaping @Sendable (any Error) -> Void
    ) {
        self.events = events
        self.application = application
        self.stream = stream
        self.failed = failed
        let thread = Thread { [self] in work() }
        thread.name = "vantage.snapshots.\(stream)"
        thread.start()
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
    }

    /// Pictures skipped because every buffer was taken.
    var skippedPictures: UInt64 { condition.withLock { skipped } }

    /// Events recorded so far, and the last failure to record one.
    var results: (UInt64, String?) { condition.withLock { (recordedCount, lastFailure) } }

    /// Copies `image` into a free buffer for a job; nil (counted) when none is free.
    func copy(_ image: ImageBuffer, overlays: [Overlay]) -> Picture? {
        let bytes = image.stride * image.height
        let index: Int? = condition.withLock {
            if buffers.isEmpty {
                // Allocated once, at the first picture: the frame size is known only then.
                buffers = (0..<Self.bufferCount).map { _ in
                    UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
                }
                free = Array(buffers.indices)
            }
            guard let index = free.popLast(), buffers[index].count >= bytes else {
                skipped += 1
                return nil
            }
            return index
        }
        guard let index else { return nil }
        buffers[index].baseAddress!.copyMemory(from: image.base, byteCount: bytes)
        return Picture(
            buffer: index, width: image.width, height: image.height, stride: image.stride, overlays: overlays)
    }

    func submit(_ job: Job) {
        condition.withLock {
            jobs.append(job)
            condition.signal()
        }
    }

    /// Records what is queued and ends the worker; returns when it did.
    func finish() {
        condition.withLock {
            stopping = true
            condition.signal()
            while !finished { condition.wait() }
        }
    }

    private func work() {
        while true {
            let next: [Job] = condition.withLock {
                while jobs.isEmpty && !stopping { condition.wait() }
                defer { jobs.removeAll(keepingCapacity: true) }
                return jobs
            }
            if next.isEmpty {
                condition.withLock {
                    finished = true
                    condition.broadcast()
                }
                return
            }
            for job in next { run(job) }
        }
    }

    private func run(_ job: Job) {
        switch job {
        case .capture(let track, let picture):
            if let jpeg = encode(picture) { best[track] = jpeg }
        case .forget(let track):
            best[track] = nil
        case .emit(let envelope, let payload, let snapshot):
            var jpeg: [UInt8]?
            switch snapshot {
            case .picture(let picture)?: jpeg = encode(picture)
            case .bestView(let track)?: jpeg = best[track]
            case nil: break
            }
            do {
                try events.emit(
                    envelope, application: application, payload: payload.jsonText, parsed: payload,
                    snapshot: jpeg.map { .jpeg($0, stream: stream) })
                condition.withLock { recordedCount += 1 }
            } catch {
                condition.withLock { lastFailure = "\(error)" }
                failed(error)
            }
        }
    }

    /// Encodes a picture and gives its buffer back.
    private func encode(_ picture: Picture) -> [UInt8]? {
        let base = buffers[picture.buffer].baseAddress!
        defer { condition.withLock { free.append(picture.buffer) } }
        let image = ImageBuffer(base: base, width: picture.width, height: picture.height, stride: picture.stride)
        return try? EventSink.encode(
            EventSink.Snapshot(image: image, overlays: picture.overlays, stream: stream), encoder: encoder,
            scratch: &scratch)
    }
}
