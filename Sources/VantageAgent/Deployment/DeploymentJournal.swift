import Foundation
import VantageAPI
import VantageMedia

/// A step the reconciler takes on an instance. Each is written to the instance's journal before it is taken, so an
/// agent killed at any point goes on from there after a restart.
public enum DeploymentStep: String, Codable, Sendable, CaseIterable {
    /// Download the new archive (resuming a partial one) and verify its digest.
    case download
    /// Unpack the archive into a version folder beside the running one.
    case unpack
    /// Stop the running version.
    case stopOld = "stop-old"
    /// Point `current` at the new version folder (atomically).
    case switchVersion = "switch"
    /// Start the new version.
    case start
    /// Wait for the new version to infer frames (the health gate).
    case verify
    /// Record the new version as the one to go back to; delete versions older than the previous one.
    case commit
    /// Stop the new version, point `current` back at the committed one and start it.
    case rollback
    /// Stop the instance, keeping its files (desired state STOPPED).
    case stop
    /// Stop the instance and delete its files (desired state REMOVED, or no longer desired at all).
    case remove
}

/// What the reconciler knows about one instance, kept in `instances/<id>/journal.json` and written atomically before
/// every step. It holds camera URLs with credentials and instances' AWS credentials: the file is readable by the
/// agent's user only.
struct InstanceJournal: Codable, Sendable, Equatable {
    /// The last version that passed its health gate: the one to go back to.
    var committed: VersionRecord?
    /// The version folder committed before `committed`'s, kept for one more rollback by hand; older ones are deleted.
    var previousKey: String?
    /// What is being done, when something is.
    var operation: Operation?
    /// The last deployment that failed, not tried again until the desired instance changes.
    var failed: FailedDeployment?

    /// A desired instance and the version folder it runs from.
    struct VersionRecord: Codable, Sendable, Equatable {
        var instance: DesiredInstance
        var key: String
    }

    /// An operation in progress and the step it is at.
    struct Operation: Codable, Sendable, Equatable {
        var step: DeploymentStep
        /// The desired instance being deployed; nil when removing an instance that is no longer desired at all.
        var target: DesiredInstance?
        /// The target's version folder key.
        var key: String?
        /// How many times the new version was started (the loop breaker counts them across restarts).
        var startAttempts = 0
        /// Why the new version is being rolled back.
        var failure: String?
    }

    /// A deployment that failed, and why.
    struct FailedDeployment: Codable, Sendable, Equatable {
        var instance: DesiredInstance
        var reason: String
    }

    /// The keys of the version folders (and archives) to keep.
    var keptKeys: Set<String> {
        Set([committed?.key, previousKey, operation?.key].compactMap { $0 })
            .union(committed?.instance.modelKeys ?? []).union(operation?.target?.modelKeys ?? [])
    }
}

extension DesiredInstance {
    /// Whether `other` runs the same archive with the same cameras, parameters, models, outputs document and AWS
    /// credentials: no new deployment is needed.
    func sameConfiguration(as other: DesiredInstance) -> Bool {
        archiveDigest == other.archiveDigest && packageVersion == other.packageVersion && cameras == other.cameras
            && parameters == other.parameters && models == other.models && outputs == other.outputs
            && awsCredentials == other.awsCredentials
    }

    /// Whether `other` differs from this configuration in its cameras' credentials only (the same cameras, each at
    /// the same stream with another user name or password): a change the running application takes without a
    /// restart.
    func differsInCameraCredentialsOnly(from other: DesiredInstance) -> Bool {
        guard cameras != other.cameras, cameras.count == other.cameras.count else { return false }
        for (node, camera) in cameras {
            guard let changed = other.cameras[node], changed.cameraId == camera.cameraId,
                StreamSource.redact(changed.url) == StreamSource.redact(camera.url),
                changed.detectUrl.map(StreamSource.redact) == camera.detectUrl.map(StreamSource.redact)
            else { return false }
        }
        var same = other
        same.cameras = cameras
        return sameConfiguration(as: same)
    }

    /// Whether `other` is the same deployment of the same configuration (its desired state aside).
    func sameDeployment(as other: DesiredInstance) -> Bool {
        sameConfiguration(as: other) && deploymentId == other.deploymentId
    }

    /// The hexadecimal SHA-256 of `archiveDigest`, which names the archive and its version folder; nil when the
    /// digest is not `sha256:` and 64 hexadecimal digits.
    var archiveKey: String? { Self.key(of: archiveDigest) }

    /// The artifact keys of the model files the instance serves its model nodes with (malformed digests left out:
    /// the download step refuses them).
    var modelKeys: [String] { models.values.compactMap { Self.key(of: $0.digest) } }

    /// The hexadecimal SHA-256 of a `sha256:…` digest; nil when it is not one.
    static func key(of digest: String) -> String? {
        guard digest.hasPrefix("sha256:") else { return nil }
        let hex = digest.dropFirst("sha256:".count).lowercased()
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit && $0.isASCII }) else { return nil }
        return hex
    }

    /// "version 2.0" (how reports name a version).
    var versionName: String { "version \(packageVersion)" }
}
