import Foundation
import Synchronization
import Testing
import VantageCore
import VantageMedia
import VantageOutputs

@testable import VantageRuntime

/// A code node's event with a snapshot: the event is stored (and the application answered) before its JPEG is
/// encoded; the picture follows on the snapshot worker, and when the worker is behind it is encoded on the publish
/// path rather than lost.
@Suite("Code node snapshots")
struct EventSinkSnapshotTests {
    /// A recorder that keeps what it was given and can hold the snapshot worker in ``snapshotFinished``.
    final class HoldingRecorder: EventRecorder, @unchecked Sendable {
        // Unchecked: every stored property is touched only under `condition`.
        private let condition = NSCondition()
        private var events: [OutgoingEvent] = []
        /// Whether each event's snapshot file existed when the event was recorded.
        private var fileAtRecord: [Bool] = []
        private var finished: [(sequence: Int64, file: String?, error: String?)] = []
        private var holding = false

        func record(_ event: OutgoingEvent) throws -> EventPipeline.Recorded {
            condition.withLock {
                events.append(event)
                fileAtRecord.append(event.snapshotFile.map { FileManager.default.fileExists(atPath: $0) } ?? false)
                return EventPipeline.Recorded(sequence: Int64(events.count), wantsClip: false, sinks: ["@events"])
            }
        }
        func clipFinished(sequence: Int64, file: String?, error: String?) throws {}
        func snapshotFinished(sequence: Int64, file: String?, error: String?) throws {
            condition.withLock {
                finished.append((sequence, file, error))
                condition.broadcast()
                while holding { condition.wait() }
            }
        }
        func hold(_ on: Bool) {
            condition.withLock {
                holding = on
                condition.broadcast()
            }
        }
        /// Waits until `count` snapshots were reported (at most 20 s); answers them.
        func waitFinished(_ count: Int) -> [(sequence: Int64, file: String?, error: String?)] {
            condition.withLock {
                let deadline = Date().addingTimeInterval(20)
                while finished.count < count, condition.wait(until: deadline) {}
                return finished
            }
        }
        var recorded: [(event: OutgoingEvent, fileExisted: Bool)] {
            condition.withLock { Array(zip(events, fileAtRecord)) }
        }
    }

    /// A gray 64×48 frame with a red box drawn on its snapshot.
    static func publish(
        _ sink: EventSink, _ n: Int, pixels: UnsafeMutableRawBufferPointer
    ) throws {
        let image = ImageBuffer(base: pixels.baseAddress!, width: 64, height: 48)
        try sink.write(
            application: "inspector", node: "check", payload: #"{"type": "defect", "n": \#(n)}"#,
            snapshot: EventSink.Snapshot(
                image: image, overlays: [.rect(x0: 0.1, y0: 0.1, x1: 0.5, y1: 0.4, color: .red)],
                stream: "cam-1"))
    }

    @Test("the event is stored with its snapshot pending; the worker writes the JPEG and reports it")
    func snapshotAfterTheEvent() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sink-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let recorder = HoldingRecorder()
        let sink = EventSink(recorder: recorder, snapshotsDirectory: folder.appendingPathComponent("snapshots"))
        let pixels = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 48 * 3, alignment: 64)
        defer { pixels.deallocate() }
        pixels.initializeMemory(as: UInt8.self, repeating: 0x80)

        // The worker is held after its first snapshot: the application gets its answer all the same.
        recorder.hold(true)
        try Self.publish(sink, 1, pixels: pixels)
        let first = recorder.waitFinished(1)
        #expect(first.count == 1)
        let event = try #require(recorder.recorded.first)
        #expect(event.event.snapshotPending)
        #expect(event.event.type == "defect" && event.event.source == "node:check" && event.event.camera == "cam-1")
        #expect(first.first?.sequence == 1)
        #expect(first.first?.file == event.event.snapshotFile, "the snapshot was not written where its event said")
        #expect(first.first?.error == nil)
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: try #require(first.first?.file)))
        #expect(jpeg.prefix(2) == Data([0xFF, 0xD8]) && jpeg.suffix(2) == Data([0xFF, 0xD9]))

        // The held worker has all four buffers taken by the next events: the sixth is encoded on the publish path,
        // written before the event is stored, not dropped.
        for n in 2...6 { try Self.publish(sink, n, pixels: pixels) }
        let recorded = recorder.recorded
        #expect(recorded.count == 6)
        #expect(recorded[1..<5].allSatisfy { $0.event.snapshotPending && !$0.fileExisted })
        #expect(!recorded[5].event.snapshotPending && recorded[5].fileExisted)
        #expect(sink.inlineSnapshots == 1)

        recorder.hold(false)
        let all = recorder.waitFinished(5)
        #expect(all.map(\.sequence) == [1, 2, 3, 4, 5])
        #expect(
            all.allSatisfy { $0.error == nil && $0.file.map { FileManager.default.fileExists(atPath: $0) } == true })
        #expect(Set(all.compactMap(\.file)).count == 5)
        sink.finishSnapshots()
    }

    @Test("a snapshot that cannot be written is reported failed: the event goes without it")
    func unwritableSnapshot() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sink-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        // A file where the snapshots folder should be.
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: folder.appendingPathComponent("snapshots"))
        let recorder = HoldingRecorder()
        let sink = EventSink(recorder: recorder, snapshotsDirectory: folder.appendingPathComponent("snapshots"))
        let pixels = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 48 * 3, alignment: 64)
        defer { pixels.deallocate() }
        pixels.initializeMemory(as: UInt8.self, repeating: 0x20)

        try Self.publish(sink, 1, pixels: pixels)
        let finished = recorder.waitFinished(1)
        #expect(finished.count == 1)
        #expect(finished.first?.file == nil)
        #expect(finished.first?.error?.contains("cannot write the snapshot") == true)
        sink.finishSnapshots()
    }
}
