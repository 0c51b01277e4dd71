import Foundation
import Synchronization
import VantageRuntime

/// The device's own health for heartbeats: CPU (all cores, from /proc/stat), the agent's memory (RSS), and the
/// free space where the agent keeps its data.
struct SystemSampler {
    let dataDirectory: URL
    private var lastCPU: (busy: UInt64, total: UInt64)?

    init(dataDirectory: URL) { self.dataDirectory = dataDirectory }

    mutating func sample() -> [String: Double] {
        var metrics: [String: Double] = [:]
        if let cpu = Self.cpuTimes() {
            if let last = lastCPU, cpu.total > last.total {
                metrics["cpu.percent"] = Double(cpu.busy - last.busy) / Double(cpu.total - last.total) * 100
            }
            lastCPU = cpu
        }
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
            let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
        {
            metrics["memory.rss_bytes"] = pages * Double(sysconf(Int32(_SC_PAGESIZE)))
        }
        var fs = statvfs()
        if statvfs(dataDirectory.path, &fs) == 0 {
            metrics["disk.free_bytes"] = Double(fs.f_bavail) * Double(fs.f_frsize)
            metrics["disk.total_bytes"] = Double(fs.f_blocks) * Double(fs.f_frsize)
        }
        // The device's wall clock: the server turns it into `clock.skew_seconds` against its own.
        metrics["clock.unix_seconds"] = Date().timeIntervalSince1970
        return metrics
    }

    /// Busy and total jiffies over all cores.
    static func cpuTimes() -> (busy: UInt64, total: UInt64)? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
        else { return nil }
        let values = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard values.count >= 4 else { return nil }
        let total = values.reduce(0, +)
        let idle = values[3] + (values.count > 4 ? values[4] : 0)
        return (total - idle, total)
    }
}

/// A runtime's heartbeat figures, named for the control plane.
enum RuntimeFigures {
    /// `camera.<id>.fps|dropped|reconnects` per camera stream, for a camera with a sub-stream its main stream's
    /// `main_reconnects|main_snapshots|snapshot_fallbacks` (event snapshots decoded from it, and those that fell
    /// back to the sub-stream's frame), and `instance.<id>.inference_p99_ms`.
    static func of(_ status: StatusReport, instanceID: String, cameraIDs: [String: String]) -> [String: Double] {
        var metrics: [String: Double] = [:]
        for camera in status.cameras {
            let node = String(camera.name.prefix { $0 != "[" })
            let name =
                cameraIDs[node].map { camera.name == node ? $0 : $0 + camera.name.dropFirst(node.count) }
                ?? camera.name
            metrics["camera.\(name).fps"] = camera.framesPerSecond
            metrics["camera.\(name).dropped"] = Double(
                camera.counters.droppedSuperseded + camera.counters.droppedNoBuffer)
            metrics["camera.\(name).reconnects"] = Double(camera.counters.reconnects)
            if let main = camera.main {
                metrics["camera.\(name).main_reconnects"] = Double(main.counters.reconnects)
                metrics["camera.\(name).main_snapshots"] = Double(main.snapshots)
                metrics["camera.\(name).snapshot_fallbacks"] = Double(main.snapshotFallbacks)
            }
        }
        if let p99 = status.models.compactMap(\.latencyP99Ms).max() {
            metrics["instance.\(instanceID).inference_p99_ms"] = p99
        }
        return metrics
    }
}
