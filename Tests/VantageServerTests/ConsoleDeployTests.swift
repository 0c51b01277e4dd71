import Foundation
import Testing
import VantageAPI
import VantageClient

@testable import VantageServer

/// The deploy wizard and the edit of a running instance, driven in headless Chromium against a real server and a
/// real agent that runs the people counter with real inference (the SSDLite person detector).
@Suite("ConsoleDeployTests", .serialized)
struct ConsoleDeployTests {
    static let password = ConsoleUsers.password

    @Test(
        "an operator deploys the people counter through the wizard with the server's person detector, sees it RUNNING, edits a parameter (old → new shown), and the new deployment reaches the device; another device's camera is neither offered nor accepted; removed instances leave the lists; a viewer gets no Edit",
        .enabled(if: WebDriver.isAvailable, Comment(rawValue: WebDriver.skipReason)))
    func deployAndEditThroughTheConsole() async throws {
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        let (device, agent) = try await fleet.enrollAgent("edge-deploy")
        defer { agent.stop() }
        let data = fleet.folder.appending(path: "server")
        try ConsoleUsers.add("olga", role: .operator, data: data)
        try ConsoleUsers.add("vera", role: .viewer, data: data)
        let client = fleet.client
        let other = try await client.createDevice(NewDevice(name: "edge-other")).device
        let lobby = try await client.createCamera(
            NewCamera(
                name: "lobby", url: "file://" + SourceTree.root.appending(path: ".deps/media/vtest.mp4").path,
                deviceId: device))
        let yard = try await client.createCamera(
            NewCamera(name: "yard", url: "rtsp://192.0.2.20:554/stream1", password: "yard-pass-1", deviceId: other.id))
        let model = try await client.createModel(NewModel(name: "person-detector"))
        _ = try await client.uploadModelVersion(
            model.id, file: SourceTree.root.appending(path: ".deps/models/ssdlite/frozen_inference_graph.pb"))
        try await fleet.push(version: "1.0")
        let packageID = try #require(fleet.packageID)
        try await fleet.waitUntil("the device is online", timeout: .seconds(60)) {
            try await client.device(device).connectionStatus == .online
        }

        // The API itself refuses another device's camera (its credentials would reach the wrong device).
        do {
            _ = try await client.createInstance(
                NewInstance(
                    name: "wrong", packageId: packageID, packageVersion: "1.0", deviceId: device,
                    cameras: ["camera_node": yard.id]))
            Issue.record("the API accepted a camera of another device")
        } catch let error as ClientError {
            #expect(error.status == 409, "\(error)")
            #expect(error.message.contains("yard") && error.message.contains("edge-other"), "\(error.message)")
        }
        // A model version the model does not have is refused, naming the versions it has.
        do {
            _ = try await client.createInstance(
                NewInstance(
                    name: "pinned", packageId: packageID, packageVersion: "1.0", deviceId: device,
                    cameras: ["camera_node": lobby.id], models: ["model_node": "\(model.id)@7"]))
            Issue.record("the API accepted version 7 of a model with one version")
        } catch let error as ClientError {
            #expect(error.status == 422 && error.message.contains("has no version 7 (it has 1)"), "\(error)")
        }
        #expect(try await client.listInstances().isEmpty)

        try await WebDriver.withBrowser { browser in
            try await Self.drive(
                browser, base: fleet.client.baseURL.absoluteString, fleet: fleet, agent: agent, device: device,
                lobby: lobby, yard: yard, model: model)
        }
    }

    static func drive(
        _ browser: WebDriver, base rawBase: String, fleet: Fleet, agent: ServerProcess, device: String, lobby: Camera,
        yard: Camera, model: Model
    ) async throws {
        let base = rawBase.hasSuffix("/") ? String(rawBase.dropLast()) : rawBase
        let client = fleet.client
        var expected: [String] = []
        func expectCleanPage(_ sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let severe = try await browser.severeLogs().filter { line in !expected.contains { line.contains($0) } }
            #expect(severe.isEmpty, "console errors: \(severe)", sourceLocation: sourceLocation)
            let width = try await browser.executeScript("return document.documentElement.scrollWidth", [])
            #expect((width as? Int ?? 0) <= 1441, "the page is wider than the window", sourceLocation: sourceLocation)
        }
        // What sticks out of a 375 px window (the elements whose right edge passes it, outermost first).
        func overflowing() async throws -> String {
            let script = """
                return Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > 376
                  && !(e.parentElement && e.parentElement.getBoundingClientRect().right > 376))
                  .slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).join('; ')
                """
            return try await browser.executeScript(script, []) as? String ?? ""
        }
        func waitForPath(_ prefix: String) async throws {
            try await browser.waitUntil(timeout: .seconds(15), "the page \(prefix)…") {
                try await browser.currentURL().hasPrefix(base + prefix)
            }
        }
        func signIn(_ user: String) async throws {
            try await browser.go(base + "/login")
            try await browser.find("#user").type(user)
            try await browser.find("#password").type(password)
            try await browser.find("button[type=submit]").click()
            // Every console URL starts with "/": wait for the login page itself to be gone, or the next `go` may
            // race the form's POST and land on /login again (CI, 2026-12-07: "#deploy-new" not found).
            try await browser.waitUntil(timeout: .seconds(15), "signed in as \(user)") {
                let url = try await browser.currentURL()
                return url.hasPrefix(base + "/") && !url.hasPrefix(base + "/login")
            }
        }
        func visible(_ css: String) async throws -> Bool {
            guard let element = try await browser.findAll(css).first else { return false }
            return try await element.isDisplayed()
        }
        func next() async throws { try await browser.find("#instance-form [data-wizard=next]").click() }
        func currentStep() async throws -> String {
            try await browser.executeScript(
                "return document.getElementById('wizard-steps').querySelector('li.current').dataset.step", [])
                as? String ?? ""
        }

        try await browser.setWindowSize(width: 1440, height: 1000)
        try await signIn("olga")

        // The wizard starts without a package: the package step, then the rest of the steps for that version.
        try await browser.go(base + "/instances")
        try await browser.find("#deploy-new").click()
        try await waitForPath("/instances/new")
        try await expectCleanPage()
        try await browser.find("#wizard-package").select(try #require(fleet.packageID))
        #expect(try await browser.find("#wizard-version").property("value") as? String == "1.0")
        try await browser.find("#package-step button[type=submit]").click()
        try await waitForPath("/instances/new?package=")
        try await expectCleanPage()
        #expect(try await currentStep() == "device")

        // Device: the step refuses to go on without one.
        try await next()
        #expect(try await currentStep() == "device")
        let name = try await browser.find("#instance-name")
        try await name.clear()
        try await name.type("counter-lobby")
        try await browser.find("#device").select(device)
        try await next()

        // Cameras: only this device's cameras are offered (yard belongs to edge-other).
        #expect(try await currentStep() == "cameras")
        let offered = try await browser.executeScript(
            "return Array.from(document.querySelectorAll('#camera-camera_node option')).map(o => o.value).join(',')",
            [])
        #expect(offered as? String == "," + lobby.id, "offered: \(String(describing: offered))")
        #expect(try await browser.findAll("#camera-camera_node option[value='\(yard.id)']").isEmpty)
        #expect(try await browser.find("#camera-camera_node").property("value") as? String == lobby.id)
        try await next()

        // Models: the package's model node, bound to the server's person detector.
        #expect(try await currentStep() == "models")
        let modelSelect = try await browser.find("#model-model_node")
        #expect(try await modelSelect.text().contains("person-detector — version 1 (latest)"))
        try await modelSelect.select("\(model.id)@1")
        try await next()

        // Parameters: the constraint's human text is shown, and the browser checks what the server would.
        #expect(try await currentStep() == "parameters")
        #expect(try await browser.find("label:has(#param-min_score)").text().contains("A number from 0 to 1"))
        let minScore = try await browser.find("#param-min_score")
        try await minScore.type("1.5")
        try await next()
        #expect(try await currentStep() == "parameters", "1.5 breaks min_score's constraint")
        let maxPeople = try await browser.find("#param-max_people")
        try await minScore.clear()
        try await minScore.type("0.6")
        try await maxPeople.type("2.5")
        try await next()
        #expect(try await currentStep() == "parameters", "2.5 is no int32")
        #expect(try await browser.find("label:has(#param-max_people) .field-error").text().contains("int32"))
        try await maxPeople.clear()
        try await next()

        // Outputs: a document the server refuses shows its message, on the outputs step.
        #expect(try await currentStep() == "outputs")
        let outputs = try await browser.find("#outputs")
        try await outputs.type(#"{"sinks": {"alerts": {"type": "carrier-pigeon"}}}"#)
        try await next()
        #expect(try await currentStep() == "review")
        let review = try await browser.find("#review").text()
        for text in [
            "people-counter version 1.0", "counter-lobby", "edge-deploy", "camera_node: lobby",
            "model_node: person-detector", "min_score = 0.6", "sinks alerts",
        ] {
            #expect(review.contains(text), "the review lacks \(text): \(review)")
        }
        expected.append("/api/v1/instances - Failed to load resource")
        try await browser.find("#instance-form [data-wizard=deploy]").click()
        let error = try await browser.find("#instance-form .form-error")
        try await browser.waitUntil(timeout: .seconds(10), "the server's error") { try await error.isDisplayed() }
        let refusal = try await error.text()
        #expect(refusal.contains("outputs"), "\(refusal)")
        #expect(try await currentStep() == "outputs")
        #expect(try await client.listInstances().isEmpty)
        try await outputs.clear()
        try await next()
        try await browser.saveScreenshots("deploy-wizard")
        try await browser.setWindowSize(width: 375, height: 812)
        let narrow = try await browser.executeScript("return document.documentElement.scrollWidth", [])
        let wizardOverflow = (narrow as? Int ?? 999) > 376 ? try await overflowing() : ""
        #expect((narrow as? Int ?? 999) <= 376, "the wizard is wider than a phone: \(wizardOverflow)")
        try await browser.setWindowSize(width: 1440, height: 1000)

        // Deploy: the instance page, then RUNNING once the agent runs it with the bound model.
        try await browser.find("#instance-form [data-wizard=deploy]").click()
        try await waitForPath("/instances/ins_")
        let instanceURL = try await browser.currentURL()
        let instanceID = String(try #require(instanceURL.split(separator: "/").last))
        let created = try await client.instance(instanceID)
        #expect(created.models["model_node"] == ModelBinding(modelId: model.id, version: 1))
        #expect(created.cameras == ["camera_node": lobby.id])
        #expect(created.parameters["min_score"] == .number(0.6))
        try await fleet.waitForDeployment(instanceID, version: "1.0", agent: agent)
        try await browser.go(instanceURL)
        try await expectCleanPage()
        #expect(try await browser.find("h1").text().contains("RUNNING"))
        // The binding is shown by the model's name, not its id.
        let models = try await browser.find("#models").text()
        #expect(models.contains(model.name) && !models.contains(model.id), "\(models)")
        #expect(try await browser.findAll("#deployments tbody tr").count == 1)

        // Edit: change min_score; the change shows old → new before it is saved.
        try await browser.find("#edit-instance").click()
        try await waitForPath("/instances/\(instanceID)/edit")
        try await expectCleanPage()
        let editScore = try await browser.find("#param-min_score")
        #expect(try await editScore.property("value") as? String == "0.6")
        #expect(try await browser.find("#model-model_node").property("value") as? String == "\(model.id)@1")
        try await browser.find("#edit-review").click()
        #expect(try await browser.find("#edit-form .status").text().contains("Nothing changed"))
        try await editScore.clear()
        try await editScore.type("0.4")
        try await browser.find("#edit-review").click()
        try await browser.waitFor("#edit-save", timeout: .seconds(5))
        #expect(try await visible("#edit-save"))
        let rows = try await browser.findAll("#edit-changes tbody tr")
        #expect(rows.count == 1)
        #expect(try await rows.first?.text() == "parameter min_score 0.6 0.4")
        _ = try await browser.executeScript("document.activeElement.blur(); window.scrollTo(0, 0)", [])
        try await browser.saveScreenshots("instance-edit")
        try await browser.setWindowSize(width: 375, height: 812)
        let editWidth = try await browser.executeScript("return document.documentElement.scrollWidth", [])
        let editOverflow = (editWidth as? Int ?? 999) > 376 ? try await overflowing() : ""
        #expect((editWidth as? Int ?? 999) <= 376, "the edit page is wider than a phone: \(editOverflow)")
        try await browser.setWindowSize(width: 1440, height: 1000)
        try await browser.find("#edit-save").click()
        // (A path prefix would match the edit page itself: wait for the instance page's own URL.)
        try await browser.waitUntil(timeout: .seconds(10), "back on the instance page") {
            try await browser.currentURL() == instanceURL
        }
        #expect(try await browser.findAll("#deployments tbody tr").count == 2)
        #expect(try await browser.find("#parameters").text().contains("0.4"))

        // The new deployment reaches the device: it reports the new one running.
        try await fleet.waitUntil("the device runs the edited instance", timeout: .seconds(180)) {
            let deployments = try await client.deployments(instance: instanceID)
            let state = try await client.instance(instanceID)
            return deployments.count == 2 && deployments.allSatisfy { $0.status != .deploymentPending }
                && state.status == .deploymentSucceeded && state.healthStatus == .running
        }
        #expect(try await client.instance(instanceID).parameters["min_score"] == .number(0.4))

        // A removed instance leaves the default lists; "show removed" brings it back.
        _ = try await client.removeInstance(instanceID)
        try await browser.go(base + "/instances")
        #expect(try await browser.findAll("#instance-\(instanceID)").isEmpty)
        try await browser.find("#show-removed").click()
        try await waitForPath("/instances?removed=1")
        #expect(try await !browser.findAll("#instance-\(instanceID)").isEmpty)
        try await browser.go(base + "/devices/\(device)")
        #expect(try await browser.findAll("#instance-\(instanceID)").isEmpty)
        #expect(try await !browser.findAll("#show-removed").isEmpty)

        // A viewer sees no Edit (nor Deploy) and cannot open the edit page.
        try await browser.find("form.logout button").click()
        try await waitForPath("/login")
        try await signIn("vera")
        try await browser.go(base + "/instances?removed=1")
        #expect(try await !visible("#deploy-new"))
        try await browser.go(base + "/instances/\(instanceID)/edit")
        #expect(try await browser.find("main").text().contains("operator or admin role"))
    }
}
