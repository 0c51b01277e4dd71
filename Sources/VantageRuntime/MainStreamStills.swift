import CVantageShims
import Foundation
import Logging
import VantageCore
import VantageMedia

/// The event snapshots of one camera that detects on its sub-stream, decoded from its main stream.
///
/// Every snapshot worker that pictures this camera (its analytics nodes', the code nodes') asks this one object, so
/// the camera has one decoder, one set of counters for `/status` (`cameras[].main`) and one log line per outage. A
/// picture is decoded from the main stream's packet ring at the sub-stream frame's time (a ``StillFrameDecoder``:
/// its group of pictures, about 100 core-ms at 1080p, on the calling worker's thread), the same overlays are drawn on
/// it (they are fractions of the frame, so they land where detection put them) and it is encoded by the caller. When
/// the main stream has no frame for that time (not connected, stalled, ring too short, a codec or decode failure) the
/// caller keeps the sub-stream's picture: counted, logged once per outage.
///
/// A box with many cameras must not pay for this in its frame loops: one picture is decoded at a time in the whole
/// process (a burst of events on many cameras queues here, on the snapshot threads, instead of taking every core),
/// and the decoder is made for each picture and freed after it (an H.264 decoder at 1080p and its buffers are tens of
/// MB: kept per camera, 16 cameras held 540 MB more for pictures taken a few times a minute).
final class MainStreamStills: @unchecked Sendable {
    // Unchecked: the counters are used only under `lock`.
    private let lock = NSLock()
    /// One picture decoded at a time, process-wide.
    private static let decoding = NSLock()
    let camera: String
    private let stream: CameraStream
    private let logger: Logger
    private var failing = false
    private var counts = Counts()

    struct Counts: Sendable, Equatable {
        /// Snapshots taken from the main stream (decoded, or a best view decoded before), and fallbacks.
        var main: UInt64 = 0
        var fallbacks: UInt64 = 0
        var lastFallback: String?
        /// CPU time of the frames decoded (group of pictures and colour conversion, overlays, JPEG), and how many.
        var cpuNanos: UInt64 = 0
        var decoded: UInt64 = 0
    }

    /// Stills of `camera` from its main stream `stream`; nil for a main stream that is a file (read at once, unpaced,
    /// so its packets' times are not its frames': its snapshots stay on the sub-stream).
    init?(camera: String, stream: CameraStream, logger: Logger) {
        guard stream.source.kind != .file else { return nil }
        self.camera = camera
        self.stream = stream
        self.logger = logger
    }

    var current: Counts { lock.withLock { counts } }

    /// Decodes the main stream's frame at `timeMicros`, lets `body` draw on it and encode it; nil when there is no
    /// frame for that time (counted and, at the first of an outage, logged), or `body` threw.
    func picture(at timeMicros: Int64?, _ body: (ImageBuffer) throws -> [UInt8]) -> [UInt8]? {
        do {
            guard let timeMicros else { throw RuntimeError("the picture has no time") }
            let time = Date(timeIntervalSince1970: Double(timeMicros) / 1e6)
            // The main stream may still be on its way to that time: wait for it before taking the process's turn.
            var decoder: StillFrameDecoder? = StillFrameDecoder(camera: stream)
            decoder?.waitForCamera(through: time, upTo: .seconds(1))
            let (jpeg, cpu) = try Self.decoding.withLock {
                let started = threadCPUNanos()
                defer {
                    decoder = nil  // its codec context and buffers are freed here, then given back
                    releaseFreedMemory()
                }
                let jpeg = try body(try decoder!.frame(at: time, waitUpTo: .zero))
                return (jpeg, threadCPUNanos() &- started)
            }
            lock.lock()
            defer { lock.unlock() }
            counts.main += 1
            counts.decoded += 1
            counts.cpuNanos += cpu
            if failing {
                failing = false
                logger.info("event snapshots come from the main stream again", metadata: ["camera": "\(camera)"])
            }
            return jpeg
        } catch {
            lock.lock()
            defer { lock.unlock() }
            counts.fallbacks += 1
            counts.lastFallback = "\(error)"
            if !failing {
                failing = true
                logger.warning(
                    "event snapshots are taken from the sub-stream: the main stream has no frame for them",
                    metadata: ["camera": "\(camera)", "error": "\(error)"])
            }
            return nil
        }
    }

    /// Gives the memory of the picture's decoder back to the system. Each snapshot worker thread frees into its own
    /// malloc arena, which keeps what was freed: without this, every camera's worker kept a decoder's worth (170 MB
    /// for 16 cameras in `bench/cameras`).
    private func releaseFreedMemory() {
        _ = vantage_release_free_memory()
    }

    /// Counts a snapshot taken from the main stream earlier and used again (an object's best view, per event).
    func reused() { lock.withLock { counts.main += 1 } }
}
