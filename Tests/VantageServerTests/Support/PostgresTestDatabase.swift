// PostgreSQL databases for the control plane tests. `make test` starts PostgreSQL 15 with scripts/postgres and passes
// its URL in VANTAGE_TEST_POSTGRES_URL (postgres://vantage:vantage@127.0.0.1:5432/vantage_test); each test takes a
// fresh, empty database of its own, created with psql through that URL, and drops it at the end.
//
//     @Test(.enabled(if: PostgresTestDatabase.baseURL != nil, Comment(rawValue: PostgresTestDatabase.skipReason)))
//     func storesDevices() async throws {
//         try await PostgresTestDatabase.withFresh { url in
//             let store = try await Store(postgresURL: url)
//             ...
//         }
//     }
//
// `fresh()` / `drop(_:)` are the same in two steps. The databases are named vantage_t_<12 hex digits> and owned by
// the URL's role (which has CREATEDB).

import Foundation

enum PostgresTestDatabase {
    /// The server the tests use (VANTAGE_TEST_POSTGRES_URL), or nil when the tests that need it are to be skipped.
    static var baseURL: String? {
        guard let url = ProcessInfo.processInfo.environment["VANTAGE_TEST_POSTGRES_URL"], !url.isEmpty else {
            return nil
        }
        return url
    }

    /// Why PostgreSQL tests are skipped when `baseURL` is nil.
    static let skipReason =
        "set VANTAGE_TEST_POSTGRES_URL or run make test, which starts PostgreSQL with scripts/postgres"

    /// Creates a new, empty database and returns its URL (the base URL with the database name replaced).
    static func fresh() async throws -> String {
        guard let base = baseURL else { throw PostgresTestDatabaseError(message: skipReason) }
        guard var components = URLComponents(string: base), components.host != nil else {
            throw PostgresTestDatabaseError(message: "VANTAGE_TEST_POSTGRES_URL is not a URL: \(base)")
        }
        let name = "vantage_t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        try await psql(base, "CREATE DATABASE \(name)")
        components.path = "/" + name
        return components.string!
    }

    /// Drops a database made by `fresh()`, disconnecting whoever is still connected. Failures are printed, not thrown,
    /// so that cleanup never hides the test's own result.
    static func drop(_ url: String) async {
        guard let base = baseURL, let name = URLComponents(string: url)?.path.dropFirst(), name.hasPrefix("vantage_t_")
        else {
            print("PostgresTestDatabase.drop: not a database made by fresh(): \(url)")
            return
        }
        do {
            try await psql(base, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        } catch {
            print("PostgresTestDatabase.drop: could not drop \(name): \(error)")
        }
    }

    /// Runs `body` with the URL of a fresh database, and drops the database afterwards (also when `body` throws).
    static func withFresh<T>(_ body: (String) async throws -> T) async throws -> T {
        let url = try await fresh()
        do {
            let result = try await body(url)
            await drop(url)
            return result
        } catch {
            await drop(url)
            throw error
        }
    }

    /// Runs one SQL command with psql against `url`; returns psql's output (unaligned, tuples only).
    @discardableResult
    static func psql(_ url: String, _ sql: String) async throws -> String {
        let (status, stdout, stderr) = try await TestProcess.runSeparately(
            ["psql", url, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
            environment: ["PGCONNECT_TIMEOUT": "5"])
        guard status == 0 else {
            let hint =
                status == 127
                ? " (psql is not installed: run scripts/setup)" : " (is PostgreSQL running? scripts/postgres start)"
            throw PostgresTestDatabaseError(
                message: "psql \(sql.debugDescription) failed with status \(status)\(hint): "
                    + stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

struct PostgresTestDatabaseError: Error, CustomStringConvertible {
    let message: String
    var description: String { "PostgresTestDatabase: \(message)" }
}
