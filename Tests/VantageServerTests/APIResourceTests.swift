import Foundation
import Hummingbird
import Testing
import VantageAPI
import VantageAgent
import VantageServer

/// "The tests check that every route answers as documented": a scripted fleet set-up that calls every operation of
/// the OpenAPI document once with valid input, checks each answer against the document, and then checks the audit
/// log holds every change.
@Suite("API resources")
struct APIResourceTests {
    static let v1 = "/api/v1"

    /// Waits (up to 10 s) until `condition` holds.
    static func poll(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw APITestError("timed out waiting until \(what)")
    }

    @Test(
        "every operation answers its documented status and schema, and every change is audited",
        arguments: Engine.allCases)
    func everyOperationAsDocumented(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let start = Date().addingTimeInterval(-1)
            var calls = DocumentedCalls(api.document)

            // Who am I
            let me = try calls.expect(await api.call(.get, "\(v1)/me", as: api.viewer)).decode(Identity.self)
            #expect(me == Identity(actor: "token:watcher", role: .viewer))

            // Devices
            let created = try calls.expect(
                await api.call(
                    .post, "\(v1)/devices", as: api.ops, json: NewDevice(name: "edge-1", description: "lobby"))
            ).decode(DeviceCreated.self)
            let device = created.device
            #expect(device.provisioningStatus == .awaitingProvisioning)
            #expect(created.provisioningToken.hasPrefix("vd_"))
            #expect(created.caFingerprint == api.store.authority.fingerprint)
            let ca = try calls.expect(await api.call(.get, "\(v1)/ca"))
            #expect(try DeviceIdentity.fingerprint(pem: ca.text) == created.caFingerprint)
            let key = DeviceIdentity.makeKeyPEM()
            let enrollment = try calls.expect(
                await api.call(
                    .post, "\(v1)/enroll",
                    json: EnrollmentRequest(
                        token: created.provisioningToken, csr: try DeviceIdentity.csrPEM(keyPEM: key)))
            ).decode(Enrollment.self)
            #expect(enrollment.deviceId == device.id)
            let deviceToken = Credential.device(try await api.link(enrollment, key: key))
            let devices = try calls.expect(await api.call(.get, "\(v1)/devices", as: api.viewer))
                .decode(Page<Device>.self).items
            #expect(devices.map(\.id) == [device.id])
            let shown = try calls.expect(await api.call(.get, "\(v1)/devices/\(device.id)", as: api.viewer))
                .decode(Device.self)
            #expect(shown.name == "edge-1" && shown.description == "lobby")
            let renamed = try calls.expect(
                await api.call(
                    .patch, "\(v1)/devices/\(device.id)", as: api.ops, json: DeviceUpdate(description: "front lobby"))
            ).decode(Device.self)
            #expect(renamed.description == "front lobby" && renamed.name == "edge-1")
            let alive = try calls.expect(
                await api.call(
                    .post, "\(v1)/devices/\(device.id)/heartbeat", as: deviceToken,
                    json: Heartbeat(
                        softwareVersion: "1.2.3", metrics: ["cpu.percent": 12.5, "memory.bytes": 1_048_576]))
            ).decode(Device.self)
            #expect(alive.connectionStatus == .online && alive.softwareVersion == "1.2.3")
            #expect(alive.provisioningStatus == .succeeded)
            let metrics = try calls.expect(
                await api.call(.get, "\(v1)/devices/\(device.id)/metrics?name=cpu.percent", as: api.viewer)
            ).decode(Page<MetricPoint>.self).items
            #expect(metrics.map(\.value) == [12.5] && metrics.map(\.name) == ["cpu.percent"])

            // Cameras
            let camera = try calls.expect(
                await api.call(
                    .post, "\(v1)/cameras", as: api.ops,
                    json: NewCamera(
                        name: "lobby-cam", url: "rtsp://admin:s3cret@cam.local:554/stream", deviceId: device.id))
            ).decode(Camera.self)
            #expect(
                camera.hasCredentials && camera.url == "rtsp://cam.local:554/stream" && camera.deviceId == device.id)
            let cameras = try calls.expect(await api.call(.get, "\(v1)/cameras", as: api.viewer))
                .decode(Page<Camera>.self).items
            #expect(cameras.map(\.id) == [camera.id])
            try calls.expect(await api.call(.get, "\(v1)/cameras/\(camera.id)", as: api.viewer))
            let described = try calls.expect(
                await api.call(
                    .patch, "\(v1)/cameras/\(camera.id)", as: api.ops, json: CameraUpdate(description: "main door"))
            ).decode(Camera.self)
            #expect(described.description == "main door" && described.hasCredentials)

            // Models
            let model = try calls.expect(
                await api.call(.post, "\(v1)/models", as: api.ops, json: NewModel(name: "people-detector"))
            ).decode(Model.self)
            try calls.expect(await api.call(.get, "\(v1)/models", as: api.viewer))
            try calls.expect(await api.call(.get, "\(v1)/models/\(model.id)", as: api.viewer))
            let modelBytes = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let descriptor = #"{"inputs":[{"name":"image","shape":[1,3,300,300]}]}"#
                .addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let version = try calls.expect(
                await api.call(
                    .post, "\(v1)/models/\(model.id)/versions?filename=detector.onnx&descriptor=\(descriptor)",
                    as: api.ops, body: modelBytes)
            ).decode(ModelVersion.self)
            #expect(version.version == 1 && version.size == 4096 && version.filename == "detector.onnx")
            #expect(version.descriptor?["inputs"]?.arrayValue?.count == 1)
            let downloaded = calls.expect(
                try await api.call(.get, "\(v1)/models/\(model.id)/versions/1/content", as: api.viewer))
            #expect(downloaded.body == modelBytes, "the downloaded model is not the uploaded file")

            // Packages
            let package = try calls.expect(
                await api.call(.post, "\(v1)/packages", as: api.ops, json: NewPackage(name: "people-counter"))
            ).decode(Package.self)
            try calls.expect(await api.call(.get, "\(v1)/packages", as: api.viewer))
            let archive = try TestArchive.zip(folder: SourceTree.peopleCounter)
            let packageVersion = try calls.expect(
                await api.call(.post, "\(v1)/packages/\(package.id)/versions?version=1.0", as: api.ops, body: archive)
            ).decode(PackageVersion.self)
            #expect(packageVersion.application == "people-counter")
            #expect(packageVersion.cameras.map(\.node) == ["camera_node"])
            #expect(Set(packageVersion.parameters.map(\.node)) == ["min_score", "max_people", "model_name"])
            #expect(packageVersion.parameters.first { $0.node == "model_name" }?.overridable == false)
            let withVersion = try calls.expect(await api.call(.get, "\(v1)/packages/\(package.id)", as: api.viewer))
                .decode(Package.self)
            #expect(withVersion.latestVersion == "1.0")
            let packageArchive = calls.expect(
                try await api.call(.get, "\(v1)/packages/\(package.id)/versions/1.0/archive", as: api.viewer))
            #expect(packageArchive.body == archive, "the downloaded archive is not the uploaded one")

            // Application instances
            let instance = try calls.expect(
                await api.call(
                    .post, "\(v1)/instances", as: api.ops,
                    json: NewInstance(
                        name: "lobby-counter", packageId: package.id, packageVersion: "1.0", deviceId: device.id,
                        cameras: ["camera_node": camera.id],
                        parameters: ["min_score": .number(0.6), "max_people": .string("3")]))
            ).decode(ApplicationInstance.self)
            #expect(instance.status == .deploymentPending && instance.desiredState == .running)
            #expect(
                instance.parameters == ["min_score": .number(0.6), "max_people": .number(3)],
                "the values as given, typed")
            let listed = try calls.expect(
                await api.call(.get, "\(v1)/instances?deviceId=\(device.id)&status=DEPLOYMENT_PENDING", as: api.viewer)
            ).decode(Page<ApplicationInstance>.self).items
            #expect(listed.map(\.id) == [instance.id])
            try calls.expect(await api.call(.get, "\(v1)/instances/\(instance.id)", as: api.viewer))
            let updated = try calls.expect(
                await api.call(
                    .patch, "\(v1)/instances/\(instance.id)", as: api.ops,
                    json: InstanceUpdate(parameters: ["max_people": .number(4)]))
            ).decode(ApplicationInstance.self)
            #expect(updated.parameters == ["max_people": .number(4)])
            let deployments = try calls.expect(
                await api.call(.get, "\(v1)/instances/\(instance.id)/deployments", as: api.viewer)
            ).decode(Page<Deployment>.self).items
            #expect(deployments.count == 2, "creating and changing parameters are two deployments: \(deployments)")
            // What the device runs: the instance with its archive, the camera URL with its credentials (only here,
            // only to this device), the parameters; 304 while nothing changed.
            let desiredAnswer = calls.expect(
                try await api.call(.get, "\(v1)/devices/\(device.id)/desired-state", as: deviceToken))
            let desired = try desiredAnswer.decode(DeviceDesiredState.self)
            let running = try #require(desired.instances.first)
            #expect(desired.instances.count == 1 && running.id == instance.id && running.desiredState == .running)
            #expect(
                running.cameras["camera_node"]
                    == DesiredCamera(cameraId: camera.id, url: "rtsp://admin:s3cret@cam.local:554/stream"))
            #expect(running.archiveDigest == packageVersion.digest && running.parameters == ["max_people": .number(4)])
            #expect(running.deploymentId == deployments.first?.id, "the newest deployment")
            let etag = try #require(desiredAnswer.headers[.eTag])
            let unchanged = try await api.call(
                .get, "\(v1)/devices/\(device.id)/desired-state", as: deviceToken, headers: [.ifNoneMatch: etag])
            #expect(unchanged.status == 304 && unchanged.body.isEmpty, "\(unchanged)")
            let otherDevice = try await api.makeDevice("edge-2")
            api.document.expectError(
                try await api.call(.get, "\(v1)/devices/\(device.id)/desired-state", as: otherDevice.token), 403,
                mentioning: [device.id])

            // The device downloads its archive by digest, and can resume: a Range answers the rest (206).
            let artifactPath = "\(v1)/devices/\(device.id)/artifacts/\(running.archiveDigest)"
            let fetched = calls.expect(try await api.call(.get, artifactPath, as: deviceToken))
            #expect(fetched.body == archive, "the device's download is the uploaded archive")
            let rest = try await api.call(.get, artifactPath, as: deviceToken, headers: [.range: "bytes=100-"])
            #expect(rest.status == 206 && rest.body == Array(archive.dropFirst(100)), "\(rest.status)")
            #expect(rest.headers[.contentRange] == "bytes 100-\(archive.count - 1)/\(archive.count)")
            let beyond = try await api.call(
                .get, artifactPath, as: deviceToken, headers: [.range: "bytes=\(archive.count)-"])
            #expect(beyond.status == 416)
            // Another device, or a file no instance of this device uses, is not found for it.
            api.document.expectError(
                try await api.call(
                    .get, "\(v1)/devices/\(otherDevice.device.id)/artifacts/\(running.archiveDigest)",
                    as: otherDevice.token), 404)
            api.document.expectError(
                try await api.call(
                    .get, "\(v1)/devices/\(device.id)/artifacts/sha256:\(String(repeating: "0", count: 64))",
                    as: deviceToken), 404)

            let reported = try calls.expect(
                await api.call(
                    .post, "\(v1)/instances/\(instance.id)/report", as: deviceToken,
                    json: InstanceReport(
                        status: .deploymentSucceeded, healthStatus: .running, statusDescription: "counting"))
            ).decode(ApplicationInstance.self)
            #expect(reported.status == .deploymentSucceeded && reported.healthStatus == .running)

            // A model node served with the server's model: the device is told its digest and file name, and may
            // download it (and only it).
            let withModel = try calls.expect(
                await api.call(
                    .patch, "\(v1)/instances/\(instance.id)", as: api.ops,
                    json: InstanceUpdate(models: ["model_node": model.id]))
            ).decode(ApplicationInstance.self)
            #expect(withModel.models == ["model_node": ModelBinding(modelId: model.id, version: 1)])
            #expect(withModel.status == .deploymentPending, "a new model is a new deployment")
            let desiredModel = try #require(
                try await api.call(.get, "\(v1)/devices/\(device.id)/desired-state", as: deviceToken)
                    .decode(DeviceDesiredState.self).instances.first?.models["model_node"])
            #expect(desiredModel.filename == "detector.onnx" && desiredModel.version == 1)
            let modelFile = try await api.call(
                .get, "\(v1)/devices/\(device.id)/artifacts/\(desiredModel.digest)", as: deviceToken)
            #expect(modelFile.status == 200 && modelFile.body == modelBytes, "\(modelFile.status)")
            api.document.expectError(
                try await api.call(
                    .get, "\(v1)/devices/\(otherDevice.device.id)/artifacts/\(desiredModel.digest)",
                    as: otherDevice.token), 404)

            // The device renews its certificate with a new key, calling with the current one.
            let renewal = try calls.expect(
                await api.call(
                    .post, "\(v1)/devices/\(device.id)/certificate", as: deviceToken,
                    json: CertificateRenewal(csr: try DeviceIdentity.csrPEM(keyPEM: DeviceIdentity.makeKeyPEM())))
            ).decode(Enrollment.self)
            #expect(renewal.deviceId == device.id && renewal.certificate.contains("BEGIN CERTIFICATE"))

            // Logs: the device ships its own lines and its instance's; operators read them per instance.
            let shipped = try await api.call(
                .post, "\(v1)/devices/\(device.id)/logs", as: deviceToken,
                json: LogBatch(lines: [
                    LogLine(time: Date(), level: "info", message: "agent started"),
                    LogLine(time: Date(), instanceId: instance.id, level: "warning", message: "camera stalled"),
                    LogLine(
                        time: Date(), instanceId: instance.id, level: "nonsense",
                        message: String(repeating: "x", count: 10_000)),
                ]))
            #expect(calls.expect(shipped).status == 204, "\(shipped)")
            let instanceLines =
                try calls.expect(
                    await api.call(.get, "\(v1)/instances/\(instance.id)/logs?limit=10", as: api.viewer)
                ).decode([String: [LogLine]].self)["items"] ?? []
            #expect(instanceLines.map(\.level) == ["warning", "info"], "an unknown level reads as info")
            #expect(instanceLines.last?.message.hasSuffix("(cut)") == true, "a line too long is cut")
            let agentLines =
                try calls.expect(
                    await api.call(.get, "\(v1)/devices/\(device.id)/logs", as: api.viewer)
                ).decode([String: [LogLine]].self)["items"] ?? []
            #expect(agentLines.map(\.message) == ["agent started"])

            // Events
            let ids =
                try calls.expect(
                    await api.call(
                        .post, "\(v1)/devices/\(device.id)/events", as: deviceToken,
                        json: EventBatch(events: [
                            NewEvent(
                                type: "people.count", time: Date(), cameraId: camera.id, instanceId: instance.id,
                                data: .object(["count": .number(2)]),
                                snapshot: Data(TestImages.jpeg).base64EncodedString())
                        ]))
                ).decode([String: [String]].self)["ids"] ?? []
            let eventID = try #require(ids.first, "sendEvents answered no id")
            let events = try calls.expect(
                await api.call(.get, "\(v1)/events?instanceId=\(instance.id)&limit=10", as: api.viewer)
            ).decode(Page<Event>.self)
            #expect(events.items.map(\.id) == [eventID] && events.nextCursor == nil)
            let event = try calls.expect(await api.call(.get, "\(v1)/events/\(eventID)", as: api.viewer))
                .decode(Event.self)
            #expect(event.hasSnapshot && event.cameraId == camera.id && event.data == .object(["count": .number(2)]))
            let eventSnapshot = calls.expect(
                try await api.call(.get, "\(v1)/events/\(eventID)/snapshot", as: api.viewer))
            #expect(eventSnapshot.body == TestImages.jpeg)
            let cameraSnapshot = calls.expect(
                try await api.call(.get, "\(v1)/cameras/\(camera.id)/snapshot", as: api.viewer))
            #expect(cameraSnapshot.body == TestImages.jpeg, "the camera's snapshot is the event's")

            // A box whose clock jumped (set back a year, then an hour ahead): the instance's sequence keeps the order
            // it made its events in, and an event from a clock far ahead is kept, at the time received, with its own
            // time beside (refusing it would lose it).
            let now = Date()
            let jumped = [
                (1, now.addingTimeInterval(-60)), (2, now.addingTimeInterval(-365 * 86_400)),
                (3, now.addingTimeInterval(3600)),
            ].map { sequence, time in
                NewEvent(
                    id: "jump-\(sequence)", type: "line.crossed", time: time, sequence: Int64(sequence),
                    cameraId: camera.id, instanceId: instance.id)
            }
            calls.expect(
                try await api.call(
                    .post, "\(v1)/devices/\(device.id)/events", as: deviceToken, json: EventBatch(events: jumped)))
            let firstPage = try calls.expect(
                await api.call(
                    .get, "\(v1)/events?instanceId=\(instance.id)&order=sequence&limit=2", as: api.viewer)
            ).decode(Page<Event>.self)
            #expect(firstPage.items.map(\.deviceEventId) == ["jump-3", "jump-2"], "newest first by sequence")
            let ahead = try #require(firstPage.items.first)
            #expect(ahead.sequence == 3 && ahead.time <= Date() && ahead.time >= now.addingTimeInterval(-5))
            #expect(abs((ahead.deviceTime ?? .distantPast).timeIntervalSince(now.addingTimeInterval(3600))) < 1)
            #expect(firstPage.items.last?.deviceTime == nil, "a time in the past is the device's own")
            let cursor = try #require(firstPage.nextCursor)
            let secondPage = try calls.expect(
                await api.call(
                    .get, "\(v1)/events?instanceId=\(instance.id)&order=sequence&limit=2&cursor=\(cursor)",
                    as: api.viewer)
            ).decode(Page<Event>.self)
            #expect(
                secondPage.items.map { $0.deviceEventId ?? $0.id } == ["jump-1", eventID]
                    && secondPage.nextCursor == nil, "then jump-1, then the event sent without a sequence")
            let byTime = try calls.expect(
                await api.call(.get, "\(v1)/events?instanceId=\(instance.id)&limit=10", as: api.viewer)
            ).decode(Page<Event>.self)
            #expect(byTime.items.last?.deviceEventId == "jump-2", "by time, the year-behind event sits a year back")

            // A clip of an event, uploaded by its device under the device's own event id, and the types seen.
            calls.expect(
                try await api.call(
                    .put, "\(v1)/devices/\(device.id)/events/jump-1/clip", as: deviceToken,
                    body: APIEventClipTests.mp4))
            let clipped = try #require(secondPage.items.first { $0.deviceEventId == "jump-1" })
            let clip = calls.expect(try await api.call(.get, "\(v1)/events/\(clipped.id)/clip", as: api.viewer))
            #expect(clip.body == APIEventClipTests.mp4)
            struct Types: Decodable { let types: [String] }
            let types = try calls.expect(await api.call(.get, "\(v1)/event-types", as: api.viewer)).decode(Types.self)
            #expect(Set(types.types) == ["people.count", "line.crossed"], "\(types.types)")

            // Live: a watcher asks for a frame, the device (told by its desired state) sends one, the watcher gets
            // it; then one frame as a stream; then a camera paused through the device.
            let watcher = Task {
                try await api.call(.get, "\(v1)/instances/\(instance.id)/live/frame", as: api.viewer)
            }
            try await Self.poll("the desired state asks for live frames") {
                let state = try await api.call(.get, "\(v1)/devices/\(device.id)/desired-state", as: deviceToken)
                return try state.decode(DeviceDesiredState.self).live?.instances == [instance.id]
            }
            calls.expect(
                try await api.call(
                    .post, "\(v1)/devices/\(device.id)/live/\(instance.id)?stream=camera_node", as: deviceToken,
                    body: TestImages.jpeg, headers: [.contentType: "image/jpeg"]))
            #expect(calls.expect(try await watcher.value).body == TestImages.jpeg)
            struct Streams: Decodable { let streams: [String] }
            let streams = try calls.expect(
                await api.call(.get, "\(v1)/instances/\(instance.id)/live/streams", as: api.viewer)
            ).decode(Streams.self)
            #expect(streams.streams == ["camera_node"])
            let mjpeg = calls.expect(
                try await api.call(.get, "\(v1)/instances/\(instance.id)/live?frames=1", as: api.viewer))
            #expect(
                String(decoding: mjpeg.body.prefix(60), as: UTF8.self).hasPrefix("--frame\r\nContent-Type: image/jpeg"))
            let pause = Task {
                try await api.call(.post, "\(v1)/instances/\(instance.id)/nodes/camera_node/pause", as: api.ops)
            }
            var signal: CameraSignal?
            try await Self.poll("the desired state carries the pause") {
                let state = try await api.call(.get, "\(v1)/devices/\(device.id)/desired-state", as: deviceToken)
                signal = try state.decode(DeviceDesiredState.self).signals?.first
                return signal != nil
            }
            #expect(signal?.node == "camera_node" && signal?.signal == "pause")
            calls.expect(
                try await api.call(
                    .post, "\(v1)/devices/\(device.id)/signals/\(signal?.id ?? "")", as: deviceToken,
                    json: CameraSignalResult(ok: true, message: "camera node camera_node paused")))
            let paused = try calls.expect(try await pause.value).decode(CameraSignalResult.self)
            #expect(paused.ok && paused.message.contains("paused"))

            // Tokens
            let token = try calls.expect(
                await api.call(.post, "\(v1)/tokens", as: api.admin, json: NewToken(name: "ci-bot", role: .viewer))
            ).decode(APITokenCreated.self)
            let tokens = calls.expect(try await api.call(.get, "\(v1)/tokens", as: api.admin))
            #expect(
                try tokens.decode(Page<APIToken>.self).items.map(\.name).sorted() == [
                    "admin", "ci-bot", "ops", "watcher",
                ])
            #expect(!tokens.text.contains(token.secret), "listing tokens shows a secret")
            let bot = Credential.bearer(token.secret, actor: "token:ci-bot")
            #expect(try await api.call(.get, "\(v1)/me", as: bot).status == 200)
            calls.expect(try await api.call(.delete, "\(v1)/tokens/\(token.token.id)", as: api.admin))
            api.document.expectError(try await api.call(.get, "\(v1)/me", as: bot), 401)

            // Console users
            let dana = try calls.expect(
                await api.call(
                    .post, "\(v1)/users", as: api.admin,
                    json: NewUser(name: "dana", role: .operator, password: "a long enough password"))
            ).decode(User.self)
            #expect(dana.name == "dana" && dana.role == .operator)
            let users = calls.expect(try await api.call(.get, "\(v1)/users", as: api.admin))
            #expect(try users.decode(Page<User>.self).items.map(\.name).contains("dana"))
            #expect(!users.text.contains("a long enough password") && !users.text.contains("pbkdf2"))
            let demoted = try calls.expect(
                await api.call(.patch, "\(v1)/users/dana", as: api.admin, json: UserChange(role: .viewer))
            ).decode(User.self)
            #expect(demoted.role == .viewer)
            calls.expect(try await api.call(.delete, "\(v1)/users/dana", as: api.admin))

            // Software releases (a tarball as make package writes one) and a rollout to the device.
            var releases: [Release] = []
            for version in ["0.2.0", "0.2.1"] {
                let tarball = try await ReleaseUploadTests.tarball(
                    ["bin/vantage": "#!/bin/sh\n", "share/vantage/version": "\(version)\n"],
                    in: FileManager.default.temporaryDirectory)
                defer { try? FileManager.default.removeItem(at: tarball) }
                releases.append(
                    try calls.expect(
                        await api.call(
                            .post, "\(v1)/releases", as: api.ops, body: [UInt8](try Data(contentsOf: tarball)))
                    ).decode(Release.self))
            }
            #expect(releases.map(\.version) == ["0.2.0", "0.2.1"])
            calls.expect(try await api.call(.get, "\(v1)/releases", as: api.viewer))
            calls.expect(try await api.call(.get, "\(v1)/releases/0.2.0", as: api.viewer))
            let rollout = try calls.expect(
                await api.call(
                    .post, "\(v1)/rollouts", as: api.ops,
                    json: NewRollout(releaseVersion: "0.2.0", deviceIds: [device.id, otherDevice.device.id]))
            ).decode(Rollout.self)
            #expect(rollout.state == .inProgress && rollout.devices.map(\.state) == [.pending, .pending])
            let secondState = "\(v1)/devices/\(otherDevice.device.id)/desired-state"
            let waiting = try calls.expect(await api.call(.get, secondState, as: otherDevice.token))
                .decode(DeviceDesiredState.self)
            #expect(waiting.software == nil, "the second device waits for the canary")
            api.document.expectError(
                try await api.call(
                    .get, "\(v1)/devices/\(otherDevice.device.id)/artifacts/\(releases[0].digest)",
                    as: otherDevice.token), 404)
            calls.expect(try await api.call(.get, "\(v1)/rollouts", as: api.viewer))
            // The canary's desired state names the release, downloadable on the device endpoint; its heartbeat's word
            // (healthy) ends the rollout.
            let target = try calls.expect(
                await api.call(.get, "\(v1)/devices/\(device.id)/desired-state", as: deviceToken)
            ).decode(DeviceDesiredState.self).software
            #expect(target?.version == "0.2.0" && target?.digest == releases[0].digest, "\(String(describing: target))")
            calls.expect(
                try await api.call(
                    .get, "\(v1)/devices/\(device.id)/artifacts/\(releases[0].digest)", as: deviceToken))
            calls.expect(
                try await api.call(
                    .post, "\(v1)/devices/\(device.id)/heartbeat", as: deviceToken,
                    json: Heartbeat(
                        softwareVersion: "0.2.0",
                        update: SoftwareUpdateReport(rolloutId: rollout.id, version: "0.2.0", state: .healthy))))
            let next = try calls.expect(await api.call(.get, secondState, as: otherDevice.token))
                .decode(DeviceDesiredState.self)
            #expect(next.software?.version == "0.2.0", "the canary is healthy: the second device gets it")
            calls.expect(
                try await api.call(
                    .post, "\(v1)/devices/\(otherDevice.device.id)/heartbeat", as: otherDevice.token,
                    json: Heartbeat(
                        softwareVersion: "0.2.0",
                        update: SoftwareUpdateReport(rolloutId: rollout.id, version: "0.2.0", state: .healthy))))
            let done = try calls.expect(
                await api.call(.get, "\(v1)/rollouts/\(rollout.id)", as: api.viewer)
            ).decode(Rollout.self)
            #expect(done.state == .succeeded && done.devices.map(\.state) == [.healthy, .healthy], "\(done)")
            // Two rollouts to a device that is offline: when it comes back it gets the newest one's release alone;
            // once healthy on it, the older rollout is finished for it (superseded), so it can succeed and its
            // release be deleted.
            let skipped = try calls.expect(
                await api.call(
                    .post, "\(v1)/rollouts", as: api.ops,
                    json: NewRollout(releaseVersion: "0.2.1", deviceIds: [device.id]))
            ).decode(Rollout.self)
            let latest = try calls.expect(
                await api.call(
                    .post, "\(v1)/rollouts", as: api.ops,
                    json: NewRollout(releaseVersion: "0.2.0", deviceIds: [device.id]))
            ).decode(Rollout.self)
            let back = try calls.expect(
                await api.call(.get, "\(v1)/devices/\(device.id)/desired-state", as: deviceToken)
            ).decode(DeviceDesiredState.self).software
            #expect(back?.rolloutId == latest.id, "the newest rollout's release, alone")
            calls.expect(
                try await api.call(
                    .post, "\(v1)/devices/\(device.id)/heartbeat", as: deviceToken,
                    json: Heartbeat(
                        softwareVersion: "0.2.0",
                        update: SoftwareUpdateReport(rolloutId: latest.id, version: "0.2.0", state: .healthy))))
            let superseded = try calls.expect(
                await api.call(.get, "\(v1)/rollouts/\(skipped.id)", as: api.viewer)
            ).decode(Rollout.self)
            #expect(
                superseded.state == .succeeded && superseded.devices.map(\.state) == [.superseded]
                    && superseded.devices.first?.reason?.contains("0.2.0") == true, "\(superseded)")
            // A device runs it now.
            api.document.expectError(try await api.call(.delete, "\(v1)/releases/0.2.0", as: api.ops), 409)
            calls.expect(try await api.call(.delete, "\(v1)/releases/0.2.1", as: api.ops))

            // A lost box: a new token for it, then cut off.
            let spare = try await api.store.createDevice(NewDevice(name: "edge-spare")).device
            let renewed = try calls.expect(
                await api.call(.post, "\(v1)/devices/\(spare.id)/provisioning-token", as: api.ops)
            ).decode(DeviceCreated.self)
            #expect(renewed.provisioningToken.hasPrefix("vd_") && renewed.device.id == spare.id)
            let revoked = try calls.expect(await api.call(.post, "\(v1)/devices/\(spare.id)/revoke", as: api.ops))
                .decode(Device.self)
            #expect(revoked.provisioningStatus == .awaitingProvisioning)

            // What keeps a camera, model or package from being deleted: the instances that use it.
            struct Uses: Decodable { let items: [InstanceUse] }
            for path in ["cameras/\(camera.id)", "models/\(model.id)", "packages/\(package.id)"] {
                let uses = try calls.expect(await api.call(.get, "\(v1)/\(path)/used-by", as: api.viewer))
                    .decode(Uses.self)
                #expect(path.hasPrefix("models") || uses.items.map(\.id) == [instance.id], "\(path): \(uses.items)")
            }

            // Taking the fleet down again
            let removed = try calls.expect(await api.call(.delete, "\(v1)/instances/\(instance.id)", as: api.ops))
                .decode(ApplicationInstance.self)
            #expect(removed.desiredState == .removed && removed.status == .removalPending)
            calls.expect(try await api.call(.delete, "\(v1)/cameras/\(camera.id)", as: api.ops))
            calls.expect(try await api.call(.delete, "\(v1)/devices/\(device.id)", as: api.ops))
            calls.expect(try await api.call(.delete, "\(v1)/packages/\(package.id)", as: api.ops))
            calls.expect(try await api.call(.delete, "\(v1)/models/\(model.id)", as: api.ops))
            api.document.expectError(try await api.call(.get, "\(v1)/devices/\(device.id)", as: api.viewer), 404)

            // The audit log
            let audit = try calls.expect(await api.call(.get, "\(v1)/audit?limit=500", as: api.admin))
                .decode(Page<AuditEntry>.self).items

            let missed = Set(api.document.operations.map(\.id)).subtracting(calls.exercised)
            #expect(
                missed.isEmpty, "operations this test did not call (a new route needs a call here): \(missed.sorted())")

            let telemetry: Set<String> = [
                "sendHeartbeat", "sendEvents", "sendLogs", "sendLiveFrame", "finishCameraSignal", "uploadEventClip",
            ]
            // Enrollment is anonymous (the token is in the body): it is audited under the device's name.
            #expect(audit.contains { $0.action == "enrollDevice" && $0.actor == "device:\(device.id)" })
            for mutation in calls.mutations where !telemetry.contains(mutation.operation) && mutation.actor != nil {
                #expect(
                    audit.contains {
                        $0.action == mutation.operation && $0.target == mutation.target && $0.actor == mutation.actor
                    }, "no audit line for \(mutation.operation) \(mutation.target) by \(mutation.actor ?? "?")")
            }
            let mutating = Set(api.document.operations.filter(\.isMutation).map(\.id)).subtracting(telemetry)
            #expect(mutating.isSubset(of: Set(audit.map(\.action))), "\(mutating.subtracting(audit.map(\.action)))")
            #expect(audit.filter { telemetry.contains($0.action) }.isEmpty, "device telemetry is not audited")
            #expect(audit.allSatisfy { $0.time >= start && $0.time <= Date() }, "audit times: \(audit.map(\.time))")
            #expect(zip(audit, audit.dropFirst()).allSatisfy { $0.time >= $1.time }, "the audit log is newest first")
            #expect(
                audit.first { $0.action == "createDevice" }?.detail == device.id,
                "a create's audit line names what it made")
        }
    }

    @Test("the audit log refuses UPDATE and DELETE", arguments: Engine.allCases)
    func auditLogIsAppendOnly(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let created = try await api.call(.post, "\(Self.v1)/devices", as: api.ops, json: NewDevice(name: "audited"))
            #expect(created.status == 201)
            let before = try await api.database.query("SELECT id, at, actor, action, target, detail FROM audit_log")
            #expect(before.count == 1)
            await #expect(throws: DatabaseError.self, "UPDATE on the audit log") {
                try await api.database.query("UPDATE audit_log SET actor = 'mallory'")
            }
            await #expect(throws: DatabaseError.self, "DELETE on the audit log") {
                try await api.database.query("DELETE FROM audit_log")
            }
            await #expect(throws: DatabaseError.self, "DELETE in a transaction") {
                try await api.database.transaction { db in try await db.query("DELETE FROM audit_log WHERE 1 = 1") }
            }
            let after = try await api.database.query("SELECT id, at, actor, action, target, detail FROM audit_log")
            #expect(after.map(\.values) == before.map(\.values))
        }
    }

    @Test("camera credentials are stored encrypted and never answered, logged or audited", arguments: Engine.allCases)
    func cameraSecretsStaySecret(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            var answers: [APIResponse] = []
            let door = try await api.call(
                .post, "\(v1)/cameras", as: api.ops,
                json: NewCamera(name: "door", url: "rtsp://admin:s3cret@door.local:554/live"))
            let yard = try await api.call(
                .post, "\(v1)/cameras", as: api.ops,
                json: NewCamera(name: "yard", url: "rtsp://yard.local/live", username: "viewer", password: "s3cret-too")
            )
            #expect(door.status == 201 && yard.status == 201, "\(door) \(yard)")
            let doorID = try door.decode(Camera.self).id
            let yardID = try yard.decode(Camera.self).id
            answers += [door, yard]
            answers.append(
                try await api.call(
                    .patch, "\(v1)/cameras/\(yardID)", as: api.ops, json: CameraUpdate(password: "s3cret-three")))
            answers.append(
                try await api.call(
                    .patch, "\(v1)/cameras/\(doorID)", as: api.ops,
                    json: CameraUpdate(url: "rtsp://admin:s3cret-four@door.local:8554/live")))
            answers.append(try await api.call(.get, "\(v1)/cameras", as: api.viewer))
            answers.append(try await api.call(.get, "\(v1)/cameras/\(doorID)", as: api.viewer))
            answers.append(try await api.call(.get, "\(v1)/cameras/\(yardID)", as: api.viewer))
            answers.append(try await api.call(.get, "\(v1)/audit", as: api.admin))
            let refused = try await api.call(
                .post, "\(v1)/cameras", as: api.ops, json: NewCamera(name: "ftp", url: "ftp://admin:s3cret@host/x"))
            api.document.expectError(refused, 400, mentioning: ["ftp"])
            answers.append(refused)
            for answer in answers {
                #expect(answer.status < 500)
                #expect(!answer.text.contains("s3cret"), "an answer shows a camera password: \(answer)")
            }
            for row in try await api.database.query("SELECT url, credentials FROM cameras") {
                #expect(!"\(row.values)".contains("s3cret"), "the database holds a camera password in the clear")
                #expect(try row.optionalText("credentials") != nil, "the credentials were dropped, not stored")
            }
            for row in try await api.database.query("SELECT * FROM audit_log") {
                #expect(!"\(row.values)".contains("s3cret"), "the audit log holds a camera password")
            }
            // The device that opens the camera gets them back.
            #expect(try await api.store.cameraStreamURL(doorID) == "rtsp://admin:s3cret-four@door.local:8554/live")
            #expect(try await api.store.cameraStreamURL(yardID) == "rtsp://viewer:s3cret-three@yard.local/live")
        }
    }
}
