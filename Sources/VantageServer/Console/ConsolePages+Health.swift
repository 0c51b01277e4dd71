import Foundation
import VantageAPI
import VantageCore

// Health as an operator reads it: heartbeat figures named for what they measure (camera and instance names, not
// ids), running totals turned into rates, a range picker, and each camera's status from its device's heartbeats.

/// The time span the health charts show (`?range=`).
enum HealthRange: String, CaseIterable, Sendable {
    case hour = "1h"
    case sixHours = "6h"
    case day = "24h"
    case week = "7d"

    static let standard = HealthRange.day

    var seconds: TimeInterval {
        switch self {
        case .hour: 3600
        case .sixHours: 6 * 3600
        case .day: 86_400
        case .week: 7 * 86_400
        }
    }

    /// `1 h`, `7 d`.
    var label: String { String(rawValue.dropLast()) + " " + String(rawValue.suffix(1)) }

    /// The range a `range` query parameter names (none: 24 h).
    static func parse(_ text: String?) throws -> HealthRange {
        guard let text, !text.isEmpty else { return .standard }
        guard let range = HealthRange(rawValue: text) else {
            throw APIError.invalid(
                "range must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), not \"\(text.prefix(20))\"")
        }
        return range
    }
}

/// What a heartbeat figure measures, as the console names and draws it.
struct HealthMetric: Sendable {
    enum Group: String, CaseIterable, Sendable {
        case system = "System"
        case cameras = "Cameras"
        case instances = "Instances"
        case outbox = "Outbox"
        case other = "Other"
    }

    enum Unit: Sendable {
        case plain, percent, bytes, seconds, milliseconds, perSecond, perMinute
    }

    /// The heartbeat's key (`camera.cam_….fps`).
    let name: String
    let group: Group
    /// `Frames per second — Dock door`.
    let title: String
    let unit: Unit
    /// A running total (since the agent or the camera started): charted as its rate, per `unit`.
    let isCounter: Bool
    /// Charted (some figures are only for the table: a disk's size, a time).
    let charted: Bool
    /// Sort order inside the group.
    let order: Int

    /// The figure `name` of a heartbeat; `cameras` and `instances` map ids to names.
    static func describe(_ name: String, cameras: [String: String], instances: [String: String]) -> HealthMetric {
        func metric(
            _ order: Int, _ group: Group, _ title: String, _ unit: Unit = .plain, counter: Bool = false,
            charted: Bool = true
        ) -> HealthMetric {
            HealthMetric(
                name: name, group: group, title: title, unit: unit, isCounter: counter, charted: charted,
                order: order)
        }
        switch name {
        case "cpu.percent": return metric(0, .system, "CPU", .percent)
        case "memory.rss_bytes": return metric(1, .system, "Agent memory (RSS)", .bytes)
        case "disk.free_bytes": return metric(3, .system, "Disk free", .bytes)
        case "disk.total_bytes": return metric(4, .system, "Disk size", .bytes, charted: false)
        case "disk.full": return metric(5, .system, "Disk full (1 = full)")
        case "disk.full_since": return metric(6, .system, "Disk full since (seconds since 1970)", charted: false)
        case "clock.skew_seconds": return metric(7, .system, "Clock skew", .seconds)
        case "uptime.seconds": return metric(8, .system, "Agent uptime", .seconds, charted: false)
        case "instances.running": return metric(0, .instances, "Instances running")
        case "cameras.open": return metric(0, .cameras, "Camera streams open")
        case "frames.inferred": return metric(1, .instances, "Frames inferred per second", .perSecond, counter: true)
        case "outbox.pending": return metric(0, .outbox, "Events waiting to be sent")
        case "outbox.bytes": return metric(1, .outbox, "Outbox size", .bytes)
        case "outbox.dropped_events":
            return metric(2, .outbox, "Events dropped per minute", .perMinute, counter: true)
        case "outbox.dropped_snapshots":
            return metric(3, .outbox, "Snapshots dropped per minute", .perMinute, counter: true)
        case "outbox.rejected_events":
            return metric(4, .outbox, "Events refused by the server per minute", .perMinute, counter: true)
        case "outbox.unstored_events":
            return metric(5, .outbox, "Events not stored (disk full) per minute", .perMinute, counter: true)
        case "logs.dropped_lines": return metric(6, .outbox, "Log lines dropped per minute", .perMinute, counter: true)
        default: break
        }
        if name.hasPrefix("memory.") {
            return metric(2, .system, name == "memory.bytes" ? "Memory used" : "Memory: " + name.dropFirst(7), .bytes)
        }
        // camera.<id>[<stream>].<figure>: the runtime adds a stream's suffix to the camera's id.
        if name.hasPrefix("camera."), let dot = name.lastIndex(of: "."), dot > name.index(name.startIndex, offsetBy: 7)
        {
            let key = name[name.index(name.startIndex, offsetBy: 7)..<dot]
            let figure = name[name.index(after: dot)...]
            let id = String(key.prefix { $0 != "[" })
            let who = (cameras[id] ?? id) + key.dropFirst(id.count)
            switch figure {
            case "fps": return metric(1, .cameras, "Frames per second — \(who)")
            case "dropped":
                return metric(2, .cameras, "Frames dropped per second — \(who)", .perSecond, counter: true)
            case "reconnects":
                return metric(3, .cameras, "Reconnects per minute — \(who)", .perMinute, counter: true)
            case "main_reconnects":
                return metric(4, .cameras, "Main stream reconnects per minute — \(who)", .perMinute, counter: true)
            case "main_snapshots":
                return metric(
                    5, .cameras, "Snapshots from the main stream per minute — \(who)", .perMinute, counter: true)
            case "snapshot_fallbacks":
                return metric(
                    6, .cameras, "Snapshots from the sub-stream (main stream without the frame) per minute — \(who)",
                    .perMinute, counter: true)
            default: return metric(7, .cameras, "\(figure) — \(who)")
            }
        }
        if name.hasPrefix("instance."), let dot = name.lastIndex(of: "."),
            dot > name.index(name.startIndex, offsetBy: 9)
        {
            let id = String(name[name.index(name.startIndex, offsetBy: 9)..<dot])
            let figure = name[name.index(after: dot)...]
            let who = instances[id] ?? id
            if figure == "inference_p99_ms" {
                return metric(2, .instances, "Inference time p99 — \(who)", .milliseconds)
            }
            if figure == "runtime_crashes" {
                return metric(3, .instances, "Runtime worker crashes per minute — \(who)", .perMinute, counter: true)
            }
            return metric(4, .instances, "\(figure) — \(who)")
        }
        return metric(0, .other, name)
    }

    /// A value in this metric's unit: `12.5 %`, `1.2 GB`, `3 /min`.
    func format(_ value: Double) -> String {
        switch unit {
        case .plain: HTML.number(value)
        case .percent: HTML.number(value) + " %"
        case .bytes: value == 0 ? "0" : HTML.bytes(Int64(value.rounded()))
        case .seconds: HTML.number(value) + " s"
        case .milliseconds: HTML.number(value) + " ms"
        case .perSecond: HTML.number(value) + " /s"
        case .perMinute: HTML.number(value) + " /min"
        }
    }

    /// Seconds per unit of rate (1 for per second, 60 for per minute).
    var ratePeriod: Double { unit == .perMinute ? 60 : 1 }
}

/// One metric's series as charted: rates for counters.
struct HealthSeries: Sendable {
    let metric: HealthMetric
    /// The points to draw (for a counter, its rate between consecutive points).
    let points: [MetricPoint]
    /// The heartbeat's own latest value (for a counter: the running total).
    let latest: Double?

    /// The rate of a running total between consecutive points, per `period` seconds, at the later point's time.
    /// A total that went down was reset (the agent or the camera restarted): it counted from zero since, so the
    /// later value is the increase (never a negative rate).
    static func rates(_ points: [MetricPoint], per period: Double) -> [MetricPoint] {
        guard points.count > 1 else { return [] }
        var rates: [MetricPoint] = []
        for (previous, point) in zip(points, points.dropFirst()) {
            let seconds = point.time.timeIntervalSince(previous.time)
            guard seconds >= 1 else { continue }
            let increase = point.value >= previous.value ? point.value - previous.value : point.value
            rates.append(MetricPoint(name: point.name, time: point.time, value: increase / seconds * period))
        }
        return rates
    }
}

/// A camera's state as its device's heartbeats tell it.
struct CameraHealth: Sendable {
    enum Status: String, Sendable {
        case streaming = "streaming"
        case noFrames = "no frames"
        case unknown = "unknown"
    }

    let status: Status
    /// Frames per second in the device's latest heartbeat (the sum over the camera's streams).
    let fps: Double?
    /// Why, for the badge's tooltip.
    let reason: String

    /// The status of each camera (by id) from the latest heartbeat of its device.
    static func of(_ cameras: [Camera], devices: [Device], latest: [String: [MetricPoint]]) -> [String: CameraHealth] {
        let devicesByID = Dictionary(devices.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var health: [String: CameraHealth] = [:]
        for camera in cameras {
            guard let deviceID = camera.deviceId, let device = devicesByID[deviceID] else {
                health[camera.id] = CameraHealth(status: .unknown, fps: nil, reason: "not assigned to a device")
                continue
            }
            guard device.connectionStatus == .online else {
                health[camera.id] = CameraHealth(
                    status: .unknown, fps: nil,
                    reason: device.lastHeartbeat == nil
                        ? "its device has not sent a heartbeat yet" : "its device has not sent a heartbeat lately")
                continue
            }
            let figures = (latest[deviceID] ?? []).filter { point in
                point.name.hasPrefix("camera.\(camera.id)") && point.name.hasSuffix(".fps")
                    && (point.name == "camera.\(camera.id).fps"
                        || point.name.dropFirst(7 + camera.id.count).first == "[")
            }
            guard !figures.isEmpty else {
                health[camera.id] = CameraHealth(
                    status: .unknown, fps: nil, reason: "no running instance on its device reads this camera")
                continue
            }
            let fps = figures.reduce(0) { $0 + $1.value }
            health[camera.id] =
                fps > 0
                ? CameraHealth(status: .streaming, fps: fps, reason: "frames arrive")
                : CameraHealth(
                    status: .noFrames, fps: fps, reason: "an instance reads it but no frame arrived lately")
        }
        return health
    }

    /// The status as a badge.
    var badge: HTML {
        let tone =
            switch status {
            case .streaming: "ok"
            case .noFrames: "bad"
            case .unknown: "muted"
            }
        return "<span class=\"badge \(tone) camera-status\" title=\"\(reason)\">\(status.rawValue)</span>"
    }
}

extension ConsolePages {
    // MARK: Health data

    /// Every figure of the device's heartbeats over `range`, named and grouped; counters as rates.
    func healthSeries(device: Device, range: HealthRange, now: Date) async throws -> [HealthSeries] {
        let cameras = try await store.listCameras()
        let instances = try await store.listInstances(device: device.id)
        let cameraNames = Dictionary(cameras.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        let instanceNames = Dictionary(instances.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        let since = now.addingTimeInterval(-range.seconds)
        var series: [HealthSeries] = []
        for latest in try await store.latestMetrics(device: device.id) {
            let metric = HealthMetric.describe(latest.name, cameras: cameraNames, instances: instanceNames)
            // A counter's rate needs the point before the range too.
            let start = metric.isCounter ? since.addingTimeInterval(-120) : since
            var points = try await store.metrics(device: device.id, name: latest.name, since: start)
            if metric.isCounter {
                points = HealthSeries.rates(points, per: metric.ratePeriod).filter { $0.time >= since }
            }
            series.append(HealthSeries(metric: metric, points: points, latest: latest.value))
        }
        return series.sorted {
            ($0.metric.group.sortIndex, $0.metric.order, $0.metric.title)
                < ($1.metric.group.sortIndex, $1.metric.order, $1.metric.title)
        }
    }

    // MARK: Device page

    /// The device page's health over the last 24 hours: the main charts (CPU, memory, disk, cameras' fps, outbox),
    /// and links to the system page (other ranges, every figure).
    func deviceHealth(_ device: Device) async throws -> HTML {
        let range = HealthRange.standard
        let now = Date()
        let series = try await healthSeries(device: device, range: range, now: now)
        let system = "/devices/\(HTML.path(device.id))/system"
        guard series.contains(where: { !$0.points.isEmpty }) else {
            return """
                <p class="empty" id="no-heartbeats">No heartbeats yet in the last 24 hours: the device has not \
                reported any metrics.</p>
                """
        }
        let main: Set<String> = [
            "cpu.percent", "memory.rss_bytes", "memory.bytes", "disk.free_bytes", "outbox.pending", "frames.inferred",
        ]
        let shown = series.filter { main.contains($0.metric.name) || $0.metric.name.hasSuffix(".fps") }
        return """
            \(Self.rangePicker(system, range, anchor: nil, current: false))
            \(Self.chartGroups(shown, range: range, now: now))
            <p><a href="\(system)" id="system-link">System page</a>: every figure (drops, reconnects, inference \
            time…) with its current value, over 1 h to 7 d.</p>
            """
    }

    // MARK: System page

    func deviceSystem(_ id: String, range: HealthRange) async throws -> ConsolePage {
        let device = try await store.device(id)
        let now = Date()
        let series = try await healthSeries(device: device, range: range, now: now)
        let rows: [HTML] = series.map { item in
            let metric = item.metric
            let current: String =
                metric.isCounter
                ? item.points.last.map { metric.format($0.value) } ?? "—"
                : item.latest.map { metric.format($0) } ?? "—"
            let total: HTML =
                metric.isCounter
                ? " <span class=\"muted\">(\(HTML.number(item.latest ?? 0)) since the agent started)</span>" : ""
            return """
                <tr data-metric="\(metric.name)"><td>\(metric.group.rawValue)</td><td>\(metric.title)</td>\
                <td class="value">\(current)\(total)</td></tr>
                """
        }
        let body: HTML =
            series.isEmpty
            ? "<p class=\"empty\" id=\"no-heartbeats\">No heartbeats yet: the device has not reported any metrics.</p>"
            : """
            <table class="list" id="system-figures">
            <thead><tr><th>Group</th><th>Figure</th><th>Now</th></tr></thead>
            <tbody>\(rows)</tbody>
            </table>
            <h2>Charts</h2>
            \(Self.rangePicker("/devices/\(HTML.path(device.id))/system", range, anchor: nil))
            \(Self.chartGroups(series, range: range, now: now))
            """
        return ConsolePage(
            title: "\(device.name) system", section: .devices,
            body: """
                <p class="crumbs"><a href="/devices">Devices</a> / <a href="/devices/\(HTML.path(device.id))">\(device.name)</a> /</p>
                <h1>\(device.name) system \(HTML.badge(device.connectionStatus.rawValue))</h1>
                <p class="muted">From the device's heartbeats (latest \(HTML.time(device.lastHeartbeat))). Running \
                totals are shown as rates; a restart of the agent starts them again from zero.</p>
                \(body)
                """)
    }

    // MARK: Cameras page

    /// Each camera's status and frames per second, from its device's latest heartbeat.
    func cameraHealth(_ cameras: [Camera], devices: [Device]) async throws -> [String: CameraHealth] {
        var latest: [String: [MetricPoint]] = [:]
        for deviceID in Set(cameras.compactMap(\.deviceId)) {
            latest[deviceID] = try await store.latestMetrics(device: deviceID)
        }
        return CameraHealth.of(cameras, devices: devices, latest: latest)
    }

    // MARK: Pieces

    /// The cameras table's Status and FPS cells.
    static func cameraHealthCells(_ camera: Camera, _ health: CameraHealth?) -> HTML {
        let health = health ?? CameraHealth(status: .unknown, fps: nil, reason: "no heartbeat")
        return """
            <td>\(health.badge)</td><td class="camera-fps">\(health.fps.map { HTML.number($0) } ?? "—")</td>
            """
    }

    /// Links to `path` over 1 h, 6 h, 24 h, 7 d; `current` marks the range shown as the page's own.
    static func rangePicker(_ path: String, _ shown: HealthRange, anchor: String?, current: Bool = true) -> HTML {
        let links: [HTML] = HealthRange.allCases.map { range in
            let href = path + HTML.query([("range", range.rawValue)]) + (anchor.map { "#" + $0 } ?? "")
            return range == shown && current
                ? "<a href=\"\(href)\" aria-current=\"true\" data-range=\"\(range.rawValue)\">\(range.label)</a>"
                : "<a href=\"\(href)\" data-range=\"\(range.rawValue)\">\(range.label)</a>"
        }
        return """
            <nav class="range-picker" aria-label="time range"><span class="muted">\(current ? "Last" : "Last \(shown.label) · other ranges:")</span> \
            \(links) <span class="muted">· times in UTC</span></nav>
            """
    }

    /// Charts under a heading per group (System, Cameras, Instances, Outbox, Other).
    static func chartGroups(_ series: [HealthSeries], range: HealthRange, now: Date) -> HTML {
        let window = (now.addingTimeInterval(-range.seconds), now)
        let groups: [HTML] = HealthMetric.Group.allCases.compactMap { group in
            let charts = series.filter { $0.metric.group == group && $0.metric.charted }.map { item in
                LineChart(
                    title: item.metric.title, metric: item.metric.name, points: item.points, from: window.0,
                    to: window.1, format: item.metric.format,
                    emptyText: item.metric.isCounter && item.latest != nil
                        ? "a rate needs two samples, a minute apart: shown after the next one" : "no data in this range"
                ).svg
            }
            guard !charts.isEmpty else { return nil }
            return """
                <section class="health-group" id="health-\(group.rawValue.lowercased())">
                <h3>\(group.rawValue)</h3>
                <div class="charts">\(charts)</div>
                </section>
                """
        }
        return "\(groups)"
    }
}

extension HealthMetric.Group {
    var sortIndex: Int { Self.allCases.firstIndex(of: self) ?? 0 }
}
