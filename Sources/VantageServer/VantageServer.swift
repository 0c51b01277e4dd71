// VantageServer: the control plane behind `vantage server`. It keeps the fleet's state (devices, cameras, models,
// packages, application instances, deployments, events, health) in a database (SQLite by default, PostgreSQL
// for replicas), files in an artifact store, and serves the REST API (`/api/v1`, described at `/openapi.json`)
// and the web console (`/`). Layout: Database/ (engines and schema), Store/ (every read and change, shared by
// API and console), HTTP/ (the API's operation table, auth, errors, OpenAPI), Console/ (HTML pages).
import Foundation
public import Hummingbird
import HummingbirdTLS
public import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import SwiftASN1
import VantageAPI
public import VantageListeners
import X509

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
    /// The device endpoint: HTTPS with the server's own CA, where agents enroll and then call with their
    /// certificates (mutual TLS). nil port: not served.
    public var deviceHost = "127.0.0.1"
    public var devicePort: Int? = 8443
    /// The names and addresses agents reach the device endpoint by (the certificate's subject alternative
    /// names); localhost, the loopback addresses, this machine's host name and `deviceHost` are always in.
    public var deviceHostnames: [String] = []
    /// How long a provisioning token can be used to enroll.
    public var provisioningTokenLifetime: Duration = .seconds(3600)
    /// How long a device certificate is valid (agents renew it before it ends). Short ones are for tests.
    public var deviceCertificateLifetime: Duration = .seconds(365 * 86400)
    /// How long after its certificate ended a device may still renew it with that certificate (and its key), for a
    /// box that was offline at renewal time; 0 turns the grace off. Only renewal is allowed meanwhile, and each
    /// one is audited.
    public var expiredRenewalWindow: Duration = .seconds(30 * 86400)
    /// Where `/metrics` reads from (`vantage server` passes the registry it bootstrapped swift-metrics with).
    public var metrics = ServerMetrics()
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <this>` (others get 401); nil leaves
    /// it open to anyone who reaches a listener (`vantage server --metrics-token-file`).
    public var metricsToken: String?
    /// The idle timeout of both listeners' connections and the cap on them (together): a connection that sends no
    /// request head within the timeout is closed, and at the cap the longest-waiting one makes room.
    public var listenerLimits = ListenerLimits()

    public init() {}

    /// Where artifacts are kept; nil for `artifacts/` in the data folder.
    public var artifactsFolder: URL?

    /// Every name and address the device endpoint's certificate is valid for.
    var deviceCertificateNames: [String] {
        var names = ["localhost", "127.0.0.1", "::1"]
        names.append(ProcessInfo.processInfo.hostName)
        if !["0.0.0.0", "::", ""].contains(deviceHost) { names.append(deviceHost) }
        for name in deviceHostnames where !names.contains(name) { names.append(name) }
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }

    var sqliteFile: URL { dataDirectory.appending(path: "vantage.sqlite") }
    var artifactsDirectory: URL { artifactsFolder ?? dataDirectory.appending(path: "artifacts") }
}

/// The opened database and store; `open` applies migrations.
public struct ControlPlane: Sendable {
    public let configuration: ServerConfiguration
    public let store: Store
    public let database: any Database
    /// Counts the connections of both listeners (operator and device) against one cap.
    public let connections: ConnectionLimiter

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
        let authority = try await Store.loadAuthority(database: database, secrets: secrets)
        let store = Store(
            database: database, artifacts: artifacts, secrets: secrets, authority: authority,
            provisioningTokenLifetime: configuration.provisioningTokenLifetime, metrics: configuration.metrics,
            deviceCertificateLifetime: configuration.deviceCertificateLifetime,
            expiredRenewalWindow: configuration.expiredRenewalWindow)
        if applied.contains(Schema.artifactSignaturesVersion) {
            // Once, by the start that made the table: what was uploaded before signing existed.
            let signed = try await store.signExistingArtifacts()
            if signed > 0 { logger.info("signed the artifacts uploaded before", metadata: ["artifacts": "\(signed)"]) }
        }
        return ControlPlane(
            configuration: configuration,
            store: store,
            database: database,
            connections: ConnectionLimiter(configuration.listenerLimits, name: "vantage server", logger: logger))
    }

    /// Makes the configured database (without opening PostgreSQL connections yet).
    public static func makeDatabase(_ configuration: ServerConfiguration, logger: Logger) throws -> any Database {
        try makeDataFolder(configuration.dataDirectory, logger: logger)
        if let url = configuration.databaseURL {
            return try PostgresDatabase(url: url, logger: logger)
        }
        return try SQLiteDatabase(path: configuration.sqliteFile.path)
    }

    /// Creates the data folder readable by this user only (0700, whatever the umask): it holds the database, the
    /// key that encrypts credentials and the artifacts (camera snapshots among them). An existing folder that others
    /// can read is left as its owner set it, with a warning.
    static func makeDataFolder(_ folder: URL, logger: Logger) throws {
        let manager = FileManager.default
        guard !manager.fileExists(atPath: folder.path) else {
            if let mode = (try? manager.attributesOfItem(atPath: folder.path))?[.posixPermissions] as? Int,
                mode & 0o077 != 0
            {
                logger.warning(
                    "the data folder can be read by other users: it holds the database, the credentials key and camera snapshots; run chmod 700 on it",
                    metadata: ["data.folder": "\(folder.path)", "data.mode": "\(String(mode, radix: 8))"])
            }
            return
        }
        do {
            try manager.createDirectory(
                at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            // mkdir applies the umask; say the mode outright.
            try manager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: folder.path)
        } catch {
            throw ServerError("cannot create the data folder \(folder.path): \(error.localizedDescription)")
        }
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

    /// The HTTP application: API, OpenAPI document, console. Its connections count against ``connections``.
    public func application(
        logger: Logger, onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(),
            server: connections.http1(),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "Vantage"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }

    /// The device endpoint: the same routes over TLS with a certificate from the server's CA, asking clients for
    /// theirs (optional, so that a device without one yet can enroll); a presented certificate must chain to the
    /// CA or the handshake fails, and ``AuthenticationMiddleware`` maps it to its device.
    public func deviceApplication(
        logger: Logger, onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let port = configuration.devicePort ?? 0
        return Application(
            router: router(),
            server: try .tls(connections.http1(), configuration: try deviceTLSConfiguration()),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.deviceHost, port: port), serverName: "Vantage"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// TLS for the device endpoint, with a server certificate issued now (each replica makes its own). A client
    /// certificate must be one this CA issued; its expiry is left to ``AuthenticationMiddleware``, so that a device
    /// back after its certificate ended can renew it (``ServerConfiguration/expiredRenewalWindow``) or is told why
    /// it is refused.
    func deviceTLSConfiguration() throws -> TLSChannelConfiguration {
        let authority = store.authority
        let (certificate, key) = try authority.issueServerCertificate(hostnames: configuration.deviceCertificateNames)
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: try derBytes(certificate), format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.derRepresentation), format: .der)))
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .optionalVerification
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: try derBytes(authority.certificate), format: .der)]
        )
        return TLSChannelConfiguration(
            tlsConfiguration: tls,
            customVerificationCallback: { chain, promise in
                let der = chain.first.flatMap { try? $0.toDERBytes() }
                promise.succeed(der.map { authority.issued($0) } == true ? .certificateVerified : .failed)
            })
    }

    /// The router, also used in-process by tests.
    public func router() -> Router<ServerContext> {
        let router = Router(context: ServerContext.self)
        // Per-route request counts and durations through swift-metrics (a no-op until it is bootstrapped).
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: AuthenticationMiddleware(store: store))
        let operations = APIRoutes.all()
        router.add(middleware: MethodNotAllowedMiddleware(operations))
        APIOperation.register(operations, on: router, store: store, configuration: configuration)
        let document = Self.openAPIText(operations)
        router.get("/openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: document)))
        }
        router.get("/healthz") { _, _ in "ok\n" }
        let store = store
        let metricsToken = configuration.metricsToken
        router.get("/metrics") { request, _ in
            if let metricsToken, !ServerMetrics.authorizes(request.headers[.authorization], token: metricsToken) {
                var response = ErrorMiddleware.response(
                    401, "/metrics needs the metrics token: send Authorization: Bearer <the --metrics-token-file token>"
                )
                response.headers[.wwwAuthenticate] = "Bearer realm=\"vantage metrics\""
                return response
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: try await store.metrics.scrape(store))))
        }
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

/// A certificate's DER encoding.
func derBytes(_ certificate: Certificate) throws -> [UInt8] {
    var serializer = DER.Serializer()
    try serializer.serialize(certificate)
    return serializer.serializedBytes
}
