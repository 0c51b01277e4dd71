import Foundation
import Synchronization
import VantageCore

// The one durable outbox of an application instance's events: one SQLite file per instance. An event is stored here
// (with its routing: which sinks get its message, its snapshot, its clip) in one transaction before the
// application's publish returns, and each delivery is deleted only when its sink acknowledged it. Every sink reads
// from it: the control plane (under `vantage agent`), the local events file (`vantage run`), MQTT, S3, webhooks.
// Snapshots and clips stay in the local event folder, stored once; the outbox holds their paths, and retention does
// not delete a file the outbox still needs. A snapshot or a clip may come after its event (a code node's snapshot is
// encoded once the event is stored and the application answered; a clip once its post-roll is recorded): the event
// is stored with it pending, and the sinks that need it wait until it is written or has failed. The outbox is
// bounded: past its bound the oldest snapshots go first, then the oldest events, and every loss is counted in the
// file.

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
    /// Since when the snapshot is being written to `snapshotFile` (nil: it is not): sinks wait for it (see
    /// ``SinkOutbox/setSnapshot(sequence:file:error:)``).
    public var snapshotPendingSince: Date?
    /// The snapshot is still being written.
    public var snapshotPending: Bool { snapshotPendingSince != nil }
    /// The object-storage sinks the event's snapshot and clip go to, in order: a message names the first one's objects.
    public var objectSinks: [String]

    public init(
        sequence: Int64, message: JSONValue, snapshotFile: String? = nil, clipFile: String? = nil,
        clipState: ClipState = .none, snapshotPendingSince: Date? = nil, objectSinks: [String] = []
    ) {
        self.sequence = sequence
        self.message = message
        self.snapshotFile = snapshotFile
        self.clipFile = clipFile
        self.clipState = clipState
        self.snapshotPendingSince = snapshotPendingSince
        self.objectSinks = objectSinks
    }

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

/// What an outbox holds and what it has lost, for heartbeats, metrics and `/status`.
public struct OutboxCounters: Sendable, Equatable, Codable {
    /// Events with a delivery still to make.
    public var pendingEvents: Int = 0
    /// Their size as the bound counts it (the message's text, its snapshot file, ``SinkOutbox/eventOverheadBytes``).
    public var pendingBytes: Int64 = 0
    /// Events deleted undelivered to stay within the bound, since the file was created.
    public var droppedEvents: Int64 = 0
    /// Snapshots taken off events (which then go without) to stay within the bound, since the file was created.
    public var droppedSnapshots: Int64 = 0
    /// Events recorded since the file was created, dropped ones included.
    public var recordedEvents: Int64 = 0

    public init() {}

    /// The sum of several outboxes' counters.
    public static func + (a: OutboxCounters, b: OutboxCounters) -> OutboxCounters {
        var sum = a
        sum.pendingEvents += b.pendingEvents
        sum.pendingBytes += b.pendingBytes
        sum.droppedEvents += b.droppedEvents
        sum.droppedSnapshots += b.droppedSnapshots
        sum.recordedEvents += b.recordedEvents
        return sum
    }
}

/// The durable queue every sink reads from (see the file's comment). Thread-safe: every call takes the connection's
/// lock briefly; calls block on disk I/O (an fsync per event), so async code calls them off the cooperative pool or
/// accepts that cost.
public final class SinkOutbox: Sendable {
    /// Bytes counted per event besides its message and snapshot, for the row's own overhead.
    public static let eventOverheadBytes: Int64 = 64

    /// The connection and the running counters, used only under `lock`.
    nonisolated(unsafe) private let connection: SQLiteConnection
    nonisolated(unsafe) private var totals: OutboxCounters
    /// Events added and bytes freed since the last `wal_checkpoint(TRUNCATE)`, to keep the -wal file small.
    nonisolated(unsafe) private var sinceCheckpoint = (writes: 0, bytes: Int64(0))
    /// Whether the connection is at `synchronous = FULL` now (see ``withDatabase(_:durable:_:)``).
    nonisolated(unsafe) private var synchronousFull = true
    private let lock = NSLock()
    public let path: String
    /// The most bytes the pending events may take (nil: unbounded).
    public let limitBytes: Int64?

    /// Opens (creating) the outbox file at `path`, bounded to `limitBytes` when given. Clips and snapshots that were
    /// still being made when the process stopped can no longer be: their events go out without them.
    /// `maxPageCount` caps the file's pages, so that tests can make the "disk" fill up.
    public init(path: String, limitBytes: Int64? = nil, maxPageCount: Int? = nil) throws(OutboxFileError) {
        precondition((limitBytes ?? 1) > 0, "the outbox limit must be positive")
        self.path = path
        self.limitBytes = limitBytes
        do {
            try FileManager.default.createDirectory(
                at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw OutboxFileError(
                path: path, "cannot create the folder of the outbox \(path): \(error.localizedDescription)")
        }
        let db: SQLiteConnection
        do {
            // auto_vacuum must be set before the first table exists; it lets incremental_vacuum give freed pages
            // back, so that a drained outbox shrinks on disk.
            db = try SQLiteConnection(path: path, setup: ["PRAGMA auto_vacuum = INCREMENTAL"])
            try db.execute("PRAGMA synchronous = FULL")
            // SQLite checkpoints every 1,000 pages (4 MiB) by default; for a small outbox that WAL would outgrow the
            // events, so checkpoint sooner and cut the -wal file back after each checkpoint.
            let pageSize = try db.integer("PRAGMA page_size") ?? 4096
            let walPages = min(1000, max(64, (limitBytes ?? (8 << 20)) / 2 / pageSize))
            try db.execute(
                "PRAGMA wal_autocheckpoint = \(walPages); PRAGMA journal_size_limit = \(walPages * pageSize)")
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
                CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                """)
            // Files made before the outbox was bounded lack the sizes: add them (counted as 0 until delivered).
            var columns: Set<String> = []
            let info = try db.statement("PRAGMA table_info(events)")
            while try info.step() { columns.insert(info.text(1) ?? "") }
            info.reset()
            if !columns.contains("size") {
                try db.execute(
                    """
                    ALTER TABLE events ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE events ADD COLUMN snapshot_size INTEGER NOT NULL DEFAULT 0;
                    """)
            }
            // Files made before snapshots could come after their events lack the column (none of theirs is pending):
            // 0, or since when (seconds since 1970) the snapshot is being written.
            if !columns.contains("snapshot_pending") {
                try db.execute("ALTER TABLE events ADD COLUMN snapshot_pending REAL NOT NULL DEFAULT 0")
            }
            try db.execute(
                """
                UPDATE events SET clip_state = 3,
                    message = json_set(message, '$.clip', json_object('error',
                        'the runtime stopped while the clip was being recorded'))
                    WHERE clip_state = 1;
                """)
            // A snapshot still pending will not be written: its event goes without it (and without its snapshot
            // deliveries; an event that had nothing else left to deliver is done).
            // (One transaction: a failure rolls it back when the connection closes.)
            try db.execute(
                """
                BEGIN IMMEDIATE;
                DELETE FROM deliveries WHERE part = 'snapshot'
                    AND seq IN (SELECT seq FROM events WHERE snapshot_pending != 0);
                DELETE FROM objects WHERE seq IN (SELECT seq FROM events
                    WHERE snapshot_pending != 0 AND seq NOT IN (SELECT seq FROM deliveries));
                DELETE FROM events WHERE snapshot_pending != 0 AND seq NOT IN (SELECT seq FROM deliveries);
                UPDATE events SET snapshot = NULL, snapshot_size = 0, snapshot_pending = 0,
                    message = json_set(message, '$.snapshot', json_object('error', '\(Self.stoppedSnapshot)'))
                    WHERE snapshot_pending != 0;
                COMMIT;
                """)
            // After the schema, so that the tables exist whatever the cap (SQLite keeps it at least the file's size).
            if let maxPageCount { try db.execute("PRAGMA max_page_count = \(maxPageCount)") }
            totals = try Self.readCounters(db)
        } catch {
            throw OutboxFileError(path: path, "opening the outbox: \(OutboxFileError.advice(error))")
        }
        connection = db
    }

    /// Pending events and bytes, and what was recorded and dropped since the file was created. Kept in memory.
    public var counters: OutboxCounters { lock.withLock { totals } }

    /// The size the bound counts for an event without its snapshot.
    public static func size(message: String) -> Int64 { eventOverheadBytes + Int64(message.utf8.count) }

    /// Runs `body` with the connection under the lock. A `durable` write is synced to disk before it returns
    /// (`synchronous = FULL`: an event accepted survives a power cut); others (a delivery done, a retry scheduled) are
    /// synced with the next durable one or checkpoint (`NORMAL`): a power cut may undo them, and the delivery is then
    /// made again — at least once, as always — for one fsync less per delivery.
    private func withDatabase<T>(
        _ action: String, durable: Bool = true, _ body: (SQLiteConnection) throws -> T
    ) throws(OutboxFileError) -> T {
        do {
            return try lock.withLock {
                if durable != synchronousFull {
                    try connection.execute(durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
                    synchronousFull = durable
                }
                return try body(connection)
            }
        } catch let error as SQLiteError {
            throw OutboxFileError(path: path, "\(action): \(OutboxFileError.advice(error))")
        } catch let error as OutboxFileError {
            throw error
        } catch {
            throw OutboxFileError(path: path, "\(action): \(error)")
        }
    }

    /// Stores an event and the deliveries it needs, in one transaction (durable when this returns). Answers the
    /// event's sequence. Past the bound it first makes room: the oldest events' snapshots, then this event's own,
    /// then the oldest events, each loss counted. With `snapshotPending`, `snapshotFile` is still being written: the
    /// sinks wait for ``setSnapshot(sequence:file:error:)``, and its size counts from then.
    /// - Throws: ``OutboxFileError``: the disk is full, the file is damaged, or the event's message alone is larger
    ///   than the bound (it is dropped and counted).
    @discardableResult
    public func add(
        message: JSONValue, snapshotFile: String?, snapshotPending: Bool = false, clipPending: Bool,
        objectSinks: [String], deliveries: [(sink: String, part: PendingDelivery.Part)]
    ) throws(OutboxFileError) -> Int64 {
        if Self.simulatedFullDisk {
            throw OutboxFileError(
                path: path,
                "storing an event: the disk holding \(path) is full (database or disk is full, simulated by "
                    + "VANTAGE_TEST_OUTBOX_FULL): free disk space, then retry")
        }
        var text = message.jsonText
        var size = Self.size(message: text)
        var snapshotFile = snapshotFile
        let snapshotPending = snapshotPending && snapshotFile != nil
        var snapshotSize = snapshotPending ? 0 : snapshotFile.map(Self.fileSize) ?? 0
        return try withDatabase("storing an event") { db in
            var next = totals
            next.recordedEvents += 1
            if deliveries.isEmpty {
                // Routed nowhere: only the sequence moves (so that the counts add up).
                try db.transaction {
                    let insert = try db.statement("INSERT INTO events(message) VALUES ('{}')")
                    _ = try insert.step()
                    try Self.run(db, "DELETE FROM events WHERE seq = ?", try db.integer("SELECT last_insert_rowid()")!)
                }
                totals = next
                return next.recordedEvents
            }
            if let limitBytes, size > limitBytes {
                next.droppedEvents += 1
                try db.transaction {
                    let insert = try db.statement("INSERT INTO events(message) VALUES ('{}')")
                    _ = try insert.step()
                    try Self.run(db, "DELETE FROM events WHERE seq = ?", try db.integer("SELECT last_insert_rowid()")!)
                    try Self.setMeta(db, "dropped_events", next.droppedEvents)
                }
                totals = next
                throw OutboxFileError(
                    path: path,
                    "an event of \(size) bytes without its snapshot is larger than the outbox's bound of "
                        + "\(limitBytes) bytes, so it was dropped: raise the bound or make the event's data smaller")
            }
            // Its own snapshot goes to keep the bound: the message says so, as older events' do (and counts a little
            // more).
            func dropOwnSnapshot() {
                snapshotFile = nil
                snapshotSize = 0
                next.droppedSnapshots += 1
                if case .object(var fields) = message {
                    fields["snapshot"] = .object(["error": .string(Self.droppedSnapshot)])
                    text = JSONValue.object(fields).jsonText
                    size = Self.size(message: text)
                }
            }
            let sequence = try db.transaction { () throws -> Int64 in
                if let limitBytes {
                    // A pending snapshot counts nothing yet: it is not dropped here (but may be once written).
                    let ownSnapshot = snapshotFile != nil && !snapshotPending
                    if size + snapshotSize > limitBytes, ownSnapshot { dropOwnSnapshot() }
                    var over = next.pendingBytes + size + snapshotSize - limitBytes
                    if over > 0 {
                        let (freed, count) = try Self.dropOldestSnapshots(db, freeing: over)
                        over -= freed
                        next.pendingBytes -= freed
                        next.droppedSnapshots += Int64(count)
                    }
                    // Images go before metadata: this event's snapshot before any older event.
                    if over > 0, ownSnapshot, snapshotFile != nil {
                        let before = size + snapshotSize
                        dropOwnSnapshot()
                        over -= before - size
                    }
                    if over > 0 {
                        let (freed, count) = try Self.deleteOldestEvents(db, freeing: over)
                        next.pendingBytes -= freed
                        next.pendingEvents -= count
                        next.droppedEvents += Int64(count)
                    }
                }
                let insert = try db.statement(
                    """
                    INSERT INTO events(
                        message, snapshot, clip_state, object_sinks, size, snapshot_size, snapshot_pending)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                    """)
                try insert.bind(text, at: 1)
                try insert.bind(snapshotFile, at: 2)
                try insert.bind(Int64(clipPending ? StoredEvent.ClipState.pending.rawValue : 0), at: 3)
                try insert.bind(JSONValue.array(objectSinks.map(JSONValue.string)).jsonText, at: 4)
                try insert.bind(size, at: 5)
                try insert.bind(snapshotSize, at: 6)
                try insert.bind(snapshotPending ? Date().timeIntervalSince1970 : 0, at: 7)
                _ = try insert.step()
                let seq = try db.integer("SELECT last_insert_rowid()")!
                let add = try db.statement("INSERT OR IGNORE INTO deliveries(seq, sink, part) VALUES (?, ?, ?)")
                for d in deliveries where snapshotFile != nil || d.part != .snapshot {
                    try add.bind(seq, at: 1)
                    try add.bind(d.sink, at: 2)
                    try add.bind(d.part.rawValue, at: 3)
                    _ = try add.step()
                    add.reset()
                }
                if next.droppedEvents != totals.droppedEvents {
                    try Self.setMeta(db, "dropped_events", next.droppedEvents)
                }
                if next.droppedSnapshots != totals.droppedSnapshots {
                    try Self.setMeta(db, "dropped_snapshots", next.droppedSnapshots)
                }
                return seq
            }
            // Committed: only now does the in-memory state move.
            next.pendingEvents += 1
            next.pendingBytes += size + snapshotSize
            next.recordedEvents = sequence
            totals = next
            sinceCheckpoint.writes += 1
            if sinceCheckpoint.writes >= 1000 { checkpoint(db) }
            return sequence
        }
    }

    /// Takes the snapshots off the oldest pending events (as the bound does: images go before metadata; their
    /// messages say so, each drop counted) until their files hold `needed` bytes or none is left, for a full disk.
    /// Answers the snapshot files let go: the caller deletes them (they are no longer in ``filesInUse()``).
    /// - Throws: ``OutboxFileError``: the file cannot be written (on a disk too full even for that).
    public func dropSnapshots(freeing needed: Int64) throws(OutboxFileError) -> [String] {
        try withDatabase("dropping snapshots to make room on the disk") { db in
            // In the order dropOldestSnapshots takes them (the lock keeps any other write out meanwhile).
            var before: [String] = []
            let list = try db.statement(
                "SELECT snapshot FROM events WHERE snapshot IS NOT NULL AND snapshot_pending = 0 ORDER BY seq")
            while try list.step() { before.append(list.text(0) ?? "") }
            list.reset()
            var next = totals
            let dropped = try db.transaction { () throws -> Int in
                let (freed, count) = try Self.dropOldestSnapshots(db, freeing: needed)
                next.pendingBytes -= freed
                next.droppedSnapshots += Int64(count)
                if count > 0 { try Self.setMeta(db, "dropped_snapshots", next.droppedSnapshots) }
                return count
            }
            totals = next
            return Array(before.prefix(dropped))
        }
    }

    /// Fault injection for end-to-end tests: `VANTAGE_TEST_OUTBOX_FULL=1` makes every event fail to be stored as on a
    /// full disk (SQLite's own message, marked as simulated), so that tests can see what applications do then.
    static let simulatedFullDisk = ProcessInfo.processInfo.environment["VANTAGE_TEST_OUTBOX_FULL"] == "1"

    /// What a message says when its snapshot was dropped to keep the bound.
    static let droppedSnapshot = "dropped to keep the outbox within its bound"

    /// What a message says when the process stopped before its pending snapshot was written.
    static let stoppedSnapshot = "the runtime stopped while the snapshot was being written"

    /// Copies the WAL into the file and truncates the -wal file. A failed checkpoint loses nothing (the WAL stays
    /// valid, SQLite's own checkpoints continue): it is tried again later. Called under `lock`.
    private func checkpoint(_ db: SQLiteConnection) {
        // The deletions are committed, so a failure of either loses nothing: the next one tries again.
        try? db.execute("PRAGMA incremental_vacuum")
        guard (try? db.checkpoint()) != nil else { return }
        sinceCheckpoint = (0, 0)
    }

    /// A file's size in bytes; 0 when it cannot be read.
    static func fileSize(_ path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
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

    /// Records the pending snapshot of event `sequence`: written to `file`, or failed with `error`. A written one
    /// counts against the bound from now on; past the bound, older snapshots go first, then this one (counted as
    /// dropped). A snapshot that failed or was dropped takes its snapshot deliveries with it, and the message says
    /// why in `snapshot.error`; the event goes without a picture. Nothing happens when the event is gone or its
    /// snapshot is not pending.
    public func setSnapshot(sequence: Int64, file: String?, error: String?) throws(OutboxFileError) {
        let written = file.map { (path: $0, size: Self.fileSize($0)) }
        try withDatabase("recording a snapshot") { db in
            let pending = try Self.count(
                db, "SELECT count(*) FROM events WHERE seq = ? AND snapshot_pending != 0", sequence)
            guard pending > 0 else { return }
            var next = totals
            var failure = written == nil ? (error ?? "the snapshot could not be written") : nil
            try db.transaction {
                if let written, let limitBytes {
                    let own = try Self.count(db, "SELECT size FROM events WHERE seq = ?", sequence)
                    // A snapshot that alone does not fit goes at once; others make room by taking older ones off.
                    var over = own + written.size > limitBytes ? 1 : next.pendingBytes + written.size - limitBytes
                    if over > 0, own + written.size <= limitBytes {
                        let (freed, count) = try Self.dropOldestSnapshots(db, freeing: over)
                        over -= freed
                        next.pendingBytes -= freed
                        next.droppedSnapshots += Int64(count)
                    }
                    if over > 0 {
                        failure = Self.droppedSnapshot
                        next.droppedSnapshots += 1
                    }
                }
                if let failure {
                    let update = try db.statement(
                        """
                        UPDATE events SET snapshot = NULL, snapshot_size = 0, snapshot_pending = 0,
                            message = json_set(message, '$.snapshot', json_object('error', ?)) WHERE seq = ?
                        """)
                    try update.bind(failure, at: 1)
                    try update.bind(sequence, at: 2)
                    _ = try update.step()
                    try Self.run(db, "DELETE FROM deliveries WHERE seq = ? AND part = 'snapshot'", sequence)
                    if try Self.count(db, "SELECT count(*) FROM deliveries WHERE seq = ?", sequence) == 0 {
                        // Only its snapshot was left to deliver: the event is done.
                        next.pendingBytes -= try Self.count(db, "SELECT size FROM events WHERE seq = ?", sequence)
                        next.pendingEvents -= 1
                        try Self.run(db, "DELETE FROM events WHERE seq = ?", sequence)
                        try Self.run(db, "DELETE FROM objects WHERE seq = ?", sequence)
                    }
                } else if let written {
                    let update = try db.statement(
                        "UPDATE events SET snapshot = ?, snapshot_size = ?, snapshot_pending = 0 WHERE seq = ?")
                    try update.bind(written.path, at: 1)
                    try update.bind(written.size, at: 2)
                    try update.bind(sequence, at: 3)
                    _ = try update.step()
                    next.pendingBytes += written.size
                }
                if next.droppedSnapshots != totals.droppedSnapshots {
                    try Self.setMeta(db, "dropped_snapshots", next.droppedSnapshots)
                }
            }
            totals = next
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

    /// The next deliveries of `sink` in order, up to `limit`, each with the bytes its event's message and snapshot
    /// take (for a batch's bound): what ``head(of:)`` answers, and those after it.
    func heads(of sink: String, limit: Int) throws(OutboxFileError) -> [(
        delivery: PendingDelivery, messageBytes: Int64, snapshotBytes: Int64
    )] {
        try withDatabase("reading the outbox") { db in
            let s = try db.statement(
                """
                SELECT d.seq, d.part, d.attempts, d.not_before, COALESCE(e.size, 0), COALESCE(e.snapshot_size, 0)
                    FROM deliveries d LEFT JOIN events e ON e.seq = d.seq WHERE d.sink = ?
                    ORDER BY d.seq, CASE d.part WHEN 'snapshot' THEN 0 WHEN 'clip' THEN 1 ELSE 2 END LIMIT ?
                """)
            try s.bind(sink, at: 1)
            try s.bind(Int64(limit), at: 2)
            var result: [(delivery: PendingDelivery, messageBytes: Int64, snapshotBytes: Int64)] = []
            result.reserveCapacity(limit)
            while try s.step() {
                let delivery = PendingDelivery(
                    sequence: s.int64(0), sink: sink,
                    part: PendingDelivery.Part(rawValue: s.text(1) ?? "") ?? .message, attempts: Int(s.int64(2)),
                    notBefore: Date(timeIntervalSince1970: s.double(3)))
                result.append((delivery, s.int64(4), s.int64(5)))
            }
            s.reset()
            return result
        }
    }

    /// The event `sequence`, or nil when it is gone.
    public func event(_ sequence: Int64) throws(OutboxFileError) -> StoredEvent? {
        try withDatabase("reading the outbox") { db in
            let s = try db.statement(
                "SELECT message, snapshot, clip, clip_state, object_sinks, snapshot_pending FROM events WHERE seq = ?")
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
                snapshotPendingSince: s.double(5) != 0 ? Date(timeIntervalSince1970: s.double(5)) : nil,
                objectSinks: objectSinks)
        }
    }

    /// Whether any object-storage delivery of event `sequence` is still pending (its message waits for them), those
    /// of `sinks` aside.
    public func hasPendingObjects(_ sequence: Int64, ignoring sinks: Set<String> = []) throws(OutboxFileError) -> Bool {
        try withDatabase("reading the outbox") { db in
            guard !sinks.isEmpty else {
                return try Self.count(
                    db, "SELECT count(*) FROM deliveries WHERE seq = ? AND part != 'message'", sequence) > 0
            }
            let s = try db.statement("SELECT sink FROM deliveries WHERE seq = ? AND part != 'message'")
            try s.bind(sequence, at: 1)
            defer { s.reset() }
            while try s.step() {
                if !sinks.contains(s.text(0) ?? "") { return true }
            }
            return false
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
        try complete([delivery], storedObject: storedObject)
    }

    /// Marks several deliveries done (a batch the sink took at once), in one transaction; see
    /// ``complete(_:storedObject:)``.
    public func complete(_ deliveries: [PendingDelivery]) throws(OutboxFileError) {
        try complete(deliveries, storedObject: nil)
    }

    private func complete(_ deliveries: [PendingDelivery], storedObject: JSONValue?) throws(OutboxFileError) {
        try withDatabase("recording a delivery", durable: false) { db in
            var finished: [Int64] = []
            try db.transaction {
                for delivery in deliveries {
                    // Looked up each time (the statement cache may be emptied by the statements below).
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
                        let size = try Self.count(
                            db, "SELECT size + snapshot_size FROM events WHERE seq = ?", seq)
                        try Self.run(db, "DELETE FROM events WHERE seq = ?", seq)
                        if db.changes > 0 {
                            finished.append(size)
                        }
                        try Self.run(db, "DELETE FROM objects WHERE seq = ?", seq)
                    }
                }
            }
            guard !finished.isEmpty else { return }
            let bytes = finished.reduce(0, +)
            totals.pendingEvents -= finished.count
            totals.pendingBytes -= bytes
            sinceCheckpoint.bytes += bytes
            // A drained backlog of some size, or much deleted: give the freed pages back to the disk and shrink
            // the -wal file. Not after every event of a quiet outbox (each is a write and an fsync on the
            // delivery path); SQLite's own checkpoints keep the WAL bounded meanwhile.
            if sinceCheckpoint.bytes >= 4 << 20 || (totals.pendingEvents == 0 && sinceCheckpoint.bytes >= 256 << 10) {
                checkpoint(db)
            }
        }
    }

    /// Records a failed attempt: the delivery waits until `retryAt`, and `error` is kept for status.
    public func fail(_ delivery: PendingDelivery, error: String, retryAt: Date) throws(OutboxFileError) {
        try withDatabase("recording a failed delivery", durable: false) { db in
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
