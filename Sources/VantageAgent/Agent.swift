import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import VantageAPI
import VantageCore
import VantageRuntime

/// What `vantage agent` runs with.
public struct AgentConfiguration: Sendable {
    /// Everything the agent keeps: `identity/`, `deployments/`, `outbox/` (each instance's outbox), `state/`
    /// (per-instance state).
    public var dataDirectory: URL
    /// How often the desired state is polled (a cheap 304 when unchanged); the server's long-poll answers at
    /// once when it changes, so a deployment starts within a second or so whatever this is.
    public var pollInterval: Duration = .seconds(30)
    /// How long one desired-state request waits on the server for a change (long poll).
    public var longPollWait: Duration = .seconds(25)
    public var heartbeatInterval: Duration = .seconds(10)
    /// Each instance's outbox bound on disk.
    public var outboxLimitBytes: Int64 = 256 << 20
    /// The longest pause between reconnect attempts while the server is unreachable (jittered, doubling from 1 s),
    /// and between the retries of each instance's event deliveries (the control plane and its sinks).
    public var maxBackoff: Duration = .seconds(60)
    public var healthPolicy = HealthPolicy()
    public var executableSearchPath: [URL] = []
    public var pythonCacheDirectory: URL?
    public var softwareVersion = "dev"
    /// How long a newly installed software release has to come back healthy before it is rolled back.
    public var updateDeadline: Duration = .seconds(300)
    /// How often a new software release may exit before it is healthy; the last start rolls it back.
    public var updateMaxStarts = 3
    /// The certificate is renewed (a new key, a CSR) once it ends within this long.
    public var renewWithin: Duration = .seconds(30 * 86400)
    /// Fault injection for tests: `STEP:MARKER_FILE` kills the agent (SIGKILL) right before STEP, once (the marker
    /// file records that it happened). From `VANTAGE_AGENT_CRASH_AT`.
    public var crashAt: String?
    /// The `vantage` executable: when set, each instance runs in a runtime worker of its own
    /// (`vantage agent-runtime`, ``ProcessRuntimeRunner``), so an application or a model cannot take the agent down;
    /// when nil, instances run inside the agent's process (``RuntimeRunner``).
    public var runtimeExecutable: URL?
    /// The level the runtime workers log at.
    public var logLevel: Logger.Level = .info

    public init(dataDirectory: URL) { self.dataDirectory = dataDirectory }

    var identityFolder: URL { dataDirectory.appending(path: "identity") }
    var deploymentsFolder: URL { dataDirectory.appending(path: "deployments") }
    var outboxFolder: URL { dataDirectory.appending(path: "outbox") }
    var stateFolder: URL { dataDirectory.appending(path: "state") }
}

/// The appliance daemon: keeps the device's instances as the server wants them (``Reconciler``), holds their event
/// pipelines (``InstanceEvents``: each instance's one outbox, its sinks and the control plane), reports health, and
/// keeps going while the server is unreachable.
public final class Agent: Service, Sendable {
    public let configuration: AgentConfiguration
    public let identity: DeviceIdentity
    let link: DeviceLink
    /// Each instance's outbox and sinks, the control plane among them.
    let events: InstanceEvents
    let reconciler: Reconciler
    let reports: ReportQueue
    /// The figures of the last heartbeat, as Prometheus gauges.
    public let metrics = AgentMetrics()
    /// Log lines to ship (``ShippingLogHandler`` fills it).
    let logs: LogBuffer
    /// The camera streams all instances share.
    let cameraHub = CameraHub()
    /// Watched instances' live frames, on their way to the control plane.
    let live: LiveRelayHub
    let logger: Logger
    /// Software releases: installs what the desired state names and ends this version's trial once healthy.
    let updater: SoftwareUpdater
    private let started = ContinuousClock.now
    private let connection = Mutex(ConnectionState())
    private let switching = Mutex(false)
    /// Whether a heartbeat reached the server since this process started.
    private let heartbeatSent = Mutex(false)
    /// The last certificate renewal failure logged.
    private let renewalFailure = Mutex<String?>(nil)
    /// This process's id in heartbeats (``Heartbeat/agentSession``): the server tells a cloned box, whose agent
    /// takes turns with another one under the same certificate, from a restart, which changes it once.
    let session = "as_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
    /// The volume of the data folder, and whether it is full now (`DISK_FULL`).
    let volume: DataVolume
    let diskFull = DiskFullState()
    /// The free bytes the last heartbeat saw: when they grow by more than the reserve, space returned.
    private let lastFree = Mutex<Int64?>(nil)

    /// Whether the agent stopped to switch to a newly installed software release: the caller then calls
    /// ``SoftwareLauncher/switchRelease(environment:)``.
    public var switchRequested: Bool { switching.withLock { $0 } }

    struct ConnectionState {
        var reachable = true
        var lastError: String?
    }

    public init(
        configuration: AgentConfiguration, identity: DeviceIdentity, logger: Logger, logs: LogBuffer = .shared
    ) throws {
        self.configuration = configuration
        self.logs = logs
        self.identity = identity
        self.logger = logger
        volume = DataVolume(folder: configuration.dataDirectory)
        try FileManager.default.createDirectory(at: configuration.dataDirectory, withIntermediateDirectories: true)
        // The folder holds the device key, camera passwords (journal), AWS keys and the outbox: the agent's user only,
        // whatever the umask left on the files inside it.
        chmod(configuration.dataDirectory.path, 0o700)
        link = try DeviceLink(identity: identity)
        let link = self.link
        events = InstanceEvents(
            folder: configuration.outboxFolder, limitBytes: configuration.outboxLimitBytes,
            device: identity.deviceID, logger: logger, maxBackoff: configuration.maxBackoff.seconds,
            send: { batch in _ = try await link.send(events: batch) },
            uploadClip: { id, file in try await link.upload(clip: file, eventID: id) })
        reports = ReportQueue(link: link, logger: logger)
        updater = SoftwareUpdater(
            dataDirectory: configuration.dataDirectory, version: configuration.softwareVersion,
            deadline: configuration.updateDeadline, maxStarts: configuration.updateMaxStarts, source: link,
            logger: logger)
        let artifacts = configuration.deploymentsFolder.appending(path: "artifacts/sha256")
        let live = LiveRelayHub(logger: logger)
        self.live = live
        var processRunner: ProcessRuntimeRunner?
        if let executable = configuration.runtimeExecutable {
            processRunner = ProcessRuntimeRunner(
                executable: executable, stateRoot: configuration.stateFolder, artifactsFolder: artifacts,
                events: events, executableSearchPath: configuration.executableSearchPath,
                pythonCacheDirectory: configuration.pythonCacheDirectory, reporter: reports,
                logLevel: configuration.logLevel, logger: logger)
            processRunner?.live = live
        }
        let runner: any InstanceRunner =
            if let processRunner {
                processRunner
            } else {
                RuntimeRunner(
                    stateRoot: configuration.stateFolder, artifactsFolder: artifacts, events: events,
                    executableSearchPath: configuration.executableSearchPath,
                    pythonCacheDirectory: configuration.pythonCacheDirectory, cameraHub: cameraHub, logger: logger)
            }
        reconciler = Reconciler(
            directory: configuration.deploymentsFolder, source: link, runner: runner, reporter: reports,
            policy: configuration.healthPolicy, logger: logger,
            beforeStep: Self.crashHook(configuration.crashAt))
    }

    /// `STEP:MARKER` → a hook that SIGKILLs this process right before STEP, the first time only.
    static func crashHook(_ spec: String?) -> (@Sendable (DeploymentStep, String) throws -> Void)? {
        guard let spec, let colon = spec.firstIndex(of: ":") else { return nil }
        let step = String(spec[..<colon])
        let marker = String(spec[spec.index(after: colon)...])
        return { current, _ in
            guard current.rawValue == step, !FileManager.default.fileExists(atPath: marker) else { return }
            _ = FileManager.default.createFile(atPath: marker, contents: Data(step.utf8))
            kill(getpid(), SIGKILL)
        }
    }

    public func run() async throws {
        logger.info(
            "agent starting",
            metadata: ["device.id": "\(identity.deviceID)", "server": "\(identity.server.absoluteString)"])
        // What ran before the restart runs again at once, from disk, whether or not the server answers.
        await reconciler.resume()
        // Events of instances removed before the restart still go to the control plane.
        await events.resumeLeftovers(installedIn: reconciler.instancesFolder)
        // Back after the certificate ended (the box was off, or offline, at renewal time): renew it before anything
        // else, within the server's grace window, so the first heartbeat already goes through.
        if link.identity.certificateEnds(within: 0) {
            _ = await renewCertificateOnce()
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.pollDesiredState() }
                group.addTask { await self.sendHeartbeats() }
                group.addTask { await self.events.run() }
                group.addTask {
                    // An upgrade from an agent that kept one outbox file for the control plane: send what it holds.
                    let link = self.link
                    await LegacyOutbox.drain(
                        self.configuration.dataDirectory.appending(path: "outbox.sqlite"),
                        send: { _ = try await link.send(events: $0) }, maxBackoff: self.configuration.maxBackoff,
                        logger: self.logger)
                    while !Task.isCancelledOrShuttingDown { try? await Task.sleep(for: .seconds(3600)) }
                }
                group.addTask { await self.reports.run() }
                group.addTask { await self.live.run(link: self.link) }
                group.addTask { await self.shipLogs() }
                group.addTask { await self.renewCertificate() }
                group.addTask {
                    // Returns only when a new release is installed: the agent stops, and the launcher starts it.
                    await self.updater.run(
                        healthy: { await self.isHealthy(running: $0) }, running: { await self.inferringInstances() })
                    if !Task.isCancelledOrShuttingDown { self.switching.withLock { $0 = true } }
                }
                await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.logger.info("agent stopping")
        }
        await reconciler.stopAll()
        await events.stopAll()
        await link.shutdown()
        logger.info("agent stopped")
    }

    // MARK: Loops

    /// Polls the desired state (ETag: 304 while unchanged) and applies each new one.
    func pollDesiredState() async {
        var etag: String?
        var backoff = Backoff(max: configuration.maxBackoff)
        while !Task.isCancelledOrShuttingDown {
            do {
                if let (state, tag) = try await link.desiredState(
                    etag: etag, wait: etag == nil ? nil : configuration.longPollWait)
                {
                    logger.debug("desired state changed", metadata: ["etag": "\(tag ?? "")"])
                    etag = tag
                    live.update(state.live)
                    live.apply(signals: state.signals ?? [])
                    updater.offer(state.software)
                    await reconciler.apply(state)
                }
                markReachable()
                backoff.reset()
                if etag == nil { try await Task.sleep(for: configuration.pollInterval) }
            } catch is CancellationError {
                return
            } catch {
                markUnreachable(error)
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    /// Sends a heartbeat with the device's metrics every interval.
    func sendHeartbeats() async {
        var sampler = SystemSampler(dataDirectory: configuration.dataDirectory)
        while !Task.isCancelledOrShuttingDown {
            let disk = await watchDisk()
            let figures = await sample(&sampler, adding: disk)
            let beat = Heartbeat(
                softwareVersion: configuration.softwareVersion, metrics: figures, update: updater.report,
                agentSession: session)
            do {
                try await link.heartbeat(beat)
                heartbeatSent.withLock { $0 = true }
                markReachable()
            } catch {
                markUnreachable(error)
            }
            metrics.update(figures, serverReachable: connection.withLock { $0.reachable })
            try? await Task.sleep(for: configuration.heartbeatInterval)
        }
    }

    /// Renews the certificate before it ends: it wakes when the renewal is due (`renewWithin` before the end, and
    /// at least every six hours). While the server is unreachable it retries with backoff, so a box that was
    /// offline at renewal time renews as soon as it is back, even after the certificate ended (the server's grace
    /// window). A refusal (past that window, revoked) is logged once, with what to do, and retried hourly. The
    /// device's key is replaced too: the new one never leaves the device either.
    func renewCertificate() async {
        var backoff = Backoff(max: configuration.maxBackoff)
        while !Task.isCancelledOrShuttingDown {
            let ends = link.identity.certificateExpiresAt
            let wait = ends.map { $0.timeIntervalSinceNow - configuration.renewWithin.seconds } ?? 0
            if wait > 0 {
                try? await Task.sleep(for: .seconds(min(wait, 6 * 3600)))
                continue
            }
            switch await renewCertificateOnce() {
            case .renewed:
                backoff.reset()
                if link.identity.certificateEnds(within: configuration.renewWithin.seconds) {
                    // The server issues certificates shorter than --renew-within-days: renewing again at once would
                    // only spin.
                    logger.warning(
                        "the renewed certificate ends within --renew-within-days already; renewing again in an hour")
                    try? await Task.sleep(for: .seconds(3600))
                }
            case .refused: try? await Task.sleep(for: .seconds(3600))
            case .unreachable: try? await Task.sleep(for: backoff.next())
            }
        }
    }

    enum RenewalOutcome { case renewed, refused, unreachable }

    /// One renewal attempt. Each distinct failure is logged once, not once per retry.
    func renewCertificateOnce() async -> RenewalOutcome {
        let ended = link.identity.certificateExpiresAt.flatMap { $0 <= Date() ? $0 : nil }
        do {
            let renewed = try await link.renewCertificate(savingTo: configuration.identityFolder)
            var metadata: Logger.Metadata = [
                "until": "\(renewed.certificateExpiresAt.map(APIJSON.formatTime) ?? "?")"
            ]
            if let ended { metadata["expired"] = "\(APIJSON.formatTime(ended))" }
            logger.notice(
                ended == nil ? "certificate renewed" : "certificate renewed after it expired", metadata: metadata)
            renewalFailure.withLock { $0 = nil }
            return .renewed
        } catch {
            let message = "\(error)"
            let refused: Bool
            if case LinkError.unreachable = error { refused = false } else { refused = true }
            let first = renewalFailure.withLock { last in
                defer { last = message }
                return last != message
            }
            if first {
                if refused {
                    logger.error("certificate renewal refused (fix it to reach the server again): \(message)")
                } else {
                    logger.warning("certificate renewal failed; trying again when the server is back: \(message)")
                }
            }
            return refused ? .refused : .unreachable
        }
    }

    /// Ships the agent's and its instances' log lines every two seconds, oldest first; kept while the server is
    /// away (bounded: see ``LogBuffer``).
    func shipLogs() async {
        var backoff = Backoff(max: configuration.maxBackoff)
        while !Task.isCancelledOrShuttingDown {
            let lines = logs.peek(limit: 1000)
            if lines.isEmpty {
                try? await Task.sleep(for: .seconds(2))
                continue
            }
            do {
                try await link.send(logs: lines)
                logs.remove(lines.count)
                backoff.reset()
                if lines.count < 1000 { try? await Task.sleep(for: .seconds(2)) }
            } catch LinkError.rejected(let status, let message) {
                // A line about an instance the server no longer knows, say: drop the batch rather than retry it.
                logs.remove(lines.count)
                logger.debug("log lines refused (\(status)): \(message)")
            } catch {
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    // MARK: Health

    /// The heartbeat's figures: the system's, the outbox's, the instances'.
    func sample(_ sampler: inout SystemSampler, adding extra: [String: Double] = [:]) async -> [String: Double] {
        var metrics = sampler.sample().merging(extra) { _, new in new }
        metrics["uptime.seconds"] = (ContinuousClock.now - started).seconds
        let (counters, rejected) = events.counters()
        metrics["outbox.pending"] = Double(counters.pendingEvents)
        metrics["outbox.bytes"] = Double(counters.pendingBytes)
        metrics["outbox.dropped_events"] = Double(counters.droppedEvents)
        metrics["outbox.dropped_snapshots"] = Double(counters.droppedSnapshots)
        metrics["outbox.rejected_events"] = Double(rejected)
        metrics["logs.dropped_lines"] = Double(logs.dropped)
        let instances = await reconciler.snapshot()
        metrics["instances.running"] = Double(instances.filter { $0.phase == .running }.count)
        // In process, instances share the agent's camera hub; a runtime worker counts its own.
        var open = Double(cameraHub.openStreams)
        var inferred: UInt64 = 0
        for instance in instances {
            inferred += instance.health?.framesInferred ?? 0
            open += instance.metrics["cameras.open"] ?? 0
            for (name, value) in instance.metrics where metrics.count < 64 && name != "cameras.open" {
                metrics[name] = value
            }
        }
        metrics["cameras.open"] = open
        metrics["frames.inferred"] = Double(inferred)
        return metrics
    }

    /// Checks the data volume (each heartbeat): `DISK_FULL` is logged once when it fills, and once more when space
    /// returns. When space returns (or grows by more than the reserve), the deployments refused for want of room are
    /// taken up at once. While it is full the agent makes room where it can: its rotated logs, then the oldest
    /// snapshots and clips (images go before events). Answers the heartbeat's `disk.full` (1 while full),
    /// `disk.full_since` (while full: since when, in seconds since 1970; the server's DISK_FULL condition) and
    /// `outbox.unstored_events`.
    func watchDisk() async -> [String: Double] {
        var figures = ["outbox.unstored_events": Double(events.unstoredEvents)]
        guard let (free, total, full) = volume.sample() else { return figures }
        figures["disk.full"] = full ? 1 : 0
        let metadata: Logger.Metadata = [
            "disk.path": "\(volume.folder.path)", "disk.free_bytes": "\(free)", "disk.total_bytes": "\(total)",
        ]
        let grew = lastFree.withLock { last in
            defer { last = free }
            return last.map { free > $0 + DataVolume.reserve(total: total) } ?? false
        }
        if grew && !full {
            // A deployment refused for want of room (the disk need not have been full) goes on now.
            await reconciler.retryPendingNow()
        }
        if diskFull.set(full) {
            if full {
                logger.error(
                    "DISK_FULL: the disk holding the agent's data has \(DataVolume.mebibytes(free)) free; applications keep running, new deployments wait, and events that cannot be stored are counted (outbox.unstored_events); free disk space there",
                    metadata: metadata)
            } else {
                logger.notice(
                    "disk space returned (\(DataVolume.mebibytes(free)) free): deployments that waited go on",
                    metadata: metadata)
                if !grew { await reconciler.retryPendingNow() }
            }
        }
        if let since = diskFull.fullSince { figures["disk.full_since"] = since.timeIntervalSince1970.rounded() }
        if full {
            // Twice the reserve, so that a little room gained is not taken again at once.
            let needed = 2 * DataVolume.reserve(total: total) - free
            var freed = logs.deleteRotatedFiles()
            if freed < needed { freed += events.makeRoom(needed - freed) }
            if freed > 0 {
                logger.warning(
                    "made room on the full disk: \(DataVolume.mebibytes(freed)) of old logs and snapshots deleted",
                    metadata: metadata)
            }
        }
        return figures
    }

    /// Whether this version is healthy, as a software release on trial must become: it reached the server, and the
    /// instances that ran and inferred before the switch (`running`) run and have inferred frames again, unless the
    /// desired state stopped or removed them meanwhile. An instance that failed before the switch does not hold a
    /// release back.
    func isHealthy(running: [String]) async -> Bool {
        guard heartbeatSent.withLock({ $0 }), connection.withLock({ $0.reachable }) else { return false }
        let now = Dictionary(await reconciler.snapshot().map { ($0.instanceId, $0) }, uniquingKeysWith: { a, _ in a })
        return running.allSatisfy { id in
            guard let instance = now[id], instance.phase != .stopped, instance.phase != .removing else { return true }
            return instance.phase == .running && (instance.health?.framesInferred ?? 0) > 0
        }
    }

    /// The instances running and inferring now.
    func inferringInstances() async -> [String] {
        await reconciler.snapshot().filter { $0.phase == .running && ($0.health?.framesInferred ?? 0) > 0 }
            .map(\.instanceId)
    }

    private func markReachable() {
        let was = connection.withLock { state -> Bool in
            defer { state.reachable = true }
            return state.reachable
        }
        if !was { logger.notice("server reachable again") }
    }

    private func markUnreachable(_ error: any Error) {
        let message = "\(error)"
        // A refusal says the same for every route (revoked, expired): logged once, not once per loop that meets it.
        var reason = message
        if case LinkError.refused(let text) = error, let colon = text.range(of: ": ") {
            reason = String(text[colon.upperBound...])
        }
        let first = connection.withLock { state -> Bool in
            defer {
                state.reachable = false
                state.lastError = reason
            }
            return state.reachable || state.lastError != reason
        }
        if first {
            // Logged once per distinct failure, not once per retry. Applications keep running meanwhile.
            if case LinkError.refused = error {
                logger.error("\(message)")
            } else {
                logger.warning("\(message); applications keep running and events are kept on disk")
            }
        }
    }
}

/// Doubling pauses from 1 s up to `max`, each with ±25 % jitter so a fleet that lost the server together does
/// not come back together. (Public for bench/AgentLoad's reconnect storm, which runs the agent's own policy.)
public struct Backoff: Sendable {
    public let max: Duration
    private var current: Duration = .seconds(1)

    public init(max: Duration) { self.max = max }

    public mutating func next() -> Duration {
        let base = current
        current = Swift.min(current * 2, max)
        let jitter = Double.random(in: 0.75...1.25)
        return base * jitter
    }

    public mutating func reset() { current = .seconds(1) }
}

extension Task where Success == Never, Failure == Never {
    static var isCancelledOrShuttingDown: Bool { Task.isCancelled || Task.isShuttingDownGracefully }
}
