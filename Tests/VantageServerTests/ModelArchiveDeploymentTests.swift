// An INT8 model on the fleet (issue 19, "Faster models": "instances may use it"), as an operator does it: a real
// `vantage models optimize` (NNCF from .deps/nncf) quantizes the person detector on the sample video, `vantage models
// upload NAME NAME.int8.xml` sends the IR with its weights and report as one ZIP (the next version), an instance pins
// that version, and a real `vantage agent` unpacks it beside the instance and runs the people counter on it: its
// "model ready" line says INT8 and it counts people. The server's checks of such archives are in ModelArchiveTests.
import Foundation
import Testing
import VantageAPI
import VantageClient
import VantageCore

@Suite(
    "INT8 model version on a device", .serialized,
    .enabled(
        if: FileManager.default.fileExists(atPath: SourceTree.root.appending(path: ".deps/nncf/nncf/__init__.py").path)
            && FileManager.default.fileExists(
                atPath: SourceTree.root.appending(path: ".deps/models/ssdlite/frozen_inference_graph.pb").path),
        "needs scripts/setup (NNCF in .deps/nncf, the person detector)"))
struct ModelArchiveDeploymentTests {
    @Test("an INT8 model uploaded as a version runs on the device when an instance pins it, saying INT8")
    func int8VersionRunsOnTheDevice() async throws {
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        let (device, agent) = try await fleet.enrollAgent("edge-int8")
        defer { agent.stop() }
        let client = fleet.client
        let adminToken = try #require(fleet.server.adminToken)
        let vantage = try ServerProcess.binary().path
        let server = ["--server", "http://127.0.0.1:\(fleet.apiPort)", "--token", adminToken]
        let environment: [String: String?] = [
            "VANTAGE_SERVER": nil, "VANTAGE_TOKEN": nil, "VANTAGE_CONFIG": "/nonexistent",
        ]

        // The original is version 1 of the fleet's model.
        let original = SourceTree.root.appending(path: ".deps/models/ssdlite/frozen_inference_graph.pb")
        let model = try await client.createModel(NewModel(name: "person-detector"))
        _ = try await client.uploadModelVersion(model.id, file: original)

        // The operator quantizes a copy on their own machine, then uploads the IR it wrote.
        let work = fleet.folder.appending(path: "optimize")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let copy = work.appending(path: "frozen_inference_graph.pb")
        try FileManager.default.copyItem(at: original, to: copy)
        let descriptor = SourceTree.root.appending(
            path: "examples/people-counter/packages/123456789012-people_detector-1.0/descriptor.json")
        let optimized = try await TestProcess.runSeparately(
            [
                vantage, "models", "optimize", copy.path, "--calibrate",
                SourceTree.root.appending(path: ".deps/media/vtest.mp4").path, "--descriptor", descriptor.path,
                "--frames", "20", "--held-out", "10", "--bench-seconds", "0.5",
            ], environment: environment, stdin: "")
        #expect(optimized.status == 0, "\(optimized)")
        let int8 = work.appending(path: "frozen_inference_graph.int8.xml")
        let uploaded = try await TestProcess.runSeparately(
            [vantage, "models", "upload", "person-detector", int8.path, "--descriptor", descriptor.path] + server,
            environment: environment, stdin: "")
        #expect(uploaded.status == 0, "\(uploaded)")
        #expect(uploaded.stderr.contains("with its weights and frozen_inference_graph.int8.json"), "\(uploaded)")
        #expect(uploaded.stdout.contains("as version 2 of model person-detector"), "\(uploaded)")
        let versions = try await client.model(model.id).versions
        #expect(versions.map(\.filename) == ["frozen_inference_graph.pb", "frozen_inference_graph.int8.zip"])
        #expect(versions.last?.descriptor != nil, "the descriptor was not stored with the INT8 version")

        // An instance pinned to the INT8 version.
        let pushed = try await client.pushPackage(
            folder: try SourceTree.builtPeopleCounter, package: "people-counter", version: "1.0")
        let lobby = try await client.createCamera(
            NewCamera(
                name: "lobby", url: "file://" + SourceTree.root.appending(path: ".deps/media/vtest.mp4").path,
                deviceId: device))
        let instance = try await client.createInstance(
            NewInstance(
                name: "lobby-counter", packageId: pushed.package.id, packageVersion: "1.0", deviceId: device,
                cameras: ["camera_node": lobby.id], models: ["model_node": "\(model.id)@2"])
        ).id
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)

        // The device runs the INT8 model (unpacked beside the instance) on the camera's frames.
        try await fleet.waitUntil("the model ready line and frames inferred", timeout: .seconds(90)) {
            let logs = try await client.instanceLogs(instance, limit: 1000).map(\.message)
            let inferred = try await DiskFullEndToEndTests.latest("frames.inferred", of: device, client) ?? 0
            return logs.contains { $0.contains("model ready") } && inferred > 20
        }
        let ready = try await client.instanceLogs(instance, limit: 1000).map(\.message).first {
            $0.contains("model ready")
        }
        #expect(ready?.contains("precision=INT8") == true, "model ready line: \(ready ?? "none")")
        let state = try await client.instance(instance)
        #expect(state.status == .deploymentSucceeded && state.healthStatus == .running, "\(state)")
        let folder = fleet.agentFolder("edge-int8")
        let unpacked = (FileManager.default.enumerator(atPath: folder.path)?.allObjects as? [String] ?? [])
            .filter { $0.hasSuffix("unpacked/frozen_inference_graph.int8.bin") }
        #expect(unpacked.count == 1, "the IR is not unpacked beside the instance (under \(folder.path))")
    }
}
