import Foundation
import VantageAPI

/// A JSON Schema (2020-12, as OpenAPI 3.1 uses it), small enough to write by hand for each resource.
indirect enum OpenAPISchema: Sendable {
    case ref(String)
    case string(format: String? = nil, values: [String]? = nil, pattern: String? = nil)
    case integer
    case number
    case boolean
    case array(OpenAPISchema)
    case object([(String, OpenAPISchema)], required: [String], additional: OpenAPISchema? = nil)
    case map(OpenAPISchema)
    case any
    case nullable(OpenAPISchema)
    /// Exactly one of the choices.
    case oneOf([OpenAPISchema])

    static let text = OpenAPISchema.string()
    static let time = OpenAPISchema.string(format: "date-time")
    static func values<T: RawRepresentable & CaseIterable>(_: T.Type) -> OpenAPISchema where T.RawValue == String {
        .string(values: T.allCases.map(\.rawValue))
    }

    var json: JSONValue {
        switch self {
        case .ref(let name): return .object(["$ref": .string("#/components/schemas/\(name)")])
        case .string(let format, let values, let pattern):
            var o: [String: JSONValue] = ["type": .string("string")]
            if let format { o["format"] = .string(format) }
            if let values { o["enum"] = .array(values.map(JSONValue.string)) }
            if let pattern { o["pattern"] = .string(pattern) }
            return .object(o)
        case .integer: return .object(["type": .string("integer")])
        case .number: return .object(["type": .string("number")])
        case .boolean: return .object(["type": .string("boolean")])
        case .array(let items): return .object(["type": .string("array"), "items": items.json])
        case .object(let properties, let required, let additional):
            var o: [String: JSONValue] = [
                "type": .string("object"),
                "properties": .object(Dictionary(uniqueKeysWithValues: properties.map { ($0.0, $0.1.json) })),
                "additionalProperties": additional?.json ?? .bool(false),
            ]
            if !required.isEmpty { o["required"] = .array(required.map(JSONValue.string)) }
            return .object(o)
        case .map(let values): return .object(["type": .string("object"), "additionalProperties": values.json])
        case .any: return .object([:])
        case .nullable(let schema):
            return .object(["oneOf": .array([schema.json, .object(["type": .string("null")])])])
        case .oneOf(let choices):
            return .object(["oneOf": .array(choices.map(\.json))])
        }
    }
}

/// The component schemas: one per resource and request body in VantageAPI. A response test validates real
/// answers against these, so a field added to a type and not here fails the tests.
enum OpenAPIComponents {
    static func object(_ properties: [(String, OpenAPISchema)], optional: [String] = []) -> OpenAPISchema {
        .object(properties, required: properties.map(\.0).filter { !optional.contains($0) })
    }

    static func request(_ properties: [(String, OpenAPISchema)], required: [String]) -> OpenAPISchema {
        .object(properties, required: required)
    }

    static let error = object([("error", object([("status", .integer), ("message", .text)]))])

    /// An instance's `outputs` document (docs/outputs.md): the server checks its members; in updates `{}` removes it.
    static let outputs = OpenAPISchema.map(.any)

    /// AWS credentials in an update: new ones, or `{}` to remove the instance's.
    static let awsCredentialsChange = OpenAPISchema.oneOf([.ref("AWSCredentials"), .object([], required: [])])

    static let schemas: [(String, OpenAPISchema)] = [
        ("Error", error),
        ("Role", .values(Role.self)),
        (
            "Device",
            object(
                [
                    ("id", .text), ("name", .text), ("description", .text),
                    ("provisioningStatus", .values(ProvisioningStatus.self)),
                    ("connectionStatus", .values(ConnectionStatus.self)), ("lastHeartbeat", .time),
                    ("softwareVersion", .text), ("certificateExpiresAt", .time), ("createdAt", .time),
                    ("updatedAt", .time),
                ], optional: ["lastHeartbeat", "softwareVersion", "certificateExpiresAt"])
        ),
        (
            "DeviceCreated",
            object([
                ("device", .ref("Device")), ("provisioningToken", .text), ("tokenExpiresAt", .time),
                ("caFingerprint", .text),
            ])
        ),
        ("EnrollmentRequest", request([("token", .text), ("csr", .text)], required: ["token", "csr"])),
        ("CertificateRenewal", request([("csr", .text)], required: ["csr"])),
        (
            "Enrollment",
            object([
                ("deviceId", .text), ("certificate", .text), ("caCertificate", .text),
                ("certificateExpiresAt", .time),
            ])
        ),
        ("NewDevice", request([("name", .text), ("description", .text)], required: ["name"])),
        ("DeviceUpdate", request([("name", .text), ("description", .text)], required: [])),
        ("Heartbeat", request([("softwareVersion", .text), ("metrics", .map(.number))], required: [])),
        ("MetricPoint", object([("name", .text), ("time", .time), ("value", .number)])),
        (
            "Camera",
            object(
                [
                    ("id", .text), ("name", .text), ("description", .text), ("url", .text),
                    ("hasCredentials", .boolean),
                    ("deviceId", .text), ("snapshotAt", .time), ("createdAt", .time), ("updatedAt", .time),
                ], optional: ["deviceId", "snapshotAt"])
        ),
        (
            "NewCamera",
            request(
                [
                    ("name", .text), ("description", .text), ("url", .text), ("username", .text), ("password", .text),
                    ("deviceId", .text),
                ], required: ["name", "url"])
        ),
        (
            "CameraUpdate",
            request(
                [
                    ("name", .text), ("description", .text), ("url", .text), ("username", .text), ("password", .text),
                    ("deviceId", .text),
                ], required: [])
        ),
        (
            "ModelVersion",
            object(
                [
                    ("version", .integer), ("digest", .text), ("size", .integer), ("filename", .text),
                    ("descriptor", .any), ("createdAt", .time),
                ], optional: ["descriptor"])
        ),
        (
            "Model",
            object(
                [
                    ("id", .text), ("name", .text), ("description", .text), ("latestVersion", .integer),
                    ("versions", .array(.ref("ModelVersion"))), ("createdAt", .time),
                ], optional: ["latestVersion"])
        ),
        ("NewModel", request([("name", .text), ("description", .text)], required: ["name"])),
        (
            "CameraInput",
            object([("node", .text), ("title", .text), ("description", .text)], optional: ["title", "description"])
        ),
        (
            "ParameterInput",
            object(
                [
                    ("node", .text), ("type", .string(values: ["string", "int32", "float32", "boolean"])),
                    ("defaultValue", .any), ("overridable", .boolean), ("mandatory", .boolean), ("title", .text),
                    ("description", .text), ("constraintText", .text), ("constraintRegex", .text),
                ], optional: ["title", "description", "constraintText", "constraintRegex"])
        ),
        (
            "PackageVersion",
            object([
                ("version", .text), ("status", .values(PackageVersionStatus.self)), ("digest", .text),
                ("size", .integer),
                ("application", .text), ("cameras", .array(.ref("CameraInput"))),
                ("parameters", .array(.ref("ParameterInput"))), ("createdAt", .time),
            ])
        ),
        (
            "Package",
            object(
                [
                    ("id", .text), ("name", .text), ("description", .text), ("latestVersion", .text),
                    ("versions", .array(.ref("PackageVersion"))), ("createdAt", .time),
                ], optional: ["latestVersion"])
        ),
        ("NewPackage", request([("name", .text), ("description", .text)], required: ["name"])),
        (
            "ApplicationInstance",
            object(
                [
                    ("id", .text), ("name", .text), ("description", .text), ("packageId", .text),
                    ("packageName", .text), ("packageVersion", .text), ("deviceId", .text), ("cameras", .map(.text)),
                    ("parameters", .map(.any)), ("models", .map(.ref("ModelBinding"))), ("outputs", outputs),
                    ("awsCredentials", .ref("AWSCredentialsSummary")),
                    ("desiredState", .values(DesiredState.self)), ("status", .values(InstanceStatus.self)),
                    ("healthStatus", .values(HealthStatus.self)), ("statusDescription", .text), ("createdAt", .time),
                    ("updatedAt", .time),
                ], optional: ["outputs", "awsCredentials"])
        ),
        (
            "NewInstance",
            request(
                [
                    ("name", .text), ("description", .text), ("packageId", .text), ("packageVersion", .text),
                    ("deviceId", .text), ("cameras", .map(.text)), ("parameters", .map(.any)), ("models", .map(.text)),
                    ("outputs", outputs), ("desiredState", .values(DesiredState.self)),
                    ("awsCredentials", .ref("AWSCredentials")),
                ], required: ["name", "packageId", "packageVersion", "deviceId", "cameras"])
        ),
        (
            "InstanceUpdate",
            request(
                [
                    ("name", .text), ("description", .text), ("packageVersion", .text), ("cameras", .map(.text)),
                    ("parameters", .map(.any)), ("models", .map(.text)), ("outputs", outputs),
                    ("desiredState", .values(DesiredState.self)), ("awsCredentials", awsCredentialsChange),
                ], required: [])
        ),
        (
            "InstanceReport",
            request(
                [
                    ("status", .values(InstanceStatus.self)), ("healthStatus", .values(HealthStatus.self)),
                    ("statusDescription", .text),
                ], required: [])
        ),
        (
            "Deployment",
            object([
                ("id", .text), ("instanceId", .text), ("packageVersion", .text),
                ("desiredState", .values(DesiredState.self)), ("status", .values(InstanceStatus.self)),
                ("message", .text), ("createdAt", .time), ("updatedAt", .time),
            ])
        ),
        (
            "Event",
            object(
                [
                    ("id", .text), ("deviceId", .text), ("cameraId", .text), ("instanceId", .text), ("type", .text),
                    ("time", .time), ("receivedAt", .time), ("data", .any), ("hasSnapshot", .boolean),
                ], optional: ["cameraId", "instanceId"])
        ),
        (
            "NewEvent",
            request(
                [
                    ("id", .text), ("type", .text), ("time", .time), ("cameraId", .text), ("instanceId", .text),
                    ("data", .any), ("snapshot", .string(format: "byte")),
                ], required: ["type"])
        ),
        ("EventBatch", request([("events", .array(.ref("NewEvent")))], required: ["events"])),
        (
            "LogLine",
            object(
                [("time", .time), ("instanceId", .text), ("level", .text), ("message", .text)],
                optional: ["instanceId"])
        ),
        ("LogBatch", request([("lines", .array(.ref("LogLine")))], required: ["lines"])),
        ("EventIds", object([("ids", .array(.text))])),
        ("EventPage", page(of: "Event")),
        (
            "APIToken",
            object(
                [("id", .text), ("name", .text), ("role", .ref("Role")), ("createdAt", .time), ("lastUsedAt", .time)],
                optional: ["lastUsedAt"])
        ),
        ("APITokenCreated", object([("token", .ref("APIToken")), ("secret", .text)])),
        ("NewToken", request([("name", .text), ("role", .ref("Role"))], required: ["name", "role"])),
        (
            "AuditEntry",
            object(
                [
                    ("id", .text), ("time", .time), ("actor", .text), ("action", .text), ("target", .text),
                    ("detail", .text),
                ],
                optional: ["detail"])
        ),
        ("AuditPage", page(of: "AuditEntry")),
        ("Identity", object([("actor", .text), ("role", .ref("Role"))])),
        ("DesiredCamera", object([("cameraId", .text), ("url", .text)])),
        (
            "DesiredInstance",
            object(
                [
                    ("id", .text), ("name", .text), ("packageId", .text), ("packageName", .text),
                    ("packageVersion", .text), ("archiveDigest", .text), ("desiredState", .values(DesiredState.self)),
                    ("deploymentId", .text), ("cameras", .map(.ref("DesiredCamera"))), ("parameters", .map(.any)),
                    ("models", .map(.ref("DesiredModel"))), ("outputs", outputs), ("deviceName", .text),
                    ("awsCredentials", .ref("AWSCredentials")),
                ], optional: ["deploymentId", "outputs", "deviceName", "awsCredentials"])
        ),
        (
            "AWSCredentials",
            object(
                [
                    ("accessKeyId", .text), ("secretAccessKey", .text), ("sessionToken", .text), ("region", .text),
                ], optional: ["sessionToken", "region"])
        ),
        (
            "AWSCredentialsSummary",
            object(
                [("accessKeyId", .text), ("region", .text), ("hasSessionToken", .boolean)], optional: ["region"])
        ),
        ("ModelBinding", object([("modelId", .text), ("version", .integer)])),
        (
            "DesiredModel",
            object([("modelId", .text), ("version", .integer), ("digest", .text), ("filename", .text)])
        ),
        ("DeviceDesiredState", object([("deviceId", .text), ("instances", .array(.ref("DesiredInstance")))])),
    ]

    static func page(of item: String) -> OpenAPISchema {
        object([("items", .array(.ref(item))), ("nextCursor", .text)], optional: ["nextCursor"])
    }

    static func list(of item: String) -> OpenAPISchema { object([("items", .array(.ref(item)))]) }
}

extension APIOperation {
    /// The OpenAPI 3.1 document of `operations`.
    static func openAPIDocument(_ operations: [APIOperation]) -> JSONValue {
        var paths: [String: [String: JSONValue]] = [:]
        for operation in operations {
            paths[operation.path, default: [:]][operation.method.rawValue.lowercased()] = operation.openAPI
        }
        return .object([
            "openapi": .string("3.1.0"),
            "info": .object([
                "title": .string("Vantage control plane"),
                "version": .string("1"),
                "description": .string(
                    "Devices, cameras, models, packages, application instances, deployments and events of a Vantage fleet. Authenticate with Authorization: Bearer <token>; roles viewer < operator < admin."
                ),
            ]),
            "paths": .object(paths.mapValues { .object($0) }),
            "components": .object([
                "schemas": .object(
                    Dictionary(uniqueKeysWithValues: OpenAPIComponents.schemas.map { ($0.0, $0.1.json) })),
                "securitySchemes": .object([
                    "bearer": .object(["type": .string("http"), "scheme": .string("bearer")]),
                    "session": .object([
                        "type": .string("apiKey"), "in": .string("cookie"),
                        "name": .string(AuthenticationMiddleware.sessionCookie),
                    ]),
                ]),
            ]),
        ])
    }

    var openAPI: JSONValue {
        var o: [String: JSONValue] = [
            "operationId": .string(id),
            "summary": .string(summary),
            "tags": .array([.string(tag)]),
        ]
        switch access {
        case .anyone: o["security"] = .array([])
        case .role(let role):
            o["security"] = .array([.object(["bearer": .array([])]), .object(["session": .array([])])])
            o["x-vantage-role"] = .string(role.rawValue)
        case .device:
            o["security"] = .array([.object(["bearer": .array([])])])
            o["x-vantage-role"] = .string("device")
        }
        var parameters: [JSONValue] = path.split(separator: "/").filter { $0.hasPrefix("{") }.map { part in
            .object([
                "name": .string(String(part.dropFirst().dropLast())), "in": .string("path"), "required": .bool(true),
                "schema": OpenAPISchema.text.json,
            ])
        }
        parameters += query.map {
            .object([
                "name": .string($0.name), "in": .string("query"), "required": .bool($0.required),
                "description": .string($0.description), "schema": $0.schema.json,
            ])
        }
        if !parameters.isEmpty { o["parameters"] = .array(parameters) }
        switch body {
        case .json(let schema, _)?:
            o["requestBody"] = .object([
                "required": .bool(true),
                "content": .object(["application/json": .object(["schema": OpenAPISchema.ref(schema).json])]),
            ])
        case .binary(let type)?:
            o["requestBody"] = .object([
                "required": .bool(true),
                "content": .object([
                    type: .object(["schema": .object(["type": .string("string"), "format": .string("binary")])])
                ]),
            ])
        case nil: break
        }
        var responses: [String: JSONValue] = [:]
        switch content {
        case .json(let schema):
            responses["\(status)"] = .object([
                "description": .string(summary),
                "content": .object(["application/json": .object(["schema": schema.json])]),
            ])
        case .binary(let type):
            responses["\(status)"] = .object([
                "description": .string(summary),
                "content": .object([
                    type: .object(["schema": .object(["type": .string("string"), "format": .string("binary")])])
                ]),
            ])
        case .none:
            responses["\(status)"] = .object(["description": .string(summary)])
        }
        if conditional {
            responses["304"] = .object(["description": .string("unchanged since the ETag sent in If-None-Match")])
        }
        if resumable, case .binary(let type) = content {
            responses["206"] = .object([
                "description": .string("the part asked for with Range: bytes=N- (resuming a download)"),
                "content": .object([
                    type: .object(["schema": .object(["type": .string("string"), "format": .string("binary")])])
                ]),
            ])
            responses["416"] = .object(["description": .string("the Range is outside the file")])
        }
        for (code, meaning) in errorStatuses {
            responses["\(code)"] = .object([
                "description": .string(meaning),
                "content": .object(["application/json": .object(["schema": OpenAPISchema.ref("Error").json])]),
            ])
        }
        o["responses"] = .object(responses)
        return .object(o)
    }

    /// The 4xx answers this operation can give.
    var errorStatuses: [(Int, String)] {
        var statuses: [(Int, String)] = [(400, "malformed request: the message says what to fix")]
        if access != .anyone {
            statuses += [(401, "missing or invalid credentials"), (403, "the caller's role does not allow this")]
        } else if isMutation {
            // Enrollment: the credential (a provisioning token) is in the body.
            statuses.append((401, "the credential in the body is not valid (expired, used, or mistyped)"))
        }
        if path.contains("{") { statuses.append((404, "no such resource")) }
        if isMutation {
            statuses += [
                (409, "conflicts with existing state"), (413, "body too large"),
                (422, "refers to something missing or invalid"),
            ]
        }
        return statuses
    }
}
