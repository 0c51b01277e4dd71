import Foundation
import Hummingbird
import Testing
import VantageAPI
import VantageCore
import VantageServer

/// The OpenAPI document: kept in the repository, valid OpenAPI 3.1, served by the server, and precise enough that
/// the response tests mean something.
@Suite("OpenAPI document")
struct OpenAPIDocumentTests {
    @Test("docs/openapi.json is the document the server generates")
    func committedDocumentIsCurrent() throws {
        let committed = try String(contentsOf: SourceTree.openAPIFile, encoding: .utf8)
        #expect(
            committed == ControlPlane.openAPIDocument(),
            "docs/openapi.json is out of date: run `.build/debug/vantage server openapi > docs/openapi.json`")
    }

    @Test("the document is valid OpenAPI 3.1 (openapi-spec-validator)")
    func documentIsValidOpenAPI() async throws {
        let file = FileManager.default.temporaryDirectory.appending(path: "openapi-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try ControlPlane.openAPIDocument().write(to: file, atomically: true, encoding: .utf8)
        let result = try await TestProcess.run(
            ["python3", "-m", "openapi_spec_validator", file.path],
            environment: ["PYTHONPATH": SourceTree.root.appending(path: ".deps/python").path])
        if result.output.contains("No module named openapi_spec_validator") {
            Issue.record(
                "openapi-spec-validator is not installed: run scripts/setup (it installs it into .deps/python)")
            return
        }
        #expect(result.status == 0, "openapi-spec-validator refuses the document:\n\(result.output)")
        #expect(result.output.contains(": OK"), "\(result.output)")
    }

    @Test("/openapi.json is served without credentials", arguments: Engine.allCases)
    func documentIsServed(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let document = try await api.call(.get, "/openapi.json")
            #expect(document.status == 200)
            #expect(document.headers[.contentType]?.hasPrefix("application/json") == true)
            #expect(document.text == ControlPlane.openAPIDocument(), "/openapi.json is not the generated document")
            let health = try await api.call(.get, "/healthz")
            #expect(health.status == 200 && health.text == "ok\n")
            // A proxy's own Authorization scheme is not ours: the request is anonymous, not refused.
            let proxied = try await api.call(.get, "/healthz", headers: [.authorization: "Basic cHJveHk6cGFzcw=="])
            #expect(proxied.status == 200, "\(proxied)")
        }
    }

    @Test("every operation has an id, a role, its error answers and schemas that resolve")
    func operationsAreDescribed() throws {
        let document = try OpenAPIDocument.current()
        #expect(document.root["openapi"] == .string("3.1.0"))
        let ids = document.operations.map(\.id)
        #expect(Set(ids).count == ids.count, "operationIds repeat: \(ids)")
        for operation in document.operations {
            #expect(operation.path.hasPrefix("/api/v1/"), "\(operation.id) is outside /api/v1")
            #expect(operation.statuses.contains(400), "\(operation.id) does not document 400")
            if !operation.isPublic {
                #expect(["viewer", "operator", "admin", "device"].contains(operation.role ?? ""), "\(operation.id)")
                #expect(operation.statuses.isSuperset(of: [401, 403]), "\(operation.id) does not document 401 and 403")
            }
            if operation.path.contains("{") {
                #expect(operation.statuses.contains(404), "\(operation.id) does not document 404")
            }
            if operation.method == .get {
                #expect(operation.requestSchema == nil, "\(operation.id) is a GET with a body")
            }
        }
        // Every component schema is one the validator can apply: an empty object validates against each, or is
        // refused with a reason, never with "does not know".
        for (name, schema) in document.root["components"]?["schemas"]?.objectValue ?? [:] {
            let problems = document.validate(.object([:]), against: schema)
            #expect(
                !problems.contains { $0.contains("does not know") || $0.contains("unresolvable") },
                "\(name): \(problems)")
        }
    }

    @Test("the schema validator refuses what the document forbids")
    func validatorIsStrict() throws {
        let document = try OpenAPIDocument.current()
        let device = try #require(document.schema(named: "Device"))
        let valid: JSONValue = .object([
            "id": .string("dev_aaaaaaaaaaaaaaaa"), "name": .string("edge"), "description": .string(""),
            "provisioningStatus": .string("SUCCEEDED"), "connectionStatus": .string("ONLINE"),
            "createdAt": .string("2026-05-31T12:00:00.000Z"), "updatedAt": .string("2026-05-31T12:00:00Z"),
        ])
        #expect(document.validate(valid, against: device) == [])
        func changed(_ key: String, _ value: JSONValue?) -> JSONValue {
            var object = valid.objectValue!
            object[key] = value
            return .object(object)
        }
        let invalid: [(String, JSONValue)] = [
            ("a missing required property", changed("id", nil)),
            ("a property not in the schema", changed("colour", .string("red"))),
            ("a value outside the enum", changed("connectionStatus", .string("ASLEEP"))),
            ("a time that is not a date-time", changed("createdAt", .string("yesterday"))),
            ("a number for a string", changed("name", .number(5))),
            ("null for a string", changed("name", .null)),
            ("a boolean for a string", changed("description", .bool(true))),
        ]
        for (what, value) in invalid {
            #expect(!document.validate(value, against: device).isEmpty, "the validator accepts \(what)")
        }
        let version = try #require(document.schema(named: "ModelVersion"))
        let fractional: JSONValue = .object([
            "version": .number(1.5), "digest": .string("sha256:x"), "size": .number(3), "filename": .string("m.onnx"),
            "createdAt": .string("2026-05-31T12:00:00Z"),
        ])
        #expect(!document.validate(fractional, against: version).isEmpty, "the validator accepts 1.5 as an integer")
        let list = try #require(document.operation("listDevices")?.successSchema)
        #expect(!document.validate(.object(["items": .array([changed("id", nil)])]), against: list).isEmpty)
        #expect(document.validate(.object(["items": .array([valid])]), against: list) == [])
    }
}
