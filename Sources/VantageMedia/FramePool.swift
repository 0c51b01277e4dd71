internal import CFFmpeg
import Foundation
import Synchronization

/// Memory for a camera's decoded frames: `slotCount` regions of `slotCapacity` bytes each, starting at `base`.
///
/// The runtime backs it with a shared-memory file so an application process can read (and draw on) frames
/// without a copy; tests can back it with plain memory.
public struct FrameStorage: @unchecked Sendable {
    // Unchecked: the pointer is to memory owned by the creator for the camera's whole life; which slot may be
    // written and read is decided by `FramePool`'s state under its mutex.
    public let base: UnsafeMutableRawPointer
    public let slotCount: Int
    public let slotCapacity: Int
    /// Whatever owns the memory; kept alive as long as the camera (its thread may outlive its other users).
    public let owner: AnyObject?

    public init(base: UnsafeMutableRawPointer, slotCount: Int, slotCapacity: Int, owner: AnyObject?) {
        self.base = base
        self.slotCount = slotCount
        self.slotCapacity = slotCapacity
        self.owner = owner
    }

    /// Bytes a slot needs for a BGR frame of at most `maxWidth`×`maxHeight` (rows padded to 64 bytes).
    public static func slotBytes(maxWidth: Int = 1920, maxHeight: Int = 1080) -> Int {
        FramePool.alignedStride(width: maxWidth) * maxHeight
    }
}

/// A decoded frame as consumers see it: where its BGR pixels are (once `CameraStream.ensureBGR` made them), and
/// when it was taken.
public struct FrameInfo: Sendable, Equatable {
    /// Counts frames delivered by this camera since it started, from 1.
    public var sequence: UInt64
    /// The slot in the camera's `FrameStorage`; its pixels start at `slot * slotCapacity`.
    public var slot: Int
    public var width: Int
    public var height: Int
    /// Bytes per row of the BGR image.
    public var stride: Int
    /// Wall-clock capture time, microseconds since 1970.
    public var timestampMicros: Int64
    /// Monotonic time the frame finished decoding (nanoseconds), to measure latency to the app's decision.
    public var decodedAtNanos: UInt64
}

/// The fixed set of reusable frame slots of one camera, and who holds each.
///
/// A slot is free, being written by the decoder, waiting (decoded, not yet taken by any consumer), the latest frame,
/// or held by consumers (reference counted). The decoder writes only into a free slot; consumers take the oldest
/// waiting frame (the latest when nothing waits) and give it back. At most `depth` frames wait: a live camera's pool
/// has a depth of 1 (a consumer always gets the newest frame; one not taken before the next is decoded is dropped),
/// a file's a few (its decoder runs ahead of the consumers, into the gaps where they do not use the cores, and waits
/// when they are `depth` frames behind). Nothing is allocated per frame: the slots, their `AVFrame`s and the state
/// arrays are made once.
final class FramePool: @unchecked Sendable {
    // Unchecked: `frames[i]` and slot pixels are written only by the decoder thread while slot i is `writing`,
    // and read only by holders of a reference; all state changes happen under `state`'s mutex.
    struct State {
        var refs: [Int]
        var writing: Int = -1
        var latest: Int = -1
        /// Slots decoded and not yet taken by any consumer, oldest first (at most `depth`; capacity reserved once).
        var waiting: [Int]
        var info: [FrameInfo]
        /// Whether a slot's BGR pixels were made from its decoded frame yet (they are made on first use).
        var bgrReady: [Bool]
    }

    let storage: FrameStorage
    /// How many decoded frames may wait for a consumer.
    let depth: Int
    /// The decoded (YUV) frame behind each slot, kept while the slot is in use so model pre-processing can scale
    /// from the original rather than from the BGR copy an application may have drawn on.
    let frames: [UnsafeMutablePointer<AVFrame>]
    let state: Mutex<State>
    private let condition = PThreadCondition()

    /// A pool over `storage` where up to `depth` decoded frames wait for a consumer (1: the latest frame wins).
    init(storage: FrameStorage, depth: Int = 1) {
        self.storage = storage
        self.depth = max(1, min(depth, storage.slotCount - 1))
        frames = (0..<storage.slotCount).map { _ in av_frame_alloc()! }
        let empty = FrameInfo(
            sequence: 0, slot: 0, width: 0, height: 0, stride: 0, timestampMicros: 0, decodedAtNanos: 0)
        var waiting: [Int] = []
        waiting.reserveCapacity(self.depth + 1)
        state = Mutex(
            State(
                refs: Array(repeating: 0, count: storage.slotCount),
                waiting: waiting,
                info: Array(repeating: empty, count: storage.slotCount),
                bgrReady: Array(repeating: false, count: storage.slotCount)))
    }

    /// Serialises BGR conversions of this camera's slots; `converter` is used only under it.
    private let conversion = NSLock()
    private var converter = BGRConverter()

    /// Makes the BGR pixels of a slot the caller holds, once: the decoder keeps only the decoded frame, so frames
    /// nobody looks at (dropped ones, or an application that only runs models) cost no colour conversion.
    func ensureBGR(slot: Int) -> Bool {
        if state.withLock({ $0.bgrReady[slot] }) { return true }
        conversion.lock()
        defer { conversion.unlock() }
        let info = state.withLock { $0.info[slot] }
        if state.withLock({ $0.bgrReady[slot] }) { return true }
        guard frames[slot].pointee.width > 0,
            converter.convert(
                frames[slot], to: pixels(of: slot), width: info.width, height: info.height, stride: info.stride)
        else { return false }
        state.withLock { $0.bgrReady[slot] = true }
        return true
    }

    deinit {
        for frame in frames {
            var f: UnsafeMutablePointer<AVFrame>? = frame
            av_frame_free(&f)
        }
    }

    static func alignedStride(width: Int) -> Int { (width * 3 + 63) & ~63 }

    func pixels(of slot: Int) -> UnsafeMutableRawPointer { storage.base + slot * storage.slotCapacity }

    /// A slot the decoder may write into, or nil when consumers hold every slot. With `wait`, blocks until fewer
    /// than `depth` frames wait for a consumer and a slot is free (files read as fast as possible), or until
    /// `cancelled()` says so.
    func beginWrite(wait: Bool, cancelled: () -> Bool) -> Int? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            let slot = state.withLock { s -> Int? in
                if wait && s.waiting.count >= depth { return nil }
                for i in 0..<s.refs.count
                where s.refs[i] == 0 && i != s.latest && i != s.writing && !s.waiting.contains(i) {
                    s.writing = i
                    s.bgrReady[i] = false
                    return i
                }
                return nil
            }
            if let slot { return slot }
            if !wait || cancelled() { return nil }
            condition.wait(timeoutMillis: 100)
        }
    }

    /// Publishes the slot being written as the latest frame, waiting for a consumer. Returns true when that pushed
    /// out a frame no consumer took (more than `depth` waited: a dropped frame).
    func commitWrite(_ info: FrameInfo) -> Bool {
        let dropped = state.withLock { s -> Bool in
            let old = s.latest
            s.info[info.slot] = info
            s.latest = info.slot
            s.writing = -1
            s.waiting.append(info.slot)
            var dropped = false
            if s.waiting.count > depth {
                let oldest = s.waiting.removeFirst()
                dropped = true
                if s.refs[oldest] == 0 && oldest != old { av_frame_unref(frames[oldest]) }
            }
            if old >= 0 && s.refs[old] == 0 && !s.waiting.contains(old) { av_frame_unref(frames[old]) }
            return dropped
        }
        return dropped
    }

    /// Takes a reference to the next frame after `sequence`: the oldest waiting one newer than it, or else the
    /// latest if it is newer (another consumer took it already).
    func acquireLatest(after sequence: UInt64) -> FrameInfo? {
        let info = state.withLock { s -> FrameInfo? in
            if let index = s.waiting.firstIndex(where: { s.info[$0].sequence > sequence }) {
                let slot = s.waiting.remove(at: index)
                s.refs[slot] += 1
                return s.info[slot]
            }
            guard s.latest >= 0, s.info[s.latest].sequence > sequence else { return nil }
            s.refs[s.latest] += 1
            return s.info[s.latest]
        }
        if info != nil { condition.broadcast() }
        return info
    }

    /// Takes a reference to the oldest frame newer than `sequence` that waits for a consumer, without taking it
    /// (it still waits for them): for work done ahead of the consumers on frames they will take.
    func peekWaiting(after sequence: UInt64) -> FrameInfo? {
        state.withLock { s -> FrameInfo? in
            guard let slot = s.waiting.first(where: { s.info[$0].sequence > sequence }) else { return nil }
            s.refs[slot] += 1
            return s.info[slot]
        }
    }

    /// Takes another reference to a slot the caller already holds (a repeated, cached frame).
    func retain(slot: Int) {
        state.withLock { s in s.refs[slot] += 1 }
    }

    /// Gives back a reference; the slot becomes free when nobody holds it and it is not the latest.
    func release(slot: Int) {
        state.withLock { s in
            precondition(s.refs[slot] > 0, "frame slot \(slot) released more often than acquired")
            s.refs[slot] -= 1
            if s.refs[slot] == 0 && s.latest != slot && !s.waiting.contains(slot) { av_frame_unref(frames[slot]) }
        }
        condition.broadcast()
    }

    /// Wakes a decoder waiting for a slot (on stop).
    func wakeAll() { condition.broadcast() }
}
