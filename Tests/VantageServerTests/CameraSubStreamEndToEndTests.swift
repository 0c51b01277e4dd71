// A registered camera with a sub-stream, deployed (issue 19, "Sub-streams", fleet side): a real `vantage server`, a
// real `vantage agent` and a real RTSP camera that needs a password (`scripts/rtsp-camera --credentials-file`) and
// serves the sample video at 1080p (/main) and 640x360 (/sub). The operator gives the sub-stream with
// `vantage cameras create --detect-url` and no credentials in it: the device opens both streams with the camera's
// password (a stream without it gets 401 and no frames), and a rotated password reaches both without a restart.
import Foundation
import Testing
import VantageAPI
import VantageClient
import VantageCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite(
    "camera sub-stream on a device", .serialized,
    .enabled(
        if: FileManager.default.fileExists(atPath: SourceTree.root.appending(path: ".deps/media/vtest-360p.mp4").path),
        "needs scripts/setup (the 640x360 sample)"))
struct CameraSubStreamEndToEndTests {
    @Test("the device reads the main stream and decodes the sub-stream, both with the camera's password")
    func deployedWithSubStream() async throws {
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        let (device, agent) = try await fleet.enrollAgent("edge-substream")
        defer { agent.stop() }
        let password = "Sub-\(UUID().uuidString.prefix(8))-pw"
        let credentials = fleet.folder.appending(path: "gate.credentials")
        try Data("viewer:\(password)\n".utf8).write(to: credentials)
        let media = SourceTree.root.appending(path: ".deps/media")
        let camera = try ServerProcess(
            SourceTree.root.appending(path: "scripts/rtsp-camera"),
            [
                "--credentials-file", credentials.path, "--stream",
                "/main=" + media.appending(path: "vtest-1080p.mp4").path, "--stream",
                "/sub=" + media.appending(path: "vtest-360p.mp4").path,
            ], name: "camera gate")
        defer { camera.stop() }
        let port = try await Self.port(of: camera)
        var connections: Int { camera.output.components(separatedBy: "client connected").count - 1 }

        let pushed = try await fleet.client.pushPackage(
            folder: try SourceTree.builtPeopleCounter, package: "people-counter", version: "1.0")
        let model = try await fleet.client.createModel(NewModel(name: "person-detector"))
        _ = try await fleet.client.uploadModelVersion(
            model.id, file: SourceTree.root.appending(path: ".deps/models/ssdlite/frozen_inference_graph.pb"))
        // As an operator does it: the CLI, the password on standard input, no credentials in either URL.
        let adminToken = try #require(fleet.server.adminToken)
        let create = try await TestProcess.runSeparately(
            [
                try ServerProcess.binary().path, "cameras", "create", "gate", "--url",
                "rtsp://127.0.0.1:\(port)/main", "--detect-url", "rtsp://127.0.0.1:\(port)/sub", "--username", "viewer",
                "--password-stdin", "--device", device, "--server", "http://127.0.0.1:\(fleet.apiPort)", "--token",
                adminToken,
            ], environment: ["VANTAGE_SERVER": nil, "VANTAGE_TOKEN": nil, "VANTAGE_CONFIG": "/nonexistent"],
            stdin: password + "\n")
        #expect(create.status == 0, "\(create)")
        let gate = try #require(try await fleet.client.listCameras().first { $0.name == "gate" })
        #expect(gate.detectUrl == "rtsp://127.0.0.1:\(port)/sub")
        let instance = try await fleet.client.createInstance(
            NewInstance(
                name: "gate-counter", packageId: pushed.package.id, packageVersion: "1.0", deviceId: device,
                cameras: ["camera_node": gate.id], models: ["model_node": model.id])
        ).id
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)
        let metricsURL = "http://127.0.0.1:\(fleet.metricsPort("edge-substream"))/metrics"
        // Frames come from the sub-stream, which only the camera's password opens.
        try await fleet.waitUntil("the camera delivers frames", timeout: .seconds(60)) {
            let text = try await fleet.fetch(metricsURL)
            return (CameraPasswordRotationTests.figure(text, "vantage_agent_camera_fps", camera: gate.id) ?? 0) > 0
        }
        // Both streams are open, each once: the main one (read for clips) and the sub-stream; neither was refused
        // and retried.
        try await Task.sleep(for: .seconds(5))
        #expect(connections == 2, "the device should hold the main stream and the sub-stream:\n\(camera.output)")
        let metrics = try await fleet.fetch(metricsURL)
        #expect(CameraPasswordRotationTests.figure(metrics, "vantage_agent_camera_reconnects", camera: gate.id) == 0)
        // The main stream's own figures reach the heartbeat too (and the console's health charts).
        #expect(
            CameraPasswordRotationTests.figure(metrics, "vantage_agent_camera_main_reconnects", camera: gate.id) == 0,
            "\(metrics)")
        #expect(
            CameraPasswordRotationTests.figure(metrics, "vantage_agent_camera_snapshot_fallbacks", camera: gate.id) == 0
        )
        let workers = AgentEndToEndTests.runtimeWorkers(of: agent.processIdentifier)
        #expect(workers.count == 1, "\(workers)")

        // The camera's password changes (it closes its sessions) and the operator gives the new one: both streams
        // reconnect with it, and nothing restarts.
        let newPassword = "New-\(UUID().uuidString.prefix(8))-pw"
        try Data("viewer:\(newPassword)\n".utf8).write(to: credentials)
        let before = camera.output.components(separatedBy: "CREDENTIALS").count
        kill(camera.processIdentifier, SIGHUP)
        try await fleet.waitUntil("the camera takes its new password", timeout: .seconds(20)) {
            camera.output.components(separatedBy: "CREDENTIALS").count > before
        }
        let rotatedAt = ContinuousClock.now
        let update = try await TestProcess.runSeparately(
            [
                try ServerProcess.binary().path, "cameras", "update", gate.id, "--password-stdin", "--server",
                "http://127.0.0.1:\(fleet.apiPort)", "--token", adminToken,
            ], environment: ["VANTAGE_SERVER": nil, "VANTAGE_TOKEN": nil, "VANTAGE_CONFIG": "/nonexistent"],
            stdin: newPassword + "\n")
        #expect(update.status == 0, "\(update)")
        try await fleet.waitUntil("frames again from the sub-stream", timeout: .seconds(30)) {
            let text = try await fleet.fetch(metricsURL)
            return ContinuousClock.now - rotatedAt > .seconds(3)
                && (CameraPasswordRotationTests.figure(text, "vantage_agent_camera_reconnects", camera: gate.id) ?? 0)
                    > 0
                && (CameraPasswordRotationTests.figure(text, "vantage_agent_camera_fps", camera: gate.id) ?? 0) > 0
        }
        // The main stream reconnected with the new password too: a stream refused (401) would be tried again
        // within 5 s, each try a new connection.
        try await Task.sleep(for: .seconds(6))
        let settled = connections
        try await Task.sleep(for: .seconds(6))
        #expect(settled >= 4 && connections == settled, "a stream keeps reconnecting:\n\(camera.output.suffix(3000))")
        let rotated = try await fleet.fetch(metricsURL)
        #expect(
            (CameraPasswordRotationTests.figure(rotated, "vantage_agent_camera_main_reconnects", camera: gate.id) ?? 0)
                > 0, "the main stream's reconnect is not in the heartbeat")
        #expect(AgentEndToEndTests.runtimeWorkers(of: agent.processIdentifier) == workers, "the worker restarted")
        let state = try await fleet.client.instance(instance)
        #expect(state.status == .deploymentSucceeded && state.healthStatus == .running, "\(state)")
        #expect(state.statusDescription.contains("new credentials (not restarted)"), "\(state.statusDescription)")

        try await Task.sleep(for: .seconds(2))  // the agent ships its log lines every second
        var answers = [agent.output, fleet.server.output, create.stdout, create.stderr]
        answers.append(String(describing: try await fleet.client.camera(gate.id)))
        answers.append(String(describing: try await fleet.client.instanceLogs(instance, limit: 1000)))
        for secret in [password, newPassword] {
            #expect(!answers.contains { $0.contains(secret) }, "a camera password leaked")
        }
    }

    static func port(of camera: ServerProcess) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let match = camera.output.firstMatch(of: /READY rtsp:\/\/127\.0\.0\.1:([0-9]+)/) {
                return Int(match.1)!
            }
            guard camera.isRunning, ContinuousClock.now < deadline else {
                throw APITestError("the RTSP camera did not start:\n\(camera.output)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
