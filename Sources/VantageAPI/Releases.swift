import Foundation

// MARK: - Software releases and rollouts (issue 16, "Software updates")

/// A Vantage release the control plane keeps: the `vantage_<version>_<arch>.tar.gz` `make package` builds, stored
/// once by its SHA-256, which devices download and install beside the version they run.
public struct Release: Codable, Sendable, Equatable {
    /// The release's version, read from the tarball's `share/vantage/version` (or given at upload).
    public var version: String
    /// `sha256:<hex>` of the tarball.
    public var digest: String
    public var size: Int64
    public var createdAt: Date

    public init(version: String, digest: String, size: Int64, createdAt: Date) {
        self.version = version
        self.digest = digest
        self.size = size
        self.createdAt = createdAt
    }
}

/// Where a rollout stands as a whole.
public enum RolloutState: String, Codable, Sendable, CaseIterable {
    /// The canary, or the devices after it, are still installing.
    case inProgress = "in-progress"
    /// Every device runs the release and came back healthy (or went straight to a later rollout's release).
    case succeeded
    /// The canary (or a later device) rolled the release back: no further device gets it.
    case failed
}

/// Where one device of a rollout stands, in the order the agent goes through.
public enum RolloutDeviceState: String, Codable, Sendable, CaseIterable {
    /// Not started: waiting for the device to pick it up (or, after the canary, for the canary to be healthy).
    case pending
    case downloading
    /// Unpacking beside the running version.
    case installing
    /// Switched: the new version runs and has until its deadline to come back healthy.
    case trial
    /// The new version reconnected, runs its instances and infers frames.
    case healthy
    /// The new version crashed or did not come back healthy in time; the device runs the previous one again.
    case rolledBack = "rolled-back"
    /// The release could not be installed (download, digest, unpacking); the device runs what it ran.
    case failed
    /// The device came back healthy on a later rollout's release without installing this one (it was offline while
    /// both were rolled out): set by the server, never reported by a device.
    case superseded

    /// Whether the device is done with the release, one way or the other.
    public var isFinal: Bool { self == .healthy || self == .rolledBack || self == .failed || self == .superseded }
}

/// One device in a rollout.
public struct RolloutDevice: Codable, Sendable, Equatable {
    public var deviceId: String
    /// Its place: 0 is the canary, which gets the release first; the others get it once the canary is healthy.
    public var position: Int
    public var state: RolloutDeviceState
    /// Why it rolled back or failed, as the device said.
    public var reason: String?
    public var updatedAt: Date

    public init(deviceId: String, position: Int, state: RolloutDeviceState, reason: String? = nil, updatedAt: Date) {
        self.deviceId = deviceId
        self.position = position
        self.state = state
        self.reason = reason
        self.updatedAt = updatedAt
    }
}

/// A release going out to devices, canary first.
public struct Rollout: Codable, Sendable, Equatable {
    public var id: String
    public var releaseVersion: String
    public var state: RolloutState
    /// Why it failed: the device that stopped it and its reason.
    public var reason: String?
    public var devices: [RolloutDevice]
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, releaseVersion: String, state: RolloutState, reason: String? = nil, devices: [RolloutDevice],
        createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.releaseVersion = releaseVersion
        self.state = state
        self.reason = reason
        self.devices = devices
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A device's part in its newest rollout, as `devices show` and the console show it.
public struct DeviceSoftwareUpdate: Codable, Sendable, Equatable {
    public var rolloutId: String
    public var releaseVersion: String
    public var state: RolloutDeviceState
    public var reason: String?

    public init(rolloutId: String, releaseVersion: String, state: RolloutDeviceState, reason: String? = nil) {
        self.rolloutId = rolloutId
        self.releaseVersion = releaseVersion
        self.state = state
        self.reason = reason
    }
}

/// Starts a rollout: `devices` in order (the first is the canary), or every device with `all`.
public struct NewRollout: RequestBody {
    public static let fields = ["releaseVersion", "deviceIds", "all"]
    public var releaseVersion: String
    public var deviceIds: [String]?
    public var all: Bool?

    public init(releaseVersion: String, deviceIds: [String]? = nil, all: Bool? = nil) {
        self.releaseVersion = releaseVersion
        self.deviceIds = deviceIds
        self.all = all
    }
}

/// The release a device must run, in its desired state: downloaded by digest from `url` on the device endpoint
/// (mutual TLS, resumable), as package archives are.
public struct DesiredSoftware: Codable, Sendable, Equatable {
    public var rolloutId: String
    public var version: String
    public var digest: String
    public var size: Int64
    /// The path of the download on the device endpoint: `/api/v1/devices/{id}/artifacts/{digest}`.
    public var url: String
    /// The control plane's signature of the tarball (``ArtifactSignature``, base64); nil from older servers.
    public var signature: String?

    public init(rolloutId: String, version: String, digest: String, size: Int64, url: String) {
        self.rolloutId = rolloutId
        self.version = version
        self.digest = digest
        self.size = size
        self.url = url
    }
}

/// What a device says, in its heartbeats, about the release it was last asked to install.
public struct SoftwareUpdateReport: RequestBody, Equatable {
    public static let fields = ["rolloutId", "version", "state", "reason"]
    public var rolloutId: String?
    public var version: String
    public var state: RolloutDeviceState
    public var reason: String?

    public init(rolloutId: String?, version: String, state: RolloutDeviceState, reason: String? = nil) {
        self.rolloutId = rolloutId
        self.version = version
        self.state = state
        self.reason = reason
    }
}
