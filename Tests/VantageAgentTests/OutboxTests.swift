import Foundation
import Testing

@testable import VantageAgent

@Suite("Outbox")
struct OutboxTests {
    /// A fresh folder under the temporary directory, removed after `body`.
    private func withFolder<T>(_ body: (URL) throws -> T) throws -> T {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "outbox-tests-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        return try body(folder)
    }

    private static let time = Date(timeIntervalSinceReferenceDate: 800_000_000.123_456)

    @discardableResult
    private func append(
        _ outbox: Outbox, _ index: Int, camera: String? = "cam-1", data: String? = nil, snapshot: [UInt8]? = nil
    ) throws -> OutboxEvent {
        try outbox.append(
            type: "person.entered", time: Self.time.addingTimeInterval(Double(index)), cameraId: camera,
            instanceId: "inst-1", data: data ?? #"{"n":\#(index)}"#, snapshot: snapshot)
    }

    /// The size of a stored file plus its -wal file.
    private func fileBytes(_ file: URL) -> Int64 {
        [file.path, file.path + "-wal"].reduce(0) { total, path in
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            return total + ((attributes?[.size] as? NSNumber)?.int64Value ?? 0)
        }
    }

    @Test("events survive closing and reopening, in order, and sequences keep increasing")
    func durableAcrossReopen() throws {
        try withFolder { folder in
            let file = folder.appendingPathComponent("state/outbox.sqlite")
            var stored: [OutboxEvent] = []
            do {
                let outbox = try Outbox(path: file, limitBytes: 1 << 20)
                stored.append(try append(outbox, 0, snapshot: [0xFF, 0xD8, 0xFF, 0xD9]))
                stored.append(try append(outbox, 1, camera: "cam-2"))
                stored.append(try append(outbox, 2, camera: nil, snapshot: []))
                stored.append(try append(outbox, 3, data: #"{"label":"häagen-dazs ☕"}"#))
                #expect(stored.map(\.sequence) == stored.map(\.sequence).sorted())
                #expect(Set(stored.map(\.id)).count == stored.count)
                #expect(try outbox.pending(limit: 100, maxBytes: .max) == stored)
            }

            let reopened = try Outbox(path: file, limitBytes: 1 << 20)
            #expect(try reopened.pending(limit: 100, maxBytes: .max) == stored)
            #expect(try reopened.counters.pendingEvents == stored.count)
            let later = try append(reopened, 4)
            #expect(later.sequence > stored.last!.sequence)

            // Even with everything acknowledged, a reopened outbox never reuses a sequence.
            try reopened.acknowledge(stored.map(\.id) + [later.id])
            #expect(try reopened.pending(limit: 100, maxBytes: .max).isEmpty)
            let afterDrain = try Outbox(path: file, limitBytes: 1 << 20)
            let drained = try afterDrain.counters
            #expect(drained.appendedEvents == 5)
            #expect(drained.acknowledgedEvents == 5)
            #expect(try append(afterDrain, 5).sequence > later.sequence)
        }
    }

    @Test("drop counters are persisted in the file")
    func countersSurviveReopen() throws {
        try withFolder { folder in
            let file = folder.appendingPathComponent("outbox.sqlite")
            let counters: OutboxCounters
            do {
                let outbox = try Outbox(path: file, limitBytes: 8 * 1024)
                for index in 0..<20 { try append(outbox, index, snapshot: [UInt8](repeating: 7, count: 1000)) }
                counters = try outbox.counters
                #expect(counters.droppedSnapshots > 0)
            }
            #expect(try Outbox(path: file, limitBytes: 8 * 1024).counters == counters)
        }
    }

    @Test("acknowledging deletes exactly the given events and ignores unknown ids")
    func acknowledgeDeletesExactly() throws {
        try withFolder { folder in
            let outbox = try Outbox(path: folder.appendingPathComponent("outbox.sqlite"), limitBytes: 1 << 20)
            let events = try (0..<10).map { try append(outbox, $0, snapshot: [UInt8](repeating: 1, count: 100)) }
            let acknowledged = [events[2].id, events[5].id, events[9].id]
            try outbox.acknowledge(acknowledged + ["not-an-event"])

            let left = try outbox.pending(limit: 100, maxBytes: .max)
            #expect(left == events.filter { !acknowledged.contains($0.id) })
            let counters = try outbox.counters
            #expect(counters.pendingEvents == 7)
            #expect(
                counters.pendingBytes
                    == left.reduce(0) {
                        $0
                            + Outbox.size(
                                type: $1.type, cameraId: $1.cameraId, instanceId: $1.instanceId, data: $1.data,
                                snapshotBytes: $1.snapshot?.count ?? 0)
                    })
            #expect(counters.droppedEvents == 0)
            #expect(counters.acknowledgedEvents == 3)
            #expect(counters.appendedEvents == 10)

            // A repeated acknowledgement (a lost answer, sent again) changes nothing.
            try outbox.acknowledge(acknowledged)
            #expect(try outbox.pending(limit: 100, maxBytes: .max) == left)
            #expect(try outbox.counters == counters)
        }
    }

    @Test("pending answers the oldest events within the count and byte limits, and at least one")
    func pendingRespectsLimits() throws {
        try withFolder { folder in
            let outbox = try Outbox(path: folder.appendingPathComponent("outbox.sqlite"), limitBytes: 1 << 20)
            #expect(try outbox.pending(limit: 10, maxBytes: 1 << 20).isEmpty)
            let events = try (0..<6).map { try append(outbox, $0, snapshot: [UInt8](repeating: 2, count: 1000)) }
            let eventSize = Outbox.size(
                type: events[0].type, cameraId: events[0].cameraId, instanceId: events[0].instanceId,
                data: events[0].data, snapshotBytes: 1000)

            #expect(try outbox.pending(limit: 3, maxBytes: .max) == Array(events[0..<3]))
            #expect(try outbox.pending(limit: 10, maxBytes: 2 * eventSize + eventSize / 2) == Array(events[0..<2]))
            // One event larger than the byte limit still goes out, alone, so it cannot block the queue.
            #expect(try outbox.pending(limit: 10, maxBytes: 1) == [events[0]])
            #expect(try outbox.pending(limit: 0, maxBytes: .max) == [events[0]])
        }
    }

    @Test("a backlog far beyond the bound sheds the oldest snapshots first and counts every drop")
    func overflowEvictsOldestSnapshotsFirst() throws {
        try withFolder { folder in
            let file = folder.appendingPathComponent("outbox.sqlite")
            let limit: Int64 = 1 << 20
            let outbox = try Outbox(path: file, limitBytes: limit)
            let snapshot = [UInt8](repeating: 0xAB, count: 10 * 1024)
            let appended = 2000
            for index in 0..<appended {
                try append(outbox, index, camera: "cam-\(index % 3)", snapshot: snapshot)
                let counters = try outbox.counters
                #expect(counters.pendingBytes <= limit)
                // The metadata of 2,000 events fits the bound: no event is lost while snapshots can go.
                #expect(counters.droppedEvents == 0)
            }

            let counters = try outbox.counters
            #expect(counters.pendingEvents == appended)
            let events = try outbox.pending(limit: appended, maxBytes: .max)
            #expect(events.count == appended)
            #expect(events.map(\.sequence) == events.map(\.sequence).sorted())
            let withSnapshot = events.filter { $0.snapshot != nil }
            // The newest events keep their snapshots, untouched; all older ones lost theirs, and each loss is counted.
            #expect(withSnapshot.count > 10)
            #expect(withSnapshot == Array(events.suffix(withSnapshot.count)))
            #expect(withSnapshot.allSatisfy { $0.snapshot == snapshot })
            #expect(counters.droppedSnapshots == Int64(appended - withSnapshot.count))
            #expect(fileBytes(file) < 4 * limit)
        }
    }

    @Test("when the metadata alone fills the bound, the oldest events are deleted and counted")
    func overflowDeletesOldestEventsLast() throws {
        try withFolder { folder in
            let file = folder.appendingPathComponent("outbox.sqlite")
            let limit: Int64 = 1 << 20
            let outbox = try Outbox(path: file, limitBytes: limit)
            let data = #"{"detail":"\#(String(repeating: "x", count: 4000))"}"#
            let snapshot = [UInt8](repeating: 0xCD, count: 10 * 1024)
            let appended = 2000
            var last: OutboxEvent?
            for index in 0..<appended {
                let before = try outbox.counters
                last = try append(outbox, index, data: data, snapshot: snapshot)
                let after = try outbox.counters
                #expect(after.pendingBytes <= limit)
                #expect(after.pendingEvents + Int(after.droppedEvents) == index + 1)
                #expect(after.appendedEvents == Int64(index + 1))
                if after.droppedEvents > before.droppedEvents {
                    // Metadata goes only when no snapshot is left to drop: this event lost its own as well.
                    #expect(last?.snapshot == nil)
                    if before.droppedEvents == 0 {
                        #expect(try outbox.pending(limit: appended, maxBytes: .max).allSatisfy { $0.snapshot == nil })
                        #expect(after.droppedSnapshots == Int64(index + 1))
                    }
                }
            }

            let counters = try outbox.counters
            #expect(counters.droppedEvents > 0)
            #expect(counters.pendingEvents + Int(counters.droppedEvents) == appended)
            // What is left is the newest events, without a gap.
            let events = try outbox.pending(limit: appended, maxBytes: .max)
            #expect(events.count == counters.pendingEvents)
            #expect(events.last == last)
            let sequences = events.map(\.sequence)
            #expect(sequences == Array(sequences.first!...sequences.last!))
            #expect(fileBytes(file) < 4 * limit)

            // Draining the backlog gives the space back to the disk.
            var batch = try outbox.pending(limit: 100, maxBytes: .max)
            while !batch.isEmpty {
                try outbox.acknowledge(batch.map(\.id))
                batch = try outbox.pending(limit: 100, maxBytes: .max)
            }
            #expect(try outbox.counters.pendingBytes == 0)
            #expect(fileBytes(file) < limit / 2)
        }
    }

    @Test("an event larger than the bound keeps its metadata and loses its snapshot")
    func oversizedSnapshotIsDropped() throws {
        try withFolder { folder in
            let outbox = try Outbox(path: folder.appendingPathComponent("outbox.sqlite"), limitBytes: 4096)
            let event = try append(outbox, 0, snapshot: [UInt8](repeating: 1, count: 8192))
            #expect(event.snapshot == nil)
            #expect(try outbox.pending(limit: 10, maxBytes: .max) == [event])
            #expect(try outbox.counters.droppedSnapshots == 1)

            // Metadata alone over the bound cannot be kept: the append fails, and the loss is counted.
            let error = try #require(throws: OutboxError.self) {
                try append(outbox, 1, data: String(repeating: "y", count: 5000))
            }
            #expect(error.code == .eventTooLarge)
            #expect(error.message.contains("raise the outbox limit"))
            let counters = try outbox.counters
            #expect(counters.droppedEvents == 1)
            #expect(counters.pendingEvents == 1)
            #expect(counters.appendedEvents == 2)
            // Its sequence number stays unused: the gap shows where the event was lost.
            #expect(try append(outbox, 2).sequence == event.sequence + 2)
        }
    }

    @Test("a damaged outbox file gives an error naming it and saying to move it aside")
    func damagedFile() throws {
        try withFolder { folder in
            let file = folder.appendingPathComponent("outbox.sqlite")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let garbage = (0..<65536).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            try Data(garbage).write(to: file)

            let error = try #require(throws: OutboxError.self) { try Outbox(path: file, limitBytes: 1 << 20) }
            #expect(error.code == .damaged)
            #expect(error.path == file.path)
            #expect(error.message.contains(file.path))
            #expect(error.message.contains("damaged"))
            #expect(error.message.contains("move it aside"))

            // Moved aside as the message says, the agent starts a new, empty outbox.
            try FileManager.default.moveItem(at: file, to: file.appendingPathExtension("damaged"))
            #expect(try Outbox(path: file, limitBytes: 1 << 20).counters.pendingEvents == 0)
        }
    }

    @Test("a folder that cannot be created gives an error naming the outbox file")
    func unwritableFolder() throws {
        try withFolder { folder in
            // A regular file where the folder should be: fails even for root, unlike permissions.
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let blocker = folder.appendingPathComponent("state")
            try Data("not a folder".utf8).write(to: blocker)
            let file = blocker.appendingPathComponent("outbox.sqlite")

            let error = try #require(throws: OutboxError.self) { try Outbox(path: file, limitBytes: 1 << 20) }
            #expect(error.code == .unwritable)
            #expect(error.message.contains(file.path))
            #expect(error.message.contains("free disk space"))
        }
    }

    @Test("a full disk fails the append with an error saying to free disk space, and keeps what was stored")
    func diskFull() throws {
        try withFolder { folder in
            let file = folder.appendingPathComponent("outbox.sqlite")
            // 64 pages of 4 KiB: the "disk" fills long before the outbox's own bound.
            let outbox = try Outbox(path: file, limitBytes: 1 << 30, maxPageCount: 64)
            let snapshot = [UInt8](repeating: 3, count: 10 * 1024)
            var stored: [OutboxEvent] = []
            var failure: OutboxError?
            for index in 0..<100 {
                do {
                    stored.append(try append(outbox, index, snapshot: snapshot))
                } catch let error as OutboxError {
                    failure = error
                    break
                }
            }
            let error = try #require(failure)
            #expect(error.code == .diskFull)
            #expect(error.message.contains(file.path))
            #expect(error.message.contains("free disk space"))
            // The failed append stored nothing; everything before it is intact.
            #expect(try outbox.pending(limit: 100, maxBytes: .max) == stored)
            #expect(try outbox.counters.pendingEvents == stored.count)

            // Once the server has acknowledged a few, there is room again.
            try outbox.acknowledge(stored.prefix(5).map(\.id))
            let next = try append(outbox, 100, snapshot: snapshot)
            #expect(next.sequence > stored.last!.sequence)
        }
    }

    @Test("appends from many threads get distinct, increasing sequences and none is lost")
    func concurrentAppends() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "outbox-tests-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outbox = try Outbox(path: folder.appendingPathComponent("outbox.sqlite"), limitBytes: 1 << 20)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for index in 0..<25 {
                        try outbox.append(
                            type: "t", time: Date(), cameraId: "cam-\(writer)", instanceId: nil,
                            data: "{\"i\":\(index)}",
                            snapshot: nil)
                    }
                }
            }
            try await group.waitForAll()
        }
        let events = try outbox.pending(limit: 1000, maxBytes: .max)
        #expect(events.count == 100)
        #expect(Set(events.map(\.sequence)).count == 100)
        // In order per camera: each writer's events come out in the order it appended them.
        for writer in 0..<4 {
            let data = events.filter { $0.cameraId == "cam-\(writer)" }.map(\.data)
            #expect(data == (0..<25).map { "{\"i\":\($0)}" })
        }
    }
}
