import Foundation
public import Logging
import PostgresNIO

/// The scale-out engine: a PostgreSQL database shared by any number of server replicas, through PostgresNIO's
/// connection pool. `run()` must be running (the server adds it to its service group) for queries to proceed.
public final class PostgresDatabase: Database {
    private let client: PostgresClient
    private let logger: Logger
    /// For the start-up check: one direct connection, whose failure says exactly what is wrong.
    private let connectionConfiguration: PostgresConnection.Configuration
    /// How long a query waits for a connection before the caller gets 503.
    static let queryTimeout: Duration = .seconds(15)
    /// A transaction's limit (its statements run on one leased connection).
    static let transactionTimeout: Duration = .seconds(60)
    /// `postgres://user@host:port/db`, without the password, for messages.
    public let displayURL: String
    public var kind: DatabaseEngineKind { .postgres }

    /// Connects to `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`, `?sslmode=require` for TLS).
    public init(url: String, logger: Logger) throws {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme),
            let host = components.host, !host.isEmpty, let user = components.user
        else {
            throw DatabaseError(
                .unavailable,
                "the database URL is not postgres://USER:PASSWORD@HOST:PORT/DATABASE (got \(Self.redacted(url)))")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        let sslMode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "disable"
        let tls: PostgresClient.Configuration.TLS
        let connectionTLS: PostgresConnection.Configuration.TLS
        switch sslMode {
        case "disable": (tls, connectionTLS) = (.disable, .disable)
        case "prefer":
            (tls, connectionTLS) = (.prefer(.clientDefault), .prefer(try Self.clientTLSContext()))
        case "require", "verify-full":
            (tls, connectionTLS) = (.require(.clientDefault), .require(try Self.clientTLSContext()))
        default:
            throw DatabaseError(.unavailable, "sslmode=\(sslMode) is not one of disable, prefer, require")
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: database.isEmpty ? user : database, tls: tls)
        configuration.options.maximumConnections = 16
        configuration.options.connectTimeout = .seconds(5)
        // The pool retries failed connections for ever and logs each try; the server reports the outage itself
        // (start-up check, 503 answers), so the pool's own log stays at errors.
        var poolLogger = logger
        poolLogger.logLevel = max(logger.logLevel, .error)
        self.client = PostgresClient(configuration: configuration, backgroundLogger: poolLogger)
        self.connectionConfiguration = PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: database.isEmpty ? user : database, tls: connectionTLS)
        self.logger = logger
        self.displayURL = Self.redacted(url)
    }

    static func clientTLSContext() throws -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: .makeClientConfiguration())
        } catch {
            throw DatabaseError(.unavailable, "cannot set up TLS for PostgreSQL: \(error)")
        }
    }

    /// The URL with its password replaced by `***`.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "(unparseable URL)" }
        if components.password != nil { components.password = "***" }
        return components.string ?? "(unparseable URL)"
    }

    public func run() async { await client.run() }

    /// Connects once, directly, so that a wrong host, port, password or database name is reported at start with
    /// PostgreSQL's own reason instead of the pool retrying in silence.
    public func checkReachable() async throws {
        do {
            let connection = try await PostgresConnection.connect(
                configuration: connectionConfiguration, id: 0, logger: logger)
            try await connection.close()
        } catch {
            let reason: String
            if let error = error as? PSQLError, let message = error.serverInfo?[.message] {
                reason = message
            } else if let error = error as? PSQLError, let underlying = error.underlying {
                reason = "\(underlying)"
            } else if let error = error as? PSQLError {
                reason = "\(error.code)"
            } else {
                reason = "\(error)"
            }
            throw DatabaseError(
                .unavailable,
                "cannot connect to PostgreSQL at \(displayURL): \(reason). Check that the server runs and that the URL's host, port, user, password and database are right"
            )
        }
    }

    /// Runs `body`, giving up after ``queryTimeout`` (the pool waits for ever for a connection when the database
    /// is down).
    private func withTimeout<T: Sendable>(
        _ limit: Duration = queryTimeout, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let result = first else {
                throw DatabaseError(
                    .unavailable, "PostgreSQL at \(displayURL) did not answer within \(limit)")
            }
            return result
        }
    }

    @discardableResult
    public func query(_ sql: SQL) async throws -> [SQLRow] {
        do {
            let client = self.client
            let logger = self.logger
            return try await withTimeout {
                try await Self.rows(try await client.query(Self.query(sql), logger: logger))
            }
        } catch {
            throw translate(error)
        }
    }

    public func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> T) async throws
        -> T
    {
        let logger = self.logger
        do {
            let client = self.client
            return try await withTimeout(Self.transactionTimeout) {
                try await client.withConnection { connection in
                    try await connection.query("BEGIN", logger: logger)
                    do {
                        let result = try await body(Transaction(connection: connection, database: self))
                        try await connection.query("COMMIT", logger: logger)
                        return result
                    } catch {
                        _ = try? await connection.query("ROLLBACK", logger: logger)
                        throw error
                    }
                }
            }
        } catch {
            throw translate(error)
        }
    }

    private struct Transaction: SQLExecutor {
        let connection: PostgresConnection
        let database: PostgresDatabase
        func query(_ sql: SQL) async throws -> [SQLRow] {
            do {
                return try await PostgresDatabase.rows(
                    try await connection.query(PostgresDatabase.query(sql), logger: database.logger))
            } catch {
                throw database.translate(error)
            }
        }
    }

    private static func query(_ sql: SQL) -> PostgresQuery {
        var binds = PostgresBindings(capacity: sql.binds.count)
        for value in sql.binds {
            switch value {
            case .null: binds.appendNull()
            case .integer(let v): binds.append(v)
            case .real(let v): binds.append(v)
            case .text(let v): binds.append(v)
            }
        }
        return PostgresQuery(unsafeSQL: sql.text, binds: binds)
    }

    private static func rows(_ sequence: PostgresRowSequence) async throws -> [SQLRow] {
        var rows: [SQLRow] = []
        var columns: [String]?
        for try await row in sequence {
            var values: [SQLValue] = []
            var names: [String] = []
            for cell in row {
                if columns == nil { names.append(cell.columnName) }
                guard cell.bytes != nil else {
                    values.append(.null)
                    continue
                }
                switch cell.dataType {
                case .int2, .int4, .int8: values.append(.integer(try cell.decode(Int64.self)))
                case .float4, .float8, .numeric: values.append(.real(try cell.decode(Double.self)))
                case .bool: values.append(.integer(try cell.decode(Bool.self) ? 1 : 0))
                default: values.append(.text(try cell.decode(String.self)))
                }
            }
            if columns == nil { columns = names }
            rows.append(SQLRow(columns: columns ?? names, values: values))
        }
        return rows
    }

    /// PostgreSQL's SQLSTATE codes as ``DatabaseError``s; the server's message never includes the password.
    fileprivate func translate(_ error: any Error) -> any Error {
        guard let error = error as? PSQLError else { return error }
        let state = error.serverInfo?[.sqlState]
        let message = error.serverInfo?[.message] ?? "\(error.code)"
        switch state {
        case "23505": return DatabaseError(.uniqueViolation, message)
        case "23503": return DatabaseError(.foreignKeyViolation, message)
        case "53100": return DatabaseError(.diskFull, "the PostgreSQL server's disk is full: \(message)")
        case nil:
            return DatabaseError(
                .unavailable, "cannot reach PostgreSQL at \(displayURL) (\(error.code)): is the server running?")
        default: return DatabaseError(.failed, "PostgreSQL: \(message)")
        }
    }
}
