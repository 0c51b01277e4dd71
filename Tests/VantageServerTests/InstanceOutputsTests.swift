import Foundation
import Testing
import VantageAPI
import VantageCore
import VantageServer

/// An application instance's `outputs` document (issue 6: sinks configured per application instance): stored and
/// shown as given, sent to its device, a change of it is a new deployment, and a secret written out never reaches
/// the control plane.
@Suite("Instance outputs")
struct InstanceOutputsTests {
    static let v1 = "/api/v1"

    /// A device, a camera and the people counter 1.0, ready for instances.
    struct Fleet {
        var device: Device
        var deviceToken: Credential
        var camera: Camera
        var package: Package

        func instance(_ name: String, outputs: JSONValue? = nil) -> NewInstance {
            NewInstance(
                name: name, packageId: package.id, packageVersion: "1.0", deviceId: device.id,
                cameras: ["camera_node": camera.id], outputs: outputs)
        }
    }

    static func fleet(_ api: APIHarness) async throws -> Fleet {
        let (device, token) = try await api.makeDevice("line-3")
        let camera = try await api.store.createCamera(NewCamera(name: "dock", url: "rtsp://cam.local/live"))
        let package = try await api.store.createPackage(NewPackage(name: "people-counter"))
        let uploaded = try await api.call(
            .post, "\(v1)/packages/\(package.id)/versions?version=1.0", as: api.ops,
            body: try TestArchive.zip(folder: SourceTree.peopleCounter))
        #expect(uploaded.status == 201, "\(uploaded)")
        return Fleet(device: device, deviceToken: token, camera: camera, package: package)
    }

    static func document(_ text: String) throws -> JSONValue {
        try APIJSON.decoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    /// Sinks for this site with every secret an environment reference, and a rule that also names a sink the
    /// package's own graph.json may define (the device checks that one).
    static let siteOutputs = """
        {"sinks": {
            "alerts": {"type": "mqtt", "url": "mqtt://broker.local:1883", "topic": "vantage/{device}/{camera}/{type}",
                       "qos": 1, "username": "edge", "password": "${MQTT_PASSWORD}"},
            "quality": {"type": "webhook", "url": "https://hooks.example.com/vantage", "secret": "${HOOK_SECRET}",
                        "headers": {"Authorization": "${HOOK_AUTHORIZATION}"}, "timeout": "10s"},
            "images": {"type": "s3", "bucket": "defects", "region": "eu-west-1", "accessKeyId": "${S3_KEY}",
                       "secretAccessKey": "${S3_SECRET}"}},
         "rules": [{"name": "dock", "when": {"type": "zone.enter", "payload": {"zone": "dock"}},
                    "send": ["alerts", "quality", "images", "graph_sink"], "atMostEvery": "5m"}],
         "events": {"maxAge": "7d"}}
        """

    @Test(
        "an instance's outputs document is shown as stored, sent to its device, and a change of it is a new deployment",
        arguments: Engine.allCases)
    func storedShownAndDeployed(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let fleet = try await Self.fleet(api)
            var calls = DocumentedCalls(api.document)
            let outputs = try Self.document(Self.siteOutputs)

            let created = try calls.expect(
                await api.call(
                    .post, "\(v1)/instances", as: api.ops, json: fleet.instance("dock-watch", outputs: outputs))
            ).decode(ApplicationInstance.self)
            #expect(created.outputs == outputs)
            let shown = try calls.expect(await api.call(.get, "\(v1)/instances/\(created.id)", as: api.viewer))
                .decode(ApplicationInstance.self)
            #expect(shown.outputs == outputs, "GET shows the document as it was given")
            let listed = try calls.expect(await api.call(.get, "\(v1)/instances", as: api.viewer))
                .decode(Page<ApplicationInstance>.self).items
            #expect(listed.first?.outputs == outputs)
            // An instance without one shows none.
            let plain = try calls.expect(
                await api.call(.post, "\(v1)/instances", as: api.ops, json: fleet.instance("plain"))
            ).decode(ApplicationInstance.self)
            #expect(plain.outputs == nil)

            // The device gets the document, and its own name for {device} in topic templates.
            func desired(_ id: String? = nil) async throws -> DesiredInstance {
                let answer = try await api.call(
                    .get, "\(v1)/devices/\(fleet.device.id)/desired-state", as: fleet.deviceToken)
                let state = try calls.expect(answer).decode(DeviceDesiredState.self)
                guard let instance = state.instances.first(where: { $0.id == id ?? created.id }) else {
                    throw APITestError("the desired state lacks instance \(id ?? created.id): \(state)")
                }
                return instance
            }
            let first = try await desired()
            #expect(first.outputs == outputs && first.deviceName == "line-3")
            #expect(try await desired(plain.id).outputs == nil)

            func deployments() async throws -> [Deployment] {
                let answer = try await api.call(.get, "\(v1)/instances/\(created.id)/deployments", as: api.viewer)
                return try calls.expect(answer).decode(Page<Deployment>.self).items
            }
            #expect(try await deployments().count == 1)

            // The same document again is no new deployment; a changed one is.
            _ = try calls.expect(
                await api.call(
                    .patch, "\(v1)/instances/\(created.id)", as: api.ops, json: InstanceUpdate(outputs: outputs)))
            #expect(try await deployments().count == 1, "an unchanged outputs document is not a deployment")
            let changedText = Self.siteOutputs.replacingOccurrences(of: "\"qos\": 1", with: "\"qos\": 2")
            let changed = try Self.document(changedText)
            #expect(changed != outputs)
            let updated = try calls.expect(
                await api.call(
                    .patch, "\(v1)/instances/\(created.id)", as: api.ops, json: InstanceUpdate(outputs: changed))
            ).decode(ApplicationInstance.self)
            #expect(updated.outputs == changed && updated.status == .deploymentPending)
            let afterChange = try await deployments()
            #expect(afterChange.count == 2, "a changed outputs document is a new deployment: \(afterChange)")
            let second = try await desired()
            #expect(second.outputs == changed && second.deploymentId == afterChange.first?.id)

            // Another change leaves the document alone; an empty object removes it (a deployment too).
            let renamed = try calls.expect(
                await api.call(
                    .patch, "\(v1)/instances/\(created.id)", as: api.ops, json: InstanceUpdate(name: "dock-alerts"))
            ).decode(ApplicationInstance.self)
            #expect(renamed.outputs == changed)
            let removed = try calls.expect(
                await api.call(
                    .patch, "\(v1)/instances/\(created.id)", as: api.ops, json: InstanceUpdate(outputs: .object([:])))
            ).decode(ApplicationInstance.self)
            #expect(removed.outputs == nil)
            #expect(try await deployments().count == 3)
            #expect(try await desired().outputs == nil)
        }
    }

    @Test(
        "a secret written out in an instance's outputs is refused with 400 naming where, and nothing is stored",
        arguments: Engine.allCases)
    func literalSecretsRefused(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let fleet = try await Self.fleet(api)
            let cases: [(String, String)] = [
                (
                    #"{"sinks": {"alerts": {"type": "mqtt", "url": "mqtt://b:1883", "password": "hunter2-secret"}}}"#,
                    "outputs.sinks.alerts.password"
                ),
                (
                    #"{"sinks": {"hook": {"type": "webhook", "url": "https://h.example", "secret": "hunter2-secret"}}}"#,
                    "outputs.sinks.hook.secret"
                ),
                (
                    #"{"sinks": {"hook": {"type": "webhook", "url": "https://h.example", "secret": "${S}", "headers": {"Authorization": "Bearer hunter2-secret"}}}}"#,
                    "outputs.sinks.hook.headers.Authorization"
                ),
                (
                    #"{"sinks": {"img": {"type": "s3", "bucket": "b", "accessKeyId": "AKIA", "secretAccessKey": "hunter2-secret"}}}"#,
                    "outputs.sinks.img.secretAccessKey"
                ),
                (
                    #"{"sinks": {"img": {"type": "s3", "bucket": "b", "accessKeyId": "${K}", "secretAccessKey": "${S}", "sessionToken": "hunter2-secret"}}}"#,
                    "outputs.sinks.img.sessionToken"
                ),
            ]
            for (text, path) in cases {
                let outputs = try Self.document(text)
                let before = try await api.snapshot()
                let refused = try await api.call(
                    .post, "\(v1)/instances", as: api.ops, json: fleet.instance("leaky", outputs: outputs))
                api.document.expectError(refused, 400, mentioning: [path, "${NAME}"])
                #expect(!refused.text.contains("hunter2"), "the answer repeats the secret: \(refused.text)")
                let after = try await api.snapshot()
                #expect(after == before, "a refused instance changed the database: \(after.difference(from: before))")
            }
            // Other mistakes are refused the same way, naming where.
            for (text, words) in [
                (#"{"sinks": {"x": {"type": "ftp", "url": "ftp://h"}}}"#, ["outputs.sinks.x.type", "ftp"]),
                (#"{"sinks": {"x": {"type": "mqtt", "url": "mqtt://h", "qos": 3}}}"#, ["outputs.sinks.x.qos"]),
                (#"{"sink": {}}"#, ["sink"]),
            ] {
                try await APIValidationTests.expectRefused(
                    api, .post, "\(v1)/instances", as: api.ops,
                    json: fleet.instance("wrong", outputs: try Self.document(text)), status: 400, mentioning: words)
            }
            // Not an object at all (the documented schema does not allow it either: sent as raw bytes).
            var notAnObject = try APIJSON.encoder().encode(fleet.instance("wrong"))
            notAnObject = Data(
                String(decoding: notAnObject, as: UTF8.self).replacingOccurrences(
                    of: #""name":"#, with: #""outputs":["sinks"],"name":"#
                ).utf8)
            #expect(String(decoding: notAnObject, as: UTF8.self).contains(#""outputs":["sinks"]"#))
            try await APIValidationTests.expectRefused(
                api, .post, "\(v1)/instances", as: api.ops, body: [UInt8](notAnObject), status: 400,
                mentioning: ["outputs", "object"])

            // On a change too: the instance keeps its document and no deployment is made.
            let good = try Self.document(Self.siteOutputs)
            let created = try await api.call(
                .post, "\(v1)/instances", as: api.ops, json: fleet.instance("dock-watch", outputs: good))
            #expect(created.status == 201, "\(created)")
            let id = try created.decode(ApplicationInstance.self).id
            try await APIValidationTests.expectRefused(
                api, .patch, "\(v1)/instances/\(id)", as: api.ops,
                json: InstanceUpdate(outputs: try Self.document(cases[1].0)), status: 400,
                mentioning: ["outputs.sinks.hook.secret"])
            #expect(try await api.store.instance(id).outputs == good)
            for row in try await api.database.query("SELECT * FROM instances") {
                #expect(!"\(row.values)".contains("hunter2"), "the database holds a secret of a refused document")
            }
        }
    }
}
