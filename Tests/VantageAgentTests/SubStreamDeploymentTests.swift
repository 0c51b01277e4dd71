import Foundation
import Testing
import VantageAPI
import VantageApp
import VantageCore

@testable import VantageAgent

/// A camera's sub-stream on the device (issue 19, "Sub-streams"): the desired state's `detectUrl` becomes the
/// resolved camera's `detectURL` (as `vantage run --detect-stream`), a rotated password reaches both streams without a
/// restart, and another sub-stream is a new deployment.
@Suite("Deployments: camera sub-streams")
struct SubStreamDeploymentTests {
    typealias Fixture = DeploymentFixture

    static func instance(_ package: TestPackage, url: String, detectUrl: String?) -> DesiredInstance {
        var instance = Fixture.instance(package)
        instance.cameras = ["camera_node": DesiredCamera(cameraId: "cam_1", url: url, detectUrl: detectUrl)]
        return instance
    }

    static func runner(_ fixture: Fixture) -> RuntimeRunner {
        RuntimeRunner(
            stateRoot: fixture.root.appending(path: "state"),
            artifactsFolder: fixture.root.appending(path: "artifacts"),
            events: InstanceEvents(
                folder: fixture.root.appending(path: "outbox"), limitBytes: 1 << 20, device: "dev_1",
                logger: Fixture.logger, send: { _ in }),
            executableSearchPath: [], logger: Fixture.logger)
    }

    @Test("the sub-stream reaches the runtime as the camera's detect stream, with the camera's credentials")
    func resolvedWithDetectURL() throws {
        let fixture = try Fixture()
        let v1 = try fixture.package("1.0")
        let runner = Self.runner(fixture)
        let application = try runner.resolve(
            Self.instance(
                v1, url: "rtsp://viewer:pw-1@gate.local/101", detectUrl: "rtsp://viewer:pw-1@gate.local/102"),
            project: v1.project)
        let camera = try #require(application.cameras.first)
        #expect(application.cameras.count == 1)
        #expect(camera.graphNode == "camera_node")
        #expect(camera.url == "rtsp://viewer:pw-1@gate.local/101", "the main stream, kept for clips")
        #expect(camera.detectURL == "rtsp://viewer:pw-1@gate.local/102", "the stream decoded for detection")

        let without = try runner.resolve(
            Self.instance(v1, url: "rtsp://viewer:pw-1@gate.local/101", detectUrl: nil), project: v1.project)
        #expect(without.cameras.first?.detectURL == nil)
    }

    @Test("a new password on both streams is a credentials change; another sub-stream is a new configuration")
    func credentialsOrConfiguration() throws {
        let fixture = try Fixture()
        let v1 = try fixture.package("1.0")
        let running = Self.instance(
            v1, url: "rtsp://viewer:pw-1@gate.local/101", detectUrl: "rtsp://viewer:pw-1@gate.local/102")
        let rotated = Self.instance(
            v1, url: "rtsp://viewer:pw-2@gate.local/101", detectUrl: "rtsp://viewer:pw-2@gate.local/102")
        #expect(running.differsInCameraCredentialsOnly(from: rotated))
        // The rotated password reaches both streams of the resolved camera the worker is given.
        let camera = try #require(try Self.runner(fixture).resolve(rotated, project: v1.project).cameras.first)
        #expect(camera.url.contains("pw-2@") && camera.detectURL?.contains("pw-2@") == true)

        let moved = Self.instance(
            v1, url: "rtsp://viewer:pw-1@gate.local/101", detectUrl: "rtsp://viewer:pw-1@gate.local/103")
        #expect(!running.differsInCameraCredentialsOnly(from: moved))
        #expect(!running.sameConfiguration(as: moved))
        let dropped = Self.instance(v1, url: "rtsp://viewer:pw-1@gate.local/101", detectUrl: nil)
        #expect(!running.differsInCameraCredentialsOnly(from: dropped))
        #expect(!running.sameConfiguration(as: dropped))
    }
}
