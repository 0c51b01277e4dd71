import Foundation
import Testing
import VantageCore

@testable import VantageOutputs

/// A full disk (issue 17, fault 2): the agent asks each outbox to let go of its pending events' snapshots, oldest
/// first, so that images go before any event does. (The end to end form, on a really full file system, is
/// DiskFullEndToEndTests.)
@Suite("Outbox on a full disk")
struct OutboxDiskFullTests {
    @Test("dropSnapshots lets go of the oldest pending events' snapshots first, counts each, and keeps every event")
    func dropSnapshotsOldestFirst() throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "outbox-full-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outbox = try SinkOutbox(path: folder.appending(path: "outbox.sqlite").path, limitBytes: 64 << 20)
        var files: [String] = []
        var sequences: [Int64] = []
        for index in 0..<5 {
            let file = folder.appending(path: "snapshot-\(index).jpg")
            try Data(repeating: UInt8(index), count: 10_000).write(to: file)
            files.append(file.path)
            let message = OutgoingEvent(
                id: "e\(index)", type: "person.entered", time: Date(), camera: "cam-1", source: "node:counter",
                payload: .object(["n": .number(Double(index))])
            ).message(context: EventContext(device: "box", instance: "inst-1", application: "people"))
            sequences.append(
                try outbox.add(
                    message: message, snapshotFile: file.path, clipPending: false, objectSinks: ["store"],
                    deliveries: [("store", .snapshot), ("hook", .message)]))
        }
        let before = outbox.counters

        // 25,000 bytes asked: the three oldest snapshots (10,000 bytes each) go, the newest two stay.
        let released = try outbox.dropSnapshots(freeing: 25_000)
        #expect(released == Array(files.prefix(3)), "oldest first: \(released)")
        let after = outbox.counters
        #expect(after.droppedSnapshots == before.droppedSnapshots + 3, "\(after)")
        #expect(after.droppedEvents == 0 && after.pendingEvents == 5, "every event is kept: \(after)")
        #expect(after.pendingBytes == before.pendingBytes - 30_000)
        for (index, sequence) in sequences.enumerated() {
            let event = try #require(try outbox.event(sequence))
            if index < 3 {
                #expect(event.snapshotFile == nil)
                #expect(event.message["snapshot"]?["error"]?.stringValue == SinkOutbox.droppedSnapshot)
            } else {
                #expect(event.snapshotFile == files[index])
            }
        }
        let inUse = try outbox.filesInUse()
        #expect(inUse.isDisjoint(with: released), "the files let go are not needed any more, so they can be deleted")
        #expect(inUse.isSuperset(of: files.suffix(2)))
        // The counts are in the file: a restart reports them too.
        let reopened = try SinkOutbox(path: outbox.path, limitBytes: 64 << 20)
        #expect(reopened.counters.droppedSnapshots == after.droppedSnapshots)
    }
}
