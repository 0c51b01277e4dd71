import Foundation
import Logging
import VantageAPI

/// Makes the device's application instances match the server's desired state, crash-safely.
///
/// Everything lives under `directory`:
/// - `desired-state.json`: the last applied `DeviceDesiredState`, so that it is applied again after a restart even
///   with the server unreachable;
/// - `artifacts/sha256/<hex>`: verified package archives (`<hex>.partial` while downloading, resumed after an
///   interruption);
/// - `instances/<id>/versions/<hex>/`: unpacked versions, each whole (unpacked beside, then renamed into place);
/// - `instances/<id>/current`: the link to the version that runs, switched atomically;
/// - `instances/<id>/journal.json`: the committed version, the operation in progress and its step, written before
///   every step is taken (see `DeploymentStep`), so that an agent killed at any point resumes from there and runs
///   the old version or the new one, never a mix.
///
/// A deployment downloads and verifies the archive, unpacks it, stops the running version, switches `current`,
/// starts the new version and waits for its first inferred frame (`HealthPolicy`); a version that crashes, infers
/// nothing in time, fails to start, or keeps being interrupted by agent restarts is rolled back to the committed
/// one and reported DEPLOYMENT_FAILED with the reason; it is not tried again until the desired instance changes.
///
/// `apply` and `resume` return as soon as the desired state is on disk: each instance is converged by a task of its
/// own that the reconciler owns (so one instance's long download or health check never holds up another's, nor
/// `snapshot()` for heartbeats). `waitUntilSettled()` waits for those tasks; `stopAll()` cancels them (the journal
/// keeps where each was) and stops every instance.
public actor Reconciler {
    let directory: URL
    let source: any ArtifactSource
    let runner: any InstanceRunner
    let reporter: any DeploymentReporter
    let policy: HealthPolicy
    let downloadPolicy: DownloadPolicy
    let logger: Logger
    let beforeStep: (@Sendable (DeploymentStep, String) throws -> Void)?
    let artifacts: ArtifactCache

    /// Per instance: what it should be (nil: not desired at all, so removed) and the apply that said so.
    var targets: [String: Target] = [:]
    /// The task converging each instance, while one does.
    var workers: [String: Task<Void, Never>] = [:]
    /// Each instance's journal as last written.
    var journals: [String: InstanceJournal] = [:]
    /// What runs now, per instance.
    var live: [String: LiveVersion] = [:]
    /// The last health sample read during a health check.
    var lastHealth: [String: InstanceHealthSample] = [:]
    /// Downloads in progress by archive key: two instances of one package version download it once.
    var downloads: [String: Task<URL, any Error>] = [:]
    /// Per instance with a pending download, the task that takes it up again after `DownloadPolicy.pendingRetry`.
    var retries: [String: Task<Void, Never>] = [:]
    /// Instances whose REMOVAL_SUCCEEDED was reported by this process (the server keeps listing them until then).
    var removalReported: Set<String> = []
    /// Instances whose pending deployment waits for room on the disk, with the reason last reported: tried again
    /// every `DownloadPolicy.roomRetry`, and reported again only when the reason changes.
    var waitingForRoom: [String: String] = [:]
    /// Set when `beforeStep` threw: the reconciler then does nothing more, like a killed process.
    var abandoned = false
    /// Set by `stopAll()`.
    var shuttingDown = false
    var applied = 0

    /// What an instance should become, and which apply (or resume) said so.
    struct Target {
        var instance: DesiredInstance?
        var generation: Int
    }

    /// A started version of an instance.
    struct LiveVersion {
        var handle: any RunningInstance
        var instance: DesiredInstance
        var key: String
    }

    /// Thrown where `beforeStep` threw: unwinds everything without cleanup, stop or report.
    struct Abandoned: Error {}

    /// Makes a reconciler working in `directory` (created as needed); nothing runs until `resume()` or `apply(_:)`.
    ///
    /// - Parameter beforeStep: a fault-injection hook called after each step is persisted and before it is taken,
    ///   with the step and the instance id. When it throws, the reconciler abandons everything at once like a killed
    ///   process: no cleanup, no stop, no report. The agent maps an environment variable to `SIGKILL` in it.
    public init(
        directory: URL, source: any ArtifactSource, runner: any InstanceRunner, reporter: any DeploymentReporter,
        policy: HealthPolicy = .init(), download: DownloadPolicy = .init(), logger: Logger,
        beforeStep: (@Sendable (DeploymentStep, String) throws -> Void)? = nil
    ) {
        self.directory = directory
        self.source = source
        self.runner = runner
        self.reporter = reporter
        self.policy = policy
        self.downloadPolicy = download
        self.logger = logger
        self.beforeStep = beforeStep
        self.artifacts = ArtifactCache(folder: directory.appending(path: "artifacts/sha256"))
    }

    var instancesFolder: URL { directory.appending(path: "instances") }
    var desiredStateFile: URL { directory.appending(path: "desired-state.json") }
    func folder(_ id: String) -> InstanceFolder { InstanceFolder(root: instancesFolder.appending(path: id)) }
    /// The control plane's artifact key pinned here (`artifact-key`), which archives and model files must be signed by.
    var trust: ArtifactTrust { ArtifactTrust(file: directory.appending(path: "artifact-key")) }

    // MARK: - Public API

    /// After a (re)start: reads what is on disk, starts what was running (the version `current` points at), then
    /// goes on with interrupted deployments from their persisted steps. Works with the server unreachable: the last
    /// applied desired state is on disk.
    public func resume() async {
        guard !abandoned, !shuttingDown else { return }
        let instances = instancesFolder
        let stateFile = desiredStateFile
        let loaded = try? await DeploymentIO.run { () -> ([String: InstanceJournal], DeviceDesiredState?) in
            try DeploymentIO.makeFolder(instances)
            var journals: [String: InstanceJournal] = [:]
            for name in Self.entries(of: instances) {
                let path = instances.appending(path: name)
                if name.hasPrefix(".removing-") {
                    DeploymentIO.delete(path)  // an interrupted removal
                    continue
                }
                guard !name.hasPrefix("."), InstanceFolder.isValidId(name) else { continue }
                let folder = InstanceFolder(root: path)
                let journal = folder.loadJournal()
                // Leftovers of an interrupted unpack or switch, and versions no longer referenced.
                folder.prune(keeping: (journal?.keptKeys ?? []).union([folder.currentKey()].compactMap { $0 }))
                journals[name] = journal ?? InstanceJournal()
            }
            let state = FileManager.default.contents(atPath: stateFile.path).flatMap {
                try? JSONDecoder().decode(DeviceDesiredState.self, from: $0)
            }
            return (journals, state)
        }
        guard let loaded else {
            logger.error("Cannot read the agent's folder", metadata: ["agent.directory": "\(directory.path)"])
            return
        }
        let (onDisk, state) = loaded
        guard !abandoned, !shuttingDown else { return }
        for (id, journal) in onDisk where journals[id] == nil { journals[id] = journal }
        logger.info(
            "Resuming the instances on disk",
            metadata: ["instances": "\(onDisk.keys.sorted())", "desired.saved": "\(state != nil)"])
        if let state {
            setTargets(state, onDisk: Set(onDisk.keys))
        } else {
            // No desired state was ever saved: keep running (or finish deploying) what the journals name.
            applied += 1
            for (id, journal) in onDisk {
                guard var instance = journal.operation?.target ?? journal.committed?.instance else { continue }
                instance.desiredState = .running
                targets[id] = Target(instance: instance, generation: applied)
                startWorker(id)
            }
        }
    }

    /// Persists `state` (so it is applied again after a restart, even offline), then converges to it in the
    /// background; returns once the state is on disk. Applying the same state again retries at once a download left
    /// pending by a network failure; a deployment that failed is not retried until its desired instance changes.
    public func apply(_ state: DeviceDesiredState) async {
        guard !abandoned, !shuttingDown else { return }
        do {
            // Pinned the first time; another key later makes every artifact's check fail (each reported).
            try trust.learn(state.artifactKey)
        } catch {
            logger.error("Not trusting the server's artifact key", metadata: ["error": "\(error)"])
        }
        let stateFile = desiredStateFile
        let instances = instancesFolder
        let directory = directory
        let onDisk: Set<String>
        do {
            let data = try JSONEncoder().encode(state)
            onDisk = try await DeploymentIO.runInOrder {
                try DeploymentIO.makeFolder(directory)
                try AtomicFile.write(data, to: stateFile, permissions: 0o600)  // camera and AWS credentials
                return Set(Self.entries(of: instances).filter { !$0.hasPrefix(".") })
            }
        } catch {
            logger.error(
                "Cannot save the desired state; applying it anyway, but a restart will not know it",
                metadata: ["error": "\(error)"])
            onDisk = []
        }
        guard !abandoned, !shuttingDown else { return }
        setTargets(state, onDisk: onDisk)
    }

    /// Stops every instance (for the agent's shutdown): cancels the deployments in progress, which resume from their
    /// journals at the next start, then stops what runs. The reconciler does nothing more afterwards.
    public func stopAll() async {
        guard !abandoned else { return }
        shuttingDown = true
        for task in retries.values { task.cancel() }
        retries = [:]
        let tasks = Array(workers.values)
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        let running = live.values.map(\.handle)
        live = [:]
        await withTaskGroup(of: Void.self) { group in
            for handle in running { group.addTask { await handle.stop() } }
        }
    }

    /// Waits until no instance is being converged: every deployment committed, rolled back, failed or pending.
    public func waitUntilSettled() async {
        while let task = workers.values.first { await task.value }
    }

    /// For heartbeats: per instance, the running version (digest and package version), its phase and health.
    public func snapshot() -> [InstanceSnapshot] {
        var ids = Set(journals.keys).union(live.keys)
        for (id, target) in targets where target.instance.map({ $0.desiredState != .removed }) ?? false {
            ids.insert(id)
        }
        return ids.sorted().map { id in
            let running = live[id]
            let busy = workers[id] != nil
            let step = busy ? journals[id]?.operation?.step : nil
            let phase: InstancePhase =
                switch step {
                case .rollback?: .rollingBack
                case .remove?: .removing
                case .stop?: .stopped
                case .some: .deploying
                case nil where running != nil: .running
                case nil where targets[id]?.instance?.desiredState == .stopped: .stopped
                case nil: .notRunning
                }
            return InstanceSnapshot(
                instanceId: id, archiveDigest: running?.instance.archiveDigest,
                packageVersion: running?.instance.packageVersion, deploymentId: running?.instance.deploymentId,
                phase: phase, step: step, health: running?.handle.health(),
                metrics: running?.handle.metrics() ?? [:])
        }
    }

    // MARK: - Workers

    /// Records what each instance should become and makes sure a task converges it. Instances on disk that the
    /// state does not name are removed.
    private func setTargets(_ state: DeviceDesiredState, onDisk: Set<String>) {
        applied += 1
        var named: Set<String> = []
        for instance in state.instances {
            named.insert(instance.id)
            targets[instance.id] = Target(instance: instance, generation: applied)
        }
        for id in onDisk.union(journals.keys).union(live.keys).union(targets.keys) where !named.contains(id) {
            targets[id] = Target(instance: nil, generation: applied)
        }
        for id in targets.keys where targets[id]?.generation == applied { startWorker(id) }
    }

    private func startWorker(_ id: String) {
        guard workers[id] == nil else { return }  // the running worker looks at the new target when it is done
        workers[id] = Task { await self.work(id) }
    }

    /// Converges one instance until its target stops changing.
    private func work(_ id: String) async {
        defer { workers[id] = nil }
        while let target = targets[id], !abandoned, !shuttingDown {
            do {
                try await converge(id, to: target.instance)
            } catch {
                return  // abandoned or cancelled: stop here, like a killed process (the journal says where)
            }
            guard targets[id]?.generation != target.generation else {
                if target.instance == nil { targets[id] = nil }  // removed: forget it
                // A pending download, or an unpack that found no room.
                if let step = journals[id]?.operation?.step, step == .download || step == .unpack { scheduleRetry(id) }
                return
            }
        }
    }

    /// Takes a pending deployment up again after `DownloadPolicy.pendingRetry` (the desired state may not change
    /// for hours: the agent only applies new ones).
    private func scheduleRetry(_ id: String) {
        guard retries[id] == nil else { return }
        let delay = waitingForRoom[id] != nil ? downloadPolicy.roomRetry : downloadPolicy.pendingRetry
        retries[id] = Task {
            try? await Task.sleep(for: delay)
            self.retryPending(id)
        }
    }

    /// Takes every pending deployment (a download or unpack that failed for want of room or a network) up again now;
    /// one whose worker is still busy converges again as soon as it is done. The agent calls this when space returns
    /// on its data volume.
    public func retryPendingNow() {
        for (id, journal) in journals {
            guard let step = journal.operation?.step, step == .download || step == .unpack else { continue }
            logger.info(
                "Taking up a deployment that waited", metadata: ["instance.id": "\(id)", "deployment.step": "\(step)"])
            retries.removeValue(forKey: id)?.cancel()
            retryPending(id)
        }
    }

    private func retryPending(_ id: String) {
        retries[id] = nil
        guard !Task.isCancelled, !abandoned, !shuttingDown, targets[id] != nil else { return }
        applied += 1
        targets[id]?.generation = applied
        startWorker(id)
    }

    /// Throws when the reconciler was abandoned or the worker cancelled: checked before every side effect.
    func alive() throws {
        if abandoned { throw Abandoned() }
        try Task.checkCancellation()
    }

    /// Sends a report (truncated to what the server accepts).
    func report(
        _ id: String, _ status: InstanceStatus?, health: HealthStatus? = nil, _ description: String
    ) async throws {
        try alive()
        let text = description.count > 1000 ? description.prefix(999) + "…" : description
        logger.info(
            "Instance report",
            metadata: [
                "instance.id": "\(id)", "instance.status": "\(status?.rawValue ?? "-")",
                "instance.health": "\(health?.rawValue ?? "-")", "instance.statusDescription": "\(text)",
            ])
        await reporter.report(
            instanceId: id, InstanceReport(status: status, healthStatus: health, statusDescription: text))
    }

    nonisolated static func entries(of folder: URL) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
    }
}

/// One instance as a heartbeat describes it.
public struct InstanceSnapshot: Sendable, Equatable {
    /// The instance's id.
    public var instanceId: String
    /// The running version's archive digest (`sha256:…`); nil when nothing runs.
    public var archiveDigest: String?
    /// The running version's package version; nil when nothing runs.
    public var packageVersion: String?
    /// The deployment the running version came with.
    public var deploymentId: String?
    /// What the instance is doing.
    public var phase: InstancePhase
    /// The step being taken, while deploying, rolling back, stopping or removing.
    public var step: DeploymentStep?
    /// The running version's health counters; nil when nothing runs.
    public var health: InstanceHealthSample?
    /// The running version's heartbeat figures (``RunningInstance/metrics()``).
    public var metrics: [String: Double]

    /// Makes a snapshot.
    public init(
        instanceId: String, archiveDigest: String?, packageVersion: String?, deploymentId: String?,
        phase: InstancePhase, step: DeploymentStep?, health: InstanceHealthSample?, metrics: [String: Double] = [:]
    ) {
        self.metrics = metrics
        self.instanceId = instanceId
        self.archiveDigest = archiveDigest
        self.packageVersion = packageVersion
        self.deploymentId = deploymentId
        self.phase = phase
        self.step = step
        self.health = health
    }
}

/// What an instance is doing.
public enum InstancePhase: String, Sendable, Codable, CaseIterable {
    /// A version runs and nothing is being changed.
    case running
    /// A new version is being downloaded, unpacked, started or checked (the old one may still run meanwhile).
    case deploying
    /// A new version failed and the committed one is being restored.
    case rollingBack
    /// Stopped as desired; its files are kept.
    case stopped
    /// Being stopped and deleted.
    case removing
    /// Desired running, but nothing runs: its deployment failed with nothing to roll back to, or it failed to start.
    case notRunning
}
