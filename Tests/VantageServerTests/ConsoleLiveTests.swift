import Foundation
import Testing
import VantageAPI
import VantageClient

/// Live video relayed through the control plane: a real server, a real agent running the people counter with real
/// inference on the sample video, and the console in headless Chromium. The device opens no port: the page's
/// watcher puts the instance in the device's desired state, the agent's worker encodes annotated frames and the
/// agent POSTs them over its mutual-TLS link; the server hands them to the page.
@Suite("ConsoleLiveTests", .serialized)
struct ConsoleLiveTests {
    @Test(.enabled(if: WebDriver.isAvailable, Comment(rawValue: WebDriver.skipReason)))
    func watchingAnInstanceLive() async throws {
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        let (device, agent) = try await fleet.enrollAgent("dock")
        defer { agent.stop() }
        let instance = try await fleet.deployPeopleCounter(on: device, version: "1.0")
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)
        try ConsoleUsers.add("olive", role: .operator, data: fleet.folder.appending(path: "server"))

        // The application's own log lines reach the server with the instance's (the people counter logs its
        // cameras and settings when it starts), and a state change is logged once, not twice.
        try await fleet.waitUntil("the app's own log line on the server", timeout: .seconds(30)) {
            try await fleet.client.instanceLogs(instance).contains { $0.message.contains("people counter on") }
        }
        let succeeded = agent.output.split(separator: "\n").filter { $0.contains("DEPLOYMENT_SUCCEEDED") }
        #expect(
            succeeded.count == 1,
            "a state change logged \(succeeded.count) times:\n\(succeeded.joined(separator: "\n"))")

        // Nobody watches: the device is asked for nothing, and a frame it sends anyway is refused.
        #expect(try Self.liveRequest(fleet) == nil, "the desired state asks for live frames while nobody watches")

        let browser = try await WebDriver.start()
        defer { Task { await browser.quit() } }
        let base = fleet.client.baseURL.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        try await browser.go(base + "/instances/\(instance)/live")
        _ = try await browser.find("#user")
        try await browser.saveScreenshots("login")
        try await browser.signIn("olive")

        // A frame arrives and shows: the image has the video's size and the LIVE badge is on.
        let started = ContinuousClock.now
        try await browser.waitUntil(timeout: .seconds(30), "a live frame in the page") {
            let width = try await browser.executeScript(
                "const i = document.querySelector('.live-tile img'); return i && !i.hidden ? i.naturalWidth : 0")
            return (width as? Int ?? 0) > 0
        }
        let firstFrame = ContinuousClock.now - started
        let size = try await browser.executeScript(
            "const i = document.querySelector('.live-tile img'); return [i.naturalWidth, i.naturalHeight]")
        #expect(size as? [Int] == [768, 576], "the relayed frame is the camera's: \(String(describing: size))")
        #expect(try await browser.find(".live-badge").isDisplayed())
        let errors = try await browser.severeLogs()
        #expect(errors.isEmpty, "\(errors)")

        // Boxes are drawn: the people counter outlines each person it detects in pure green (its addRect's
        // default), which the sample video has none of (no pixel with G > 180, R and B < 90 in any of its frames,
        // counted with ffmpeg at 2 fps). Counted on the frame the browser shows, over a few frames (a frame
        // without people has none).
        var greenest = 0
        for _ in 0..<10 {
            let green = try await browser.executeScript(
                """
                const i = document.querySelector('.live-tile img');
                const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;
                const g = c.getContext('2d'); g.drawImage(i, 0, 0);
                const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;
                for (let p = 0; p < d.length; p += 4) if (d[p + 1] > 180 && d[p] < 90 && d[p + 2] < 90) n++;
                return n;
                """)
            greenest = max(greenest, green as? Int ?? 0)
            if greenest > 300 { break }
            try await Task.sleep(for: .milliseconds(700))
        }
        #expect(greenest > 300, "no green boxes in the live frames (\(greenest) green pixels at most)")
        print("ConsoleLiveTests: \(greenest) box-green pixels in the greenest frame")

        // Pause the camera from the page: the device confirms, and the picture stops changing; Resume starts it again.
        func frameDigest() async throws -> String {
            let value = try await browser.executeScript(
                """
                const i = document.querySelector('.live-tile img');
                const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;
                const g = c.getContext('2d'); g.drawImage(i, 0, 0);
                const d = g.getImageData(0, 0, c.width, c.height).data; let h = 0;
                for (let p = 0; p < d.length; p += 97) h = (h * 31 + d[p]) >>> 0;
                return String(h);
                """)
            return value as? String ?? ""
        }
        let status = try await browser.find("#camera-controls .status")
        try await browser.find("#camera-controls button[data-camera-signal=pause]").click()
        do {
            try await browser.waitUntil(timeout: .seconds(20), "the device confirms the pause") {
                try await status.text().contains("paused")
            }
        } catch {
            let shown = try await browser.find("#camera-controls").text()
            throw APITestError("\(error)\nthe page says: \(shown)\nagent:\n\(agent.output.suffix(3000))")
        }
        try await Task.sleep(for: .seconds(1))
        let paused = try await frameDigest()
        try await Task.sleep(for: .seconds(2))
        #expect(try await frameDigest() == paused, "the picture still changes while the camera is paused")
        try await browser.find("#camera-controls button[data-camera-signal=resume]").click()
        try await browser.waitUntil(timeout: .seconds(20), "the device confirms the resume") {
            try await status.text().contains("resumed")
        }
        try await browser.waitUntil(timeout: .seconds(20), "the picture moves again") {
            try await frameDigest() != paused
        }

        // The stream keeps coming: the page shows newer frames (the server's stream, not one still image).
        #expect(try Self.liveRequest(fleet)?.instances == [instance])
        try await browser.saveScreenshots("instance-live")

        // The grid of the device's running instances, refreshed by polling.
        try await browser.go(base + "/live?deviceId=\(device)")
        try await browser.waitUntil(timeout: .seconds(20), "a frame in the grid's tile") {
            let count = try await browser.executeScript(
                "const t = document.querySelector('.live-tile'); return t ? Number(t.dataset.frames || 0) : 0")
            return (count as? Int ?? 0) >= 2
        }
        #expect(try await browser.find(".live-tile figcaption a").text().contains("people-"))
        try await browser.saveScreenshots("live-grid")
        let gridErrors = try await browser.severeLogs()
        #expect(gridErrors.isEmpty, "\(gridErrors)")

        // The pages around the running instance, for docs/console.md (a real fleet of one device).
        for (name, path) in [
            ("overview", "/"), ("instances", "/instances"), ("instance", "/instances/\(instance)"),
            ("packages", "/packages"), ("package", "/packages/\(fleet.packageID ?? "")"), ("models", "/models"),
        ] {
            try await browser.go(base + path)
            _ = try await browser.find("main h1")
            try await browser.saveScreenshots(name)
        }

        // The overview keeps itself current: a device registered meanwhile shows up without a reload.
        try await browser.go(base + "/")
        // Read by script: the refreshed region's elements are replaced, so a found element can go stale.
        _ = try await browser.find("#devices-never")
        func neverSeen() async throws -> String {
            try await browser.executeScript("return document.getElementById('devices-never').textContent") as? String
                ?? ""
        }
        let never = try await neverSeen()
        _ = try await browser.executeScript("window.sameDocument = true")
        _ = try await fleet.client.createDevice(NewDevice(name: "yard"))
        try await browser.waitUntil(timeout: .seconds(30), "the overview counts the new device") {
            try await neverSeen() == String((Int(never) ?? -1) + 1)
        }
        #expect(try await browser.executeScript("return window.sameDocument === true") as? Bool == true)

        // The page closes: the linger passes, the device is told to stop, and stops sending.
        try await fleet.waitUntil("the device is no longer asked for frames", timeout: .seconds(30)) {
            try Self.liveRequest(fleet) == nil
        }
        #expect(firstFrame < .seconds(30))
    }

    /// What the agent of "dock" was last asked to relay, from the desired state it keeps on disk.
    static func liveRequest(_ fleet: Fleet) throws -> LiveRequest? {
        let file = fleet.agentFolder("dock").appending(path: "deployments/desired-state.json")
        return try JSONDecoder().decode(DeviceDesiredState.self, from: Data(contentsOf: file)).live
    }
}
