// The operator's CLI (`vantage login|devices|cameras|packages|instances|…`) as an operator runs it: the built
// `vantage` binary in its own process, against a real `vantage server` process on a free port with a fresh data
// folder. Plus fast tests of the client library's pure parts (tables, settings precedence, parameter values).
import Foundation
import Logging
import Testing
import VantageAPI
import VantageAgent
import VantageClient
import VantageCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("CLI", .timeLimit(.minutes(5)))
struct CLITests {
    // MARK: Against a running server

    @Test("login saves the server and token (0600); later commands need no flags; logout forgets them")
    func loginThenCommandsWithoutFlags() async throws {
        let server = try await CLIServer.start()
        defer { server.stop() }
        let cli = try CLI()

        let login = try await cli.run(["login", "--server", server.url, "--token", server.adminToken])
        #expect(login.status == 0, "\(login)")
        #expect(login.stdout.contains("signed in to \(server.url) as token:admin (admin)"), "\(login)")
        #expect(!login.stdout.contains(server.adminToken), "login must not print the token")
        let attributes = try FileManager.default.attributesOfItem(atPath: cli.configFile.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let saved = try JSONDecoder().decode(ClientSettings.self, from: Data(contentsOf: cli.configFile))
        #expect(saved == ClientSettings(server: server.url, token: server.adminToken))

        let empty = try await cli.run(["devices", "list"])
        #expect(empty.status == 0, "\(empty)")
        #expect(empty.stdout.contains("no devices (create one with vantage devices create NAME)"))

        let create = try await cli.run(["devices", "create", "lobby-box", "--description", "Lobby"])
        #expect(create.status == 0, "\(create)")
        #expect(create.stdout.contains("shown only this once"))
        let deviceID = try #require(create.firstMatch(#"dev_[a-z0-9]+"#), "\(create)")
        #expect(create.firstMatch(#"vd_[A-Za-z0-9_-]+"#) != nil, "the provisioning token is printed: \(create)")

        let table = try await cli.run(["devices", "list"])
        #expect(table.status == 0, "\(table)")
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(
            lines.first?.split(separator: " ", omittingEmptySubsequences: true).prefix(4) == [
                "ID", "NAME", "STATUS", "CONNECTION",
            ])
        #expect(lines.first?.contains("LAST HEARTBEAT") == true)
        let row = try #require(lines.first { $0.hasPrefix(deviceID) }, "\(table)")
        #expect(row.contains("lobby-box") && row.contains("AWAITING_PROVISIONING") && row.contains("never"))
        // Columns line up: each header starts where its values start.
        let nameColumn = try #require(lines[0].range(of: "NAME")).lowerBound.utf16Offset(in: lines[0])
        #expect(row.range(of: "lobby-box")?.lowerBound.utf16Offset(in: row) == nameColumn)

        let listed = try await cli.json(["devices", "list", "--json"]) as? [[String: Any]]
        #expect(listed?.count == 1)
        #expect(listed?.first?["id"] as? String == deviceID)
        #expect(listed?.first?["name"] as? String == "lobby-box")

        let shown = try await cli.json(["devices", "show", deviceID, "--json"]) as? [String: Any]
        #expect(shown?["description"] as? String == "Lobby")
        #expect(
            shown?["connectionStatus"] as? String == "OFFLINE"
                || shown?["connectionStatus"] as? String == "NOT_AVAILABLE")

        let show = try await cli.run(["devices", "show", deviceID])
        #expect(show.status == 0 && show.stdout.contains("Name:") && show.stdout.contains("lobby-box"), "\(show)")

        let delete = try await cli.run(["devices", "delete", deviceID])
        #expect(delete.status == 0 && delete.stdout.contains("deleted device \(deviceID)"), "\(delete)")
        let gone = try await cli.run(["devices", "show", deviceID])
        #expect(gone.status != 0)
        #expect(gone.stderr.contains("no device \(deviceID)"), "\(gone)")

        let logout = try await cli.run(["logout"])
        #expect(logout.status == 0 && !FileManager.default.fileExists(atPath: cli.configFile.path), "\(logout)")
        let noServer = try await cli.run(["devices", "list"])
        #expect(noServer.status != 0)
        #expect(
            noServer.stderr.contains("no server given: run vantage login --server URL --token TOKEN"), "\(noServer)")
    }

    @Test("push a package, register a camera with a password, deploy an instance with bindings and a parameter")
    func packagesCamerasAndInstances() async throws {
        let server = try await CLIServer.start()
        defer { server.stop() }
        // Flags here, no login: --server and --token on every command.
        let cli = try CLI(flags: ["--server", server.url, "--token", server.adminToken])

        let push = try await cli.run(
            [
                "packages", "push", SourceTree.peopleCounter.path, "--package",
                "people-counter", "--version", "1.0",
            ])
        #expect(push.status == 0, "\(push)")
        #expect(push.stdout.contains("registered people-counter 1.0"), "\(push)")
        #expect(push.stdout.contains("camera_node") && push.stdout.contains("min_score"), "\(push)")
        let packageID = try #require(push.firstMatch(#"pkg_[a-z0-9]+"#))

        let packages = try await cli.run(["packages", "list"])
        let packageRow = packages.stdout.split(separator: "\n").first { $0.hasPrefix(packageID) }
        #expect(packageRow?.contains("people-counter") == true && packageRow?.contains("1.0") == true, "\(packages)")
        let listedPackages = try await cli.json(["packages", "list"], json: true) as? [[String: Any]]
        #expect(listedPackages?.first?["latestVersion"] as? String == "1.0")

        // The same push again: the package exists, the version does not take a second time.
        let again = try await cli.run(
            [
                "packages", "push", SourceTree.peopleCounter.path, "--package",
                packageID, "--version", "1.0",
            ])
        #expect(again.status != 0 && again.stderr.contains("1.0"), "\(again)")

        let device = try await cli.run(["devices", "create", "edge-1"])
        let deviceID = try #require(device.firstMatch(#"dev_[a-z0-9]+"#))

        let password = "s3cret-Pa55-\(UUID().uuidString.prefix(8))"
        let camera = try await cli.run(
            [
                "cameras", "create", "lobby", "--url", "rtsp://10.0.0.20:554/stream1", "--username", "viewer",
                "--password-stdin", "--device", deviceID,
            ], stdin: password + "\n")
        #expect(camera.status == 0, "\(camera)")
        let cameraID = try #require(camera.firstMatch(#"cam_[a-z0-9]+"#))
        let cameraShow = try await cli.run(["cameras", "show", cameraID, "--json"])
        let cameraJSON = try JSONSerialization.jsonObject(with: Data(cameraShow.stdout.utf8)) as? [String: Any]
        #expect(cameraJSON?["hasCredentials"] as? Bool == true)
        #expect(cameraJSON?["url"] as? String == "rtsp://10.0.0.20:554/stream1")
        let cameraList = try await cli.run(["cameras", "list"])
        for output in [camera, cameraShow, cameraList] {
            #expect(
                !output.stdout.contains(password) && !output.stderr.contains(password), "password leaked: \(output)")
        }

        let create = try await cli.run(
            [
                "instances", "create", "--name", "lobby-count", "--package", packageID, "--version", "1.0", "--device",
                deviceID, "--camera", "camera_node=\(cameraID)", "--param", "min_score=0.7",
            ])
        #expect(create.status == 0, "\(create)")
        let instanceID = try #require(create.firstMatch(#"ins_[a-z0-9]+"#), "\(create)")

        let instances = try await cli.run(["instances", "list"])
        let instanceRow = instances.stdout.split(separator: "\n").first { $0.hasPrefix(instanceID) }
        #expect(instanceRow?.contains("lobby-count") == true && instanceRow?.contains(deviceID) == true, "\(instances)")
        let shown = try await cli.json(["instances", "show", instanceID], json: true) as? [String: Any]
        // Sent as a JSON number (a string would be refused for a float32); the server keeps it as a float32.
        let minScore = try #require((shown?["parameters"] as? [String: Any])?["min_score"] as? Double, "\(create)")
        #expect(abs(minScore - 0.7) < 1e-6)
        #expect((shown?["cameras"] as? [String: Any])?["camera_node"] as? String == cameraID)
        let onDevice = try await cli.json(["instances", "list", "--device", deviceID], json: true) as? [[String: Any]]
        #expect(onDevice?.count == 1)

        let badParameter = try await cli.run(
            [
                "instances", "create", "--name", "bad", "--package", packageID, "--version", "1.0", "--device",
                deviceID,
                "--camera", "camera_node=\(cameraID)", "--param", "model_name=other",
            ])
        #expect(badParameter.status != 0 && badParameter.stderr.contains("model_name"), "\(badParameter)")

        let remove = try await cli.run(["instances", "delete", instanceID])
        #expect(remove.status == 0 && remove.stdout.contains("REMOVAL_PENDING"), "\(remove)")
    }

    @Test("cameras create --detect-url: the sub-stream is shown without its password; update changes and removes it")
    func cameraSubStream() async throws {
        let server = try await CLIServer.start()
        defer { server.stop() }
        let cli = try CLI(flags: ["--server", server.url, "--token", server.adminToken])
        let password = "s3cret-\(UUID().uuidString.prefix(8))"
        let created = try await cli.run([
            "cameras", "create", "gate", "--url", "rtsp://admin:\(password)@10.0.0.30/Streaming/101",
            "--detect-url", "rtsp://admin:\(password)@10.0.0.30/Streaming/102",
        ])
        #expect(created.status == 0, "\(created)")
        #expect(created.stdout.contains("sub-stream rtsp://10.0.0.30/Streaming/102"), "\(created)")
        let id = try #require(created.firstMatch(#"cam_[a-z0-9]+"#))
        let shown = try await cli.run(["cameras", "show", id])
        #expect(
            shown.stdout.contains("Sub-stream") && shown.stdout.contains("rtsp://10.0.0.30/Streaming/102"), "\(shown)")
        let listed = try await cli.run(["cameras", "list"])
        #expect(listed.stdout.contains("SUB-STREAM") && listed.stdout.contains("Streaming/102"), "\(listed)")
        let changed = try await cli.json(
            ["cameras", "update", id, "--detect-url", "rtsp://10.0.0.30/Streaming/103"], json: true)
        #expect((changed as? [String: Any])?["detectUrl"] as? String == "rtsp://10.0.0.30/Streaming/103")
        let removed = try await cli.run(["cameras", "update", id, "--no-detect-url"])
        #expect(removed.status == 0 && !removed.stdout.contains("sub-stream"), "\(removed)")
        let json = try await cli.json(["cameras", "show", id], json: true) as? [String: Any]
        #expect(json?["detectUrl"] == nil && json?["url"] as? String == "rtsp://10.0.0.30/Streaming/101")
        let both = try await cli.run(["cameras", "update", id, "--detect-url", "rtsp://10.0.0.30/x", "--no-detect-url"])
        #expect(both.status != 0 && both.stderr.contains("not both"), "\(both)")
        let refused = try await cli.run(["cameras", "update", id, "--detect-url", "ftp://10.0.0.30/x"])
        #expect(refused.status != 0 && refused.stderr.contains("detectUrl"), "\(refused)")
        for output in [created, shown, listed, removed, refused] {
            #expect(!(output.stdout + output.stderr).contains(password), "password leaked: \(output)")
        }
    }

    @Test("an instance's outputs document from a file: shown, replaced, removed; a secret written out is refused")
    func instanceOutputs() async throws {
        let server = try await CLIServer.start()
        defer { server.stop() }
        let cli = try CLI(flags: ["--server", server.url, "--token", server.adminToken])
        let push = try await cli.run(
            ["packages", "push", SourceTree.peopleCounter.path, "--package", "people-counter", "--version", "1.0"])
        let packageID = try #require(push.firstMatch(#"pkg_[a-z0-9]+"#), "\(push)")
        let deviceID = try #require(try await cli.run(["devices", "create", "edge-1"]).firstMatch(#"dev_[a-z0-9]+"#))
        let cameraID = try #require(
            try await cli.run(["cameras", "create", "dock", "--url", "rtsp://10.0.0.21/live"]).firstMatch(
                #"cam_[a-z0-9]+"#))
        let sinks = cli.folder.appending(path: "sinks.json")
        try #"""
        {"sinks": {"quality": {"type": "webhook", "url": "https://hooks.example.com/v", "secret": "${HOOK_SECRET}"},
                   "alerts": {"type": "mqtt", "url": "mqtt://broker:1883", "qos": 1}},
         "rules": [{"when": {"type": "zone.enter"}, "send": "quality"}]}
        """#.write(to: sinks, atomically: true, encoding: .utf8)

        let create = try await cli.run(
            [
                "instances", "create", "--name", "dock-watch", "--package", packageID, "--version", "1.0", "--device",
                deviceID, "--camera", "camera_node=\(cameraID)", "--outputs", sinks.path,
            ])
        let instanceID = try #require(create.firstMatch(#"ins_[a-z0-9]+"#), "\(create)")
        let shown = try await cli.run(["instances", "show", instanceID])
        #expect(shown.stdout.contains("sinks: alerts (mqtt), quality (webhook)"), "\(shown)")
        #expect(shown.stdout.contains("1 rule"), "\(shown)")
        let shownJSON = try await cli.json(["instances", "show", instanceID], json: true) as? [String: Any]
        let outputs = try #require(shownJSON?["outputs"] as? [String: Any], "\(shown)")
        let quality = (outputs["sinks"] as? [String: Any])?["quality"] as? [String: Any]
        #expect(quality?["secret"] as? String == "${HOOK_SECRET}", "the document as stored: \(outputs)")

        try #"{"sinks": {"alerts": {"type": "mqtt", "url": "mqtt://broker:1883", "qos": 2}}}"#.write(
            to: sinks, atomically: true, encoding: .utf8)
        let update = try await cli.run(["instances", "update", instanceID, "--outputs", sinks.path])
        #expect(update.status == 0 && update.stdout.contains("DEPLOYMENT_PENDING"), "\(update)")
        let replaced = try await cli.run(["instances", "show", instanceID])
        #expect(replaced.stdout.contains("sinks: alerts (mqtt)") && !replaced.stdout.contains("quality"), "\(replaced)")

        // A secret written out is refused, naming where, and never echoed.
        try #"{"sinks": {"alerts": {"type": "mqtt", "url": "mqtt://b:1883", "password": "hunter2-pw"}}}"#.write(
            to: sinks, atomically: true, encoding: .utf8)
        let leaky = try await cli.run(["instances", "update", instanceID, "--outputs", sinks.path])
        #expect(leaky.status != 0 && leaky.stderr.contains("outputs.sinks.alerts.password"), "\(leaky)")
        #expect(!leaky.stderr.contains("hunter2") && !leaky.stdout.contains("hunter2"), "\(leaky)")
        let notJSON = try await cli.run([
            "instances", "update", instanceID, "--outputs", cli.folder.path + "/none.json",
        ])
        #expect(notJSON.status != 0 && notJSON.stderr.contains("none.json"), "\(notJSON)")

        for removal in [["--no-outputs"], ["--outputs", ""]] {
            try #"{"sinks": {"alerts": {"type": "mqtt", "url": "mqtt://broker:1883"}}}"#.write(
                to: sinks, atomically: true, encoding: .utf8)
            _ = try await cli.run(["instances", "update", instanceID, "--outputs", sinks.path])
            let removed = try await cli.run(["instances", "update", instanceID] + removal)
            #expect(removed.status == 0, "\(removed)")
            let after = try await cli.json(["instances", "show", instanceID], json: true) as? [String: Any]
            #expect(after?["outputs"] == nil, "\(removal) removes the document: \(String(describing: after))")
        }
    }

    @Test("errors say what is wrong: bad token (401), closed port, missing resource, viewer role (403)")
    func errorsSayWhatIsWrong() async throws {
        let server = try await CLIServer.start()
        defer { server.stop() }

        let badToken = "vt_" + String(repeating: "x", count: 52)
        let unauthorized = try await CLI(flags: ["--server", server.url, "--token", badToken]).run(["devices", "list"])
        #expect(unauthorized.status != 0)
        #expect(unauthorized.stderr.contains("401") && unauthorized.stderr.contains("vantage login"), "\(unauthorized)")
        #expect(!unauthorized.stderr.contains(badToken) && !unauthorized.stdout.contains(badToken))

        let closed = "http://127.0.0.1:\(try closedPort())"
        let unreachable = try await CLI(flags: ["--server", closed, "--token", server.adminToken]).run(
            ["devices", "list"])
        #expect(unreachable.status != 0)
        #expect(
            unreachable.stderr.contains(
                "cannot reach the Vantage server at \(closed): is `vantage server` running there?"),
            "\(unreachable)")
        #expect(!unreachable.stderr.contains(server.adminToken))

        let admin = try CLI(flags: ["--server", server.url, "--token", server.adminToken])
        let missing = try await admin.run(["devices", "show", "dev_doesnotexist"])
        #expect(missing.status != 0 && missing.stderr.contains("no device dev_doesnotexist"), "\(missing)")

        // A viewer token, made through the API with the admin token.
        let client = ServerClient(baseURL: URL(string: server.url)!, token: server.adminToken)
        let viewer = try await client.createToken(NewToken(name: "v", role: .viewer))
        let asViewer = try CLI(flags: ["--server", server.url, "--token", viewer.secret])
        let read = try await asViewer.run(["devices", "list"])
        #expect(read.status == 0, "a viewer reads: \(read)")
        let forbidden = try await asViewer.run(["devices", "create", "nope"])
        #expect(forbidden.status != 0)
        #expect(forbidden.stderr.contains("403") && forbidden.stderr.contains("operator"), "\(forbidden)")
        #expect(!forbidden.stderr.contains(viewer.secret))

        // The library reports the same kinds.
        await #expect(throws: ClientError.self) { try await client.device("dev_doesnotexist") }
        do {
            _ = try await ServerClient(baseURL: URL(string: server.url)!, token: viewer.secret)
                .createDevice(NewDevice(name: "x"))
            Issue.record("a viewer created a device")
        } catch let error as ClientError {
            #expect(error.code == .forbidden && error.status == 403)
        }

        let noToken = try await CLI(flags: ["--server", server.url]).run(["devices", "list"])
        #expect(noToken.status != 0 && noToken.stderr.contains("no token given"), "\(noToken)")
    }

    @Test("events list pages with a cursor and prints the next page's command; events show prints the data")
    func eventsPages() async throws {
        let server = try await CLIServer.start()
        defer { server.stop() }
        let cli = try CLI(flags: ["--server", server.url, "--token", server.adminToken])
        let created = try await cli.run(["devices", "create", "edge-1"])
        let deviceID = try #require(created.firstMatch(#"dev_[a-z0-9]+"#))
        let deviceToken = try #require(created.firstMatch(#"vd_[A-Za-z0-9_-]+"#))
        let caHash = try #require(created.firstMatch(#"sha256:[0-9a-f]{64}"#), "the CA fingerprint is printed")
        #expect(
            created.stdout.contains("vantage agent enroll --server https://"),
            "the enrollment command is printed: \(created)")

        // The device enrolls over the wire and sends three events with its certificate, as `vantage agent` does.
        let identity = try await Enroller.enroll(
            server: try await server.server.deviceEndpoint(), token: deviceToken, trust: .fingerprint(caHash),
            folder: server.folder.appending(path: "agent-identity"), logger: Logger(label: "test"))
        #expect(identity.deviceID == deviceID)
        let link = try DeviceLink(identity: identity)
        let now = Date()
        let sent = try await link.send(
            events: (1...3).map {
                NewEvent(
                    type: "people_count", time: now.addingTimeInterval(Double($0)),
                    data: .object(["people": .number(Double($0))]))
            })
        await link.shutdown()
        #expect(sent.count == 3)

        let first = try await cli.run(["events", "list", "--device", deviceID, "--limit", "2"])
        #expect(first.status == 0, "\(first)")
        #expect(first.stdout.contains("people_count") && first.stdout.contains(#"{"people":3}"#), "\(first)")
        let hint = try #require(
            first.stdout.split(separator: "\n").first { $0.hasPrefix("more: vantage events list") }, "\(first)")
        let cursor = try #require(hint.split(separator: " ").last.map(String.init))
        #expect(hint.contains("--device \(deviceID)") && hint.contains("--limit 2"))

        let second =
            try await cli.json(
                ["events", "list", "--device", deviceID, "--limit", "2", "--cursor", cursor], json: true)
            as? [String: Any]
        let items = try #require(second?["items"] as? [[String: Any]])
        #expect(items.count == 1 && second?["nextCursor"] == nil)
        let eventID = try #require(items.first?["id"] as? String)
        #expect((items.first?["data"] as? [String: Any])?["people"] as? Int == 1)

        let show = try await cli.run(["events", "show", eventID])
        #expect(
            show.status == 0 && show.stdout.contains("people_count") && show.stdout.contains(#""people" : 1"#),
            "\(show)")
        let missing = try await cli.run(["events", "show", "evt_nothere"])
        #expect(missing.status != 0 && missing.stderr.contains("no event evt_nothere"), "\(missing)")
    }

    @Test("devices logs --level and --grep filter the lines; --follow prints a line that arrives later")
    func logsFilterAndFollow() async throws {
        let server = try await CLIServer.start()
        defer { server.stop() }
        let cli = try CLI(flags: ["--server", server.url, "--token", server.adminToken])
        let client = ServerClient(baseURL: URL(string: server.url)!, token: server.adminToken)
        let created = try await client.createDevice(NewDevice(name: "dock-box"))
        let identityFolder = cli.folder.appending(path: "device")
        let identity = try await Enroller.enroll(
            server: try await server.server.deviceEndpoint(), token: created.provisioningToken,
            trust: .fingerprint(created.caFingerprint), folder: identityFolder, logger: Logger(label: "test"))
        let link = try DeviceLink(identity: identity)
        do {
            try await shipAndFollow(link: link, cli: cli, id: created.device.id)
        } catch {
            await link.shutdown()
            throw error
        }
        await link.shutdown()
    }

    private func shipAndFollow(link: DeviceLink, cli: CLI, id: String) async throws {
        try await link.send(logs: [
            LogLine(time: Date(), level: "info", message: "connected to the server"),
            LogLine(time: Date(), level: "warning", message: "Camera dock stalled"),
            LogLine(time: Date(), level: "error", message: "disk almost full"),
        ])

        let warnings = try await cli.run(["devices", "logs", id, "--level", "warning"])
        #expect(warnings.status == 0, "\(warnings)")
        #expect(warnings.stdout.contains("WARNING Camera dock stalled") && warnings.stdout.contains("ERROR disk"))
        #expect(!warnings.stdout.contains("connected to the server"), "info lines are below --level warning")
        let found = try await cli.run(["devices", "logs", id, "--grep", "CAMERA"])
        #expect(found.status == 0 && found.stdout.split(separator: "\n").count == 1, "\(found)")
        #expect(found.stdout.contains("Camera dock stalled"), "\(found)")
        let wrong = try await cli.run(["devices", "logs", id, "--level", "loud"])
        #expect(wrong.status != 0 && wrong.stderr.contains("--level must be one of"), "\(wrong)")

        // --follow: a line shipped after the command started is printed within a few seconds.
        let output = cli.folder.appending(path: "follow.txt")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let process = Process()
        process.executableURL = try ServerProcess.binary()
        process.arguments = ["devices", "logs", id, "--follow", "--grep", "dock"] + cli.flags
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VANTAGE_") }
            .merging(["VANTAGE_CONFIG": cli.configFile.path]) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        func printed() -> String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }
        try await waitFor("the first lines", timeout: .seconds(20)) { printed().contains("Camera dock stalled") }
        try await link.send(logs: [LogLine(time: Date(), level: "notice", message: "dock camera back")])
        try await waitFor("the new line", timeout: .seconds(20)) { printed().contains("NOTICE dock camera back") }
        #expect(process.isRunning, "--follow keeps running until Ctrl-C")
        #expect(printed().components(separatedBy: "Camera dock stalled").count == 2, "no line printed twice")
    }

    private func waitFor(_ what: String, timeout: Duration, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CLITestError("\(what) did not come within \(timeout)") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    // MARK: The client library's pure parts

    @Test("flags win over the environment, which wins over the saved file; a saved token goes only to its server")
    func settingsPrecedence() throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appending(path: "cli.json")
        try ClientSettings(server: "http://saved:8090", token: "vt_saved").save(to: file)
        let environment = ["VANTAGE_CONFIG": file.path]

        let saved = try ClientSettings.resolve(server: nil, token: nil, environment: environment)
        #expect(saved.url.absoluteString == "http://saved:8090" && saved.token == "vt_saved")

        var withEnvironment = environment
        withEnvironment["VANTAGE_TOKEN"] = "vt_env"
        #expect(try ClientSettings.resolve(server: nil, token: nil, environment: withEnvironment).token == "vt_env")
        #expect(
            try ClientSettings.resolve(server: nil, token: "vt_flag", environment: withEnvironment).token == "vt_flag")

        // Another server: the saved token is not sent there.
        #expect(throws: ClientError.self) {
            try ClientSettings.resolve(server: "http://other:8090", token: nil, environment: environment)
        }
        #expect(
            try ClientSettings.resolve(server: "saved:8090/", token: nil, environment: environment).token == "vt_saved")

        #expect(ClientSettings.file(environment: ["XDG_CONFIG_HOME": "/x"]).path == "/x/vantage/cli.json")
        #expect(ClientSettings.file(environment: ["HOME": "/home/op"]).path == "/home/op/.config/vantage/cli.json")
    }

    @Test("parameter values are sent as numbers and booleans when they read as such")
    func parameterValues() {
        #expect(CommandLineValues.parameter("0.7") == .number(0.7))
        #expect(CommandLineValues.parameter("20") == .number(20))
        #expect(CommandLineValues.parameter("true") == .bool(true))
        #expect(CommandLineValues.parameter("lobby") == .string("lobby"))
        #expect(CommandLineValues.parameter("\"5\"") == .string("5"))
        #expect(CommandLineValues.pair("camera_node=cam_1")?.key == "camera_node")
        #expect(CommandLineValues.pair("camera_node=cam_1")?.value == "cam_1")
        #expect(CommandLineValues.pair("url=rtsp://h/a?x=1")?.value == "rtsp://h/a?x=1")
        #expect(CommandLineValues.pair("novalue=") == nil)
        let now = Date(timeIntervalSince1970: 1_000_000)
        #expect(CommandLineValues.time("15m", now: now) == now.addingTimeInterval(-900))
        #expect(CommandLineValues.time("2026-05-31T12:00:00Z") == APIJSON.parseTime("2026-05-31T12:00:00.000Z"))
        #expect(CommandLineValues.time("yesterday") == nil)
    }

    @Test("tables align their columns and cut long cells")
    func tables() {
        let table = TextTable(columns: ["ID", "NAME", "X"], rows: [["a", "long name", "1"], ["bbbb", "n", ""]])
        #expect(table.render() == "ID    NAME       X\na     long name  1\nbbbb  n")
        let long = TextTable(columns: ["A"], rows: [[String(repeating: "z", count: 100)]]).render()
        #expect(long.split(separator: "\n")[1].count == TextTable.maxCellWidth && long.hasSuffix("…"))
        let now = Date(timeIntervalSince1970: 1_000_000)
        #expect(RelativeTime.describe(now.addingTimeInterval(-300), now: now) == "5m ago")
        #expect(RelativeTime.describe(nil, now: now) == "never")
    }
}

// MARK: - Support

/// The `vantage` binary, run with its own settings file (never the user's) and no VANTAGE_* from the environment.
private final class CLI {
    let folder: URL
    let flags: [String]
    var configFile: URL { folder.appending(path: "config/vantage/cli.json") }

    init(flags: [String] = []) throws {
        folder = FileManager.default.temporaryDirectory.appending(path: "vantage-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        self.flags = flags
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    /// Runs `vantage ARGUMENTS… FLAGS…` with `stdin` as its standard input (empty when nil).
    func run(_ arguments: [String], stdin: String? = nil) async throws -> CLIResult {
        let result = try await TestProcess.runSeparately(
            [try ServerProcess.binary().path] + arguments + flags,
            environment: [
                "VANTAGE_SERVER": nil, "VANTAGE_TOKEN": nil, "XDG_CONFIG_HOME": nil, "VANTAGE_CONFIG": configFile.path,
            ], stdin: stdin ?? "")
        return CLIResult(arguments: arguments, status: result.status, stdout: result.stdout, stderr: result.stderr)
    }

    /// Runs a command with `--json` (when `json`; or as given) and parses its standard output.
    func json(_ arguments: [String], json: Bool = false) async throws -> Any {
        let result = try await run(arguments + (json ? ["--json"] : []))
        #expect(result.status == 0, "\(result)")
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    }
}

private struct CLIResult: CustomStringConvertible {
    let arguments: [String]
    let status: Int32
    let stdout: String
    let stderr: String

    /// The first match of a regular expression in standard output.
    func firstMatch(_ pattern: String) -> String? {
        stdout.range(of: pattern, options: .regularExpression).map { String(stdout[$0]) }
    }

    var description: String {
        "vantage \(arguments.joined(separator: " ")) → exit \(status)\nstdout:\n\(stdout)\nstderr:\n\(stderr)"
    }
}

/// `vantage server` on a free port with a fresh SQLite data folder; `stop()` ends it (call it in a `defer`).
private final class CLIServer: Sendable {
    let server: ServerProcess
    let folder: URL
    /// `http://127.0.0.1:PORT`, as a user types it.
    let url: String
    let adminToken: String

    private init(server: ServerProcess, folder: URL, url: String, adminToken: String) {
        self.server = server
        self.folder = folder
        self.url = url
        self.adminToken = adminToken
    }

    static func start() async throws -> CLIServer {
        let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-cli-server-\(UUID().uuidString)")
        let server = try ServerProcess(
            try ServerProcess.binary(),
            [
                "server", "--listen", "127.0.0.1:0", "--device-listen", "127.0.0.1:0", "--data",
                folder.appending(path: "data").path, "--log-level",
                "warning",
            ],
            name: "cli")
        let url = try await server.waitUntilListening()
        guard let token = server.adminToken else {
            server.stop()
            throw CLITestError("vantage server printed no first-start token:\n\(server.output)")
        }
        return CLIServer(server: server, folder: folder, url: String(url.absoluteString.dropLast()), adminToken: token)
    }

    func stop() {
        server.stop()
        try? FileManager.default.removeItem(at: folder)
    }
}

private struct CLITestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
