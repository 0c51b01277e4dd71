// Fleet actions in the console and names where ids go: a real `vantage server` and a real agent (Fleet, from
// AgentEndToEndTests) running the people counter on the sample video, driven in headless Chromium and with the
// `vantage` CLI as an operator would.
import Crypto
import Foundation
import Testing
import VantageAPI
import VantageClient

@testable import VantageServer

@Suite("ConsoleFleetTests", .serialized, .timeLimit(.minutes(10)))
struct ConsoleFleetTests {
    static let password = ConsoleUsers.password

    // MARK: Names where ids go (no browser)

    @Test func namesResolveOnceOrSayWhichIds() async throws {
        try await ConsoleTests.withPlane { plane in
            let store = plane.store
            let dock = try await store.createDevice(NewDevice(name: "dock")).device
            let camera = try await store.createCamera(
                NewCamera(name: "gate", url: "rtsp://192.0.2.10:554/stream1", deviceId: dock.id))
            #expect(try await store.resolve(.device, "dock") == dock.id)
            #expect(try await store.resolve(.device, dock.id) == dock.id)
            #expect(try await store.resolve(.camera, "gate") == camera.id)
            let missing = await #expect(throws: APIError.self) { try await store.resolve(.model, "person-detector") }
            #expect(missing?.status == 404 && missing?.message.contains("no model person-detector") == true)
            // Two instances may share a name: the name alone is refused, naming both ids.
            let package = try await ConsoleTests.addPeopleCounter(to: store)
            var ids: [String] = []
            for _ in 0..<2 {
                ids.append(
                    try await store.createInstance(
                        NewInstance(
                            name: "people", packageId: package.id, packageVersion: "1.0", deviceId: dock.id,
                            cameras: ["camera_node": camera.id])
                    ).id)
            }
            let ambiguous = await #expect(throws: APIError.self) { try await store.resolve(.instance, "people") }
            #expect(ambiguous?.status == 400, "\(String(describing: ambiguous))")
            #expect(
                ambiguous?.message.contains(ids[0]) == true && ambiguous?.message.contains(ids[1]) == true,
                "\(String(describing: ambiguous))")
            // A removed one gives way to the one that is not.
            _ = try await store.removeInstance(ids[0])
            #expect(try await store.resolve(.instance, "people") == ids[1])
            // The camera's users: the instance that is not removed.
            #expect(try await store.usedBy(.camera, camera.id).map(\.id) == [ids[1]])
        }
    }

    // MARK: In the browser, with a real agent

    @Test(.enabled(if: WebDriver.isAvailable, Comment(rawValue: WebDriver.skipReason)))
    func fleetActionsWithARealAgent() async throws {
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        let data = fleet.folder.appending(path: "server")
        try ConsoleUsers.add("ada", role: .admin, data: data)
        try ConsoleUsers.add("vic", role: .viewer, data: data)
        let (device, agent) = try await fleet.enrollAgent("edge-f")
        defer { agent.stop() }
        try await fleet.waitUntil("edge-f is online", timeout: .seconds(60)) {
            try await fleet.client.device(device).connectionStatus == .online
        }
        let instance = try await fleet.deployPeopleCounter(on: device, version: "1.0")
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)
        let instanceName = try await fleet.client.instance(instance).name

        // The CLI takes names where it took ids.
        let base = "http://127.0.0.1:\(fleet.apiPort)"
        let token = try #require(fleet.server.adminToken)
        let settings = fleet.folder.appending(path: "cli.json").path
        func cli(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
            try await TestProcess.runSeparately(
                [try ServerProcess.binary().path] + arguments + ["--server", base, "--token", token],
                environment: ["VANTAGE_SERVER": nil, "VANTAGE_TOKEN": nil, "VANTAGE_CONFIG": settings], stdin: "")
        }
        let modelFile = SourceTree.root.appending(path: ".deps/models/ssdlite/frozen_inference_graph.pb").path
        let upload = try await cli(["models", "upload", "person-detector", modelFile])
        #expect(upload.status == 0 && upload.stdout.contains("as version 2 of model person-detector"), "\(upload)")
        let shown = try await cli(["devices", "show", "edge-f"])
        #expect(shown.status == 0 && shown.stdout.contains(device), "\(shown)")
        let listed = try await cli(["instances", "list", "--device", "edge-f"])
        #expect(listed.status == 0 && listed.stdout.contains(instance), "\(listed)")
        // devices create prints the enrol command with the server's real device endpoint.
        let spareBox = try await cli(["devices", "create", "cli-box"])
        #expect(
            spareBox.status == 0
                && spareBox.stdout.contains(
                    "vantage agent enroll --server https://127.0.0.1:\(fleet.devicePort) --token vd_"),
            "\(spareBox)")
        let unknown = try await cli(["models", "show", "no-such-model"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no model no-such-model"), "\(unknown)")

        try await WebDriver.withBrowser { browser in
            try await Self.drive(
                browser, base: base, fleet: fleet, device: device, agent: agent, instanceName: instanceName)
        }
    }

    static func drive(
        _ browser: WebDriver, base: String, fleet: Fleet, device: String, agent: ServerProcess, instanceName: String
    ) async throws {
        func waitForPath(_ prefix: String) async throws {
            try await browser.waitUntil(timeout: .seconds(10), "the page \(prefix)…") {
                try await browser.currentURL().hasPrefix(base + prefix)
            }
        }
        func signIn(_ user: String, then path: String) async throws {
            try await browser.go(base + path)
            try await waitForPath("/login")
            try await browser.find("#user").type(user)
            try await browser.find("#password").type(password)
            try await browser.find("button[type=submit]").click()
            try await waitForPath(path)
        }
        // confirm() dialogs say yes (WebDriver here has no alert commands).
        func acceptConfirms() async throws { _ = try await browser.executeScript("window.confirm = () => true") }
        /// The buttons a user can see in the page's main part.
        func visibleButtons() async throws -> [String] {
            var shown: [String] = []
            for button in try await browser.findAll("main button") where try await button.isDisplayed() {
                shown.append(try await button.text())
            }
            return shown
        }

        try await signIn("ada", then: "/devices")
        // Register a device: the enrol command names this server's real device endpoint.
        try await browser.find("#device-form input[name=name]").type("spare")
        try await browser.find("#device-form button[type=submit]").click()
        let created = try await browser.find("#device-created")
        try await browser.waitUntil(timeout: .seconds(10), "the provisioning token") { try await created.isDisplayed() }
        let command = try await browser.find("#device-created .device-command").text()
        #expect(
            command.hasPrefix("vantage agent enroll --server https://127.0.0.1:\(fleet.devicePort) --token vd_"),
            "\(command)")
        #expect(!command.contains("HOST"), "\(command)")
        try await browser.saveScreenshots("devices")
        try await browser.setWindowSize(width: 375, height: 812)
        let width = try await browser.executeScript("return document.documentElement.scrollWidth") as? Int ?? 0
        let wide =
            try await browser.executeScript(
                """
                return [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 376)
                  .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id).join(', ')
                """) as? String ?? ""
        #expect(width <= 376, "the devices page is \(width) px wide at 375: \(wide)")
        try await browser.setWindowSize(width: 1280, height: 900)

        // A model in use cannot be deleted: the page names its users, and shows the server's refusal.
        try await browser.go(base + "/models")
        try await acceptConfirms()
        let usedBy = try await browser.find("#models td.used-by").text()
        #expect(usedBy.contains(instanceName), "\(usedBy)")
        try await browser.find("#models button[data-delete=models]").click()
        let refusal = try await browser.find("#delete-error")
        try await browser.waitUntil(timeout: .seconds(10), "the refusal") { try await refusal.isDisplayed() }
        let refused = try await refusal.text()
        #expect(refused.contains(instanceName), "\(refused)")
        #expect(try await fleet.client.listModels().map(\.name) == ["person-detector"])

        // A camera: edited (its stored password is never shown, and left empty it stays), then refused deletion
        // while the instance uses it.
        let camera = try #require(try await fleet.client.listCameras().first)
        try await browser.go(base + "/cameras")
        try await acceptConfirms()
        try await browser.find("button[data-edit-camera=\"\(camera.id)\"]").click()
        let description = try await browser.find("#camera-edit input[name=description]")
        try await browser.waitUntil(timeout: .seconds(10), "the edit form") { try await description.isDisplayed() }
        #expect(try await browser.find("#camera-edit input[name=url]").property("value") as? String == camera.url)
        try await description.clear()
        try await description.type("sample video")
        try await browser.find("#camera-edit button[type=submit]").click()
        try await browser.waitUntil(timeout: .seconds(10), "the camera saved") {
            try await fleet.client.camera(camera.id).description == "sample video"
        }
        // Its sub-stream (for detection): given in the form (here the same stream, so the instance runs on), shown
        // in the table and in the form again, removed by clearing the field.
        try await browser.go(base + "/cameras")
        try await browser.find("button[data-edit-camera=\"\(camera.id)\"]").click()
        let subStream = try await browser.find("#camera-edit input[name=detectUrl]")
        try await browser.waitUntil(timeout: .seconds(10), "the edit form") { try await subStream.isDisplayed() }
        #expect(try await subStream.property("value") as? String == "")
        try await subStream.type(camera.url)
        try await browser.find("#camera-edit button[type=submit]").click()
        try await browser.waitUntil(timeout: .seconds(10), "the sub-stream saved") {
            try await fleet.client.camera(camera.id).detectUrl == camera.url
        }
        try await browser.go(base + "/cameras")
        #expect(try await browser.find("code.detect-url").text() == camera.url)
        try await browser.find("button[data-edit-camera=\"\(camera.id)\"]").click()
        let subStreamAgain = try await browser.find("#camera-edit input[name=detectUrl]")
        try await browser.waitUntil(timeout: .seconds(10), "the edit form") { try await subStreamAgain.isDisplayed() }
        #expect(try await subStreamAgain.property("value") as? String == camera.url)
        try await subStreamAgain.clear()
        try await browser.find("#camera-edit button[type=submit]").click()
        try await browser.waitUntil(timeout: .seconds(10), "the sub-stream removed") {
            try await fleet.client.camera(camera.id).detectUrl == nil
        }
        try await browser.go(base + "/cameras")
        try await acceptConfirms()
        try await browser.find("button[data-delete=cameras][data-id=\"\(camera.id)\"]").click()
        let cameraRefusal = try await browser.find("#delete-error")
        try await browser.waitUntil(timeout: .seconds(10), "the camera's refusal") {
            try await cameraRefusal.isDisplayed()
        }
        let cameraRefused = try await cameraRefusal.text()
        #expect(cameraRefused.contains(instanceName) || cameraRefused.contains("is bound in"), "\(cameraRefused)")
        #expect(try await fleet.client.listCameras().count == 1)

        // A device with no instances is deleted from its page.
        let spare = try #require(try await fleet.client.listDevices().first { $0.name == "spare" })
        try await browser.go(base + "/devices/\(spare.id)")
        try await acceptConfirms()
        try await browser.find("button[data-device-action=delete]").click()
        try await waitForPath("/devices")
        try await browser.waitUntil(timeout: .seconds(10), "spare gone") {
            try await !fleet.client.listDevices().contains { $0.name == "spare" }
        }

        // The device page: rename, a new token shown once with the enrol command, then revoke.
        try await browser.go(base + "/devices/\(device)")
        try await acceptConfirms()
        let rename = try await browser.find("#device-edit input[name=description]")
        try await rename.clear()
        try await rename.type("north dock")
        try await browser.find("#device-edit button[type=submit]").click()
        try await browser.waitUntil(timeout: .seconds(10), "the new description") {
            (try? await browser.find("dl.facts").text().contains("north dock")) ?? false
        }
        try await acceptConfirms()
        try await browser.find("button[data-device-action=token]").click()
        let tokenBox = try await browser.find("#device-token")
        try await browser.waitUntil(timeout: .seconds(10), "the new token") { try await tokenBox.isDisplayed() }
        let enrolAgain = try await browser.find("#device-token .device-command").text()
        #expect(enrolAgain.contains("--server https://127.0.0.1:\(fleet.devicePort)"), "\(enrolAgain)")
        try await browser.saveScreenshots("device-actions")
        try await browser.find("button[data-device-action=revoke]").click()
        try await browser.waitUntil(timeout: .seconds(10), "the device shown revoked") {
            (try? await browser.find("#device-revoked").isDisplayed()) ?? false
        }
        // The agent's very next call is refused: it says so, and its heartbeats stop counting.
        try await fleet.waitUntil("the agent is refused", timeout: .seconds(30)) {
            agent.output.contains("refuses this device")
        }
        let revoked = try await fleet.client.device(device)
        #expect(revoked.certificateExpiresAt == nil && revoked.provisioningStatus == .awaitingProvisioning)
        try await Task.sleep(for: .seconds(3))
        #expect(try await fleet.client.device(device).lastHeartbeat == revoked.lastHeartbeat, "no heartbeat counted")

        // API tokens: created (shown once) and revoked.
        try await browser.go(base + "/access")
        try await acceptConfirms()
        try await browser.find("#token-form input[name=name]").type("ci-deploy")
        try await browser.find("#token-form select[name=role]").select("operator")
        try await browser.find("#token-form button[type=submit]").click()
        let secretBox = try await browser.find("#token-created")
        try await browser.waitUntil(timeout: .seconds(10), "the token's secret") { try await secretBox.isDisplayed() }
        #expect(try await browser.find("#token-created .token-secret").text().hasPrefix("vt_"))
        #expect(try await fleet.client.listTokens().contains { $0.name == "ci-deploy" && $0.role == .operator })
        try await browser.go(base + "/access")
        try await browser.saveScreenshots("tokens")
        try await acceptConfirms()
        let ci = try #require(try await fleet.client.listTokens().first { $0.name == "ci-deploy" })
        try await browser.find("button[data-revoke-token=\"\(ci.id)\"]").click()
        try await browser.waitUntil(timeout: .seconds(10), "the token gone") {
            try await !fleet.client.listTokens().contains { $0.name == "ci-deploy" }
        }
        // The page reloads itself after the revocation: let it, before going elsewhere (the reload would win).
        try await browser.waitUntil(timeout: .seconds(10), "the page shows the token gone") {
            try await browser.executeScript(
                "return document.readyState === 'complete' && !document.querySelector('[data-revoke-token=\"\(ci.id)\"]')"
            )
                as? Bool == true
        }

        // The audit log, filtered: ada's revocation is there.
        try await browser.go(base + "/audit?action=revokeDevice")
        let audit = try await browser.find("#audit").text()
        #expect(audit.contains("user:ada") && audit.contains("revokeDevice"), "\(audit)")
        #expect(!audit.contains("createToken"), "\(audit)")
        try await browser.go(base + "/audit")
        #expect(try await browser.find("#audit").text().contains("deleteToken"))
        try await browser.saveScreenshots("audit")

        // A viewer sees no button that changes anything, nor the admins' pages.
        try await browser.find("form.logout button").click()
        try await waitForPath("/login")
        try await signIn("vic", then: "/devices/\(device)")
        let viewerButtons = try await visibleButtons()
        #expect(viewerButtons == [], "\(viewerButtons)")
        // The instance page among them: a viewer used to see Stop and Remove there, and get an error naming an
        // API operation.
        let instance = try #require(try await fleet.client.listInstances().first { $0.name == instanceName })
        for path in ["/cameras", "/models", "/packages", "/instances", "/instances/\(instance.id)", "/devices"] {
            try await browser.go(base + path)
            let buttons = try await visibleButtons()
            #expect(buttons == [], "\(path): \(buttons)")
        }
        let instanceLink = try await browser.findAll("nav a[href=\"/access\"]")
        #expect(try await instanceLink.first?.isDisplayed() == false)
        try await browser.go(base + "/access")
        #expect(try await browser.find("main").text().contains("only admins"))
    }

    // MARK: Support
}
