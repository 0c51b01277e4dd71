internal import CSQLite
import Dispatch
import Foundation
import Synchronization

/// The embedded engine: one SQLite file (WAL mode) and one connection, used from one serial queue so that
/// SQLite's blocking calls never run on Swift's cooperative threads. A transaction holds the connection
/// across its awaits through ``AsyncGate``; other callers wait their turn.
public final class SQLiteDatabase: Database, @unchecked Sendable {
    // `handle` and `statements` are touched only on `queue`, by one caller at a time (`gate`).
    private let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]
    private let queue = DispatchQueue(label: "vantage.sqlite")
    private let gate = AsyncGate()
    private let path: String
    public var kind: DatabaseEngineKind { .sqlite }

    /// Opens (creating when missing) the database file at `path`. The file (and the `-wal` and `-shm` files SQLite
    /// makes beside it, which take its mode) is readable by this user only, whatever the umask: it holds password
    /// and token hashes and the sealed secrets.
    public init(path: String) throws {
        self.path = path
        Self.makePrivate(path)
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &db, flags, nil)
        guard status == SQLITE_OK, let db else {
            let reason = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw DatabaseError(.unavailable, "cannot open the SQLite database \(path): \(reason)")
        }
        handle = db
        sqlite3_busy_timeout(db, 5000)
        for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON"] {
            _ = try run(SQL(pragma))
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

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
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
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.run(sql) })
            }
        }
    }

    /// Prepares (or reuses) the statement, binds, steps to the end and reads every row.
    private func run(_ sql: SQL) throws -> [SQLRow] {
        // SQLite numbers parameters ?NNN; the shared text uses PostgreSQL's $NNN.
        let text = sql.text.replacingOccurrences(of: "$", with: "?")
        let statement = try prepared(text)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (offset, value) in sql.binds.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .null: status = sqlite3_bind_null(statement, index)
            case .integer(let v): status = sqlite3_bind_int64(statement, index, v)
            case .real(let v): status = sqlite3_bind_double(statement, index, v)
            case .text(let v): status = sqlite3_bind_text(statement, index, v, -1, csqlite_transient())
            }
            guard status == SQLITE_OK else { throw error(status) }
        }
        let count = sqlite3_column_count(statement)
        let columns = (0..<count).map { String(cString: sqlite3_column_name(statement, $0)) }
        var rows: [SQLRow] = []
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { break }
            guard status == SQLITE_ROW else { throw error(status) }
            var values: [SQLValue] = []
            values.reserveCapacity(Int(count))
            for column in 0..<count {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(statement, column)))
                case SQLITE_FLOAT: values.append(.real(sqlite3_column_double(statement, column)))
                case SQLITE_NULL: values.append(.null)
                default:
                    let bytes = sqlite3_column_text(statement, column)
                    values.append(.text(bytes.map { String(cString: $0) } ?? ""))
                }
            }
            rows.append(SQLRow(columns: columns, values: values))
        }
        return rows
    }

    private func prepared(_ text: String) throws -> OpaquePointer {
        if let statement = statements[text] { return statement }
        var statement: OpaquePointer?
        let status = sqlite3_prepare_v2(handle, text, -1, &statement, nil)
        guard status == SQLITE_OK, let statement else { throw error(status) }
        if statements.count >= 256 {
            for old in statements.values { sqlite3_finalize(old) }
            statements.removeAll()
        }
        statements[text] = statement
        return statement
    }

    private func error(_ status: Int32) -> DatabaseError {
        let message = String(cString: sqlite3_errmsg(handle))
        let extended = sqlite3_extended_errcode(handle)
        switch extended {
        case 2067, 1555:  // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
            return DatabaseError(.uniqueViolation, message)
        case 787:  // SQLITE_CONSTRAINT_FOREIGNKEY
            return DatabaseError(.foreignKeyViolation, message)
        default:
            break
        }
        switch status & 0xff {
        case SQLITE_FULL:
            return DatabaseError(.diskFull, "the disk holding \(path) is full: free space, then retry")
        case SQLITE_BUSY, SQLITE_LOCKED:
            return DatabaseError(.unavailable, "the SQLite database \(path) is locked by another process: \(message)")
        default:
            return DatabaseError(.failed, "SQLite: \(message)")
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
