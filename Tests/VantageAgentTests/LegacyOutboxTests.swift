import Foundation
import Logging
import Synchronization
import Testing
import VantageAPI
import VantageCore

@testable import VantageAgent

/// An agent upgraded from a version that kept one outbox file for the control plane (`DATA/outbox.sqlite`, before
/// issue 15) sends what that file holds and then deletes it: the upgrade loses nothing. The file is made here with the
/// exact schema that version created (`git show 071617d:Sources/VantageAgent/Outbox.swift`).
@Suite("Legacy outbox")
struct LegacyOutboxTests {
    static let schema = """
        CREATE TABLE IF NOT EXISTS events (
            sequence INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, time REAL NOT NULL,
            camera_id TEXT, instance_id TEXT, metadata_size INTEGER NOT NULL, snapshot_size INTEGER NOT NULL,
            data TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS snapshots (sequence INTEGER PRIMARY KEY, size INTEGER NOT NULL, bytes BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        """

    /// An old outbox with `count` events; the second has a snapshot.
    static func oldOutbox(count: Int) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appending(path: "legacy-outbox-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appending(path: "outbox.sqlite")
        let db = try SQLiteConnection(path: file.path, setup: ["PRAGMA auto_vacuum = INCREMENTAL"])
        try db.execute(schema)
        for i in 1...count {
            let insert = try db.statement(
                """
                INSERT INTO events (sequence, id, type, time, camera_id, instance_id, metadata_size, snapshot_size,
                    data) VALUES (?1, ?2, 'person.entered', ?3, 'cam-1', 'inst-1', 100, ?4, ?5)
                """)
            try insert.bind(Int64(i), at: 1)
            try insert.bind("old-\(i)", at: 2)
            try insert.bind(800_000_000.0 + Double(i), at: 3)
            try insert.bind(Int64(i == 2 ? 4 : 0), at: 4)
            try insert.bind(#"{"n":\#(i)}"#, at: 5)
            _ = try insert.step()
            insert.reset()
        }
        let snapshot = try db.statement("INSERT INTO snapshots (sequence, size, bytes) VALUES (2, 4, ?1)")
        try snapshot.bind([0xFF, 0xD8, 0xFF, 0xD9], at: 1)
        _ = try snapshot.step()
        return file
    }

    @Test("every event of the old file reaches the server in order, with its snapshot, and the file is deleted")
    func drainsAndDeletes() async throws {
        let file = try Self.oldOutbox(count: 250)
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        let sent = Mutex<[NewEvent]>([])
        let failures = Mutex(1)
        await LegacyOutbox.drain(
            file,
            send: { batch in
                // The server is away once: the batch is sent again, not lost.
                if failures.withLock({ f in
                    defer { f -= 1 }; return f > 0
                }) {
                    throw LinkError.unreachable("down on purpose")
                }
                sent.withLock { $0 += batch }
            }, maxBackoff: .milliseconds(10), logger: Logger(label: "test"))
        let events = sent.withLock { $0 }
        #expect(events.map(\.id) == (1...250).map { "old-\($0)" })
        #expect(events[1].snapshot == Data([0xFF, 0xD8, 0xFF, 0xD9]).base64EncodedString())
        #expect(events[0].snapshot == nil)
        #expect(events[0].data == .object(["n": .number(1)]) && events[0].cameraId == "cam-1")
        #expect(events[0].instanceId == "inst-1" && events[0].type == "person.entered")
        #expect(events[0].time == Date(timeIntervalSinceReferenceDate: 800_000_001))
        #expect(!FileManager.default.fileExists(atPath: file.path), "the old file is deleted once empty")
    }

    @Test("an event the server refuses is dropped, the rest still go")
    func refusedEventDoesNotBlock() async throws {
        let file = try Self.oldOutbox(count: 3)
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        let sent = Mutex<[String]>([])
        await LegacyOutbox.drain(
            file,
            send: { batch in
                if batch.contains(where: { $0.id == "old-2" }) { throw LinkError.rejected(422, "camera moved") }
                sent.withLock { $0 += batch.compactMap(\.id) }
            }, maxBackoff: .milliseconds(10), logger: Logger(label: "test"))
        #expect(sent.withLock { $0 } == ["old-1", "old-3"])
        #expect(!FileManager.default.fileExists(atPath: file.path))
    }

    @Test("no old file: nothing happens")
    func noFile() async {
        let missing = FileManager.default.temporaryDirectory.appending(path: "no-such-\(UUID().uuidString).sqlite")
        await LegacyOutbox.drain(
            missing, send: { _ in Issue.record("nothing to send") }, maxBackoff: .seconds(1),
            logger: Logger(label: "test"))
        #expect(!FileManager.default.fileExists(atPath: missing.path))
    }
}
