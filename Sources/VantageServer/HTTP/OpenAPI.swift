import Foundation
import Synchronization
import VantageAPI
import VantageCore

/// A JSON Schema (2020-12, as OpenAPI 3.1 uses it), small enough to write by hand for each resource. Request bodies
/// are checked against their schema (``OpenAPISchema/problem(with:at:)``), so every limit written here is one the
/// server enforces.
indirect enum OpenAPISchema: Sendable {
    case ref(String)
    /// Lengths count Unicode code points, as JSON Schema does.
    case string(
        format: String? = nil, values: [String]? = nil, pattern: String? = nil, minLength: Int? = nil,
        maxLength: Int? = nil)
    case integer(minimum: Int? = nil, maximum: Int? = nil)
    case number
    case boolean
    case array(OpenAPISchema, minItems: Int? = nil, maxItems: Int? = nil)
    case object([(String, OpenAPISchema)], required: [String], additional: OpenAPISchema? = nil)
    /// An object used as a dictionary: `keys` constrain its property names.
    case map(OpenAPISchema, keys: OpenAPISchema? = nil, maxProperties: Int? = nil)
    case any
    case nullable(OpenAPISchema)
    /// Exactly one of the choices.
    case oneOf([OpenAPISchema])
    /// At least one of the choices.
    case anyOf([OpenAPISchema])
    /// A value of one of these JSON types (`null`, `boolean`, `number`).
    case types([String])

    static let text = OpenAPISchema.string()
    static let time = OpenAPISchema.string(format: "date-time")
    /// A time in a request: RFC 3339 with an upper-case `T` and `Z`, at most 9 decimals and an offset of at most 18
    /// hours, as the server reads it.
    static let requestTime = OpenAPISchema.string(
        format: "date-time",
        pattern:
            "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,9})?(Z|[+-](0[0-9]|1[0-7]):[0-5][0-9]|[+-]18:00)$"
    )
    static func values<T: RawRepresentable & CaseIterable>(_: T.Type) -> OpenAPISchema where T.RawValue == String {
        .string(values: T.allCases.map(\.rawValue))
    }

    /// No string in a request may hold a NUL (`\u0000`): neither database engine stores it as sent.
    static let noNUL = "^[^\\u0000]*$"
    /// Text in a request: anything but NUL, at most `maxLength` code points.
    static func requestText(maxLength: Int? = nil) -> OpenAPISchema {
        .string(pattern: noNUL, maxLength: maxLength)
    }
    /// A resource's name: 1-128 letters, digits, `-`, `_`, `.` and spaces, not starting or ending with a space.
    static let name = OpenAPISchema.string(pattern: namePattern, minLength: 1, maxLength: 128)
    static let namePattern = "^[\\w.-]([\\w. -]*[\\w.-])?$"
    /// A secret in a request (`format: password`): its value is never repeated in an answer.
    static func secret(_ pattern: String = noNUL, minLength: Int? = nil, maxLength: Int) -> OpenAPISchema {
        .string(format: "password", pattern: pattern, minLength: minLength, maxLength: maxLength)
    }
    /// What a value that does not match each pattern must be, in words.
    static let patternMeanings: [String: String] = [
        namePattern: "must be 1-128 letters, digits, '-', '_', '.' or spaces, without leading or trailing spaces",
        OpenAPIComponents.plainTokenPattern: "must be 1-64 letters, digits, '_', '.', ':' or '-'",
        OpenAPIComponents.csrPattern: "must be a certificate signing request in PEM (printable ASCII lines)",
        OpenAPIComponents.awsPattern: "has spaces, line breaks or characters outside ASCII: copy it again",
        OpenAPIComponents.awsOptionalPattern: "has spaces, line breaks or characters outside ASCII: copy it again",
        OpenAPIComponents.regionPattern: "must be a region name like us-east-1",
        APIRoutes.modelFilename.pattern ?? "":
            "must be a plain file name (letters, digits, '.', '_', '-', '+') ending in "
            + Store.modelExtensions.joined(separator: ", "),
        APIRoutes.versionPattern: "must be 1-32 letters, digits, '.', '_' or '-' (e.g. 1.0)",
        Store.releaseVersionPattern:
            "must be 1-64 letters, digits, '.', '_', '+', '~' or '-', starting with a letter or digit (e.g. 0.2.0)",
    ]

    /// The pattern of a string schema.
    var pattern: String? {
        if case .string(_, _, let pattern, _, _) = self { return pattern }
        return nil
    }
    /// A description: up to 1024 code points.
    static let description = requestText(maxLength: 1024)
    /// An id of another resource in a request (an unknown one is answered 422, or 404 in the path).
    static let reference = requestText(maxLength: 64)
    /// Free-form JSON in a request: any value, without NUL in its strings or keys (component `JSON`).
    static let freeJSON = OpenAPISchema.ref("JSON")
    /// A dictionary in a request whose keys are node names or other short text.
    static func requestMap(_ values: OpenAPISchema, keyLength: Int = 128) -> OpenAPISchema {
        .map(values, keys: .string(pattern: noNUL, minLength: 1, maxLength: keyLength))
    }

    var json: JSONValue {
        switch self {
        case .ref(let name): return .object(["$ref": .string("#/components/schemas/\(name)")])
        case .string(let format, let values, let pattern, let minLength, let maxLength):
            var o: [String: JSONValue] = ["type": .string("string")]
            if let format { o["format"] = .string(format) }
            if let values { o["enum"] = .array(values.map(JSONValue.string)) }
            if let pattern { o["pattern"] = .string(pattern) }
            if let minLength { o["minLength"] = .number(Double(minLength)) }
            if let maxLength { o["maxLength"] = .number(Double(maxLength)) }
            return .object(o)
        case .integer(let minimum, let maximum):
            var o: [String: JSONValue] = ["type": .string("integer")]
            if let minimum { o["minimum"] = .number(Double(minimum)) }
            if let maximum { o["maximum"] = .number(Double(maximum)) }
            return .object(o)
        case .number: return .object(["type": .string("number")])
        case .boolean: return .object(["type": .string("boolean")])
        case .array(let items, let minItems, let maxItems):
            var o: [String: JSONValue] = ["type": .string("array"), "items": items.json]
            if let minItems { o["minItems"] = .number(Double(minItems)) }
            if let maxItems { o["maxItems"] = .number(Double(maxItems)) }
            return .object(o)
        case .object(let properties, let required, let additional):
            var o: [String: JSONValue] = [
                "type": .string("object"),
                "properties": .object(Dictionary(uniqueKeysWithValues: properties.map { ($0.0, $0.1.json) })),
                "additionalProperties": additional?.json ?? .bool(false),
            ]
            if !required.isEmpty { o["required"] = .array(required.map(JSONValue.string)) }
            return .object(o)
        case .map(let values, let keys, let maxProperties):
            var o: [String: JSONValue] = ["type": .string("object"), "additionalProperties": values.json]
            if let keys { o["propertyNames"] = keys.json }
            if let maxProperties { o["maxProperties"] = .number(Double(maxProperties)) }
            return .object(o)
        case .any: return .object([:])
        case .nullable(let schema):
            return .object(["oneOf": .array([schema.json, .object(["type": .string("null")])])])
        case .oneOf(let choices):
            return .object(["oneOf": .array(choices.map(\.json))])
        case .anyOf(let choices):
            return .object(["anyOf": .array(choices.map(\.json))])
        case .types(let types):
            return .object(["type": .array(types.map(JSONValue.string))])
        }
    }
}

extension OpenAPISchema {
    /// What is wrong with `value` against this schema, as `path: problem` (the first problem found), or nil. The
    /// server checks request bodies with it, after their fields and types: every limit the document states is one
    /// the server enforces. Lengths count code points; `\\w` in a pattern means a letter, a digit or `_`, as in
    /// the document's readers (Python's `re`, JSON Schema validators).
    func problem(with value: JSONValue, at path: String = "") -> String? {
        func at(_ text: String) -> String { path.isEmpty ? text : "\(path): \(text)" }
        // Null is a value of its own: a field that may be left out is left out, not sent as null.
        if case .null = value, !Self.admits(self, .null) { return at("must not be null (leave the field out)") }
        switch self {
        case .ref(let name):
            guard let schema = OpenAPIComponents.byName[name] else { return nil }
            return schema.problem(with: value, at: path)
        case .string(let format, let values, let pattern, let minLength, let maxLength):
            guard case .string(let text) = value else { return nil }
            let length = text.unicodeScalars.count
            if let values, !values.contains(text) {
                return at("must be one of \(values.joined(separator: ", ")), not \"\(text.prefix(40))\"")
            }
            if let minLength, length < minLength {
                return at(minLength == 1 ? "must not be empty" : "must be at least \(minLength) characters")
            }
            if let maxLength, length > maxLength {
                return at("is longer than \(maxLength) characters")
            }
            if let pattern, !Self.matches(text, pattern: pattern) {
                if format == "date-time" {
                    return at(
                        "must be an ISO 8601 time like 2026-05-31T12:00:00Z (at most 9 decimals, an offset of at most "
                            + "18 hours), not \"\(text.prefix(40))\"")
                }
                if pattern == Self.noNUL {
                    return at("contains a NUL character (\\u0000), which cannot be stored")
                }
                let meaning = Self.patternMeanings[pattern] ?? "does not have the form \(pattern)"
                // A secret is never repeated, not even in part.
                return at(format == "password" ? meaning : "\"\(text.prefix(40))\" \(meaning)")
            }
            return nil
        case .integer(let minimum, let maximum):
            guard case .number(let number) = value else { return nil }
            if let minimum, let maximum, number < Double(minimum) || number > Double(maximum) {
                return at("must be \(minimum)-\(maximum), not \(JSONValue.number(number).text)")
            }
            if let minimum, number < Double(minimum) { return at("must be at least \(minimum)") }
            if let maximum, number > Double(maximum) { return at("must be at most \(maximum)") }
            return nil
        case .number, .boolean, .any, .types:
            return nil
        case .array(let items, let minItems, let maxItems):
            guard case .array(let elements) = value else { return nil }
            if let minItems, elements.count < minItems { return at("needs at least \(minItems) item(s)") }
            if let maxItems, elements.count > maxItems {
                return at("has \(elements.count) items; at most \(maxItems) are taken at once")
            }
            for (index, element) in elements.enumerated() {
                if let problem = items.problem(with: element, at: "\(path)[\(index)]") { return problem }
            }
            return nil
        case .object(let properties, _, _):
            guard case .object(let members) = value else { return nil }
            for (name, schema) in properties {
                guard let member = members[name] else { continue }
                if let problem = schema.problem(with: member, at: path.isEmpty ? name : "\(path).\(name)") {
                    return problem
                }
            }
            return nil
        case .map(let values, let keys, let maxProperties):
            guard case .object(let members) = value else { return nil }
            if let maxProperties, members.count > maxProperties {
                return at("has \(members.count) entries; at most \(maxProperties) are taken")
            }
            for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                if let keys, let problem = keys.problem(with: .string(key), at: "\(path) key") { return problem }
                if let problem = values.problem(with: member, at: "\(path).\(key.prefix(40))") { return problem }
            }
            return nil
        case .nullable(let schema):
            if case .null = value { return nil }
            return schema.problem(with: value, at: path)
        case .oneOf(let choices), .anyOf(let choices):
            var first: String?
            for choice in choices {
                guard Self.admits(choice, value) else { continue }
                guard let problem = choice.problem(with: value, at: path) else { return nil }
                first = first ?? problem
            }
            return first
        }
    }

    /// Whether `value` has the JSON type `schema` describes (so that of several choices the one that fits is
    /// checked).
    static func admits(_ schema: OpenAPISchema, _ value: JSONValue) -> Bool {
        switch (schema, value) {
        case (.ref(let name), _): return OpenAPIComponents.byName[name].map { admits($0, value) } ?? true
        case (.string, .string), (.integer, .number), (.number, .number), (.boolean, .bool), (.array, .array),
            (.object, .object), (.map, .object), (.any, _):
            return true
        case (.types(let types), _):
            switch value {
            case .null: return types.contains("null")
            case .bool: return types.contains("boolean")
            case .number: return types.contains("number")
            default: return false
            }
        case (.nullable(let inner), _): return value == .null || admits(inner, value)
        case (.oneOf(let choices), _), (.anyOf(let choices), _): return choices.contains { admits($0, value) }
        default: return false
        }
    }

    private static let compiled = Mutex<[String: Regex<AnyRegexOutput>]>([:])

    /// Whether `text` matches the ECMA-262-style `pattern` as the document's readers see it: `\\w` is a Unicode
    /// letter or digit or `_` (not a combining mark, as Swift's `\\w` would take).
    static func matches(_ text: String, pattern: String) -> Bool {
        let regex: Regex<AnyRegexOutput>? = compiled.withLock { cache in
            if let regex = cache[pattern] { return regex }
            let swiftPattern = pattern.replacingOccurrences(of: "\\w", with: "\\p{L}\\p{N}_")
            guard let regex = try? Regex(swiftPattern) else { return nil }
            cache[pattern] = regex
            return regex
        }
        guard let regex else { return true }
        return (try? regex.matchingSemantics(.unicodeScalar).firstMatch(in: text)) != nil
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

    static let error = object([("error", object([("status", .integer()), ("message", .text)]))])

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
                    ("softwareVersion", .text), ("certificateExpiresAt", .time),
                    ("softwareUpdate", .ref("DeviceSoftwareUpdate")), ("conditions", .array(.ref("DeviceCondition"))),
                    ("createdAt", .time), ("updatedAt", .time),
                ],
                optional: ["lastHeartbeat", "softwareVersion", "certificateExpiresAt", "softwareUpdate", "conditions"])
        ),
        (
            "DeviceCondition",
            object([("kind", .values(DeviceCondition.Kind.self)), ("message", .text), ("since", .time)])
        ),
        (
            "DeviceCreated",
            object(
                [
                    ("device", .ref("Device")), ("provisioningToken", .text), ("tokenExpiresAt", .time),
                    ("caFingerprint", .text), ("deviceEndpoint", .text),
                ], optional: ["deviceEndpoint"])
        ),
        (
            "EnrollmentRequest",
            request([("token", .secret(maxLength: 256)), ("csr", csr)], required: ["token", "csr"])
        ),
        ("CertificateRenewal", request([("csr", csr)], required: ["csr"])),
        (
            "Enrollment",
            object([
                ("deviceId", .text), ("certificate", .text), ("caCertificate", .text),
                ("certificateExpiresAt", .time),
            ])
        ),
        ("NewDevice", request([("name", .name), ("description", .description)], required: ["name"])),
        ("DeviceUpdate", request([("name", .name), ("description", .description)], required: [])),
        (
            "Heartbeat",
            request(
                [
                    ("softwareVersion", .requestText(maxLength: 64)),
                    (
                        "metrics",
                        .map(
                            .number, keys: .string(pattern: OpenAPISchema.noNUL, minLength: 1, maxLength: 64),
                            maxProperties: 64)
                    ),
                    ("update", .ref("SoftwareUpdateReport")),
                    ("agentSession", OpenAPIComponents.plainToken),
                ], required: [])
        ),
        (
            "SoftwareUpdateReport",
            request(
                [
                    ("rolloutId", .reference), ("version", .requestText(maxLength: 64)),
                    ("state", .values(RolloutDeviceState.self)), ("reason", .requestText(maxLength: 2048)),
                ], required: ["version", "state"])
        ),
        ("Release", object([("version", .text), ("digest", .text), ("size", .integer()), ("createdAt", .time)])),
        (
            "RolloutDevice",
            object(
                [
                    ("deviceId", .text), ("position", .integer()), ("state", .values(RolloutDeviceState.self)),
                    ("reason", .text), ("updatedAt", .time),
                ], optional: ["reason"])
        ),
        (
            "Rollout",
            object(
                [
                    ("id", .text), ("releaseVersion", .text), ("state", .values(RolloutState.self)),
                    ("reason", .text), ("devices", .array(.ref("RolloutDevice"))), ("createdAt", .time),
                    ("updatedAt", .time),
                ], optional: ["reason"])
        ),
        (
            "NewRollout",
            request(
                [
                    ("releaseVersion", .requestText(maxLength: 64)),
                    ("deviceIds", .array(.reference, maxItems: 10_000)), ("all", .boolean),
                ], required: ["releaseVersion"])
        ),
        (
            "DeviceSoftwareUpdate",
            object(
                [
                    ("rolloutId", .text), ("releaseVersion", .text), ("state", .values(RolloutDeviceState.self)),
                    ("reason", .text),
                ], optional: ["reason"])
        ),
        (
            "DesiredSoftware",
            object(
                [
                    ("rolloutId", .text), ("version", .text), ("digest", .text), ("size", .integer()), ("url", .text),
                    ("signature", .text),
                ], optional: ["signature"])
        ),
        ("MetricPoint", object([("name", .text), ("time", .time), ("value", .number)])),
        (
            "Camera",
            object(
                [
                    ("id", .text), ("name", .text), ("description", .text), ("url", .text), ("detectUrl", .text),
                    ("hasCredentials", .boolean),
                    ("deviceId", .text), ("snapshotAt", .time), ("createdAt", .time), ("updatedAt", .time),
                ], optional: ["detectUrl", "deviceId", "snapshotAt"])
        ),
        (
            "NewCamera",
            request(
                [
                    ("name", .name), ("description", .description), ("url", cameraURL), ("detectUrl", cameraURL),
                    ("username", .requestText(maxLength: 1024)), ("password", .secret(maxLength: 1024)),
                    ("deviceId", .reference),
                ], required: ["name", "url"])
        ),
        (
            "CameraUpdate",
            request(
                [
                    ("name", .name), ("description", .description), ("url", cameraURL),
                    ("detectUrl", .nullable(cameraURL)),
                    ("username", .requestText(maxLength: 1024)), ("password", .secret(maxLength: 1024)),
                    ("deviceId", .reference),
                ], required: [])
        ),
        (
            "ModelVersion",
            object(
                [
                    ("version", .integer()), ("digest", .text), ("size", .integer()), ("filename", .text),
                    ("descriptor", .any), ("createdAt", .time),
                ], optional: ["descriptor"])
        ),
        (
            "Model",
            object(
                [
                    ("id", .text), ("name", .text), ("description", .text), ("latestVersion", .integer()),
                    ("versions", .array(.ref("ModelVersion"))), ("createdAt", .time),
                ], optional: ["latestVersion"])
        ),
        ("NewModel", request([("name", .name), ("description", .description)], required: ["name"])),
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
                ("size", .integer()),
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
        ("NewPackage", request([("name", .name), ("description", .description)], required: ["name"])),
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
                    ("name", .name), ("description", .description), ("packageId", .reference),
                    ("packageVersion", .reference), ("deviceId", .reference),
                    ("cameras", .requestMap(.reference)), ("parameters", .requestMap(.freeJSON)),
                    ("models", .requestMap(.reference)), ("outputs", outputs),
                    ("desiredState", .string(values: [DesiredState.running.rawValue, DesiredState.stopped.rawValue])),
                    ("awsCredentials", .ref("AWSCredentials")),
                ], required: ["name", "packageId", "packageVersion", "deviceId", "cameras"])
        ),
        (
            "InstanceUpdate",
            request(
                [
                    ("name", .name), ("description", .description), ("packageVersion", .reference),
                    ("cameras", .requestMap(.reference)), ("parameters", .requestMap(.freeJSON)),
                    ("models", .requestMap(.reference)), ("outputs", outputs),
                    ("desiredState", .values(DesiredState.self)), ("awsCredentials", awsCredentialsChange),
                ], required: [])
        ),
        (
            "InstanceReport",
            request(
                [
                    ("status", .values(InstanceStatus.self)), ("healthStatus", .values(HealthStatus.self)),
                    ("statusDescription", .requestText(maxLength: 1024)),
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
                    ("id", .text), ("deviceId", .text), ("deviceEventId", .text), ("cameraId", .text),
                    ("instanceId", .text), ("type", .text), ("time", .time), ("receivedAt", .time),
                    ("deviceTime", .time), ("sequence", .integer(minimum: 1)), ("data", .any),
                    ("hasSnapshot", .boolean), ("hasClip", .boolean),
                ], optional: ["deviceEventId", "cameraId", "instanceId", "deviceTime", "sequence"])
        ),
        (
            "NewEvent",
            request(
                [
                    ("id", plainToken), ("type", plainToken), ("time", .requestTime),
                    ("sequence", .integer(minimum: 1)), ("cameraId", .reference),
                    ("instanceId", .reference), ("data", .freeJSON), ("snapshot", .string(format: "byte")),
                ], required: ["type"])
        ),
        (
            "EventBatch",
            request(
                [("events", .array(.ref("NewEvent"), minItems: 1, maxItems: Store.maxEventsPerBatch))],
                required: ["events"])
        ),
        (
            "LogLine",
            object(
                [("time", .time), ("instanceId", .text), ("level", .text), ("message", .text)],
                optional: ["instanceId"])
        ),
        (
            "NewLogLine",
            request(
                [
                    ("time", .requestTime), ("instanceId", .reference), ("level", .requestText()),
                    ("message", .string(pattern: OpenAPISchema.noNUL)),
                ], required: ["time", "level", "message"])
        ),
        (
            "LogBatch",
            request([("lines", .array(.ref("NewLogLine"), maxItems: Store.maxLogLinesPerBatch))], required: ["lines"])
        ),
        ("EventIds", object([("ids", .array(.text))])),
        ("EventPage", page(of: "Event")),
        ("EventTypes", object([("types", .array(.text))])),
        (
            "APIToken",
            object(
                [("id", .text), ("name", .text), ("role", .ref("Role")), ("createdAt", .time), ("lastUsedAt", .time)],
                optional: ["lastUsedAt"])
        ),
        ("APITokenCreated", object([("token", .ref("APIToken")), ("secret", .text)])),
        ("NewToken", request([("name", .name), ("role", .ref("Role"))], required: ["name", "role"])),
        (
            "User",
            object(
                [("name", .text), ("role", .ref("Role")), ("createdAt", .time), ("lastSignInAt", .time)],
                optional: ["lastSignInAt"])
        ),
        (
            "NewUser",
            request(
                [("name", .name), ("role", .ref("Role")), ("password", .secret(minLength: 8, maxLength: 1024))],
                required: ["name", "role", "password"])
        ),
        (
            "UserChange",
            request([("role", .ref("Role")), ("password", .secret(minLength: 8, maxLength: 1024))], required: [])
        ),
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
        (
            "DesiredCamera",
            object([("cameraId", .text), ("url", .text), ("detectUrl", .text)], optional: ["detectUrl"])
        ),
        (
            "DesiredInstance",
            object(
                [
                    ("id", .text), ("name", .text), ("packageId", .text), ("packageName", .text),
                    ("packageVersion", .text), ("archiveDigest", .text), ("desiredState", .values(DesiredState.self)),
                    ("deploymentId", .text), ("cameras", .map(.ref("DesiredCamera"))), ("parameters", .map(.any)),
                    ("models", .map(.ref("DesiredModel"))), ("outputs", outputs), ("deviceName", .text),
                    ("awsCredentials", .ref("AWSCredentials")), ("archiveSignature", .text),
                ], optional: ["deploymentId", "outputs", "deviceName", "awsCredentials", "archiveSignature"])
        ),
        (
            "AWSCredentials",
            object(
                [
                    ("accessKeyId", awsText(128)), ("secretAccessKey", awsText(1024)),
                    // An empty session token or region is none.
                    ("sessionToken", .secret(awsOptionalPattern, maxLength: 8192)),
                    ("region", .string(pattern: regionPattern, maxLength: 64)),
                ], optional: ["sessionToken", "region"])
        ),
        (
            "JSON",
            .anyOf([
                .types(["null", "boolean", "number"]), .string(pattern: OpenAPISchema.noNUL),
                .array(.ref("JSON")), .map(.ref("JSON"), keys: .string(pattern: OpenAPISchema.noNUL)),
            ])
        ),
        (
            "AWSCredentialsSummary",
            object(
                [("accessKeyId", .text), ("region", .text), ("hasSessionToken", .boolean)], optional: ["region"])
        ),
        ("ModelBinding", object([("modelId", .text), ("version", .integer())])),
        (
            "DesiredModel",
            object(
                [
                    ("modelId", .text), ("version", .integer()), ("digest", .text), ("filename", .text),
                    ("signature", .text),
                ], optional: ["signature"])
        ),
        (
            "DeviceDesiredState",
            object(
                [
                    ("deviceId", .text), ("instances", .array(.ref("DesiredInstance"))),
                    ("software", .ref("DesiredSoftware")), ("artifactKey", .text), ("live", .ref("LiveRequest")),
                    ("signals", .array(.ref("CameraSignal"))),
                ], optional: ["software", "artifactKey", "live", "signals"])
        ),
        (
            "LiveRequest",
            object([("instances", .array(.text)), ("framesPerSecond", .number)])
        ),
        ("LiveStreams", object([("streams", .array(.text)), ("framesPerSecond", .number)])),
        (
            "CameraSignal",
            object([
                ("id", .text), ("instanceId", .text), ("node", .text),
                ("signal", .string(values: ["pause", "resume"])),
            ])
        ),
        ("CameraSignalResult", object([("ok", .boolean), ("message", .requestText(maxLength: 2000))])),
    ]

    /// A certificate signing request in PEM: printable ASCII lines, at most 16 KiB.
    static let csr = OpenAPISchema.string(pattern: csrPattern, maxLength: 16_384)
    static let csrPattern = "^[\\t\\n\\r\\x20-\\x7e]*$"

    /// A camera's URL, at most 2048 code points. What else the server checks (a supported scheme with a host, or
    /// a file path; credentials percent-encoded) is said in words: a pattern could not say it exactly.
    static let cameraURL = OpenAPISchema.requestText(maxLength: 2048)

    /// An event's type or a device's event id: 1-64 ASCII letters, digits, `_`, `.`, `:` or `-`.
    static let plainToken = OpenAPISchema.string(pattern: plainTokenPattern, minLength: 1, maxLength: 64)
    static let plainTokenPattern = "^[A-Za-z0-9_.:-]+$"

    /// An AWS credential: one line of printable ASCII without spaces, 1 to `maxLength` characters, never repeated in
    /// an answer (any of them may be the secret pasted in the wrong field).
    static func awsText(_ maxLength: Int) -> OpenAPISchema {
        .secret(awsPattern, minLength: 1, maxLength: maxLength)
    }
    static let awsPattern = "^[\\x21-\\x7e]+$"
    static let awsOptionalPattern = "^[\\x21-\\x7e]*$"
    static let regionPattern = "^[a-z0-9-]*$"

    /// The component schemas by name, for ``OpenAPISchema/problem(with:at:)``.
    static let byName: [String: OpenAPISchema] = Dictionary(uniqueKeysWithValues: schemas.map { ($0.0, $0.1) })

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
            var parameter: [String: JSONValue] = [
                "name": .string($0.name), "in": .string("query"), "required": .bool($0.required),
                "description": .string($0.description),
            ]
            if $0.json {
                parameter["content"] = .object(["application/json": .object(["schema": $0.schema.json])])
            } else {
                parameter["schema"] = $0.schema.json
            }
            return .object(parameter)
        }
        if !parameters.isEmpty { o["parameters"] = .array(parameters) }
        switch body {
        case .json(let schema, _)?:
            o["requestBody"] = .object([
                "required": .bool(true),
                "content": .object(["application/json": .object(["schema": OpenAPISchema.ref(schema).json])]),
            ])
        case .binary(let type)?:
            // An empty upload is refused.
            o["requestBody"] = .object([
                "required": .bool(true),
                "content": .object([
                    type: .object([
                        "schema": .object([
                            "type": .string("string"), "format": .string("binary"), "minLength": .number(1),
                        ])
                    ])
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
