import Foundation
import Logging
import Synchronization
import Testing
import VantageCore

@testable import VantageOutputs

/// The pipeline's own logic — routing, ordering, retries, waiting for uploads, restarts — with sinks that record
/// what they were given and fail when told to. The real MQTT, S3 and webhook sinks have their own tests against
/// real servers, and the end-to-end test runs the whole chain.
@Suite("Event pipeline")
struct EventPipelineTests {
    /// A message sink that records deliveries and fails while `failing` says so.
    final class RecordingSink: MessageSink, ObjectSink {
        let name: String
        let received = Mutex<[JSONValue]>([])
        let attempts = Atomic<Int>(0)
        /// Fails the attempt numbers (from 1) for which this answers true.
        let failing: @Sendable (Int) -> Bool
        init(_ name: String, failing: @escaping @Sendable (Int) -> Bool = { _ in false }) {
            self.name = name
            self.failing = failing
        }
        func send(_ body: [UInt8], event: JSONValue) async throws(SinkError) {
            let n = attempts.add(1, ordering: .relaxed).newValue
            if failing(n) { throw SinkError(sink: name, "down on purpose (attempt \(n))") }
            received.withLock { $0.append(JSONValue(parsing: String(decoding: body, as: UTF8.self))!) }
        }
        func store(file: URL, event: JSONValue, part: PendingDelivery.Part) async throws(SinkError) -> JSONValue {
            let n = attempts.add(1, ordering: .relaxed).newValue
            if failing(n) { throw SinkError(sink: name, "down on purpose (attempt \(n))") }
            received.withLock { $0.append(event) }
            return .object(["key": .string("\(event["id"]!.stringValue!).\(part.rawValue)"), "url": .string("u")])
        }
        func shutdown() async {}
        var ids: [String] { received.withLock { $0.compactMap { $0["id"]?.stringValue } } }
    }

    struct Fixture {
        let directory: URL
        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        var outboxPath: String { directory.appendingPathComponent("outputs.sqlite").path }
        func snapshot(_ name: String) throws -> String {
            let url = directory.appendingPathComponent("\(name).jpg")
            try Data([0xFF, 0xD8, 0xFF, 0xD9]).write(to: url)
            return url.path
        }
        func pipeline(_ json: String, sinks: [String: ConnectedSink]) throws -> EventPipeline {
            EventPipeline(
                configuration: try OutputsConfiguration(json: Data(json.utf8)),
                context: EventContext(device: "box", instance: "i1", application: "app"),
                outbox: try SinkOutbox(path: outboxPath), sinks: sinks, logger: Logger(label: "test"),
                initialBackoff: 0.02, maxBackoff: 0.1)
        }
        func remove() { try? FileManager.default.removeItem(at: directory) }
    }

    static func event(_ n: Int, type: String = "defect", camera: String = "cam", snapshot: String? = nil)
        -> OutgoingEvent
    {
        OutgoingEvent(
            id: "e\(n)", type: type, camera: camera, source: "node:code", payload: .object(["n": .number(Double(n))]),
            snapshotFile: snapshot)
    }

    static func waitUntil(_ seconds: Double = 20, _ condition: () -> Bool) async {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() && Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    }

    static let twoHooks =
        #"{"sinks": {"a": {"type": "webhook", "url": "http://x/a"}, "b": {"type": "webhook", "url": "http://x/b"}}}"#

    @Test("A failing sink gets every event, in order, once; another sink is not held up by it")
    func orderAndRetries() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let flaky = RecordingSink("a") { n in n <= 5 || n % 3 == 0 }
        let steady = RecordingSink("b")
        let p = try f.pipeline(Self.twoHooks, sinks: ["a": .messages(flaky), "b": .messages(steady)])
        p.start()
        for n in 1...20 { try p.record(Self.event(n)) }
        await Self.waitUntil { flaky.ids.count == 20 && steady.ids.count == 20 }
        await p.stop()
        let expected = (1...20).map { "e\($0)" }
        #expect(flaky.ids == expected)
        #expect(steady.ids == expected)
        #expect(try p.outbox.backlog().isEmpty)
        #expect(p.deliveryCounters["a"]?.failures ?? 0 >= 5)
    }

    @Test("Events stored while a sink is down are delivered after a restart of the process")
    func survivesRestart() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let down = RecordingSink("a") { _ in true }
        let first = try f.pipeline(Self.twoHooks, sinks: ["a": .messages(down), "b": .messages(RecordingSink("b"))])
        first.start()
        for n in 1...5 { try first.record(Self.event(n)) }
        try await Task.sleep(for: .milliseconds(200))
        await first.stop()
        #expect(down.ids.isEmpty)
        #expect(try first.outbox.backlog().first { $0.sink == "a" }?.pending == 5)
        #expect(try first.outbox.backlog().first { $0.sink == "a" }?.lastError?.contains("down on purpose") == true)

        let up = RecordingSink("a")
        let second = try f.pipeline(Self.twoHooks, sinks: ["a": .messages(up), "b": .messages(RecordingSink("b"))])
        second.start()
        await Self.waitUntil { up.ids.count == 5 }
        await second.stop()
        #expect(up.ids == ["e1", "e2", "e3", "e4", "e5"])
    }

    static let storeAndHook = """
        {"sinks": {"store": {"type": "s3", "bucket": "b", "accessKeyId": "k", "secretAccessKey": "s"},
                   "hook": {"type": "webhook", "url": "http://x"}},
         "rules": [{"when": {"type": "defect"}, "send": ["store", "hook"], "clip": true}]}
        """

    @Test("A message waits for its snapshot's upload and clip, then names the stored objects")
    func messageWaitsForObjects() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let store = RecordingSink("store") { n in n <= 3 }  // the object store is down for the first tries
        let hook = RecordingSink("hook")
        let p = try f.pipeline(Self.storeAndHook, sinks: ["store": .objects(store), "hook": .messages(hook)])
        p.start()
        let recorded = try p.record(Self.event(1, snapshot: try f.snapshot("one")))
        #expect(recorded.wantsClip)
        try await Task.sleep(for: .milliseconds(400))
        #expect(hook.ids.isEmpty, "the message went out before its clip was cut")
        let clip = f.directory.appendingPathComponent("one.mp4")
        try Data([0, 0, 0, 1]).write(to: clip)
        try p.clipFinished(sequence: try #require(recorded.sequence), file: clip.path, error: nil)
        await Self.waitUntil { hook.ids.count == 1 }
        await p.stop()
        let message = try #require(hook.received.withLock { $0.first })
        #expect(message["snapshot"]?["key"]?.stringValue == "e1.snapshot")
        #expect(message["snapshot"]?["sink"]?.stringValue == "store")
        #expect(message["clip"]?["key"]?.stringValue == "e1.clip")
        #expect(message["type"]?.stringValue == "defect" && message["device"]?.stringValue == "box")
        #expect(message["payload"]?["n"]?.numberValue == 1)
    }

    @Test("A clip that cannot be cut does not hold the message: it says why")
    func failedClip() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let hook = RecordingSink("hook")
        let p = try f.pipeline(
            Self.storeAndHook, sinks: ["store": .objects(RecordingSink("store")), "hook": .messages(hook)])
        p.start()
        let recorded = try p.record(Self.event(1, snapshot: try f.snapshot("one")))
        try p.clipFinished(sequence: try #require(recorded.sequence), file: nil, error: "the ring holds nothing then")
        await Self.waitUntil { hook.ids.count == 1 }
        await p.stop()
        let message = try #require(hook.received.withLock { $0.first })
        #expect(message["clip"]?["error"]?.stringValue == "the ring holds nothing then")
        #expect(message["snapshot"]?["key"] != nil)
    }

    @Test(
        "Rules: a sink no rule names gets everything; a named sink only what its rules match, at most once per period")
    func routing() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let json = """
            {"sinks": {"all": {"type": "webhook", "url": "http://x"}, "alerts": {"type": "webhook", "url": "http://y"}},
             "rules": [{"when": {"type": "zone.*", "camera": "dock", "payload": {"zone": "door"}}, "send": "alerts",
                        "atMostEvery": "1h"}]}
            """
        let all = RecordingSink("all")
        let alerts = RecordingSink("alerts")
        let p = try f.pipeline(json, sinks: ["all": .messages(all), "alerts": .messages(alerts)])
        p.start()
        func zone(_ n: Int, camera: String, zone: String) -> OutgoingEvent {
            OutgoingEvent(
                id: "z\(n)", type: "zone.enter", camera: camera, source: "analytics:a",
                payload: .object(["zone": .string(zone)]))
        }
        try p.record(zone(1, camera: "dock", zone: "door"))  // matches
        try p.record(zone(2, camera: "yard", zone: "door"))  // other camera
        try p.record(zone(3, camera: "dock", zone: "desk"))  // other zone
        try p.record(Self.event(4, camera: "dock"))  // other type
        try p.record(zone(5, camera: "dock", zone: "door"))  // matches, but within the hour
        await Self.waitUntil { all.ids.count == 5 }
        try await Task.sleep(for: .milliseconds(200))
        await p.stop()
        #expect(all.ids == ["z1", "z2", "z3", "e4", "z5"])
        #expect(alerts.ids == ["z1"])

        // The limit outlives a restart.
        let alerts2 = RecordingSink("alerts")
        let again = try f.pipeline(json, sinks: ["all": .messages(RecordingSink("all")), "alerts": .messages(alerts2)])
        again.start()
        try again.record(zone(6, camera: "dock", zone: "door"))
        try await Task.sleep(for: .milliseconds(300))
        await again.stop()
        #expect(alerts2.ids.isEmpty)
    }

    @Test(
        "A rate limit survives a clock set back (a box that booted a year behind): it starts again, it does not hold events back for a year"
    )
    func rateLimitAcrossAClockJump() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let json = """
            {"sinks": {"alerts": {"type": "webhook", "url": "http://y"}},
             "rules": [{"when": {"type": "zone.*"}, "send": "alerts", "atMostEvery": "1m"}]}
            """
        let alerts = RecordingSink("alerts")
        let p = try f.pipeline(json, sinks: ["alerts": .messages(alerts)])
        p.start()
        let now = Date()
        let yearBack = now.addingTimeInterval(-365 * 86_400)
        for (id, time) in [
            ("now", now), ("now+10s", now.addingTimeInterval(10)),  // held back: within the minute
            ("now-20s", now.addingTimeInterval(-20)),  // a little out of order: still within the period
            ("year-back", yearBack),  // the clock set back a year: sent, the limit starts again from it
            ("year-back+10s", yearBack.addingTimeInterval(10)),  // held back again
            ("year-back+70s", yearBack.addingTimeInterval(70)),  // the next minute
        ] {
            try p.record(
                OutgoingEvent(
                    id: id, type: "zone.enter", time: time, camera: nil, source: "analytics:a", payload: .null))
        }
        await Self.waitUntil { alerts.ids.count == 3 }
        try await Task.sleep(for: .milliseconds(200))
        await p.stop()
        #expect(alerts.ids == ["now", "year-back", "year-back+70s"])
    }

    @Test("Retention deletes the oldest media beyond the size limit, but not files still waiting for a sink")
    func retention() throws {
        let f = try Fixture()
        defer { f.remove() }
        var paths: [String] = []
        for i in 0..<5 {
            let url = f.directory.appendingPathComponent("s\(i).jpg")
            try Data(repeating: 1, count: 1000).write(to: url)
            try FileManager.default.setAttributes(
                [.modificationDate: Date().addingTimeInterval(Double(i - 10) * 60)], ofItemAtPath: url.path)
            paths.append(url.path)
        }
        let retention = MediaRetention(directories: [f.directory], maxAge: nil, maxBytes: 2500)
        let sweep = retention.sweep(inUse: [paths[0]])
        #expect(FileManager.default.fileExists(atPath: paths[0]), "a file the outbox needs was deleted")
        // The kept file still takes its space: s1, s2 and s3 go to get under 2,500 bytes.
        #expect((1...3).allSatisfy { !FileManager.default.fileExists(atPath: paths[$0]) })
        #expect(FileManager.default.fileExists(atPath: paths[4]))
        #expect(sweep.deletedFiles == 3 && sweep.keptBytes == 2000)

        let byAge = MediaRetention(directories: [f.directory], maxAge: 8 * 60, maxBytes: nil).sweep(inUse: [])
        #expect(byAge.deletedFiles == 1)  // s0 (10 min old) goes, s4 (6 min) stays
        #expect(FileManager.default.fileExists(atPath: paths[4]) && !FileManager.default.fileExists(atPath: paths[0]))
    }

    @Test("An outbox file that cannot be created says which file")
    func unwritableOutbox() {
        #expect(throws: OutboxFileError.self) { try SinkOutbox(path: "/proc/vantage/outputs.sqlite") }
        do {
            _ = try SinkOutbox(path: "/proc/vantage/outputs.sqlite")
        } catch {
            #expect(error.description.contains("/proc/vantage"))
        }
    }
}
