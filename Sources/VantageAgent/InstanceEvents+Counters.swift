import Foundation
import VantageCore
import VantageOutputs

extension OutboxCounters {
    /// The counters of the outbox file at `path` (the figures ``SinkOutbox/counters`` keeps), read over a read-only
    /// connection that changes nothing in the file. Opening it as a ``SinkOutbox`` would not do while a runtime
    /// records into it: opening recovers the file, marking failed the clips that are still being recorded.
    /// - Throws: ``SQLiteError``: the file is missing (`cannotOpen`), damaged, or held by a writer for too long.
    static func reading(outboxAt path: String) throws(SQLiteError) -> OutboxCounters {
        let db = try SQLiteConnection(path: path, readOnly: true)
        // One read transaction: the figures of one moment, whatever the writer does meanwhile.
        try db.execute("BEGIN")
        defer { try? db.execute("COMMIT") }
        var tables: Set<String> = []
        let list = try db.statement("SELECT name FROM sqlite_master WHERE type = 'table'")
        while try list.step() { tables.insert(list.text(0) ?? "") }
        list.reset()
        var counters = OutboxCounters()
        // A file its outbox is still creating has no tables yet: nothing recorded.
        guard tables.contains("events") else { return counters }
        var columns: Set<String> = []
        let info = try db.statement("PRAGMA table_info(events)")
        while try info.step() { columns.insert(info.text(1) ?? "") }
        info.reset()
        // Files made before the outbox was bounded lack the sizes: the outbox counts them as 0 too.
        let sums = try db.statement(
            columns.contains("size")
                ? "SELECT COUNT(*), COALESCE(SUM(size + snapshot_size), 0) FROM events"
                : "SELECT COUNT(*), 0 FROM events")
        _ = try sums.step()
        counters.pendingEvents = Int(sums.int64(0))
        counters.pendingBytes = sums.int64(1)
        sums.reset()
        if tables.contains("meta") {
            counters.droppedEvents = try db.integer("SELECT value FROM meta WHERE key = 'dropped_events'") ?? 0
            counters.droppedSnapshots = try db.integer("SELECT value FROM meta WHERE key = 'dropped_snapshots'") ?? 0
        }
        if tables.contains("sqlite_sequence") {
            counters.recordedEvents = try db.integer("SELECT seq FROM sqlite_sequence WHERE name = 'events'") ?? 0
        }
        return counters
    }
}

/// What `<outbox folder>/retired.json` keeps of the outboxes deleted with their (removed, drained) instances, so
/// that the device's totals never go down: every counter of ``OutboxCounters``, summed, under its own name, and the
/// events the control plane refused from them for good (`rejectedEvents`). A file written before a counter existed
/// reads it as 0.
struct RetiredOutboxes: Equatable {
    var outbox = OutboxCounters()
    /// Events the control plane refused (4xx) and the outbox dropped: heartbeats' `outbox.rejected_events`.
    var rejectedEvents = 0

    static let fileName = "retired.json"
    static let rejectedKey = "rejectedEvents"

    /// The file in `folder`; zeros when there is none (or it cannot be read).
    static func read(in folder: URL) -> RetiredOutboxes {
        (try? Data(contentsOf: folder.appending(path: fileName))).flatMap { try? decode($0) } ?? RetiredOutboxes()
    }

    func write(in folder: URL) throws {
        try AtomicFile.write(try encoded(), to: folder.appending(path: Self.fileName), permissions: 0o600)
    }

    /// Every counter as a flat JSON object: ``OutboxCounters``'s own keys, and `rejectedEvents`.
    func encoded() throws -> Data {
        var fields = try JSONDecoder().decode([String: Int64].self, from: JSONEncoder().encode(outbox))
        fields[Self.rejectedKey] = Int64(rejectedEvents)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(fields)
    }

    /// Reads ``encoded()``'s object; a counter it lacks (a file from an older agent) is 0.
    static func decode(_ data: Data) throws -> RetiredOutboxes {
        var fields = try JSONDecoder().decode([String: Int64].self, from: data)
        let rejected = fields.removeValue(forKey: rejectedKey) ?? 0
        let zeros = try JSONDecoder().decode([String: Int64].self, from: JSONEncoder().encode(OutboxCounters()))
        fields.merge(zeros) { kept, _ in kept }
        let outbox = try JSONDecoder().decode(OutboxCounters.self, from: JSONEncoder().encode(fields))
        return RetiredOutboxes(outbox: outbox, rejectedEvents: Int(rejected))
    }
}
