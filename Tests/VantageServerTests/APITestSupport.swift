// The control plane's API tests run the real router in process (HummingbirdTesting's `.router` client) on an
// opened control plane, once per database engine: SQLite in a fresh temporary data folder, and a fresh PostgreSQL
// database (the PostgreSQL half is skipped, saying why, when VANTAGE_TEST_POSTGRES_URL is unset).
//
//     @Test(arguments: Engine.allCases)
//     func createsDevices(engine: Engine) async throws {
//         try await APIHarness.run(on: engine) { api in
//             let created = try await api.call(.post, "/api/v1/devices", as: api.ops, json: NewDevice(name: "edge"))
//             #expect(created.status == 201, "\(created)")
//         }
//     }

import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import ServiceLifecycle
import Testing
import VantageAPI
import VantageAgent
import VantageCore
import VantageServer
import ZIPFoundation

/// The device links a test opened, closed when it ends.
actor DeviceLinks {
    private var links: [DeviceLink] = []
    func add(_ link: DeviceLink) { links.append(link) }
    func shutdown() async {
        for link in links { await link.shutdown() }
        links = []
    }
}

/// The database engine a test runs on.
enum Engine: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }
}

/// Paths in the source tree.
enum SourceTree {
    /// The repository root (this file is Tests/VantageServerTests/APITestSupport.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// The people counter as written (its program built beside vantage, its model in `.deps/`): the server refuses
    /// to take it, a device could not run it.
    static var peopleCounterSource: URL { root.appending(path: "examples/people-counter") }
    /// The people counter in the shape `vantage app build` gives it (program at `src/bin/people-counter`, model file
    /// inside its package), with placeholders for the program and the model: the API tests push, list and deploy it
    /// but never run it. `builtPeopleCounter` is the real build, for the tests that run it.
    static var peopleCounter: URL { selfContainedPlaceholder }
    private static let selfContainedPlaceholder: URL = {
        do {
            return try makeSelfContainedPlaceholder()
        } catch {
            fatalError("cannot make the self-contained people counter fixture: \(error)")
        }
    }()

    private static func makeSelfContainedPlaceholder() throws -> URL {
        let fm = FileManager.default
        let project = fm.temporaryDirectory.appending(
            path: "vantage-people-counter-\(UUID().uuidString)/people-counter")
        try fm.createDirectory(at: project.deletingLastPathComponent(), withIntermediateDirectories: true)
        try fm.copyItem(at: peopleCounterSource, to: project)
        let code = project.appending(path: "packages/123456789012-people_counter_code-1.0")
        try fm.removeItem(at: code.appending(path: "src/main.swift"))
        try fm.createDirectory(at: code.appending(path: "src/bin"), withIntermediateDirectories: true)
        let program = code.appending(path: "src/bin/people-counter")
        try Data("#!/bin/sh\necho 'a placeholder: the API tests never run the code node' >&2\nexit 1\n".utf8)
            .write(to: program)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: program.path)
        try replace(
            "\"path\": \"people-counter\"", with: "\"path\": \"bin/people-counter\"",
            in: code.appending(path: "descriptor.json"))
        let model = project.appending(path: "packages/123456789012-people_detector-1.0")
        try Data("a placeholder model".utf8).write(to: model.appending(path: "frozen_inference_graph.pb"))
        try replace(
            "../../.deps/models/ssdlite/frozen_inference_graph.pb",
            with: "packages/123456789012-people_detector-1.0/frozen_inference_graph.pb",
            in: model.appending(path: "descriptor.json"))
        return project
    }

    private static func replace(_ old: String, with new: String, in file: URL) throws {
        let text = try String(contentsOf: file, encoding: .utf8)
        guard text.contains(old) else { throw APITestError("\(file.path) no longer holds \(old)") }
        try text.replacingOccurrences(of: old, with: new).write(to: file, atomically: true, encoding: .utf8)
    }

    /// The people counter built by `vantage app build` (the real program, compiled once per test run; the build
    /// cache under .build/app-build-cache makes later runs quick), for the tests that run it on an agent.
    static var builtPeopleCounter: URL {
        get throws { try realBuild.get() }
    }
    private static let realBuild: Result<URL, any Error> = Result {
        let output = FileManager.default.temporaryDirectory.appending(path: "vantage-built-\(UUID().uuidString)")
        let process = Process()
        process.executableURL = try ServerProcess.binary()
        process.arguments = [
            "app", "build", peopleCounterSource.path, "--output", output.path,
            "--cache", root.appending(path: ".build/app-build-cache").path,
        ]
        let log = Pipe()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let text = String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw APITestError("vantage app build examples/people-counter failed:\n\(text)")
        }
        return output
    }
    static var openAPIFile: URL { root.appending(path: "docs/openapi.json") }
}

/// How a request authenticates, and the actor the audit log names for it.
struct Credential: Sendable {
    var headers: HTTPFields
    /// `token:NAME`, `user:NAME` or `device:ID`; nil for an anonymous request.
    var actor: String?
    /// A device's connection: requests go over real mutual TLS to the harness's device endpoint, with the device's
    /// certificate, instead of through the in-process router.
    var link: DeviceLink? = nil

    /// A device, by its certificate.
    static func device(_ link: DeviceLink) -> Credential {
        Credential(headers: [:], actor: "device:\(link.identity.deviceID)", link: link)
    }

    static let none = Credential(headers: [:], actor: nil)

    static func bearer(_ secret: String, actor: String?) -> Credential {
        Credential(headers: [.authorization: "Bearer \(secret)"], actor: actor)
    }

    /// A console session: the cookie, and the CSRF header when given.
    static func session(_ secret: String, csrf: String?, actor: String) -> Credential {
        var headers: HTTPFields = [.cookie: "vantage_session=\(secret)"]
        if let csrf { headers[.init("X-CSRF-Token")!] = csrf }
        return Credential(headers: headers, actor: actor)
    }
}

/// An answer of the API, with what was asked (for messages).
struct APIResponse: Sendable, CustomStringConvertible {
    let method: HTTPRequest.Method
    /// The path without the query.
    let path: String
    let query: String
    /// Who asked (the audit log's actor).
    let actor: String?
    let status: Int
    let headers: HTTPFields
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as JSON, or nil when it is not JSON.
    var json: JSONValue? { try? APIJSON.decoder().decode(JSONValue.self, from: Data(body)) }

    /// The error answer's message, or "" when the body is not an error answer.
    var message: String {
        (try? APIJSON.decoder().decode(ErrorBody.self, from: Data(body)))?.error.message ?? ""
    }

    func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        do {
            return try APIJSON.decoder().decode(T.self, from: Data(body))
        } catch {
            throw APITestError("\(method) \(path) answered what is not a \(T.self): \(error)\n\(self)")
        }
    }

    var description: String {
        "\(method) \(path)\(query.isEmpty ? "" : "?" + query) as \(actor ?? "anonymous") → \(status) \(text.prefix(600))"
    }
}

struct APITestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// An opened control plane with an in-process client and a token for each role.
struct APIHarness: Sendable {
    let engine: Engine
    let plane: ControlPlane
    let client: any TestClientProtocol
    /// The test's temporary folder; the data folder is `folder/data`.
    let folder: URL
    let document: OpenAPIDocument
    /// The first-start admin token (`token:admin`), an operator token (`token:ops`) and a viewer token
    /// (`token:watcher`).
    let admin: Credential
    let ops: Credential
    let viewer: Credential
    /// The device endpoint (TLS) the harness serves on a free port, and the device links made for the test.
    let devicePort: Int
    let links: DeviceLinks

    var store: Store { plane.store }
    var database: any Database { plane.database }
    var artifactsFolder: URL { plane.configuration.dataDirectory.appending(path: "artifacts") }

    static let logger: Logger = {
        var logger = Logger(label: "vantage.test")
        logger.logLevel = .error
        return logger
    }()

    /// Runs `body` on a fresh control plane on `engine`; everything it made is deleted afterwards.
    static func run(
        on engine: Engine, configure: @Sendable (inout ServerConfiguration) -> Void = { _ in },
        _ body: @Sendable (APIHarness) async throws -> Void
    ) async throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-api-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        var configuration = ServerConfiguration()
        configuration.dataDirectory = folder.appending(path: "data")
        configure(&configuration)
        switch engine {
        case .sqlite:
            try await serve(engine, configuration, folder: folder, body)
        case .postgres:
            guard PostgresTestDatabase.baseURL != nil else {
                print("skipping the PostgreSQL half: \(PostgresTestDatabase.skipReason)")
                return
            }
            let base = configuration
            try await PostgresTestDatabase.withFresh { url in
                var configuration = base
                configuration.databaseURL = url
                try await serve(engine, configuration, folder: folder, body)
            }
        }
    }

    private static func serve(
        _ engine: Engine, _ configuration: ServerConfiguration, folder: URL,
        _ body: @Sendable (APIHarness) async throws -> Void
    ) async throws {
        let document = try OpenAPIDocument.current()
        var configuration = configuration
        configuration.deviceHost = "127.0.0.1"
        configuration.devicePort = 0
        try await ControlPlane.with(configuration, logger: logger) { plane in
            guard let adminSecret = try await plane.store.bootstrapAdminToken() else {
                throw APITestError("a fresh control plane made no first-start admin token")
            }
            let ops = try await plane.store.createToken(NewToken(name: "ops", role: .operator))
            let viewer = try await plane.store.createToken(NewToken(name: "watcher", role: .viewer))
            let app = Application(router: plane.router(), logger: logger)
            let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
            let deviceApp = try plane.deviceApplication(logger: logger) { port in portContinuation.yield(port) }
            let group = ServiceGroup(services: [deviceApp], logger: logger)
            let links = DeviceLinks()
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                var iterator = ports.makeAsyncIterator()
                guard let devicePort = await iterator.next() else {
                    throw APITestError("the device endpoint did not start")
                }
                do {
                    try await app.test(.router) { client in
                        try await body(
                            APIHarness(
                                engine: engine, plane: plane, client: client, folder: folder, document: document,
                                admin: .bearer(adminSecret, actor: "token:admin"),
                                ops: .bearer(ops.secret, actor: "token:ops"),
                                viewer: .bearer(viewer.secret, actor: "token:watcher"), devicePort: devicePort,
                                links: links))
                    }
                } catch {
                    await links.shutdown()
                    await group.triggerGracefulShutdown()
                    throw error
                }
                await links.shutdown()
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }

    /// Sends a request. `json` is encoded as the body (and, unless `documented` is false for a request meant to be
    /// refused, checked against the documented request schema, so a test cannot pass by sending what the document
    /// does not allow); `body` is sent as is.
    func call(
        _ method: HTTPRequest.Method, _ target: String, as credential: Credential = .none,
        json: (any Encodable & Sendable)? = nil, body: [UInt8]? = nil, headers extra: HTTPFields = [:],
        documented: Bool = true, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> APIResponse {
        var headers = credential.headers
        var bytes = body
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts[0])
        if let json {
            let data = try APIJSON.encoder().encode(json)
            bytes = [UInt8](data)
            headers[.contentType] = "application/json"
            if documented, let operation = document.operation(method: method, path: path),
                let schema = operation.requestSchema
            {
                let value = try APIJSON.decoder().decode(JSONValue.self, from: data)
                let problems = document.validate(value, against: schema)
                #expect(
                    problems.isEmpty,
                    "the request body of \(operation.id) is not what the document allows: \(problems)",
                    sourceLocation: sourceLocation)
            }
        } else if bytes != nil, headers[.contentType] == nil {
            headers[.contentType] = "application/octet-stream"
        }
        for field in extra { headers[field.name] = field.value }
        if let link = credential.link {
            let sent = headers.map { ($0.name.rawName, $0.value) }
            let answer = try await link.send(method.rawValue, target, headers: sent, body: bytes)
            var received = HTTPFields()
            for (name, value) in answer.headers { received[.init(name)!] = value }
            return APIResponse(
                method: method, path: path, query: parts.count > 1 ? String(parts[1]) : "", actor: credential.actor,
                status: answer.status, headers: received, body: answer.body)
        }
        let response = try await client.executeRequest(
            uri: target, method: method, headers: headers, body: bytes.map { ByteBuffer(bytes: $0) })
        return APIResponse(
            method: method, path: path, query: parts.count > 1 ? String(parts[1]) : "", actor: credential.actor,
            status: Int(response.status.code), headers: response.headers,
            body: Array(response.body.readableBytesView))
    }

    /// A device made through the store and enrolled (a key and CSR made as the agent makes them), with its
    /// certificate as the credential.
    func makeDevice(_ name: String) async throws -> (device: Device, token: Credential) {
        let created = try await store.createDevice(NewDevice(name: name))
        let link = try await enroll(token: created.provisioningToken)
        return (try await store.device(created.device.id), .device(link))
    }

    /// Enrolls with `token` through the store and opens a link to the device endpoint with the new certificate.
    func enroll(token: String) async throws -> DeviceLink {
        let key = DeviceIdentity.makeKeyPEM()
        let enrollment = try await store.enroll(
            EnrollmentRequest(token: token, csr: try DeviceIdentity.csrPEM(keyPEM: key)))
        return try await link(enrollment, key: key)
    }

    /// A link to the device endpoint with an enrollment's certificate and its key.
    func link(_ enrollment: Enrollment, key: String) async throws -> DeviceLink {
        let identity = DeviceIdentity(
            deviceID: enrollment.deviceId, server: URL(string: "https://127.0.0.1:\(devicePort)")!, keyPEM: key,
            certificatePEM: enrollment.certificate, caPEM: enrollment.caCertificate)
        let link = try DeviceLink(identity: identity)
        await links.add(link)
        return link
    }

    /// Every row of the fleet's tables (and the artifact store's files): equal snapshots mean nothing changed.
    func snapshot() async throws -> DatabaseSnapshot {
        var tables: [String: [String]] = [:]
        for table in DatabaseSnapshot.tables {
            let rows = try await database.query("SELECT * FROM \(raw: table)")
            tables[table] = rows.map { $0.values.map { "\($0)" }.joined(separator: "|") }.sorted()
        }
        // Not last_used_at: using a token updates it.
        tables["api_tokens"] = try await database.query("SELECT id, name, role FROM api_tokens").map {
            $0.values.map { "\($0)" }.joined(separator: "|")
        }.sorted()
        return DatabaseSnapshot(tables: tables, artifacts: Self.files(under: artifactsFolder))
    }

    /// Every file under `folder`, as paths relative to it.
    static func files(under folder: URL) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: folder.path) else { return [] }
        var files: [String] = []
        while let path = walker.nextObject() as? String {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder.appending(path: path).path, isDirectory: &isFolder),
                !isFolder.boolValue
            {
                files.append(path)
            }
        }
        return files.sorted()
    }
}

/// The content of the fleet's tables and the artifact store at one moment.
struct DatabaseSnapshot: Equatable, CustomStringConvertible {
    static let tables = [
        "devices", "device_metrics", "device_certificates", "cameras", "models", "model_versions", "packages",
        "package_versions",
        "instances", "deployments", "events", "audit_log", "users",
    ]
    let tables: [String: [String]]
    let artifacts: [String]

    var description: String {
        tables.keys.sorted().map { "\($0): \(tables[$0]!.count) rows" }.joined(separator: ", ")
            + ", artifacts: \(artifacts)"
    }

    /// What differs from `other`, for messages.
    func difference(from other: DatabaseSnapshot) -> String {
        var lines: [String] = []
        for table in tables.keys.sorted() where tables[table] != other.tables[table] {
            let added = Set(tables[table] ?? []).subtracting(other.tables[table] ?? [])
            let removed = Set(other.tables[table] ?? []).subtracting(tables[table] ?? [])
            lines.append("\(table): +\(added.sorted()) -\(removed.sorted())")
        }
        if artifacts != other.artifacts { lines.append("artifacts: \(other.artifacts) → \(artifacts)") }
        return lines.joined(separator: "; ")
    }
}

/// ZIP archives for package uploads, made the way a user's tool would, or by hand to attack the server.
enum TestArchive {
    enum Entry {
        case file(String, [UInt8])
        /// A file with its executable bits (mode 0755), as `zip -r` keeps a program's.
        case program(String, [UInt8])
        case directory(String)
        case symlink(String, target: String)
    }

    /// A ZIP of `folder`, with the folder as its one top-level entry (like `zip -r app.zip app`) or its content at
    /// the root.
    static func zip(folder: URL, keepParent: Bool = true) throws -> [UInt8] {
        let file = FileManager.default.temporaryDirectory.appending(path: "vantage-test-\(UUID().uuidString).zip")
        defer { try? FileManager.default.removeItem(at: file) }
        try FileManager.default.zipItem(at: folder, to: file, shouldKeepParent: keepParent)
        return [UInt8](try Data(contentsOf: file))
    }

    /// A ZIP holding exactly `entries`, paths as given (`../x` included).
    static func make(_ entries: [Entry]) throws -> [UInt8] {
        let file = FileManager.default.temporaryDirectory.appending(path: "vantage-test-\(UUID().uuidString).zip")
        defer { try? FileManager.default.removeItem(at: file) }
        let archive = try Archive(url: file, accessMode: .create)
        for entry in entries {
            switch entry {
            case .file(let path, let bytes):
                try archive.addEntry(with: path, type: .file, uncompressedSize: Int64(bytes.count)) {
                    (position: Int64, size: Int) -> Data in
                    Data(bytes[Int(position)..<Int(position) + size])
                }
            case .program(let path, let bytes):
                try archive.addEntry(
                    with: path, type: .file, uncompressedSize: Int64(bytes.count), permissions: 0o755
                ) { (position: Int64, size: Int) -> Data in
                    Data(bytes[Int(position)..<Int(position) + size])
                }
            case .directory(let path):
                try archive.addEntry(with: path, type: .directory, uncompressedSize: 0) {
                    (_: Int64, _: Int) -> Data in Data()
                }
            case .symlink(let path, let target):
                let bytes = Array(target.utf8)
                try archive.addEntry(with: path, type: .symlink, uncompressedSize: Int64(bytes.count)) {
                    (position: Int64, size: Int) -> Data in
                    Data(bytes[Int(position)..<Int(position) + size])
                }
            }
        }
        return [UInt8](try Data(contentsOf: file))
    }

    /// The entries of the people-counter example under `prefix` (e.g. `people-counter/`), file by file.
    static func peopleCounterEntries(prefix: String = "people-counter/") throws -> [Entry] {
        let root = SourceTree.peopleCounter
        return try APIHarness.files(under: root).map { path in
            let file = root.appending(path: path)
            let bytes = [UInt8](try Data(contentsOf: file))
            return FileManager.default.isExecutableFile(atPath: file.path)
                ? .program(prefix + path, bytes) : .file(prefix + path, bytes)
        }
    }

    /// A writable copy of the people-counter example.
    static func copyOfPeopleCounter() throws -> URL {
        let copy = FileManager.default.temporaryDirectory.appending(path: "people-counter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        let destination = copy.appending(path: "people-counter")
        try FileManager.default.copyItem(at: SourceTree.peopleCounter, to: destination)
        return destination
    }
}

/// A real JPEG (16×16 red, made with `ffmpeg -f lavfi -i color=c=red:s=16x16 -frames:v 1 x.jpg`).
enum TestImages {
    static let jpeg: [UInt8] = [UInt8](
        Data(
            base64Encoded:
                "/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAgUFBcUFxsbGxsbGyAeICEhISAgICAhISEkJCQqKiokJCQhISQkKCgqKi4vLisrKisvLzIyMjw8OTlGRkhWVmf/xABMAAEBAAAAAAAAAAAAAAAAAAAABgEBAQAAAAAAAAAAAAAAAAAABgcQAQAAAAAAAAAAAAAAAAAAAAARAQAAAAAAAAAAAAAAAAAAAAD/wAARCAAQABADASIAAhEAAxEA/9oADAMBAAIRAxEAPwCLAFF/f//Z"
        )!)
}

extension JSONValue {
    subscript(_ key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    var numberValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }
}
