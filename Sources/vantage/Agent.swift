import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import VantageAgent
import VantageListeners

/// `vantage agent`: the appliance daemon (`run`, the default, so `vantage agent --data …` runs it) and `enroll`.
struct AgentCommandGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run this machine as a Vantage appliance managed by a Vantage server.",
        discussion: """
            `vantage agent enroll` enrolls the machine and sets up its service; `vantage agent` (`vantage agent \
            run`) is the daemon itself. `vantage agent run --help` lists the daemon's flags.

              sudo vantage agent enroll --server https://vantage.example:8443 --token vd_… --ca-hash sha256:…
              vantage agent --data /var/lib/vantage/agent
            """,
        subcommands: [AgentCommand.self, AgentEnroll.self],
        defaultSubcommand: AgentCommand.self)
}

/// `vantage agent run`: the appliance daemon.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the agent (the default; it enrolls at its first start when given a token).",
        discussion: """
            The first start enrolls the device (or `vantage agent enroll` did): it makes a private key (kept in \
            DIR/identity, never sent), checks that the server is the one the device was created on (--ca-hash, \
            printed by `vantage devices create`), and exchanges the one-time provisioning token for the device's \
            certificate. From then on the agent talks to the server over mutual TLS with that certificate; later \
            starts need only --data.

            The agent runs the application instances the server deploys to the device, with the same runtime as \
            `vantage run`; a new version that does not infer frames, or crashes, is rolled back. Events wait in an \
            on-disk outbox until the server has them, so an outage delays them without losing them. Heartbeats \
            carry CPU, memory, disk, per-camera and per-instance figures.

              vantage agent --server https://vantage.example:8443 --token vd_… --ca-hash sha256:…
              vantage agent --data /var/lib/vantage-agent
            """)

    @Option(help: ArgumentHelp("The server's device endpoint, to enroll: https://HOST:PORT.", valueName: "URL"))
    var server: String?

    @Option(help: ArgumentHelp("The device's one-time provisioning token (vd_…), to enroll.", valueName: "TOKEN"))
    var token: String?

    @Option(
        help: ArgumentHelp(
            "The server CA's fingerprint (sha256:…), checked before the token is sent.", valueName: "FINGERPRINT"))
    var caHash: String?

    @Option(help: ArgumentHelp("The server's CA certificate (PEM), instead of --ca-hash.", valueName: "FILE"))
    var caFile: String?

    @Option(help: ArgumentHelp("Where the agent keeps its identity, deployments and outbox.", valueName: "DIR"))
    var data = "vantage-agent-data"

    @Option(help: ArgumentHelp("Seconds between heartbeats.", valueName: "SECONDS"))
    var heartbeatSeconds: Double = 10

    @Option(
        help: ArgumentHelp(
            "Seconds a long poll for a new desired state waits on the server (deployments arrive at once).",
            valueName: "SECONDS"))
    var pollSeconds: Double = 25

    @Option(help: ArgumentHelp("Each instance's outbox bound on disk, in MiB (fractions allowed).", valueName: "MIB"))
    var outboxMb: Double = 256

    @Option(
        help: ArgumentHelp(
            "Seconds a new version has to infer its first frame before it is rolled back.", valueName: "SECONDS"))
    var healthDeadlineSeconds: Double = 60

    @Option(help: ArgumentHelp("Crashes of a new version before it is rolled back.", valueName: "N"))
    var maxCrashes: Int = 3

    @Option(
        help: ArgumentHelp(
            "Seconds a new software release has to come back healthy (connected, instances inferring) before it is rolled back.",
            valueName: "SECONDS"))
    var updateDeadlineSeconds: Double = 300

    @Option(
        help: ArgumentHelp(
            "Longest pause between retries (reconnects, event deliveries to the server and the sinks), in seconds.",
            valueName: "SECONDS"))
    var maxBackoffSeconds: Double = 60

    @Option(
        help: ArgumentHelp(
            "Where Python code nodes' virtual environments are cached (default ~/.cache/vantage/python).",
            valueName: "DIR"))
    var pythonCache: String?

    @Option(
        help: ArgumentHelp(
            "Renew the certificate (with a new key) once it ends within this many days.", valueName: "DAYS"))
    var renewWithinDays: Double = 30

    @Option(
        help: ArgumentHelp(
            "Where Prometheus scrapes the agent's metrics (/metrics); \"off\" for none.", valueName: "HOST:PORT"))
    var metricsListen = "127.0.0.1:9464"

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error")
        }
        if token != nil || server != nil {
            guard token != nil, server != nil else {
                throw ValidationError("to enroll, give both --server URL and --token TOKEN")
            }
            guard caHash != nil || caFile != nil else {
                throw ValidationError(
                    "to enroll, give --ca-hash sha256:… (printed by vantage devices create) or --ca-file CA.pem, so the agent knows it talks to your server"
                )
            }
        }
        for (name, value) in [
            ("--heartbeat-seconds", heartbeatSeconds), ("--poll-seconds", pollSeconds),
            ("--health-deadline-seconds", healthDeadlineSeconds), ("--max-backoff-seconds", maxBackoffSeconds),
            ("--update-deadline-seconds", updateDeadlineSeconds),
            ("--renew-within-days", renewWithinDays),
        ] where !(value > 0) {
            throw ValidationError("\(name) must be positive")
        }
        guard outboxMb >= 0.0625 else { throw ValidationError("--outbox-mb must be at least 0.0625 (64 KiB)") }
        if metricsListen != "off" {
            guard let colon = metricsListen.lastIndex(of: ":"),
                Int(metricsListen[metricsListen.index(after: colon)...]) != nil
            else {
                throw ValidationError("--metrics-listen \(metricsListen) is not HOST:PORT (e.g. 0.0.0.0:9464) or off")
            }
        }
        guard maxCrashes > 0 else { throw ValidationError("--max-crashes must be positive") }
    }

    func run() async throws {
        // Software updates (docs/updates.md): run the selected release, or roll back one that failed its trial.
        let launch = await SoftwareLauncher.launch(dataDirectory: URL(fileURLWithPath: data))
        guard case .run(let releaseVersion) = launch else {
            if case .exit(let status) = launch, status != 0 { throw ExitCode(status) }
            return
        }
        // A runtime worker that died leaves a closed pipe: writing to it must fail, not kill the agent.
        signal(SIGPIPE, SIG_IGN)
        let level = Logger.Level(rawValue: logLevel)!
        // Every line goes to standard error, to DIR/logs/agent.log (rotated) and to the server.
        LoggingSystem.bootstrap { label in
            var handler = ShippingLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "vantage.agent")
        // Instances, cameras and the metrics endpoint's connections each take a descriptor.
        OpenFileLimit.raiseToHardLimit()
        var configuration = AgentConfiguration(dataDirectory: URL(fileURLWithPath: data))
        try? LogBuffer.shared.writeToFile(configuration.dataDirectory.appending(path: "logs/agent.log"))
        configuration.heartbeatInterval = .milliseconds(Int(heartbeatSeconds * 1000))
        configuration.longPollWait = .milliseconds(Int(min(pollSeconds, 60) * 1000))
        configuration.outboxLimitBytes = Int64(outboxMb * 1_048_576)
        configuration.healthPolicy.deadline = .milliseconds(Int(healthDeadlineSeconds * 1000))
        configuration.healthPolicy.maxCrashes = maxCrashes
        configuration.maxBackoff = .milliseconds(Int(maxBackoffSeconds * 1000))
        configuration.renewWithin = .seconds(renewWithinDays * 86400)
        configuration.executableSearchPath = [Run.executableDirectory]
        configuration.pythonCacheDirectory = pythonCache.map { URL(fileURLWithPath: $0) }
        configuration.softwareVersion = releaseVersion ?? Vantage.configuration.version
        configuration.updateDeadline = .milliseconds(Int(updateDeadlineSeconds * 1000))
        configuration.updateMaxStarts = maxCrashes
        configuration.crashAt = ProcessInfo.processInfo.environment["VANTAGE_AGENT_CRASH_AT"]
        // Each instance runs in a child process of its own (`vantage agent-runtime`), so nothing an application or
        // a model does can take the agent down.
        configuration.runtimeExecutable = Run.executable
        configuration.logLevel = level

        do {
            let identity = try await self.identity(configuration, logger: logger)
            let agent = try Agent(configuration: configuration, identity: identity, logger: logger)
            var services: [any Service] = [agent]
            if metricsListen != "off" {
                let colon = metricsListen.lastIndex(of: ":")!
                services.append(
                    agent.metrics.application(
                        host: String(metricsListen[..<colon]),
                        port: Int(metricsListen[metricsListen.index(after: colon)...])!, logger: logger))
            }
            let group = ServiceGroup(
                configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            do {
                try await group.run()
            } catch {
                // The agent ends early only to switch to a new software release: the group calls that a failure.
                guard agent.switchRequested else { throw error }
            }
            if agent.switchRequested { SoftwareLauncher.switchRelease() }
        } catch let error as AgentError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    /// The saved identity, or a new one from enrolling with --server and --token.
    func identity(_ configuration: AgentConfiguration, logger: Logger) async throws -> DeviceIdentity {
        let folder = configuration.dataDirectory.appending(path: "identity")
        if let token, let server {
            guard let url = URL(string: server) else { throw AgentError("--server \(server) is not a URL") }
            guard let trust = Enroller.Trust.given(caFile: caFile, caHash: caHash) else {
                throw AgentError("cannot read --ca-file \(caFile ?? "")")
            }
            return try await Enroller.enroll(server: url, token: token, trust: trust, folder: folder, logger: logger)
        }
        guard let identity = try DeviceIdentity.load(from: folder) else {
            throw AgentError(
                "this device has not enrolled yet (no identity in \(folder.path)): run vantage agent enroll --data \(configuration.dataDirectory.path) --server https://HOST:8443 --token vd_… --ca-hash sha256:… (vantage devices create prints the token and hash)"
            )
        }
        return identity
    }
}

/// `vantage agent-runtime`: the agent's runtime worker, one per instance; the agent starts it and tells it what to
/// run over its standard input. Not for people.
struct AgentRuntimeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent-runtime",
        abstract: "The process in which `vantage agent` runs one instance (started by the agent only).",
        shouldDisplay: false)

    func run() async throws {
        let status = await RuntimeWorker.main()
        if status != 0 { throw ExitCode(status) }
    }
}
