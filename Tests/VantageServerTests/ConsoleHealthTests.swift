import Foundation
import Testing
import VantageAPI
import VantageCore

@testable import VantageServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Health in the console (issue 18, "Health"): charts named for cameras and instances, running totals as rates, a
/// range picker whose axis follows the data, values on hover, a system page per device, camera status on the cameras
/// page. In Chromium on an in-process server with three days of history, and with a real agent's heartbeats.
@Suite("ConsoleHealthTests")
struct ConsoleHealthTests {
    // MARK: Rates

    @Test func aRunningTotalIsChartedAsItsRateAndARestartIsNoNegativeSpike() {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let totals: [Double] = [0, 120, 240, 10, 130]  // the agent restarted before the fourth point
        let points = totals.enumerated().map { index, value in
            MetricPoint(name: "outbox.dropped_events", time: start.addingTimeInterval(Double(index) * 60), value: value)
        }
        #expect(HealthSeries.rates(points, per: 60).map(\.value) == [120, 120, 10, 120])
        #expect(HealthSeries.rates(points, per: 1).map(\.value) == [2, 2, 10.0 / 60, 2])
        let metric = HealthMetric.describe("camera.cam_abc.dropped", cameras: ["cam_abc": "Dock door"], instances: [:])
        #expect(metric.title == "Frames dropped per second — Dock door")
        #expect(metric.isCounter && metric.group == .cameras)
        let fallbacks = HealthMetric.describe(
            "camera.cam_abc.snapshot_fallbacks", cameras: ["cam_abc": "Dock door"], instances: [:])
        #expect(fallbacks.title.hasPrefix("Snapshots from the sub-stream") && fallbacks.title.hasSuffix("Dock door"))
        #expect(fallbacks.isCounter && fallbacks.unit == .perMinute)
        let stream = HealthMetric.describe("camera.cam_abc[1].fps", cameras: ["cam_abc": "Dock door"], instances: [:])
        #expect(stream.title == "Frames per second — Dock door[1]")
        let instance = HealthMetric.describe(
            "instance.ins_x.inference_p99_ms", cameras: [:], instances: ["ins_x": "people-lobby"])
        #expect(instance.title == "Inference time p99 — people-lobby" && instance.format(12.5) == "12.5 ms")
    }

    // MARK: In the browser

    @Test(.enabled(if: WebDriver.isAvailable, Comment(rawValue: WebDriver.skipReason)))
    func healthPagesInTheBrowser() async throws {
        try await ConsoleTests.withServer { plane, base in
            let store = plane.store
            try await store.setUser(name: "alice", password: ConsoleTests.password, role: .viewer)
            let device = try await store.createDevice(NewDevice(name: "gate-1")).device
            let dock = try await store.createCamera(
                NewCamera(name: "Dock door", url: "rtsp://192.0.2.10:554/dock", deviceId: device.id))
            let lobby = try await store.createCamera(
                NewCamera(name: "Lobby", url: "rtsp://192.0.2.11:554/lobby", deviceId: device.id))
            let yard = try await store.createCamera(NewCamera(name: "Yard", url: "rtsp://192.0.2.12:554/yard"))

            // Three days of history, a point every 10 minutes: the dock camera drops 2 frames a second (its total
            // restarts from zero a day ago, as when the agent restarts), the outbox drops 3 events a minute.
            let now = Date()
            let history = 3 * 24 * 6
            var dropped = 0.0
            var events = 0.0
            var rows: [(String, Date, Double)] = []
            for step in 0..<history {
                let time = now.addingTimeInterval(-Double(history - step) * 600)
                dropped = step == history - 144 ? 1200 : dropped + 1200
                events += 30
                rows += [
                    ("cpu.percent", time, 20 + Double(step % 6)), ("camera.\(dock.id).fps", time, 25),
                    ("camera.\(dock.id).dropped", time, dropped), ("outbox.dropped_events", time, events),
                ]
            }
            for chunk in stride(from: 0, to: rows.count, by: 200) {
                var insert: SQL = "INSERT INTO device_metrics (device_id, name, at, value) VALUES "
                for (index, row) in rows[chunk..<min(rows.count, chunk + 200)].enumerated() {
                    if index > 0 { insert.append(", ") }
                    insert.append("(\(device.id), \(row.0), \(Millis.from(row.1)), \(row.2))")
                }
                try await store.database.query(insert)
            }
            // The heartbeat now: 10 minutes after the last stored point, so the last rates are 1200 / 600 s and
            // 30 / 10 min.
            _ = try await store.heartbeat(
                device.id,
                Heartbeat(metrics: [
                    "cpu.percent": 40, "memory.rss_bytes": 3.2e9, "camera.\(dock.id).fps": 25,
                    "camera.\(dock.id).dropped": dropped + 1200, "camera.\(lobby.id).fps": 0,
                    "outbox.dropped_events": events + 30, "outbox.pending": 4,
                ]))

            try await WebDriver.withBrowser { browser in
                try await Self.drive(browser, base: base, device: device, cameras: (dock, lobby, yard))
            }
        }
    }

    static func drive(
        _ browser: WebDriver, base: String, device: Device, cameras: (dock: Camera, lobby: Camera, yard: Camera)
    ) async throws {
        try await browser.go(base + "/login")
        try await browser.find("#user").type("alice")
        try await browser.find("#password").type(ConsoleTests.password)
        try await browser.find("button[type=submit]").click()
        try await browser.waitUntil(timeout: .seconds(10), "signed in") {
            !(try await browser.currentURL().contains("/login"))
        }
        func titles() async throws -> [String] {
            var titles: [String] = []
            for element in try await browser.findAll("figure.chart .chart-title") {
                titles.append(try await element.text())
            }
            return titles
        }
        func chart(_ metric: String) async throws -> WebDriver.Element {
            try await browser.find("figure.chart[data-metric='\(metric)']")
        }

        // The device page: named charts in groups, over the last 24 hours.
        try await browser.go(base + "/devices/\(device.id)")
        let deviceTitles = try await titles()
        #expect(deviceTitles.contains("Frames per second — Dock door"), "\(deviceTitles)")
        #expect(deviceTitles.contains("CPU") && deviceTitles.contains("Agent memory (RSS)"), "\(deviceTitles)")
        #expect(!deviceTitles.contains { $0.contains("cam_") || $0.contains(".") }, "raw keys: \(deviceTitles)")
        #expect(try await browser.find("#health-system h3").text() == "System")
        #expect(try await browser.find("#health-cameras h3").text() == "Cameras")
        #expect(try await chart("cpu.percent").find(".chart-latest").text() == "latest 40 %")
        #expect(try await browser.find("#camera-\(cameras.dock.id) .camera-status").text() == "streaming")
        try await browser.saveScreenshots("device")

        // The system page: every figure with its value now; counters as rates.
        try await browser.find("#system-link").click()
        try await browser.waitUntil(timeout: .seconds(10), "the system page") {
            try await browser.currentURL().hasSuffix("/devices/\(device.id)/system")
        }
        let row = try await browser.find("#system-figures tr[data-metric='camera.\(cameras.dock.id).dropped']")
        #expect(try await row.text().contains("Frames dropped per second — Dock door"))
        // 1200 frames in the 600 s (and a moment) since the last stored point.
        let droppedNow = try await row.find("td.value").text()
        #expect(droppedNow.hasSuffix("since the agent started)") && droppedNow.contains(" /s"), "\(droppedNow)")
        #expect((1.95...2).contains(Self.leadingNumber(droppedNow)), "\(droppedNow)")
        let outbox = try await browser.find("#system-figures tr[data-metric='outbox.dropped_events']")
        let outboxNow = try await outbox.find("td.value").text()
        #expect(outboxNow.contains(" /min") && (2.95...3).contains(Self.leadingNumber(outboxNow)), "\(outboxNow)")

        // 7 days: the axis starts with the data (3 days ago), with days in its labels; no negative rate at the
        // restart.
        try await browser.go(base + "/devices/\(device.id)/system?range=7d")
        #expect(try await browser.find(".range-picker a[aria-current]").text() == "7 d")
        let weekStart = try await chart("cpu.percent").find(".chart-start").text()
        let threeDaysAgo = LineChart.timeLabel(Date().addingTimeInterval(-3 * 86_400), withDay: true)
        #expect(weekStart.prefix(6) == threeDaysAgo.prefix(6), "\(weekStart) vs \(threeDaysAgo)")
        let dropped = try await chart("camera.\(cameras.dock.id).dropped")
        var lowest = Double.infinity
        for point in try await dropped.findAll(".chart-point") {
            let label = try await point.attribute("data-label") ?? ""
            let value = label.split(separator: " ").dropLast().last.flatMap { Double($0) } ?? -1
            lowest = min(lowest, value)
        }
        #expect(lowest >= 0, "a rate below zero: \(lowest)")
        try await browser.saveScreenshots("device-system")

        // A range the picker does not offer is refused with the ones it does.
        try await browser.go(base + "/devices/\(device.id)/system?range=2d")
        #expect(try await browser.find(".form-error").text() == "range must be one of 1h, 6h, 24h, 7d, not \"2d\"")
        try await browser.go(base + "/devices/\(device.id)/system?range=7d")

        // 1 hour: the axis spans that hour, in hours and minutes only.
        try await browser.find(".range-picker a[data-range='1h']").click()
        try await browser.waitUntil(timeout: .seconds(10), "the 1 h range") {
            try await browser.currentURL().hasSuffix("range=1h")
        }
        let hourStart = try await chart("cpu.percent").find(".chart-start").text()
        #expect(hourStart.count == 5 && hourStart != weekStart, "\(hourStart)")
        let hourAgo = Date().addingTimeInterval(-3600)
        let hourLabels = [-60.0, 0, 60].map { LineChart.timeLabel(hourAgo.addingTimeInterval($0), withDay: false) }
        // The first stored point of that hour is at most 10 minutes in.
        let firstPoint = (0...11).map {
            LineChart.timeLabel(hourAgo.addingTimeInterval(Double($0) * 60), withDay: false)
        }
        #expect(firstPoint.contains(hourStart) || hourLabels.contains(hourStart), "\(hourStart)")

        // Hovering a point shows its time and value.
        let points = try await chart("cpu.percent").findAll(".chart-point")
        let last = try #require(points.last)
        _ = try await browser.executeScript(
            "arguments[0].dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))", [last])
        let readout = try await chart("cpu.percent").find(".chart-readout").text()
        #expect(readout.hasSuffix("UTC: 40 %"), "\(readout)")

        // At phone width nothing overflows sideways.
        try await browser.setWindowSize(width: 375, height: 812)
        let width = try await browser.executeScript("return document.documentElement.scrollWidth") as? Int
        let wideSystem = try await Self.wide(browser)
        #expect((width ?? 999) <= 376, "the system page is \(width ?? -1) px wide at 375: \(wideSystem)")
        try await browser.setWindowSize(width: 1440, height: 900)

        // The cameras page: each camera's status and frames per second.
        try await browser.go(base + "/cameras")
        func status(_ camera: Camera) async throws -> (String, String) {
            let row = try await browser.find("#camera-\(camera.id)")
            return (try await row.find(".camera-status").text(), try await row.find(".camera-fps").text())
        }
        #expect(try await status(cameras.dock) == ("streaming", "25"))
        #expect(try await status(cameras.lobby) == ("no frames", "0"))
        #expect(try await status(cameras.yard) == ("unknown", "—"))
        try await browser.saveScreenshots("cameras")
        try await browser.setWindowSize(width: 375, height: 812)
        let camerasWidth = try await browser.executeScript("return document.documentElement.scrollWidth") as? Int
        let wideOnes = try await Self.wide(browser)
        #expect((camerasWidth ?? 999) <= 376, "the cameras page is \(camerasWidth ?? -1) px wide at 375: \(wideOnes)")
        try await browser.setWindowSize(width: 1440, height: 900)
        // The refused range's 400 is the only console error allowed.
        let severe = try await browser.severeLogs().filter { !$0.contains("range=2d") }
        #expect(severe.isEmpty, "\(severe)")
    }

    /// The elements that reach past the window's right edge (for a failure's message).
    static func wide(_ browser: WebDriver) async throws -> String {
        let script = """
            return Array.from(document.querySelectorAll('body *')).filter((e) => e.getBoundingClientRect().right > \
            window.innerWidth + 1).slice(0, 8).map((e) => e.tagName + '.' + e.className + '#' + e.id).join(', ')
            """
        return try await browser.executeScript(script) as? String ?? ""
    }

    /// The number a text starts with (`1.99 /s (…)` → 1.99), or -1.
    static func leadingNumber(_ text: String) -> Double {
        Double(text.prefix { $0.isNumber || $0 == "." }) ?? -1
    }

    // MARK: A real agent

    @Test("a real agent's heartbeats: charts named for its camera and instance, the camera streaming")
    func realAgentHeartbeats() async throws {
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        let (device, agent) = try await fleet.enrollAgent("edge-h")
        defer { agent.stop() }
        let instance = try await fleet.deployPeopleCounter(on: device, version: "1.0")
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)
        let camera = try #require(try await fleet.client.listCameras().first { $0.deviceId == device })
        @Sendable func page(_ path: String) async throws -> String {
            var request = URLRequest(url: fleet.client.baseURL.appending(path: path))
            request.setValue("Bearer \(fleet.server.adminToken ?? "")", forHTTPHeaderField: "Authorization")
            let (data, _) = try await URLSession.shared.data(for: request)
            return String(decoding: data, as: UTF8.self)
        }
        try await fleet.waitUntil("the cameras page shows \(camera.name) streaming", timeout: .seconds(60)) {
            let html = try await page("/cameras")
            guard let start = html.range(of: "<tr id=\"camera-\(camera.id)\">") else { return false }
            let row = html[start.upperBound...].prefix { $0 != "\n" }
            return row.contains(">streaming</span>")
        }
        try await fleet.waitUntil("the agent reports inference time", timeout: .seconds(60)) {
            try await page("/devices/\(device)/system").contains("Inference time p99")
        }
        let system = try await page("/devices/\(device)/system")
        let titles = system.matches(of: /<strong class="chart-title">([^<]*)<\/strong>/).map { String($0.1) }
        #expect(titles.contains("Frames per second — \(camera.name)"), "\(titles)")
        #expect(titles.contains("Frames dropped per second — \(camera.name)"), "\(titles)")
        #expect(titles.contains("Inference time p99 — people-\(device)"), "\(titles)")
        #expect(titles.contains("CPU") && titles.contains("Agent memory (RSS)"), "\(titles)")
        #expect(titles.contains("Frames inferred per second"), "\(titles)")
        #expect(!titles.contains { $0.contains(camera.id) || $0.contains(instance) }, "ids in titles: \(titles)")
        #expect(!system.contains("<td>Other</td>"), "a figure of the agent the console does not name")
    }
}
