import Foundation
import Logging
import Synchronization
import Testing
import VantageCore

@testable import VantageOutputs

/// The local events file of `vantage run`: the built-in sink that gets every event, as the same message every other
/// sink gets, one JSON line each.
@Suite("EventsFileSink")
struct EventsFileSinkTests {
    /// A webhook that records the messages it was given.
    final class RecordingHook: MessageSink {
        let received = Mutex<[JSONValue]>([])
        func send(_ body: [UInt8], event: JSONValue) async throws(SinkError) {
            received.withLock { $0.append(JSONValue(parsing: String(decoding: body, as: UTF8.self)) ?? .null) }
        }
        func shutdown() async {}
        var ids: [String] { received.withLock { $0.compactMap { $0["id"]?.stringValue } } }
    }

    struct Fixture {
        let directory: URL
        let context = EventContext(device: "box", instance: "inst-1", application: "people")
        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "events-file-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        /// The events file, in a folder that does not exist yet.
        var eventsFile: URL { directory.appendingPathComponent("run/events.jsonl") }

        func snapshot(_ name: String) throws -> String {
            let url = directory.appendingPathComponent("snapshots/\(name).jpg")
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data([0xFF, 0xD8, 0xFF, 0xE0] + [UInt8](repeating: 0x42, count: 512) + [0xFF, 0xD9]).write(to: url)
            return url.path
        }

        func pipeline(_ json: String = "{}", sinks: [String: ConnectedSink] = [:]) throws -> EventPipeline {
            EventPipeline(
                configuration: try OutputsConfiguration(json: Data(json.utf8)), context: context,
                outbox: try SinkOutbox(path: directory.appendingPathComponent("outbox.sqlite").path), sinks: sinks,
                builtIn: [EventsFileSink.name: .stored(try EventsFileSink(file: eventsFile))],
                logger: Logger(label: "test"), initialBackoff: 0.02, maxBackoff: 0.1)
        }

        /// The file's lines, each parsed.
        func lines() throws -> [JSONValue] {
            let text = try String(contentsOf: eventsFile, encoding: .utf8)
            #expect(text.hasSuffix("\n"), "the last line is not complete")
            return text.split(separator: "\n").map { JSONValue(parsing: String($0)) ?? .null }
        }

        func remove() { try? FileManager.default.removeItem(at: directory) }
    }

    static func event(_ n: Int, type: String = "person.entered", camera: String? = "cam-1", snapshot: String? = nil)
        -> OutgoingEvent
    {
        OutgoingEvent(
            id: "e\(n)", type: type, time: Date(timeIntervalSince1970: 1_800_000_000 + Double(n) / 8),
            camera: camera, source: "node:counter", phase: n == 3 ? "start" : nil,
            payload: .object(["n": .number(Double(n)), "label": .string("häagen-dazs ☕ \"quoted\"\n")]),
            snapshotFile: snapshot)
    }

    @Test("with only the built-in sink, every event is one JSON line, in order, the message sinks get")
    func oneLinePerEvent() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let pipeline = try f.pipeline()
        pipeline.start()
        var events: [OutgoingEvent] = []
        for n in 1...12 {
            let event = Self.event(
                n, camera: n == 5 ? nil : "cam-\(n % 2)", snapshot: n % 3 == 0 ? try f.snapshot("s\(n)") : nil)
            events.append(event)
            let recorded = try pipeline.record(event)
            #expect(recorded.sinks == [EventsFileSink.name])
        }
        await pipeline.drain(EventsFileSink.name, timeout: .seconds(20))
        await pipeline.stop()

        let lines = try f.lines()
        #expect(lines.count == events.count)
        #expect(lines.compactMap { $0["id"]?.stringValue } == events.map(\.id))
        for (line, event) in zip(lines, events) {
            var expected = event.message(context: f.context)
            if let file = event.snapshotFile, case .object(var fields) = expected {
                fields["snapshot"] = .object(["file": .string(file)])
                expected = .object(fields)
            }
            #expect(line == expected)
            #expect(line["type"]?.stringValue == "person.entered")
            #expect(line["time"]?.stringValue == EventPipeline.format(event.time))
            #expect(line["device"]?.stringValue == "box")
            #expect(line["instance"]?.stringValue == "inst-1")
            #expect(line["application"]?.stringValue == "people")
            #expect(line["source"]?.stringValue == "node:counter")
            #expect(line["camera"]?.stringValue == event.camera)
            #expect(line["payload"] == event.payload)
            #expect(line["snapshot"]?["file"]?.stringValue == event.snapshotFile)
        }
        #expect(try pipeline.outbox.backlog().isEmpty)
        #expect(pipeline.deliveryCounters[EventsFileSink.name]?.delivered == events.count)
    }

    @Test("a rule that names only another sink still lets the built-in sink get every event")
    func builtInIgnoresRules() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let json = """
            {"sinks": {"alerts": {"type": "webhook", "url": "http://x/alerts"}},
             "rules": [{"when": {"type": "defect"}, "send": "alerts"}]}
            """
        let alerts = RecordingHook()
        let pipeline = try f.pipeline(json, sinks: ["alerts": .messages(alerts)])
        pipeline.start()
        var events: [OutgoingEvent] = []
        for n in 1...8 {
            let event = Self.event(n, type: n % 4 == 0 ? "defect" : "person.entered", snapshot: try f.snapshot("s\(n)"))
            events.append(event)
            try pipeline.record(event)
        }
        await pipeline.drain(EventsFileSink.name, timeout: .seconds(20))
        await pipeline.drain("alerts", timeout: .seconds(20))
        await pipeline.stop()

        let lines = try f.lines()
        #expect(lines.compactMap { $0["id"]?.stringValue } == events.map(\.id))
        #expect(lines.allSatisfy { $0["snapshot"]?["file"]?.stringValue != nil })
        #expect(alerts.ids == ["e4", "e8"])
        // The line is the message the webhook got, plus the local snapshot it has no object store for.
        for message in alerts.received.withLock({ $0 }) {
            let line = try #require(lines.first { $0["id"] == message["id"] })
            guard case .object(var fields) = line else {
                Issue.record("a line is not a JSON object: \(line)")
                continue
            }
            fields["snapshot"] = nil
            #expect(JSONValue.object(fields) == message)
        }
    }

    @Test("drain returns once every event is written, not at its timeout")
    func drainWaitsForTheFile() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let pipeline = try f.pipeline()
        pipeline.start()
        let count = 200
        for n in 1...count { try pipeline.record(Self.event(n)) }
        let started = ContinuousClock.now
        await pipeline.drain(EventsFileSink.name, timeout: .seconds(60))
        let waited = ContinuousClock.now - started
        // Read before stopping: drain alone must have waited for the last line.
        let lines = try f.lines()
        await pipeline.stop()
        #expect(lines.count == count)
        #expect(lines.last?["id"]?.stringValue == "e\(count)")
        #expect(waited < .seconds(30))
        #expect(try pipeline.outbox.head(of: EventsFileSink.name) == nil)
    }
}
