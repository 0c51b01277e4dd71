import Foundation
import Logging
import Testing
import VantageAPI
import VantageCore
import VantageOutputs

@testable import VantageAgent

/// The device's outbox totals: read from the files without touching an outbox a runtime still writes, and kept
/// whole (rejected events included) when a removed instance's outbox is deleted.
@Suite("InstanceEvents counters")
struct InstanceEventsCountersTests {
    static func folder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appending(path: "instance-events-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    static func event(_ id: String) -> OutgoingEvent {
        OutgoingEvent(id: id, type: "defect", camera: "front", source: "node:inspector", payload: .object([:]))
    }

    @Test("reading the totals of a live outbox leaves the clip it is recording pending, and changes nothing")
    func totalsReadOnly() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let outbox = try SinkOutbox(path: folder.appending(path: "ins_live.sqlite").path)
        let clip = try outbox.add(
            message: .object(["id": .string("with-clip")]), snapshotFile: nil, clipPending: true, objectSinks: [],
            deliveries: [(sink: "@control-plane", part: .message)])
        try outbox.add(
            message: .object(["id": .string("plain")]), snapshotFile: nil, clipPending: false, objectSinks: [],
            deliveries: [(sink: "@control-plane", part: .message)])
        let file = folder.appending(path: "ins_live.sqlite").path
        func bytes() throws -> [Data] {
            try [file, file + "-wal"].map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        }
        let before = try bytes()

        let totals = try InstanceEvents.totals(in: folder)
        #expect(totals == outbox.counters, "the same figures the live outbox keeps")
        #expect(totals.pendingEvents == 2 && totals.recordedEvents == 2 && totals.pendingBytes > 0, "\(totals)")
        // Opening it as an outbox would have marked the clip failed under the runtime recording it.
        #expect(try outbox.event(clip)?.clipState == .pending)
        #expect(try bytes() == before, "the file and its WAL are unchanged")
        // The outbox still finishes its clip.
        try outbox.setClip(sequence: clip, file: folder.appending(path: "clip.mp4").path, error: nil)
        #expect(try outbox.event(clip)?.clipState == .ready)
    }

    @Test("the totals of a folder without outboxes, or with an outbox file not yet set up, are 0 and create nothing")
    func totalsOfOddFolders() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try InstanceEvents.totals(in: folder.appending(path: "missing")) == OutboxCounters())
        // A file its outbox is creating (no tables yet) counts as empty.
        FileManager.default.createFile(atPath: folder.appending(path: "ins_new.sqlite").path, contents: Data())
        #expect(try InstanceEvents.totals(in: folder) == OutboxCounters())
        #expect(!FileManager.default.fileExists(atPath: folder.appending(path: "ins_new.sqlite-wal").path))
    }

    @Test(
        "a removed instance's outbox is deleted once drained and retired.json keeps all its counts, rejected events included"
    )
    func retiredKeepsEveryCounter() async throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The control plane refuses one event for good (a 4xx) and takes the others.
        let send: @Sendable ([NewEvent]) async throws -> Void = { events in
            if events.contains(where: { $0.id == "refused" }) {
                throw LinkError.rejected(422, "cameraId is not a camera assigned to this device")
            }
        }
        let events = InstanceEvents(
            folder: folder, limitBytes: 1 << 20, device: "box", logger: Logger(label: "test"), send: send)
        let instance = DesiredInstance(
            id: "ins_gone", name: "entrance", packageId: "pkg_1", packageName: "people", packageVersion: "1.0",
            archiveDigest: "sha256:0", desiredState: .running,
            cameras: ["front": DesiredCamera(cameraId: "cam_1", url: "rtsp://camera/stream")], parameters: [:])
        let pipeline = try await events.open(
            instance, application: "people", outputs: OutputsConfiguration(), media: [])
        for id in ["first", "refused", "last"] { _ = try pipeline.record(Self.event(id)) }
        await pipeline.drain(ControlPlaneSink.name, timeout: .seconds(10))
        #expect(events.counters().rejected == 1)

        events.release(instance.id)
        await events.sweep(media: false)
        #expect(!FileManager.default.fileExists(atPath: events.outboxFile(of: instance.id).path), "deleted")
        let (outbox, rejected) = events.counters()
        #expect(outbox.recordedEvents == 3 && outbox.pendingEvents == 0, "\(outbox)")
        #expect(rejected == 1, "the rejected count does not go down when the outbox goes")

        // retired.json holds every counter the live outbox reports, and the rejected events.
        let data = try Data(contentsOf: folder.appending(path: "retired.json"))
        let keys = Set(try JSONDecoder().decode([String: Int64].self, from: data).keys)
        let outboxKeys = Set(
            try JSONDecoder().decode([String: Int64].self, from: JSONEncoder().encode(OutboxCounters())).keys)
        #expect(keys == outboxKeys.union(["rejectedEvents", "unstoredEvents"]), "\(keys)")

        // A restarted agent (and a tool reading the files) sees the same totals.
        let restarted = InstanceEvents(
            folder: folder, limitBytes: 1 << 20, device: "box", logger: Logger(label: "test"), send: send)
        #expect(restarted.counters().outbox == outbox)
        #expect(restarted.counters().rejected == 1)
        #expect(try InstanceEvents.totals(in: folder) == outbox)
        await events.stopAll()
    }

    @Test(
        "at a restart, a drained outbox whose instance is still installed is kept, so its events' sequence goes on; one whose instance was removed goes"
    )
    func restartKeepsTheSequence() async throws {
        // Seen in ClockSkewEndToEndTests: the agent restarted with the outbox delivered; the leftover was opened
        // (and, empty, deleted) before the instance's worker opened it, so its events were numbered from 1 again
        // and the server held two events with sequence 3.
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let instances = folder.appending(path: "instances")
        let send: @Sendable ([NewEvent]) async throws -> Void = { _ in }
        func instance(_ id: String) -> DesiredInstance {
            DesiredInstance(
                id: id, name: id, packageId: "pkg_1", packageName: "people", packageVersion: "1.0",
                archiveDigest: "sha256:0", desiredState: .running,
                cameras: ["front": DesiredCamera(cameraId: "cam_1", url: "rtsp://camera/stream")], parameters: [:])
        }
        let outboxes = folder.appending(path: "outbox")
        let first = InstanceEvents(
            folder: outboxes, limitBytes: 1 << 20, device: "box", logger: Logger(label: "test"), send: send)
        for id in ["ins_kept", "ins_removed"] {
            let pipeline = try await first.open(
                instance(id), application: "people", outputs: OutputsConfiguration(), media: [])
            for n in 1...3 { _ = try pipeline.record(Self.event("\(id)-\(n)")) }
            await pipeline.drain(ControlPlaneSink.name, timeout: .seconds(10))
        }
        await first.stopAll()
        // ins_kept is installed (the reconciler will start it); ins_removed was removed while the agent was down.
        try FileManager.default.createDirectory(
            at: instances.appending(path: "ins_kept"), withIntermediateDirectories: true)

        let restarted = InstanceEvents(
            folder: outboxes, limitBytes: 1 << 20, device: "box", logger: Logger(label: "test"), send: send)
        await restarted.resumeLeftovers(installedIn: instances)
        await restarted.sweep(media: false)
        #expect(FileManager.default.fileExists(atPath: restarted.outboxFile(of: "ins_kept").path), "kept")
        #expect(!FileManager.default.fileExists(atPath: restarted.outboxFile(of: "ins_removed").path), "retired")
        // The worker starts now: the next event is number 4, not 1.
        let pipeline = try await restarted.open(
            instance("ins_kept"), application: "people", outputs: OutputsConfiguration(), media: [])
        let recorded = try pipeline.record(Self.event("after-restart"))
        #expect(recorded.sequence == 4, "\(recorded)")
        await restarted.stopAll()
    }

    @Test("a retired.json written by an older agent is still read: the counters it lacks are 0")
    func oldRetiredFile() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        func counters(_ json: String) throws -> (OutboxCounters, Int) {
            try Data(json.utf8).write(to: folder.appending(path: "retired.json"))
            let events = InstanceEvents(
                folder: folder, limitBytes: 1 << 20, device: "box", logger: Logger(label: "test"), send: { _ in })
            let (outbox, rejected) = events.counters()
            #expect(try InstanceEvents.totals(in: folder) == outbox)
            return (outbox, rejected)
        }
        // As agents wrote it before rejected events were kept.
        let (old, rejected) = try counters(
            #"{"droppedEvents":3,"droppedSnapshots":1,"pendingBytes":0,"pendingEvents":0,"recordedEvents":10}"#)
        #expect(old.droppedEvents == 3 && old.droppedSnapshots == 1 && old.recordedEvents == 10, "\(old)")
        #expect(rejected == 0)
        // Any counter missing reads as 0, not as a file that cannot be read (which would lose the others).
        let (partial, _) = try counters(#"{"recordedEvents":7,"rejectedEvents":2}"#)
        #expect(partial.recordedEvents == 7 && partial.droppedEvents == 0, "\(partial)")
        #expect(try RetiredOutboxes.decode(Data(#"{"recordedEvents":7,"rejectedEvents":2}"#.utf8)).rejectedEvents == 2)
        // Written and read back whole.
        var all = RetiredOutboxes()
        all.outbox.droppedEvents = 4
        all.outbox.droppedSnapshots = 5
        all.outbox.recordedEvents = 6
        all.rejectedEvents = 7
        all.unstoredEvents = 8
        #expect(try RetiredOutboxes.decode(all.encoded()) == all)
    }

    @Test(
        "events a full disk kept out are a running total: saved to retired.json (at most once a second) and counted on after a restart"
    )
    func unstoredSurvivesRestart() async throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let events = InstanceEvents(
            folder: folder, limitBytes: 1 << 20, device: "box", logger: Logger(label: "test"), send: { _ in })
        // An outbox whose file cannot grow past 24 pages: a full disk, as the runtime's recorder meets it.
        let outbox = try SinkOutbox(path: folder.appending(path: "ins_full.sqlite").path, maxPageCount: 24)
        let pipeline = EventPipeline(
            configuration: OutputsConfiguration(),
            context: EventContext(device: "box", instance: "i", application: "a"),
            outbox: outbox, sinks: [:], builtIn: ["@control-plane": .stored(EventsSinkStub())],
            logger: Logger(label: "test"))
        let recorder = events.counting(pipeline)
        let payload = JSONValue.object(["text": .string(String(repeating: "x", count: 2000))])
        var refused = 0
        for n in 0..<200 {
            do {
                _ = try recorder.record(
                    OutgoingEvent(id: "e\(n)", type: "defect", camera: "front", source: "node:n", payload: payload))
            } catch {
                refused += 1
            }
        }
        #expect(refused > 100, "the full outbox refused the events past its size")
        #expect(events.unstoredEvents == Int64(refused))
        func saved() throws -> Int64? {
            try JSONDecoder().decode(
                [String: Int64].self, from: Data(contentsOf: folder.appending(path: "retired.json")))[
                    "unstoredEvents"]
        }
        // The first was written at once; the ones within the same second wait for the next write (a sweep, a
        // count a second later, or the stop), not one fsync each.
        #expect(try saved() ?? 0 >= 1)
        await events.sweep(media: false)
        #expect(try saved() == Int64(refused))

        // A restarted agent reports the same total, and counts on from it.
        let restarted = InstanceEvents(
            folder: folder, limitBytes: 1 << 20, device: "box", logger: Logger(label: "test"), send: { _ in })
        #expect(restarted.unstoredEvents == Int64(refused))
        #expect(throws: (any Error).self) {
            _ = try restarted.counting(pipeline).record(
                OutgoingEvent(type: "defect", camera: "front", source: "node:n", payload: payload))
        }
        #expect(restarted.unstoredEvents == Int64(refused) + 1)
        await restarted.stopAll()
        #expect(try saved() == Int64(refused) + 1, "saved by the stop at the latest")
        #expect(
            InstanceEvents(
                folder: folder, limitBytes: 1 << 20, device: "box", logger: Logger(label: "test"), send: { _ in }
            ).unstoredEvents == Int64(refused) + 1)
        // The outbox totals are untouched by it.
        #expect(restarted.counters().outbox.droppedEvents == 0)
    }

    @Test("the agent's --max-backoff-seconds bounds the retries of every instance's sinks")
    func maxBackoffReachesThePipelines() async throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let events = InstanceEvents(
            folder: folder, limitBytes: 1 << 20, device: "box", logger: Logger(label: "test"), maxBackoff: 7,
            send: { _ in })
        let instance = DesiredInstance(
            id: "ins_b", name: "entrance", packageId: "pkg_1", packageName: "people", packageVersion: "1.0",
            archiveDigest: "sha256:0", desiredState: .running,
            cameras: ["front": DesiredCamera(cameraId: "cam_1", url: "rtsp://camera/stream")], parameters: [:])
        let pipeline = try await events.open(
            instance, application: "people", outputs: OutputsConfiguration(), media: [])
        #expect(pipeline.maxBackoff == 7)
        await events.stopAll()
    }
}

/// A stored-event sink that takes everything (the full-disk test records, it does not deliver).
struct EventsSinkStub: StoredEventSink {
    func deliver(_ event: StoredEvent, message: JSONValue) async throws(SinkError) {}
    func shutdown() async {}
}
