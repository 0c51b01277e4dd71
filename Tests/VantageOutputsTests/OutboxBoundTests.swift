import Foundation
import Logging
import Synchronization
import Testing
import VantageCore

@testable import VantageOutputs

/// The one durable outbox of an instance's events, at its bound and at its failures: what is kept, what is dropped
/// first, what is counted, and what the user is told. (The pipeline's routing and delivery have their own tests.)
@Suite("Outbox bound")
struct OutboxBoundTests {
    /// A fresh folder under the temporary directory, removed after `body`.
    private func withFolder<T>(_ body: (URL) throws -> T) throws -> T {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "outbox-bound-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        return try body(folder)
    }

    /// The object store that takes snapshots, and the webhook that takes messages.
    private static let store = "store"
    private static let hook = "hook"

    private static let time = Date(timeIntervalSinceReferenceDate: 800_000_000.123_456)

    /// The message of event `index`, as the pipeline makes it.
    private static func message(_ index: Int, camera: String? = "cam-1", payload: JSONValue? = nil) -> JSONValue {
        OutgoingEvent(
            id: "e\(index)", type: "person.entered", time: time.addingTimeInterval(Double(index)), camera: camera,
            source: "node:counter", payload: payload ?? .object(["n": .number(Double(index))])
        ).message(context: EventContext(device: "box", instance: "inst-1", application: "people"))
    }

    /// Writes a JPEG-ish snapshot file of `bytes` bytes for event `index` in `folder`.
    private static func snapshot(_ folder: URL, _ index: Int, bytes: Int) throws -> String {
        let file = folder.appendingPathComponent("snapshots/\(index).jpg")
        try FileManager.default.createDirectory(
            at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        var data = Data([0xFF, 0xD8, 0xFF, 0xE0])
        data.append(Data(repeating: UInt8(truncatingIfNeeded: index), count: max(0, bytes - 6)))
        data.append(contentsOf: [0xFF, 0xD9])
        try data.prefix(bytes).write(to: file)
        return file.path
    }

    /// Stores event `index`: its message for the webhook and, with a snapshot, the snapshot for the object store.
    @discardableResult
    private static func add(
        _ outbox: SinkOutbox, _ index: Int, camera: String? = "cam-1", payload: JSONValue? = nil,
        snapshot: String? = nil
    ) throws -> Int64 {
        var deliveries: [(sink: String, part: PendingDelivery.Part)] = []
        if snapshot != nil { deliveries.append((store, .snapshot)) }
        deliveries.append((hook, .message))
        return try outbox.add(
            message: message(index, camera: camera, payload: payload), snapshotFile: snapshot, clipPending: false,
            objectSinks: snapshot != nil ? [store] : [], deliveries: deliveries)
    }

    /// Completes the next `count` deliveries of every sink (all of them when nil), as sinks that took them would.
    private static func deliver(_ outbox: SinkOutbox, count: Int? = nil) throws {
        for sink in [store, hook] {
            var done = 0
            while done < count ?? .max, let head = try outbox.head(of: sink) {
                try outbox.complete(head)
                done += 1
            }
        }
    }

    /// The size of an outbox file plus its -wal file.
    private static func fileBytes(_ file: URL) -> Int64 {
        [file.path, file.path + "-wal"].reduce(0) { $0 + size(of: $1) }
    }

    /// The outbox file's and its -wal file's sizes, for a failed expectation.
    private static func sizes(_ file: URL) -> Comment {
        "the file holds \(size(of: file.path)) bytes and its -wal file \(size(of: file.path + "-wal"))"
    }

    private static func size(of path: String) -> Int64 {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        return (attributes?[.size] as? NSNumber)?.int64Value ?? 0
    }

    @Test("events survive closing and reopening, in order, and sequences are never reused")
    func durableAcrossReopen() throws {
        try withFolder { folder in
            let file = folder.appendingPathComponent("state/outbox.sqlite")
            let snapshot = try Self.snapshot(folder, 0, bytes: 2048)
            var stored: [Int64] = []
            var expected: [Int64: JSONValue] = [:]
            do {
                let outbox = try SinkOutbox(path: file.path, limitBytes: 1 << 20)
                stored.append(try Self.add(outbox, 0, snapshot: snapshot))
                stored.append(try Self.add(outbox, 1, camera: "cam-2"))
                stored.append(try Self.add(outbox, 2, camera: nil))
                stored.append(try Self.add(outbox, 3, payload: .object(["label": .string("häagen-dazs ☕")])))
                #expect(stored == stored.sorted() && Set(stored).count == stored.count)
                expected = Dictionary(uniqueKeysWithValues: zip(stored, [0, 1, 2, 3]).map { ($0, Self.message($1)) })
                expected[stored[1]] = Self.message(1, camera: "cam-2")
                expected[stored[2]] = Self.message(2, camera: nil)
                expected[stored[3]] = Self.message(3, payload: .object(["label": .string("häagen-dazs ☕")]))
            }

            let reopened = try SinkOutbox(path: file.path, limitBytes: 1 << 20)
            for sequence in stored {
                let event = try #require(try reopened.event(sequence))
                #expect(event.message == expected[sequence])
                #expect(event.snapshotFile == (sequence == stored[0] ? snapshot : nil))
            }
            #expect(try reopened.head(of: Self.hook)?.sequence == stored[0])
            #expect(try reopened.head(of: Self.store)?.sequence == stored[0])
            let counters = reopened.counters
            #expect(counters.pendingEvents == stored.count)
            #expect(
                counters.pendingBytes
                    == stored.reduce(2048) { $0 + SinkOutbox.size(message: expected[$1]!.jsonText) })
            #expect(counters.recordedEvents == 4)
            let later = try Self.add(reopened, 4)
            #expect(later > stored.last!)

            // Even with everything delivered, a reopened outbox never reuses a sequence.
            try Self.deliver(reopened)
            #expect(try reopened.event(later) == nil)
            #expect(reopened.counters.pendingEvents == 0 && reopened.counters.pendingBytes == 0)
            let afterDrain = try SinkOutbox(path: file.path, limitBytes: 1 << 20)
            #expect(afterDrain.counters.pendingEvents == 0)
            #expect(afterDrain.counters.pendingBytes == 0)
            #expect(afterDrain.counters.recordedEvents == 5)
            #expect(try Self.add(afterDrain, 5) > later)
        }
    }

    @Test("drop counters are persisted in the file")
    func countersSurviveReopen() throws {
        try withFolder { folder in
            let file = folder.appendingPathComponent("outbox.sqlite")
            let counters: OutboxCounters
            do {
                let outbox = try SinkOutbox(path: file.path, limitBytes: 8 * 1024)
                for index in 0..<20 {
                    try Self.add(outbox, index, snapshot: try Self.snapshot(folder, index, bytes: 1000))
                }
                counters = outbox.counters
                #expect(counters.droppedSnapshots > 0)
                #expect(counters.recordedEvents == 20)
            }
            #expect(try SinkOutbox(path: file.path, limitBytes: 8 * 1024).counters == counters)
        }
    }

    @Test("completing deliveries deletes exactly the events that have none left, and completing again changes nothing")
    func completeDeletesExactly() throws {
        try withFolder { folder in
            let outbox = try SinkOutbox(path: folder.appendingPathComponent("outbox.sqlite").path, limitBytes: 1 << 20)
            let sequences = try (0..<10).map {
                try Self.add(outbox, $0, snapshot: try Self.snapshot(folder, $0, bytes: 100))
            }
            let done = [sequences[2], sequences[5], sequences[9]]
            func deliveries(_ sequence: Int64) -> [PendingDelivery] {
                [
                    PendingDelivery(
                        sequence: sequence, sink: Self.store, part: .snapshot, attempts: 0, notBefore: Date()),
                    PendingDelivery(
                        sequence: sequence, sink: Self.hook, part: .message, attempts: 0, notBefore: Date()),
                ]
            }
            // Only the snapshot of event 0 is taken: the event stays for its message.
            try outbox.complete(deliveries(sequences[0])[0])
            for sequence in done + [999] {
                for delivery in deliveries(sequence) { try outbox.complete(delivery) }
            }

            let left = sequences.filter { !done.contains($0) }
            #expect(try sequences.filter { try outbox.event($0) != nil } == left)
            #expect(try outbox.head(of: Self.store)?.sequence == sequences[1])
            #expect(try outbox.head(of: Self.hook)?.sequence == sequences[0])
            let counters = outbox.counters
            #expect(counters.pendingEvents == 7)
            #expect(
                counters.pendingBytes
                    == left.reduce(0) { $0 + 100 + SinkOutbox.size(message: Self.message(Int($1 - 1)).jsonText) })
            #expect(counters.droppedEvents == 0 && counters.droppedSnapshots == 0)
            #expect(counters.recordedEvents == 10)

            // A repeated completion (a sink's answer handled twice) changes nothing.
            for sequence in done { for delivery in deliveries(sequence) { try outbox.complete(delivery) } }
            #expect(outbox.counters == counters)
            #expect(try sequences.filter { try outbox.event($0) != nil } == left)
            #expect(try SinkOutbox(path: outbox.path, limitBytes: 1 << 20).counters == counters)
        }
    }

    @Test("a backlog far beyond the bound sheds the oldest snapshots first and counts every drop")
    func overflowDropsOldestSnapshotsFirst() throws {
        try withFolder { folder in
            let file = folder.appendingPathComponent("outbox.sqlite")
            let limit: Int64 = 1 << 20
            let outbox = try SinkOutbox(path: file.path, limitBytes: limit)
            let added = 2000
            var sequences: [Int64] = []
            var snapshots: [String] = []
            for index in 0..<added {
                snapshots.append(try Self.snapshot(folder, index, bytes: 10 * 1024))
                sequences.append(try Self.add(outbox, index, camera: "cam-\(index % 3)", snapshot: snapshots[index]))
                let counters = outbox.counters
                #expect(counters.pendingBytes <= limit)
                // The metadata of 2,000 events fits the bound: no event is lost while snapshots can go.
                #expect(counters.droppedEvents == 0)
            }

            let counters = outbox.counters
            #expect(counters.pendingEvents == added)
            #expect(counters.recordedEvents == Int64(added))
            let events = try sequences.map { try #require(try outbox.event($0)) }
            let kept = events.filter { $0.snapshotFile != nil }
            // The newest events keep their own snapshots; all older ones lost theirs, and each loss is counted.
            #expect(kept.count > 10)
            #expect(kept.map(\.sequence) == Array(sequences.suffix(kept.count)))
            #expect(kept.map(\.snapshotFile) == Array(snapshots.suffix(kept.count)))
            #expect(counters.droppedSnapshots == Int64(added - kept.count))
            // An event without its snapshot says why, and no longer waits for the object store.
            for event in events.prefix(added - kept.count) {
                #expect(event.message["snapshot"]?["error"]?.stringValue?.contains("bound") == true)
                #expect(event.message["id"] == Self.message(Int(event.sequence - sequences[0]))["id"])
            }
            #expect(try outbox.head(of: Self.store)?.sequence == kept.first?.sequence)
            let backlog = try outbox.backlog()
            #expect(backlog.first { $0.sink == Self.store }?.pending == kept.count)
            #expect(backlog.first { $0.sink == Self.hook }?.pending == added)
            #expect(
                counters.pendingBytes
                    == (0..<added).reduce(Int64(kept.count) * 10 * 1024) {
                        $0 + SinkOutbox.size(message: Self.message($1, camera: "cam-\($1 % 3)").jsonText)
                    }
            )
            #expect(Self.fileBytes(file) < 4 * limit, Self.sizes(file))
        }
    }

    @Test("when the metadata alone fills the bound, the oldest events are deleted and counted")
    func overflowDeletesOldestEventsLast() throws {
        try withFolder { folder in
            let file = folder.appendingPathComponent("outbox.sqlite")
            let limit: Int64 = 1 << 20
            let outbox = try SinkOutbox(path: file.path, limitBytes: limit)
            let payload = JSONValue.object(["detail": .string(String(repeating: "x", count: 4000))])
            let added = 2000
            var sequences: [Int64] = []
            for index in 0..<added {
                let before = outbox.counters
                let snapshot = try Self.snapshot(folder, index, bytes: 10 * 1024)
                let sequence = try Self.add(outbox, index, payload: payload, snapshot: snapshot)
                sequences.append(sequence)
                let after = outbox.counters
                #expect(after.pendingBytes <= limit)
                #expect(after.pendingEvents + Int(after.droppedEvents) == index + 1)
                #expect(after.recordedEvents == Int64(index + 1))
                if after.droppedEvents > before.droppedEvents {
                    // Metadata goes only when no snapshot is left to drop: this event lost its own as well.
                    #expect(try outbox.event(sequence)?.snapshotFile == nil)
                    if before.droppedEvents == 0 {
                        let left = try sequences.compactMap { try outbox.event($0) }
                        #expect(left.allSatisfy { $0.snapshotFile == nil })
                        #expect(after.droppedSnapshots == Int64(index + 1))
                    }
                }
            }

            let counters = outbox.counters
            #expect(counters.droppedEvents > 0)
            #expect(counters.pendingEvents + Int(counters.droppedEvents) == added)
            // What is left is the newest events, without a gap, each still waiting for its webhook.
            let left = try sequences.filter { try outbox.event($0) != nil }
            #expect(left.count == counters.pendingEvents)
            #expect(left == Array(sequences.suffix(left.count)))
            #expect(try outbox.head(of: Self.hook)?.sequence == left.first)
            #expect(try outbox.backlog().first { $0.sink == Self.hook }?.pending == left.count)
            #expect(Self.fileBytes(file) < 4 * limit, Self.sizes(file))

            // Draining the backlog gives the space back to the disk.
            try Self.deliver(outbox)
            #expect(outbox.counters.pendingEvents == 0)
            #expect(outbox.counters.pendingBytes == 0)
            #expect(Self.fileBytes(file) < limit / 2, Self.sizes(file))
        }
    }

    @Test("an event whose snapshot alone exceeds the bound keeps its metadata and loses the snapshot")
    func oversizedSnapshotIsDropped() throws {
        try withFolder { folder in
            let file = folder.appendingPathComponent("outbox.sqlite")
            let outbox = try SinkOutbox(path: file.path, limitBytes: 4096)
            let sequence = try Self.add(outbox, 0, snapshot: try Self.snapshot(folder, 0, bytes: 8192))
            let event = try #require(try outbox.event(sequence))
            #expect(event.snapshotFile == nil)
            #expect(event.message["id"] == Self.message(0)["id"])
            #expect(try outbox.head(of: Self.hook)?.sequence == sequence)
            #expect(try outbox.head(of: Self.store) == nil)
            let counters = outbox.counters
            #expect(counters.droppedSnapshots == 1)
            #expect(counters.droppedEvents == 0)
            // Its message says where the snapshot went, and counts with that note.
            #expect(event.message["snapshot"]?["error"]?.stringValue?.contains("outbox") == true)
            #expect(counters.pendingBytes == SinkOutbox.size(message: event.message.jsonText))

            // Metadata alone over the bound cannot be kept: the add fails, saying so, and the loss is counted.
            let error = try #require(throws: OutboxFileError.self) {
                try Self.add(outbox, 1, payload: .string(String(repeating: "y", count: 5000)))
            }
            #expect(error.path == file.path)
            #expect(error.message.contains("larger than the outbox's bound"))
            #expect(error.message.contains("raise the bound"))
            let after = outbox.counters
            #expect(after.droppedEvents == 1)
            #expect(after.pendingEvents == 1)
            #expect(after.recordedEvents == 2)
            #expect(try SinkOutbox(path: file.path, limitBytes: 4096).counters == after)
            // Its sequence stays unused: the gap shows where the event was lost.
            #expect(try Self.add(outbox, 2) == sequence + 2)
        }
    }

    @Test("a damaged outbox file gives an error naming it and saying to move it aside")
    func damagedFile() throws {
        try withFolder { folder in
            let file = folder.appendingPathComponent("outbox.sqlite")
            let garbage = (0..<65536).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            try Data(garbage).write(to: file)

            let error = try #require(throws: OutboxFileError.self) {
                try SinkOutbox(path: file.path, limitBytes: 1 << 20)
            }
            #expect(error.path == file.path)
            #expect(error.message.contains(file.path))
            #expect(error.message.contains("damaged"))
            #expect(error.message.contains("move it aside"))

            // Moved aside as the message says, a new, empty outbox starts.
            try FileManager.default.moveItem(at: file, to: file.appendingPathExtension("damaged"))
            #expect(try SinkOutbox(path: file.path, limitBytes: 1 << 20).counters == OutboxCounters())
        }
    }

    @Test("a folder that cannot be created gives an error naming the outbox file")
    func unwritableFolder() throws {
        try withFolder { folder in
            // A regular file where the folder should be: fails even for root, unlike permissions.
            let blocker = folder.appendingPathComponent("state")
            try Data("not a folder".utf8).write(to: blocker)
            let file = blocker.appendingPathComponent("outbox.sqlite")

            let error = try #require(throws: OutboxFileError.self) {
                try SinkOutbox(path: file.path, limitBytes: 1 << 20)
            }
            #expect(error.path == file.path)
            #expect(error.message.contains(file.path))
        }
    }

    @Test("a full disk fails the add with an error saying to free disk space, and keeps what was stored")
    func diskFull() throws {
        try withFolder { folder in
            let file = folder.appendingPathComponent("outbox.sqlite")
            // 64 pages of 4 KiB: the "disk" fills long before the outbox's own bound.
            let outbox = try SinkOutbox(path: file.path, limitBytes: 1 << 30, maxPageCount: 64)
            let payload = JSONValue.object(["detail": .string(String(repeating: "z", count: 2000))])
            var stored: [Int64] = []
            var failure: OutboxFileError?
            for index in 0..<1000 {
                do {
                    let snapshot = try Self.snapshot(folder, index, bytes: 10 * 1024)
                    stored.append(try Self.add(outbox, index, payload: payload, snapshot: snapshot))
                } catch let error as OutboxFileError {
                    failure = error
                    break
                }
            }
            let error = try #require(failure)
            #expect(stored.count > 10)
            #expect(error.path == file.path)
            #expect(error.message.contains(file.path))
            #expect(error.message.contains("free disk space"))
            // The failed add stored nothing; everything before it is intact.
            let counters = outbox.counters
            #expect(counters.pendingEvents == stored.count)
            #expect(counters.recordedEvents == Int64(stored.count))
            #expect(counters.droppedEvents == 0 && counters.droppedSnapshots == 0)
            #expect(try stored.allSatisfy { try outbox.event($0)?.snapshotFile != nil })
            #expect(try outbox.event(stored.last! + 1) == nil)
            #expect(try outbox.backlog().map(\.pending) == [stored.count, stored.count])
            #expect(try SinkOutbox(path: file.path, limitBytes: 1 << 30).counters == counters)

            // Once sinks have taken a few, there is room again.
            try Self.deliver(outbox, count: 5)
            #expect(outbox.counters.pendingEvents == stored.count - 5)
            let snapshot = try Self.snapshot(folder, 1000, bytes: 10 * 1024)
            #expect(try Self.add(outbox, 1000, payload: payload, snapshot: snapshot) > stored.last!)
        }
    }

    @Test("adds from many threads get distinct, increasing sequences and none is lost")
    func concurrentAdds() throws {
        try withFolder { folder in
            let outbox = try SinkOutbox(path: folder.appendingPathComponent("outbox.sqlite").path, limitBytes: 1 << 20)
            let writers = 4
            let perWriter = 25
            let sequences = Mutex<[Int: [Int64]]>([:])
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: writers) { writer in
                var mine: [Int64] = []
                for index in 0..<perWriter {
                    do {
                        mine.append(
                            try Self.add(
                                outbox, index, camera: "cam-\(writer)",
                                payload: .object(["writer": .number(Double(writer)), "i": .number(Double(index))])))
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                }
                sequences.withLock { $0[writer] = mine }
            }
            #expect(failures.withLock { $0 }.isEmpty)
            let all = sequences.withLock { $0 }
            let flat = all.values.flatMap { $0 }
            #expect(flat.count == writers * perWriter)
            #expect(Set(flat) == Set(1...Int64(writers * perWriter)))
            #expect(outbox.counters.pendingEvents == writers * perWriter)
            #expect(outbox.counters.recordedEvents == Int64(writers * perWriter))
            // Each writer's events are in the order it added them, and each is the one it added.
            for writer in 0..<writers {
                let mine = all[writer] ?? []
                #expect(mine == mine.sorted())
                let stored = try mine.map { try #require(try outbox.event($0)).message }
                #expect(stored.map { $0["payload"]?["i"]?.numberValue } == (0..<perWriter).map { Double($0) })
                #expect(stored.allSatisfy { $0["camera"]?.stringValue == "cam-\(writer)" })
            }
        }
    }

    /// The tables an outbox had before it was bounded (the sizes came with the bound), exactly as it made them.
    private static let previousSchema = """
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
        """

    /// A webhook that records the messages it was given.
    final class RecordingHook: MessageSink {
        let received = Mutex<[JSONValue]>([])
        func send(_ body: [UInt8], event: JSONValue) async throws(SinkError) {
            received.withLock { $0.append(JSONValue(parsing: String(decoding: body, as: UTF8.self)) ?? .null) }
        }
        func shutdown() async {}
    }

    @Test("an outbox file of the previous schema opens, keeps its event and delivers it")
    func previousSchemaMigrates() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "outbox-bound-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("outputs.sqlite")
        let snapshot = try Self.snapshot(folder, 0, bytes: 4096)
        let message = Self.message(0)
        do {
            let old = try SQLiteConnection(path: file.path)
            try old.execute(Self.previousSchema)
            let insert = try old.statement("INSERT INTO events(message, snapshot) VALUES (?, ?)")
            try insert.bind(message.jsonText, at: 1)
            try insert.bind(snapshot, at: 2)
            _ = try insert.step()
            try old.execute("INSERT INTO deliveries(seq, sink, part) VALUES (1, 'hook', 'message')")
        }

        let outbox = try SinkOutbox(path: file.path, limitBytes: 1 << 20)
        #expect(outbox.counters.pendingEvents == 1)
        #expect(outbox.counters.recordedEvents == 1)
        let event = try #require(try outbox.event(1))
        #expect(event.message == message)
        #expect(event.snapshotFile == snapshot)
        #expect(try outbox.head(of: Self.hook)?.sequence == 1)

        let hook = RecordingHook()
        let pipeline = EventPipeline(
            configuration: try OutputsConfiguration(
                json: Data(#"{"sinks": {"hook": {"type": "webhook", "url": "http://x/hook"}}}"#.utf8)),
            context: EventContext(device: "box", instance: "inst-1", application: "people"), outbox: outbox,
            sinks: [Self.hook: .messages(hook)], logger: Logger(label: "test"), initialBackoff: 0.02, maxBackoff: 0.1)
        pipeline.start()
        // An event recorded after the migration is counted with its size and delivered after the old one.
        try pipeline.record(
            OutgoingEvent(id: "e1", type: "person.entered", camera: "cam-1", source: "node:counter", payload: .null))
        let deadline = Date().addingTimeInterval(20)
        while hook.received.withLock({ $0.count }) < 2, Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        await pipeline.stop()
        #expect(hook.received.withLock { $0.compactMap { $0["id"]?.stringValue } } == ["e0", "e1"])
        #expect(try outbox.event(1) == nil)
        #expect(outbox.counters.pendingEvents == 0)
        #expect(outbox.counters.pendingBytes == 0)
        #expect(outbox.counters.recordedEvents == 2)
    }
}
