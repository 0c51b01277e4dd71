// VantageServer: the control plane behind `vantage server`. It keeps the fleet's state (devices, cameras, models,
// packages, application instances, deployments, events, health) in a database (SQLite by default, PostgreSQL
// for replicas), files in an artifact store, and serves the REST API (`/api/v1`, described at `/openapi.json`)
// and the web console (`/`). Layout: Database/ (engines and schema), Store/ (every read and change, shared by
// API and console), HTTP/ (the API's operation table, auth, errors, OpenAPI), Console/ (HTML pages).
import Foundation
public import Hummingbird
public import Logging
import NIOCore
import ServiceLifecycle
import VantageAPI

/// What `vantage server` runs with. Every field has a default; flags set them.
public struct ServerConfiguration: Sendable {
    /// Holds the SQLite database, the artifact folder and the credentials key.
    public var dataDirectory: URL = URL(filePath: "vantage-data")
    public var host = "127.0.0.1"
    public var port = 8090
    /// `postgres://…` to use PostgreSQL; nil for SQLite in the data folder.
    public var databaseURL: String?
    /// The credentials key file; defaults to `secret.key` in the data folder.
    public var secretKeyFile: URL?
    /// The largest model or package upload.
    public var maxUploadBytes: Int64 = 2 << 30
    /// How long a console login lasts.
    public var sessionLifetime: Duration = .seconds(12 * 3600)
    /// Marks session cookies `Secure` (browsers send them only over HTTPS, and to localhost).
    public var secureCookies = true

    public init() {}

    /// Where artifacts are kept; nil for `artifacts/` in the data folder.
    public var artifactsFolder: URL?

    var sqliteFile: URL { dataDirectory.appending(path: "vantage.sqlite") }
    var artifactsDirectory: URL { artifactsFolder ?? dataDirectory.appending(path: "artifacts") }
}

/// The opened database and store; `open` applies migrations.
public struct ControlPlane: Sendable {
    public let configuration: ServerConfiguration
    public let store: Store
    public let database: any Database

    /// Opens the data folder and database (creating both when missing) and applies pending migrations. With
    /// PostgreSQL the database's `run()` must be going (``withControlPlane(_:logger:_:)`` does that).
    public static func open(_ configuration: ServerConfiguration, database: any Database, logger: Logger) async throws
        -> ControlPlane
    {
        let artifacts = try LocalArtifactStore(root: configuration.artifactsDirectory)
        let secrets = try SecretBox.loadOrCreate(
            at: configuration.secretKeyFile ?? configuration.dataDirectory.appending(path: "secret.key"))
        if let postgres = database as? PostgresDatabase { try await postgres.checkReachable() }
        let applied = try await Schema.migrate(database)
        if !applied.isEmpty {
            logger.info(
                "database schema migrated", metadata: ["db.migrations": "\(applied)", "db.engine": "\(database.kind)"])
        }
        return ControlPlane(
            configuration: configuration, store: Store(database: database, artifacts: artifacts, secrets: secrets),
            database: database)
    }

    /// Makes the configured database (without opening PostgreSQL connections yet).
    public static func makeDatabase(_ configuration: ServerConfiguration, logger: Logger) throws -> any Database {
        do {
            try FileManager.default.createDirectory(at: configuration.dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw ServerError(
                "cannot create the data folder \(configuration.dataDirectory.path): \(error.localizedDescription)")
        }
        if let url = configuration.databaseURL {
            return try PostgresDatabase(url: url, logger: logger)
        }
        return try SQLiteDatabase(path: configuration.sqliteFile.path)
    }

    /// Runs `body` with an opened control plane, keeping the database's connection pool running meanwhile.
    public static func with<T: Sendable>(
        _ configuration: ServerConfiguration, logger: Logger, _ body: @Sendable (ControlPlane) async throws -> T
    ) async throws -> T {
        let database = try makeDatabase(configuration, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            defer { group.cancelAll() }
            let plane = try await open(configuration, database: database, logger: logger)
            return try await body(plane)
        }
    }

    /// The HTTP application: API, OpenAPI document, console.
    public func application(
        logger: Logger, onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "Vantage"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }

    /// The router, also used in-process by tests.
    public func router() -> Router<ServerContext> {
        let router = Router(context: ServerContext.self)
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: AuthenticationMiddleware(store: store))
        let operations = APIRoutes.all()
        APIOperation.register(operations, on: router, store: store, configuration: configuration)
        let document = Self.openAPIText(operations)
        router.get("/openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: document)))
        }
        router.get("/healthz") { _, _ in "ok\n" }
        Console(store: store, configuration: configuration).add(to: router)
        return router
    }

    /// The OpenAPI document as served and as kept in the repository (`docs/openapi.json`).
    public static func openAPIDocument() -> String { openAPIText(APIRoutes.all()) }

    static func openAPIText(_ operations: [APIOperation]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(APIOperation.openAPIDocument(operations)), as: UTF8.self) + "\n"
    }
}
