import Foundation
import VantageCore
import VantageMedia
import VantageOutputs

/// Encodes snapshots on a thread of its own, so that whoever made the event never waits for a JPEG encoder or the
/// disk (about 7 core-ms for a 1080p frame). It has two jobs:
///
/// - an analytics node's: encode its snapshots and best views and record its events, in the order the node made
///   them, off the node's frame loop;
/// - the code nodes' (one worker per ``EventSink``): encode the snapshot of an event already recorded with its
///   snapshot pending, write it (flushed), and tell the recorder, which then lets the event's sinks deliver it.
///
/// The caller copies a frame it needs a picture of into one of a few buffers (allocated once, at the first picture,
/// and grown only for a larger frame) and hands over the copy with its overlays. When every buffer is taken — the
/// worker is behind — ``copy(_:overlays:)`` answers nil (counted) and the caller decides: the analytics node skips
/// the picture (an object's best view is not updated, an event goes without its snapshot), an ``EventSink`` encodes a
/// code node's snapshot itself. An event is never dropped. Images go before metadata.
///
/// A picture of a camera that detects on a sub-stream may name the camera's ``MainStreamStills``: its event's snapshot
/// is then decoded from the main stream at the picture's time, on this thread, with the same overlays (the
/// sub-stream's copy is kept when the main stream has no frame for it). An analytics node's best views are still
/// taken from the sub-stream (every second at most, per track): the event that carries one gets the main stream's
/// frame of the same moment, decoded once per best view.
final class SnapshotWorker: @unchecked Sendable {
    // Unchecked: `jobs`, `free`, `buffers`, `stopping` and `skipped` are touched only under `condition`; each buffer
    // belongs to the caller (while it copies into it) or to the worker (from the job until it is encoded), never to
    // both, and a job carries its buffer's address; the encoder, the scratch and `best` are the worker thread's alone.

    /// A copy of a frame waiting to be encoded.
    struct Picture {
        var buffer: Int
        /// The frame's wall-clock time, microseconds since 1970 (nil: unknown).
        var timeMicros: Int64?
        /// The camera's main stream, when the snapshot is to be decoded from it at `timeMicros`.
        var main: MainStreamStills?
        var base: UnsafeMutableRawPointer
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
        /// Encode the snapshot (if any) and record the event (an analytics node's).
        case emit(OutgoingEvent, snapshot: Snapshot?)
        /// The track ended: forget its best view.
        case forget(track: Int)
        /// Encode the picture into `file` (flushed), then tell the recorder that the snapshot of event `sequence`
        /// (recorded with its snapshot pending; nil: routed to no sink) is written or failed.
        case write(Picture, file: URL, sequence: Int64?)
    }

    /// Records the analytics node's events (nil for the code nodes' worker, which records none).
    private let events: EventSink?
    private let recorder: any EventRecorder
    private let stream: String
    /// Called on the worker when an event could not be recorded or its snapshot written.
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
    private var best: [Int: BestView] = [:]

    /// A track's best view: its JPEG from the sub-stream, and what it takes to make it again from the main stream.
    private struct BestView {
        var jpeg: [UInt8]
        var timeMicros: Int64?
        var overlays: [Overlay]
        var stills: MainStreamStills?
        /// The same moment from the main stream, once an event needed it.
        var main: [UInt8]?
    }
    private static let bufferCount = 4

    /// An analytics node's worker: encodes the snapshots of the camera `stream` and records the events.
    convenience init(
        events: EventSink, application: String, stream: String, failed: @escaping @Sendable (any Error) -> Void
    ) {
        self.init(events: events, recorder: events.recorder, stream: stream, failed: failed)
    }

    /// The code nodes' worker: writes the snapshots of events `recorder` recorded with their snapshot pending.
    convenience init(recorder: any EventRecorder, failed: @escaping @Sendable (any Error) -> Void) {
        self.init(events: nil, recorder: recorder, stream: "code-nodes", failed: failed)
    }

    private init(
        events: EventSink?, recorder: any EventRecorder, stream: String,
        failed: @escaping @Sendable (any Error) -> Void
    ) {
        self.events = events
        self.recorder = recorder
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

    /// Copies `image`, taken at `timeMicros` (wall clock), into a free buffer for a job; nil (counted) when none is
    /// free. With `main`, the job's snapshot is decoded from the camera's main stream at that time, the copy kept in
    /// case it cannot be.
    func copy(
        _ image: ImageBuffer, overlays: [Overlay], timeMicros: Int64? = nil, main: MainStreamStills? = nil
    ) -> Picture? {
        let bytes = image.stride * image.height
        let taken: (Int, UnsafeMutableRawPointer)? = condition.withLock {
            if buffers.isEmpty {
                // Allocated once, at the first picture: the frame size is known only then.
                buffers = (0..<Self.bufferCount).map { _ in
                    UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
                }
                free = Array(buffers.indices)
            }
            guard let index = free.popLast() else {
                skipped += 1
                return nil
            }
            if buffers[index].count < bytes {
                // A larger frame than before (code nodes see every camera): this buffer grows, once.
                buffers[index].deallocate()
                buffers[index] = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
            }
            return (index, buffers[index].baseAddress!)
        }
        guard let (index, base) = taken else { return nil }
        base.copyMemory(from: image.base, byteCount: bytes)
        return Picture(
            buffer: index, timeMicros: timeMicros, main: main, base: base, width: image.width, height: image.height,
            stride: image.stride, overlays: overlays)
    }

    /// Gives back the buffer of a picture that will not be submitted.
    func release(_ picture: Picture) {
        condition.withLock { free.append(picture.buffer) }
    }

    func submit(_ job: Job) {
        condition.withLock {
            jobs.append(job)
            condition.signal()
        }
    }

    /// Does what is queued and ends the worker; returns when it did.
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
            let (time, overlays, stills) = (picture.timeMicros, picture.overlays, picture.main)
            if let jpeg = try? encode(picture) {
                best[track] = BestView(jpeg: jpeg, timeMicros: time, overlays: overlays, stills: stills)
            }
        case .forget(let track):
            best[track] = nil
        case .emit(let event, let snapshot):
            var jpeg: [UInt8]?
            switch snapshot {
            case .picture(let picture)?:
                jpeg = try? encodeFromMainStream(picture)
            case .bestView(let track)?:
                guard var view = best[track] else { break }
                if let stills = view.stills, view.main != nil {
                    stills.reused()
                } else if let stills = view.stills {
                    view.main = fromMainStream(stills, at: view.timeMicros, overlays: view.overlays)
                    best[track] = view
                }
                jpeg = view.main ?? view.jpeg
            case nil: break
            }
            do {
                guard let events else { preconditionFailure("an event to record on the code nodes' worker") }
                try events.emit(event, snapshot: jpeg.map { .jpeg($0, stream: stream) })
                condition.withLock { recordedCount += 1 }
            } catch {
                condition.withLock { lastFailure = "\(error)" }
                failed(error)
            }
        case .write(let picture, let file, let sequence):
            var written: String?
            var failure: String?
            do {
                try EventSink.store(try encodeFromMainStream(picture), at: file)
                written = file.path
            } catch {
                failure = "\(error)"
                failed(error)
            }
            guard let sequence else { return }
            do {
                try recorder.snapshotFinished(sequence: sequence, file: written, error: failure)
            } catch {
                failed(error)
            }
        }
    }

    /// The picture's snapshot from its camera's main stream when it names one and that has a frame for its time,
    /// else the picture itself; gives its buffer back either way.
    private func encodeFromMainStream(_ picture: Picture) throws -> [UInt8] {
        if let stills = picture.main,
            let jpeg = fromMainStream(stills, at: picture.timeMicros, overlays: picture.overlays)
        {
            release(picture)
            return jpeg
        }
        return try encode(picture)
    }

    /// The main stream's frame at `timeMicros` with `overlays`, as JPEG; nil (counted, logged) when it has none.
    private func fromMainStream(_ stills: MainStreamStills, at timeMicros: Int64?, overlays: [Overlay]) -> [UInt8]? {
        stills.picture(at: timeMicros) { image in
            ImageCanvas.draw(overlays, on: image)
            // An encoder for this picture only: one kept per worker would hold a 1080p encoder's buffers per camera.
            return try JPEGEncoder(quality: 85).encode(image)
        }
    }

    /// Encodes a picture and gives its buffer back.
    private func encode(_ picture: Picture) throws -> [UInt8] {
        defer { condition.withLock { free.append(picture.buffer) } }
        let image = ImageBuffer(
            base: picture.base, width: picture.width, height: picture.height, stride: picture.stride)
        return try EventSink.encode(
            EventSink.Snapshot(image: image, overlays: picture.overlays, stream: stream), encoder: encoder,
            scratch: &scratch)
    }
}
