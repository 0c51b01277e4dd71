import Synchronization

/// Latencies of one kind of request, counted into a fixed table of buckets allocated once: recording a request
/// takes a lock and increments a counter, with no allocation, so 10,000 simulated devices can record from any
/// thread without the recorder costing more than the requests it measures.
///
/// Buckets are log-linear in microseconds (64 per power of two, so a percentile is within 1.6% of the true
/// value); the maximum is kept exactly.
final class LatencyRecorder: Sendable {
    /// Linear sub-buckets per power of two.
    private static let subBuckets = 64
    private static let subBucketBits = 6
    /// Latencies at or above 2^27 µs (134 s) land in the last bucket.
    private static let maxExponent = 27
    private static let bucketCount = (maxExponent - subBucketBits + 1) * subBuckets

    private struct State {
        var buckets: [UInt64]
        var count = 0
        /// Answers that came before the end of the measured window (a server that falls behind answers the rest
        /// after it).
        var answeredInWindow = 0
        var maxMicros: UInt64 = 0
        var totalMicros: UInt64 = 0
        var errors = 0
        /// A few distinct failures, by message, so the report can say what went wrong (errors only).
        var errorSamples: [String: Int] = [:]
        /// Per slice of the measured window, by when requests were due: shows whether latency grows over time.
        var slices: [Slice]
    }

    private struct Slice {
        var count = 0
        var totalMicros: UInt64 = 0
        var maxMicros: UInt64 = 0
    }

    private let state: Mutex<State>
    /// The length of one timeline slice; nil: no timeline.
    private let sliceLength: Duration?

    /// A recorder; with `slices` and `sliceLength`, it also keeps a timeline of that many slices.
    init(slices: Int = 0, sliceLength: Duration? = nil) {
        self.sliceLength = slices > 0 ? sliceLength : nil
        state = Mutex(
            State(
                buckets: [UInt64](repeating: 0, count: Self.bucketCount),
                slices: [Slice](repeating: Slice(), count: max(slices, 0))))
    }

    /// Counts one answered request that took `duration`; `inWindow`: answered before the measured window ended;
    /// `due`: how long after the window's start it was due (for the timeline).
    func record(_ duration: Duration, inWindow: Bool = true, due: Duration? = nil) {
        let micros = Self.micros(duration)
        let index = Self.bucket(micros)
        var slice = -1
        if let sliceLength, let due { slice = Int(due / sliceLength) }
        state.withLock {
            $0.buckets[index] += 1
            $0.count += 1
            if inWindow { $0.answeredInWindow += 1 }
            $0.totalMicros &+= micros
            if micros > $0.maxMicros { $0.maxMicros = micros }
            if $0.slices.indices.contains(slice) {
                $0.slices[slice].count += 1
                $0.slices[slice].totalMicros &+= micros
                if micros > $0.slices[slice].maxMicros { $0.slices[slice].maxMicros = micros }
            }
        }
    }

    /// Counts one failed request; keeps its message (at most 8 distinct ones) for the report.
    func recordError(_ error: any Error) {
        let message = String(describing: error).prefix(300)
        state.withLock {
            $0.errors += 1
            if $0.errorSamples[String(message)] != nil || $0.errorSamples.count < 8 {
                $0.errorSamples[String(message), default: 0] += 1
            }
        }
    }

    /// The figures so far.
    func summary() -> LatencySummary {
        state.withLock { state in
            func percentile(_ p: Double) -> Double {
                guard state.count > 0 else { return 0 }
                let rank = UInt64((Double(state.count) * p).rounded(.up))
                var seen: UInt64 = 0
                for (index, n) in state.buckets.enumerated() where n > 0 {
                    seen += n
                    if seen >= max(rank, 1) {
                        return min(Self.midpoint(index), Double(state.maxMicros)) / 1000
                    }
                }
                return Double(state.maxMicros) / 1000
            }
            let seconds = sliceLength.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
            return LatencySummary(
                count: state.count, answeredInWindow: state.answeredInWindow, errors: state.errors,
                p50Ms: percentile(0.50), p99Ms: percentile(0.99), maxMs: Double(state.maxMicros) / 1000,
                meanMs: state.count > 0 ? Double(state.totalMicros) / Double(state.count) / 1000 : 0,
                errorSamples: state.errorSamples,
                timeline: state.slices.enumerated().map { index, slice in
                    TimelineSlice(
                        fromSecond: Double(index) * (seconds ?? 0), answered: slice.count,
                        meanMs: slice.count > 0 ? Double(slice.totalMicros) / Double(slice.count) / 1000 : 0,
                        maxMs: Double(slice.maxMicros) / 1000)
                })
        }
    }

    private static func micros(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
    }

    /// The bucket of a latency: exact below 64 µs, then 64 linear steps per power of two.
    private static func bucket(_ micros: UInt64) -> Int {
        if micros < UInt64(subBuckets) { return Int(micros) }
        let exponent = min(UInt64.bitWidth - micros.leadingZeroBitCount - 1, maxExponent)
        if exponent == maxExponent { return bucketCount - 1 }
        let sub = Int((micros >> UInt64(exponent - subBucketBits)) & UInt64(subBuckets - 1))
        return (exponent - subBucketBits + 1) * subBuckets + sub
    }

    /// The middle of a bucket, in microseconds.
    private static func midpoint(_ index: Int) -> Double {
        if index < subBuckets { return Double(index) }
        let exponent = index / subBuckets + subBucketBits - 1
        let sub = index % subBuckets
        let width = 1 << (exponent - subBucketBits)
        return Double((subBuckets + sub) << (exponent - subBucketBits)) + Double(width) / 2
    }
}

/// What a ``LatencyRecorder`` saw: answered requests, failures, and latency percentiles in milliseconds.
struct LatencySummary: Codable, Sendable {
    var count: Int
    var answeredInWindow: Int
    var errors: Int
    var p50Ms: Double
    var p99Ms: Double
    var maxMs: Double
    var meanMs: Double
    var errorSamples: [String: Int]
    /// Per slice of the measured window (requests by when they were due); empty for the setup phases.
    var timeline: [TimelineSlice]
}

/// Requests due in one slice of the measured window: how many were answered, and their mean and worst latency.
struct TimelineSlice: Codable, Sendable {
    var fromSecond: Double
    var answered: Int
    var meanMs: Double
    var maxMs: Double
}
