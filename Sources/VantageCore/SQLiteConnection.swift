internal import CSQLite
import Foundation

/// What went wrong in a SQLite call, with SQLite's own message. Its users (the sinks' outbox, the control plane's
/// SQLite engine) turn it into their own error that tells the user what to do; no SQLite C type leaves this module.
package struct SQLiteError: Error, CustomStringConvertible {
    /// The kind of failure, from SQLite's primary result code.
    package enum Code: Sendable, Equatable {
        /// The file or its folder cannot be opened or created (SQLITE_CANTOPEN, SQLITE_PERM).
        case cannotOpen
        /// The file is not a database or is damaged (SQLITE_NOTADB, SQLITE_CORRUPT).
        case damaged
        /// The disk (or the file's page limit) is full (SQLITE_FULL).
        case diskFull
        /// The file or its folder is read-only (SQLITE_READONLY).
        case readOnly
        /// Another process holds the file (SQLITE_BUSY, SQLITE_LOCKED).
        case busy
        /// A read or write failed at the operating system (SQLITE_IOERR).
        case io
        /// Anything else, e.g. a constraint or a misuse.
        case failed
    }

    package var code: Code
    /// The database file.
    package var path: String
    /// SQLite's message (`sqlite3_errmsg`), which names no bound values.
    package var reason: String
    /// The primary result code, for logs.
    package var status: Int32
    /// The extended result code (e.g. `SQLITE_CONSTRAINT_UNIQUE`, 2067), which tells constraint failures apart.
    package var extendedStatus: Int32

    package init(code: Code, path: String, reason: String, status: Int32, extendedStatus: Int32? = nil) {
        self.code = code
        self.path = path
        self.reason = reason
        self.status = status
        self.extendedStatus = extendedStatus ?? status
    }

    package var description: String {
        switch code {
        case .diskFull: "the disk holding \(path) is full (\(reason)): free disk space, then retry"
        default: "SQLite failed on \(path): \(reason) (code \(status))"
        }
    }

    package static func code(for status: Int32) -> Code {
        switch status & 0xff {
        case SQLITE_CANTOPEN, SQLITE_PERM: .cannotOpen
        case SQLITE_NOTADB, SQLITE_CORRUPT: .damaged
        case SQLITE_FULL: .diskFull
        case SQLITE_READONLY: .readOnly
        case SQLITE_BUSY, SQLITE_LOCKED: .busy
        case SQLITE_IOERR: .io
        default: .failed
        }
    }
}

/// One synchronous SQLite connection in WAL mode with a cache of prepared statements. Not thread-safe: its owner
/// serialises every call (the sinks' outbox holds it inside a `Mutex`, the control plane behind one serial queue).
/// `deinit` finalizes the statements and closes.
package final class SQLiteConnection {
    private let handle: OpaquePointer
    private var statements: [String: SQLiteStatement] = [:]
    private let statementCacheLimit: Int
    /// The database file, for error messages.
    package let path: String

    /// Opens (creating when missing) the database at `path`. Pragmas in `setup` run before WAL mode is switched on,
    /// so that file-format pragmas such as `auto_vacuum` take effect on a new file. When more than
    /// `statementCacheLimit` statements are cached (SQL text built at run time), the cache starts over.
    /// `readOnly` opens an existing file only to read it (a missing one is `cannotOpen`), without switching its
    /// journal mode: another process may be writing it meanwhile, and this connection changes nothing in it.
    package init(
        path: String, setup: [String] = [], statementCacheLimit: Int = .max, readOnly: Bool = false
    ) throws(SQLiteError) {
        self.path = path
        self.statementCacheLimit = statementCacheLimit
        var db: OpaquePointer?
        let flags =
            (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &db, flags, nil)
        guard status == SQLITE_OK, let db else {
            let reason = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: SQLiteError.code(for: status), path: path, reason: reason, status: status)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 5000)
        // SQLite reads the file lazily: a damaged file fails here, on the first statement.
        for pragma in setup + (readOnly ? [] : ["PRAGMA journal_mode = WAL"]) { try execute(pragma) }
    }

    deinit {
        for statement in statements.values { statement.finalize() }
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements that take no parameters; any rows they return are ignored.
    package func execute(_ sql: String) throws(SQLiteError) {
        try check(sqlite3_exec(handle, sql, nil, nil, nil))
    }

    /// The prepared statement for `sql`, reset and with its bindings cleared; prepared once per connection.
    package func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        if statements.count >= statementCacheLimit {
            for statement in statements.values { statement.finalize() }
            statements.removeAll()
        }
        var pointer: OpaquePointer?
        try check(sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &pointer, nil))
        guard let pointer else {
            throw SQLiteError(code: .failed, path: path, reason: "empty statement: \(sql)", status: SQLITE_MISUSE)
        }
        let statement = SQLiteStatement(pointer, connection: self)
        statements[sql] = statement
        return statement
    }

    /// The first column of the first row of `sql` as an integer; nil when it returns no row or NULL.
    package func integer(_ sql: String) throws(SQLiteError) -> Int64? {
        let statement = try statement(sql)
        defer { statement.reset() }
        guard try statement.step(), !statement.isNull(0) else { return nil }
        return statement.int64(0)
    }

    /// Runs `body` inside `BEGIN IMMEDIATE` … `COMMIT`; rolls back and rethrows when it throws.
    package func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            // After SQLITE_FULL or an I/O error SQLite may already have rolled back; nothing more to do then.
            if sqlite3_get_autocommit(handle) == 0 { _ = sqlite3_exec(handle, "ROLLBACK", nil, nil, nil) }
            throw error
        }
    }

    /// Copies the WAL into the database and truncates the -wal file to zero bytes.
    package func checkpoint() throws(SQLiteError) {
        try check(sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_TRUNCATE, nil, nil))
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    package var changes: Int { Int(sqlite3_changes64(handle)) }

    /// Throws the connection's current error unless `status` is `SQLITE_OK`, `SQLITE_ROW` or `SQLITE_DONE`.
    package func check(_ status: Int32) throws(SQLiteError) {
        guard status != SQLITE_OK, status != SQLITE_ROW, status != SQLITE_DONE else { return }
        throw SQLiteError(
            code: SQLiteError.code(for: status), path: path, reason: String(cString: sqlite3_errmsg(handle)),
            status: status & 0xff, extendedStatus: sqlite3_extended_errcode(handle))
    }
}

/// A prepared statement owned by its ``SQLiteConnection``. Parameters are numbered from 1, columns from 0.
package final class SQLiteStatement {
    private let pointer: OpaquePointer
    private unowned let connection: SQLiteConnection

    fileprivate init(_ pointer: OpaquePointer, connection: SQLiteConnection) {
        self.pointer = pointer
        self.connection = connection
    }

    fileprivate func finalize() { sqlite3_finalize(pointer) }

    /// Makes the statement ready to run again and forgets its bindings.
    package func reset() {
        sqlite3_reset(pointer)
        sqlite3_clear_bindings(pointer)
    }

    package func bind(_ value: String?, at index: Int32) throws(SQLiteError) {
        guard let value else { return try bindNull(at: index) }
        try connection.check(sqlite3_bind_text(pointer, index, value, -1, csqlite_transient()))
    }

    package func bind(_ value: Int64?, at index: Int32) throws(SQLiteError) {
        guard let value else { return try bindNull(at: index) }
        try connection.check(sqlite3_bind_int64(pointer, index, value))
    }

    package func bind(_ value: Double?, at index: Int32) throws(SQLiteError) {
        guard let value else { return try bindNull(at: index) }
        try connection.check(sqlite3_bind_double(pointer, index, value))
    }

    /// Binds bytes as a BLOB (an empty array is an empty BLOB, not NULL).
    package func bind(_ value: [UInt8]?, at index: Int32) throws(SQLiteError) {
        guard let value else { return try bindNull(at: index) }
        // A nil pointer would bind NULL, and an empty array may have no storage.
        if value.isEmpty { return try connection.check(sqlite3_bind_zeroblob(pointer, index, 0)) }
        let status = value.withUnsafeBytes { bytes in
            sqlite3_bind_blob64(pointer, index, bytes.baseAddress, UInt64(bytes.count), csqlite_transient())
        }
        try connection.check(status)
    }

    package func bindNull(at index: Int32) throws(SQLiteError) {
        try connection.check(sqlite3_bind_null(pointer, index))
    }

    /// Runs the statement to its next row: true when a row is ready to read, false when it has finished.
    @discardableResult
    package func step() throws(SQLiteError) -> Bool {
        let status = sqlite3_step(pointer)
        if status == SQLITE_ROW { return true }
        if status == SQLITE_DONE { return false }
        // sqlite3_step's own code; reset so that the statement can be reused after an error.
        defer { sqlite3_reset(pointer) }
        try connection.check(status)
        return false
    }

    package func isNull(_ column: Int32) -> Bool { sqlite3_column_type(pointer, column) == SQLITE_NULL }

    /// The storage class of a column's value in the current row.
    package enum ColumnType: Sendable, Equatable {
        case integer, real, text, blob, null
    }

    /// The storage class of `column`'s value in the current row.
    package func type(_ column: Int32) -> ColumnType {
        switch sqlite3_column_type(pointer, column) {
        case SQLITE_INTEGER: .integer
        case SQLITE_FLOAT: .real
        case SQLITE_NULL: .null
        case SQLITE_BLOB: .blob
        default: .text
        }
    }

    /// How many columns the statement's rows have.
    package var columnCount: Int32 { sqlite3_column_count(pointer) }

    /// The name of `column` (its `AS` name when it has one).
    package func columnName(_ column: Int32) -> String {
        sqlite3_column_name(pointer, column).map { String(cString: $0) } ?? ""
    }

    package func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(pointer, column) }

    package func double(_ column: Int32) -> Double { sqlite3_column_double(pointer, column) }

    /// The column as text; nil when it is NULL.
    package func text(_ column: Int32) -> String? {
        guard let bytes = sqlite3_column_text(pointer, column) else { return nil }
        let count = Int(sqlite3_column_bytes(pointer, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    /// The column as bytes; nil when it is NULL.
    package func blob(_ column: Int32) -> [UInt8]? {
        if isNull(column) { return nil }
        let count = Int(sqlite3_column_bytes(pointer, column))
        guard count > 0, let bytes = sqlite3_column_blob(pointer, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }
}
