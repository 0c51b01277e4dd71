import Foundation
import Testing
import VantageAPI
import VantageClient
import VantageCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Event review with clips, end to end: a real server, a real agent running the people counter with real inference
/// on the sample video and an outputs rule that asks for a clip of each count change; the agent cuts the clip on the
/// device and uploads it over its mutual-TLS link; the console, in headless Chromium, filters the events with its
/// selects, finds the rule's event and plays its clip.
@Suite("ConsoleEventsTests", .serialized)
struct ConsoleEventsTests {
    static let password = ConsoleUsers.password

    @Test(.enabled(if: WebDriver.isAvailable, Comment(rawValue: WebDriver.skipReason)))
    func findingAnEventAndPlayingItsClip() async throws {
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        let (device, agent) = try await fleet.enrollAgent("review")
        defer { agent.stop() }
        let outputs: JSONValue = .object([
            "events": .object(["clips": .object(["preRoll": .number(1), "postRoll": .number(1)])]),
            "rules": .array([
                .object([
                    "name": .string("count-clips"), "when": .object(["type": .string("count_changed")]),
                    "send": .array([]), "clip": .bool(true),
                ])
            ]),
        ])
        let instance = try await fleet.deployPeopleCounter(on: device, version: "1.0", outputs: outputs)
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)
        try ConsoleUsers.add("rita", role: .viewer, data: fleet.folder.appending(path: "server"))

        // The clip follows its event: cut on the device after its post-roll, then uploaded.
        var clipped: Event?
        do {
            try await fleet.waitUntil("an event's clip reaches the server", timeout: .seconds(120)) {
                try await fleet.events(device: device).contains { $0.hasClip }
            }
            clipped = try await fleet.events(device: device).first { $0.hasClip }
        } catch {
            throw APITestError("\(error)\nagent output:\n\(agent.output.suffix(4000))")
        }
        let event = try #require(clipped)
        #expect(event.type == "count_changed")
        let camera = try #require(event.cameraId)

        // The API serves it as MP4, in parts too (a video element asks for ranges).
        var request = URLRequest(url: fleet.client.baseURL.appending(path: "api/v1/events/\(event.id)/clip"))
        request.setValue("Bearer \(fleet.server.adminToken ?? "")", forHTTPHeaderField: "Authorization")
        request.setValue("bytes=0-99", forHTTPHeaderField: "Range")
        let (head, answer) = try await URLSession.shared.data(for: request)
        let http = try #require(answer as? HTTPURLResponse)
        #expect(http.statusCode == 206 && head.count == 100, "\(http.statusCode) \(head.count)")
        #expect(String(decoding: head[4..<8], as: UTF8.self) == "ftyp", "the clip is an MP4")

        try await WebDriver.withBrowser { browser in
            try await Self.review(
                browser, fleet: fleet, device: device, camera: camera, instance: instance, event: event)
        }
    }

    static func review(
        _ browser: WebDriver, fleet: Fleet, device: String, camera: String, instance: String, event: Event
    ) async throws {
        let base = fleet.client.baseURL.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        try await browser.go(base + "/events")
        try await browser.find("#user").type("rita")
        try await browser.find("#password").type(password)
        try await browser.find("button[type=submit]").click()
        try await browser.waitUntil(timeout: .seconds(10), "the events page") {
            try await browser.currentURL().hasPrefix(base + "/events")
        }
        #expect(try await browser.find("#events-zone").text().contains("UTC"), "the page states its time zone")

        // Filter with the selects: this device, its camera, this instance, count changes, the last hour.
        try await browser.find("#event-filters select[name=deviceId]").select(device)
        try await browser.find("#event-filters select[name=cameraId]").select(camera)
        try await browser.find("#event-filters select[name=instanceId]").select(instance)
        try await browser.find("#event-filters select[name=type]").select("count_changed")
        try await browser.find("#event-range").select("1h")
        #expect(
            try await !browser.find("#event-filters input[name=from]").isDisplayed(),
            "from shows only for a custom range")
        try await browser.find("#event-filters button[type=submit]").click()
        try await browser.waitUntil(timeout: .seconds(10), "the filtered page") {
            let url = try await browser.currentURL()
            return url.contains("type=count_changed") && url.contains("range=1h") && url.contains("cameraId=")
        }
        // Grouped: one group of count changes on this camera, its count said; the counts by type; a timeline.
        let groups = try await browser.findAll(".event-group")
        #expect(groups.count == 1, "one group: count_changed on the one camera")
        #expect(try await browser.find(".event-group summary").text().contains("count_changed"))
        #expect(try await browser.find("#event-types").text().contains("count_changed"))
        let marks = try await browser.findAll("#timelines rect.mark")
        #expect(!marks.isEmpty, "the camera's timeline has the events as marks")
        #expect(try await browser.find("#events-summary").text().contains("event"))
        // At a phone's width nothing overflows sideways.
        try await browser.setWindowSize(width: 375, height: 812)
        try await Task.sleep(for: .milliseconds(300))
        let width = try await browser.executeScript("return document.documentElement.scrollWidth") as? Int ?? 0
        #expect(width <= 376, "the events page is \(width) px wide at 375 px")
        try await browser.setWindowSize(width: 1280, height: 900)
        try await browser.saveScreenshots("events")

        // A type no event has: nothing.
        try await browser.go(base + "/events?type=over_nothing&range=1h")
        #expect(try await browser.find("#events-summary").text().contains("No events"))

        // The rule's event, with its clip: open it and the clip plays.
        try await browser.go(base + "/events?deviceId=\(device)&cameraId=\(camera)&type=count_changed&range=1h")
        // A group with a clip is "notable" and open; the others fold (opened here, as a user would).
        _ = try await browser.executeScript(
            "for (const d of document.querySelectorAll('details.event-group')) d.open = true; return 0")
        let link = try await browser.find(".event-row a[href=\"/events/\(event.id)\"]")
        let row = try await browser.find(".event-row:has(a[href=\"/events/\(event.id)\"])")
        #expect(try await row.text().contains("clip"), "the row says the event has a clip")
        try await link.click()
        try await browser.waitUntil(timeout: .seconds(10), "the event page") {
            try await browser.currentURL().hasSuffix("/events/\(event.id)")
        }
        try await browser.waitUntil(timeout: .seconds(20), "the clip loads in the video element") {
            let state = try await browser.executeScript(
                "const v = document.querySelector('video#event-clip'); return v ? [v.readyState, v.duration || 0] : [0, 0]"
            )
            guard let values = state as? [Any], values.count == 2 else { return false }
            let ready = (values[0] as? Int) ?? 0
            let duration = (values[1] as? Double) ?? Double((values[1] as? Int) ?? 0)
            return ready >= 2 && duration > 0
        }
        let played = try await browser.executeScript(
            "const v = document.querySelector('video#event-clip'); return v.play().then(() => true, () => false)")
        #expect(played as? Bool == true, "the clip plays")
        #expect(try await browser.find("details.event-json summary").text().contains("JSON"), "the JSON is folded")
        let severe = try await browser.severeLogs()
        #expect(severe.isEmpty, "console errors: \(severe)")
        try await browser.saveScreenshots("event")
    }
}
