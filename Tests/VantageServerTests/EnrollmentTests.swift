// Device identity end to end: one-time provisioning tokens exchanged for CA-signed certificates, mutual TLS on the
// device endpoint, revocation, and devices that cannot act for one another. Devices talk to a real TLS listener
// (the harness's device endpoint) with real certificates, as `vantage agent` does.
import Foundation
import Logging
import Synchronization
import Testing
import VantageAPI
import VantageAgent
import VantageServer

@Suite("Device enrollment and mutual TLS")
struct EnrollmentTests {
    static let v1 = "/api/v1"

    @Test(
        "a provisioning token enrolls once; a replayed, expired or mistyped one gets nothing",
        arguments: Engine.allCases)
    func tokensAreSingleUseAndExpire(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let created = try await api.call(.post, "\(Self.v1)/devices", as: api.ops, json: NewDevice(name: "edge"))
                .decode(DeviceCreated.self)
            #expect(created.tokenExpiresAt > Date().addingTimeInterval(3000), "valid about an hour")
            let key = DeviceIdentity.makeKeyPEM()
            let request = EnrollmentRequest(
                token: created.provisioningToken, csr: try DeviceIdentity.csrPEM(keyPEM: key))

            let first = try await api.call(.post, "\(Self.v1)/enroll", json: request)
            #expect(first.status == 201, "\(first)")
            let enrollment = try first.decode(Enrollment.self)
            #expect(enrollment.deviceId == created.device.id)
            #expect(try DeviceIdentity.fingerprint(pem: enrollment.caCertificate) == created.caFingerprint)
            let device = try await api.store.device(created.device.id)
            #expect(device.provisioningStatus == .pending && device.certificateExpiresAt != nil)

            // The same token again (a replay, or a second box given the same token) gets nothing.
            let before = try await api.snapshot()
            let replay = try await api.call(.post, "\(Self.v1)/enroll", json: request)
            api.document.expectError(replay, 401, mentioning: ["token"])
            let mistyped = try await api.call(
                .post, "\(Self.v1)/enroll",
                json: EnrollmentRequest(token: created.provisioningToken + "x", csr: request.csr))
            api.document.expectError(mistyped, 401, mentioning: ["token"])
            #expect(try await api.snapshot() == before, "refused enrollments change nothing")

            // An expired token: a fresh one, aged past its expiry.
            let again = try await api.call(
                .post, "\(Self.v1)/devices/\(created.device.id)/provisioning-token", as: api.ops
            ).decode(DeviceCreated.self)
            try await api.database.query(
                "UPDATE devices SET token_expires_at = \(Int64(Date().timeIntervalSince1970 * 1000) - 1) WHERE id = \(created.device.id)"
            )
            let expired = try await api.call(
                .post, "\(Self.v1)/enroll", json: EnrollmentRequest(token: again.provisioningToken, csr: request.csr))
            api.document.expectError(expired, 401, mentioning: ["expired"])

            // Enrollment is audited under the device's name.
            let audit = try await api.store.auditLog(limit: 20, cursor: nil).items
            #expect(audit.contains { $0.actor == "device:\(created.device.id)" && $0.action == "enrollDevice" })
        }
    }

    @Test("a CSR that is not one, or is too big, is refused and the token stays usable", arguments: [Engine.sqlite])
    func badCSRKeepsToken(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let created = try await api.store.createDevice(NewDevice(name: "edge"))
            let garbage = try await api.call(
                .post, "\(Self.v1)/enroll",
                json: EnrollmentRequest(
                    token: created.provisioningToken, csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA"))
            api.document.expectError(garbage, 422, mentioning: ["csr"])
            let huge = try await api.call(
                .post, "\(Self.v1)/enroll",
                json: EnrollmentRequest(
                    token: created.provisioningToken, csr: String(repeating: "A", count: 20_000)), documented: false)
            api.document.expectError(huge, 400, mentioning: ["csr"])
            let link = try await api.enroll(token: created.provisioningToken)
            #expect(link.identity.deviceID == created.device.id, "the token still enrolls after refused attempts")
        }
    }

    @Test("revoking a device refuses its very next request, even on an open connection", arguments: Engine.allCases)
    func revocationCutsOff(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let (device, credential) = try await api.makeDevice("edge")
            let heartbeat = "\(Self.v1)/devices/\(device.id)/heartbeat"
            let alive = try await api.call(.post, heartbeat, as: credential, json: Heartbeat(softwareVersion: "1"))
            #expect(alive.status == 200, "\(alive)")

            let revoked = try await api.call(.post, "\(Self.v1)/devices/\(device.id)/revoke", as: api.ops)
                .decode(Device.self)
            #expect(revoked.certificateExpiresAt == nil && revoked.provisioningStatus == .awaitingProvisioning)
            let refused = try await api.call(.post, heartbeat, as: credential, json: Heartbeat(softwareVersion: "1"))
            api.document.expectError(refused, 401, mentioning: ["revoked"])
            let state = try await api.call(.get, "\(Self.v1)/devices/\(device.id)/desired-state", as: credential)
            #expect(state.status == 401, "\(state)")

            // A new token enrolls it again, with a new certificate; the old one stays dead.
            let token = try await api.store.newProvisioningToken(device: device.id).provisioningToken
            let renewed = Credential.device(try await api.enroll(token: token))
            let back = try await api.call(.post, heartbeat, as: renewed, json: Heartbeat(softwareVersion: "2"))
            #expect(back.status == 200, "\(back)")
            let old = try await api.call(.post, heartbeat, as: credential, json: Heartbeat(softwareVersion: "1"))
            #expect(old.status == 401, "\(old)")
        }
    }

    @Test("enrolling again replaces the device's certificate: a cloned box with the old one is refused")
    func reenrollmentRevokesTheOldCertificate() async throws {
        try await APIHarness.run(on: .sqlite) { api in
            let (device, first) = try await api.makeDevice("edge")
            let token = try await api.store.newProvisioningToken(device: device.id).provisioningToken
            let second = Credential.device(try await api.enroll(token: token))
            let path = "\(Self.v1)/devices/\(device.id)/heartbeat"
            #expect(try await api.call(.post, path, as: second, json: Heartbeat()).status == 200)
            #expect(try await api.call(.post, path, as: first, json: Heartbeat()).status == 401)
        }
    }

    @Test("a device renews its certificate with a new key; the old one works one more day, then not")
    func renewal() async throws {
        try await APIHarness.run(on: .sqlite) { api in
            let (device, credential) = try await api.makeDevice("edge")
            let link = try #require(credential.link)
            let old = link.identity
            let folder = api.folder.appending(path: "identity")
            try old.save(to: folder)
            let renewed = try await link.renewCertificate(savingTo: folder)
            #expect(renewed.keyPEM != old.keyPEM && renewed.certificatePEM != old.certificatePEM, "a new key")
            let saved = try #require(try DeviceIdentity.load(from: folder))
            #expect(saved.keyPEM == renewed.keyPEM && saved.certificatePEM == renewed.certificatePEM)
            #expect(!FileManager.default.fileExists(atPath: folder.path + ".new"), "the old identity is gone")
            let path = "\(Self.v1)/devices/\(device.id)/heartbeat"
            #expect(try await api.call(.post, path, as: credential, json: Heartbeat()).status == 200)

            // The old certificate keeps working for a day (the answer may have been lost), then no more.
            let oldLink = try DeviceLink(identity: old)
            let withOld = Credential.device(oldLink)
            #expect(try await api.call(.post, path, as: withOld, json: Heartbeat()).status == 200)
            // A day later: the old certificate (the one ending within a day and a minute) has ended.
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            try await api.database.query(
                "UPDATE device_certificates SET not_after = \(now - 1000) WHERE not_after < \(now + 86_460_000)")
            api.store.forgetAuthenticatedCertificates()
            #expect(try await api.call(.post, path, as: withOld, json: Heartbeat()).status == 401)
            #expect(try await api.call(.post, path, as: credential, json: Heartbeat()).status == 200)
            await oldLink.shutdown()
        }
    }

    @Test("the desired-state long poll waits for a change; operators' changes wake it, devices' telemetry does not")
    func longPoll() async throws {
        try await APIHarness.run(on: .sqlite) { api in
            let (device, credential) = try await api.makeDevice("edge")
            let path = "\(Self.v1)/devices/\(device.id)/desired-state"
            let etag = try #require(try await api.call(.get, path, as: credential).headers[.eTag])
            let started = ContinuousClock.now
            let unchanged = try await api.call(.get, path + "?wait=1", as: credential, headers: [.ifNoneMatch: etag])
            #expect(unchanged.status == 304 && ContinuousClock.now - started >= .milliseconds(900), "\(unchanged)")

            let generation = api.store.changes.generation
            _ = try await api.call(
                .post, "\(Self.v1)/devices/\(device.id)/heartbeat", as: credential, json: Heartbeat())
            _ = try await api.call(
                .post, "\(Self.v1)/devices/\(device.id)/events", as: credential,
                json: EventBatch(events: [NewEvent(type: "ping")]))
            #expect(api.store.changes.generation == generation, "device telemetry wakes nobody")
            _ = try await api.call(
                .patch, "\(Self.v1)/devices/\(device.id)", as: api.ops, json: DeviceUpdate(description: "x"))
            #expect(api.store.changes.generation > generation, "an operator's change wakes waiting devices")
        }
    }

    @Test("a deleted device's certificate is refused")
    func deletedDeviceIsRefused() async throws {
        try await APIHarness.run(on: .sqlite) { api in
            let (device, credential) = try await api.makeDevice("edge")
            #expect(try await api.call(.delete, "\(Self.v1)/devices/\(device.id)", as: api.ops).status == 204)
            let refused = try await api.call(
                .post, "\(Self.v1)/devices/\(device.id)/heartbeat", as: credential, json: Heartbeat())
            #expect(refused.status == 401, "\(refused)")
        }
    }

    @Test("a certificate from another CA fails the TLS handshake")
    func foreignCertificateIsRefused() async throws {
        try await APIHarness.run(on: .sqlite) { api in
            let (device, real) = try await api.makeDevice("edge")
            // A CA of the attacker's own, signing a certificate that names the device.
            let otherPlane = try await Self.foreignEnrollment(deviceName: "edge")
            let forged = DeviceIdentity(
                deviceID: device.id, server: real.link!.identity.server, keyPEM: otherPlane.key,
                certificatePEM: otherPlane.certificate, caPEM: real.link!.identity.caPEM)
            let link = try DeviceLink(identity: forged)
            defer { Task { await link.shutdown() } }
            await #expect(throws: LinkError.self) {
                _ = try await link.send("POST", "\(Self.v1)/devices/\(device.id)/heartbeat", body: Array("{}".utf8))
            }
        }
    }

    /// A device certificate issued by another control plane's CA.
    static func foreignEnrollment(deviceName: String) async throws -> (key: String, certificate: String) {
        let result = Mutex<(key: String, certificate: String)?>(nil)
        try await APIHarness.run(on: .sqlite) { other in
            let created = try await other.store.createDevice(NewDevice(name: deviceName))
            let key = DeviceIdentity.makeKeyPEM()
            let enrollment = try await other.store.enroll(
                EnrollmentRequest(token: created.provisioningToken, csr: try DeviceIdentity.csrPEM(keyPEM: key)))
            result.withLock { $0 = (key, enrollment.certificate) }
        }
        return try #require(result.withLock { $0 })
    }

    @Test("one device can never read or change another's state, artifacts or events", arguments: Engine.allCases)
    func devicesAreIsolated(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let (first, _) = try await api.makeDevice("edge-one")
            let (_, second) = try await api.makeDevice("edge-two")
            let before = try await api.snapshot()
            for operation in api.document.operations where operation.role == "device" {
                let path = operation.path(["id": first.id, "digest": "sha256:" + String(repeating: "0", count: 64)])
                let body: (any Encodable & Sendable)? =
                    switch operation.id {
                    case "sendHeartbeat": Heartbeat(softwareVersion: "spoof")
                    case "sendEvents": EventBatch(events: [NewEvent(type: "spoofed")])
                    case "reportInstanceStatus": InstanceReport(status: .deploymentFailed)
                    default: nil
                    }
                let response = try await api.call(operation.method, path, as: second, json: body)
                #expect([403, 404].contains(response.status), "\(operation.id) for another device: \(response)")
            }
            #expect(try await api.snapshot() == before, "nothing of edge-one changed")
        }
    }

    @Test("vantage agent's enrollment checks the server's CA fingerprint before sending the token")
    func agentEnrollmentPinsTheCA() async throws {
        try await APIHarness.run(on: .sqlite) { api in
            let created = try await api.store.createDevice(NewDevice(name: "edge"))
            let folder = api.folder.appending(path: "agent")
            let server = URL(string: "https://127.0.0.1:\(api.devicePort)")!
            let wrong = "sha256:" + String(repeating: "ab", count: 32)
            await #expect {
                _ = try await Enroller.enroll(
                    server: server, token: created.provisioningToken, trust: .fingerprint(wrong), folder: folder,
                    logger: APIHarness.logger)
            } throws: { error in
                "\(error)".contains("not the server")
            }
            // The token was not sent: it still works, through the real enrollment call.
            let identity = try await Enroller.enroll(
                server: server, token: created.provisioningToken, trust: .fingerprint(created.caFingerprint),
                folder: folder, logger: APIHarness.logger)
            #expect(identity.deviceID == created.device.id)
            let saved = try #require(try DeviceIdentity.load(from: folder))
            #expect(saved.deviceID == created.device.id && saved.certificatePEM == identity.certificatePEM)
            let mode =
                try FileManager.default.attributesOfItem(atPath: folder.appending(path: "device.key").path)[
                    .posixPermissions] as? Int
            #expect(mode == 0o600, "the private key is readable by its owner only")
            let link = try DeviceLink(identity: saved)
            let state = try await link.desiredState(etag: nil)
            await link.shutdown()
            #expect(state?.state.deviceId == created.device.id)
        }
    }
}
