import Foundation
import Logging
import Synchronization
import Testing
import VantageCore

@testable import VantageOutputs

/// An event stored with its snapshot still being written (a code node's: the application is answered before the JPEG
/// is encoded): no sink that would carry or name the snapshot gets the event before the snapshot is written, then
/// every one gets it with the snapshot; a snapshot that fails, or that a stopped runtime never wrote, leaves the event
/// without a picture and says why.
@Suite("Pending snapshots")
struct PendingSnapshotTests {
    /// A webhook and an object store that record what they were given.
    final class RecordingSink: MessageSink, ObjectSink {
        let received = Mutex<[JSONValue]>([])
        let stored = Mutex<[String]>([])
        func send(_ body: [UInt8], event: JSONValue) async throws(SinkError) {
            received.withLock { $0.append(JSONValue(parsing: String(decoding: body, as: UTF8.self)) ?? .null) }
        }
        func store(file: URL, event: JSONValue, part: PendingDelivery.Part) async throws(SinkError) -> JSONValue {
            stored.withLock { $0.append(file.path) }
            return .object(["key": .string("\(event["id"]?.stringValue ?? "").\(part.rawValue)"), "url": .string("u")])
        }
        func shutdown() async {}
        var count: Int { received.withLock { $0.count } + stored.withLock { $0.count } }
    }

    struct Fixture {
        let directory: URL
        let context = EventContext(device: "box", instance: "inst-1", application: "people")
        let store = RecordingSink()
        let hook = RecordingSink()
        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "pending-snapshot-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        var eventsFile: URL { directory.appendingPathComponent("events.jsonl") }
        var outboxPath: String { directory.appendingPathComponent("outbox.sqlite").path }
        /// Where the snapshot of `name` goes (not written yet).
        func snapshotPath(_ name: String) -> String { directory.appendingPathComponent("snapshots/\(name).jpg").path }
        /// Writes the snapshot of `name`, `bytes` long.
        func writeSnapshot(_ name: String, bytes: Int = 1024) throws -> String {
            let url = URL(fileURLWithPath: snapshotPath(name))
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data([0xFF, 0xD8] + [UInt8](repeating: 0x42, count: bytes - 4) + [0xFF, 0xD9]).write(to: url)
            return url.path
        }
        /// A pipeline with the events file, an object store and a webhook that take every event.
        func pipeline(snapshotTimeout: Double = 60) throws -> EventPipeline {
            let json = #"""
                {"sinks": {"store": {"type": "s3", "bucket": "b", "accessKeyId": "k", "secretAccessKey": "s"},
                           "hook": {"type": "webhook", "url": "http://x/hook"}}}
                """#
            return EventPipeline(
                configuration: try OutputsConfiguration(json: Data(json.utf8)), context: context,
                outbox: try SinkOutbox(path: outboxPath), sinks: ["store": .objects(store), "hook": .messages(hook)],
                builtIn: [EventsFileSink.name: .stored(try EventsFileSink(file: eventsFile))],
                logger: Logger(label: "test"), initialBackoff: 0.02, maxBackoff: 0.1, snapshotTimeout: snapshotTimeout)
        }
        /// The events file's lines, each parsed (none when it is empty or missing).
        func lines() -> [JSONValue] {
            let text = (try? String(contentsOf: eventsFile, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").map { JSONValue(parsing: String($0)) ?? .null }
        }
        func remove() { try? FileManager.default.removeItem(at: directory) }
    }

    static func event(_ n: Int, snapshot: String?, pending: Bool = true) -> OutgoingEvent {
        OutgoingEvent(
            id: "e\(n)", type: "defect", camera: "cam-1", source: "node:inspector",
            payload: .object(["n": .number(Double(n))]), snapshotFile: snapshot, snapshotPending: pending)
    }

    static func waitUntil(_ seconds: Double = 20, _ condition: () -> Bool) async {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() && Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    }

    @Test("no sink gets the event before its snapshot is written; then each gets it with the snapshot, in order")
    func deliveredOnceWritten() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let pipeline = try f.pipeline()
        pipeline.start()
        let recorded = try pipeline.record(Self.event(1, snapshot: f.snapshotPath("one")))
        // An event recorded after it, without a snapshot, waits too: each sink delivers in order.
        try pipeline.record(Self.event(2, snapshot: nil, pending: false))
        let sequence = try #require(recorded.sequence)
        try await Task.sleep(for: .milliseconds(500))
        #expect(f.lines().isEmpty, "the events file got the event before its snapshot was written")
        #expect(f.hook.count == 0, "the webhook got the message before its snapshot was written")
        #expect(f.store.count == 0, "the object store was given a snapshot not written yet")
        #expect(try pipeline.outbox.event(sequence)?.snapshotPending == true)

        let file = try f.writeSnapshot("one", bytes: 2048)
        try pipeline.snapshotFinished(sequence: sequence, file: file, error: nil)
        await Self.waitUntil { f.lines().count == 2 && f.hook.received.withLock { $0.count } == 2 }
        await pipeline.drain(EventsFileSink.name, timeout: .seconds(20))
        await pipeline.stop()

        let lines = f.lines()
        #expect(lines.compactMap { $0["id"]?.stringValue } == ["e1", "e2"])
        #expect(lines.first?["snapshot"]?["file"]?.stringValue == file)
        #expect(f.store.stored.withLock { $0 } == [file])
        let messages = f.hook.received.withLock { $0 }
        #expect(messages.compactMap { $0["id"]?.stringValue } == ["e1", "e2"])
        #expect(messages.first?["snapshot"]?["key"]?.stringValue == "e1.snapshot")
        #expect(messages.first?["snapshot"]?["error"] == nil)
        #expect(try pipeline.outbox.backlog().isEmpty)
        #expect(pipeline.outbox.counters.pendingBytes == 0)
    }

    @Test("a snapshot that could not be written: the event goes without a picture and its message says why")
    func failedSnapshot() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let pipeline = try f.pipeline()
        pipeline.start()
        let recorded = try pipeline.record(Self.event(1, snapshot: f.snapshotPath("one")))
        try await Task.sleep(for: .milliseconds(300))
        #expect(f.lines().isEmpty && f.hook.count == 0)
        try pipeline.snapshotFinished(
            sequence: try #require(recorded.sequence), file: nil, error: "cannot write the snapshot: disk full")
        await Self.waitUntil { f.lines().count == 1 && f.hook.received.withLock { $0.count } == 1 }
        await pipeline.stop()

        let line = try #require(f.lines().first)
        #expect(line["snapshot"] == .object(["error": .string("cannot write the snapshot: disk full")]))
        let message = try #require(f.hook.received.withLock { $0.first })
        #expect(message["snapshot"] == .object(["error": .string("cannot write the snapshot: disk full")]))
        #expect(f.store.stored.withLock { $0 }.isEmpty, "a snapshot that failed was uploaded")
        #expect(try pipeline.outbox.backlog().isEmpty)
        #expect(pipeline.outbox.counters.pendingEvents == 0)
        #expect(pipeline.outbox.counters.pendingBytes == 0)
    }

    @Test("a snapshot that never comes (its runtime worker ended) fails after the timeout; the event still goes")
    func snapshotThatNeverComes() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let pipeline = try f.pipeline(snapshotTimeout: 1)
        pipeline.start()
        try pipeline.record(Self.event(1, snapshot: f.snapshotPath("one")))
        try pipeline.record(Self.event(2, snapshot: nil, pending: false))
        try await Task.sleep(for: .milliseconds(500))
        #expect(f.lines().isEmpty, "the events file did not wait for the snapshot")
        await Self.waitUntil { f.lines().count == 2 && f.hook.received.withLock { $0.count } == 2 }
        await pipeline.stop()
        let lines = f.lines()
        #expect(lines.compactMap { $0["id"]?.stringValue } == ["e1", "e2"])
        #expect(lines.first?["snapshot"]?["error"]?.stringValue == "the snapshot was not written within 1 s")
        #expect(lines.first?["snapshot"]?["file"] == nil)
        #expect(f.store.stored.withLock { $0 }.isEmpty)
        #expect(try pipeline.outbox.backlog().isEmpty)
    }

    @Test("a snapshot still pending when the runtime stopped fails on reopening: the event goes without it")
    func pendingAtReopenFails() throws {
        let f = try Fixture()
        defer { f.remove() }
        let withMessage: Int64
        let onlySnapshot: Int64
        do {
            let outbox = try SinkOutbox(path: f.outboxPath, limitBytes: 1 << 20)
            withMessage = try outbox.add(
                message: Self.event(1, snapshot: nil).message(context: f.context), snapshotFile: f.snapshotPath("one"),
                snapshotPending: true, clipPending: false, objectSinks: ["store"],
                deliveries: [("store", .snapshot), ("hook", .message)])
            // Routed to the object store only: nothing is left of it once its snapshot is gone.
            onlySnapshot = try outbox.add(
                message: Self.event(2, snapshot: nil).message(context: f.context), snapshotFile: f.snapshotPath("two"),
                snapshotPending: true, clipPending: false, objectSinks: ["store"], deliveries: [("store", .snapshot)])
            #expect(try outbox.event(withMessage)?.snapshotPending == true)
            #expect(outbox.counters.pendingEvents == 2)
        }

        let reopened = try SinkOutbox(path: f.outboxPath, limitBytes: 1 << 20)
        let event = try #require(try reopened.event(withMessage))
        #expect(!event.snapshotPending)
        #expect(event.snapshotFile == nil)
        #expect(
            event.message["snapshot"]
                == .object(["error": .string("the runtime stopped while the snapshot was being written")]))
        #expect(try reopened.head(of: "store") == nil, "the snapshot that was never written is still to upload")
        #expect(try reopened.head(of: "hook")?.sequence == withMessage)
        #expect(try reopened.event(onlySnapshot) == nil)
        #expect(reopened.counters.pendingEvents == 1)
        // Finishing it now (a worker that outlived its runtime's outbox) changes nothing.
        try reopened.setSnapshot(sequence: withMessage, file: try f.writeSnapshot("one"), error: nil)
        #expect(try reopened.event(withMessage)?.snapshotFile == nil)
    }

    @Test("a snapshot written past the bound takes older snapshots off first, then goes itself, each counted")
    func writtenPastTheBound() throws {
        let f = try Fixture()
        defer { f.remove() }
        let limit: Int64 = 8 << 10
        let outbox = try SinkOutbox(path: f.outboxPath, limitBytes: limit)
        let older = try outbox.add(
            message: .object(["id": .string("e0")]), snapshotFile: try f.writeSnapshot("zero", bytes: 3000),
            clipPending: false, objectSinks: ["store"], deliveries: [("store", .snapshot), ("hook", .message)])
        let pending = try outbox.add(
            message: .object(["id": .string("e1")]), snapshotFile: f.snapshotPath("one"), snapshotPending: true,
            clipPending: false, objectSinks: ["store"], deliveries: [("store", .snapshot), ("hook", .message)])
        // A pending snapshot counts nothing yet, and the bound does not take it off another event's account.
        #expect(outbox.counters.droppedSnapshots == 0)
        #expect(try outbox.event(pending)?.snapshotPending == true)

        let before = outbox.counters.pendingBytes
        #expect(before == 3000 + 2 * SinkOutbox.size(message: JSONValue.object(["id": .string("e0")]).jsonText))
        try outbox.setSnapshot(sequence: pending, file: try f.writeSnapshot("one", bytes: 6000), error: nil)
        #expect(try outbox.event(older)?.snapshotFile == nil, "the older snapshot did not go first")
        #expect(try outbox.event(older)?.message["snapshot"]?["error"]?.stringValue == SinkOutbox.droppedSnapshot)
        #expect(try outbox.event(pending)?.snapshotFile == f.snapshotPath("one"))
        #expect(try outbox.event(pending)?.snapshotPending == false)
        #expect(outbox.counters.droppedSnapshots == 1)
        #expect(outbox.counters.pendingBytes == before - 3000 + 6000, "the written snapshot is not counted")

        // One that alone exceeds the bound goes at once, and takes nothing else off.
        let third = try outbox.add(
            message: .object(["id": .string("e2")]), snapshotFile: f.snapshotPath("two"), snapshotPending: true,
            clipPending: false, objectSinks: ["store"], deliveries: [("store", .snapshot), ("hook", .message)])
        let beforeThird = outbox.counters.pendingBytes
        try outbox.setSnapshot(sequence: third, file: try f.writeSnapshot("two", bytes: 9000), error: nil)
        let event = try #require(try outbox.event(third))
        #expect(event.snapshotFile == nil && !event.snapshotPending)
        #expect(event.message["snapshot"]?["error"]?.stringValue == SinkOutbox.droppedSnapshot)
        #expect(try outbox.event(pending)?.snapshotFile == f.snapshotPath("one"))
        #expect(outbox.counters.pendingBytes == beforeThird)
        #expect(outbox.counters.droppedSnapshots == 2)
        // Its snapshot delivery is gone: the store's next after the second event's snapshot is nothing of it.
        try outbox.complete(try #require(try outbox.head(of: "store")))
        #expect(try outbox.head(of: "store") == nil)
    }

    @Test("an outbox file made before snapshots could be pending opens and takes pending snapshots")
    func boundedSchemaMigrates() throws {
        let f = try Fixture()
        defer { f.remove() }
        do {
            let old = try SQLiteConnection(path: f.outboxPath)
            try old.execute(
                """
                CREATE TABLE events(
                    seq INTEGER PRIMARY KEY AUTOINCREMENT, message TEXT NOT NULL, snapshot TEXT, clip TEXT,
                    clip_state INTEGER NOT NULL DEFAULT 0, object_sinks TEXT NOT NULL DEFAULT '[]',
                    size INTEGER NOT NULL DEFAULT 0, snapshot_size INTEGER NOT NULL DEFAULT 0);
                CREATE TABLE deliveries(
                    seq INTEGER NOT NULL, sink TEXT NOT NULL, part TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                    not_before REAL NOT NULL DEFAULT 0, error TEXT, PRIMARY KEY(sink, seq, part));
                INSERT INTO events(message, snapshot, size, snapshot_size) VALUES ('{"id":"e0"}', '/x.jpg', 75, 10);
                INSERT INTO deliveries(seq, sink, part) VALUES (1, 'hook', 'message');
                """)
        }
        let outbox = try SinkOutbox(path: f.outboxPath)
        let old = try #require(try outbox.event(1))
        #expect(!old.snapshotPending && old.snapshotFile == "/x.jpg")
        #expect(outbox.counters.pendingBytes == 85)
        let sequence = try outbox.add(
            message: .object(["id": .string("e1")]), snapshotFile: f.snapshotPath("one"), snapshotPending: true,
            clipPending: false, objectSinks: [], deliveries: [("hook", .message)])
        #expect(try outbox.event(sequence)?.snapshotPending == true)
    }
}
