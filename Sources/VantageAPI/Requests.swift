import Foundation
import VantageCore

/// A request body. The server refuses fields not in `fields` (a typo must not be silently ignored).
public protocol RequestBody: Codable, Sendable {
    /// Every field the body may carry.
    static var fields: [String] { get }
    /// For fields holding arrays of objects: the fields each element may carry.
    static var elementFields: [String: [String]] { get }
    /// For fields holding an object of known members: the members it may carry.
    static var objectFields: [String: [String]] { get }
}

extension RequestBody {
    public static var elementFields: [String: [String]] { [:] }
    public static var objectFields: [String: [String]] { [:] }
}

public struct NewDevice: RequestBody {
    public static let fields = ["name", "description"]
    public var name: String
    public var description: String?

    public init(name: String, description: String? = nil) {
        self.name = name
        self.description = description
    }
}

public struct DeviceUpdate: RequestBody {
    public static let fields = ["name", "description"]
    public var name: String?
    public var description: String?

    public init(name: String? = nil, description: String? = nil) {
        self.name = name
        self.description = description
    }
}

public struct NewCamera: RequestBody {
    public static let fields = ["name", "description", "url", "detectUrl", "username", "password", "deviceId"]
    public var name: String
    public var description: String?
    /// `rtsp://HOST:PORT/PATH`; credentials in the URL are moved to `username`/`password`.
    public var url: String
    /// The camera's low-resolution sub-stream, decoded for detection (`url` is kept for clips). It uses the
    /// camera's credentials: any written into it are taken out like `url`'s, and must agree with them.
    public var detectUrl: String?
    public var username: String?
    public var password: String?
    public var deviceId: String?

    public init(
        name: String, description: String? = nil, url: String, detectUrl: String? = nil, username: String? = nil,
        password: String? = nil, deviceId: String? = nil
    ) {
        self.name = name
        self.description = description
        self.url = url
        self.detectUrl = detectUrl
        self.username = username
        self.password = password
        self.deviceId = deviceId
    }
}

public struct CameraUpdate: RequestBody {
    public static let fields = ["name", "description", "url", "detectUrl", "username", "password", "deviceId"]
    public var name: String?
    public var description: String?
    public var url: String?
    /// A new sub-stream URL, or "" to remove it (JSON `null` removes it too; leaving the field out keeps it).
    public var detectUrl: String?
    public var username: String?
    public var password: String?
    /// A device id, or "" to unassign.
    public var deviceId: String?

    public init(
        name: String? = nil, description: String? = nil, url: String? = nil, detectUrl: String? = nil,
        username: String? = nil, password: String? = nil, deviceId: String? = nil
    ) {
        self.name = name
        self.description = description
        self.url = url
        self.detectUrl = detectUrl
        self.username = username
        self.password = password
        self.deviceId = deviceId
    }

    enum CodingKeys: String, CodingKey {
        case name, description, url, detectUrl, username, password, deviceId
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decodeIfPresent(String.self, forKey: .name)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        url = try container.decodeIfPresent(String.self, forKey: .url)
        // `"detectUrl": null` removes the sub-stream, as "" does; an absent field keeps it.
        if container.contains(.detectUrl) {
            detectUrl = try container.decodeIfPresent(String.self, forKey: .detectUrl) ?? ""
        }
        username = try container.decodeIfPresent(String.self, forKey: .username)
        password = try container.decodeIfPresent(String.self, forKey: .password)
        deviceId = try container.decodeIfPresent(String.self, forKey: .deviceId)
    }
}

public struct NewModel: RequestBody {
    public static let fields = ["name", "description"]
    public var name: String
    public var description: String?

    public init(name: String, description: String? = nil) {
        self.name = name
        self.description = description
    }
}

public struct NewPackage: RequestBody {
    public static let fields = ["name", "description"]
    public var name: String
    public var description: String?

    public init(name: String, description: String? = nil) {
        self.name = name
        self.description = description
    }
}

public struct NewInstance: RequestBody {
    public static let fields = [
        "name", "description", "packageId", "packageVersion", "deviceId", "cameras", "parameters", "models",
        "outputs", "desiredState", "awsCredentials",
    ]
    public static let objectFields = ["awsCredentials": AWSCredentials.fields]
    public var name: String
    public var description: String?
    public var packageId: String
    public var packageVersion: String
    public var deviceId: String
    /// Camera node → camera id, for every camera node of the application.
    public var cameras: [String: String]
    /// Overridable parameter node → value.
    public var parameters: [String: JSONValue]?
    /// Model node → model id (its latest version) or `ID@VERSION`: the model file the node serves, from the server's models,
    /// instead of the file the package names (like `vantage run --model NODE=FILE`).
    public var models: [String: String]?
    /// An `outputs` document (sinks, rules, analytics; see docs/outputs.md) the device runs the instance with, like
    /// `vantage run --outputs FILE`. Secret settings must be `${NAME}` references, resolved on the device from
    /// `vantage agent`'s environment, so no secret reaches the control plane.
    public var outputs: JSONValue?
    /// RUNNING (the default) or STOPPED.
    public var desiredState: DesiredState?
    /// AWS credentials the application's code gets as `AWS_*` variables (Panorama's application role). Stored
    /// encrypted, sent only to the instance's device, never answered.
    public var awsCredentials: AWSCredentials?

    public init(
        name: String, description: String? = nil, packageId: String, packageVersion: String, deviceId: String,
        cameras: [String: String], parameters: [String: JSONValue]? = nil, models: [String: String]? = nil,
        outputs: JSONValue? = nil, desiredState: DesiredState? = nil, awsCredentials: AWSCredentials? = nil
    ) {
        self.name = name
        self.description = description
        self.packageId = packageId
        self.packageVersion = packageVersion
        self.deviceId = deviceId
        self.cameras = cameras
        self.parameters = parameters
        self.models = models
        self.outputs = outputs
        self.desiredState = desiredState
        self.awsCredentials = awsCredentials
    }
}

public struct InstanceUpdate: RequestBody {
    public static let fields = [
        "name", "description", "packageVersion", "cameras", "parameters", "models", "outputs", "desiredState",
        "awsCredentials",
    ]
    public static let objectFields = ["awsCredentials": AWSCredentials.fields]
    public var name: String?
    public var description: String?
    public var packageVersion: String?
    public var cameras: [String: String]?
    public var parameters: [String: JSONValue]?
    /// Model node → model id: binds (again) to each model's latest version; `ID@VERSION` binds that version.
    public var models: [String: String]?
    /// A new `outputs` document, replacing the instance's; an empty object (`{}`) removes it.
    public var outputs: JSONValue?
    public var desiredState: DesiredState?
    /// New AWS credentials for the application (a new deployment when they differ), or `{}` to remove them.
    public var awsCredentials: AWSCredentialsChange?

    public init(
        name: String? = nil, description: String? = nil, packageVersion: String? = nil,
        cameras: [String: String]? = nil, parameters: [String: JSONValue]? = nil, models: [String: String]? = nil,
        outputs: JSONValue? = nil, desiredState: DesiredState? = nil, awsCredentials: AWSCredentialsChange? = nil
    ) {
        self.name = name
        self.description = description
        self.packageVersion = packageVersion
        self.cameras = cameras
        self.parameters = parameters
        self.models = models
        self.outputs = outputs
        self.desiredState = desiredState
        self.awsCredentials = awsCredentials
    }
}

public struct NewToken: RequestBody {
    public static let fields = ["name", "role"]
    public var name: String
    public var role: Role

    public init(name: String, role: Role) {
        self.name = name
        self.role = role
    }
}

/// A device's periodic report (device token).
public struct Heartbeat: RequestBody {
    public static let fields = ["softwareVersion", "metrics", "update", "agentSession"]
    public static var objectFields: [String: [String]] { ["update": SoftwareUpdateReport.fields] }
    public var softwareVersion: String?
    /// A random id the agent process makes at start: two different ones taking turns for one device mean its
    /// certificate is used from two places at once (a cloned box); a restart only changes it once.
    public var agentSession: String?
    /// Metric name → value, e.g. `cpu.percent`, `memory.bytes`, `frames.inferred_per_second`.
    public var metrics: [String: Double]?
    /// Where the device stands with the release its desired state names, if any.
    public var update: SoftwareUpdateReport?

    public init(
        softwareVersion: String? = nil, metrics: [String: Double]? = nil, update: SoftwareUpdateReport? = nil,
        agentSession: String? = nil
    ) {
        self.agentSession = agentSession
        self.softwareVersion = softwareVersion
        self.metrics = metrics
        self.update = update
    }
}

/// A device asks for its certificate: the provisioning token (single use, expires) and a CSR (PEM) for the key the
/// device made and keeps.
public struct EnrollmentRequest: RequestBody {
    public static let fields = ["token", "csr"]
    public var token: String
    public var csr: String

    public init(token: String, csr: String) {
        self.token = token
        self.csr = csr
    }
}

/// A device asks for a new certificate before its current one ends: a CSR (PEM) for a new key it made.
public struct CertificateRenewal: RequestBody {
    public static let fields = ["csr"]
    public var csr: String

    public init(csr: String) { self.csr = csr }
}

/// A device's report on one instance (device token).
public struct InstanceReport: RequestBody, Equatable {
    public static let fields = ["status", "healthStatus", "statusDescription"]
    public var status: InstanceStatus?
    public var healthStatus: HealthStatus?
    public var statusDescription: String?

    public init(status: InstanceStatus? = nil, healthStatus: HealthStatus? = nil, statusDescription: String? = nil) {
        self.status = status
        self.healthStatus = healthStatus
        self.statusDescription = statusDescription
    }
}

/// Events a device sends (device token), at most 1000 at once.
public struct EventBatch: RequestBody {
    public static let fields = ["events"]
    public static let elementFields = ["events": NewEvent.fields]
    public var events: [NewEvent]

    public init(events: [NewEvent]) {
        self.events = events
    }
}

public struct NewEvent: Codable, Sendable {
    public static let fields = ["id", "type", "time", "sequence", "cameraId", "instanceId", "data", "snapshot"]
    /// The device's own id for the event, unique on that device: sending it again (after a lost answer) stores
    /// nothing new and answers the id it got the first time.
    public var id: String?
    public var type: String
    /// When it happened, by the device's clock; the time received when absent, or when more than 5 minutes ahead of
    /// the server's (kept then as the event's `deviceTime`).
    public var time: Date?
    /// The event's place in the order its instance made them (the agent's outbox sequence, 1, 2, 3…, kept across
    /// restarts): unlike `time`, it holds when the device's clock jumps. With `instanceId`.
    public var sequence: Int64?
    public var cameraId: String?
    public var instanceId: String?
    public var data: JSONValue?
    /// A JPEG image, base64.
    public var snapshot: String?

    public init(
        id: String? = nil, type: String, time: Date? = nil, sequence: Int64? = nil, cameraId: String? = nil,
        instanceId: String? = nil, data: JSONValue? = nil, snapshot: String? = nil
    ) {
        self.id = id
        self.type = type
        self.time = time
        self.sequence = sequence
        self.cameraId = cameraId
        self.instanceId = instanceId
        self.data = data
        self.snapshot = snapshot
    }
}

/// Log lines a device ships: its own (no instance) and its instances' (bounded and rotated on the server).
public struct LogBatch: RequestBody {
    public static let fields = ["lines"]
    public static let elementFields = ["lines": LogLine.fields]
    public var lines: [LogLine]

    public init(lines: [LogLine]) { self.lines = lines }
}

/// One log line of a device or of one of its application instances.
public struct LogLine: Codable, Sendable, Equatable {
    public static let fields = ["time", "instanceId", "level", "message"]
    public var time: Date
    /// The instance that logged it; nil for the agent itself.
    public var instanceId: String?
    /// trace, debug, info, notice, warning, error or critical.
    public var level: String
    public var message: String

    public init(time: Date, instanceId: String? = nil, level: String, message: String) {
        self.time = time
        self.instanceId = instanceId
        self.level = level
        self.message = message
    }
}

/// How a device carried out a ``CameraSignal``.
public struct CameraSignalResult: RequestBody, Equatable {
    public static let fields = ["ok", "message"]
    public var ok: Bool
    /// What happened, in words ("camera node camera_node paused") or why not.
    public var message: String

    public init(ok: Bool, message: String) {
        self.ok = ok
        self.message = message
    }
}
