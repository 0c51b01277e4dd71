import Foundation
import Logging
import Synchronization
import Testing
import VantageCore

@testable import VantageOutputs

/// A sink that takes batches (the control plane) gets a backlog several events at a time: in order, each event once
/// it is acknowledged, a refused batch sent again one event at a time, an event waiting for its snapshot still
/// waiting; and a failing sink's retries are spaced by the pipeline's `maxBackoff`, whatever it is.
@Suite("Stored-event sinks: batches and retry spacing")
struct StoredSinkBatchTests {
    /// A stored-event sink that records every call (the events' ids), refuses (discard) any call that carries an id
    /// in `refused`, and fails (retryable) the calls `failing` says.
    final class BatchSink: StoredEventSink {
        let batching: StoredEventBatching?
        let refused: Set<String>
        let failing: @Sendable (Int) -> Bool
        /// Each call's event ids, and when it came.
        let calls = Mutex<[(ids: [String], at: Date)]>([])
        /// The events taken, in the order taken.
        let taken = Mutex<[String]>([])

        init(
            batching: StoredEventBatching?, refused: Set<String> = [],
            failing: @escaping @Sendable (Int) -> Bool = { _ in false }
        ) {
            self.batching = batching
            self.refused = refused
            self.failing = failing
        }

        func deliver(_ event: StoredEvent, message: JSONValue) async throws(SinkError) {
            try take([message])
        }

        func deliver(batch: [(event: StoredEvent, message: JSONValue)]) async throws(SinkError) {
            try take(batch.map(\.message))
        }

        private func take(_ messages: [JSONValue]) throws(SinkError) {
            let ids = messages.map { $0["id"]?.stringValue ?? "?" }
            let n = calls.withLock { calls in
                calls.append((ids, Date()))
                return calls.count
            }
            if failing(n) { throw SinkError(sink: "@batch", "down on purpose (call \(n))") }
            if ids.contains(where: refused.contains) {
                throw SinkError(sink: "@batch", "events[0] refused on purpose", discard: true)
            }
            taken.withLock { $0.append(contentsOf: ids) }
        }

        func shutdown() async {}
        var ids: [String] { taken.withLock { $0 } }
        var callIDs: [[String]] { calls.withLock { $0.map(\.ids) } }
    }

    struct Fixture {
        let directory: URL
        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("batch-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        func pipeline(_ sink: BatchSink, initialBackoff: Double = 0.02, maxBackoff: Double = 0.1) throws
            -> EventPipeline
        {
            EventPipeline(
                configuration: OutputsConfiguration(),
                context: EventContext(device: "box", instance: "i1", application: "app"),
                outbox: try SinkOutbox(path: directory.appendingPathComponent("outbox.sqlite").path), sinks: [:],
                builtIn: ["@batch": .stored(sink)], logger: Logger(label: "test"), initialBackoff: initialBackoff,
                maxBackoff: maxBackoff)
        }
        func snapshot(_ name: String, bytes: Int) throws -> String {
            let url = directory.appendingPathComponent("\(name).jpg")
            try Data([0xFF, 0xD8] + [UInt8](repeating: 0x42, count: bytes - 4) + [0xFF, 0xD9]).write(to: url)
            return url.path
        }
        func remove() { try? FileManager.default.removeItem(at: directory) }
    }

    static func event(_ id: String, snapshot: String? = nil, pending: Bool = false) -> OutgoingEvent {
        OutgoingEvent(
            id: id, type: "defect", camera: "cam", source: "node:code", payload: .object([:]), snapshotFile: snapshot,
            snapshotPending: pending)
    }

    static func waitUntil(_ seconds: Double = 30, _ condition: () -> Bool) async {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() && Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    }

    @Test("a backlog goes to a batching sink several events per call, in order, each event taken once")
    func backlogInBatches() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let sink = BatchSink(batching: StoredEventBatching(maxEvents: 10, maxBytes: 1 << 20))
        let p = try f.pipeline(sink)
        // The backlog of an outage: recorded before the worker runs.
        let expected = (1...35).map { "e\($0)" }
        for id in expected { try p.record(Self.event(id)) }
        p.start()
        await Self.waitUntil { sink.ids.count >= 35 }
        await p.drain("@batch", timeout: .seconds(10))
        await p.stop()
        #expect(sink.ids == expected, "in order, each once")
        #expect(sink.callIDs.map(\.count) == [10, 10, 10, 5], "\(sink.callIDs.map(\.count))")
        #expect(p.deliveryCounters["@batch"]?.delivered == 35)
        #expect(try p.outbox.backlog().isEmpty, "every delivery acknowledged")
        #expect(p.outbox.counters.pendingEvents == 0)

        // A sink that does not take batches gets the same backlog one event at a time.
        let g = try Fixture()
        defer { g.remove() }
        let single = BatchSink(batching: nil)
        let q = try g.pipeline(single)
        for id in expected.prefix(5) { try q.record(Self.event(id)) }
        q.start()
        await Self.waitUntil { single.ids.count >= 5 }
        await q.stop()
        #expect(single.callIDs == expected.prefix(5).map { [$0] })
    }

    @Test("a batch holds no more bytes than its bound (snapshots counted as base64); a larger event goes alone")
    func byteBound() async throws {
        let f = try Fixture()
        defer { f.remove() }
        // Each event carries a 3,000-byte snapshot: 4,000 bytes as base64, plus its message.
        let sink = BatchSink(batching: StoredEventBatching(maxEvents: 100, maxBytes: 10_000))
        let p = try f.pipeline(sink)
        for n in 1...9 { try p.record(Self.event("e\(n)", snapshot: try f.snapshot("e\(n)", bytes: 3000))) }
        try p.record(Self.event("big", snapshot: try f.snapshot("big", bytes: 20_000)))
        try p.record(Self.event("after"))
        p.start()
        await Self.waitUntil { sink.ids.count >= 11 }
        await p.stop()
        #expect(sink.ids == (1...9).map { "e\($0)" } + ["big", "after"])
        let sizes = sink.callIDs.map(\.count)
        #expect(sizes.allSatisfy { $0 <= 2 }, "two 4-KiB events fit in 10,000 bytes, three do not: \(sizes)")
        #expect(sizes.contains(2), "a backlog still goes in batches: \(sizes)")
        #expect(sink.callIDs.contains(["big"]), "the event over the bound goes alone: \(sink.callIDs)")
    }

    @Test("a batch that failed is sent again whole, from its first event: nothing counts as taken before the answer")
    func failedBatchIsResentWhole() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let sink = BatchSink(batching: StoredEventBatching(maxEvents: 100, maxBytes: 1 << 20)) { $0 <= 2 }
        let p = try f.pipeline(sink)
        let expected = (1...20).map { "e\($0)" }
        for id in expected { try p.record(Self.event(id)) }
        p.start()
        await Self.waitUntil { sink.ids.count >= 20 }
        await p.stop()
        #expect(sink.callIDs == [expected, expected, expected], "\(sink.callIDs.map(\.count))")
        #expect(sink.ids == expected)
        #expect(p.deliveryCounters["@batch"]?.failures == 2)
        #expect(p.deliveryCounters["@batch"]?.delivered == 20)
        #expect(try p.outbox.backlog().isEmpty)
    }

    @Test("a refused batch is sent again one event at a time: only the refused event is dropped, the rest in order")
    func refusedBatchFallsBackToOneByOne() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let sink = BatchSink(batching: StoredEventBatching(maxEvents: 100, maxBytes: 1 << 20), refused: ["bad"])
        let p = try f.pipeline(sink)
        let ids = ["e1", "e2", "e3", "bad", "e4", "e5"]
        for id in ids { try p.record(Self.event(id)) }
        p.start()
        await Self.waitUntil { sink.ids.count >= 5 }
        await p.drain("@batch", timeout: .seconds(10))
        // Later events go in batches again.
        for id in ["e6", "e7", "e8"] { try p.record(Self.event(id)) }
        await Self.waitUntil { sink.ids.count >= 8 }
        await p.stop()
        #expect(sink.ids == ["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8"])
        let calls = sink.callIDs
        #expect(calls.first == ids, "the backlog went as one batch first: \(calls)")
        #expect(calls.filter { $0 == ["bad"] }.count == 1, "the refused event was tried alone once: \(calls)")
        #expect(calls.dropFirst().prefix(6) == ids.map { [$0] }[...], "then one at a time: \(calls)")
        let counters = try #require(p.deliveryCounters["@batch"])
        #expect(counters.rejected == 1)
        #expect(counters.delivered == 8)
        #expect(try p.outbox.backlog().isEmpty)
    }

    @Test("an event whose snapshot is still being written ends the batch before it, and waits for its snapshot")
    func pendingSnapshotEndsTheBatch() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let sink = BatchSink(batching: StoredEventBatching(maxEvents: 100, maxBytes: 1 << 20))
        let p = try f.pipeline(sink)
        try p.record(Self.event("e1"))
        try p.record(Self.event("e2"))
        let path = f.directory.appendingPathComponent("e3.jpg").path
        let pending = try p.record(Self.event("e3", snapshot: path, pending: true))
        try p.record(Self.event("e4"))
        p.start()
        await Self.waitUntil { sink.ids.count >= 2 }
        // Given time to (wrongly) go on, nothing after e2 goes while e3's snapshot is pending.
        try await Task.sleep(for: .milliseconds(500))
        #expect(sink.ids == ["e1", "e2"])
        #expect(sink.callIDs == [["e1", "e2"]])
        _ = try f.snapshot("e3", bytes: 2000)
        try p.snapshotFinished(sequence: try #require(pending.sequence), file: path, error: nil)
        await Self.waitUntil { sink.ids.count >= 4 }
        await p.stop()
        #expect(sink.ids == ["e1", "e2", "e3", "e4"])
        #expect(sink.callIDs.last == ["e3", "e4"], "\(sink.callIDs)")
    }

    @Test("retries back off up to the pipeline's maxBackoff, never beyond it, whatever it is (not a fixed 30 s)")
    func retrySpacingBound() async throws {
        let f = try Fixture()
        defer { f.remove() }
        // The computed spacing: doubling from the initial backoff up to the bound, jittered below it.
        let g = try Fixture()
        defer { g.remove() }
        let long = try g.pipeline(BatchSink(batching: nil), initialBackoff: 1, maxBackoff: 600)
        let delays = (0..<30).map { long.retryDelay(attempts: $0, retryable: true) }
        #expect(delays.allSatisfy { $0 <= 600 }, "\(delays)")
        #expect(delays.contains { $0 > 30 }, "a device configured for 600 s backs off past 30 s: \(delays)")
        #expect(delays[0] <= 1 && delays[3] >= 8 * 0.8, "doubling from 1 s: \(delays.prefix(4))")
        #expect((0..<100).allSatisfy { _ in long.retryDelay(attempts: 0, retryable: false) >= 600 * 0.8 })

        // A sink that keeps failing: its retries, as the outbox schedules them, follow that spacing.
        let sink = BatchSink(batching: nil) { _ in true }
        let p = try f.pipeline(sink, initialBackoff: 0.05, maxBackoff: 0.4)
        try p.record(Self.event("e1"))
        p.start()
        await Self.waitUntil { sink.callIDs.count >= 8 }
        await p.stop()
        let times = sink.calls.withLock { $0.map(\.at) }
        #expect(times.count >= 8)
        for i in 1..<times.count {
            // Never sooner than the backoff of the attempts before it (a busy machine makes it later, not sooner).
            let expected = min(0.4, 0.05 * pow(2, Double(i - 1))) * 0.8
            #expect(times[i].timeIntervalSince(times[i - 1]) >= expected - 0.005, "retry \(i) came too soon")
        }
        // The retry the outbox holds now is no further off than the bound from the last attempt.
        let head = try #require(try p.outbox.head(of: "@batch"))
        #expect(head.notBefore.timeIntervalSince(times.last!) <= 0.4 + 1, "\(head.notBefore) after \(times.last!)")
    }
}
