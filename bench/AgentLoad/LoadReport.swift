import Foundation

/// Everything one run measured, printed as a table or as one JSON object (bench/agents reads the JSON).
struct LoadReport: Codable, Sendable {
    var devices: Int
    /// Devices that enrolled and connected, and so took part in the steady state.
    var connectedDevices: Int
    var intervalSeconds: Double
    var pollIntervalSeconds: Double
    var durationSeconds: Double
    /// CPU cores of this machine, shared with the server when it runs here.
    var cores: Int
    var fileDescriptorLimit: Int
    var create: PhaseFigures
    var enroll: PhaseFigures
    var connect: PhaseFigures
    var heartbeats: SteadyFigures
    var desiredStatePolls: SteadyFigures
    /// How late requests started against their slot: the load generator's (or the previous request's) delay.
    var scheduleLag: LatencySummary
    /// Polls answered with a new state instead of 304 (none expected: nothing is deployed during the run).
    var desiredStateChanges: Int
    var rssMiB: Double
    var peakRssMiB: Double
    /// Whether the server kept up with the heartbeats (``keptUp(_:interval:)``).
    var heartbeatsKeptUp: Bool
    /// The reconnect storm, when one was asked for (`--storm`).
    var storm: StormFigures?

    /// At least 99% of the target rate answered within the window, no error, and p99 under the interval: a device's
    /// heartbeat answered before its next is due, so beats do not pile up. (Latency spikes below that are shown by
    /// the percentiles and the timeline, not hidden by the verdict.)
    static func keptUp(_ heartbeats: SteadyFigures, interval: Double) -> Bool {
        heartbeats.achievedPerSecond >= 0.99 * heartbeats.targetPerSecond && heartbeats.latency.errors == 0
            && heartbeats.latency.p99Ms < interval * 1000
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The human-readable table.
    func table() -> String {
        func ms(_ value: Double) -> String { String(format: "%8.1f", value) }
        func row(_ name: String, _ phase: PhaseFigures) -> String {
            pad(name, 34)
                + String(
                    format: "%8d %7d %9.1f %9.1f ", phase.latency.count, phase.latency.errors,
                    phase.seconds, phase.perSecond)
                + "\(ms(phase.latency.p50Ms)) \(ms(phase.latency.p99Ms)) \(ms(phase.latency.maxMs))"
        }
        func steady(_ name: String, _ figures: SteadyFigures) -> String {
            pad(name, 22)
                + String(
                    format: "%8d %11.1f %9.1f ", figures.sent, figures.achievedPerSecond,
                    figures.targetPerSecond)
                + "\(ms(figures.latency.p50Ms)) \(ms(figures.latency.p99Ms)) \(ms(figures.latency.maxMs)) "
                + String(format: "%7d", figures.latency.errors)
        }
        var lines = [
            "agent-load: \(devices) simulated devices (\(connectedDevices) connected), heartbeat every "
                + "\(format(intervalSeconds)) s, desired-state poll every \(format(pollIntervalSeconds)) s, "
                + "\(format(durationSeconds)) s measured",
            "The load generator and the server share this machine's \(cores) cores when both run here.",
            "",
            pad("setup", 34) + "    done  errors   seconds     per s   p50 ms   p99 ms   max ms",
            row("create devices (API)", create),
            row("enroll (key, CSR, certificate)", enroll),
            row("connect (mTLS + desired state)", connect),
            "",
            pad("steady state", 22) + "    sent  answered/s  target/s   p50 ms   p99 ms   max ms  errors",
            "  (answered/s: answers that came within the measured window, per second of it)",
            steady("heartbeat", heartbeats),
            steady("desired state (304)", desiredStatePolls),
            "",
            "schedule lag (request start after its slot): p50 \(format(scheduleLag.p50Ms)) ms, "
                + "p99 \(format(scheduleLag.p99Ms)) ms, max \(format(scheduleLag.maxMs)) ms",
            "load generator: RSS \(format(rssMiB)) MiB (peak \(format(peakRssMiB)) MiB), "
                + "file descriptor limit \(fileDescriptorLimit)",
        ]
        lines.append("heartbeats by when they were due (mean / max latency):")
        for slice in heartbeats.latency.timeline {
            lines.append(
                "  from \(format(slice.fromSecond)) s: \(slice.answered) answered, "
                    + "\(format(slice.meanMs)) / \(format(slice.maxMs)) ms")
        }
        lines.append(
            "heartbeats kept up: "
                + (heartbeatsKeptUp
                    ? "yes"
                    : "NO (needs at least 99% of the target answered in the window, no error, p99 under the "
                        + "interval)"))
        if desiredStateChanges > 0 {
            lines.append("desired state changed \(desiredStateChanges) times during the run (not expected)")
        }
        for (name, summary) in [
            ("create", create.latency), ("enroll", enroll.latency), ("connect", connect.latency),
            ("heartbeat", heartbeats.latency), ("desired state", desiredStatePolls.latency),
        ] {
            for (message, count) in summary.errorSamples.sorted(by: { $0.value > $1.value }) {
                lines.append("error (\(name), \(count)x): \(message)")
            }
        }
        return lines.joined(separator: "\n")
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    private func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e9 ? String(Int(value)) : String(format: "%.1f", value)
    }
}

/// The process's open-file limit, raised so that one TLS connection per simulated device fits.
enum FileDescriptorLimit {
    /// Raises the soft limit to the hard one; answers the new limit. Throws when even the hard limit is below
    /// `needed`, saying what to do.
    static func raise(needed: Int) throws -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            throw LoadError("cannot read the open-file limit: \(String(cString: strerror(errno)))")
        }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let available = limit.rlim_cur == rlim_t.max ? Int.max : Int(limit.rlim_cur)
        guard available >= needed else {
            throw LoadError(
                "this process may open \(available) files (hard limit \(limit.rlim_max)), but the devices need about "
                    + "\(needed) (one TLS connection each, plus setup): raise the hard limit (ulimit -Hn as root, "
                    + "LimitNOFILE= in a systemd unit, /etc/security/limits.conf) or use fewer --devices; the server "
                    + "needs as many")
        }
        return available
    }
}

/// The load generator's resident memory, from /proc/self/status.
struct ProcessMemory {
    var rssMiB: Double
    var peakMiB: Double

    static func current() -> ProcessMemory {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else {
            return ProcessMemory(rssMiB: 0, peakMiB: 0)
        }
        func kib(_ key: String) -> Double {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return 0 }
            return Double(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") ?? 0
        }
        return ProcessMemory(rssMiB: kib("VmRSS") / 1024, peakMiB: kib("VmHWM") / 1024)
    }
}
