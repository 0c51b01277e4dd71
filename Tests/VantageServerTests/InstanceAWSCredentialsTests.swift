import Foundation
import Testing
import VantageAPI
import VantageCore
import VantageServer

/// An application instance's AWS credentials (issue 13, Panorama's application role): stored encrypted, never
/// answered, audited or logged, sent only to the instance's own device, and a change of them is a new deployment.
@Suite("Instance AWS credentials")
struct InstanceAWSCredentialsTests {
    static let v1 = "/api/v1"
    static let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
    static let token = "FwoGZXIvYXdzEXAMPLE-session-token"
    static let credentials = AWSCredentials(
        accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: secret, sessionToken: token, region: "eu-central-1")

    @Test(
        "credentials are shown masked, never the secret; only the instance's device gets them; a change redeploys",
        arguments: Engine.allCases)
    func storedMaskedAndDelivered(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let fleet = try await InstanceOutputsTests.fleet(api)
            let (otherDevice, otherToken) = try await api.makeDevice("line-4")
            var calls = DocumentedCalls(api.document)
            var answers: [APIResponse] = []

            var new = fleet.instance("s3-uploader")
            new.awsCredentials = Self.credentials
            let createdAnswer = try calls.expect(await api.call(.post, "\(v1)/instances", as: api.ops, json: new))
            answers.append(createdAnswer)
            let created = try createdAnswer.decode(ApplicationInstance.self)
            let masked = AWSCredentialsSummary(accessKeyId: "AKIA…MPLE", region: "eu-central-1", hasSessionToken: true)
            #expect(created.awsCredentials == masked)
            // Another instance on another device, without credentials.
            var plainNew = fleet.instance("plain")
            plainNew.deviceId = otherDevice.id
            // A camera goes only to its own device: the fleet's camera is line-3's once bound there.
            let otherCamera = try await api.store.createCamera(
                NewCamera(name: "line-4-dock", url: "rtsp://cam.local/line-4", deviceId: otherDevice.id))
            plainNew.cameras = ["camera_node": otherCamera.id]
            let plain = try calls.expect(await api.call(.post, "\(v1)/instances", as: api.ops, json: plainNew))
                .decode(ApplicationInstance.self)
            #expect(plain.awsCredentials == nil)

            let shown = try calls.expect(await api.call(.get, "\(v1)/instances/\(created.id)", as: api.viewer))
            answers.append(shown)
            #expect(try shown.decode(ApplicationInstance.self).awsCredentials == masked)
            answers.append(try calls.expect(await api.call(.get, "\(v1)/instances", as: api.viewer)))
            answers.append(
                try calls.expect(await api.call(.get, "\(v1)/instances?deviceId=\(fleet.device.id)", as: api.ops)))

            // Its device gets them whole; the other device's desired state has none of them.
            func desired(_ device: String, _ credential: Credential) async throws -> APIResponse {
                try calls.expect(await api.call(.get, "\(v1)/devices/\(device)/desired-state", as: credential))
            }
            let own = try await desired(fleet.device.id, fleet.deviceToken)
            let instance = try #require(
                try own.decode(DeviceDesiredState.self).instances.first { $0.id == created.id }, "\(own)")
            #expect(instance.awsCredentials == Self.credentials)
            let other = try await desired(otherDevice.id, otherToken)
            #expect(!other.text.contains(Self.secret) && !other.text.contains("AKIAIOSFODNN7EXAMPLE"), "\(other)")
            #expect(try other.decode(DeviceDesiredState.self).instances.allSatisfy { $0.awsCredentials == nil })
            // Another device asking for this device's desired state is refused.
            let refused = try await api.call(.get, "\(v1)/devices/\(fleet.device.id)/desired-state", as: otherToken)
            #expect(refused.status == 403, "\(refused)")
            answers.append(refused)

            func deployments() async throws -> [Deployment] {
                try calls.expect(await api.call(.get, "\(v1)/instances/\(created.id)/deployments", as: api.viewer))
                    .decode(Page<Deployment>.self).items
            }
            #expect(try await deployments().count == 1)
            // The same credentials again: no new deployment.
            answers.append(
                try calls.expect(
                    await api.call(
                        .patch, "\(v1)/instances/\(created.id)", as: api.ops,
                        json: InstanceUpdate(awsCredentials: .set(Self.credentials)))))
            #expect(try await deployments().count == 1, "unchanged credentials are not a deployment")
            // Rotated keys: a new deployment, and the device gets the new ones.
            var rotated = Self.credentials
            rotated.secretAccessKey = Self.secret + "-rotated"
            rotated.sessionToken = nil
            let rotatedAnswer = try calls.expect(
                await api.call(
                    .patch, "\(v1)/instances/\(created.id)", as: api.ops,
                    json: InstanceUpdate(awsCredentials: .set(rotated))))
            answers.append(rotatedAnswer)
            let afterRotation = try rotatedAnswer.decode(ApplicationInstance.self)
            #expect(afterRotation.status == .deploymentPending)
            #expect(afterRotation.awsCredentials?.hasSessionToken == false)
            #expect(try await deployments().count == 2, "rotated credentials are a new deployment")
            let second = try await desired(fleet.device.id, fleet.deviceToken).decode(DeviceDesiredState.self)
            #expect(second.instances.first { $0.id == created.id }?.awsCredentials == rotated)

            // A change of something else keeps them.
            let renamed = try calls.expect(
                await api.call(
                    .patch, "\(v1)/instances/\(created.id)", as: api.ops, json: InstanceUpdate(name: "s3-archive"))
            ).decode(ApplicationInstance.self)
            #expect(renamed.awsCredentials != nil)

            // `{}` removes them: a deployment, and the device's desired state has none.
            let cleared = try calls.expect(
                await api.call(
                    .patch, "\(v1)/instances/\(created.id)", as: api.ops,
                    json: InstanceUpdate(awsCredentials: .remove)))
            #expect(try cleared.decode(ApplicationInstance.self).awsCredentials == nil)
            #expect(try await deployments().count == 3)
            let third = try await desired(fleet.device.id, fleet.deviceToken)
            #expect(try third.decode(DeviceDesiredState.self).instances.allSatisfy { $0.awsCredentials == nil })
            #expect(!third.text.contains(Self.secret))
            // Removing none is no deployment.
            _ = try calls.expect(
                await api.call(
                    .patch, "\(v1)/instances/\(created.id)", as: api.ops,
                    json: InstanceUpdate(awsCredentials: .remove)))
            #expect(try await deployments().count == 3)

            answers.append(try calls.expect(await api.call(.get, "\(v1)/audit", as: api.admin)))
            for answer in answers {
                #expect(!answer.text.contains("wJalrXUtnFEMI"), "an answer shows the secret: \(answer)")
                #expect(!answer.text.contains(Self.token), "an answer shows the session token: \(answer)")
            }
            for row in try await api.database.query("SELECT * FROM instances") {
                #expect(!"\(row.values)".contains("wJalrXUtnFEMI"), "the database holds the secret in the clear")
                #expect(!"\(row.values)".contains(Self.token), "the database holds the session token in the clear")
            }
            for row in try await api.database.query("SELECT * FROM audit_log") {
                #expect(!"\(row.values)".contains("wJalrXUtnFEMI"), "the audit log holds the secret")
            }
        }
    }

    @Test(
        "malformed credentials are refused with 400 naming the field, never repeating a value, and change nothing",
        arguments: Engine.allCases)
    func malformedRefused(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let fleet = try await InstanceOutputsTests.fleet(api)
            let cases: [(AWSCredentials, [String])] = [
                (AWSCredentials(accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: ""), ["secretAccessKey"]),
                (
                    AWSCredentials(accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "leaked secret\n"),
                    ["secretAccessKey", "copy it again"]
                ),
                (
                    AWSCredentials(
                        accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "leakedsecret", region: "Mars 1"),
                    ["region"]
                ),
            ]
            for (credentials, words) in cases {
                var new = fleet.instance("bad")
                new.awsCredentials = credentials
                let before = try await api.snapshot()
                let refused = try await api.call(.post, "\(v1)/instances", as: api.ops, json: new, documented: false)
                api.document.expectError(refused, 400, mentioning: words)
                #expect(!refused.text.contains("leaked"), "the answer repeats the secret: \(refused.text)")
                #expect(try await api.snapshot() == before)
            }
            // A member the credentials do not take, and a missing secret, named.
            var body = try APIJSON.encoder().encode(fleet.instance("bad"))
            body = Data(
                String(decoding: body, as: UTF8.self).replacingOccurrences(
                    of: #""name":"#,
                    with: #""awsCredentials":{"accessKeyId":"AKIAIOSFODNN7EXAMPLE","secretKey":"leaked"},"name":"#
                ).utf8)
            try await APIValidationTests.expectRefused(
                api, .post, "\(v1)/instances", as: api.ops, body: [UInt8](body), status: 400,
                mentioning: ["awsCredentials", "secretKey"])
            body = Data(
                String(decoding: try APIJSON.encoder().encode(fleet.instance("bad")), as: UTF8.self)
                    .replacingOccurrences(
                        of: #""name":"#, with: #""awsCredentials":{"accessKeyId":"AKIAIOSFODNN7EXAMPLE"},"name":"#
                    ).utf8)
            try await APIValidationTests.expectRefused(
                api, .post, "\(v1)/instances", as: api.ops, body: [UInt8](body), status: 400,
                mentioning: ["awsCredentials.secretAccessKey", "required"])
        }
    }
}
