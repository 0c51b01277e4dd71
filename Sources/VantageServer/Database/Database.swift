import Foundation

/// A value bound to or read from a statement: the four types both engines store the same way.
/// (Timestamps are milliseconds since 1970 in `.integer`; JSON documents are `.text`.)
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
}

/// A statement with its bound values. Written with string interpolation, every interpolated value is a bound
/// parameter (`$1`, `$2`, …), never spliced into the text: `SQL("SELECT * FROM devices WHERE id = \(id)")`.
/// Only `\(raw:)` splices text, for the few identifiers and clauses the code itself builds.
public struct SQL: Sendable, ExpressibleByStringInterpolation {
    public private(set) var text: String
    public private(set) var binds: [SQLValue]

    public init(_ text: String, binds: [SQLValue] = []) {
        self.text = text
        self.binds = binds
    }

    public init(stringLiteral value: String) { self.init(value) }

    public init(stringInterpolation: Interpolation) {
        self.init(stringInterpolation.text, binds: stringInterpolation.binds)
    }

    /// Appends another statement's text and binds, renumbering its parameters.
    public mutating func append(_ other: SQL) {
        var renumbered = ""
        var rest = Substring(other.text)
        while let dollar = rest.firstIndex(of: "$") {
            renumbered += rest[..<dollar]
            let digits = rest[rest.index(after: dollar)...].prefix(while: \.isNumber)
            if let n = Int(digits) {
                renumbered += "$\(n + binds.count)"
                rest = rest[digits.endIndex...]
            } else {
                renumbered += "$"
                rest = rest[rest.index(after: dollar)...]
            }
        }
        text += renumbered + rest
        binds += other.binds
    }

    public struct Interpolation: StringInterpolationProtocol {
        var text = ""
        var binds: [SQLValue] = []

        public init(literalCapacity: Int, interpolationCount: Int) {}
        public mutating func appendLiteral(_ literal: String) { text += literal }
        public mutating func appendInterpolation(_ value: some SQLBindable) {
            binds.append(value.sqlValue)
            text += "$\(binds.count)"
        }
        public mutating func appendInterpolation(_ value: (some SQLBindable)?) {
            binds.append(value?.sqlValue ?? .null)
            text += "$\(binds.count)"
        }
        public mutating func appendInterpolation(raw: String) { text += raw }
    }
}

/// A Swift value a statement can bind.
public protocol SQLBindable: Sendable {
    var sqlValue: SQLValue { get }
}

extension String: SQLBindable { public var sqlValue: SQLValue { .text(self) } }
extension Int: SQLBindable { public var sqlValue: SQLValue { .integer(Int64(self)) } }
extension Int64: SQLBindable { public var sqlValue: SQLValue { .integer(self) } }
extension Double: SQLBindable { public var sqlValue: SQLValue { .real(self) } }
extension Bool: SQLBindable { public var sqlValue: SQLValue { .integer(self ? 1 : 0) } }
extension SQLValue: SQLBindable { public var sqlValue: SQLValue { self } }

/// One result row; columns are read by name, with an error naming the column when its type is not the expected one.
public struct SQLRow: Sendable {
    public let columns: [String]
    public let values: [SQLValue]

    public subscript(_ column: String) -> SQLValue {
        guard let index = columns.firstIndex(of: column) else { return .null }
        return values[index]
    }

    public func text(_ column: String) throws -> String {
        guard case .text(let value) = self[column] else { throw DatabaseError.column(column, expected: "text") }
        return value
    }

    public func optionalText(_ column: String) throws -> String? {
        switch self[column] {
        case .null: return nil
        case .text(let value): return value
        default: throw DatabaseError.column(column, expected: "text or null")
        }
    }

    public func integer(_ column: String) throws -> Int64 {
        switch self[column] {
        case .integer(let value): return value
        case .real(let value): return Int64(value)
        default: throw DatabaseError.column(column, expected: "an integer")
        }
    }

    public func optionalInteger(_ column: String) throws -> Int64? {
        if case .null = self[column] { return nil }
        return try integer(column)
    }

    public func real(_ column: String) throws -> Double {
        switch self[column] {
        case .real(let value): return value
        case .integer(let value): return Double(value)
        default: throw DatabaseError.column(column, expected: "a number")
        }
    }
}

/// Which engine a database runs on; the schema is the same, a few statements differ.
public enum DatabaseEngineKind: String, Sendable {
    case sqlite
    case postgres
}

/// Runs statements; `transaction` gives a scope whose statements commit together or not at all.
public protocol SQLExecutor: Sendable {
    @discardableResult
    func query(_ sql: SQL) async throws -> [SQLRow]
}

/// A database: one of ``SQLiteDatabase`` and ``PostgresDatabase``. The server sees only this.
public protocol Database: SQLExecutor {
    var kind: DatabaseEngineKind { get }
    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws (the error is
    /// rethrown as it was).
    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> T) async throws -> T
    /// Runs until the server shuts down (the PostgreSQL connection pool needs a running task).
    func run() async
}

/// A database failure, worded for the person running the server.
public struct DatabaseError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Equatable {
        case uniqueViolation
        case foreignKeyViolation
        case diskFull
        case unavailable
        case badColumn
        case failed
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    static func column(_ name: String, expected: String) -> DatabaseError {
        DatabaseError(
            .badColumn, "database column \(name) does not hold \(expected): is the schema from another version?")
    }
}
