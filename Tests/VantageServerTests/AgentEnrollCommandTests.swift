// `vantage agent enroll` end to end: a real `vantage server` process (the agent end-to-end tests' Fleet), the real
// `vantage` binary enrolling into a temporary data folder and settings file, then a real `vantage agent` started with
// that folder and the settings file's flags, seen online by the server.
import Foundation
import Testing
import VantageAPI
import VantageAgent
import VantageClient

@Suite("vantage agent enroll")
struct AgentEnrollCommandTests {
    /// The packaged agent.env as an operator filled it in before `vantage agent enroll` existed (enrollment flags
    /// by hand, beside other flags): the file's shape is packaging/agent.env's, its old instructions' flags.
    static func handEditedSettings(metricsPort: Int) throws -> String {
        let packaged = try String(
            contentsOf: SourceTree.root.appending(path: "packaging/agent.env"), encoding: .utf8)
        let flags =
            "--server https://old.example:8443 --token vd_handwritten --ca-hash sha256:0000 --heartbeat-seconds 1 "
            + "--poll-seconds 5 --metrics-listen 127.0.0.1:\(metricsPort)"
        return packaged.replacingOccurrences(of: #"VANTAGE_AGENT_ARGS="""#, with: "VANTAGE_AGENT_ARGS=\"\(flags)\"")
    }

    @Test(
        "enroll writes the identity and settings (no token), refuses a wrong CA hash having written nothing, refuses a second enrollment and a spent token, and the agent it sets up comes online"
    )
    func enrollThenRun() async throws {
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        let created = try await fleet.client.createDevice(NewDevice(name: "edge-enroll"))
        let data = fleet.folder.appending(path: "agent-data")
        let settings = fleet.folder.appending(path: "agent.env")
        let metricsPort = try closedPort()
        let handEdited = try Self.handEditedSettings(metricsPort: metricsPort)
        try handEdited.write(to: settings, atomically: true, encoding: .utf8)
        let binary = try ServerProcess.binary().path
        let server = "https://127.0.0.1:\(fleet.devicePort)"
        func enroll(_ extra: [String] = [], caHash: String = created.caFingerprint) async throws -> (
            status: Int32, stdout: String, stderr: String
        ) {
            try await TestProcess.runSeparately(
                [
                    binary, "agent", "enroll", "--data", data.path, "--config", settings.path, "--no-start",
                    "--server", server, "--token", created.provisioningToken, "--ca-hash", caHash,
                ] + extra)
        }

        // Another server's CA: refused before the token is sent, and nothing is written.
        let wrongHash = "sha256:" + String(repeating: "ab", count: 32)
        let wrong = try await enroll(caHash: wrongHash)
        #expect(wrong.status != 0)
        #expect(wrong.stderr.contains("not the server the device was created on"), "\(wrong.stderr)")
        #expect(!FileManager.default.fileExists(atPath: data.path), "no data folder after a refused enrollment")
        #expect(try String(contentsOf: settings, encoding: .utf8) == handEdited, "the settings file is untouched")

        // The right one: identity and settings.
        let enrolled = try await enroll()
        try #require(enrolled.status == 0, "\(enrolled.stdout)\(enrolled.stderr)")
        #expect(enrolled.stdout.contains("enrolled as device \(created.device.id)"), "\(enrolled.stdout)")
        let identity = try #require(try DeviceIdentity.load(from: data.appending(path: "identity")))
        #expect(identity.deviceID == created.device.id)
        let keyMode =
            try FileManager.default.attributesOfItem(
                atPath: data.appending(path: "identity/device.key").path)[.posixPermissions] as? Int
        #expect(keyMode == 0o600)
        let written = try String(contentsOf: settings, encoding: .utf8)
        #expect(
            !written.contains(created.provisioningToken) && !written.contains("vd_handwritten"), "no token:\n\(written)"
        )
        #expect(written.contains(server) && written.contains(created.caFingerprint), "server and CA noted:\n\(written)")
        #expect(written.contains("# Settings of vantage-agent.service"), "the packaged comments stay")
        let args = try #require(EnvironmentValue.read("VANTAGE_AGENT_ARGS", in: written))
        #expect(
            args == "--heartbeat-seconds 1 --poll-seconds 5 --metrics-listen 127.0.0.1:\(metricsPort)",
            "other flags stay, enrollment flags go")
        #expect(enrolled.stdout.contains("start the agent with: vantage agent --data \(data.path) \(args)"))

        // Enrolled already: refused, saying what --force does; and --force with the spent token fails at the
        // server and keeps the identity.
        let certificate = try Data(contentsOf: data.appending(path: "identity/device.crt"))
        let again = try await enroll()
        #expect(again.status != 0)
        #expect(again.stderr.contains("already") && again.stderr.contains("--force"), "\(again.stderr)")
        let forced = try await enroll(["--force"])
        #expect(forced.status != 0)
        #expect(forced.stderr.contains("refused the enrollment (401)"), "\(forced.stderr)")
        #expect(try Data(contentsOf: data.appending(path: "identity/device.crt")) == certificate)
        #expect(!FileManager.default.fileExists(atPath: data.appending(path: "identity.enrolling").path))

        // The agent as the unit starts it: --data and the settings' flags.
        let agent = try ServerProcess(
            ServerProcess.binary(), ["agent", "--data", data.path] + args.split(separator: " ").map(String.init),
            name: "agent")
        defer { agent.stop() }
        do {
            try await fleet.waitUntil("the enrolled device is online", timeout: .seconds(30)) {
                let device = try await fleet.client.device(created.device.id)
                return device.connectionStatus == .online && device.provisioningStatus == .succeeded
            }
        } catch {
            throw APITestError("\(error)\nagent output:\n\(agent.output.suffix(3000))")
        }
    }
}

/// A setting of a systemd environment file, as `EnvironmentFile=` reads it (the last assignment, quotes removed).
enum EnvironmentValue {
    static func read(_ name: String, in text: String) -> String? {
        guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("\(name)=") }) else { return nil }
        var value = line.dropFirst(name.count + 1)
        if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
        return String(value)
    }
}
