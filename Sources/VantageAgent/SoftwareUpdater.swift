import Foundation
import Logging
import Synchronization
import VantageAPI
import VantageCore

/// The agent's side of a software update: when the desired state names a release other than the one running, it
/// downloads the tarball by digest (verified, resumable, as package archives are), unpacks it beside the running
/// version in `DATA/software/<version>/`, selects it on trial in `state.json` and asks for a switch: the agent
/// stops its instances and the launcher (``SoftwareLauncher``) starts the new version, which runs them again. On
/// trial, the new version clears its trial once it is healthy (connected to the server, every instance running and
/// inferring); the launcher rolls it back otherwise. Heartbeats carry where this stands (``report``).
final class SoftwareUpdater: Sendable {
    let dataDirectory: URL
    /// The version running in this process.
    let version: String
    let deadline: Duration
    let maxStarts: Int
    let logger: Logger
    /// The pause before an interrupted download is tried again.
    let retryPause: Duration = .seconds(60)
    private let source: any ArtifactSource
    private let current = Mutex<SoftwareUpdateReport?>(nil)
    private let targets: AsyncStream<DesiredSoftware>
    private let sink: AsyncStream<DesiredSoftware>.Continuation

    init(
        dataDirectory: URL, version: String, deadline: Duration, maxStarts: Int, source: any ArtifactSource,
        logger: Logger
    ) {
        self.dataDirectory = dataDirectory
        self.version = version
        self.deadline = deadline
        self.maxStarts = maxStarts
        self.source = source
        self.logger = logger
        // Only the newest desired release matters.
        (targets, sink) = AsyncStream.makeStream(of: DesiredSoftware.self, bufferingPolicy: .bufferingNewest(1))
        current.withLock { $0 = (try? SoftwareState.load(from: dataDirectory))?.outcome }
    }

    /// What the next heartbeat says about the last release this device was asked to install.
    var report: SoftwareUpdateReport? { current.withLock { $0 } }

    private var folder: URL { SoftwareState.folder(in: dataDirectory) }

    /// A new desired state's release (nil: none named; the device keeps what it runs).
    func offer(_ software: DesiredSoftware?) {
        if let software { sink.yield(software) }
    }

    /// Checks the trial of this version (if it is on one) with `healthy` (given the instances that ran before the
    /// switch), then installs the releases offered; `running` answers the instances running and inferring now.
    /// Returns when a newly installed release must be switched to (the agent then stops, and ``SoftwareLauncher``
    /// starts it); never returns otherwise.
    func run(
        healthy: @escaping @Sendable ([String]) async -> Bool, running: @escaping @Sendable () async -> [String]
    ) async {
        await finishTrial(healthy: healthy)
        for await software in targets {
            retrying: while !Task.isCancelledOrShuttingDown {
                switch await install(software, running: await running()) {
                case .switchNow: return
                case .done: break retrying
                // A newer desired release waits in the stream meanwhile and is taken after this one.
                case .retry: try? await Task.sleep(for: retryPause)
                }
            }
        }
        while !Task.isCancelledOrShuttingDown { try? await Task.sleep(for: .seconds(3600)) }
    }

    /// While this version is on trial: once `healthy` holds, the trial ends and the release is this device's.
    private func finishTrial(healthy: @escaping @Sendable ([String]) async -> Bool) async {
        guard let trial = (try? SoftwareState.load(from: dataDirectory))?.trial, trial.version == version else {
            return
        }
        logger.notice(
            "software release on trial: waiting until it is healthy",
            metadata: ["release.version": "\(version)", "release.deadline": "\(APIJSON.formatTime(trial.deadline))"])
        while !Task.isCancelledOrShuttingDown {
            if await healthy(trial.instances ?? []) {
                do {
                    var state = try SoftwareState.load(from: dataDirectory)
                    guard state.trial?.version == version else { return }
                    state.trial = nil
                    state.outcome = SoftwareUpdateReport(
                        rolloutId: state.outcome?.version == version ? state.outcome?.rolloutId : nil,
                        version: version, state: .healthy)
                    try state.save(in: dataDirectory)
                    current.withLock { $0 = state.outcome }
                    logger.notice("software release is healthy", metadata: ["release.version": "\(version)"])
                    removeOldReleases(keeping: [state.selected, trial.previous])
                } catch {
                    logger.error("cannot end the release's trial: \(error)")
                }
                return
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Installs `software` unless it runs already or was refused here. Answers whether to switch to it now.
    /// What to do after an install.
    private enum Installed {
        /// Stop and start the new release.
        case switchNow
        /// Nothing more for this release: it runs already, or it was refused (reported).
        case done
        /// The download was interrupted too often: try again later, from the bytes on disk.
        case retry
    }

    private func install(_ software: DesiredSoftware, running: [String]) async -> Installed {
        let state = (try? SoftwareState.load(from: dataDirectory)) ?? SoftwareState()
        if software.version == version {
            // Running it already (or on trial: finishTrial says when it is healthy).
            if state.trial == nil { say(software, .healthy) }
            return .done
        }
        if state.refused.contains(software.digest) {
            // Rolled back here before: said once more, never tried again.
            let reason =
                state.outcome?.version == software.version
                ? state.outcome?.reason : "this device rolled \(software.version) back before"
            say(software, .rolledBack, reason)
            return .done
        }
        let metadata: Logger.Metadata = [
            "release.version": "\(software.version)", "release.digest": "\(software.digest)",
        ]
        logger.notice("installing software release", metadata: metadata)
        let hex = software.digest.hasPrefix("sha256:") ? String(software.digest.dropFirst(7)) : software.digest
        guard hex.count == 64, hex.allSatisfy(\.isHexDigit), Self.isPlainName(software.version) else {
            say(software, .failed, "the server named a release this agent cannot install (\(software.version))")
            return .done
        }
        do {
            say(software, .downloading)
            let cache = ArtifactCache(folder: folder.appending(path: "downloads"))
            // Room for the tarball (less what an interrupted download left) before a byte is fetched; the unpacked
            // release is checked once its size can be read from the tarball.
            let have = DataVolume.size(of: cache.partial(hex).path)
            try DataVolume.requireSpace(
                max(0, software.size - have), in: folder, for: "downloading software release \(software.version)")
            let tarball = try await cache.fetch(key: hex, source: source, policy: DownloadPolicy(), logger: logger)
            // Signed by the control plane's pinned artifact key (the reconciler pins it): checked before unpacking.
            let trust = ArtifactTrust(file: dataDirectory.appending(path: "deployments/artifact-key"))
            do {
                try trust.verify(
                    .release, digest: software.digest, signature: software.signature,
                    name: "software release \(software.version)")
            } catch {
                DeploymentIO.delete(tarball)
                throw error
            }
            say(software, .installing)
            try DataVolume.requireSpace(
                Self.unpackedSize(of: tarball), in: folder, for: "unpacking software release \(software.version)")
            try await unpack(tarball, as: software.version)
            DeploymentIO.delete(tarball)
            var next = try SoftwareState.load(from: dataDirectory)
            next.trial = SoftwareState.Trial(
                version: software.version, digest: software.digest, previous: next.selected,
                deadline: Date().addingTimeInterval(Double(deadline.components.seconds)), maxStarts: maxStarts)
            next.trial?.instances = running
            next.selected = software.version
            next.outcome = SoftwareUpdateReport(
                rolloutId: software.rolloutId, version: software.version, state: .trial)
            try next.save(in: dataDirectory)
            current.withLock { $0 = next.outcome }
            logger.notice("switching to the new software release", metadata: metadata)
            return .switchNow
        } catch is CancellationError {
            return .done
        } catch {
            let reason = "\(error)"
            logger.error("cannot install the software release: \(reason)", metadata: metadata)
            var next = (try? SoftwareState.load(from: dataDirectory)) ?? SoftwareState()
            if let failure = error as? DeploymentFailure, failure.retryable {
                // An interrupted download: tried again after a pause, from the bytes on disk.
                say(software, .downloading, reason)
                return .retry
            }
            next.outcome = SoftwareUpdateReport(
                rolloutId: software.rolloutId, version: software.version, state: .failed, reason: reason)
            if !next.refused.contains(software.digest) { next.refused.append(software.digest) }
            try? next.save(in: dataDirectory)
            current.withLock { $0 = next.outcome }
            return .done
        }
    }

    private func say(_ software: DesiredSoftware, _ state: RolloutDeviceState, _ reason: String? = nil) {
        current.withLock {
            $0 = SoftwareUpdateReport(
                rolloutId: software.rolloutId, version: software.version, state: state, reason: reason)
        }
    }

    static func isPlainName(_ version: String) -> Bool {
        !version.isEmpty && version.count <= 64 && !version.hasPrefix(".")
            && version.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._+~-".contains($0)) }
    }

    /// The size of a gzip file's content, from its trailer (ISIZE: the size modulo 4 GiB, as `gzip -l` reads it;
    /// releases are far smaller); 0 when it cannot be read.
    static func unpackedSize(of file: URL) -> Int64 {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return 0 }
        defer { try? handle.close() }
        guard let end = try? handle.seekToEnd(), end >= 18, (try? handle.seek(toOffset: end - 4)) != nil,
            let trailer = try? handle.read(upToCount: 4), trailer.count == 4
        else { return 0 }
        return trailer.reversed().reduce(Int64(0)) { $0 << 8 | Int64($1) }
    }

    /// Unpacks the tarball into `DATA/software/<version>/`: into a scratch folder first, renamed into place once
    /// whole, so a crash never leaves half a release under its name. The running version's folder is never touched.
    private func unpack(_ tarball: URL, as release: String) async throws {
        let destination = folder.appending(path: release)
        let scratch = folder.appending(path: ".\(release).unpacking")
        let dataDirectory = dataDirectory
        try await DeploymentIO.run {
            let manager = FileManager.default
            try? manager.removeItem(at: scratch)
            try manager.createDirectory(at: scratch, withIntermediateDirectories: true)
            let process = Process()
            process.executableURL = URL(filePath: "/usr/bin/tar")
            process.arguments = ["-xzf", tarball.path, "-C", scratch.path, "--no-same-owner"]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let message = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                try? manager.removeItem(at: scratch)
                throw DeploymentFailure(
                    "unpacking release \(release) failed: \(String(decoding: message, as: UTF8.self).prefix(300))")
            }
            // Flushed before it takes its name: state.json selects it next, and after a power cut the selected
            // release's files must be whole, not the empty files of unsynced writes.
            DeploymentIO.syncTree(scratch)
            try? manager.removeItem(at: destination)
            try manager.moveItem(at: scratch, to: destination)
            DeploymentIO.syncFolder(destination.deletingLastPathComponent())
            guard SoftwareState.executable(of: release, in: dataDirectory) != nil else {
                try? manager.removeItem(at: destination)
                throw DeploymentFailure("release \(release) holds no executable bin/vantage")
            }
        }
    }

    /// Deletes the releases in `DATA/software` other than `keep` (the running one and the one to roll back to).
    private func removeOldReleases(keeping keep: [String?]) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names where !["state.json", "downloads"].contains(name) && !keep.contains(name) {
            guard !name.hasPrefix(".") || name.hasSuffix(".unpacking") else { continue }
            DeploymentIO.delete(folder.appending(path: name))
        }
    }
}
