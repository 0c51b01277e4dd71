import Foundation
import Synchronization
import VantageCore

// The sinks' on-disk outbox: one SQLite file per application instance. An event is stored here (with its routing:
// which sinks get its message, its snapshot, its clip) in one transaction before the application's publish returns,
// and each delivery is deleted only when its sink acknowledged it. Snapshots and clips stay in the local event
// folder; the outbox holds their paths, and retention does not delete a file the outbox still needs.

/// One part of an event that one sink still has to take.
public struct PendingDelivery: Sendable, Equatable {
    public enum Part: String, Sendable {
        /// The event's JSON message (MQTT, webhook).
        case message
        /// The snapshot JPEG (object storage).
        case snapshot
        /// The clip MP4 (object storage).
        case clip
    }
    /// The event's place in the outbox: the delivery order.
    public var sequence: Int64
    public var sink: String
    public var part: Part
    public var attempts: Int
    /// Not before this time (a retry's backoff).
    public var notBefore: Date
}

/// An event as the outbox keeps it.
public struct StoredEvent: Sendable, Equatable {
    public var sequence: Int64
    /// The event's JSON message, without the objects uploaded for it.
    public var message: JSONValue
    public var snapshotFile: String?
    public var clipFile: String?
    public var clipState: ClipState
    /// The object-storage sinks the event's snapshot and clip go to, in order: a message names the first one's objects.
    public var objectSinks: [String]

    public enum ClipState: Int, Sendable {
        /// No clip asked for.
        case none = 0
        /// Asked for; the post-roll is still being recorded.
        case pending = 1
        /// Written to `clipFile`.
        case ready = 2
        /// Could not be cut (the reason is in the message's `clip.error`).
        case failed = 3
    }
}

/// What the outbox holds per sink, for status and metrics.
public struct SinkBacklog: Sendable, Equatable {
    public var sink: String
    public var pending: Int
    /// The last failure, while deliveries are failing.
    public var lastError: String?
    public var attempts: Int
}

/// The sinks' durable queue (see the file's comment). Thread-safe: every call takes the connection's lock briefly.
public final class SinkOutbox: Sendable {
    /// The connection, used only under `lock`.
    nonisolated(unsafe) private let connection: SQLiteConnection
    private let lock = NSLock()
    public let path: String

    /// Opens (creating) the outbox file at `path`. Clips that were still being recorded when the process stopped
    /// can no longer be cut: they are marked failed, so their events go out without them.
    public init(path: String) throws(OutboxFileError) {
        self.path = path
        do {
            try FileManager.default.createDirectory(
                at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw OutboxFileError(
                path: path, "cannot create the folder of the outbox \(path): \(error.localizedDescription)")
        }
        let db: SQLiteConnection
        do {
            db = try SQLiteConnection(path: path)
            try db.execute(
                """
                CREATE TABLE IF NOT EXISTS events(
                    seq INTEGER PRIMARY KEY AUTOINCREMENT, message TEXT NOT NULL, snapshot TEXT, clip TEXT,
                    clip_state INTEGER NOT NULL DEFAULT 0, object_sinks TEXT NOT NULL DEFAULT '[]');
                CREATE TABLE IF NOT EXISTS deliveries(
                    seq INTEGER NOT NULL, sink TEXT NOT NULL, part TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                    not_before REAL NOT NULL DEFAULT 0, error TEXT, PRIMARY KEY(sink, seq, part));
                CREATE INDEX IF NOT EXISTS deliveries_seq ON deliveries(seq);
                CREATE TABLE IF NOT EXISTS objects(
                    seq INTEGER NOT NULL, part TEXT NOT NULL, sink TEXT NOT NULL, object TEXT NOT NULL,
                    PRIMARY KEY(seq, part, sink));
                CREATE TABLE IF NOT EXISTS rule_state(key TEXT PRIMARY KEY, last_sent REAL NOT NULL);
                UPDATE events SET clip_state = 3,
                    message = json_set(message, '$.clip', json_object('error',
                        'the runtime stopped while the clip was being recorded'))
                    WHERE clip_state = 1;
                """)
        } catch {
            throw OutboxFileError(path: path, "opening the sinks' outbox: \(OutboxFileError.advice(error))")
        }
        connection = db
    }

    private func withDatabase<T>(_ action: String, _ body: (SQLiteConnection) throws -> T) throws(OutboxFileError) -> T
    {
        do {
            return try lock.withLock { try body(connection) }
        } catch let error as SQLiteError {
            throw OutboxFileError(path: path, "\(action): \(OutboxFileError.advice(error))")
        } catch let error as OutboxFileError {
            throw error
        } catch {
            throw OutboxFileError(path: path, "\(action): \(error)")
        }
    }

    /// Stores an event and the deliveries it needs, in one transaction. Answers the event's sequence.
    @discardableResult
    public func add(
        message: JSONValue, snapshotFile: String?, clipPending: Bool, objectSinks: [String],
        deliveries: [(sink: String, part: PendingDelivery.Part)]
    ) throws(OutboxFileError) -> Int64 {
        try withDatabase("storing an event") { db in
            try db.transaction {
                let insert = try db.statement(
                    "INSERT INTO events(message, snapshot, clip_state, object_sinks) VALUES (?, ?, ?, ?)")
                try insert.bind(message.jsonText, at: 1)
                try insert.bind(snapshotFile, at: 2)
                try insert.bind(Int64(clipPending ? StoredEvent.ClipState.pending.rawValue : 0), at: 3)
                try insert.bind(JSONValue.array(objectSinks.map(JSONValue.string)).jsonText, at: 4)
                _ = try insert.step()
                let seq = try db.integer("SELECT last_insert_rowid()")!
                let add = try db.statement("INSERT OR IGNORE INTO deliveries(seq, sink, part) VALUES (?, ?, ?)")
                for d in deliveries {
                    try add.bind(seq, at: 1)
                    try add.bind(d.sink, at: 2)
                    try add.bind(d.part.rawValue, at: 3)
                    _ = try add.step()
                    add.reset()
                }
                if deliveries.isEmpty { try Self.run(db, "DELETE FROM events WHERE seq = ?", seq) }
                return seq
            }
        }
    }

    private static func count(_ db: SQLiteConnection, _ sql: String, _ seq: Int64) throws -> Int64 {
        let s = try db.statement(sql)
        defer { s.reset() }
        try s.bind(seq, at: 1)
        return try s.step() ? s.int64(0) : 0
    }

    private static func run(_ db: SQLiteConnection, _ sql: String, _ seq: Int64) throws {
        let s = try db.statement(sql)
        defer { s.reset() }
        try s.bind(seq, at: 1)
        _ = try s.step()
    }

    /// Records the clip of event `sequence`: written to `file`, or failed with `error`.
    public func setClip(sequence: Int64, file: String?, error: String?) throws(OutboxFileError) {
        try withDatabase("recording a clip") { db in
            let update = try db.statement(
                """
                UPDATE events SET clip = ?, clip_state = ?,
                    message = CASE WHEN ? IS NULL THEN message ELSE json_set(message, '$.clip', json_object('error', ?)) END
                    WHERE seq = ?
                """)
            try update.bind(file, at: 1)
            try update.bind(
                Int64(file != nil ? StoredEvent.ClipState.ready.rawValue : StoredEvent.ClipState.failed.rawValue), at: 2
            )
            try update.bind(error, at: 3)
            try update.bind(error, at: 4)
            try update.bind(sequence, at: 5)
            _ = try update.step()
        }
    }

    /// The next delivery of `sink` in order (the lowest sequence), or nil when it has none.
    public func head(of sink: String) throws(OutboxFileError) -> PendingDelivery? {
        try withDatabase("reading the outbox") { db in
            let s = try db.statement(
                """
                SELECT seq, part, attempts, not_before FROM deliveries WHERE sink = ?
                    ORDER BY seq, CASE part WHEN 'snapshot' THEN 0 WHEN 'clip' THEN 1 ELSE 2 END LIMIT 1
                """)
            try s.bind(sink, at: 1)
            guard try s.step() else { return nil }
            let delivery = PendingDelivery(
                sequence: s.int64(0), sink: sink, part: PendingDelivery.Part(rawValue: s.text(1) ?? "") ?? .message,
                attempts: Int(s.int64(2)), notBefore: Date(timeIntervalSince1970: s.double(3)))
            s.reset()
            return delivery
        }
    }

    /// The event `sequence`, or nil when it is gone.
    public func event(_ sequence: Int64) throws(OutboxFileError) -> StoredEvent? {
        try withDatabase("reading the outbox") { db in
            let s = try db.statement(
                "SELECT message, snapshot, clip, clip_state, object_sinks FROM events WHERE seq = ?")
            try s.bind(sequence, at: 1)
            guard try s.step() else { return nil }
            defer { s.reset() }
            let objectSinks: [String]
            if case .array(let list)? = JSONValue(parsing: s.text(4) ?? "[]") {
                objectSinks = list.compactMap(\.stringValue)
            } else {
                objectSinks = []
            }
            return StoredEvent(
                sequence: sequence, message: JSONValue(parsing: s.text(0) ?? "{}") ?? .object([:]),
                snapshotFile: s.text(1),
                clipFile: s.text(2), clipState: StoredEvent.ClipState(rawValue: Int(s.int64(3))) ?? .none,
                objectSinks: objectSinks)
        }
    }

    /// Whether any object-storage delivery of event `sequence` is still pending (its message waits for them).
    public func hasPendingObjects(_ sequence: Int64) throws(OutboxFileError) -> Bool {
        try withDatabase("reading the outbox") { db in
            try Self.count(db, "SELECT count(*) FROM deliveries WHERE seq = ? AND part != 'message'", sequence) > 0
        }
    }

    /// The objects stored for event `sequence`, by part, from the sinks in `objectSinks` order.
    public func objects(_ sequence: Int64) throws(OutboxFileError) -> [(part: String, sink: String, object: JSONValue)]
    {
        try withDatabase("reading the outbox") { db in
            let s = try db.statement("SELECT part, sink, object FROM objects WHERE seq = ?")
            try s.bind(sequence, at: 1)
            var result: [(String, String, JSONValue)] = []
            while try s.step() {
                result.append((s.text(0) ?? "", s.text(1) ?? "", JSONValue(parsing: s.text(2) ?? "{}") ?? .null))
            }
            s.reset()
            return result
        }
    }

    /// Marks a delivery done: deletes it, keeps what an object sink stored, and deletes the event when nothing of it
    /// is left to deliver.
    public func complete(_ delivery: PendingDelivery, storedObject: JSONValue? = nil) throws(OutboxFileError) {
        try withDatabase("recording a delivery") { db in
            try db.transaction {
                let delete = try db.statement("DELETE FROM deliveries WHERE sink = ? AND seq = ? AND part = ?")
                try delete.bind(delivery.sink, at: 1)
                try delete.bind(delivery.sequence, at: 2)
                try delete.bind(delivery.part.rawValue, at: 3)
                _ = try delete.step()
                if let storedObject {
                    let add = try db.statement(
                        "INSERT OR REPLACE INTO objects(seq, part, sink, object) VALUES (?, ?, ?, ?)")
                    try add.bind(delivery.sequence, at: 1)
                    try add.bind(delivery.part.rawValue, at: 2)
                    try add.bind(delivery.sink, at: 3)
                    try add.bind(storedObject.jsonText, at: 4)
                    _ = try add.step()
                }
                let seq = delivery.sequence
                if try Self.count(db, "SELECT count(*) FROM deliveries WHERE seq = ?", seq) == 0 {
                    try Self.run(db, "DELETE FROM events WHERE seq = ?", seq)
                    try Self.run(db, "DELETE FROM objects WHERE seq = ?", seq)
                }
            }
        }
    }

    /// Records a failed attempt: the delivery waits until `retryAt`, and `error` is kept for status.
    public func fail(_ delivery: PendingDelivery, error: String, retryAt: Date) throws(OutboxFileError) {
        try withDatabase("recording a failed delivery") { db in
            let update = try db.statement(
                "UPDATE deliveries SET attempts = attempts + 1, not_before = ?, error = ? WHERE sink = ? AND seq = ? AND part = ?"
            )
            try update.bind(retryAt.timeIntervalSince1970, at: 1)
            try update.bind(error, at: 2)
            try update.bind(delivery.sink, at: 3)
            try update.bind(delivery.sequence, at: 4)
            try update.bind(delivery.part.rawValue, at: 5)
            _ = try update.step()
        }
    }

    /// Pending deliveries per sink.
    public func backlog() throws(OutboxFileError) -> [SinkBacklog] {
        try withDatabase("reading the outbox") { db in
            let s = try db.statement(
                """
                SELECT sink, count(*), max(attempts),
                    (SELECT error FROM deliveries d2 WHERE d2.sink = d.sink ORDER BY seq LIMIT 1)
                    FROM deliveries d GROUP BY sink ORDER BY sink
                """)
            var result: [SinkBacklog] = []
            while try s.step() {
                result.append(
                    SinkBacklog(
                        sink: s.text(0) ?? "", pending: Int(s.int64(1)), lastError: s.text(3), attempts: Int(s.int64(2))
                    ))
            }
            s.reset()
            return result
        }
    }

    /// The snapshot and clip files events in the outbox still need (retention keeps them).
    public func filesInUse() throws(OutboxFileError) -> Set<String> {
        try withDatabase("reading the outbox") { db in
            let s = try db.statement("SELECT snapshot, clip FROM events")
            var files: Set<String> = []
            while try s.step() {
                if let a = s.text(0) { files.insert(a) }
                if let b = s.text(1) { files.insert(b) }
            }
            s.reset()
            return files
        }
    }

    /// When the rate-limit key last let an event through.
    public func lastSent(_ key: String) throws(OutboxFileError) -> Date? {
        try withDatabase("reading the outbox") { db in
            let s = try db.statement("SELECT last_sent FROM rule_state WHERE key = ?")
            try s.bind(key, at: 1)
            defer { s.reset() }
            return try s.step() ? Date(timeIntervalSince1970: s.double(0)) : nil
        }
    }

    /// Records that the rate-limit key let an event through at `time`.
    public func setLastSent(_ key: String, _ time: Date) throws(OutboxFileError) {
        try withDatabase("recording a rule") { db in
            let s = try db.statement("INSERT OR REPLACE INTO rule_state(key, last_sent) VALUES (?, ?)")
            try s.bind(key, at: 1)
            try s.bind(time.timeIntervalSince1970, at: 2)
            _ = try s.step()
        }
    }
}

/// The outbox file cannot be read or written: says which file and what to do.
public struct OutboxFileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var message: String
    public var description: String { message }
    public init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    /// SQLite's failure with what to do about it.
    static func advice(_ error: SQLiteError) -> String {
        let path = error.path
        switch error.code {
        case .diskFull: return error.description
        case .damaged:
            return "the outbox \(path) is damaged (\(error.reason)): move it aside with its -wal and -shm files and "
                + "start again with a new, empty outbox; the events in the damaged file are not delivered"
        case .cannotOpen, .readOnly:
            return "cannot write the outbox \(path) (\(error.reason)): make its folder writable by this user"
        case .busy:
            return "another process holds the outbox \(path): run one runtime per state folder (--state-dir)"
        default: return error.description
        }
    }
}
