import Foundation
import Synchronization
import VantageCore
import VantageOutputs

// The agent's on-disk event outbox: events wait here, in one SQLite file, until the server acknowledges them, so an
// outage or a restart loses nothing that fits. The file is bounded: when full, the oldest images go first, then the
// oldest events, and every loss is counted (persisted) so that the agent can report it.

/// An event waiting in the ``Outbox`` for the server's acknowledgement.
public struct OutboxEvent: Sendable, Equatable {
    /// Unique on this device (a UUID string); the server's idempotency key (`NewEvent.id`), so sending it twice
    /// stores it once.
    public var id: String
    /// Assigned by the outbox, strictly increasing across restarts: the delivery order.
    public var sequence: Int64
    public var type: String
    public var time: Date
    public var cameraId: String?
    public var instanceId: String?
    /// The event's JSON object, as text.
    public var data: String
    /// JPEG bytes; nil when there was none or the outbox evicted it to make room.
    public var snapshot: [UInt8]?

    public init(
        id: String, sequence: Int64, type: String, time: Date, cameraId: String?, instanceId: String?, data: String,
        snapshot: [UInt8]?
    ) {
        self.id = id
        self.sequence = sequence
        self.type = type
        self.time = time
        self.cameraId = cameraId
        self.instanceId = instanceId
        self.data = data
        self.snapshot = snapshot
    }
}

/// What the outbox holds and what it has lost, for the heartbeat and metrics.
public struct OutboxCounters: Sendable, Equatable, Codable {
    /// Events waiting for acknowledgement.
    public var pendingEvents: Int
    /// Their size as the bound counts it (see ``Outbox/size(type:cameraId:instanceId:data:snapshotBytes:)``).
    public var pendingBytes: Int64
    /// Events deleted unacknowledged to stay within the bound, since the outbox file was created.
    public var droppedEvents: Int64
    /// Snapshots removed from events to stay within the bound, since the outbox file was created.
    public var droppedSnapshots: Int64
    /// Events appended since the outbox file was created, those dropped as too large included: the last sequence.
    /// Always `pendingEvents + droppedEvents + acknowledgedEvents`.
    public var appendedEvents: Int64
    /// Events deleted because the server acknowledged them, since the outbox file was created.
    public var acknowledgedEvents: Int64

    public init(
        pendingEvents: Int, pendingBytes: Int64, droppedEvents: Int64, droppedSnapshots: Int64,
        appendedEvents: Int64 = 0, acknowledgedEvents: Int64 = 0
    ) {
        self.pendingEvents = pendingEvents
        self.pendingBytes = pendingBytes
        self.droppedEvents = droppedEvents
        self.droppedSnapshots = droppedSnapshots
        self.appendedEvents = appendedEvents
        self.acknowledgedEvents = acknowledgedEvents
    }
}

/// A failure of the outbox, naming its file and saying what to do.
public struct OutboxError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure; more may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let description: String
        /// The disk holding the outbox is full.
        public static let diskFull = Code(description: "diskFull")
        /// The outbox file is not a database or is corrupt.
        public static let damaged = Code(description: "damaged")
        /// The outbox file or its folder cannot be created or written.
        public static let unwritable = Code(description: "unwritable")
        /// Another process holds the outbox file.
        public static let inUse = Code(description: "inUse")
        /// The event's metadata alone is larger than the outbox's bound; it was dropped (and counted).
        public static let eventTooLarge = Code(description: "eventTooLarge")
        /// Anything else.
        public static let failed = Code(description: "failed")
    }

    public var code: Code
    /// The outbox file.
    public var path: String
    /// What happened and what to do, naming the file.
    public var message: String

    public var description: String { message }

    public init(_ code: Code, path: String, _ message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    /// Explains a SQLite failure that happened while doing `action` (e.g. "storing an event").
    init(_ error: SQLiteError, action: String) {
        let path = error.path
        switch error.code {
        case .diskFull:
            self.init(
                .diskFull, path: path,
                "the disk holding the outbox \(path) is full while \(action): free disk space (or lower the outbox "
                    + "limit); events that were not stored are lost")
        case .damaged:
            self.init(
                .damaged, path: path,
                "the outbox file \(path) is damaged (\(error.reason)): move it aside (mv \(path) \(path).damaged, "
                    + "with its -wal and -shm files) and restart the agent, which then starts a new, empty outbox; "
                    + "the events in the damaged file are not delivered")
        case .cannotOpen, .readOnly:
            self.init(
                .unwritable, path: path,
                "cannot write the outbox \(path) while \(action) (\(error.reason)): make its folder writable by the "
                    + "agent's user and free disk space")
        case .busy:
            self.init(
                .inUse, path: path,
                "the outbox \(path) is locked by another process (\(error.reason)): run one agent per data folder")
        case .io:
            self.init(
                .failed, path: path,
                "reading or writing the outbox \(path) failed while \(action) (\(error.reason)): free disk space and "
                    + "check the disk for I/O errors (dmesg)")
        case .failed:
            self.init(.failed, path: path, "the outbox \(path) failed while \(action): \(error.reason)")
        }
    }
}

/// Events and their snapshots stored durably in one SQLite file until the server acknowledges them.
///
/// - Durable: ``append(type:time:cameraId:instanceId:data:snapshot:)`` returns after the event is committed with
///   `synchronous = FULL`, so an appended event survives a crash or a power cut.
/// - Ordered: ``pending(limit:maxBytes:)`` answers the oldest events in ``OutboxEvent/sequence`` order, hence in order
///   per camera; the sequence keeps increasing across restarts.
/// - At least once: an event is deleted only by ``acknowledge(_:)``; a sender that crashes between upload and
///   acknowledgement sends it again, and the server deduplicates by ``OutboxEvent/id``.
/// - Bounded: the events' total size stays within `limitBytes`. To make room, the outbox first removes the snapshots
///   of the oldest events, then the new event's own snapshot, and only then deletes the oldest events; each loss is
///   counted in ``counters``. Memory stays flat: nothing reads more rows than asked for.
///
/// Thread-safe: one connection behind a lock. Its calls block on disk I/O (an `fsync` per append), so async callers
/// should call it from a dedicated thread or queue, not the cooperative pool. Open one `Outbox` per file: the
/// counters are kept in memory, so a second writer on the same file would leave the first one's counters stale.
public final class Outbox: Sendable {
    /// Bytes counted per event besides its text and snapshot, for the row's own overhead.
    public static let eventOverheadBytes: Int64 = 64

    /// The outbox file.
    public let path: URL
    /// The most bytes (as ``size(type:cameraId:instanceId:data:snapshotBytes:)`` counts them) the events may take.
    public let limitBytes: Int64
    private let store: Mutex<OutboxStore>

    /// Opens the outbox at `path`, creating its folder and file when missing; reopening keeps every pending event and
    /// the counters.
    /// - Throws: ``OutboxError`` when the folder cannot be created, the disk is full or the file is damaged.
    public convenience init(path: URL, limitBytes: Int64) throws {
        try self.init(path: path, limitBytes: limitBytes, maxPageCount: nil)
    }

    /// `maxPageCount` caps the file's pages, so that tests can make the "disk" fill up.
    init(path: URL, limitBytes: Int64, maxPageCount: Int?) throws {
        precondition(limitBytes > 0, "the outbox limit must be positive")
        self.path = path
        self.limitBytes = limitBytes
        let folder = path.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw OutboxError(
                .unwritable, path: path.path,
                "cannot create the folder \(folder.path) for the outbox \(path.path) "
                    + "(\((error as NSError).localizedDescription)): make it writable by the agent's user and free "
                    + "disk space")
        }
        do {
            let store = try OutboxStore(path: path.path, limitBytes: limitBytes, maxPageCount: maxPageCount)
            self.store = Mutex(store)
        } catch {
            throw OutboxError(error, action: "opening it")
        }
    }

    /// The size the bound counts for an event: its text and snapshot bytes plus ``eventOverheadBytes``. The id is a
    /// 36-character UUID.
    public static func size(type: String, cameraId: String?, instanceId: String?, data: String, snapshotBytes: Int)
        -> Int64
    {
        let text = 36 + type.utf8.count + (cameraId?.utf8.count ?? 0) + (instanceId?.utf8.count ?? 0) + data.utf8.count
        return eventOverheadBytes + Int64(text) + Int64(snapshotBytes)
    }

    /// Stores an event durably (committed before returning) and returns it with its id and sequence. When the outbox
    /// would go over its bound it first makes room (oldest snapshots, then this event's snapshot, then oldest events),
    /// counting what it drops; a snapshot larger than the whole bound is dropped on its own.
    /// - Throws: ``OutboxError``: `.eventTooLarge` when the metadata alone exceeds the bound (the event is dropped and
    ///   counted), `.diskFull` when the disk is full (nothing was stored).
    @discardableResult
    public func append(
        type: String, time: Date, cameraId: String?, instanceId: String?, data: String, snapshot: [UInt8]?
    ) throws -> OutboxEvent {
        try withStore("storing an event") { store in
            try store.append(
                type: type, time: time, cameraId: cameraId, instanceId: instanceId, data: data, snapshot: snapshot)
        }
    }

    /// The oldest pending events in sequence order (so in order per camera): at most `limit` of them (a limit below
    /// 1 counts as 1) whose sizes add up to at most `maxBytes`, but always at least one event when any is pending, so
    /// that one large event cannot block the queue.
    public func pending(limit: Int, maxBytes: Int64) throws -> [OutboxEvent] {
        try withStore("reading pending events") { store in try store.pending(limit: max(1, limit), maxBytes: maxBytes) }
    }

    /// Deletes the events the server acknowledged; ids that are not pending (already acknowledged, evicted or
    /// unknown) are ignored.
    public func acknowledge(_ ids: [String]) throws {
        guard !ids.isEmpty else { return }
        try withStore("deleting acknowledged events") { store in try store.acknowledge(ids) }
    }

    /// Pending events and bytes, and what was appended, acknowledged and dropped since the outbox file was created.
    /// Kept in memory (read from the file when opening), so reading it costs no disk access.
    public var counters: OutboxCounters {
        get throws { store.withLock { $0.counters } }
    }

    private func withStore<T: Sendable>(_ action: String, _ body: (OutboxStore) throws -> T) throws -> T {
        do {
            return try store.withLock { store in try body(store) }
        } catch let error as SQLiteError {
            throw OutboxError(error, action: action)
        }
    }
}

/// The outbox's connection and its running totals; used only under ``Outbox``'s lock.
private final class OutboxStore {
    private let connection: SQLiteConnection
    private let limitBytes: Int64
    private(set) var counters: OutboxCounters
    /// Writes since the last `wal_checkpoint(TRUNCATE)`, to keep the -wal file small.
    private var appendsSinceCheckpoint = 0
    private var bytesSinceCheckpoint: Int64 = 0

    private static let checkpointEveryAppends = 1000
    private static let checkpointEveryBytes: Int64 = 4 << 20
    /// Rows read per eviction query; eviction rarely needs more than a few.
    private static let evictionBatch = 64

    /// Snapshots live in their own table: evicting one deletes a row, which SQLite packs back into few pages, where
    /// setting a column to NULL would leave each event's half-empty page behind (the file grew a page per event).
    /// Ordered by sequence, that table also finds the oldest events that still have a snapshot without a scan.
    /// `snapshot_size` is kept with the event so that sizes add up without reading the images. `time` is a `Date`'s own
    /// seconds since 2001-01-01, so it round-trips exactly.
    private static let schema = """
        CREATE TABLE IF NOT EXISTS events (
            sequence INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            time REAL NOT NULL,
            camera_id TEXT,
            instance_id TEXT,
            metadata_size INTEGER NOT NULL,
            snapshot_size INTEGER NOT NULL,
            data TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS snapshots (
            sequence INTEGER PRIMARY KEY,
            size INTEGER NOT NULL,
            bytes BLOB NOT NULL
        );
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        """

    init(path: String, limitBytes: Int64, maxPageCount: Int?) throws(SQLiteError) {
        // auto_vacuum must be set before the first table exists; it lets incremental_vacuum give freed pages back.
        connection = try SQLiteConnection(path: path, setup: ["PRAGMA auto_vacuum = INCREMENTAL"])
        self.limitBytes = limitBytes
        try connection.execute("PRAGMA synchronous = FULL")
        // SQLite checkpoints every 1,000 pages (4 MiB) by default; for a small outbox that WAL would outgrow the
        // events, so checkpoint sooner, and cut the -wal file back after each checkpoint.
        let pageSize = try connection.integer("PRAGMA page_size") ?? 4096
        let walPages = min(1000, max(64, limitBytes / 2 / pageSize))
        try connection.execute(
            "PRAGMA wal_autocheckpoint = \(walPages); PRAGMA journal_size_limit = \(walPages * pageSize)")
        if let maxPageCount { try connection.execute("PRAGMA max_page_count = \(maxPageCount)") }
        try connection.execute(Self.schema)

        let totals = try connection.statement(
            "SELECT COUNT(*), COALESCE(SUM(metadata_size + snapshot_size), 0), COALESCE(MAX(sequence), 0) FROM events")
        try totals.step()
        let pendingEvents = Int(totals.int64(0))
        let pendingBytes = totals.int64(1)
        let maxSequence = totals.int64(2)
        totals.reset()
        // The last sequence is written only when deleting; until then the newest event holds it.
        counters = OutboxCounters(
            pendingEvents: pendingEvents, pendingBytes: pendingBytes,
            droppedEvents: try Self.meta("dropped_events", connection) ?? 0,
            droppedSnapshots: try Self.meta("dropped_snapshots", connection) ?? 0,
            appendedEvents: max(maxSequence, try Self.meta("last_sequence", connection) ?? 0),
            acknowledgedEvents: try Self.meta("acknowledged_events", connection) ?? 0)
    }

    func append(type: String, time: Date, cameraId: String?, instanceId: String?, data: String, snapshot: [UInt8]?)
        throws -> OutboxEvent
    {
        let metadataSize = Outbox.size(
            type: type, cameraId: cameraId, instanceId: instanceId, data: data, snapshotBytes: 0)
        if metadataSize > limitBytes {
            // It takes a sequence number, so that the gap shows and the counts add up.
            var next = counters
            next.appendedEvents += 1
            next.droppedEvents += 1
            try connection.transaction {
                try setMeta("dropped_events", next.droppedEvents)
                try setMeta("last_sequence", next.appendedEvents)
            }
            counters = next
            throw OutboxError(
                .eventTooLarge, path: connection.path,
                "a \(type) event of \(metadataSize) bytes without its snapshot is larger than the outbox limit of "
                    + "\(limitBytes) bytes, so it was dropped: raise the outbox limit or make the event's data smaller")
        }

        var next = counters
        var snapshot = snapshot
        let sequence = counters.appendedEvents + 1
        let event = try connection.transaction {
            var snapshotSize = Int64(snapshot?.count ?? 0)
            if metadataSize + snapshotSize > limitBytes {
                snapshot = nil
                snapshotSize = 0
                next.droppedSnapshots += 1
            }
            var over = next.pendingBytes + metadataSize + snapshotSize - limitBytes
            if over > 0 {
                let (freed, count) = try dropOldestSnapshots(freeing: over)
                over -= freed
                next.pendingBytes -= freed
                next.droppedSnapshots += Int64(count)
            }
            // Images go before metadata: this event's snapshot before any older event.
            if over > 0, snapshotSize > 0 {
                over -= snapshotSize
                snapshot = nil
                snapshotSize = 0
                next.droppedSnapshots += 1
            }
            if over > 0 {
                let (freed, count) = try deleteOldestEvents(freeing: over)
                next.pendingBytes -= freed
                next.pendingEvents -= count
                next.droppedEvents += Int64(count)
                try setMeta("last_sequence", counters.appendedEvents)
            }

            let event = OutboxEvent(
                id: UUID().uuidString.lowercased(), sequence: sequence, type: type, time: time, cameraId: cameraId,
                instanceId: instanceId, data: data, snapshot: snapshot)
            let insert = try connection.statement(
                """
                INSERT INTO events (sequence, id, type, time, camera_id, instance_id, metadata_size, snapshot_size,
                    data)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                """)
            try insert.bind(event.sequence, at: 1)
            try insert.bind(event.id, at: 2)
            try insert.bind(type, at: 3)
            try insert.bind(time.timeIntervalSinceReferenceDate, at: 4)
            try insert.bind(cameraId, at: 5)
            try insert.bind(instanceId, at: 6)
            try insert.bind(metadataSize, at: 7)
            try insert.bind(snapshotSize, at: 8)
            try insert.bind(data, at: 9)
            try insert.step()
            insert.reset()
            if let snapshot {
                let insertSnapshot = try connection.statement(
                    "INSERT INTO snapshots (sequence, size, bytes) VALUES (?1, ?2, ?3)")
                try insertSnapshot.bind(sequence, at: 1)
                try insertSnapshot.bind(snapshotSize, at: 2)
                try insertSnapshot.bind(snapshot, at: 3)
                try insertSnapshot.step()
                insertSnapshot.reset()
            }
            next.pendingEvents += 1
            next.pendingBytes += metadataSize + snapshotSize
            next.appendedEvents = sequence
            if next.droppedEvents != counters.droppedEvents { try setMeta("dropped_events", next.droppedEvents) }
            if next.droppedSnapshots != counters.droppedSnapshots {
                try setMeta("dropped_snapshots", next.droppedSnapshots)
            }
            return event
        }
        // Committed: only now does the in-memory state move.
        counters = next
        wrote(bytes: metadataSize + Int64(event.snapshot?.count ?? 0))
        return event
    }

    func pending(limit: Int, maxBytes: Int64) throws(SQLiteError) -> [OutboxEvent] {
        let select = try connection.statement(
            """
            SELECT e.sequence, e.id, e.type, e.time, e.camera_id, e.instance_id, e.metadata_size + e.snapshot_size,
                e.data, s.bytes
            FROM events AS e LEFT JOIN snapshots AS s ON s.sequence = e.sequence
            ORDER BY e.sequence LIMIT ?1
            """)
        defer { select.reset() }
        try select.bind(Int64(limit), at: 1)
        var events: [OutboxEvent] = []
        var total: Int64 = 0
        while try select.step() {
            let size = select.int64(6)
            if !events.isEmpty, total + size > maxBytes { break }
            total += size
            events.append(
                OutboxEvent(
                    id: select.text(1) ?? "", sequence: select.int64(0), type: select.text(2) ?? "",
                    time: Date(timeIntervalSinceReferenceDate: select.double(3)), cameraId: select.text(4),
                    instanceId: select.text(5), data: select.text(7) ?? "", snapshot: select.blob(8)))
        }
        return events
    }

    func acknowledge(_ ids: [String]) throws {
        var next = counters
        try connection.transaction {
            let delete = try connection.statement(
                "DELETE FROM events WHERE id = ?1 RETURNING sequence, metadata_size, snapshot_size")
            let deleteSnapshot = try connection.statement("DELETE FROM snapshots WHERE sequence = ?1")
            for id in ids {
                try delete.bind(id, at: 1)
                let found = try delete.step()
                let (sequence, metadataSize, snapshotSize) = (delete.int64(0), delete.int64(1), delete.int64(2))
                delete.reset()
                guard found else { continue }
                next.pendingEvents -= 1
                next.pendingBytes -= metadataSize + snapshotSize
                next.acknowledgedEvents += 1
                if snapshotSize > 0 {
                    try deleteSnapshot.bind(sequence, at: 1)
                    try deleteSnapshot.step()
                    deleteSnapshot.reset()
                }
            }
            guard next.acknowledgedEvents != counters.acknowledgedEvents else { return }
            try setMeta("acknowledged_events", next.acknowledgedEvents)
            // The sequence must keep increasing even when the table becomes empty.
            try setMeta("last_sequence", counters.appendedEvents)
        }
        let freed = counters.pendingBytes - next.pendingBytes
        counters = next
        guard freed > 0 else { return }
        // Give the freed pages back to the disk. The deletion is committed already, so a failure here is not the
        // caller's: the next acknowledgement tries again.
        try? connection.execute("PRAGMA incremental_vacuum")
        wrote(bytes: freed)
        // A drained backlog: shrink the files now rather than at the next periodic checkpoint.
        if counters.pendingEvents == 0 { checkpoint() }
    }

    /// Removes the snapshots of the oldest events that have one until at least `needed` bytes are freed (or none is
    /// left); answers the bytes freed and the snapshots removed.
    private func dropOldestSnapshots(freeing needed: Int64) throws(SQLiteError) -> (Int64, Int) {
        var freed: Int64 = 0
        var count = 0
        let select = try connection.statement("SELECT sequence, size FROM snapshots ORDER BY sequence LIMIT ?1")
        while freed < needed {
            let batch = try oldest(select, covering: needed - freed)
            guard let last = batch.last else { break }
            let delete = try connection.statement("DELETE FROM snapshots WHERE sequence <= ?1")
            try delete.bind(last.sequence, at: 1)
            try delete.step()
            delete.reset()
            let update = try connection.statement("UPDATE events SET snapshot_size = 0 WHERE sequence = ?1")
            for row in batch {
                try update.bind(row.sequence, at: 1)
                try update.step()
                update.reset()
                freed += row.size
                count += 1
            }
        }
        return (freed, count)
    }

    /// Deletes the oldest events until at least `needed` bytes are freed (or none is left); answers the bytes freed
    /// and the events deleted.
    private func deleteOldestEvents(freeing needed: Int64) throws(SQLiteError) -> (Int64, Int) {
        var freed: Int64 = 0
        var count = 0
        let select = try connection.statement(
            "SELECT sequence, metadata_size + snapshot_size FROM events ORDER BY sequence LIMIT ?1")
        while freed < needed {
            let batch = try oldest(select, covering: needed - freed)
            guard let last = batch.last else { break }
            for table in ["events", "snapshots"] {
                let delete = try connection.statement("DELETE FROM \(table) WHERE sequence <= ?1")
                try delete.bind(last.sequence, at: 1)
                try delete.step()
                delete.reset()
            }
            freed += batch.reduce(0) { $0 + $1.size }
            count += batch.count
        }
        return (freed, count)
    }

    /// The first rows of `select` (sequence, size) whose sizes add up to at least `needed`, at most a batch.
    private func oldest(_ select: SQLiteStatement, covering needed: Int64) throws(SQLiteError) -> [(
        sequence: Int64, size: Int64
    )] {
        select.reset()
        defer { select.reset() }
        try select.bind(Int64(Self.evictionBatch), at: 1)
        var rows: [(sequence: Int64, size: Int64)] = []
        var total: Int64 = 0
        while total < needed, try select.step() {
            rows.append((select.int64(0), select.int64(1)))
            total += select.int64(1)
        }
        return rows
    }

    /// Counts written bytes and truncates the -wal file now and then, so that it does not grow without bound.
    private func wrote(bytes: Int64) {
        appendsSinceCheckpoint += 1
        bytesSinceCheckpoint += max(0, bytes)
        guard appendsSinceCheckpoint >= Self.checkpointEveryAppends || bytesSinceCheckpoint >= Self.checkpointEveryBytes
        else { return }
        checkpoint()
    }

    private func checkpoint() {
        // A failed checkpoint loses nothing (the WAL stays valid) and SQLite's own checkpoints continue: try later.
        guard (try? connection.checkpoint()) != nil else { return }
        appendsSinceCheckpoint = 0
        bytesSinceCheckpoint = 0
    }

    private func setMeta(_ key: String, _ value: Int64) throws(SQLiteError) {
        let upsert = try connection.statement(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        try upsert.bind(key, at: 1)
        try upsert.bind(value, at: 2)
        try upsert.step()
        upsert.reset()
    }

    private static func meta(_ key: String, _ connection: SQLiteConnection) throws(SQLiteError) -> Int64? {
        let select = try connection.statement("SELECT value FROM meta WHERE key = ?1")
        defer { select.reset() }
        try select.bind(key, at: 1)
        return try select.step() ? select.int64(0) : nil
    }
}
