import Foundation
import Logging
import Synchronization
import VantageMedia

/// Where a runtime's events go when not to a file: `vantage agent` stores them in its outbox.
public protocol EventDestination: Sendable {
    /// Stores one event durably before returning; throws (with a message for the application) when it cannot.
    func store(_ event: RuntimeEvent) throws
}

/// One event an application published.
public struct RuntimeEvent: Sendable {
    public var time: Date
    public var application: String
    /// The code node that published it.
    public var node: String
    /// The camera stream of its snapshot's frame, when it has one.
    public var stream: String?
    /// The application's JSON object, as it sent it.
    public var payload: String
    /// The snapshot with its overlays drawn, as JPEG.
    public var snapshotJPEG: [UInt8]?
}

/// Writes events as JSON lines (to a file or standard output), each with its snapshot JPEG beside it.
///
/// An event is acknowledged to the application only after its line (and snapshot) were written and flushed, so
/// an accepted event is not lost; a write that fails (disk full, folder gone) is refused with a message saying so.
final class EventSink: @unchecked Sendable {
    // Unchecked: the mutable stored properties (a non-Sendable JPEG encoder among them) are only touched under
    // `lock`.

    private let lock = NSLock()
    private let handle: FileHandle
    private let encoder = JPEGEncoder(quality: 85)
    private var scratch: [UInt8] = []
    private var jpeg: [UInt8] = []
    private var written: UInt64 = 0
    private let snapshotsDirectory: URL
    let destinationName: String
    /// When set, events go there instead of to `handle`.
    private let destination: (any EventDestination)?

    init(file: URL?, snapshotsDirectory: URL, destination: (any EventDestination)? = nil) throws {
        self.destination = destination
        if let destination {
            handle = FileHandle.standardOutput
            destinationName = "\(type(of: destination))"
        } else if let file {
            let fm = FileManager.default
            try fm.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            if !fm.fileExists(atPath: file.path) { _ = fm.createFile(atPath: file.path, contents: nil) }
            guard let h = FileHandle(forWritingAtPath: file.path) else {
                throw RuntimeError("cannot write events to \(file.path): check the folder's permissions")
            }
            h.seekToEndOfFile()
            handle = h
            destinationName = file.path
        } else {
            handle = FileHandle.standardOutput
            destinationName = "standard output"
        }
        self.snapshotsDirectory = snapshotsDirectory
    }

    var count: UInt64 { lock.withLock { written } }

    /// A snapshot to write with an event: a frame's pixels and the overlays to draw on a copy of them.
    struct Snapshot {
        var image: ImageBuffer
        var overlays: [Overlay]
        var stream: String
    }

    /// Writes one event. `payload` is the application's JSON object, kept as it is.
    func write(application: String, node: String, payload: String, snapshot: Snapshot?) throws {
        let time = Date()
        if let destination {
            let jpeg = try snapshot.map { snapshot in try lock.withLock { try encodeSnapshot(snapshot) } }
            try destination.store(
                RuntimeEvent(
                    time: time, application: application, node: node, stream: snapshot?.stream, payload: payload,
                    snapshotJPEG: jpeg))
            lock.withLock { written += 1 }
            return
        }
        try lock.withLock {
            var snapshotPath: String?
            if let snapshot {
                snapshotPath = try writeSnapshot(snapshot, time: time, node: node)
            }
            var line = "{\"time\":\"\(Self.format(time))\",\"application\":\(jsonString(application)),"
            line += "\"node\":\(jsonString(node)),"
            if let snapshot {
                line += "\"stream\":\(jsonString(snapshot.stream)),\"snapshot\":\(jsonString(snapshotPath!)),"
            }
            line += "\"payload\":\(payload)}\n"
            do {
                try handle.write(contentsOf: Data(line.utf8))
                try handle.synchronize()
            } catch let error as NSError where error.domain == NSPOSIXErrorDomain && error.code == Int(EINVAL) {
                // Standard output to a terminal or pipe cannot be synchronised; the write itself went through.
            } catch {
                throw RuntimeError(
                    "cannot write the event to \(destinationName): \(error.localizedDescription); free disk space or fix the path"
                )
            }
            written += 1
        }
    }

    /// Draws the overlays on a copy of the frame and encodes it as JPEG into `jpeg`; answers a copy of the bytes.
    /// Called under `lock`.
    @discardableResult
    private func encodeSnapshot(_ snapshot: Snapshot) throws -> [UInt8] {
        let image = snapshot.image
        let bytes = image.stride * image.height
        if scratch.count < bytes { scratch = [UInt8](repeating: 0, count: bytes) }
        try scratch.withUnsafeMutableBytes { raw in
            raw.baseAddress!.copyMemory(from: image.base, byteCount: bytes)
            let copy = ImageBuffer(
                base: raw.baseAddress!, width: image.width, height: image.height, stride: image.stride)
            ImageCanvas.draw(snapshot.overlays, on: copy)
            try encoder.encode(copy, into: &jpeg)
        }
        return jpeg
    }

    /// Draws the overlays on a copy of the frame and writes it as a JPEG. Called under `lock`.
    private func writeSnapshot(_ snapshot: Snapshot, time: Date, node: String) throws -> String {
        try encodeSnapshot(snapshot)
        let fm = FileManager.default
        try fm.createDirectory(at: snapshotsDirectory, withIntermediateDirectories: true)
        let stamp = Self.fileStamp(time)
        let url = snapshotsDirectory.appendingPathComponent("\(stamp)-\(snapshot.stream)-\(written + 1).jpg")
        do {
            try Data(jpeg).write(to: url, options: .atomic)
        } catch {
            throw RuntimeError(
                "cannot write the snapshot \(url.path): \(error.localizedDescription); free disk space or choose --snapshots DIR"
            )
        }
        return url.path
    }

    private static func format(_ date: Date) -> String {
        date.formatted(
            .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    private static func fileStamp(_ date: Date) -> String {
        let micros = Int64(date.timeIntervalSince1970 * 1e6)
        return "\(micros / 1_000_000)-\(String(format: "%06d", Int(micros % 1_000_000)))"
    }
}

/// A runtime failure worded for the user.
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
