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
final class MainStreamStills: @unchecked Sendable {
    // Unchecked: the decoder and every counter are used only under `lock`.
    private let lock = NSLock()
    let camera: String
    private let stream: CameraStream
    private let logger: Logger
    private var decoder: StillFrameDecoder?
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
        lock.lock()
        defer { lock.unlock() }
        let started = threadCPUNanos()
        do {
            guard let timeMicros else { throw RuntimeError("the picture has no time") }
            let decoder = decoder ?? StillFrameDecoder(camera: stream)
            self.decoder = decoder
            let jpeg = try body(try decoder.frame(at: Date(timeIntervalSince1970: Double(timeMicros) / 1e6)))
            counts.main += 1
            counts.decoded += 1
            counts.cpuNanos += threadCPUNanos() &- started
            if failing {
                failing = false
                logger.info("event snapshots come from the main stream again", metadata: ["camera": "\(camera)"])
            }
            return jpeg
        } catch {
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

    /// Counts a snapshot taken from the main stream earlier and used again (an object's best view, per event).
    func reused() { lock.withLock { counts.main += 1 } }
}
