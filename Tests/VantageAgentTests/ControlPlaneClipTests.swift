import Foundation
import Logging
import Synchronization
import Testing
import VantageAPI
import VantageCore
import VantageOutputs

@testable import VantageAgent

/// The control plane's clip uploads: a rule that asks for a clip gets one cut under `vantage agent` (no object
/// store needed), the event reaches the server at once, and its clip follows once cut — retried until the server
/// takes it, and never lost on the way.
@Suite("ControlPlaneClip")
struct ControlPlaneClipTests {
    /// The server's side: the events it took, and the clips uploaded (event id → bytes); a clip is refused with 409
    /// until its event is there, and the first `failures` uploads fail as if the link were down.
    final class Server: Sendable {
        let events = Mutex<[String]>([])
        let clips = Mutex<[String: Data]>([:])
        let uploads = Atomic<Int>(0)
        let failures: Int

        init(failures: Int) { self.failures = failures }

        func send(_ batch: [NewEvent]) async throws {
            events.withLock { $0 += batch.compactMap(\.id) }
        }

        func upload(_ id: String, _ file: URL) async throws {
            let n = uploads.add(1, ordering: .relaxed).newValue
            if n <= failures { throw LinkError.unreachable("PUT clip: the server did not answer within 30 s") }
            guard events.withLock({ $0.contains(id) }) else {
                throw LinkError.rejected(409, "PUT clip: event \(id) has not reached the server yet")
            }
            let bytes = try Data(contentsOf: file)
            clips.withLock { $0[id] = bytes }
        }
    }

    static func waitUntil(_ seconds: Double = 20, _ condition: () -> Bool) async {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() && Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    }

    @Test(
        "a rule's clip is cut for the control plane, goes up after its event (which does not wait for it), and a failed upload is retried until the server has it"
    )
    func clipFollowsItsEvent() async throws {
        let directory = FileManager.default.temporaryDirectory.appending(
            path: "control-plane-clip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = Server(failures: 2)
        let events = InstanceEvents(
            folder: directory, limitBytes: 1 << 30, device: "box", logger: Logger(label: "test"),
            send: { try await server.send($0) }, uploadClip: { try await server.upload($0, $1) })
        var configuration = OutputsConfiguration()
        var rule = OutputsConfiguration.Rule(name: "crowd")
        rule.types = ["over_threshold"]
        rule.clip = true
        configuration.rules = [rule]
        let pipeline = EventPipeline(
            configuration: configuration, context: ControlPlaneSinkTests.context,
            outbox: try SinkOutbox(path: directory.appending(path: "inst-1.sqlite").path), sinks: [:],
            builtIn: events.builtInSinks(ControlPlaneSinkTests.sidecar(cameras: ["front": "cam-front"])),
            logger: Logger(label: "test"), initialBackoff: 0.02, maxBackoff: 0.1)
        pipeline.start()

        let quiet = try pipeline.record(
            OutgoingEvent(
                id: "e1", type: "count_changed", camera: "front", source: "node:counter", payload: .object([:])))
        #expect(!quiet.wantsClip, "no rule asks for a clip of a count change")
        let crowd = try pipeline.record(
            OutgoingEvent(
                id: "e2", type: "over_threshold", camera: "front", source: "node:counter", payload: .object([:])))
        #expect(crowd.wantsClip, "the rule's clip is cut although no object store is configured")
        let sequence = try #require(crowd.sequence)

        // The event does not wait for its clip (still being recorded).
        await Self.waitUntil { server.events.withLock { $0 } == ["e1", "e2"] }
        #expect(server.events.withLock { $0 } == ["e1", "e2"])
        #expect(server.clips.withLock { $0.isEmpty })

        let clip = directory.appending(path: "e2.mp4")
        let bytes = Data([0, 0, 0, 24] + Array("ftypisom".utf8) + Array(repeating: 7, count: 4096))
        try bytes.write(to: clip)
        try pipeline.clipFinished(sequence: sequence, file: clip.path, error: nil)
        await Self.waitUntil { server.clips.withLock { $0["e2"] } != nil }
        await pipeline.stop()
        #expect(server.clips.withLock { $0 } == ["e2": bytes], "the clip the device cut, whole, under its event's id")
        #expect(server.uploads.load(ordering: .relaxed) == 3, "two failed uploads, then the one that went through")
        #expect(try pipeline.outbox.backlog().isEmpty, "nothing left to deliver")
        #expect(pipeline.deliveryCounters[ControlPlaneClipSink.name]?.failures == 2)
    }

    @Test("a clip that could not be cut sends nothing and leaves nothing behind")
    func failedClipIsNotUploaded() async throws {
        let directory = FileManager.default.temporaryDirectory.appending(
            path: "control-plane-clip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = Server(failures: 0)
        let events = InstanceEvents(
            folder: directory, limitBytes: 1 << 30, device: "box", logger: Logger(label: "test"),
            send: { try await server.send($0) }, uploadClip: { try await server.upload($0, $1) })
        var configuration = OutputsConfiguration()
        var rule = OutputsConfiguration.Rule(name: "all")
        rule.clip = true
        configuration.rules = [rule]
        let pipeline = EventPipeline(
            configuration: configuration, context: ControlPlaneSinkTests.context,
            outbox: try SinkOutbox(path: directory.appending(path: "inst-1.sqlite").path), sinks: [:],
            builtIn: events.builtInSinks(ControlPlaneSinkTests.sidecar(cameras: ["front": "cam-front"])),
            logger: Logger(label: "test"), initialBackoff: 0.02, maxBackoff: 0.1)
        pipeline.start()
        let recorded = try pipeline.record(
            OutgoingEvent(id: "e1", type: "defect", camera: "front", source: "node:inspector", payload: .object([:])))
        try pipeline.clipFinished(
            sequence: try #require(recorded.sequence), file: nil, error: "the camera had no packets for that time")
        await Self.waitUntil { (try? pipeline.outbox.backlog().isEmpty) == true }
        await pipeline.stop()
        #expect(server.events.withLock { $0 } == ["e1"])
        #expect(server.uploads.load(ordering: .relaxed) == 0)
        #expect(try pipeline.outbox.backlog().isEmpty)
    }
}
