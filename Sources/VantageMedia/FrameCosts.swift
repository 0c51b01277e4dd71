import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The CPU time a camera's frames cost in the runtime since the camera started, by stage: what `vantage run`'s
/// summary and `bench/run` break a frame's cost down with. Each stage is measured with the CPU clock of the thread
/// that does it (`CLOCK_THREAD_CPUTIME_ID`), so time spent waiting, or preempted by other work, is not counted.
public struct FrameCosts: Sendable, Codable, Equatable {
    /// Reading and decoding: the camera thread's CPU time, less the BGR conversions it made (below), seconds.
    public var decodeSeconds: Double = 0
    /// Scaling frames to models' input sizes and channel orders (swscale, straight into the input tensors), seconds.
    public var scaleSeconds: Double = 0
    /// Converting frames to full-size BGR for applications that read pixels, snapshots and the live view, seconds.
    public var colourSeconds: Double = 0

    public init(decodeSeconds: Double = 0, scaleSeconds: Double = 0, colourSeconds: Double = 0) {
        self.decodeSeconds = decodeSeconds
        self.scaleSeconds = scaleSeconds
        self.colourSeconds = colourSeconds
    }
}

/// Adds up a camera's `FrameCosts` from the threads that do the work: atomics only, nothing allocated per frame.
final class FrameCostMeter: Sendable {
    /// The camera thread's CPU time since it started, less its BGR conversions (`colourOnCameraThread`).
    private let cameraThread = Atomic<UInt64>(0)
    private let colourOnCameraThread = Atomic<UInt64>(0)
    private let scale = Atomic<UInt64>(0)
    private let colour = Atomic<UInt64>(0)

    /// Called by the camera thread with its CPU time since it started (after each frame, and when it ends).
    func setCameraThread(nanos: UInt64) { cameraThread.store(nanos, ordering: .relaxed) }

    func addScale(nanos: UInt64) { scale.add(nanos, ordering: .relaxed) }

    func addColour(nanos: UInt64, onCameraThread: Bool) {
        colour.add(nanos, ordering: .relaxed)
        if onCameraThread { colourOnCameraThread.add(nanos, ordering: .relaxed) }
    }

    var costs: FrameCosts {
        let camera = cameraThread.load(ordering: .relaxed)
        let colourThere = colourOnCameraThread.load(ordering: .relaxed)
        return FrameCosts(
            decodeSeconds: Double(camera > colourThere ? camera - colourThere : 0) / 1e9,
            scaleSeconds: Double(scale.load(ordering: .relaxed)) / 1e9,
            colourSeconds: Double(colour.load(ordering: .relaxed)) / 1e9)
    }
}

/// CPU time of the calling thread, nanoseconds (a vDSO-less system call: about a microsecond, so per frame, not per
/// pixel row).
public func threadCPUNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
