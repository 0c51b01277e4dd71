// VantageAPI: the control plane's resources as the REST API carries them, shared by `vantage server` and the
// `vantage devices|cameras|…` client. Field names are camelCase; state enums keep AWS Panorama's names where
// Panorama had them (provisioning and connection status, instance status and health, desired state).
import Foundation
import VantageCore

// MARK: - Roles and states

/// What an operator may do: viewers read, operators change the fleet, admins also manage tokens and see the audit log.
public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    case viewer
    case `operator`
    case admin

    private var rank: Int { Role.allCases.firstIndex(of: self)! }
    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
}

/// Panorama's DeviceStatus.
public enum ProvisioningStatus: String, Codable, Sendable, CaseIterable {
    case awaitingProvisioning = "AWAITING_PROVISIONING"
    case pending = "PENDING"
    case succeeded = "SUCCEEDED"
    case failed = "FAILED"
    case error = "ERROR"
    case deleting = "DELETING"
}

/// Panorama's DeviceConnectionStatus.
public enum ConnectionStatus: String, Codable, Sendable, CaseIterable {
    case online = "ONLINE"
    case offline = "OFFLINE"
    case awaitingCredentials = "AWAITING_CREDENTIALS"
    case notAvailable = "NOT_AVAILABLE"
    case error = "ERROR"
}

/// Panorama's DesiredState for an application instance.
public enum DesiredState: String, Codable, Sendable, CaseIterable {
    case running = "RUNNING"
    case stopped = "STOPPED"
    case removed = "REMOVED"
}

/// Panorama's ApplicationInstanceStatus.
public enum InstanceStatus: String, Codable, Sendable, CaseIterable {
    case deploymentPending = "DEPLOYMENT_PENDING"
    case deploymentRequested = "DEPLOYMENT_REQUESTED"
    case deploymentInProgress = "DEPLOYMENT_IN_PROGRESS"
    case deploymentError = "DEPLOYMENT_ERROR"
    case deploymentSucceeded = "DEPLOYMENT_SUCCEEDED"
    case deploymentFailed = "DEPLOYMENT_FAILED"
    case removalPending = "REMOVAL_PENDING"
    case removalRequested = "REMOVAL_REQUESTED"
    case removalInProgress = "REMOVAL_IN_PROGRESS"
    case removalFailed = "REMOVAL_FAILED"
    case removalSucceeded = "REMOVAL_SUCCEEDED"
}

/// Panorama's ApplicationInstanceHealthStatus.
public enum HealthStatus: String, Codable, Sendable, CaseIterable {
    case running = "RUNNING"
    case error = "ERROR"
    case notAvailable = "NOT_AVAILABLE"
}

/// Panorama's PackageVersionStatus.
public enum PackageVersionStatus: String, Codable, Sendable, CaseIterable {
    case registerPending = "REGISTER_PENDING"
    case registerCompleted = "REGISTER_COMPLETED"
    case failed = "FAILED"
    case deleting = "DELETING"
}

// MARK: - Resources

/// An appliance running `vantage agent`.
public struct Device: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String
    public var provisioningStatus: ProvisioningStatus
    /// ONLINE while heartbeats arrive (within 90 s of the last one).
    public var connectionStatus: ConnectionStatus
    public var lastHeartbeat: Date?
    public var softwareVersion: String?
    /// When the device's certificate ends; nil until it enrolls, and again once revoked.
    public var certificateExpiresAt: Date?
    /// The device's part in its newest software rollout, if it was in one.
    public var softwareUpdate: DeviceSoftwareUpdate?
    /// What an operator must look at (an expired certificate, a cloned one); absent when nothing is wrong.
    public var conditions: [DeviceCondition]?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, name: String, description: String, provisioningStatus: ProvisioningStatus,
        connectionStatus: ConnectionStatus, lastHeartbeat: Date? = nil, softwareVersion: String? = nil,
        certificateExpiresAt: Date? = nil, softwareUpdate: DeviceSoftwareUpdate? = nil,
        conditions: [DeviceCondition]? = nil, createdAt: Date, updatedAt: Date
    ) {
        self.softwareUpdate = softwareUpdate
        self.conditions = conditions
        self.id = id
        self.name = name
        self.description = description
        self.provisioningStatus = provisioningStatus
        self.connectionStatus = connectionStatus
        self.lastHeartbeat = lastHeartbeat
        self.softwareVersion = softwareVersion
        self.certificateExpiresAt = certificateExpiresAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Something wrong with a device that an operator must act on, said with what to do.
public struct DeviceCondition: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// The certificate ended; the agent renews it at its next contact within the grace window, or (past it) the
        /// device must enroll again.
        case certificateExpired = "CERTIFICATE_EXPIRED"
        /// The device's certificate is used by two agents on different boxes (or two processes) at once.
        case certificateCloned = "CERTIFICATE_CLONED"
        /// The disk holding the agent's data is full (its last heartbeat said so): applications keep running, new
        /// deployments wait, events that cannot be stored are counted; free disk space on the device.
        case diskFull = "DISK_FULL"
        /// The device's clock was more than 5 minutes off the server's at its last heartbeat; check NTP on it.
        case clockSkew = "CLOCK_SKEW"
    }

    public var kind: Kind
    public var message: String
    /// Since when it holds.
    public var since: Date

    public init(kind: Kind, message: String, since: Date) {
        self.kind = kind
        self.message = message
        self.since = since
    }
}

/// The answer to creating a device (or asking for a new token): its one-time provisioning token, shown this once,
/// which `vantage agent --token` exchanges for the device's certificate before `tokenExpiresAt`, and the
/// fingerprint of the server's CA, which the agent checks (`--ca-hash`) before it trusts the server.
public struct DeviceCreated: Codable, Sendable {
    public var device: Device
    public var provisioningToken: String
    public var tokenExpiresAt: Date
    public var caFingerprint: String
    /// Where agents reach the server's device endpoint (`https://host:port`, what `vantage agent enroll --server`
    /// takes); nil when the server does not serve one.
    public var deviceEndpoint: String?

    public init(
        device: Device, provisioningToken: String, tokenExpiresAt: Date, caFingerprint: String,
        deviceEndpoint: String? = nil
    ) {
        self.device = device
        self.provisioningToken = provisioningToken
        self.tokenExpiresAt = tokenExpiresAt
        self.caFingerprint = caFingerprint
        self.deviceEndpoint = deviceEndpoint
    }
}

/// The answer to an enrollment: the device's certificate (PEM) and the CA (PEM) the agent pins from then on.
public struct Enrollment: Codable, Sendable {
    public var deviceId: String
    public var certificate: String
    public var caCertificate: String
    public var certificateExpiresAt: Date

    public init(deviceId: String, certificate: String, caCertificate: String, certificateExpiresAt: Date) {
        self.deviceId = deviceId
        self.certificate = certificate
        self.caCertificate = caCertificate
        self.certificateExpiresAt = certificateExpiresAt
    }
}

/// An IP camera. Its credentials are write-only: stored encrypted, never returned.
public struct Camera: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String
    /// The stream URL without credentials.
    public var url: String
    /// The camera's low-resolution sub-stream, without credentials, when it has one: devices decode it for
    /// detection and keep `url` (the main stream) for clips. It uses the camera's credentials.
    public var detectUrl: String?
    public var hasCredentials: Bool
    /// The device that reads this camera, if assigned.
    public var deviceId: String?
    /// When a device last sent a snapshot of this camera.
    public var snapshotAt: Date?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, name: String, description: String, url: String, detectUrl: String? = nil, hasCredentials: Bool,
        deviceId: String? = nil, snapshotAt: Date? = nil, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.url = url
        self.detectUrl = detectUrl
        self.hasCredentials = hasCredentials
        self.deviceId = deviceId
        self.snapshotAt = snapshotAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A model file's version: content-addressed by SHA-256.
public struct ModelVersion: Codable, Sendable, Equatable {
    public var version: Int
    /// `sha256:<hex>`.
    public var digest: String
    public var size: Int64
    public var filename: String
    /// Panorama's descriptor (inputs with their shapes), when given.
    public var descriptor: JSONValue?
    public var createdAt: Date

    public init(
        version: Int, digest: String, size: Int64, filename: String, descriptor: JSONValue? = nil, createdAt: Date
    ) {
        self.version = version
        self.digest = digest
        self.size = size
        self.filename = filename
        self.descriptor = descriptor
        self.createdAt = createdAt
    }
}

/// A model and its versions.
public struct Model: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String
    public var latestVersion: Int?
    public var versions: [ModelVersion]
    public var createdAt: Date

    public init(
        id: String, name: String, description: String, latestVersion: Int? = nil, versions: [ModelVersion],
        createdAt: Date
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.latestVersion = latestVersion
        self.versions = versions
        self.createdAt = createdAt
    }
}

/// A camera node an application needs bound.
public struct CameraInput: Codable, Sendable, Equatable {
    public var node: String
    public var title: String?
    public var description: String?

    public init(node: String, title: String? = nil, description: String? = nil) {
        self.node = node
        self.title = title
        self.description = description
    }
}

/// A parameter node, with what a deployment may do with it.
public struct ParameterInput: Codable, Sendable, Equatable {
    public var node: String
    /// `string`, `int32`, `float32` or `boolean`.
    public var type: String
    public var defaultValue: JSONValue
    public var overridable: Bool
    public var mandatory: Bool
    public var title: String?
    public var description: String?
    public var constraintText: String?
    public var constraintRegex: String?

    public init(
        node: String, type: String, defaultValue: JSONValue, overridable: Bool, mandatory: Bool, title: String? = nil,
        description: String? = nil, constraintText: String? = nil, constraintRegex: String? = nil
    ) {
        self.node = node
        self.type = type
        self.defaultValue = defaultValue
        self.overridable = overridable
        self.mandatory = mandatory
        self.title = title
        self.description = description
        self.constraintText = constraintText
        self.constraintRegex = constraintRegex
    }
}

/// A registered version of a package: the application project as uploaded, checked by the runtime's parser.
public struct PackageVersion: Codable, Sendable, Equatable {
    public var version: String
    public var status: PackageVersionStatus
    public var digest: String
    public var size: Int64
    /// The application's name from its manifest.
    public var application: String
    public var cameras: [CameraInput]
    public var parameters: [ParameterInput]
    public var createdAt: Date

    public init(
        version: String, status: PackageVersionStatus, digest: String, size: Int64, application: String,
        cameras: [CameraInput], parameters: [ParameterInput], createdAt: Date
    ) {
        self.version = version
        self.status = status
        self.digest = digest
        self.size = size
        self.application = application
        self.cameras = cameras
        self.parameters = parameters
        self.createdAt = createdAt
    }
}

/// An application package (a project folder uploaded as a ZIP archive) and its versions.
public struct Package: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String
    public var latestVersion: String?
    public var versions: [PackageVersion]
    public var createdAt: Date

    public init(
        id: String, name: String, description: String, latestVersion: String? = nil, versions: [PackageVersion],
        createdAt: Date
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.latestVersion = latestVersion
        self.versions = versions
        self.createdAt = createdAt
    }
}

/// A package version deployed to a device with its cameras and parameter values.
public struct ApplicationInstance: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String
    public var packageId: String
    public var packageName: String
    public var packageVersion: String
    public var deviceId: String
    /// Camera node → camera id.
    public var cameras: [String: String]
    /// Parameter node → value, for the overridden ones.
    public var parameters: [String: JSONValue]
    /// Model node → the model version it serves, for the bound ones.
    public var models: [String: ModelBinding]
    /// The instance's `outputs` document as stored (sinks, rules, analytics; secrets only as `${NAME}` references);
    /// nil when it has none.
    public var outputs: JSONValue?
    /// The AWS credentials the application runs with, as may be shown (masked access key id, region); nil when it
    /// has none. The secret is never answered.
    public var awsCredentials: AWSCredentialsSummary?
    public var desiredState: DesiredState
    public var status: InstanceStatus
    public var healthStatus: HealthStatus
    public var statusDescription: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, name: String, description: String, packageId: String, packageName: String, packageVersion: String,
        deviceId: String, cameras: [String: String], parameters: [String: JSONValue],
        models: [String: ModelBinding] = [:], outputs: JSONValue? = nil, awsCredentials: AWSCredentialsSummary? = nil,
        desiredState: DesiredState, status: InstanceStatus, healthStatus: HealthStatus, statusDescription: String,
        createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.packageId = packageId
        self.packageName = packageName
        self.packageVersion = packageVersion
        self.deviceId = deviceId
        self.cameras = cameras
        self.parameters = parameters
        self.models = models
        self.outputs = outputs
        self.awsCredentials = awsCredentials
        self.desiredState = desiredState
        self.status = status
        self.healthStatus = healthStatus
        self.statusDescription = statusDescription
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One change of an instance's desired state or version, and how it went on the device.
public struct Deployment: Codable, Sendable, Equatable {
    public var id: String
    public var instanceId: String
    public var packageVersion: String
    public var desiredState: DesiredState
    public var status: InstanceStatus
    public var message: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, instanceId: String, packageVersion: String, desiredState: DesiredState, status: InstanceStatus,
        message: String, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.instanceId = instanceId
        self.packageVersion = packageVersion
        self.desiredState = desiredState
        self.status = status
        self.message = message
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Something an application reported (a count, a detection, a defect), as a device sent it.
public struct Event: Codable, Sendable, Equatable {
    /// The server's id (`evt_…`).
    public var id: String
    public var deviceId: String
    /// The id the device gave the event (`NewEvent.id`, unique on that device), by which a batch sent again is stored
    /// once; absent when the device sent none. The agent gives each event the id its other sinks (MQTT, webhooks)
    /// carry as `id`, so one event can be followed from the device to every place it went.
    public var deviceEventId: String?
    public var cameraId: String?
    public var instanceId: String?
    public var type: String
    /// When it happened: the device's time, or the time received when the device's clock was more than 5 minutes
    /// ahead of the server's (its own time is then `deviceTime`).
    public var time: Date
    public var receivedAt: Date
    /// The device's time for the event when the server did not take it as `time` (the device's clock was ahead).
    public var deviceTime: Date?
    /// The event's place in the order its instance made them (the agent's outbox sequence), which holds when the
    /// device's clock jumps: `GET /api/v1/events?instanceId=ID&order=sequence` lists by it.
    public var sequence: Int64?
    public var data: JSONValue
    public var hasSnapshot: Bool
    /// The device uploaded an MP4 clip of the event (`GET /api/v1/events/ID/clip`); it may come after the event.
    public var hasClip: Bool

    public init(
        id: String, deviceId: String, deviceEventId: String? = nil, cameraId: String? = nil, instanceId: String? = nil,
        type: String, time: Date, receivedAt: Date, deviceTime: Date? = nil, sequence: Int64? = nil, data: JSONValue,
        hasSnapshot: Bool, hasClip: Bool = false
    ) {
        self.id = id
        self.deviceId = deviceId
        self.deviceEventId = deviceEventId
        self.cameraId = cameraId
        self.instanceId = instanceId
        self.type = type
        self.time = time
        self.receivedAt = receivedAt
        self.deviceTime = deviceTime
        self.sequence = sequence
        self.data = data
        self.hasSnapshot = hasSnapshot
        self.hasClip = hasClip
    }
}

/// A page of a list; `nextCursor` fetches the next one (absent on the last page).
public struct Page<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// One point of a device's health series.
public struct MetricPoint: Codable, Sendable, Equatable {
    public var name: String
    public var time: Date
    public var value: Double

    public init(name: String, time: Date, value: Double) {
        self.name = name
        self.time = time
        self.value = value
    }
}

/// An API token (its secret is shown once, when it is created).
public struct APIToken: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var role: Role
    public var createdAt: Date
    public var lastUsedAt: Date?

    public init(id: String, name: String, role: Role, createdAt: Date, lastUsedAt: Date? = nil) {
        self.id = id
        self.name = name
        self.role = role
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
    }
}

/// The answer to creating a token.
public struct APITokenCreated: Codable, Sendable {
    public var token: APIToken
    /// `vt_…`: send as `Authorization: Bearer vt_…`.
    public var secret: String

    public init(token: APIToken, secret: String) {
        self.token = token
        self.secret = secret
    }
}

/// One line of the audit log: who changed what, when.
public struct AuditEntry: Codable, Sendable, Equatable {
    public var id: String
    public var time: Date
    public var actor: String
    public var action: String
    public var target: String
    public var detail: String?

    public init(id: String, time: Date, actor: String, action: String, target: String, detail: String? = nil) {
        self.id = id
        self.time = time
        self.actor = actor
        self.action = action
        self.target = target
        self.detail = detail
    }
}

/// Who the caller is.
public struct Identity: Codable, Sendable, Equatable {
    public var actor: String
    public var role: Role

    public init(actor: String, role: Role) {
        self.actor = actor
        self.role = role
    }
}

/// The body of every 4xx and 5xx answer.
public struct ErrorBody: Codable, Sendable {
    public struct Detail: Codable, Sendable {
        public var status: Int
        public var message: String

        public init(status: Int, message: String) {
            self.status = status
            self.message = message
        }
    }
    public var error: Detail

    public init(error: Detail) {
        self.error = error
    }
}

// MARK: - What a device runs

/// Everything a device needs to run its application instances: the document `vantage agent` polls
/// (`GET /api/v1/devices/{id}/desired-state`, answered 304 while its ETag is unchanged). Camera URLs carry their
/// credentials, and instances their AWS credentials: this is the only answer that does, and only to the device
/// itself.
public struct DeviceDesiredState: Codable, Sendable, Equatable {
    public var deviceId: String
    /// The device's instances, removed ones included until the device reports REMOVAL_SUCCEEDED.
    public var instances: [DesiredInstance]
    /// The release the device must run (a rollout's), nil when no rollout names it: it keeps what it runs.
    public var software: DesiredSoftware?
    /// The control plane's artifact signing key (Ed25519, raw 32 bytes in base64; ``ArtifactSignature``), which
    /// the agent pins the first time; nil from servers older than signed artifacts.
    public var artifactKey: String?
    /// The instances someone watches live in the console: the agent sends their annotated frames to the control
    /// plane while they are listed (nil or empty: none). Not part of what the device runs.
    public var live: LiveRequest?
    /// Camera pauses and resumes asked from the console, waiting for the device to carry them out (each once, by
    /// its id) and say how it went (`POST /api/v1/devices/{id}/signals/{signalId}`). Not part of what the device runs.
    public var signals: [CameraSignal]?

    public init(
        deviceId: String, instances: [DesiredInstance], software: DesiredSoftware? = nil, artifactKey: String? = nil,
        live: LiveRequest? = nil
    ) {
        self.deviceId = deviceId
        self.instances = instances
        self.software = software
        self.artifactKey = artifactKey
        self.live = live
    }
}

/// Pause or resume a running instance's camera node (Panorama's PAUSE/RESUME signals), asked from the console.
public struct CameraSignal: Codable, Sendable, Equatable {
    public var id: String
    public var instanceId: String
    public var node: String
    /// `pause` or `resume`.
    public var signal: String

    public init(id: String, instanceId: String, node: String, signal: String) {
        self.id = id
        self.instanceId = instanceId
        self.node = node
        self.signal = signal
    }
}

/// What a device relays live: these instances' annotated frames, at most `framesPerSecond` per stream, each frame
/// POSTed to `/api/v1/devices/{id}/live/{instanceId}` (``LiveRelay`` on the server).
public struct LiveRequest: Codable, Sendable, Equatable {
    public var instances: [String]
    public var framesPerSecond: Double

    public init(instances: [String], framesPerSecond: Double) {
        self.instances = instances
        self.framesPerSecond = framesPerSecond
    }
}

/// One application instance as a device runs it.
public struct DesiredInstance: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var packageId: String
    public var packageName: String
    public var packageVersion: String
    /// The package version's archive (`sha256:…`), to download and verify.
    public var archiveDigest: String
    /// The control plane's signature of the archive (``ArtifactSignature``, base64); nil from older servers.
    public var archiveSignature: String?
    public var desiredState: DesiredState
    /// The deployment this state belongs to; the device's reports refer to it.
    public var deploymentId: String?
    /// Camera node → the camera to open.
    public var cameras: [String: DesiredCamera]
    /// Overridden parameter node → value.
    public var parameters: [String: JSONValue]
    /// Model node → the model file to serve it with.
    public var models: [String: DesiredModel]
    /// The `outputs` document to run the instance with (as `vantage run --outputs FILE`); its `${NAME}` references
    /// are resolved from `vantage agent`'s environment. Nil when the instance has none.
    public var outputs: JSONValue?
    /// The device's name, which events and topic templates (`{device}`) name it by; nil from older servers.
    public var deviceName: String?
    /// The AWS credentials the application's code nodes get as `AWS_*` variables; nil when it has none. Only this
    /// answer carries them, and only to the device itself.
    public var awsCredentials: AWSCredentials?

    public init(
        id: String, name: String, packageId: String, packageName: String, packageVersion: String, archiveDigest: String,
        desiredState: DesiredState, deploymentId: String? = nil, cameras: [String: DesiredCamera],
        parameters: [String: JSONValue], models: [String: DesiredModel] = [:], outputs: JSONValue? = nil,
        deviceName: String? = nil, awsCredentials: AWSCredentials? = nil
    ) {
        self.models = models
        self.outputs = outputs
        self.deviceName = deviceName
        self.awsCredentials = awsCredentials
        self.id = id
        self.name = name
        self.packageId = packageId
        self.packageName = packageName
        self.packageVersion = packageVersion
        self.archiveDigest = archiveDigest
        self.desiredState = desiredState
        self.deploymentId = deploymentId
        self.cameras = cameras
        self.parameters = parameters
    }
}

/// A model version an instance's model node serves.
public struct ModelBinding: Codable, Sendable, Equatable {
    public var modelId: String
    public var version: Int

    public init(modelId: String, version: Int) {
        self.modelId = modelId
        self.version = version
    }
}

/// A model file as a device fetches it: by digest, saved under its file name (which tells its format).
public struct DesiredModel: Codable, Sendable, Equatable {
    public var modelId: String
    public var version: Int
    public var digest: String
    public var filename: String
    /// The control plane's signature of the file (``ArtifactSignature``, base64); nil from older servers.
    public var signature: String?

    public init(modelId: String, version: Int, digest: String, filename: String, signature: String? = nil) {
        self.modelId = modelId
        self.version = version
        self.digest = digest
        self.filename = filename
        self.signature = signature
    }
}

/// A camera as a device opens it.
public struct DesiredCamera: Codable, Sendable, Equatable {
    public var cameraId: String
    /// The stream URL with its credentials.
    public var url: String
    /// The camera's sub-stream URL with the same credentials, when it has one: decoded for detection, while `url`
    /// (the main stream) is read for clips (`vantage run --detect-stream`).
    public var detectUrl: String?

    public init(cameraId: String, url: String, detectUrl: String? = nil) {
        self.cameraId = cameraId
        self.url = url
        self.detectUrl = detectUrl
    }
}
