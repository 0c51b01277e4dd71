// The log view of an instance's page (issue 18, part 8): a level select, a search box and Follow, in headless
// Chromium on an in-process server. The lines go in through Store.appendLogs, the function the device API's sendLogs
// calls, as a device's batch would: the agent's own shipping is tested end to end in ConsoleLiveTests.
import Crypto
import Foundation
import Testing
import VantageAPI
import VantageCore

@testable import VantageServer

@Suite("ConsoleLogsTests", .serialized, .timeLimit(.minutes(5)))
struct ConsoleLogsTests {
    @Test(.enabled(if: WebDriver.isAvailable, Comment(rawValue: WebDriver.skipReason)))
    func filteringSearchingAndFollowingAnInstancesLogs() async throws {
        try await ConsoleTests.withServer { plane, base in
            let store = plane.store
            try await store.setUser(name: "alice", password: ConsoleTests.password, role: .viewer)
            let device = try await store.createDevice(NewDevice(name: "dock")).device
            let camera = try await store.createCamera(
                NewCamera(name: "gate", url: "rtsp://192.0.2.10:554/stream1", deviceId: device.id))
            let package = try await ConsoleTests.addPeopleCounter(to: store)
            let instance = try await store.createInstance(
                NewInstance(
                    name: "people", packageId: package.id, packageVersion: "1.0", deviceId: device.id,
                    cameras: ["camera_node": camera.id]))
            let start = Date().addingTimeInterval(-60)
            func line(_ seconds: Double, _ level: String, _ message: String) -> LogLine {
                LogLine(
                    time: start.addingTimeInterval(seconds), instanceId: instance.id, level: level, message: message)
            }
            try await store.appendLogs(
                device: device.id,
                LogBatch(lines: [
                    line(0, "info", "deployment 1.0 running"),
                    line(1, "info", "people counter on app.node=counter"),
                    line(2, "warning", "camera gate stalled, reconnecting"),
                    line(3, "info", "frame rate " + String(repeating: "steady and unremarkable ", count: 30)),
                    line(4, "error", "Model failed to load: detector.onnx"),
                    LogLine(time: start, level: "info", message: "agent connected"),
                    LogLine(time: start, level: "warning", message: "agent clock is 3 s off"),
                ]))

            try await WebDriver.withBrowser { browser in
                try await Self.drive(browser, base: base, store: store, device: device.id, instance: instance.id)
            }
        }
    }

    static func drive(_ browser: WebDriver, base: String, store: Store, device: String, instance: String) async throws {
        try await browser.go(base + "/login")
        try await browser.find("#user").type("alice")
        try await browser.find("#password").type(ConsoleTests.password)
        try await browser.find("button[type=submit]").click()
        try await browser.waitUntil(timeout: .seconds(10), "signed in") {
            !(try await browser.currentURL().contains("/login"))
        }
        // Read in one script: the list changes under a WebDriver element by element read.
        func shown() async throws -> [String] {
            let lines = try await browser.executeScript(
                "return [...document.querySelectorAll('#logs .log-line')].map(line => line.innerText)")
            return (lines as? [String]) ?? []
        }

        try await browser.go(base + "/instances/\(instance)")
        var lines = try await shown()
        #expect(lines.count == 5, "\(lines)")
        #expect(lines.first?.hasSuffix("UTC INFO deployment 1.0 running") == true, "times say UTC: \(lines)")
        // The node a line came from is shown on its own, not as app.node= in the message.
        #expect(try await browser.find("#logs .log-line:nth-child(2) .log-node").text() == "counter")
        #expect(lines[1].hasSuffix("INFO counter people counter on"), "\(lines)")
        let badge =
            try await browser.executeScript(
                "return getComputedStyle(document.querySelector('#logs .level-error')).backgroundColor") as? String
        #expect(badge != nil && badge != "rgba(0, 0, 0, 0)", "the level is a coloured badge: \(badge ?? "nil")")
        #expect(try await browser.find("#log-follow").property("checked") as? Bool == true, "Follow is on")
        try await browser.saveScreenshots("instance-logs")

        // Level: warning and above hides the info lines.
        try await browser.find("#log-level").select("warning")
        try await browser.waitUntil(timeout: .seconds(5), "the info lines hidden") {
            try await shown().count == 2
        }
        lines = try await shown()
        #expect(lines[0].contains("WARNING camera gate stalled") && lines[1].contains("ERROR Model failed"), "\(lines)")

        // Search (case-insensitive) within the level.
        try await browser.find("#log-search").type("MODEL")
        try await browser.waitUntil(timeout: .seconds(5), "the search applied") { try await shown().count == 1 }
        #expect(try await shown().first?.contains("Model failed to load: detector.onnx") == true)
        try await browser.find("#log-search").type("nothing like this")
        try await browser.waitUntil(timeout: .seconds(5), "no match") { try await shown().isEmpty }
        #expect(try await browser.find("#no-logs").text() == "No log lines match the filter.")
        try await browser.find("#log-search").clear()
        try await browser.find("#log-level").select("")
        try await browser.waitUntil(timeout: .seconds(5), "all lines again") { try await shown().count == 5 }

        // Follow: a line that arrives after the page loaded appears at the bottom without a reload.
        try await browser.executeScript("window.notReloaded = true")
        try await store.appendLogs(
            device: device,
            LogBatch(lines: [
                LogLine(time: Date(), instanceId: instance, level: "notice", message: "camera gate back after 12 s")
            ]))
        try await browser.waitUntil(timeout: .seconds(8), "the new line followed") {
            try await shown().last?.contains("NOTICE camera gate back after 12 s") == true
        }
        #expect(try await shown().count == 6, "no line shown twice")
        #expect(try await browser.executeScript("return window.notReloaded === true") as? Bool == true)

        // The device's page: the agent's own lines, with the same filters.
        try await browser.go(base + "/devices/\(device)")
        let agentLines = try await shown()
        #expect(agentLines.count == 2, "the agent's lines only: \(agentLines)")
        try await browser.find("#log-level").select("warning")
        try await browser.waitUntil(timeout: .seconds(5), "the agent's info line hidden") {
            try await shown().count == 1
        }
        #expect(try await shown().first?.contains("WARNING agent clock is 3 s off") == true)

        // At a phone's width nothing overflows sideways; the long line wraps.
        try await browser.go(base + "/instances/\(instance)")
        try await browser.setWindowSize(width: 375, height: 812)
        try await Task.sleep(for: .milliseconds(300))
        let width = try await browser.executeScript("return document.documentElement.scrollWidth") as? Int ?? 9999
        #expect(width <= 376, "the page is \(width) px wide at 375")
        try await browser.setWindowSize(width: 1280, height: 900)
    }
}
