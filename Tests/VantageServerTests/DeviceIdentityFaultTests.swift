// Issue 17, faults 6 and 9, with a real `vantage server` and real `vantage agent` processes: a box offline past its
// certificate's end renews by itself within the grace window (audited) or, past it, says what to do; a device
// certificate used from two boxes at once is flagged (device condition, audit record, console, CLI), a restart is
// not, and revoking cuts both off. Certificates here last seconds (`--device-certificate-lifetime-seconds`).
import Foundation
import Testing
import VantageAPI
import VantageAgent
import VantageClient

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite("Device identity faults: expired certificates, cloned boxes", .serialized, .timeLimit(.minutes(10)))
struct DeviceIdentityFaultTests {
    @Test("an agent offline past its certificate's end renews it by itself when it comes back, audited")
    func offlinePastExpiryRenewsOnReturn() async throws {
        let fleet = try await IdentityFleet.start(["--device-certificate-lifetime-seconds", "12"])
        defer { fleet.stop() }
        let created = try await fleet.client.createDevice(NewDevice(name: "dock"))
        let id = created.device.id
        var agent = try fleet.startAgent("dock", enrolling: created)
        defer { agent.stop() }
        _ = try await fleet.waitForDevice(id, "its first heartbeat", agent) { $0.lastHeartbeat != nil }

        let rounds = Soak.isOn ? Int.max : 1
        let deadline = Date().addingTimeInterval(Soak.seconds ?? 0)
        var runs = 0
        var invariants = 0
        var failures = 0
        repeat {
            runs += 1
            // Offline (the agent stopped) across the certificate's end.
            let ends = try #require(try await fleet.client.device(id).certificateExpiresAt)
            agent.stop()
            try await Task.sleep(for: .seconds(max(0, ends.timeIntervalSinceNow) + 1.5))
            let expired = try await fleet.client.device(id)
            let condition = expired.conditions?.first { $0.kind == .certificateExpired }
            #expect(condition?.message.contains("renews it by itself") == true, "\(expired)")
            if condition == nil { failures += 1 }

            let back = Date()
            agent = try fleet.startAgent("dock")
            let renewed = try await fleet.waitForDevice(id, "a heartbeat after the agent came back", agent) {
                ($0.lastHeartbeat ?? .distantPast) > back && ($0.certificateExpiresAt ?? .distantPast) > back
            }
            #expect(renewed.conditions == nil, "renewed: nothing left to look at (\(renewed))")
            let audit = try await fleet.client.auditLog(limit: 100).items
            let records = audit.filter { $0.action == "renewCertificateAfterExpiry" && $0.actor == "device:\(id)" }
            #expect(records.count >= runs, "\(audit)")
            #expect(records.first?.detail?.contains("certificate renewed after expiry") == true)
            #expect(agent.output.contains("certificate renewed after it expired"), "\(agent.output.suffix(3000))")
            #expect(!agent.output.contains("refuses this device"), "no refusal on the way back")
            if records.count < runs { failures += 1 }
            invariants += 4
        } while runs < rounds && Date() < deadline
        Soak.record(
            fault: "offline past certificate expiry", runs: runs, faults: runs, invariants: invariants,
            failures: failures, note: "12 s certificates; agent stopped across the end, then restarted")
    }

    @Test("past the renewal window the agent and `vantage devices show` say what to do, once, without looping")
    func pastTheWindowSaysWhatToDo() async throws {
        let fleet = try await IdentityFleet.start([
            "--device-certificate-lifetime-seconds", "6", "--expired-renewal-days", "0",
        ])
        defer { fleet.stop() }
        let created = try await fleet.client.createDevice(NewDevice(name: "yard"))
        let id = created.device.id
        var agent = try fleet.startAgent("yard", enrolling: created)
        defer { agent.stop() }
        let first = try await fleet.waitForDevice(id, "its first heartbeat", agent) { $0.lastHeartbeat != nil }
        agent.stop()
        let ends = try #require(first.certificateExpiresAt)
        try await Task.sleep(for: .seconds(max(0, ends.timeIntervalSinceNow) + 1.5))

        agent = try fleet.startAgent("yard")
        try await waitFor("the agent to log the refused renewal", within: .seconds(60), agent) {
            agent.output.contains("certificate renewal refused")
        }
        // Heartbeats every second and polls keep meeting the refusal: it is logged once, not once per try.
        try await Task.sleep(for: .seconds(6))
        let output = agent.output
        #expect(agent.isRunning, "the agent keeps running (its applications too)")
        #expect(output.contains("past the renewal window"), "\(output.suffix(3000))")
        #expect(output.contains("vantage devices token \(id)"), "\(output.suffix(3000))")
        let mentions = output.components(separatedBy: "past the renewal window").count - 1
        #expect((1...3).contains(mentions), "logged once per place, not per retry: \(mentions)\n\(output)")

        let show = try await fleet.cli(["devices", "show", id])
        #expect(show.status == 0, "\(show.output)")
        #expect(show.output.contains("CERTIFICATE_EXPIRED"), "\(show.output)")
        #expect(show.output.contains("past the renewal window"), "\(show.output)")
        #expect(show.output.contains("vantage devices token \(id)"), "\(show.output)")
        #expect(show.output.contains("vantage agent enroll --force"), "\(show.output)")
        let audit = try await fleet.client.auditLog(limit: 100).items
        #expect(!audit.contains { $0.action == "renewCertificateAfterExpiry" }, "nothing was renewed")
        Soak.record(
            fault: "offline past the renewal window", runs: 1, faults: 1, invariants: 6,
            failures: mentions == 0 || mentions > 3 ? 1 : 0, note: "--expired-renewal-days 0")
    }

    @Test("two agents with copies of one identity are flagged and revoking cuts both off; a restart is not flagged")
    func clonedIdentityIsFlagged() async throws {
        let fleet = try await IdentityFleet.start([])
        defer { fleet.stop() }
        let created = try await fleet.client.createDevice(NewDevice(name: "gate"))
        let id = created.device.id
        var agent = try fleet.startAgent("gate", enrolling: created)
        defer { agent.stop() }
        _ = try await fleet.waitForDevice(id, "its first heartbeat", agent) { $0.lastHeartbeat != nil }

        // Restarts (a new agent process each time, the old one gone) are not a clone.
        var invariants = 0
        var failures = 0
        let restarts = Soak.isOn ? Int.max : 2
        let deadline = Date().addingTimeInterval((Soak.seconds ?? 0) / 2)
        var restarted = 0
        repeat {
            restarted += 1
            if restarted % 2 == 0 {
                agent.stop()
            } else {
                kill(agent.processIdentifier, SIGKILL)
                _ = try await agent.waitForExit(timeout: .seconds(30))
            }
            let back = Date()
            agent = try fleet.startAgent("gate")
            // A few heartbeats of the new process (one a second).
            _ = try await fleet.waitForDevice(id, "heartbeats after restart \(restarted)", agent) {
                ($0.lastHeartbeat ?? .distantPast) > back.addingTimeInterval(4)
            }
            let device = try await fleet.client.device(id)
            #expect(device.conditions == nil, "restart \(restarted) is not a clone: \(device)")
            if device.conditions != nil { failures += 1 }
            invariants += 1
        } while restarted < restarts && (!Soak.isOn || Date() < deadline)

        // A copy of the box: the same identity folder, a second agent at once.
        let copy = fleet.agentFolder("gate-copy")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: fleet.agentFolder("gate").appending(path: "identity"), to: copy.appending(path: "identity"))
        let clone = try fleet.startAgent("gate-copy")
        defer { clone.stop() }
        let started = Date()
        let flagged = try await fleet.waitForDevice(id, "the cloned-certificate condition", clone) {
            $0.conditions?.contains { $0.kind == .certificateCloned } == true
        }
        let detectedIn = Date().timeIntervalSince(started)
        #expect(detectedIn < 300, "flagged within five minutes (\(Int(detectedIn)) s)")
        let condition = try #require(flagged.conditions?.first { $0.kind == .certificateCloned })
        #expect(condition.message.contains("vantage devices revoke \(id)"), "\(condition.message)")
        let audit = try await fleet.client.auditLog(limit: 100).items
        #expect(
            audit.filter { $0.action == "deviceCertificateCloned" && $0.target == "/api/v1/devices/\(id)" }.count == 1,
            "one audit record: \(audit)")
        let show = try await fleet.cli(["devices", "show", id])
        #expect(show.output.contains("CERTIFICATE_CLONED"), "\(show.output)")
        let page = try await fleet.console("/devices/\(id)")
        #expect(page.contains("condition-CERTIFICATE_CLONED") && page.contains("cloned certificate"), "\(page)")
        invariants += 4

        // The operator cuts them off: both agents' requests are refused from then on.
        _ = try await fleet.client.revokeDevice(id)
        for process in [agent, clone] {
            try await waitFor("\(process.name) to be refused", within: .seconds(60), process) {
                process.output.contains("is revoked or was replaced")
            }
        }
        let cut = try await fleet.client.device(id).lastHeartbeat
        try await Task.sleep(for: .seconds(4))
        #expect(try await fleet.client.device(id).lastHeartbeat == cut, "no heartbeat gets through after revoking")
        invariants += 3
        Soak.record(
            fault: "cloned appliance", runs: restarted + 1, faults: 1, invariants: invariants, failures: failures,
            note: "\(restarted) restarts not flagged; clone flagged in \(Int(detectedIn)) s; revoke cut both off")
    }
}

/// Waits for `condition`, checking every 200 ms; the error shows `process`'s output.
private func waitFor(
    _ what: String, within timeout: Duration, _ process: ServerProcess, _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        guard process.isRunning else { break }
        try await Task.sleep(for: .milliseconds(200))
    }
    throw APITestError(
        "no \(what) within \(timeout), or it exited; \(process.name) printed:\n\(process.output.suffix(4000))")
}

/// A `vantage server` process with its own data folder and flags, and agents started beside it.
private final class IdentityFleet: @unchecked Sendable {
    // Unchecked: used by one test at a time.
    let folder: URL
    let server: ServerProcess
    let url: URL
    let token: String
    let client: ServerClient
    let devicePort: Int

    private init(folder: URL, server: ServerProcess, url: URL, token: String, devicePort: Int) {
        self.folder = folder
        self.server = server
        self.url = url
        self.token = token
        self.devicePort = devicePort
        client = ServerClient(baseURL: url, token: token)
    }

    static func start(_ flags: [String]) async throws -> IdentityFleet {
        let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-identity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let devicePort = try closedPort()
        let server = try ServerProcess(
            try ServerProcess.binary(),
            [
                "server", "--listen", "127.0.0.1:\(try closedPort())", "--device-listen", "127.0.0.1:\(devicePort)",
                "--data", folder.appending(path: "server").path, "--log-level", "warning",
            ] + flags, name: "server")
        let url = try await server.waitUntilListening()
        _ = try await server.deviceEndpoint()
        guard let token = server.adminToken else { throw APITestError("no admin token:\n\(server.output)") }
        return IdentityFleet(folder: folder, server: server, url: url, token: token, devicePort: devicePort)
    }

    func stop() {
        server.stop()
        try? FileManager.default.removeItem(at: folder)
    }

    func agentFolder(_ name: String) -> URL { folder.appending(path: "agent-\(name)") }

    /// Starts an agent in folder `name`: enrolling with `created`'s token, or from the identity saved there. It
    /// renews only about when the certificate ends (`--renew-within-days 0.00001`: a second before), so that one
    /// stopped across the end comes back with an expired certificate, as a box that was offline would.
    func startAgent(_ name: String, enrolling created: DeviceCreated? = nil) throws -> ServerProcess {
        var arguments = [
            "agent", "--data", agentFolder(name).path, "--heartbeat-seconds", "1", "--poll-seconds", "5",
            "--max-backoff-seconds", "2", "--renew-within-days", "0.00001", "--metrics-listen",
            "127.0.0.1:\(try closedPort())",
        ]
        if let created {
            arguments += [
                "--server", "https://127.0.0.1:\(devicePort)", "--token", created.provisioningToken, "--ca-hash",
                created.caFingerprint,
            ]
        }
        return try ServerProcess(try ServerProcess.binary(), arguments, name: "agent \(name)")
    }

    /// Polls the device until `condition` holds (deadline 90 s); the error shows `process`'s output.
    func waitForDevice(
        _ id: String, _ what: String, _ process: ServerProcess, _ condition: (Device) -> Bool
    ) async throws -> Device {
        let deadline = ContinuousClock.now + .seconds(90)
        var last: Device?
        while ContinuousClock.now < deadline {
            let device = try await client.device(id)
            if condition(device) { return device }
            last = device
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw APITestError(
            "no \(what) within 90 s, or \(process.name) exited (device: \(String(describing: last))); \(process.name) printed:\n\(process.output.suffix(4000))"
        )
    }

    /// `vantage ARGUMENTS` against this server, as an operator runs it.
    func cli(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await TestProcess.run(
            [try ServerProcess.binary().path] + arguments + ["--server", url.absoluteString, "--token", token],
            environment: ["VANTAGE_CONFIG": folder.appending(path: "cli.json").path])
    }

    /// A console page, as the admin sees it.
    func console(_ path: String) async throws -> String {
        var request = URLRequest(url: URL(string: url.absoluteString.trimmingSuffix("/") + path)!)
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (data, _) = try await URLSession.shared.data(for: request)
        return String(decoding: data, as: UTF8.self)
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}

@Suite("Cloned device certificates: agent sessions")
struct AgentSessionTests {
    @Test(
        "sessions taking turns flag the device once (condition, audit); a restart and a stray late heartbeat do not",
        arguments: Engine.allCases)
    func sessionsTakingTurnsAreAClone(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let (device, credential) = try await api.makeDevice("edge")
            let path = "/api/v1/devices/\(device.id)/heartbeat"
            func beat(_ session: String) async throws -> Device {
                let answer = try await api.call(.post, path, as: credential, json: Heartbeat(agentSession: session))
                #expect(answer.status == 200, "\(answer)")
                return try await api.store.device(device.id)
            }
            // A restart (a then b), with the stopped process's last heartbeat arriving late once (a).
            for session in ["as_a", "as_a", "as_b", "as_a", "as_b", "as_b"] {
                #expect(try await beat(session).conditions == nil, "after \(session)")
            }
            // A second box with a copy of the identity: c and b take turns.
            var flagged: Device?
            for session in ["as_c", "as_b", "as_c", "as_b", "as_c"] {
                let now = try await beat(session)
                if now.conditions != nil {
                    flagged = now
                    break
                }
            }
            let condition = try #require(flagged?.conditions?.first)
            #expect(condition.kind == .certificateCloned && condition.message.contains("as_b, as_c"), "\(condition)")
            for session in ["as_b", "as_c"] { _ = try await beat(session) }
            let audit = try await api.store.auditLog(limit: 50, cursor: nil).items
            #expect(audit.filter { $0.action == "deviceCertificateCloned" }.count == 1, "audited once: \(audit)")

            let bad = try await api.call(
                .post, path, as: credential, json: Heartbeat(agentSession: "no spaces"), documented: false)
            api.document.expectError(bad, 400, mentioning: ["agentSession"])

            // Enrolling again (the box the operator keeps) clears it.
            let token = try await api.store.newProvisioningToken(device: device.id).provisioningToken
            _ = try await api.enroll(token: token)
            #expect(try await api.store.device(device.id).conditions == nil)
        }
    }
}

@Suite("Expired device certificates: the renewal grace window")
struct ExpiredCertificateTests {
    @Test(
        "an expired current certificate may only renew itself (audited); a replaced one, or one past the window, not",
        arguments: Engine.allCases)
    func expiredCertificateOnlyRenews(engine: Engine) async throws {
        try await APIHarness.run(on: engine, configure: { $0.deviceCertificateLifetime = .seconds(3) }) { api in
            let (device, credential) = try await api.makeDevice("edge")
            let link = try #require(credential.link)
            let old = link.identity
            let ends = try #require(old.certificateExpiresAt)
            try await Task.sleep(for: .seconds(max(0, ends.timeIntervalSinceNow) + 0.5))

            let heartbeat = "/api/v1/devices/\(device.id)/heartbeat"
            let refused = try await api.call(.post, heartbeat, as: credential, json: Heartbeat())
            api.document.expectError(refused, 401, mentioning: ["expired", "renew"])
            let state = try await api.call(.get, "/api/v1/devices/\(device.id)/desired-state", as: credential)
            #expect(state.status == 401, "\(state)")
            let shown = try await api.store.device(device.id)
            #expect(shown.conditions?.first?.kind == .certificateExpired, "\(shown)")

            let folder = api.folder.appending(path: "identity")
            try old.save(to: folder)
            let renewed = try await link.renewCertificate(savingTo: folder)
            #expect(try await api.call(.post, heartbeat, as: credential, json: Heartbeat()).status == 200)
            #expect(renewed.keyPEM != old.keyPEM, "a new key")
            let audit = try await api.store.auditLog(limit: 20, cursor: nil).items
            #expect(audit.contains { $0.action == "renewCertificateAfterExpiry" && $0.actor == "device:\(device.id)" })

            // The expired certificate was replaced: it renews nothing any more.
            let oldLink = try DeviceLink(identity: old)
            await #expect(throws: LinkError.self) { try await oldLink.renewCertificate(savingTo: folder) }
            await oldLink.shutdown()
            #expect(try DeviceIdentity.load(from: folder)?.certificatePEM == renewed.certificatePEM, "kept")
        }
        try await APIHarness.run(
            on: engine,
            configure: {
                $0.deviceCertificateLifetime = .seconds(2)
                $0.expiredRenewalWindow = .zero
            }
        ) { api in
            let (device, credential) = try await api.makeDevice("edge")
            let link = try #require(credential.link)
            let ends = try #require(link.identity.certificateExpiresAt)
            try await Task.sleep(for: .seconds(max(0, ends.timeIntervalSinceNow) + 0.5))
            let renewal = try await api.call(
                .post, "/api/v1/devices/\(device.id)/certificate", as: credential,
                json: CertificateRenewal(csr: try DeviceIdentity.csrPEM(keyPEM: DeviceIdentity.makeKeyPEM())))
            api.document.expectError(
                renewal, 401, mentioning: ["past the renewal window", "vantage devices token \(device.id)"])
            let shown = try await api.store.device(device.id)
            #expect(shown.conditions?.first?.message.contains("vantage agent enroll --force") == true, "\(shown)")
        }
    }
}
