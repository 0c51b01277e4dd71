import Foundation
import Synchronization
import VantageCore

/// The embedded engine: one SQLite file (WAL mode) and one connection (VantageCore's ``SQLiteConnection``), used from
/// one serial queue so that SQLite's blocking calls never run on Swift's cooperative threads. A transaction holds the
/// connection across its awaits through ``AsyncGate``; other callers wait their turn.
public final class SQLiteDatabase: Database, @unchecked Sendable {
    // Unchecked: `connection` is touched only on `queue`, by one caller at a time (`gate`).
    private let connection: SQLiteConnection
    private let queue = BlockingQueue(label: "vantage.sqlite")
    private let gate = AsyncGate()
    private let path: String
    public var kind: DatabaseEngineKind { .sqlite }

    /// Opens (creating when missing) the database file at `path`. The file (and the `-wal` and `-shm` files SQLite
    /// makes beside it, which take its mode) is readable by this user only, whatever the umask: it holds password
    /// and token hashes and the sealed secrets.
    public init(path: String) throws {
        self.path = path
        Self.makePrivate(path)
        do {
            // Statements whose text is built at run time are not cached without bound.
            connection = try SQLiteConnection(
                path: path, setup: ["PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON"], statementCacheLimit: 256)
        } catch {
            throw DatabaseError(.unavailable, "cannot open the SQLite database \(path): \(error.reason)")
        }
        // Files an older release made with the umask's mode.
        for suffix in ["-wal", "-shm"] { Self.makePrivate(path + suffix, create: false) }
    }

    /// Creates `path` with mode 0600 when missing (`create`), or takes group and other access away when it has any.
    static func makePrivate(_ path: String, create: Bool = true) {
        let descriptor = open(path, (create ? O_CREAT : 0) | O_RDONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        var status = stat()
        if fstat(descriptor, &status) == 0, status.st_mode & 0o077 != 0 { _ = fchmod(descriptor, 0o600) }
    }

    public func run() async {}

    @discardableResult
    public func query(_ sql: SQL) async throws -> [SQLRow] {
        try await gate.withTurn { try await onQueue(sql) }
    }

    public func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> T) async throws
        -> T
    {
        try await gate.withTurn {
            _ = try await onQueue("BEGIN IMMEDIATE")
            do {
                let result = try await body(Transaction(database: self))
                _ = try await onQueue("COMMIT")
                return result
            } catch {
                _ = try? await onQueue("ROLLBACK")
                throw error
            }
        }
    }

    /// The connection inside a transaction: statements go straight to the queue (the gate is already held).
    private struct Transaction: SQLExecutor {
        let database: SQLiteDatabase
        func query(_ sql: SQL) async throws -> [SQLRow] { try await database.onQueue(sql) }
    }

    private func onQueue(_ sql: SQL) async throws -> [SQLRow] {
        try await queue.run { () throws -> [SQLRow] in
            do throws(SQLiteError) {
                return try self.run(sql)
            } catch {
                throw self.databaseError(error)
            }
        }
    }

    /// Prepares (or reuses) the statement, binds, steps to the end and reads every row.
    private func run(_ sql: SQL) throws(SQLiteError) -> [SQLRow] {
        // SQLite numbers parameters ?NNN; the shared text uses PostgreSQL's $NNN.
        let statement = try connection.statement(sql.text.replacingOccurrences(of: "$", with: "?"))
        defer { statement.reset() }
        for (offset, value) in sql.binds.enumerated() {
            let index = Int32(offset + 1)
            switch value {
            case .null: try statement.bindNull(at: index)
            case .integer(let v): try statement.bind(v, at: index)
            case .real(let v): try statement.bind(v, at: index)
            case .text(let v): try statement.bind(v, at: index)
            }
        }
        let count = statement.columnCount
        let columns = (0..<count).map { statement.columnName($0) }
        var rows: [SQLRow] = []
        while try statement.step() {
            var values: [SQLValue] = []
            values.reserveCapacity(Int(count))
            for column in 0..<count {
                switch statement.type(column) {
                case .integer: values.append(.integer(statement.int64(column)))
                case .real: values.append(.real(statement.double(column)))
                case .null: values.append(.null)
                case .text, .blob: values.append(.text(statement.text(column) ?? ""))
                }
            }
            rows.append(SQLRow(columns: columns, values: values))
        }
        return rows
    }

    /// The server's error for a SQLite failure: constraint violations by kind, a full disk and a locked file with
    /// what to do.
    private func databaseError(_ error: SQLiteError) -> DatabaseError {
        switch error.extendedStatus {
        case 2067, 1555:  // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
            return DatabaseError(.uniqueViolation, error.reason)
        case 787:  // SQLITE_CONSTRAINT_FOREIGNKEY
            return DatabaseError(.foreignKeyViolation, error.reason)
        default:
            break
        }
        switch error.code {
        case .diskFull:
            return DatabaseError(.diskFull, "the disk holding \(path) is full: free space, then retry")
        case .busy:
            return DatabaseError(
                .unavailable, "the SQLite database \(path) is locked by another process: \(error.reason)")
        default:
            return DatabaseError(.failed, "SQLite: \(error.reason)")
        }
    }
}

/// An async lock: one holder at a time, waiters resumed in arrival order. A transaction holds it across awaits,
/// which a `Mutex` cannot.
final class AsyncGate: Sendable {
    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func withTurn<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if state.held {
                    state.waiters.append(continuation)
                    return false
                }
                state.held = true
                return true
            }
            if resumeNow { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
