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
        #expect(keys == outboxKeys.union(["rejectedEvents"]), "\(keys)")

        // A restarted agent (and a tool reading the files) sees the same totals.
        let restarted = InstanceEvents(
            folder: folder, limitBytes: 1 << 20, device: "box", logger: Logger(label: "test"), send: send)
        #expect(restarted.counters().outbox == outbox)
        #expect(restarted.counters().rejected == 1)
        #expect(try InstanceEvents.totals(in: folder) == outbox)
        await events.stopAll()
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
        #expect(try RetiredOutboxes.decode(all.encoded()) == all)
    }
}
