// agent-load: N simulated Vantage agents in one process against one `vantage server`, over real HTTP and mutual
// TLS (make bench, through bench/agents). Each device is created through the API, enrolls with its own key and CSR,
// and then sends heartbeats and polls its desired state over its own TLS connection with its own certificate, on
// the real agent's schedule. Prints what the server sustained: heartbeats/s against the target, latency
// percentiles, errors, and the load generator's own memory.
import ArgumentParser
import Foundation
import VantageAgent

/// `agent-load`: the command line.
struct AgentLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent-load",
        abstract: "Simulate many Vantage agents against one server and measure what it sustains.",
        discussion: """
            Phases: create the devices through the API, enroll each (its own key and CSR), connect each (its own \
            TLS connection and certificate, one desired-state fetch), then --duration seconds of steady state: a \
            heartbeat every --interval seconds and a desired-state poll with If-None-Match every 3 intervals per \
            device, first ones spread over the first interval. The load generator shares the machine with the server \
            when both run on it: its CPU is the server's loss.
            """)

    @Option(help: ArgumentHelp("The server's API, http://HOST:PORT.", valueName: "URL"))
    var api: String

    @Option(help: ArgumentHelp("An operator or admin API token, vt_… (default: $VANTAGE_TOKEN).", valueName: "TOKEN"))
    var token: String?

    @Option(
        help: ArgumentHelp(
            "The server's device endpoint, https://HOST:PORT (vantage server prints it).", valueName: "URL"))
    var deviceEndpoint: String

    @Option(help: "Simulated devices.")
    var devices = 10_000

    @Option(help: ArgumentHelp("Seconds between two heartbeats of one device.", valueName: "SECONDS"))
    var interval = 10.0

    @Option(help: ArgumentHelp("Seconds of steady state measured.", valueName: "SECONDS"))
    var duration = 60.0

    @Option(help: "Requests in flight at once while creating, enrolling and connecting devices.")
    var concurrency = 64

    @Option(
        help: ArgumentHelp(
            "After the steady state, a reconnect storm of at most this many seconds: prints 'storm: stop the server now', then every device keeps beating and, once refused, retries with the agent's backoff until answered again (bench/agents stops and restarts the server). 0: no storm.",
            valueName: "SECONDS"))
    var storm = 0.0

    @Option(help: ArgumentHelp("The agent's --max-backoff-seconds for the storm.", valueName: "SECONDS"))
    var maxBackoff = 60.0

    @Flag(help: "Print one JSON object (for scripts) instead of the table.")
    var json = false

    func validate() throws {
        guard let api = URL(string: api), api.scheme == "http" || api.scheme == "https", api.host != nil else {
            throw ValidationError("--api \(api) is not the server's API URL, e.g. http://127.0.0.1:8090")
        }
        guard let endpoint = URL(string: deviceEndpoint), endpoint.scheme == "https", endpoint.host != nil else {
            throw ValidationError(
                "--device-endpoint \(deviceEndpoint) is not https://HOST:PORT (vantage server prints its device endpoint)"
            )
        }
        guard devices > 0 else { throw ValidationError("--devices must be at least 1") }
        guard interval > 0, duration > 0 else { throw ValidationError("--interval and --duration must be positive") }
        guard concurrency > 0 else { throw ValidationError("--concurrency must be at least 1") }
        guard token ?? ProcessInfo.processInfo.environment["VANTAGE_TOKEN"] != nil else {
            throw ValidationError("an operator API token is needed: --token vt_… or $VANTAGE_TOKEN")
        }
    }

    func run() async throws {
        let limit = try FileDescriptorLimit.raise(needed: devices + concurrency + 64)
        let configuration = FleetConfiguration(
            api: URL(string: api)!, token: token ?? ProcessInfo.processInfo.environment["VANTAGE_TOKEN"]!,
            deviceEndpoint: URL(string: deviceEndpoint)!, devices: devices, interval: .seconds(interval),
            pollInterval: .seconds(interval * 3), duration: .seconds(duration), concurrency: concurrency,
            namePrefix: "load-\(UUID().uuidString.prefix(8).lowercased())")
        let fleet = SimulatedFleet(configuration: configuration) { message in
            FileHandle.standardError.write(Data("agent-load: \(message)\n".utf8))
        }

        fleet.progress("creating \(devices) devices through \(api)")
        let (provisioned, fingerprint, create) = await fleet.createDevices()
        guard let fingerprint else {
            throw LoadError("no device could be created: \(create.latency.errorSamples.keys.first ?? "no answer")")
        }
        let caPEM = try await fleet.fetchCA(fingerprint: fingerprint)
        fleet.progress("enrolling \(provisioned.count) devices at \(deviceEndpoint)")
        let (identities, enroll) = try await fleet.enroll(provisioned, caPEM: caPEM)
        fleet.progress("connecting \(identities.count) devices (one TLS connection each)")
        let (connected, connect) = await fleet.connect(identities)
        guard !connected.isEmpty else {
            throw LoadError("no device could connect: \(connect.latency.errorSamples.keys.first ?? "no answer")")
        }
        fleet.progress("steady state: \(connected.count) devices for \(duration) s")
        let steady = await fleet.run(connected)
        var storm: StormFigures?
        if self.storm > 0 {
            fleet.progress("storm: stop the server now (\(connected.count) devices, backoff up to \(maxBackoff) s)")
            storm = await fleet.storm(connected, maxBackoff: .seconds(maxBackoff), limit: .seconds(self.storm))
            fleet.progress("storm: over")
        }
        let memory = ProcessMemory.current()
        fleet.progress("disconnecting")
        await fleet.disconnect(connected)

        let report = LoadReport(
            devices: devices, connectedDevices: connected.count, intervalSeconds: interval,
            pollIntervalSeconds: interval * 3, durationSeconds: duration,
            cores: ProcessInfo.processInfo.activeProcessorCount, fileDescriptorLimit: limit,
            create: create, enroll: enroll, connect: connect, heartbeats: steady.heartbeats,
            desiredStatePolls: steady.polls, scheduleLag: steady.lag, desiredStateChanges: steady.stateChanges,
            rssMiB: memory.rssMiB, peakRssMiB: memory.peakMiB,
            heartbeatsKeptUp: LoadReport.keptUp(steady.heartbeats, interval: interval), storm: storm)
        if json {
            print(try report.json())
        } else {
            print(report.table())
        }
    }
}

/// Runs the command. Top-level code (main.swift) picks ParsableCommand's synchronous `main()`; inside an async
/// function the compiler picks AsyncParsableCommand's.
func runAgentLoad() async { await AgentLoad.main() }

await runAgentLoad()
