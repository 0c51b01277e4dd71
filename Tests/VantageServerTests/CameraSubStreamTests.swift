import Foundation
import Testing
import VantageAPI
import VantageCore
import VantageServer

/// A registered camera's sub-stream (issue 19, "Sub-streams", fleet side): `detectUrl` is stored and shown like
/// `url` (its credentials taken out, sealed with the camera's, never answered), checked, changed and removed by
/// PATCH, and sent with the camera's credentials to the device that reads the camera.
@Suite("Camera sub-streams")
struct CameraSubStreamTests {
    static let v1 = "/api/v1"

    @Test(
        "detectUrl is shown without its password, stored sealed, sent filled to the device; PATCH changes and removes it",
        arguments: Engine.allCases)
    func storedShownAndDeployed(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            var calls = DocumentedCalls(api.document)
            var answers: [APIResponse] = []
            let (device, deviceToken) = try await api.makeDevice("gate-box")

            // Credentials in both URLs (the same account), and query credentials named in both.
            let created = try calls.expect(
                await api.call(
                    .post, "\(v1)/cameras", as: api.ops,
                    json: NewCamera(
                        name: "gate", url: "rtsp://admin:s3cret-main@gate.local:554/Streaming/101",
                        detectUrl: "rtsp://admin:s3cret-main@gate.local:554/Streaming/102", deviceId: device.id)))
            answers.append(created)
            let gate = try created.decode(Camera.self)
            #expect(gate.url == "rtsp://gate.local:554/Streaming/101")
            #expect(gate.detectUrl == "rtsp://gate.local:554/Streaming/102")
            #expect(gate.hasCredentials)
            let dahua = try calls.expect(
                await api.call(
                    .post, "\(v1)/cameras", as: api.ops,
                    json: NewCamera(
                        name: "yard",
                        url: "rtsp://yard.local/cam/realmonitor?channel=1&subtype=0&user=admin&password=s3cret-q",
                        detectUrl: "rtsp://yard.local/cam/realmonitor?channel=1&subtype=1&user=admin&password=***",
                        deviceId: device.id)))
            answers.append(dahua)
            let yard = try dahua.decode(Camera.self)
            #expect(yard.detectUrl == "rtsp://yard.local/cam/realmonitor?channel=1&subtype=1&user=***&password=***")
            // A camera without a sub-stream has none.
            let plain = try await api.store.createCamera(NewCamera(name: "dock", url: "rtsp://dock.local/live"))
            #expect(plain.detectUrl == nil)

            let shown = try calls.expect(await api.call(.get, "\(v1)/cameras/\(gate.id)", as: api.viewer))
            answers.append(shown)
            #expect(try shown.decode(Camera.self).detectUrl == "rtsp://gate.local:554/Streaming/102")
            let list = try calls.expect(await api.call(.get, "\(v1)/cameras", as: api.viewer))
            answers.append(list)
            #expect(list.text.contains("Streaming/102"), "\(list)")

            // The device reading the cameras gets both streams with the credentials put back in.
            let package = try await api.store.createPackage(NewPackage(name: "people-counter"))
            #expect(
                try await api.call(
                    .post, "\(v1)/packages/\(package.id)/versions?version=1.0", as: api.ops,
                    body: try TestArchive.zip(folder: SourceTree.peopleCounter)
                ).status == 201)
            let instance = try calls.expect(
                await api.call(
                    .post, "\(v1)/instances", as: api.ops,
                    json: NewInstance(
                        name: "gate-counter", packageId: package.id, packageVersion: "1.0", deviceId: device.id,
                        cameras: ["camera_node": gate.id]))
            ).decode(ApplicationInstance.self)
            func desiredCamera() async throws -> DesiredCamera {
                let state = try calls.expect(
                    await api.call(.get, "\(v1)/devices/\(device.id)/desired-state", as: deviceToken))
                let desired = try #require(
                    try state.decode(DeviceDesiredState.self).instances.first { $0.id == instance.id })
                return try #require(desired.cameras["camera_node"])
            }
            var desired = try await desiredCamera()
            #expect(desired.url == "rtsp://admin:s3cret-main@gate.local:554/Streaming/101")
            #expect(desired.detectUrl == "rtsp://admin:s3cret-main@gate.local:554/Streaming/102")
            let yardURLs = try await api.store.cameraStreamURLs(yard.id, for: device.id)
            #expect(
                yardURLs.detectUrl
                    == "rtsp://yard.local/cam/realmonitor?channel=1&subtype=1&user=admin&password=s3cret-q")

            // A rotated password reaches both streams.
            answers.append(
                try calls.expect(
                    await api.call(
                        .patch, "\(v1)/cameras/\(gate.id)", as: api.ops, json: CameraUpdate(password: "s3cret-new"))))
            desired = try await desiredCamera()
            #expect(desired.url == "rtsp://admin:s3cret-new@gate.local:554/Streaming/101")
            #expect(desired.detectUrl == "rtsp://admin:s3cret-new@gate.local:554/Streaming/102")

            // PATCH changes it (the credentials stay the camera's)...
            let changed = try calls.expect(
                await api.call(
                    .patch, "\(v1)/cameras/\(gate.id)", as: api.ops,
                    json: CameraUpdate(detectUrl: "rtsp://gate.local:554/Streaming/103")))
            answers.append(changed)
            #expect(try changed.decode(Camera.self).detectUrl == "rtsp://gate.local:554/Streaming/103")
            #expect(try await desiredCamera().detectUrl == "rtsp://admin:s3cret-new@gate.local:554/Streaming/103")
            // ... and null removes it: the device decodes the main stream again.
            let removed = try calls.expect(
                await api.call(
                    .patch, "\(v1)/cameras/\(gate.id)", as: api.ops,
                    json: JSONValue.object(["detectUrl": .null])))
            answers.append(removed)
            #expect(try removed.decode(Camera.self).detectUrl == nil, "\(removed)")
            #expect(!removed.text.contains("detectUrl"), "\(removed)")
            desired = try await desiredCamera()
            #expect(desired.detectUrl == nil)
            #expect(desired.url == "rtsp://admin:s3cret-new@gate.local:554/Streaming/101")
            // "" removes it too; a PATCH without the field keeps it.
            _ = try calls.expect(
                await api.call(
                    .patch, "\(v1)/cameras/\(yard.id)", as: api.ops, json: CameraUpdate(description: "the yard")))
            #expect(try await api.store.camera(yard.id).detectUrl == yard.detectUrl)
            let cleared = try calls.expect(
                await api.call(.patch, "\(v1)/cameras/\(yard.id)", as: api.ops, json: CameraUpdate(detectUrl: "")))
            #expect(try cleared.decode(Camera.self).detectUrl == nil)

            answers.append(try await api.call(.get, "\(v1)/audit", as: api.admin))
            for answer in answers {
                #expect(!answer.text.contains("s3cret"), "an answer shows a camera password: \(answer)")
            }
            for row in try await api.database.query("SELECT url, detect_url, credentials FROM cameras") {
                #expect(!"\(row.values)".contains("s3cret"), "the database holds a camera password in the clear")
            }
            for row in try await api.database.query("SELECT * FROM audit_log") {
                #expect(!"\(row.values)".contains("s3cret"), "the audit log holds a camera password")
            }
        }
    }

    @Test("a bad detectUrl is refused with 400 naming the field, and changes nothing", arguments: Engine.allCases)
    func refused(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let camera = try await api.store.createCamera(
                NewCamera(
                    name: "gate", url: "rtsp://admin:s3cret@gate.local/101",
                    detectUrl: "rtsp://gate.local/102"))
            let cases: [(APIResponse, [String])] = [
                (
                    try await api.call(
                        .post, "\(v1)/cameras", as: api.ops,
                        json: NewCamera(name: "ftp", url: "rtsp://cam.local/1", detectUrl: "ftp://admin:s3cret@cam/2")),
                    ["detectUrl", "ftp"]
                ),
                (
                    try await api.call(
                        .post, "\(v1)/cameras", as: api.ops,
                        json: NewCamera(
                            name: "two-accounts", url: "rtsp://admin:s3cret@cam.local/1",
                            detectUrl: "rtsp://admin:other-s3cret@cam.local/2")),
                    ["detectUrl", "password", "camera's credentials"]
                ),
                (
                    try await api.call(
                        .post, "\(v1)/cameras", as: api.ops,
                        json: NewCamera(
                            name: "placeholder", url: "rtsp://cam.local/1", detectUrl: "rtsp://cam.local/2?password=***"
                        )
                    ),
                    ["detectUrl", "password=***"]
                ),
                (
                    try await api.call(
                        .patch, "\(v1)/cameras/\(camera.id)", as: api.ops,
                        json: CameraUpdate(detectUrl: "192.168.1.20:554/sub")),
                    ["detectUrl", "rtsp://192.168.1.20:554/sub"]
                ),
                (
                    try await api.call(
                        .patch, "\(v1)/cameras/\(camera.id)", as: api.ops,
                        json: CameraUpdate(detectUrl: "rtsp://admin:wrong-s3cret@gate.local/103")),
                    ["detectUrl", "password"]
                ),
            ]
            for (answer, words) in cases {
                api.document.expectError(answer, 400, mentioning: words)
                #expect(!answer.text.contains("s3cret"), "a refusal shows a camera password: \(answer)")
            }
            #expect(try await api.store.camera(camera.id) == camera, "a refused update changed the camera")
            #expect(try await api.store.listCameras().map(\.name) == ["gate"])
            #expect(
                try await api.store.cameraStreamURLs(camera.id).detectUrl == "rtsp://admin:s3cret@gate.local/102")
        }
    }
}
