internal import CFFmpeg
import Foundation

/// One run of packets whose timestamps follow each other: one connection to a camera, or one pass through a
/// looping file. A reconnect or a loop starts a new segment, because the timestamps jump there.
///
/// Keeps its own copy of the stream's codec parameters and time base, so a clip can be written after the
/// connection that produced its packets is gone.
final class PacketSegment: @unchecked Sendable {
    // Unchecked: `parameters` is written once, in init, and only read afterwards.
    let id: UInt64
    let parameters: UnsafeMutablePointer<AVCodecParameters>
    let timeBase: AVRational

    init?(id: UInt64, copying source: UnsafePointer<AVCodecParameters>, timeBase: AVRational) {
        guard let parameters = avcodec_parameters_alloc() else { return nil }
        guard avcodec_parameters_copy(parameters, source) >= 0 else {
            var p: UnsafeMutablePointer<AVCodecParameters>? = parameters
            avcodec_parameters_free(&p)
            return nil
        }
        self.id = id
        self.parameters = parameters
        self.timeBase = timeBase
    }

    deinit {
        var p: UnsafeMutablePointer<AVCodecParameters>? = parameters
        avcodec_parameters_free(&p)
    }

    /// Whether a clip may run on from this segment into `next` (timestamps rebased): the same codec, picture size
    /// and decoder configuration, so one decoder set up from this segment's parameters decodes both.
    func continues(into next: PacketSegment) -> Bool {
        let a = parameters.pointee
        let b = next.parameters.pointee
        guard a.codec_id == b.codec_id, a.width == b.width, a.height == b.height, a.format == b.format,
            a.extradata_size == b.extradata_size
        else { return false }
        guard a.extradata_size > 0, let left = a.extradata, let right = b.extradata else { return true }
        return memcmp(left, right, Int(a.extradata_size)) == 0
    }
}

/// The packets chosen for a clip: new references to the ring's packets (the compressed data is shared, not
/// copied), each with the segment it belongs to. Freed when released.
final class ClipPackets: @unchecked Sendable {
    // Unchecked: made under the ring's lock, then owned by the one clip writer that asked for it.
    var packets: [UnsafeMutablePointer<AVPacket>] = []
    var segments: [PacketSegment] = []
    /// Wall-clock time of each packet, microseconds since 1970.
    var wallMicros: [Int64] = []
    /// Whether the first packet is a key frame (it is unless the ring held no key frame for the range).
    var keyFrameAligned = true
    /// Whether the clip reaches back to the asked start, and on to the asked end.
    var coversStart = true
    var coversEnd = true

    deinit {
        for packet in packets {
            var p: UnsafeMutablePointer<AVPacket>? = packet
            av_packet_free(&p)
        }
    }
}

/// Why the ring has no clip for a time range.
enum ClipSelectionFailure: Error {
    /// Nothing was received yet.
    case empty
    /// The range lies outside what the ring holds (wall-clock microseconds of its oldest and newest packets).
    case notHeld(oldestMicros: Int64, newestMicros: Int64)
    /// Out of memory taking references to the packets.
    case outOfMemory
}

/// What the ring has for one frame (``PacketRing/selectFrame(atMicros:toleranceMicros:)``).
enum FrameSelection {
    /// The packets from a key frame through the frame's own, the last one.
    case frame(ClipPackets)
    /// Nothing was received yet.
    case empty
    /// No packet lies near the time (wall-clock microseconds of the oldest and newest packets held).
    case notHeld(oldestMicros: Int64, newestMicros: Int64)
    /// The frame's segment holds no key frame before it in the ring: it cannot be decoded.
    case noKeyFrame
    /// Out of memory taking references to the packets.
    case outOfMemory
}

/// The most recent compressed video packets of one camera, for clips cut without re-encoding.
///
/// Bounded by age (wall clock, newest minus oldest), by bytes of compressed data, and by a packet count that
/// covers `maxAge` at up to 120 packets a second; the oldest packets are dropped first. The camera thread moves
/// each packet it read into a slot (`av_packet_move_ref`): the compressed data is shared with the demuxer's
/// buffer, never copied, and once every slot has been used once nothing is allocated per packet.
final class PacketRing: @unchecked Sendable {
    // Unchecked: `state` (and the packets it points to) is only touched under `lock`.
    /// The most packets a second the count bound allows for.
    static let packetsPerSecondBound = 120.0

    /// Oldest-to-newest span kept, in microseconds.
    let maxAgeMicros: Int64
    /// Compressed bytes kept at most.
    let maxBytes: Int
    /// Slots: the most packets kept.
    let capacity: Int
    private let lock = NSLock()
    private var state: State

    struct Entry {
        var wallMicros: Int64 = 0
        var bytes: Int = 0
        var isKey = false
        var segment: UInt64 = 0
    }

    struct State {
        /// One packet per slot, allocated the first time the slot is used and reused afterwards.
        var packets: UnsafeMutableBufferPointer<UnsafeMutablePointer<AVPacket>?>
        var entries: UnsafeMutableBufferPointer<Entry>
        var head = 0
        var count = 0
        var bytes = 0
        /// Segments with packets in the ring, oldest first; the last is the one being filled.
        var segments: [PacketSegment] = []
        var nextSegmentID: UInt64 = 1

        func index(_ logical: Int) -> Int { (head + logical) % entries.count }
        func entry(_ logical: Int) -> Entry { entries[index(logical)] }
        func segment(_ id: UInt64) -> PacketSegment? { segments.first { $0.id == id } }

        mutating func dropOldest() {
            if let packet = packets[head] { av_packet_unref(packet) }
            bytes -= entries[head].bytes
            head = (head + 1) % entries.count
            count -= 1
        }

        /// Forgets segments none of whose packets are left, except the one being filled.
        mutating func pruneSegments() {
            while segments.count > 1 && (count == 0 || segments[0].id < entry(0).segment) {
                segments.removeFirst()
            }
        }
    }

    /// A ring keeping `seconds` of packets, at most `maxBytes` of them.
    init(seconds: Double, maxBytes: Int) {
        maxAgeMicros = Int64(seconds * 1_000_000)
        self.maxBytes = maxBytes
        capacity = max(64, Int((seconds * Self.packetsPerSecondBound).rounded(.up)))
        let packets = UnsafeMutableBufferPointer<UnsafeMutablePointer<AVPacket>?>.allocate(capacity: capacity)
        packets.initialize(repeating: nil)
        let entries = UnsafeMutableBufferPointer<Entry>.allocate(capacity: capacity)
        entries.initialize(repeating: Entry())
        state = State(packets: packets, entries: entries)
    }

    /// Runs `body` on the state under the lock.
    private func withState<T>(_ body: (inout State) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&state)
    }

    deinit {
        for slot in state.packets {
            var packet = slot
            av_packet_free(&packet)
        }
        state.packets.deallocate()
        state.entries.deallocate()
    }

    /// Starts a segment: the camera (re)connected or a file looped. Allocates a copy of the codec parameters.
    func beginSegment(parameters: UnsafePointer<AVCodecParameters>, timeBase: AVRational) {
        withState { s in
            // A segment that got no packet (a connection that broke at once) is replaced, not kept.
            if let current = s.segments.last, s.count == 0 || s.entry(s.count - 1).segment != current.id {
                s.segments.removeLast()
            }
            guard let segment = PacketSegment(id: s.nextSegmentID, copying: parameters, timeBase: timeBase) else {
                return
            }
            s.nextSegmentID += 1
            s.segments.append(segment)
        }
    }

    /// Takes the packet the demuxer filled (leaving it blank for the next read), dropping the oldest packets
    /// as the bounds require. `wallMicros` is the wall-clock time the packet stands for.
    /// Allocates nothing once each slot has been used once.
    func append(moving packet: UnsafeMutablePointer<AVPacket>, wallMicros: Int64) {
        let bytes = packet.pointee.buf.map { Int($0.pointee.size) } ?? Int(packet.pointee.size)
        let isKey = packet.pointee.flags & AV_PKT_FLAG_KEY != 0
        withState { s in
            guard let segment = s.segments.last, bytes <= maxBytes else {
                av_packet_unref(packet)
                return
            }
            while s.count > 0
                && (s.count == capacity || s.bytes + bytes > maxBytes
                    || wallMicros - s.entry(0).wallMicros > maxAgeMicros)
            {
                s.dropOldest()
            }
            let index = s.index(s.count)
            if s.packets[index] == nil { s.packets[index] = av_packet_alloc() }  // the slot's first use only
            guard let slot = s.packets[index] else {
                av_packet_unref(packet)
                s.pruneSegments()
                return
            }
            av_packet_move_ref(slot, packet)
            s.entries[index] = Entry(wallMicros: wallMicros, bytes: bytes, isKey: isKey, segment: segment.id)
            s.count += 1
            s.bytes += bytes
            s.pruneSegments()
        }
    }

    /// Wall-clock times of the oldest and newest packets held, microseconds since 1970.
    var spanMicros: (oldest: Int64, newest: Int64)? {
        withState { s in
            s.count == 0 ? nil : (s.entry(0).wallMicros, s.entry(s.count - 1).wallMicros)
        }
    }

    /// What the ring holds now: packets, compressed bytes and segments.
    var usage: (packets: Int, bytes: Int, segments: Int) {
        withState { s in (s.count, s.bytes, s.segments.count) }
    }

    /// Wall-clock times at which each segment with packets in the ring starts, oldest first.
    var segmentStartsMicros: [Int64] {
        withState { s in
            var starts: [Int64] = []
            for i in 0..<s.count where i == 0 || s.entry(i).segment != s.entry(i - 1).segment {
                starts.append(s.entry(i).wallMicros)
            }
            return starts
        }
    }

    /// Takes new references to the packets needed to decode the frame nearest `atMicros` (wall clock): from the last
    /// key frame at or before that frame's packet, in the same segment, through it. The packet must lie within
    /// `toleranceMicros` of the time; the result's `wallMicros.last` is its time.
    func selectFrame(atMicros: Int64, toleranceMicros: Int64) -> FrameSelection {
        withState { s -> FrameSelection in
            guard s.count > 0 else { return .empty }
            var nearest = 0
            var distance = Int64.max
            for i in 0..<s.count {
                let d = abs(s.entry(i).wallMicros - atMicros)
                if d < distance || (d == distance && s.entry(i).isKey) {
                    nearest = i
                    distance = d
                }
            }
            guard distance <= toleranceMicros else {
                return .notHeld(oldestMicros: s.entry(0).wallMicros, newestMicros: s.entry(s.count - 1).wallMicros)
            }
            let segment = s.entry(nearest).segment
            var first = nearest
            while !s.entry(first).isKey {
                guard first > 0, s.entry(first - 1).segment == segment else { return .noKeyFrame }
                first -= 1
            }
            let packets = ClipPackets()
            packets.packets.reserveCapacity(nearest - first + 1)
            for i in first...nearest {
                guard let source = s.packets[s.index(i)], let owner = s.segment(segment),
                    let copy = av_packet_clone(source)
                else { return .outOfMemory }
                packets.packets.append(copy)
                packets.segments.append(owner)
                packets.wallMicros.append(s.entry(i).wallMicros)
            }
            return .frame(packets)
        }
    }

    /// Takes new references to the packets of a clip from `startMicros` to `endMicros` (wall clock).
    ///
    /// The clip starts at the last key frame at or before the start (or, when the ring begins later, at the first
    /// key frame after it) and ends at the last packet at or before the end. It stays within one run of segments
    /// that continue each other (same codec parameters); when the parameters changed inside the range, the run
    /// holding the most packets of the range is taken (the later one on a tie).
    func selectClip(startMicros: Int64, endMicros: Int64) -> Result<ClipPackets, ClipSelectionFailure> {
        withState { s -> Result<ClipPackets, ClipSelectionFailure> in
            guard s.count > 0 else { return .failure(.empty) }
            let oldest = s.entry(0).wallMicros
            let newest = s.entry(s.count - 1).wallMicros
            guard startMicros <= endMicros, endMicros >= oldest, startMicros <= newest else {
                return .failure(.notHeld(oldestMicros: oldest, newestMicros: newest))
            }
            var last = s.count - 1
            while last > 0 && s.entry(last).wallMicros > endMicros { last -= 1 }

            func joinable(_ a: Int, _ b: Int) -> Bool {
                let x = s.entry(a).segment
                let y = s.entry(b).segment
                if x == y { return true }
                guard let first = s.segment(x), let second = s.segment(y) else { return false }
                return first.continues(into: second)
            }

            // Split [0, last] into runs of segments that continue each other; pick the one with most of the range.
            var best: (lo: Int, hi: Int, score: Int)? = nil
            var lo = 0
            var score = 0
            for i in 0...last {
                if i > lo && !joinable(i - 1, i) {
                    if best == nil || score >= best!.score { best = (lo, i - 1, score) }
                    lo = i
                    score = 0
                }
                let wall = s.entry(i).wallMicros
                if wall >= startMicros && wall <= endMicros { score += 1 }
            }
            if best == nil || score >= best!.score { best = (lo, last, score) }
            let run = best!

            let clip = ClipPackets()
            var first: Int? = nil
            for i in stride(from: run.hi, through: run.lo, by: -1)
            where s.entry(i).isKey && s.entry(i).wallMicros <= startMicros {
                first = i
                break
            }
            if first == nil {
                first = (run.lo...run.hi).first { s.entry($0).isKey }
            }
            if first == nil {
                // No key frame at all: start where the range starts; a decoder recovers at the next key frame
                // (or, for intra-refresh cameras, over the refresh period).
                clip.keyFrameAligned = false
                first = (run.lo...run.hi).last { s.entry($0).wallMicros <= startMicros } ?? run.lo
            }
            let start = first!
            clip.coversStart = s.entry(start).wallMicros <= startMicros
            clip.coversEnd =
                s.entry(run.hi).wallMicros >= endMicros || (run.hi + 1 < s.count && joinable(run.hi, run.hi + 1))

            clip.packets.reserveCapacity(run.hi - start + 1)
            for i in start...run.hi {
                guard let source = s.packets[s.index(i)], let segment = s.segment(s.entry(i).segment),
                    let copy = av_packet_clone(source)
                else { return .failure(.outOfMemory) }
                clip.packets.append(copy)
                clip.segments.append(segment)
                clip.wallMicros.append(s.entry(i).wallMicros)
            }
            return .success(clip)
        }
    }
}
