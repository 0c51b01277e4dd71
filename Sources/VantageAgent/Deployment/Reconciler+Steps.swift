import Foundation
import Logging
import VantageAPI

/// How a deployment ended.
enum DeploymentOutcome {
    /// The new version passed its health gate and is committed.
    case committed
    /// The new version failed and the committed one was restored (or, with none, the instance left stopped).
    case rolledBack
    /// The deployment failed before anything was switched (bad digest, bad archive); the running version is
    /// untouched.
    case failed
    /// The download was interrupted too often; the deployment waits for the next `apply` or `resume`.
    case pending
}

extension Reconciler {
    /// Brings one instance to `desired` (nil: not desired at all). Throws only when abandoned or cancelled.
    func converge(_ id: String, to desired: DesiredInstance?) async throws {
        guard InstanceFolder.isValidId(id) else {
            logger.error("An instance id cannot name a folder; ignoring it", metadata: ["instance.id": "\(id)"])
            if let desired, desired.desiredState != .removed {
                try await report(
                    id, .deploymentError,
                    "the instance id cannot be used as a folder name on the device (letters, digits, '.', '_' and '-' only)"
                )
            }
            return
        }
        do {
            switch desired?.desiredState {
            case .running?: try await keepRunning(id, desired!)
            case .stopped?: try await keepStopped(id, desired!)
            case .removed?, nil: try await remove(id, desired: desired)
            }
        } catch let error where error is Abandoned || error is CancellationError || Task.isCancelled {
            throw error
        } catch {
            // E.g. the journal cannot be written: nothing was switched that the journal does not know.
            logger.error("Cannot converge an instance", metadata: ["instance.id": "\(id)", "error": "\(error)"])
            let removing = desired == nil || desired?.desiredState == .removed
            try await report(
                id, removing ? .removalFailed : .deploymentError, health: live[id] != nil ? .running : .notAvailable,
                "\(error)")
        }
    }

    // MARK: - Desired states

    /// RUNNING: finish what was interrupted, keep the committed version serving, deploy the desired one.
    func keepRunning(_ id: String, _ desired: DesiredInstance) async throws {
        var journal = loadedJournal(id)
        if try await settle(id, desired, &journal) == .pending { return }
        // The committed version keeps serving while a new one downloads and unpacks.
        try await startCommittedIfNeeded(id, journal)
        if let operation = journal.operation {
            if try await deploy(id, operation, &journal) == .pending { return }
        }
        if let committed = journal.committed, let running = live[id], running.key == committed.key,
            committed.instance.differsInCameraCredentialsOnly(from: desired),
            await running.handle.updateCameraCredentials(desired)
        {
            // A rotated camera password: the running application takes it (each camera from its next connection);
            // neither it nor its other cameras restart.
            journal.committed?.instance = desired
            live[id]?.instance = desired
            try await save(id, journal)
            logger.info("Camera credentials updated without a restart", metadata: ["instance.id": "\(id)"])
            try await report(
                id, .deploymentSucceeded, health: .running,
                "\(desired.versionName) runs on with its cameras' new credentials (not restarted)")
            return
        }
        if let committed = journal.committed, committed.instance.sameConfiguration(as: desired) {
            try await startCommittedIfNeeded(id, journal)
            if committed.instance.deploymentId != desired.deploymentId {
                journal.committed?.instance = desired
                try await save(id, journal)
                try await report(
                    id, .deploymentSucceeded, health: live[id] != nil ? .running : .error,
                    "\(desired.versionName) is already running with this configuration")
            }
            return
        }
        if let failed = journal.failed, failed.instance.sameDeployment(as: desired) { return }  // not retried
        guard let key = desired.archiveKey else {
            let reason =
                "the archive digest \"\(desired.archiveDigest.prefix(80))\" is not sha256: and 64 hexadecimal digits; the running version is unchanged"
            journal.failed = .init(instance: desired, reason: reason)
            try await save(id, journal)
            try await report(id, .deploymentError, health: live[id] != nil ? .running : .notAvailable, reason)
            return
        }
        _ = try await deploy(id, .init(step: .download, target: desired, key: key), &journal)
    }

    /// STOPPED: finish what was interrupted, then stop the instance, keeping its files.
    func keepStopped(_ id: String, _ desired: DesiredInstance) async throws {
        var journal = loadedJournal(id)
        if try await settle(id, desired, &journal) == .pending { return }
        guard live[id] != nil else { return }
        journal.operation = .init(step: .stop, target: desired, key: journal.committed?.key)
        try await enter(.stop, id, &journal)
        try await stopLive(id)
        journal.operation = nil
        try await save(id, journal)
        try await report(id, nil, health: .notAvailable, "stopped as desired; its files are kept")
    }

    /// REMOVED, or not desired at all: stop the instance and delete its folder. Only an instance the server still
    /// lists (`desired` not nil) is reported on.
    func remove(_ id: String, desired: DesiredInstance?) async throws {
        let folder = folder(id)
        let reporting = desired != nil
        guard FileManager.default.fileExists(atPath: folder.root.path) || live[id] != nil else {
            journals[id] = nil
            if reporting && !removalReported.contains(id) {
                try await report(id, .removalSucceeded, health: .notAvailable, "the instance is removed")
                removalReported.insert(id)
            }
            return
        }
        var journal = loadedJournal(id)
        journal.operation = .init(step: .remove, target: desired, key: nil)
        try await enter(.remove, id, &journal)
        if reporting {
            try await report(id, .removalInProgress, "stopping the instance and deleting its files")
        }
        try await stopLive(id)
        let doomed = instancesFolder.appending(path: ".removing-\(id)")
        try await DeploymentIO.run {
            DeploymentIO.delete(doomed)
            try DeploymentIO.rename(folder.root, over: doomed)  // one step: the instance's folder is gone
            DeploymentIO.delete(doomed)
        }
        journals[id] = nil
        lastHealth[id] = nil
        waitingForRoom[id] = nil
        pruneArtifacts()
        if reporting {
            try await report(
                id, .removalSucceeded, health: .notAvailable, "the instance is stopped and its files are deleted")
            removalReported.insert(id)
        }
    }

    /// Deals with an operation found in the journal (from before a restart, or left pending): a download or unpack
    /// of something no longer desired running is dropped (nothing was switched yet), as is a stop or removal that
    /// the desired state no longer asks for; anything past the unpack is finished first, as it is local work.
    private func settle(
        _ id: String, _ desired: DesiredInstance, _ journal: inout InstanceJournal
    ) async throws -> DeploymentOutcome? {
        guard var operation = journal.operation else { return nil }
        switch operation.step {
        case .download, .unpack:
            let continuing =
                desired.desiredState == .running && operation.target.map { $0.sameDeployment(as: desired) } ?? false
            guard !continuing else { return nil }
            journal.operation = nil
            try await save(id, journal)
            return nil
        case .stop, .remove:
            journal.operation = nil
            try await save(id, journal)
            return nil
        case .stopOld, .switchVersion, .start, .verify, .commit, .rollback:
            if operation.step == .verify && live[id] == nil {
                operation.step = .start  // the agent restarted during the health check: start again (counted)
            }
            return try await deploy(id, operation, &journal)
        }
    }

    // MARK: - A deployment

    /// Takes `operation` from its step to the end: commit, rollback, failure, or pending (an interrupted download).
    func deploy(
        _ id: String, _ operation: InstanceJournal.Operation, _ journal: inout InstanceJournal
    ) async throws -> DeploymentOutcome {
        var operation = operation
        guard let target = operation.target, let key = operation.key else {
            journal.operation = nil
            try await save(id, journal)
            return .failed
        }
        let folder = folder(id)
        var rollbackTried = false
        while true {
            journal.operation = operation
            do {
                switch operation.step {
                case .download:
                    // Refused before anything is written (the journal included) when the data volume is full.
                    try DataVolume.requireSpace(0, in: directory, for: "deploying \(target.versionName)")
                    try await enter(.download, id, &journal)
                    try await report(id, .deploymentInProgress, "downloading \(target.versionName)")
                    let archive = try await fetch(key)
                    // Signed by the control plane (its pinned key): checked before anything is unpacked or used.
                    try verify(
                        archive, .package, digest: target.archiveDigest, signature: target.archiveSignature,
                        name: "the archive of \(target.versionName)")
                    // The model files its model nodes are served with, by digest like the archive.
                    for (node, model) in target.models.sorted(by: { $0.key < $1.key }) {
                        guard let modelKey = DesiredInstance.key(of: model.digest) else {
                            throw DeploymentFailure(
                                "model node \(node): the model digest \"\(model.digest.prefix(80))\" is not sha256: and 64 hexadecimal digits"
                            )
                        }
                        let file = try await fetch(modelKey)
                        try verify(
                            file, .model, digest: model.digest, signature: model.signature,
                            name: "model node \(node)'s model file \(model.filename)")
                    }
                    operation.step = .unpack
                case .unpack:
                    try await enter(.unpack, id, &journal)
                    let archive = artifacts.file(key)
                    if !FileManager.default.fileExists(atPath: folder.version(key).path),
                        !FileManager.default.fileExists(atPath: archive.path)
                    {
                        operation.step = .download
                        continue
                    }
                    try await DeploymentIO.run { try folder.unpack(archive, key: key) }
                    operation.step = .stopOld
                case .stopOld:
                    waitingForRoom[id] = nil  // the room was found
                    try await enter(.stopOld, id, &journal)
                    try await stopLive(id)
                    operation.step = .switchVersion
                case .switchVersion:
                    try await enter(.switchVersion, id, &journal)
                    try await DeploymentIO.run { try folder.switchCurrent(to: key) }
                    operation.step = .start
                case .start:
                    guard operation.startAttempts < policy.maxStartAttempts else {
                        operation.failure =
                            "\(target.versionName) was interrupted \(operation.startAttempts) times while starting or being checked (the agent restarted each time)"
                        operation.step = .rollback
                        continue
                    }
                    operation.startAttempts += 1
                    journal.operation = operation
                    try await enter(.start, id, &journal)
                    do {
                        try await start(id, target, key: key)
                        operation.step = .verify
                    } catch let error where error is Abandoned || error is CancellationError || Task.isCancelled {
                        throw error
                    } catch {
                        operation.failure = "\(target.versionName) failed to start: \(error)"
                        operation.step = .rollback
                    }
                case .verify:
                    try await enter(.verify, id, &journal)
                    if let failure = try await healthGate(id, target) {
                        operation.failure = failure
                        operation.step = .rollback
                    } else {
                        operation.step = .commit
                    }
                case .commit:
                    try await enter(.commit, id, &journal)
                    try await commit(id, target, key: key, &journal)
                    return .committed
                case .rollback:
                    rollbackTried = true
                    try await enter(.rollback, id, &journal)
                    try await rollback(id, target, failure: operation.failure, &journal)
                    return .rolledBack
                case .stop, .remove:
                    journal.operation = nil
                    try await save(id, journal)
                    return .failed
                }
            } catch let error where error is Abandoned || error is CancellationError || Task.isCancelled {
                throw error
            } catch {
                let failure =
                    error as? DeploymentFailure ?? DeploymentFailure("\(error)", diskFull: isOutOfSpace(error))
                switch operation.step {
                case .download, .unpack:
                    return try await fail(id, target, failure, &journal)
                default:
                    // Something was stopped or switched already: go back to the committed version, once.
                    guard !rollbackTried else { throw failure }
                    operation.failure = "deploying \(target.versionName) failed: \(failure.reason)"
                    operation.step = .rollback
                }
            }
        }
    }

    /// A deployment that failed before anything was stopped or switched: DEPLOYMENT_ERROR; the running version is
    /// untouched. An interrupted download stays pending in the journal; anything else is not tried again.
    private func fail(
        _ id: String, _ target: DesiredInstance, _ failure: DeploymentFailure, _ journal: inout InstanceJournal
    ) async throws -> DeploymentOutcome {
        if !failure.retryable {
            journal.operation = nil
            journal.failed = .init(instance: target, reason: failure.reason)
        }
        do {
            try await save(id, journal)
        } catch let error where failure.diskFull && !(error is Abandoned || error is CancellationError) {
            // The journal cannot be written on the full disk either; the one in memory keeps the deployment pending.
            logger.debug("The journal cannot be saved on the full disk", metadata: ["instance.id": "\(id)"])
        }
        if !failure.retryable {
            let folder = folder(id)
            let keep = journal.keptKeys
            try await DeploymentIO.run { folder.prune(keeping: keep) }
            pruneArtifacts()
        }
        // Waiting for room is retried often and cheaply (the space check comes first): said again only when the
        // reason changes.
        let repeated = failure.diskFull && waitingForRoom[id] == failure.reason
        waitingForRoom[id] = failure.diskFull ? failure.reason : nil
        if !repeated {
            try await report(
                id, .deploymentError, health: live[id] != nil ? .running : .notAvailable, failure.reason)
        }
        return failure.retryable ? .pending : .failed
    }

    /// The health gate: nil once the running version infers a frame; otherwise why it is unhealthy (crashed too
    /// often, or no frame by the deadline).
    private func healthGate(_ id: String, _ target: DesiredInstance) async throws -> String? {
        let clock = ContinuousClock()
        let started = clock.now
        while true {
            try alive()
            guard let running = live[id] else { return "\(target.versionName) stopped during its health check" }
            let sample = running.handle.health()
            lastHealth[id] = sample
            if sample.crashes >= policy.maxCrashes {
                return
                    "\(target.versionName) crashed \(sample.crashes) times (last: \(sample.lastError ?? "no error given"))"
            }
            if sample.framesInferred > 0 { return nil }
            if clock.now - started >= policy.deadline {
                var reason = "\(target.versionName) inferred no frame within \(policy.deadline.spoken) of starting"
                if let last = sample.lastError { reason += " (last error: \(last))" }
                return reason + "; check its cameras and models"
            }
            try await Task.sleep(for: policy.checkInterval)
        }
    }

    /// Commits the new version: it is the one to go back to from now on; versions older than the previous one are
    /// deleted.
    private func commit(
        _ id: String, _ target: DesiredInstance, key: String, _ journal: inout InstanceJournal
    ) async throws {
        if let before = journal.committed, before.key != key { journal.previousKey = before.key }
        journal.committed = .init(instance: target, key: key)
        journal.operation = nil
        journal.failed = nil
        try await save(id, journal)
        let folder = folder(id)
        let keep = journal.keptKeys
        try await DeploymentIO.run { folder.prune(keeping: keep) }
        pruneArtifacts()
        var description = "\(target.versionName) passed its health check and is committed"
        if live[id] != nil, let frames = lastHealth[id]?.framesInferred {
            description += " (\(frames) frames inferred)"
        }
        try await report(id, .deploymentSucceeded, health: .running, description)
    }

    /// Rolls back: stops the new version, points `current` at the committed one and starts it; with none, leaves the
    /// instance stopped. Reports DEPLOYMENT_FAILED with the reason; the deployment is not tried again.
    private func rollback(
        _ id: String, _ target: DesiredInstance, failure: String?, _ journal: inout InstanceJournal
    ) async throws {
        try await stopLive(id)
        let folder = folder(id)
        let reason = failure ?? "\(target.versionName) was rolled back"
        let description: String
        let health: HealthStatus
        if let committed = journal.committed {
            try await DeploymentIO.run { try folder.switchCurrent(to: committed.key) }
            do {
                try await start(id, committed.instance, key: committed.key)
                description = "\(reason); rolled back to \(committed.instance.packageVersion)"
                health = .running
            } catch let error where error is Abandoned || error is CancellationError || Task.isCancelled {
                throw error
            } catch {
                description =
                    "\(reason); rolled back to \(committed.instance.packageVersion), which failed to start too: \(error)"
                health = .error
            }
        } else {
            try await DeploymentIO.run { folder.clearCurrent() }
            description = "\(reason); there is no earlier version to roll back to, so the instance is stopped"
            health = .error
        }
        journal.operation = nil
        journal.failed = .init(instance: target, reason: description)
        try await save(id, journal)
        let keep = journal.keptKeys
        try await DeploymentIO.run { folder.prune(keeping: keep) }
        pruneArtifacts()
        try await report(id, .deploymentFailed, health: health, description)
    }

    // MARK: - Running versions

    /// Starts the committed version when nothing runs (after a restart, or STOPPED then RUNNING again), making sure
    /// `current` names it first. A failure to start is reported as health ERROR.
    func startCommittedIfNeeded(_ id: String, _ journal: InstanceJournal) async throws {
        guard live[id] == nil, let committed = journal.committed else { return }
        if let step = journal.operation?.step, step != .download && step != .unpack { return }
        let folder = folder(id)
        do {
            if folder.currentKey() != committed.key {
                try await DeploymentIO.run { try folder.switchCurrent(to: committed.key) }
            }
            try await start(id, committed.instance, key: committed.key)
        } catch let error where error is Abandoned || error is CancellationError || Task.isCancelled {
            throw error
        } catch {
            try await report(
                id, nil, health: .error, "\(committed.instance.versionName) failed to start: \(error)")
        }
    }

    /// Starts the version `current` names (which the caller made `key`).
    private func start(_ id: String, _ instance: DesiredInstance, key: String) async throws {
        try alive()
        let project = try folder(id).project(key)
        logger.info(
            "Starting an instance",
            metadata: ["instance.id": "\(id)", "package.version": "\(instance.packageVersion)"])
        let handle = try await runner.start(instance, project: project)
        try alive()
        live[id] = LiveVersion(handle: handle, instance: instance, key: key)
    }

    /// Stops what runs of the instance, if anything.
    func stopLive(_ id: String) async throws {
        try alive()
        guard let running = live.removeValue(forKey: id) else { return }
        logger.info(
            "Stopping an instance",
            metadata: ["instance.id": "\(id)", "package.version": "\(running.instance.packageVersion)"])
        await running.handle.stop()
    }

    // MARK: - Disk

    /// The instance's journal: the one in memory, else the one on disk, else an empty one.
    func loadedJournal(_ id: String) -> InstanceJournal {
        if let journal = journals[id] { return journal }
        let journal = folder(id).loadJournal() ?? InstanceJournal()
        journals[id] = journal
        return journal
    }

    /// Writes the journal (atomically, synced).
    func save(_ id: String, _ journal: InstanceJournal) async throws {
        try alive()
        journals[id] = journal
        let folder = folder(id)
        try await DeploymentIO.run { try folder.saveJournal(journal) }
        try alive()
    }

    /// Persists `step` as the journal's step, then calls `beforeStep`; when that throws, abandons everything.
    func enter(_ step: DeploymentStep, _ id: String, _ journal: inout InstanceJournal) async throws {
        journal.operation?.step = step
        try await save(id, journal)
        logger.debug("Deployment step", metadata: ["instance.id": "\(id)", "deployment.step": "\(step.rawValue)"])
        guard let beforeStep else { return }
        do {
            try beforeStep(step, id)
        } catch {
            abandoned = true
            throw Abandoned()
        }
    }

    /// Checks a downloaded artifact's signature (``ArtifactTrust``); one that fails is deleted from the cache.
    func verify(_ file: URL, _ kind: ArtifactSignature.Kind, digest: String, signature: String?, name: String) throws {
        do {
            try trust.verify(kind, digest: digest, signature: signature, name: name)
        } catch {
            DeploymentIO.delete(file)
            throw error
        }
    }

    /// The verified archive `key`, downloading it once however many instances ask at the same time.
    func fetch(_ key: String) async throws -> URL {
        if let download = downloads[key] { return try await download.value }
        let (artifacts, source, policy, logger) = (artifacts, source, downloadPolicy, logger)
        let download = Task { try await artifacts.fetch(key: key, source: source, policy: policy, logger: logger) }
        downloads[key] = download
        defer { downloads[key] = nil }
        return try await withTaskCancellationHandler {
            try await download.value
        } onCancel: {
            download.cancel()
        }
    }

    /// Deletes the archives (and partial downloads) that no instance's journal refers to. Runs on the actor without
    /// suspending, so that no download starts in between.
    func pruneArtifacts() {
        var keep = Set(downloads.keys)
        for journal in journals.values { keep.formUnion(journal.keptKeys) }
        for name in Self.entries(of: instancesFolder) where !name.hasPrefix(".") && journals[name] == nil {
            if let journal = folder(name).loadJournal() { keep.formUnion(journal.keptKeys) }
        }
        artifacts.prune(keeping: keep)
    }
}

extension Duration {
    /// "60 s", "1.5 s", "200 ms".
    fileprivate var spoken: String {
        let (seconds, attoseconds) = components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds % 1000 == 0 { return "\(seconds) s" }
        if milliseconds < 1000 { return "\(milliseconds) ms" }
        return "\(Double(milliseconds) / 1000) s"
    }
}
