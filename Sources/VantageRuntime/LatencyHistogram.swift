/// Latency percentiles without storing samples: fixed log-spaced buckets from 0.1 ms to about 100 s.
/// Recording allocates nothing.
struct LatencyHistogram: Sendable, Equatable {
    private static let bucketsPerDecade = 20
    private static let decades = 6
    private var counts = [UInt64](repeating: 0, count: bucketsPerDecade * decades + 1)
    private(set) var total: UInt64 = 0

    mutating func record(nanos: UInt64) {
        let ms = Double(nanos) / 1e6
        let index: Int
        if ms <= 0.1 {
            index = 0
        } else {
            let position = (log10(ms) + 1) * Double(Self.bucketsPerDecade)
            index = min(counts.count - 1, Int(position.rounded(.up)))
        }
        counts[index] += 1
        total += 1
    }

    /// Adds another histogram's samples to this one.
    mutating func merge(_ other: LatencyHistogram) {
        for i in counts.indices { counts[i] += other.counts[i] }
        total += other.total
    }

    /// The latency in milliseconds below which `fraction` of the samples fall (bucket upper bound), nil if empty.
    func percentile(_ fraction: Double) -> Double? {
        guard total > 0 else { return nil }
        let target = UInt64((Double(total) * fraction).rounded(.up))
        var seen: UInt64 = 0
        for (i, c) in counts.enumerated() {
            seen += c
            if seen >= max(1, target) { return pow(10, Double(i) / Double(Self.bucketsPerDecade) - 1) }
        }
        return nil
    }
}

#if canImport(Glibc)
    import Glibc
#endif
