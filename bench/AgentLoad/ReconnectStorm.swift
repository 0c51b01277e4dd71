import Foundation
import VantageAgent

/// The reconnect storm (reliability scenario 18): the control plane goes away while every simulated device keeps
/// its heartbeat schedule, and comes back. Each device then does what the real agent does — retries with the
/// agent's own ``Backoff`` (doubling from 1 s to the agent's `--max-backoff-seconds`, ±25 % jitter) — until its
/// heartbeat is answered again. bench/agents stops and restarts the server when this phase says so.
struct StormFigures: Codable, Sendable {
    /// Devices whose heartbeat failed during the phase (saw the outage).
    var sawOutage: Int
    /// Of those, the devices answered again before the phase ended.
    var recovered: Int
    /// Seconds from the first device answered again (the server back, and serving) to each device answered again.
    var reconnectP50Seconds: Double
    var reconnectP99Seconds: Double
    var reconnectMaxSeconds: Double
    /// Failed tries during the outage, and the most in any one second (the herd the backoff spreads out).
    var failedTries: Int
    var peakTriesPerSecond: Int
    /// The backoff's ceiling the devices used.
    var maxBackoffSeconds: Double
}

extension SimulatedFleet {
    /// Heartbeats on the schedule until each device has seen a failure and then an answer again, or `limit` runs
    /// out. `onStart` is called once every device runs (bench/agents stops the server then).
    func storm(_ devices: [ConnectedDevice], maxBackoff: Duration, limit: Duration) async -> StormFigures {
        let start = ContinuousClock.now
        let end = start + limit
        let interval = configuration.interval
        let count = devices.count
        // Per device: when it was answered again (seconds since start), and its failed tries' seconds.
        let results = await withTaskGroup(of: (Double?, Bool, [Int]).self) { group in
            for device in devices {
                group.addTask {
                    var next = start + interval * (Double(device.index) / Double(max(count, 1)))
                    var backoff = Backoff(max: maxBackoff)
                    var failed = false
                    var tries: [Int] = []
                    var sequence = 0
                    while next < end {
                        try? await Task.sleep(until: next, clock: .continuous)
                        sequence += 1
                        do {
                            try await device.link.heartbeat(Self.heartbeat(device: device.index, sequence))
                            if failed { return ((ContinuousClock.now - start).seconds, true, tries) }
                            next += interval
                        } catch {
                            failed = true
                            tries.append(Int((ContinuousClock.now - start).seconds))
                            next = ContinuousClock.now + backoff.next()
                        }
                    }
                    return (nil, failed, tries)
                }
            }
            var all: [(Double?, Bool, [Int])] = []
            for await result in group { all.append(result) }
            return all
        }
        let back = results.compactMap(\.0).sorted()
        let first = back.first ?? 0
        let delays = back.map { $0 - first }
        func percentile(_ p: Double) -> Double {
            delays.isEmpty ? 0 : delays[min(delays.count - 1, Int((Double(delays.count) * p).rounded(.up)) - 1)]
        }
        var perSecond: [Int: Int] = [:]
        for second in results.flatMap(\.2) { perSecond[second, default: 0] += 1 }
        return StormFigures(
            sawOutage: results.filter(\.1).count, recovered: back.count, reconnectP50Seconds: percentile(0.5),
            reconnectP99Seconds: percentile(0.99), reconnectMaxSeconds: delays.last ?? 0,
            failedTries: results.reduce(0) { $0 + $1.2.count }, peakTriesPerSecond: perSecond.values.max() ?? 0,
            maxBackoffSeconds: maxBackoff.seconds)
    }
}
