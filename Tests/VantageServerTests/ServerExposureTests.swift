import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing
import VantageAPI
import VantageServer

/// What the control plane exposes beyond its API (issue 14, part 6): `/metrics` can require a token and stays cheap
/// to scrape, and the data folder's files are private to the server's user whatever the umask.
@Suite("Server exposure", .serialized)
struct ServerExposureTests {
    // Guards: with --metrics-token-file, an anonymous or wrongly authorized scrape gets 401 (before, /metrics was
    // open to anyone who reached a listener), and the right token gets the metrics.
    @Test("a metrics token is required once configured")
    func metricsToken() async throws {
        let tokenFile = FileManager.default.temporaryDirectory.appending(path: "vantage-metrics-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tokenFile) }
        let secret = "metrics-" + UUID().uuidString
        try Data((secret + "\n").utf8).write(to: tokenFile)
        let server = try await RunningServer.start(["--metrics-token-file", tokenFile.path])
        let anonymous = try await server.send("GET", "metrics", as: .anonymous)
        #expect(anonymous.status == 401, "\(anonymous)")
        #expect(anonymous.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        #expect(anonymous.message.contains("metrics token"), "\(anonymous)")
        let wrong = try await server.send("GET", "metrics", as: .bearer("metrics-wrong-token-000"))
        #expect(wrong.status == 401, "\(wrong)")
        // An API token is not the metrics token either.
        let apiToken = try await server.send("GET", "metrics")
        #expect(apiToken.status == 401, "\(apiToken)")
        let right = try await server.send("GET", "metrics", as: .bearer(secret))
        #expect(right.status == 200, "\(right)")
        #expect(right.text.contains("vantage_devices{connection=\"online\"} 0"), "\(right.text.prefix(2000))")
        // The rest of the server is unchanged: the API still takes its own tokens.
        #expect(try await server.send("GET", "api/v1/devices").status == 200)
    }

    // Guards: a token shorter than 16 characters is refused at start, saying why.
    @Test("a short metrics token is refused at start")
    func shortMetricsToken() async throws {
        let data = FileManager.default.temporaryDirectory.appending(path: "vantage-metrics-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let process = try ServerProcess(
            try ServerProcess.binary(),
            ["server", "--listen", "127.0.0.1:0", "--device-listen", "off", "--data", data.path],
            name: "short-token", environment: ["VANTAGE_METRICS_TOKEN": "short"])
        let status = try await process.waitForExit(timeout: .seconds(30))
        #expect(status != 0)
        #expect(process.output.contains("$VANTAGE_METRICS_TOKEN must hold one token of 16"), "\(process.output)")
    }

    // Guards: a scrape reads no rows: the fleet gauges come from counting queries, at most one refresh every few
    // seconds however often Prometheus scrapes (before, each scrape listed every device and instance).
    @Test("scrapes count instead of listing, at most every few seconds")
    func scrapesAreCheap() async throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-scrape-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        var configuration = ServerConfiguration()
        configuration.dataDirectory = folder.appending(path: "data")
        try FileManager.default.createDirectory(at: configuration.dataDirectory, withIntermediateDirectories: true)
        let database = CountingDatabase(
            try SQLiteDatabase(path: configuration.dataDirectory.appending(path: "vantage.sqlite").path))
        let plane = try await ControlPlane.open(configuration, database: database, logger: APIHarness.logger)
        for index in 0..<200 { _ = try await plane.store.createDevice(NewDevice(name: "edge-\(index)")) }
        database.reset()
        try await Application(router: plane.router()).test(.router) { client in
            for _ in 0..<20 {
                let response = try await client.execute(uri: "/metrics", method: .get)
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("vantage_devices{connection=\"not_available\"} 200"))
            }
        }
        let statements = database.statements
        #expect(statements.count <= 2, "20 scrapes ran \(statements.count) statements: \(statements)")
        for statement in statements {
            #expect(statement.contains("COUNT("), "a scrape ran a statement that reads rows: \(statement)")
        }
    }

    // Guards: started under umask 022, the server makes its data folder 0700 and its database and key files 0600
    // (before, they took the umask: 0755 and 0644, readable by every local user).
    @Test("the data folder and its files are private whatever the umask")
    func dataFolderModes() async throws {
        let server = try await RunningServer.start(shell: "umask 022; exec \"$@\"")
        // Something written, so the SQLite WAL files exist.
        #expect(try await server.send("POST", "api/v1/devices", json: #"{"name": "edge"}"#).status == 201)
        func mode(_ relative: String) throws -> Int {
            let path = relative.isEmpty ? server.data.path : server.data.appending(path: relative).path
            return try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) & 0o777
        }
        #expect(try mode("") == 0o700, "the data folder")
        #expect(try mode("artifacts") == 0o700, "the artifact folder")
        for file in ["vantage.sqlite", "vantage.sqlite-wal", "vantage.sqlite-shm", "secret.key"] {
            let found = try mode(file)
            #expect(found == 0o600, "\(file) is \(String(found, radix: 8))")
        }
    }
}

/// A database that records the statements it runs, around a real one.
final class CountingDatabase: Database {
    let inner: any Database
    private let recorded = Mutex<[String]>([])

    init(_ inner: any Database) { self.inner = inner }

    var kind: DatabaseEngineKind { inner.kind }
    var statements: [String] { recorded.withLock { $0 } }
    func reset() { recorded.withLock { $0 = [] } }

    @discardableResult
    func query(_ sql: SQL) async throws -> [SQLRow] {
        recorded.withLock { $0.append(sql.text) }
        return try await inner.query(sql)
    }

    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        try await inner.transaction { executor in
            try await body(CountingExecutor(inner: executor, database: self))
        }
    }

    func run() async { await inner.run() }

    fileprivate func record(_ text: String) { recorded.withLock { $0.append(text) } }
}

private struct CountingExecutor: SQLExecutor {
    let inner: any SQLExecutor
    let database: CountingDatabase

    @discardableResult
    func query(_ sql: SQL) async throws -> [SQLRow] {
        database.record(sql.text)
        return try await inner.query(sql)
    }
}
