import ArgumentParser
import Foundation
import Logging
import VantageAgent

/// `vantage agent enroll`: enrolls this machine now, writes the agent's settings and starts its service.
struct AgentEnroll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Enroll this machine with a Vantage server, write the agent's settings and start its service.",
        discussion: """
            Enrolls as the agent's first start does: makes the device's private key (in DIR/identity, mode 0600, \
            never sent), checks that the server's CA is the one `vantage devices create` printed (--ca-hash) and \
            exchanges the one-time token for the device's certificate. Nothing is written when that fails (an \
            unreachable server, another CA, a used or expired token): the message says which.

            Then it writes the agent's settings (--config FILE): the flags already in VANTAGE_AGENT_ARGS stay, \
            the enrollment flags go (the token is spent; the server and CA are kept in the identity, and noted in \
            a comment). Run as root, it gives DIR to the `vantage` user the service runs as, and where systemd \
            runs it enables and (re)starts vantage-agent; elsewhere, or with --no-start, it prints the command \
            that starts the agent.

            Run as root where the Debian package is installed, DIR is /var/lib/vantage/agent and FILE \
            /etc/vantage/agent.env (the service's own); otherwise DIR is ./vantage-agent-data and no settings file \
            is written unless --config names one. A device that has enrolled already is refused: --force enrolls \
            it again with a new key and certificate (a new identity, replacing the old one when the enrollment \
            succeeds), for a reinstalled box or a token from `vantage devices token DEVICE`.

              sudo vantage agent enroll --server https://vantage.example:8443 --token vd_… --ca-hash sha256:…
              vantage agent enroll --data ./edge --server https://10.0.0.5:8443 --token vd_… --ca-file ca.pem
              sudo vantage agent enroll --force --server https://vantage.example:8443 --token vd_… --ca-hash sha256:…
            """)

    @Option(
        help: ArgumentHelp("The server's device endpoint: https://HOST:PORT (port 8443 by default).", valueName: "URL"))
    var server: String

    @Option(help: ArgumentHelp("The device's one-time provisioning token (vd_…).", valueName: "TOKEN"))
    var token: String

    @Option(
        help: ArgumentHelp(
            "The server CA's fingerprint (sha256:…), checked before the token is sent.", valueName: "FINGERPRINT"))
    var caHash: String?

    @Option(help: ArgumentHelp("The server's CA certificate (PEM), instead of --ca-hash.", valueName: "FILE"))
    var caFile: String?

    @Option(
        help: ArgumentHelp(
            "Where the agent keeps its identity (default /var/lib/vantage/agent for the packaged service, else "
                + "./vantage-agent-data).", valueName: "DIR"))
    var data: String?

    @Option(
        help: ArgumentHelp(
            "The agent's settings file to write (default /etc/vantage/agent.env for the packaged service, else none).",
            valueName: "FILE"))
    var config: String?

    @Flag(help: "Do not enable or start the vantage-agent service; print the command that starts the agent instead.")
    var noStart = false

    @Flag(help: "Enroll again although DIR holds an identity: a new key and certificate replace it.")
    var force = false

    func validate() throws {
        guard (caHash == nil) != (caFile == nil) else {
            throw ValidationError(
                "give either --ca-hash sha256:… (printed by vantage devices create) or --ca-file CA.pem, so the agent knows it talks to your server"
            )
        }
        guard let url = URL(string: server), url.scheme == "https", url.host != nil else {
            throw ValidationError(
                "--server \(server) must be the server's device endpoint, https://HOST:PORT (vantage server prints it; port 8443 by default)"
            )
        }
    }

    func run() async throws {
        do {
            try await enroll()
        } catch let error as SetupError {
            throw serverFailure(error)
        } catch let error as AgentError {
            throw serverFailure(error)
        }
    }

    private func enroll() async throws {
        let setup = ServiceSetup(role: "agent")
        let dataPath = data ?? (setup.packaged ? setup.packagedData : "vantage-agent-data")
        let configPath = config ?? (setup.packaged ? setup.packagedConfig : nil)
        let dataFolder = URL(filePath: dataPath)
        let identityFolder = dataFolder.appending(path: "identity")
        if let enrolled = try? DeviceIdentity.load(from: identityFolder), !force {
            throw SetupError(
                "\(dataPath) holds the identity of device \(enrolled.deviceID) of \(enrolled.server.absoluteString) already; nothing was changed. To enroll this machine again (a new key and certificate, replacing that identity), add --force"
            )
        }
        // Everything that could fail afterwards is checked before the token is spent.
        var settings = try configPath.map { try EnvironmentFile(path: $0) }
        if let settings, !settings.writable {
            throw SetupError("cannot write \(settings.path): run this as root (sudo), or give another --config FILE")
        }
        guard let trust = Enroller.Trust.given(caFile: caFile, caHash: caHash) else {
            throw SetupError("cannot read --ca-file \(caFile ?? "")")
        }

        // Enrolled into a folder of its own, which becomes DIR/identity only once the server has answered: a
        // failure leaves nothing behind, and a forced enrollment that fails keeps the old identity.
        let manager = FileManager.default
        let madeData = !manager.fileExists(atPath: dataPath)
        let staged = dataFolder.appending(path: "identity.enrolling")
        try? manager.removeItem(at: staged)
        var logger = Logger(label: "vantage.agent.enroll")
        logger.logLevel = .warning
        let identity: DeviceIdentity
        do {
            identity = try await Enroller.enroll(
                server: URL(string: server)!, token: token, trust: trust, folder: staged, logger: logger)
        } catch {
            try? manager.removeItem(at: madeData ? dataFolder : staged)
            throw error
        }
        try? manager.removeItem(at: identityFolder)
        do {
            try manager.moveItem(at: staged, to: identityFolder)
        } catch {
            throw SetupError(
                "enrolled as device \(identity.deviceID), but cannot move the identity from \(staged.path) to \(identityFolder.path): \(error.localizedDescription)"
            )
        }
        let fingerprint = (try? DeviceIdentity.fingerprint(pem: identity.caPEM)) ?? "?"
        printNow("enrolled as device \(identity.deviceID) of \(server) (CA \(fingerprint))")

        var owner = ""
        if let user = setup.serviceUser {
            chmod(dataPath, 0o750)
            try ServiceSetup.chown(dataFolder, to: user, recursive: false)
            try ServiceSetup.chown(identityFolder, to: user, recursive: true)
            owner = ", owned by the vantage user"
        }
        printNow("identity: \(identityFolder.path) (key mode 0600\(owner))")

        var flags: [String] = []
        if var file = settings {
            flags = FlagList.removing(
                ["--server", "--token", "--ca-hash", "--ca-file"],
                from: FlagList.split(file.value("VANTAGE_AGENT_ARGS") ?? ""))
            if !file.existed {
                file.append("# Settings of vantage agent (vantage agent run --help lists its flags).")
            }
            let date = ISO8601DateFormatter().string(from: Date())
            file.setComment(
                startingWith: "# Enrolled ",
                "# Enrolled \(date) by vantage agent enroll as device \(identity.deviceID) of \(server) (CA \(fingerprint)); the identity is in \(identityFolder.path).",
                before: "VANTAGE_AGENT_ARGS")
            file.set("VANTAGE_AGENT_ARGS", flags.joined(separator: " "))
            try file.write()
            settings = file
            printNow("settings: \(file.path) (VANTAGE_AGENT_ARGS=\"\(flags.joined(separator: " "))\"; no token)")
        }

        let command = (["vantage", "agent", "--data", dataPath] + flags).joined(separator: " ")
        if setup.unitUses(data: dataPath, config: configPath) {
            if setup.systemdRuns && !noStart {
                try ServiceSetup.systemctl(["enable", "--quiet", setup.unit])
                // A restart: a forced re-enrollment replaces the identity of an agent that may be running.
                try ServiceSetup.systemctl(["restart", setup.unit])
                printNow("\(setup.unit) is enabled and running: journalctl -u \(setup.unit) -f")
            } else {
                printNow("start the agent with: systemctl enable --now \(setup.unit)")
            }
        } else {
            printNow("start the agent with: \(command)")
        }
    }
}

extension Enroller.Trust {
    /// The server's CA as the enrolling flags give it: --ca-file's certificate, else --ca-hash's fingerprint; nil when
    /// the file cannot be read (validation made sure one of the two is given).
    static func given(caFile: String?, caHash: String?) -> Enroller.Trust? {
        guard let caFile else { return .fingerprint(caHash ?? "") }
        guard let pem = FileManager.default.contents(atPath: caFile) else { return nil }
        return .certificate(String(decoding: pem, as: UTF8.self))
    }
}
