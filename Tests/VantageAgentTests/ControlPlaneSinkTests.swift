import Foundation
import Logging
import Synchronization
import Testing
import VantageAPI
import VantageCore
import VantageOutputs

@testable import VantageAgent

/// The built-in sink that carries an instance's events to the control plane: how it names them for the API, and
/// what a refused event and a failed send do to the instance's pipeline.
@Suite("ControlPlaneSink")
struct ControlPlaneSinkTests {
    static let context = EventContext(device: "box", instance: "entrance", application: "people")

    static func sidecar(cameras: [String: String]) -> InstanceEvents.Sidecar {
        InstanceEvents.Sidecar(
            instanceId: "inst-1", device: "box", name: "entrance", application: "people", cameraIds: cameras)
    }

    static func sink(
        cameras: [String: String] = ["front": "cam-front", "yard": "cam-yard"],
        send: @escaping @Sendable ([NewEvent]) async throws -> Void = { _ in }
    ) -> ControlPlaneSink {
        ControlPlaneSink(sidecar(cameras: cameras), send: send)
    }

    /// An event as the outbox hands it to the sink.
    static func stored(_ event: OutgoingEvent) -> (StoredEvent, JSONValue) {
        let message = event.message(context: context)
        return (
            StoredEvent(
                sequence: 1, message: message, snapshotFile: event.snapshotFile, clipFile: nil, clipState: .none,
                objectSinks: []),
            message
        )
    }

    static func newEvent(_ sink: ControlPlaneSink, _ event: OutgoingEvent) -> NewEvent {
        let (stored, message) = stored(event)
        return sink.newEvent(stored, message: message)
    }

    @Test("an application's event is named for the API: id, type, time, instance and its payload as data")
    func namesTheEvent() throws {
        let time = Date(timeIntervalSince1970: 1_800_000_000.125)
        let event = OutgoingEvent(
            id: "e1", type: "defect", time: time, camera: "front", source: "node:inspector",
            payload: .object(["type": .string("defect"), "score": .number(0.5)]))
        let new = Self.newEvent(Self.sink(), event)
        #expect(new.id == "e1")
        #expect(new.type == "defect")
        #expect(new.time == time)
        #expect(new.sequence == 1, "the outbox's sequence goes along: the instance's order, whatever its clock did")
        #expect(new.instanceId == "inst-1")
        #expect(new.cameraId == "cam-front")
        #expect(new.data == event.payload)
        #expect(new.snapshot == nil)
    }

    /// An analytics node's object event sends `start`, `update`s and `end` under one `id` (docs/outputs.md): the
    /// server, which stores one event per device id, would keep only the first phase if they were sent under it.
    @Test("each phase of an object's event is its own event for the server; the same phase sent again is the same")
    func phasesAreEventsOfTheirOwn() {
        let start = Date(timeIntervalSince1970: 1_800_000_000.125)
        func phase(_ name: String, _ seconds: Double) -> OutgoingEvent {
            OutgoingEvent(
                id: "obj-1", type: "object", time: start.addingTimeInterval(seconds), camera: "front",
                source: "analytics:people", phase: name, payload: .object(["trackId": .number(7)]))
        }
        let phases = [phase("start", 0), phase("update", 1), phase("update", 2), phase("end", 3)]
        let ids = phases.map { Self.newEvent(Self.sink(), $0).id }
        #expect(Set(ids.compactMap { $0 }).count == 4)
        #expect(ids.allSatisfy { $0?.hasPrefix("obj-1/") == true })
        // A retry (the outbox hands the same stored message again) keeps the id: the server stores it once.
        #expect(Self.newEvent(Self.sink(), phases[1]).id == ids[1])
    }

    @Test("an application's event without a type is named after its code node; analytics events keep theirs")
    func untypedEventTakesTheNodeName() {
        let untyped = OutgoingEvent(
            type: "app", camera: "front", source: "node:counter", payload: .object(["count": .number(3)]))
        #expect(Self.newEvent(Self.sink(), untyped).type == "counter")
        let analytics = OutgoingEvent(
            type: "zone.enter", camera: "front", source: "analytics:zones", payload: .object([:]))
        #expect(Self.newEvent(Self.sink(), analytics).type == "zone.enter")
        // "app" from an analytics node is not an application's untyped event.
        let odd = OutgoingEvent(type: "app", camera: "front", source: "analytics:zones", payload: .object([:]))
        #expect(Self.newEvent(Self.sink(), odd).type == "app")
    }

    @Test("the camera node, or a stream of it, is named by its camera id; the only camera when the event names none")
    func mapsCameras() {
        let sink = Self.sink()
        func camera(_ node: String?, _ sink: ControlPlaneSink) -> String? {
            Self.newEvent(sink, OutgoingEvent(type: "t", camera: node, source: "node:n", payload: .null)).cameraId
        }
        #expect(camera("front", sink) == "cam-front")
        #expect(camera("yard", sink) == "cam-yard")
        #expect(camera("yard[1]", sink) == "cam-yard")
        #expect(camera("front[0]", sink) == "cam-front")
        // Two cameras and none named (or an unknown one): the event names no camera rather than a wrong one.
        #expect(camera(nil, sink) == nil)
        #expect(camera("back", sink) == nil)

        let single = Self.sink(cameras: ["front": "cam-front"])
        #expect(camera(nil, single) == "cam-front")
        #expect(camera("front[2]", single) == "cam-front")
        #expect(camera(nil, Self.sink(cameras: [:])) == nil)
    }

    @Test("the snapshot file goes inside the event as base64")
    func carriesTheSnapshot() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("control-plane-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let jpeg = Data(
            [0xFF, 0xD8, 0xFF, 0xE0] + (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) } + [0xFF, 0xD9])
        let file = folder.appendingPathComponent("e1.jpg")
        try jpeg.write(to: file)
        let event = OutgoingEvent(
            id: "e1", type: "defect", camera: "front", source: "node:inspector", payload: .object([:]),
            snapshotFile: file.path)
        let new = Self.newEvent(Self.sink(), event)
        #expect(new.snapshot == jpeg.base64EncodedString())
        #expect(new.snapshot.flatMap { Data(base64Encoded: $0) } == jpeg)

        // A snapshot file gone meanwhile (deleted by hand): the event still goes, without it.
        try FileManager.default.removeItem(at: file)
        #expect(Self.newEvent(Self.sink(), event).snapshot == nil)
    }

    /// The control plane's side of the device link: refuses some events for good, is down for some attempts.
    final class ControlPlane: Sendable {
        let received = Mutex<[NewEvent]>([])
        let attempts = Atomic<Int>(0)
        /// Each request's event ids.
        let requests = Mutex<[[String]]>([])
        let rejected: Set<String>
        /// Attempts (from 1) that fail as an unreachable server would.
        let down: @Sendable (Int) -> Bool

        init(rejected: Set<String> = [], down: @escaping @Sendable (Int) -> Bool = { _ in false }) {
            self.rejected = rejected
            self.down = down
        }

        func send(_ events: [NewEvent]) async throws {
            let n = attempts.add(1, ordering: .relaxed).newValue
            requests.withLock { $0.append(events.map { $0.id ?? "" }) }
            if down(n) { throw LinkError.unreachable("POST /api/v1/device/events: 503 down on purpose") }
            for event in events where rejected.contains(event.id ?? "") {
                throw LinkError.rejected(422, "POST /api/v1/device/events: camera cam-gone is not on this device")
            }
            received.withLock { $0.append(contentsOf: events) }
        }

        var ids: [String] { received.withLock { $0.compactMap(\.id) } }
    }

    struct Fixture {
        let directory: URL
        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "control-plane-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        func pipeline(_ server: ControlPlane) throws -> EventPipeline {
            EventPipeline(
                configuration: OutputsConfiguration(), context: ControlPlaneSinkTests.context,
                outbox: try SinkOutbox(path: directory.appendingPathComponent("inst-1.sqlite").path), sinks: [:],
                builtIn: [
                    ControlPlaneSink.name: .stored(
                        ControlPlaneSinkTests.sink { try await server.send($0) })
                ],
                logger: Logger(label: "test"), initialBackoff: 0.02, maxBackoff: 0.1)
        }
        func remove() { try? FileManager.default.removeItem(at: directory) }
    }

    static func waitUntil(_ seconds: Double = 20, _ condition: () -> Bool) async {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() && Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    }

    static func event(_ id: String) -> OutgoingEvent {
        OutgoingEvent(id: id, type: "defect", camera: "front", source: "node:inspector", payload: .object([:]))
    }

    @Test("an event the server rejects is dropped and counted, and the next event is delivered")
    func rejectedIsDiscarded() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let server = ControlPlane(rejected: ["bad"])
        let pipeline = try f.pipeline(server)
        pipeline.start()
        try pipeline.record(Self.event("bad"))
        try pipeline.record(Self.event("good"))
        await Self.waitUntil { server.ids == ["good"] }
        await pipeline.drain(ControlPlaneSink.name, timeout: .seconds(5))
        await pipeline.stop()
        #expect(server.ids == ["good"])
        // Tried alone once: a rejection is not retried. (Both may first have gone as one batch, which the server
        // refused whole; then each went alone.)
        let requests = server.requests.withLock { $0 }
        #expect(requests == [["bad"], ["good"]] || requests == [["bad", "good"], ["bad"], ["good"]], "\(requests)")
        let counters = try #require(pipeline.deliveryCounters[ControlPlaneSink.name])
        #expect(counters.rejected == 1)
        #expect(counters.delivered == 1)
        #expect(counters.failures == 0)
        #expect(try pipeline.outbox.backlog().isEmpty)
        #expect(pipeline.outbox.counters.pendingEvents == 0)
    }

    @Test("any other failure is retried until the server takes the event, in order and once")
    func otherFailuresAreRetried() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let server = ControlPlane(down: { $0 <= 3 })
        let pipeline = try f.pipeline(server)
        pipeline.start()
        for n in 1...3 { try pipeline.record(Self.event("e\(n)")) }
        await Self.waitUntil { server.ids.count == 3 }
        await pipeline.stop()
        #expect(server.ids == ["e1", "e2", "e3"])
        let counters = try #require(pipeline.deliveryCounters[ControlPlaneSink.name])
        #expect(counters.failures == 3)
        #expect(counters.rejected == 0)
        #expect(counters.delivered == 3)
        #expect(try pipeline.outbox.backlog().isEmpty)
    }

    @Test(
        "a backlog goes to the server 100 events per request, in order; a refused request is sent again one event at a time, so only the refused event is dropped"
    )
    func backlogInBatches() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let server = ControlPlane(rejected: ["e150"])
        let pipeline = try f.pipeline(server)
        // The backlog of an outage, recorded before the pipeline delivers.
        let ids = (1...250).map { "e\($0)" }
        for id in ids { try pipeline.record(Self.event(id)) }
        pipeline.start()
        await Self.waitUntil { server.ids.count >= 249 }
        await pipeline.drain(ControlPlaneSink.name, timeout: .seconds(10))
        await pipeline.stop()
        #expect(server.ids == ids.filter { $0 != "e150" }, "every other event, in order, once")
        let requests = server.requests.withLock { $0 }
        #expect(requests.first == Array(ids[0..<100]), "the first 100 in one request")
        #expect(requests.contains(Array(ids[100..<200])), "the batch with the refused event went whole first")
        #expect(requests.filter { $0 == ["e150"] }.count == 1, "then the refused event alone, once")
        #expect(requests.contains(Array(ids[200..<250])), "after the one-by-one pass, batches again")
        // The first batch, the refused one, its 100 events alone, the last batch.
        let expectedRequests = 103
        #expect(requests.count == expectedRequests, "\(requests.map(\.count))")
        let counters = try #require(pipeline.deliveryCounters[ControlPlaneSink.name])
        #expect(counters.rejected == 1)
        #expect(counters.delivered == 249)
        #expect(try pipeline.outbox.backlog().isEmpty)
    }

    @Test("408 and 429 from the server are not a refusal: the event is retried, not dropped")
    func throttledIsRetried() async throws {
        let answers = Mutex([429, 408])
        let sink = Self.sink { _ in
            if let status = answers.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                throw LinkError.rejected(status, "POST /api/v1/devices/d/events: slow down")
            }
        }
        let (event, message) = Self.stored(Self.event("e1"))
        for _ in 0..<2 {
            do {
                try await sink.deliver(event, message: message)
                Issue.record("a throttled send must fail")
            } catch {
                #expect(!error.discard && error.retryable, "\(error)")
            }
        }
        try await sink.deliver(event, message: message)
    }
}
