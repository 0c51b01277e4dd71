// The OpenAPI document as the tests read it: its operations (route, who may call, documented answers) and a
// validator for the JSON Schema subset it uses, so a test checks answers against the document itself rather than
// against the Swift types that produced them.

import Foundation
import Hummingbird
import Testing
import VantageAPI
import VantageCore
import VantageServer

struct OpenAPIDocument: Sendable {
    struct Operation: Sendable, CustomTestStringConvertible {
        let id: String
        let method: HTTPRequest.Method
        /// The templated path: `/api/v1/devices/{id}`.
        let path: String
        /// `viewer`, `operator`, `admin` or `device` (`x-vantage-role`); nil when anyone may call.
        let role: String?
        /// `security: []`: no credentials needed.
        let isPublic: Bool
        /// The documented 2xx status.
        let successStatus: Int
        /// The media type of the success answer (`application/json`, `image/jpeg`, …), nil for none.
        let successMediaType: String?
        let successSchema: JSONValue?
        /// The JSON request body's schema, if the operation takes one.
        let requestSchema: JSONValue?
        /// Every status the document lists.
        let statuses: Set<Int>
        let queryParameters: [String]

        var isMutation: Bool { method != .get && method != .head }
        var testDescription: String { id }

        /// The path with each `{name}` replaced by `values[name]` (or `fallback`).
        func path(_ values: [String: String] = [:], fallback: String = "x") -> String {
            path.split(separator: "/", omittingEmptySubsequences: false).map { part in
                guard part.hasPrefix("{") else { return String(part) }
                return values[String(part.dropFirst().dropLast())] ?? fallback
            }.joined(separator: "/")
        }

        /// Whether the concrete `path` is this operation's route.
        func matches(_ method: HTTPRequest.Method, _ concrete: String) -> Bool {
            guard method == self.method else { return false }
            let template = path.split(separator: "/", omittingEmptySubsequences: false)
            let parts = concrete.split(separator: "/", omittingEmptySubsequences: false)
            guard template.count == parts.count else { return false }
            return zip(template, parts).allSatisfy { $0.hasPrefix("{") ? !$1.isEmpty : $0 == $1 }
        }
    }

    let root: JSONValue
    let operations: [Operation]

    /// The document the server generates (and serves at /openapi.json).
    static func current() throws -> OpenAPIDocument {
        try OpenAPIDocument(text: ControlPlane.openAPIDocument())
    }

    init(text: String) throws {
        root = try APIJSON.decoder().decode(JSONValue.self, from: Data(text.utf8))
        var operations: [Operation] = []
        for (path, item) in root["paths"]?.objectValue ?? [:] {
            for (method, operation) in item.objectValue ?? [:] {
                guard let id = operation["operationId"]?.stringValue else {
                    throw APITestError("\(method.uppercased()) \(path) has no operationId")
                }
                let responses = operation["responses"]?.objectValue ?? [:]
                let statuses = Set(responses.keys.compactMap { Int($0) })
                guard let success = statuses.filter({ (200..<300).contains($0) }).min() else {
                    throw APITestError("\(id) documents no 2xx answer")
                }
                let content = responses["\(success)"]?["content"]?.objectValue
                let mediaType = content?.keys.sorted().first
                operations.append(
                    Operation(
                        id: id, method: HTTPRequest.Method(method.uppercased())!, path: path,
                        role: operation["x-vantage-role"]?.stringValue,
                        isPublic: operation["security"]?.arrayValue?.isEmpty ?? false, successStatus: success,
                        successMediaType: mediaType,
                        successSchema: mediaType == "application/json" ? content?[mediaType!]?["schema"] : nil,
                        requestSchema: operation["requestBody"]?["content"]?["application/json"]?["schema"],
                        statuses: statuses,
                        queryParameters: (operation["parameters"]?.arrayValue ?? []).filter {
                            $0["in"]?.stringValue == "query"
                        }.compactMap { $0["name"]?.stringValue }))
            }
        }
        self.operations = operations.sorted { ($0.path, $0.method.rawValue) < ($1.path, $1.method.rawValue) }
    }

    func operation(_ id: String) -> Operation? { operations.first { $0.id == id } }

    /// The operation whose route `path` is; a literal segment wins over a `{parameter}`.
    func operation(method: HTTPRequest.Method, path: String) -> Operation? {
        operations.filter { $0.matches(method, path) }.max {
            $0.path.filter { $0 == "{" }.count > $1.path.filter { $0 == "{" }.count
        }
    }

    func schema(named name: String) -> JSONValue? { root["components"]?["schemas"]?[name] }

    // MARK: JSON Schema (the 2020-12 subset the document uses)

    /// The keywords the validator understands; a schema using another fails validation rather than passing
    /// unchecked.
    static let keywords: Set<String> = [
        "$ref", "type", "properties", "required", "additionalProperties", "items", "enum", "oneOf", "anyOf", "format",
        "pattern", "description", "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems",
        "maxProperties", "propertyNames",
    ]

    /// What is wrong with `value` against `schema`, as `$.path: problem` lines; empty when it validates.
    func validate(_ value: JSONValue, against schema: JSONValue, at path: String = "$") -> [String] {
        if case .bool(let allowed) = schema { return allowed ? [] : ["\(path): no value is allowed here"] }
        guard let rules = schema.objectValue else { return ["\(path): the schema \(schema) is not an object"] }
        let unknown = Set(rules.keys).subtracting(Self.keywords)
        guard unknown.isEmpty else { return ["\(path): the validator does not know \(unknown.sorted())"] }
        if let reference = rules["$ref"]?.stringValue {
            let prefix = "#/components/schemas/"
            guard reference.hasPrefix(prefix),
                let target = self.schema(named: String(reference.dropFirst(prefix.count)))
            else { return ["\(path): unresolvable $ref \(reference)"] }
            return validate(value, against: target, at: path)
        }
        var problems: [String] = []
        if let choices = rules["oneOf"]?.arrayValue {
            let matching = choices.filter { validate(value, against: $0, at: path).isEmpty }.count
            if matching != 1 {
                problems.append(
                    "\(path): \(APIJSON.string(value).prefix(80)) matches \(matching) of oneOf's schemas, not 1")
            }
        }
        if let choices = rules["anyOf"]?.arrayValue,
            !choices.contains(where: { validate(value, against: $0, at: path).isEmpty })
        {
            problems.append("\(path): \(APIJSON.string(value).prefix(80)) matches none of anyOf's schemas")
        }
        if let type = rules["type"] {
            let allowed = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue ?? "?"]
            guard allowed.contains(where: { Self.value(value, is: $0) }) else {
                return problems + ["\(path): \(APIJSON.string(value).prefix(80)) is not of type \(allowed)"]
            }
        }
        if let values = rules["enum"]?.arrayValue, !values.contains(value) {
            problems.append("\(path): \(APIJSON.string(value)) is not one of \(APIJSON.string(values))")
        }
        switch value {
        case .string(let text):
            switch rules["format"]?.stringValue {
            case "date-time"?:
                if APIJSON.parseTime(text) == nil { problems.append("\(path): \"\(text)\" is not a date-time") }
            case "byte"?:
                if Data(base64Encoded: text) == nil { problems.append("\(path): \"\(text.prefix(40))\" is not base64") }
            case nil, "binary"?, "password"?:
                break
            case let other?:
                problems.append("\(path): the validator does not know format \(other)")
            }
            let length = text.unicodeScalars.count
            if let minimum = rules["minLength"]?.numberValue, Double(length) < minimum {
                problems.append("\(path): \"\(text.prefix(40))\" is shorter than \(minimum)")
            }
            if let maximum = rules["maxLength"]?.numberValue, Double(length) > maximum {
                problems.append("\(path): \"\(text.prefix(40))\" is longer than \(maximum)")
            }
            if let pattern = rules["pattern"]?.stringValue {
                // As the document's readers (Python, JSON Schema validators) read \w: a letter, digit or _.
                let swiftPattern = pattern.replacingOccurrences(of: "\\w", with: "\\p{L}\\p{N}_")
                if let regex = try? Regex(swiftPattern).matchingSemantics(.unicodeScalar) {
                    if (try? regex.firstMatch(in: text)) == nil {
                        problems.append("\(path): \"\(text)\" does not match \(pattern)")
                    }
                } else {
                    problems.append("\(path): pattern \(pattern) is not a regular expression")
                }
            }
        case .number(let number):
            if let minimum = rules["minimum"]?.numberValue, number < minimum {
                problems.append("\(path): \(number) is below the minimum \(minimum)")
            }
            if let maximum = rules["maximum"]?.numberValue, number > maximum {
                problems.append("\(path): \(number) is above the maximum \(maximum)")
            }
        case .array(let items):
            if let minimum = rules["minItems"]?.numberValue, Double(items.count) < minimum {
                problems.append("\(path): fewer than \(minimum) items")
            }
            if let maximum = rules["maxItems"]?.numberValue, Double(items.count) > maximum {
                problems.append("\(path): more than \(maximum) items")
            }
            if let itemSchema = rules["items"] {
                for (index, item) in items.enumerated() {
                    problems += validate(item, against: itemSchema, at: "\(path)[\(index)]")
                }
            }
        case .object(let object):
            let properties = rules["properties"]?.objectValue ?? [:]
            if let maximum = rules["maxProperties"]?.numberValue, Double(object.count) > maximum {
                problems.append("\(path): more than \(maximum) properties")
            }
            if let names = rules["propertyNames"] {
                for name in object.keys.sorted() {
                    problems += validate(.string(name), against: names, at: "\(path) key \(name.prefix(40))")
                }
            }
            for name in rules["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where object[name] == nil {
                problems.append("\(path): required property \(name) is missing")
            }
            for (name, item) in object.sorted(by: { $0.key < $1.key }) {
                if let propertySchema = properties[name] {
                    problems += validate(item, against: propertySchema, at: "\(path).\(name)")
                } else if let additional = rules["additionalProperties"] {
                    if case .bool(false) = additional {
                        problems.append("\(path): property \(name) is not in the schema")
                    } else {
                        problems += validate(item, against: additional, at: "\(path).\(name)")
                    }
                }
            }
        default:
            break
        }
        return problems
    }

    static func value(_ value: JSONValue, is type: String) -> Bool {
        switch (type, value) {
        case ("string", .string), ("boolean", .bool), ("array", .array), ("object", .object), ("null", .null),
            ("number", .number):
            return true
        case ("integer", .number(let number)):
            return number.rounded() == number
        default:
            return false
        }
    }
}

/// Checks each answer of a scripted run against the document and records which operations were exercised.
struct DocumentedCalls {
    let document: OpenAPIDocument
    /// The operations answered with their documented success.
    private(set) var exercised: Set<String> = []
    /// The successful mutations: operation, target path and actor (what the audit log must show).
    private(set) var mutations: [(operation: String, target: String, actor: String?)] = []

    init(_ document: OpenAPIDocument) { self.document = document }

    /// Expects `response` to be its operation's documented success, with a body the documented schema accepts.
    @discardableResult
    mutating func expect(_ response: APIResponse, sourceLocation: SourceLocation = #_sourceLocation) -> APIResponse {
        guard let operation = document.operation(method: response.method, path: response.path) else {
            Issue.record(
                "\(response.method) \(response.path) is not in the OpenAPI document", sourceLocation: sourceLocation)
            return response
        }
        #expect(
            response.status == operation.successStatus,
            "\(operation.id) must answer \(operation.successStatus): \(response)", sourceLocation: sourceLocation)
        guard response.status == operation.successStatus else { return response }
        let contentType = response.headers[.contentType] ?? ""
        switch operation.successMediaType {
        case "application/json"?:
            #expect(contentType.hasPrefix("application/json"), "\(response)", sourceLocation: sourceLocation)
            guard let value = response.json, let schema = operation.successSchema else {
                Issue.record(
                    "\(operation.id) answered a body that is not JSON: \(response)", sourceLocation: sourceLocation)
                return response
            }
            let problems = document.validate(value, against: schema)
            #expect(
                problems.isEmpty, "\(operation.id)'s answer does not match its documented schema: \(problems)",
                sourceLocation: sourceLocation)
        case let mediaType?:
            #expect(
                contentType.hasPrefix(mediaType), "\(operation.id) must answer \(mediaType), not \(contentType)",
                sourceLocation: sourceLocation)
            #expect(!response.body.isEmpty, "\(operation.id) answered an empty file", sourceLocation: sourceLocation)
        case nil:
            #expect(
                response.body.isEmpty, "\(operation.id) documents no body: \(response)", sourceLocation: sourceLocation)
        }
        exercised.insert(operation.id)
        if operation.isMutation { mutations.append((operation.id, response.path, response.actor)) }
        return response
    }
}

extension OpenAPIDocument {
    /// Expects `response` to be a documented error answer of its operation: the status listed for it, and a body
    /// that is the Error schema with a message.
    func expectError(
        _ response: APIResponse, _ status: Int, mentioning words: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(response.status == status, "expected \(status): \(response)", sourceLocation: sourceLocation)
        if let operation = operation(method: response.method, path: response.path) {
            #expect(
                operation.statuses.contains(response.status),
                "\(operation.id) answered \(response.status), which its documented responses do not list",
                sourceLocation: sourceLocation)
        }
        guard let value = response.json, let schema = schema(named: "Error") else {
            Issue.record("the error answer is not JSON: \(response)", sourceLocation: sourceLocation)
            return
        }
        let problems = validate(value, against: schema)
        #expect(
            problems.isEmpty, "the error answer is not the Error schema: \(problems)", sourceLocation: sourceLocation)
        #expect(value["error"]?["status"] == .number(Double(response.status)), sourceLocation: sourceLocation)
        #expect(
            !response.message.isEmpty, "the error answer has no message: \(response)", sourceLocation: sourceLocation)
        for word in words {
            #expect(
                response.message.contains(word), "the message should mention \"\(word)\": \(response.message)",
                sourceLocation: sourceLocation)
        }
    }
}
