import Foundation
import VantageAPI
import VantageCore

/// How the commands show each resource: a table row in `list`, `KEY: value` lines in `show`.
public enum ResourceViews {
    // MARK: Devices

    public static func devices(_ devices: [Device], now: Date = Date()) -> TextTable {
        TextTable(
            columns: ["ID", "NAME", "STATUS", "CONNECTION", "LAST HEARTBEAT", "VERSION"],
            rows: devices.map {
                [
                    $0.id, $0.name, $0.provisioningStatus.rawValue, $0.connectionStatus.rawValue,
                    RelativeTime.describe($0.lastHeartbeat, now: now), $0.softwareVersion ?? "-",
                ]
            })
    }

    public static func device(_ device: Device, now: Date = Date()) -> DetailList {
        // What needs an operator (an expired or cloned certificate) comes right after the certificate.
        let alerts = (device.conditions ?? []).map { ("Alert", "\($0.kind.rawValue): \($0.message)") }
        return DetailList(
            [
                ("ID", device.id), ("Name", device.name),
                ("Description", device.description.isEmpty ? "-" : device.description),
                ("Status", device.provisioningStatus.rawValue), ("Connection", device.connectionStatus.rawValue),
                ("Last heartbeat", RelativeTime.full(device.lastHeartbeat, now: now)),
                ("Software version", device.softwareVersion ?? "-"),
                ("Software update", softwareUpdate(device.softwareUpdate)),
                (
                    "Certificate",
                    device.certificateExpiresAt.map {
                        "\($0 > now ? "valid until" : "expired") \(RelativeTime.full($0, now: now))"
                    } ?? "none (not enrolled, or revoked)"
                ),
            ] + alerts + [
                ("Created", RelativeTime.full(device.createdAt, now: now)),
                ("Updated", RelativeTime.full(device.updatedAt, now: now)),
            ])
    }

    // MARK: Cameras

    public static func cameras(_ cameras: [Camera], now: Date = Date()) -> TextTable {
        TextTable(
            columns: ["ID", "NAME", "URL", "SUB-STREAM", "CREDENTIALS", "DEVICE", "SNAPSHOT"],
            rows: cameras.map {
                [
                    $0.id, $0.name, $0.url, $0.detectUrl ?? "-", $0.hasCredentials ? "yes" : "no", $0.deviceId ?? "-",
                    RelativeTime.describe($0.snapshotAt, now: now),
                ]
            })
    }

    public static func camera(_ camera: Camera, now: Date = Date()) -> DetailList {
        DetailList([
            ("ID", camera.id), ("Name", camera.name),
            ("Description", camera.description.isEmpty ? "-" : camera.description),
            ("URL", camera.url), ("Sub-stream", camera.detectUrl ?? "none (detects on the URL's stream)"),
            ("Credentials", camera.hasCredentials ? "stored (encrypted; never shown)" : "none"),
            ("Device", camera.deviceId ?? "not assigned"), ("Snapshot", RelativeTime.full(camera.snapshotAt, now: now)),
            ("Created", RelativeTime.full(camera.createdAt, now: now)),
            ("Updated", RelativeTime.full(camera.updatedAt, now: now)),
        ])
    }

    // MARK: Models

    public static func models(_ models: [Model], now: Date = Date()) -> TextTable {
        TextTable(
            columns: ["ID", "NAME", "LATEST", "VERSIONS", "CREATED"],
            rows: models.map {
                [
                    $0.id, $0.name, $0.latestVersion.map(String.init) ?? "-", String($0.versions.count),
                    RelativeTime.describe($0.createdAt, now: now),
                ]
            })
    }

    public static func model(_ model: Model, now: Date = Date()) -> String {
        let details = DetailList([
            ("ID", model.id), ("Name", model.name),
            ("Description", model.description.isEmpty ? "-" : model.description),
            ("Latest version", model.latestVersion.map(String.init) ?? "none (upload one with vantage models upload)"),
            ("Created", RelativeTime.full(model.createdAt, now: now)),
        ]).render()
        guard !model.versions.isEmpty else { return details }
        return details + "\n\nVersions:\n" + modelVersions(model.versions, now: now).render().indented()
    }

    public static func modelVersions(_ versions: [ModelVersion], now: Date = Date()) -> TextTable {
        TextTable(
            columns: ["VERSION", "FILE", "SIZE", "DIGEST", "DESCRIPTOR", "CREATED"],
            rows: versions.map {
                [
                    String($0.version), $0.filename, byteCount($0.size), shortDigest($0.digest),
                    $0.descriptor == nil ? "no" : "yes", RelativeTime.describe($0.createdAt, now: now),
                ]
            })
    }

    // MARK: Packages

    public static func packages(_ packages: [Package], now: Date = Date()) -> TextTable {
        TextTable(
            columns: ["ID", "NAME", "LATEST", "VERSIONS", "CREATED"],
            rows: packages.map {
                [
                    $0.id, $0.name, $0.latestVersion ?? "-", String($0.versions.count),
                    RelativeTime.describe($0.createdAt, now: now),
                ]
            })
    }

    public static func package(_ package: Package, now: Date = Date()) -> String {
        var text = DetailList([
            ("ID", package.id), ("Name", package.name),
            ("Description", package.description.isEmpty ? "-" : package.description),
            ("Latest version", package.latestVersion ?? "none (push one with vantage packages push)"),
            ("Created", RelativeTime.full(package.createdAt, now: now)),
        ]).render()
        guard !package.versions.isEmpty else { return text }
        text +=
            "\n\nVersions:\n"
            + TextTable(
                columns: ["VERSION", "STATUS", "APPLICATION", "SIZE", "DIGEST", "CREATED"],
                rows: package.versions.map {
                    [
                        $0.version, $0.status.rawValue, $0.application, byteCount($0.size), shortDigest($0.digest),
                        RelativeTime.describe($0.createdAt, now: now),
                    ]
                }
            ).render().indented()
        if let latest = package.versions.last { text += "\n\n" + inputs(of: latest) }
        return text
    }

    /// What a deployment of the version must bind (camera nodes) and may set (parameters).
    public static func inputs(of version: PackageVersion) -> String {
        var text = "Camera nodes of \(version.version) (bind each with --camera NODE=CAMERA_ID):\n"
        text +=
            version.cameras.isEmpty
            ? "  none"
            : TextTable(
                columns: ["NODE", "TITLE"], rows: version.cameras.map { [$0.node, $0.title ?? $0.description ?? ""] }
            ).render().indented()
        text += "\n\nParameters of \(version.version) (set an overridable one with --param NODE=VALUE):\n"
        text +=
            version.parameters.isEmpty
            ? "  none"
            : TextTable(
                columns: ["NODE", "TYPE", "DEFAULT", "OVERRIDABLE", "CONSTRAINT"],
                rows: version.parameters.map {
                    [
                        $0.node, $0.type, $0.defaultValue.text,
                        $0.overridable ? ($0.mandatory ? "required" : "yes") : "no",
                        $0.constraintText ?? $0.constraintRegex ?? "",
                    ]
                }
            ).render().indented()
        return text
    }

    // MARK: Instances

    public static func instances(_ instances: [ApplicationInstance]) -> TextTable {
        TextTable(
            columns: ["ID", "NAME", "PACKAGE", "VERSION", "DEVICE", "DESIRED", "STATUS", "HEALTH"],
            rows: instances.map {
                [
                    $0.id, $0.name, $0.packageName, $0.packageVersion, $0.deviceId, $0.desiredState.rawValue,
                    $0.status.rawValue, $0.healthStatus.rawValue,
                ]
            })
    }

    public static func instance(_ instance: ApplicationInstance, now: Date = Date()) -> String {
        var text = DetailList([
            ("ID", instance.id), ("Name", instance.name),
            ("Description", instance.description.isEmpty ? "-" : instance.description),
            ("Package", "\(instance.packageName) \(instance.packageVersion) (\(instance.packageId))"),
            ("Device", instance.deviceId), ("Desired state", instance.desiredState.rawValue),
            ("Status", instance.status.rawValue), ("Health", instance.healthStatus.rawValue),
            ("Status detail", instance.statusDescription.isEmpty ? "-" : instance.statusDescription),
            ("Created", RelativeTime.full(instance.createdAt, now: now)),
            ("Updated", RelativeTime.full(instance.updatedAt, now: now)),
        ]).render()
        text += "\n\nCameras:\n"
        text +=
            instance.cameras.isEmpty
            ? "  none"
            : TextTable(
                columns: ["NODE", "CAMERA"], rows: instance.cameras.sorted { $0.key < $1.key }.map { [$0, $1] }
            )
            .render().indented()
        text += "\n\nParameters:\n"
        text +=
            instance.parameters.isEmpty
            ? "  defaults"
            : TextTable(
                columns: ["NODE", "VALUE"], rows: instance.parameters.sorted { $0.key < $1.key }.map { [$0, $1.text] }
            ).render().indented()
        if !instance.models.isEmpty {
            text += "\n\nModels:\n"
            text += TextTable(
                columns: ["NODE", "MODEL", "VERSION"],
                rows: instance.models.sorted { $0.key < $1.key }.map { [$0, $1.modelId, String($1.version)] }
            ).render().indented()
        }
        if let outputs = instance.outputs {
            text += "\n\nOutputs:\n"
            text += outputsSummary(outputs).indented()
        }
        if let aws = instance.awsCredentials {
            text += "\n\nAWS credentials: \(aws.accessKeyId)"
            text += aws.region.map { ", region \($0)" } ?? ""
            text += aws.hasSessionToken ? ", with a session token" : ""
        }
        return text
    }

    /// An outputs document in a few lines: its sinks (name and type), and how many rules and analytics nodes it has
    /// (`--json` shows the whole document).
    static func outputsSummary(_ outputs: JSONValue) -> String {
        guard case .object(let members) = outputs else { return "-" }
        var lines: [String] = []
        if case .object(let sinks)? = members["sinks"], !sinks.isEmpty {
            let described = sinks.sorted { $0.key < $1.key }.map { name, sink in
                if case .object(let settings) = sink, let type = settings["type"] {
                    "\(name) (\(type.text))"
                } else {
                    name
                }
            }
            lines.append("sinks: " + described.joined(separator: ", "))
        }
        for (key, what) in [("rules", "rule"), ("analytics", "analytics node")] {
            if case .array(let items)? = members[key], !items.isEmpty {
                lines.append("\(items.count) \(what)\(items.count == 1 ? "" : "s")")
            }
        }
        return lines.isEmpty ? "empty" : lines.joined(separator: "\n")
    }

    public static func deployments(_ deployments: [Deployment], now: Date = Date()) -> TextTable {
        TextTable(
            columns: ["ID", "VERSION", "DESIRED", "STATUS", "CREATED", "MESSAGE"],
            rows: deployments.map {
                [
                    $0.id, $0.packageVersion, $0.desiredState.rawValue, $0.status.rawValue,
                    RelativeTime.describe($0.createdAt, now: now), $0.message.isEmpty ? "-" : $0.message,
                ]
            })
    }

    // MARK: Events

    public static func events(_ events: [Event], now: Date = Date()) -> TextTable {
        TextTable(
            columns: ["ID", "TIME", "TYPE", "DEVICE", "CAMERA", "INSTANCE", "DATA"],
            rows: events.map {
                [
                    $0.id, RelativeTime.describe($0.time, now: now), $0.type, $0.deviceId, $0.cameraId ?? "-",
                    $0.instanceId ?? "-", $0.data.text,
                ]
            })
    }

    public static func event(_ event: Event, now: Date = Date()) -> String {
        DetailList([
            ("ID", event.id), ("Type", event.type), ("Time", RelativeTime.full(event.time, now: now)),
            ("Received", RelativeTime.full(event.receivedAt, now: now)),
            (
                "Device's time",
                event.deviceTime.map { "\(RelativeTime.full($0, now: now)) (its clock was ahead)" } ?? "-"
            ),
            ("Sequence", event.sequence.map(String.init) ?? "-"), ("Device", event.deviceId),
            ("Device's event ID", event.deviceEventId ?? "-"),
            ("Camera", event.cameraId ?? "-"), ("Instance", event.instanceId ?? "-"),
            ("Snapshot", event.hasSnapshot ? "yes (GET /api/v1/events/\(event.id)/snapshot)" : "no"),
        ]).render() + "\n\nData:\n" + prettyJSON(event.data).indented()
    }

    // MARK: Formatting

    /// `1.2 MB`.
    public static func byteCount(_ size: Int64) -> String {
        ByteCountFormatter.string(fromByteCount: size, countStyle: .file)
    }

    /// `sha256:0123456789ab` (enough to tell versions apart).
    public static func shortDigest(_ digest: String) -> String {
        String(digest.prefix("sha256:".count + 12))
    }

    /// Indented, sorted-key JSON.
    public static func prettyJSON(_ value: some Encodable) -> String {
        let encoder = APIJSON.encoder()
        encoder.outputFormatting.insert(.prettyPrinted)
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }
}

extension String {
    fileprivate func indented() -> String {
        split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
    }
}
