import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ServiceLifecycle
import Testing
import VantageAPI
import VantageCore
import VantageServer
import ZIPFoundation

/// The web console: signing in and out over plain HTTP, and in headless Chromium the path an operator takes to
/// deploy an application (upload a package, fill the instance form, see the instance listed).
@Suite("ConsoleTests")
struct ConsoleTests {
    static let password = "correct horse battery"

    // MARK: Plain HTTP

    @Test func signingInAndOut() async throws {
        try await Self.withPlane { plane in
            try await plane.store.setUser(name: "alice", password: Self.password, role: .operator)
            try await Application(router: plane.router()).test(.router) { client in
                let home = try await client.execute(uri: "/", method: .get)
                #expect(home.status == .seeOther)
                #expect(home.headers[.location] == "/login")
                let devices = try await client.execute(uri: "/devices", method: .get)
                #expect(devices.status == .seeOther)
                #expect(devices.headers[.location] == "/login?next=/devices")

                let wrong = try await client.execute(
                    uri: "/login", method: .post, headers: Self.form,
                    body: ByteBuffer(string: "user=alice&password=nope"))
                #expect(wrong.status == .unauthorized)
                #expect(String(buffer: wrong.body).contains("wrong user name or password"))
                #expect(wrong.headers[.setCookie] == nil)

                let right = try await client.execute(
                    uri: "/login", method: .post, headers: Self.form,
                    body: ByteBuffer(string: "user=alice&password=correct+horse+battery&next=%2Fdevices"))
                #expect(right.status == .seeOther)
                #expect(right.headers[.location] == "/devices")
                let setCookie = try #require(right.headers[.setCookie])
                for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
                    #expect(setCookie.contains(attribute), "Set-Cookie lacks \(attribute): \(setCookie)")
                }
                let cookie = String(setCookie.prefix { $0 != ";" })
                #expect(cookie.hasPrefix("vantage_session=vs_"))

                let page = try await client.execute(uri: "/devices", method: .get, headers: [.cookie: cookie])
                #expect(page.status == .ok)
                let html = String(buffer: page.body)
                #expect(html.contains("<title>Devices — Vantage</title>"))
                #expect(html.contains("<span class=\"user\" id=\"current-user\">alice</span>"))
                let csrf = try #require(Self.csrfToken(in: html))

                // An open redirect is not followed: the login goes home instead.
                let elsewhere = try await client.execute(
                    uri: "/login", method: .post, headers: Self.form,
                    body: ByteBuffer(string: "user=alice&password=correct+horse+battery&next=%2F%2Fevil.example"))
                #expect(elsewhere.headers[.location] == "/")

                let forged = try await client.execute(
                    uri: "/logout", method: .post, headers: Self.form.merging([.cookie: cookie]),
                    body: ByteBuffer(string: ""))
                #expect(forged.status == .forbidden)
                #expect(try await client.execute(uri: "/", method: .get, headers: [.cookie: cookie]).status == .ok)

                let logout = try await client.execute(
                    uri: "/logout", method: .post, headers: Self.form.merging([.cookie: cookie]),
                    body: ByteBuffer(string: "_csrf=\(csrf)"))
                #expect(logout.status == .seeOther)
                #expect(logout.headers[.location] == "/login")
                #expect(logout.headers[.setCookie]?.contains("Max-Age=0") == true)
                let after = try await client.execute(uri: "/", method: .get, headers: [.cookie: cookie])
                #expect(after.status == .seeOther)
            }
            let audit = try await plane.store.auditLog(limit: 10, cursor: nil).items
            #expect(audit.filter { $0.actor == "user:alice" }.map(\.action) == ["logout", "login", "login"])
        }
    }

    @Test func pagesEscapeTextAndDrawHealthCharts() async throws {
        try await Self.withPlane { plane in
            try await plane.store.setUser(name: "alice", password: Self.password, role: .viewer)
            let device = try await plane.store.createDevice(
                NewDevice(name: "gate-1", description: "<script>alert('x')</script> & co")
            ).device
            try await Application(router: plane.router()).test(.router) { client in
                let cookie = try await Self.signIn(client)
                var html = String(
                    buffer: try await client.execute(
                        uri: "/devices/\(device.id)", method: .get, headers: [.cookie: cookie]
                    )
                    .body)
                #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"))
                #expect(!html.contains("<script>alert"))
                #expect(html.contains("No heartbeats yet"))

                _ = try await plane.store.heartbeat(
                    device.id, Heartbeat(softwareVersion: "1.0", metrics: ["cpu.percent": 12.5, "memory.bytes": 3e9]))
                _ = try await plane.store.heartbeat(
                    device.id, Heartbeat(metrics: ["cpu.percent": 40, "memory.bytes": 3.2e9]))
                html = String(
                    buffer: try await client.execute(
                        uri: "/devices/\(device.id)", method: .get, headers: [.cookie: cookie]
                    )
                    .body)
                #expect(!html.contains("No heartbeats yet"))
                #expect(html.components(separatedBy: "<svg").count == 3, "one chart per metric")
                #expect(
                    html.contains(
                        "<strong class=\"chart-title\">CPU</strong> <span class=\"muted chart-latest\">latest 40 %</span>"
                    ))
                #expect(
                    html.contains(
                        "<strong class=\"chart-title\">Memory used</strong> <span class=\"muted chart-latest\">latest 3.2 GB</span>"
                    ))

                let missing = try await client.execute(
                    uri: "/devices/dev_aaaaaaaaaaaaaaaa", method: .get, headers: [.cookie: cookie])
                #expect(missing.status == .notFound)
                #expect(String(buffer: missing.body).contains("no device dev_aaaaaaaaaaaaaaaa"))
            }
        }
    }

    @Test func eventsFilterAndPage() async throws {
        try await Self.withPlane { plane in
            try await plane.store.setUser(name: "alice", password: Self.password, role: .viewer)
            let device = try await plane.store.createDevice(NewDevice(name: "gate-1")).device
            let start = Date().addingTimeInterval(-600)
            let batch = (0..<210).map { index in
                NewEvent(
                    type: index == 0 ? "door.open" : "people.count", time: start.addingTimeInterval(Double(index)),
                    data: .object(["count": .number(Double(index))]))
            }
            _ = try await plane.store.ingestEvents(device: device.id, EventBatch(events: batch))
            try await Application(router: plane.router()).test(.router) { client in
                let cookie = try await Self.signIn(client)
                func page(_ uri: String) async throws -> (status: HTTPResponse.Status, html: String) {
                    let response = try await client.execute(uri: uri, method: .get, headers: [.cookie: cookie])
                    return (response.status, String(buffer: response.body))
                }
                // Newest first, 200 a page (in groups), then an "Older" link that keeps the filters.
                let first = try await page("/events?deviceId=\(device.id)")
                #expect(
                    first.html.contains("{&quot;count&quot;:209}") && !first.html.contains("{&quot;count&quot;:9}<"))
                let older = try #require(Self.link("older", in: first.html))
                #expect(older.contains("deviceId=\(device.id)") && older.contains("cursor="))
                let second = try await page(older)
                #expect(second.html.contains("{&quot;count&quot;:9}<") && second.html.contains("door.open"))
                #expect(Self.link("older", in: second.html) == nil)

                let doors = try await page("/events?type=door.open")
                // (The type select still offers every type.)
                #expect(
                    doors.html.contains("data-type=\"door.open\"")
                        && !doors.html.contains("data-type=\"people.count\""))
                let none = try await page("/events?type=nothing")
                #expect(none.html.contains("No events in this range."))
                let recent = try await page("/events?since=\(APIJSON.formatTime(start.addingTimeInterval(50)))")
                #expect(
                    recent.html.contains("{&quot;count&quot;:50}") && !recent.html.contains("{&quot;count&quot;:49}"))
                let bad = try await page("/events?since=yesterday")
                #expect(bad.status == .badRequest)
                #expect(bad.html.contains("from must be a time like"))
            }
        }
    }

    // MARK: In the browser

    @Test(.enabled(if: WebDriver.isAvailable, Comment(rawValue: WebDriver.skipReason)))
    func deployingAPackageFromTheBrowser() async throws {
        try await Self.withServer { plane, base in
            let store = plane.store
            try await store.setUser(name: "alice", password: Self.password, role: .operator)
            let device = try await store.createDevice(NewDevice(name: "gate-1")).device
            let camera = try await store.createCamera(
                NewCamera(
                    name: "entrance", url: "rtsp://192.0.2.10:554/stream1", password: "s3cret", deviceId: device.id))
            _ = try await store.heartbeat(device.id, Heartbeat(metrics: ["cpu.percent": 20]))
            let events = try await store.ingestEvents(
                device: device.id,
                EventBatch(events: [
                    NewEvent(
                        type: "people.count", cameraId: camera.id, data: .object(["count": .number(3)]),
                        snapshot: Self.jpeg)
                ]))
            let archive = try Self.zipOfPeopleCounter()
            defer { try? FileManager.default.removeItem(at: archive.deletingLastPathComponent()) }

            try await WebDriver.withBrowser { browser in
                try await Self.drive(
                    browser, base: base, store: store, device: device, camera: camera, event: events[0],
                    archive: archive)
            }
        }
    }

    static func drive(
        _ browser: WebDriver, base: String, store: Store, device: Device, camera: Camera, event: String, archive: URL
    ) async throws {
        // No console error is allowed (the wizard refuses the bad values below before any request).
        let expected: [String] = []
        // No console error, and no markup escaped twice (no text in this test has a "<").
        func expectCleanPage(_ sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let severe = try await browser.severeLogs().filter { line in !expected.contains { line.contains($0) } }
            let url = try await browser.currentURL()
            #expect(severe.isEmpty, "console errors on \(url): \(severe)", sourceLocation: sourceLocation)
            let source = try await browser.pageSource()
            #expect(!source.contains("&lt;"), "escaped markup on \(url)", sourceLocation: sourceLocation)
        }
        func waitForPath(_ prefix: String) async throws {
            try await browser.waitUntil(timeout: .seconds(10), "the page \(prefix)…") {
                try await browser.currentURL().hasPrefix(base + prefix)
            }
        }

        try await browser.go(base + "/devices")
        try await waitForPath("/login")
        try await expectCleanPage()
        #expect(try await browser.title() == "Sign in — Vantage")
        try await browser.find("#user").type("alice")
        try await browser.find("#password").type(password)
        try await browser.find("button[type=submit]").click()
        try await waitForPath("/devices")
        try await expectCleanPage()
        #expect(try await browser.find("#current-user").text() == "alice")
        #expect(try await browser.find("#devices").text().contains("gate-1"))

        // Register a device: its provisioning token is shown once.
        try await browser.find("#device-form input[name=name]").type("gate-2")
        try await browser.find("#device-form button[type=submit]").click()
        let created = try await browser.find("#device-created")
        try await browser.waitUntil(timeout: .seconds(10), "the provisioning token") { try await created.isDisplayed() }
        let token = try await browser.find("#device-created .device-token").text()
        #expect(token.hasPrefix("vd_"))
        let command = try await browser.find("#device-created .device-command").text()
        #expect(
            command.contains("vantage agent enroll --server https://127.0.0.1:8443 ")
                && command.contains("--token \(token)") && command.contains("--ca-hash \(store.authority.fingerprint)"),
            "\(command)")
        #expect(try await store.listDevices().map(\.name) == ["gate-1", "gate-2"])

        // Add a camera with credentials, which never come back to the page.
        try await browser.go(base + "/cameras")
        try await expectCleanPage()
        try await browser.find("#camera-form input[name=name]").type("lobby")
        try await browser.find("#camera-form input[name=url]").type("rtsp://192.0.2.11:554/main")
        try await browser.find("#camera-form input[name=username]").type("viewer")
        try await browser.find("#camera-form input[name=password]").type("lobby-pass-123")
        try await browser.find("#camera-form button[type=submit]").click()
        try await browser.waitUntil(timeout: .seconds(10), "the new camera listed") {
            (try? await browser.find("#cameras").text().contains("lobby")) ?? false
        }
        #expect(try await !browser.pageSource().contains("lobby-pass-123"))

        // Upload a model file as the first version of a new model: an OpenVINO IR zipped with its weights.
        let model = archive.deletingLastPathComponent().appending(path: "detector.zip")
        try Data(
            try TestArchive.make([
                .file("detector.xml", ModelArchiveTests.xml), .file("detector.bin", ModelArchiveTests.bin),
            ])
        ).write(to: model)
        try await browser.go(base + "/models")
        try await expectCleanPage()
        try await browser.find("#model-form input[name=name]").type("detector")
        try await browser.find("#model-form input[type=file]").type(model.path)
        try await browser.find("#model-form button[type=submit]").click()
        try await browser.waitUntil(timeout: .seconds(10), "the model listed") {
            (try? await browser.find("#models").text().contains("v1 detector.zip")) ?? false
        }
        try await expectCleanPage()

        // Upload the example project as a ZIP through the file input.
        try await browser.go(base + "/packages")
        try await expectCleanPage()
        try await browser.find("#package-form input[name=name]").type("people-counter")
        try await browser.find("#package-form input[name=version]").type("1.0")
        try await browser.find("#package-form input[type=file]").type(archive.path)
        try await browser.find("#package-form button[type=submit]").click()
        try await waitForPath("/packages/pkg_")
        try await expectCleanPage()
        let version = try await browser.find("[id='version-1.0']")
        #expect(try await version.text().contains("REGISTER_COMPLETED"))
        try await browser.go(base + "/packages")
        #expect(try await browser.find("#packages").text().contains("1.0"))

        // The deploy form of that version.
        try await browser.find("#packages a[href^='/packages/pkg_']").click()
        try await waitForPath("/packages/pkg_")
        try await browser.find("[id='version-1.0'] a.button").click()
        try await waitForPath("/instances/new?")
        try await expectCleanPage()
        // The deploy wizard, a step at a time: name and device, cameras, models, parameters, outputs, review.
        func next() async throws { try await browser.find("#instance-form [data-wizard=next]").click() }
        let name = try await browser.find("#instance-name")
        try await name.clear()
        try await name.type("counter-gate-1")
        try await browser.find("#device").select(device.id)
        try await next()
        let cameraSelect = try await browser.find("#camera-camera_node")
        #expect(try await browser.find("label:has(#camera-camera_node)").text().hasPrefix("Camera"))
        try await cameraSelect.select(camera.id)
        try await next()
        try await next()
        let minScore = try await browser.find("#param-min_score")
        #expect(try await minScore.attribute("placeholder") == "0.5")
        #expect(try await browser.find("label:has(#param-min_score)").text().contains("Minimum score"))
        #expect(try await browser.findAll("#param-model_name").isEmpty, "model_name is not overridable")

        // The manifest's constraint regex is the input's pattern: the browser itself refuses 1.5 (0 to 1).
        #expect(try await minScore.attribute("pattern") != nil)
        try await minScore.type("1.5")
        try await next()
        let mismatch = try await browser.executeScript(
            "return document.querySelector('#param-min_score').validity.patternMismatch", [])
        #expect(mismatch as? Bool == true)
        #expect(try await store.listInstances().isEmpty)

        // A value that is no int32 (max_people has no pattern): the wizard says so as the server would, and
        // nothing is created.
        let maxPeople = try await browser.find("#param-max_people")
        try await maxPeople.type("abc")
        try await minScore.clear()
        try await minScore.type("0.6")
        try await next()
        let error = try await browser.find("label:has(#param-max_people) .field-error")
        try await browser.waitUntil(timeout: .seconds(10), "the field's error") { try await error.isDisplayed() }
        let message = try await error.text()
        #expect(message.contains("max_people") && message.contains("\"abc\""), "shown: \(message)")
        #expect(try await store.listInstances().isEmpty)
        try await expectCleanPage()
        try await maxPeople.clear()

        try await minScore.clear()
        try await minScore.type("0.7")
        try await next()
        try await next()
        try await browser.find("#instance-form button[type=submit]").click()
        try await waitForPath("/instances/ins_")
        try await expectCleanPage()
        #expect(try await browser.find("#deployments").text().contains("DEPLOYMENT_PENDING"))
        let instancePage = try await browser.currentURL()

        // Stop it: a new deployment with desired state STOPPED, and the page offers Start.
        try await browser.find("button[data-instance-action=stop]").click()
        try await browser.waitFor("button[data-instance-action=start]", timeout: .seconds(10))
        try await expectCleanPage()
        #expect(try await store.listInstances().first?.desiredState == .stopped)
        #expect(try await browser.findAll("#deployments tbody tr").count == 2)
        try await browser.find("button[data-instance-action=start]").click()
        try await browser.waitFor("button[data-instance-action=stop]", timeout: .seconds(10))
        #expect(try await browser.currentURL() == instancePage)

        try await browser.go(base + "/instances")
        try await expectCleanPage()
        let row = try await browser.find("#instances tbody tr").text()
        for text in ["counter-gate-1", "people-counter@1.0", "gate-1", "RUNNING", "DEPLOYMENT_PENDING"] {
            #expect(row.contains(text), "the instance row lacks \(text): \(row)")
        }
        let instances = try await store.listInstances()
        #expect(instances.count == 1)
        let instance = try #require(instances.first)
        #expect(instance.deviceId == device.id)
        #expect(instance.cameras == ["camera_node": camera.id])
        guard case .number(let score)? = instance.parameters["min_score"] else {
            Issue.record("min_score is not a number: \(instance.parameters)")
            return
        }
        #expect(abs(score - 0.7) < 1e-6)
        #expect(instance.parameters.count == 1, "only the changed parameter is overridden")

        // Every other page loads without a console error (snapshots load with the session cookie).
        for path in ["/", "/devices/\(device.id)", "/cameras", "/models", "/events", "/events/\(event)"] {
            try await browser.go(base + path)
            try await expectCleanPage()
        }
        try await browser.go(base + "/")
        #expect(try await browser.find("#devices-online").text() == "1")
        #expect(try await browser.find("#events-24h").text() == "1")
        try await browser.go(base + "/cameras")
        // The thumbnail loads (with the session cookie) and is the 32-pixel-wide JPEG the device sent.
        try await browser.waitUntil(timeout: .seconds(10), "the camera's snapshot thumbnail loads") {
            let width = try await browser.executeScript(
                "const img = document.querySelector('#cameras img.thumb'); return img.complete ? img.naturalWidth : -1",
                [])
            return width as? Int == 32
        }

        try await browser.find("form.logout button").click()
        try await waitForPath("/login")
        try await browser.go(base + "/devices")
        try await waitForPath("/login?next=")
        try await expectCleanPage()
    }

    // MARK: Support

    static let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

    /// Signs alice in through the router; returns her session cookie.
    static func signIn(_ client: some TestClientProtocol) async throws -> String {
        let response = try await client.execute(
            uri: "/login", method: .post, headers: form,
            body: ByteBuffer(string: "user=alice&password=correct+horse+battery"))
        return String(try #require(response.headers[.setCookie]).prefix { $0 != ";" })
    }

    /// The `href` of the element with this id, unescaped.
    static func link(_ id: String, in html: String) -> String? {
        guard let tag = html.range(of: "id=\"\(id)\""),
            let open = html[..<tag.lowerBound].range(of: "<a href=\"", options: .backwards)
        else { return nil }
        return String(html[open.upperBound...].prefix { $0 != "\"" }).replacingOccurrences(of: "&amp;", with: "&")
    }

    static func csrfToken(in html: String) -> String? {
        guard let start = html.range(of: "<meta name=\"csrf-token\" content=\"") else { return nil }
        return String(html[start.upperBound...].prefix { $0 != "\"" })
    }

    static var logger: Logger {
        var logger = Logger(label: "ConsoleTests")
        logger.logLevel = .warning
        return logger
    }

    /// A control plane on a fresh SQLite data folder.
    static func withPlane(_ body: @Sendable (ControlPlane) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-console-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        var configuration = ServerConfiguration()
        configuration.dataDirectory = folder
        configuration.port = 0
        try await ControlPlane.with(configuration, logger: logger, body)
    }

    /// A control plane served on a free port of 127.0.0.1 while `body` runs with its base URL.
    static func withServer(_ body: @escaping @Sendable (ControlPlane, String) async throws -> Void) async throws {
        try await withPlane { plane in
            let (ports, port) = AsyncStream.makeStream(of: Int.self)
            let services = ServiceGroup(
                configuration: .init(
                    services: [plane.application(logger: logger, onServerRunning: { port.yield($0) })],
                    logger: logger))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await services.run() }
                defer { group.cancelAll() }
                var iterator = ports.makeAsyncIterator()
                let listening = try #require(await iterator.next())
                do {
                    try await body(plane, "http://127.0.0.1:\(listening)")
                } catch {
                    await services.triggerGracefulShutdown()
                    throw error
                }
                await services.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    /// The people counter, self-contained as `vantage app build` leaves it (`SourceTree.peopleCounter`), as a ZIP in a
    /// temporary folder (the archive keeps the project's folder).
    static func zipOfPeopleCounter() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-console-zip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let archive = folder.appending(path: "people-counter.zip")
        try FileManager.default.zipItem(at: SourceTree.peopleCounter, to: archive)
        return archive
    }

    /// A 32×18 JPEG (ffmpeg's test pattern), base64, as a device sends snapshots.
    static let jpeg = """
        /9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAgYGBwYHCEhISEhISckJygoKCcnJycoKCgrKyszMzMr\
        KysoKCsrMDAzMzc5NzQ0MzQ5OTw8PEhIRUVUVFdnZ3z/xACRAAACAwEBAAAAAAAAAAAAAAAHBgUAAQQCAQAABwEBAAAAAAAAAAAA\
        AAAABQYHBAgDAgEQAAECBAYBAwUBAAAAAAAAAAECABEEwQNCMYESIQVBclGxM6FigjJxEQABAgMEBwUGBwEAAAAAAAABAhEABAMx\
        IRIFgsJRQ4FCQSJhMsETsRRy0mJxI7JzNJKh0TP/wAARCAASACADARIAAhIAAxIA/9oADAMBAAIRAxEAPwAedXaF24oHIAE/duHU\
        ydy2VrJTAphwTHP/AB8CmKi0g2Byf6gm9+pUVuoLNxFwG0fUNkSFzipKVrLR41KpoQWcAnEXLnoAWtvZw0YZhJ1PQNN0P6iF2lmS\
        lYPS3tCFacwftRsl+Ru3CACjiOZPmH4uwcuAkEAAAMABYBCGls2oLJATVvbon54U+ZAJFEAAABQAFwAGG4CEbP5nRqlICanZxO4T\
        1b6u6CpN4NaNbnZ22kpEF8R8Dzq6z0ObhDlUMkmSCcdH+S/khPZnutPVjKsr3/B6dzP47rW2Psif6i8biLgVyU7efcGMNWo9dNol\
        BcKwo79sNoByjnEj3ZyiqaiQDeU9e7/YnGVXLAlRSfsT5gQ4kzIolKyl0wEoqgHCOVSScTBrklwwe17A0LiZpGbCChg2LxXWtsfZ\
        AekzDcRx/NX5lMelWSVi2Hj5R5W5eMF+XJChWSoAghIIIcEHE4I2Rplm90NaJ2bwa0dm8GtG/wDR5uECjzcIKsz3WnqwMz3Wnqwe\
        ZvBrR2bwa0dK6HNwgUObhDU5nutPVgZnutPVjv60QtD0o+C9676Q9CPhvmbqdL4fIR0f+dL4R7BE9CiqcniST+MReXuClgD7ABh3\
        RnT/AHk9+sr864//2Q==
        """
}

extension HTTPFields {
    fileprivate func merging(_ other: HTTPFields) -> HTTPFields {
        var fields = self
        fields.append(contentsOf: other)
        return fields
    }
}
