import Foundation
import Logging
import VantageMedia

/// Collects what a code node writes into its logs folder (Panorama's `/opt/aws/panorama/logs`, which Panorama
/// shipped to CloudWatch): new lines of every file there go to the runtime's log, tagged with the node and the file.
/// Positions are kept by inode, so rotation is followed: when `RotatingFileHandler` renames `app.log` to `app.log.1`
/// and starts a new `app.log`, `app.log.1` goes on from where `app.log` was (nothing is read twice) and the new
/// `app.log` is read from its start; a file that shrank (truncated) is read from its start. The same line is passed
/// on at most a few times a second (`RepeatedLineLimiter`), and a line longer than 16 KiB is passed on cut
/// (`LogLineSplitter`): the lines after it still come.
final class AppLogCollector {
    // Not Sendable: made and run by one task (`AppHost.run`'s collecting task), which alone touches `positions` and
    // `limiter`.
    private let directory: URL
    private let logger: Logger
    /// Per file: its inode, how far it was read, its first bytes — a file made with the inode of one deleted
    /// meanwhile (rotation deletes the oldest) starts otherwise, and is read from its start — and whether it was
    /// left inside a line that was cut.
    private struct Position {
        var inode: UInt64
        var offset: Int
        var head: Data
        var splitter = LogLineSplitter()
    }
    private var positions: [String: Position] = [:]
    private var limiter = RepeatedLineLimiter()
    /// Bytes read from one file per read; a file is read until caught up or `maxBytesPerPass` were read.
    private static let chunkBytes = 1 << 20
    private static let maxBytesPerPass = 16 << 20

    init(directory: URL, node: String, logger: Logger) {
        self.directory = directory
        var logger = logger
        logger[metadataKey: "app.node"] = "\(node)"
        self.logger = logger
        // Lines written by earlier runs were collected then: start at the current ends.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] {
            let path = directory.appendingPathComponent(name).path
            if let (inode, size) = Self.fileInfo(path) {
                positions[name] = Position(inode: inode, offset: size, head: Self.head(of: path))
            }
        }
    }

    /// Polls the folder until the task is cancelled or `stopped` returns true; one last pass at the end.
    func run(every interval: Duration = .seconds(1), stopped: @escaping @Sendable () -> Bool) async {
        while !Task.isCancelled && !stopped() {
            collect()
            try? await Task.sleep(for: interval)
        }
        collect()
    }

    /// Reads the new complete lines of every file.
    func collect() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
        for summary in limiter.summaries(now: monotonicNanos()) { logger.info("\(summary)") }
        // Where each file was read to, by inode: a renamed file keeps its place.
        var byInode: [UInt64: Position] = [:]
        for position in positions.values { byInode[position.inode] = position }
        positions.removeAll(keepingCapacity: true)  // files that are gone are forgotten
        for name in names.sorted() {
            let path = directory.appendingPathComponent(name).path
            guard let (inode, size) = Self.fileInfo(path) else { continue }
            let head = Self.head(of: path)
            var position = Position(inode: inode, offset: 0, head: head)
            if let known = byInode[inode], known.offset <= size, head.starts(with: known.head) || known.head.isEmpty {
                position.offset = known.offset
                position.splitter = known.splitter
            }
            position.head = head
            defer { positions[name] = position }
            guard size > position.offset, let handle = FileHandle(forReadingAtPath: path) else { continue }
            defer { try? handle.close() }
            // Complete lines only (a partial last line waits for its newline), unless it is too long already.
            var read = 0
            while position.offset < size && read < Self.maxBytesPerPass {
                try? handle.seek(toOffset: UInt64(position.offset))
                guard let data = try? handle.read(upToCount: min(size - position.offset, Self.chunkBytes)),
                    !data.isEmpty
                else { break }
                read += data.count
                let used = data.withUnsafeBytes { raw in
                    position.splitter.split(raw) { line in
                        guard !line.isEmpty, limiter.admit(line, now: monotonicNanos()) else { return }
                        logger.info("\(line)", metadata: ["app.log": "\(name)"])
                    }
                }
                position.offset += used
                if used == 0 { break }  // a partial line: wait for the rest
            }
        }
    }

    /// The first 64 bytes of a file (fewer while it is shorter).
    private static func head(of path: String) -> Data {
        guard let handle = FileHandle(forReadingAtPath: path) else { return Data() }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 64)) ?? Data()
    }

    private static func fileInfo(_ path: String) -> (UInt64, Int)? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            attributes[.type] as? FileAttributeType == .typeRegular,
            let inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value,
            let size = (attributes[.size] as? NSNumber)?.intValue
        else { return nil }
        return (inode, size)
    }
}
