import Foundation
import VantageCore

// How the outbox keeps its bound (``SinkOutbox/add(message:snapshotFile:snapshotPending:clipPending:objectSinks:
// deliveries:)`` and ``SinkOutbox/setSnapshot(sequence:file:error:)`` call these inside their transaction, under the
// lock), and the small statements it runs by sequence.

extension SinkOutbox {
    /// Takes the snapshots off the oldest events that still have one (their snapshot deliveries go; their message
    /// says why) until `needed` bytes are freed or none is left: answers the bytes freed and the snapshots dropped.
    /// A snapshot still being written counts nothing yet and is left alone.
    static func dropOldestSnapshots(_ db: SQLiteConnection, freeing needed: Int64) throws(SQLiteError) -> (
        Int64, Int
    ) {
        try freeOldest(
            db,
            """
            SELECT seq, snapshot_size FROM events WHERE snapshot IS NOT NULL AND snapshot_pending = 0
                ORDER BY seq LIMIT 64
            """,
            freeing: needed
        ) { seq throws(SQLiteError) in
            try run(
                db,
                """
                UPDATE events SET snapshot = NULL, snapshot_size = 0,
                    message = json_set(message, '$.snapshot', json_object('error', '\(droppedSnapshot)'))
                    WHERE seq = ?
                """, seq)
            try run(db, "DELETE FROM deliveries WHERE seq = ? AND part = 'snapshot'", seq)
        }
    }

    /// Deletes the oldest events (with their deliveries) until `needed` bytes are freed or none is left: answers the
    /// bytes freed and the events deleted.
    static func deleteOldestEvents(_ db: SQLiteConnection, freeing needed: Int64) throws(SQLiteError) -> (
        Int64, Int
    ) {
        try freeOldest(db, "SELECT seq, size + snapshot_size FROM events ORDER BY seq LIMIT 64", freeing: needed) {
            seq throws(SQLiteError) in
            for table in ["events", "deliveries", "objects"] { try run(db, "DELETE FROM \(table) WHERE seq = ?", seq) }
        }
    }

    /// Applies `free` to the rows of `select` (sequence, bytes), oldest first, a batch at a time, until `needed`
    /// bytes are freed or none is left: answers the bytes freed and the rows freed.
    private static func freeOldest(
        _ db: SQLiteConnection, _ select: String, freeing needed: Int64,
        _ free: (Int64) throws(SQLiteError) -> Void
    ) throws(SQLiteError) -> (Int64, Int) {
        var freed: Int64 = 0
        var count = 0
        let statement = try db.statement(select)
        while freed < needed {
            var rows: [(Int64, Int64)] = []
            var total: Int64 = 0
            while total < needed - freed, try statement.step() {
                rows.append((statement.int64(0), statement.int64(1)))
                total += statement.int64(1)
            }
            statement.reset()
            guard !rows.isEmpty else { break }
            for (seq, size) in rows {
                try free(seq)
                freed += size
                count += 1
            }
        }
        return (freed, count)
    }

    /// The counters an outbox file keeps (``counters``), read over `db`: the outbox's own connection when it opens,
    /// or a read-only one (``counters(ofFileAt:)``). A file its outbox is still creating has no tables yet and counts
    /// nothing; one made before the outbox was bounded lacks the sizes and counts them as 0.
    static func readCounters(_ db: SQLiteConnection) throws(SQLiteError) -> OutboxCounters {
        var tables: Set<String> = []
        let list = try db.statement("SELECT name FROM sqlite_master WHERE type = 'table'")
        while try list.step() { tables.insert(list.text(0) ?? "") }
        list.reset()
        var counters = OutboxCounters()
        guard tables.contains("events") else { return counters }
        var columns: Set<String> = []
        let info = try db.statement("PRAGMA table_info(events)")
        while try info.step() { columns.insert(info.text(1) ?? "") }
        info.reset()
        let sums = try db.statement(
            columns.contains("size")
                ? "SELECT COUNT(*), COALESCE(SUM(size + snapshot_size), 0) FROM events"
                : "SELECT COUNT(*), 0 FROM events")
        _ = try sums.step()
        counters.pendingEvents = Int(sums.int64(0))
        counters.pendingBytes = sums.int64(1)
        sums.reset()
        if tables.contains("meta") {
            counters.droppedEvents = try meta(db, "dropped_events")
            counters.droppedSnapshots = try meta(db, "dropped_snapshots")
        }
        if tables.contains("sqlite_sequence") {
            counters.recordedEvents = try db.integer("SELECT seq FROM sqlite_sequence WHERE name = 'events'") ?? 0
        }
        return counters
    }

    /// The counters of the outbox file at `path`, read over a read-only connection that changes nothing in it (one
    /// read transaction: the figures of one moment, whatever its writer does meanwhile). Opening it as a
    /// ``SinkOutbox`` would not do while a runtime records into it: opening recovers the file, marking failed the
    /// clips and snapshots that are still being written.
    /// - Throws: ``SQLiteError``: the file is missing (`cannotOpen`), damaged, or held by a writer for too long.
    package static func counters(ofFileAt path: String) throws(SQLiteError) -> OutboxCounters {
        let db = try SQLiteConnection(path: path, readOnly: true)
        try db.execute("BEGIN")
        defer { try? db.execute("COMMIT") }
        return try readCounters(db)
    }

    static func meta(_ db: SQLiteConnection, _ key: String) throws(SQLiteError) -> Int64 {
        let s = try db.statement("SELECT value FROM meta WHERE key = ?")
        defer { s.reset() }
        try s.bind(key, at: 1)
        return try s.step() ? s.int64(0) : 0
    }

    static func setMeta(_ db: SQLiteConnection, _ key: String, _ value: Int64) throws(SQLiteError) {
        let s = try db.statement(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        defer { s.reset() }
        try s.bind(key, at: 1)
        try s.bind(value, at: 2)
        _ = try s.step()
    }

    static func count(_ db: SQLiteConnection, _ sql: String, _ seq: Int64) throws(SQLiteError) -> Int64 {
        let s = try db.statement(sql)
        defer { s.reset() }
        try s.bind(seq, at: 1)
        return try s.step() ? s.int64(0) : 0
    }

    static func run(_ db: SQLiteConnection, _ sql: String, _ seq: Int64) throws(SQLiteError) {
        let s = try db.statement(sql)
        defer { s.reset() }
        try s.bind(seq, at: 1)
        _ = try s.step()
    }
}
