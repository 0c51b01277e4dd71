import Foundation
import Logging
import VantageMedia

/// Collects what a code node writes into its logs folder (Panorama's `/opt/aws/panorama/logs`, which Panorama
/// shipped to CloudWatch): new lines of every file there go to the runtime's log, tagged with the node and the file.
/// Positions are kept by inode, so rotation is followed: when `RotatingFileHandler` renames `app.log` to `app.log.1`
/// and starts a new `app.log`, `app.log.1` goes on from where `app.log` was (nothing is read twice) and the new
/// `app.log` is read from its start; a file that shrank (truncated) is read from its start. The same line is passed
/// on at most a few times a second (`RepeatedLineLimiter`).
final class AppLogCollector: @unchecked Sendable {
    // Unchecked: `positions` and `limiter` are touched only by the one task running `collect`.
    private let directory: URL
    private let logger: Logger
    /// Per file: its inode, how far it was read, and its first bytes — a file made with the inode of one deleted
    /// meanwhile (rotation deletes the oldest) starts otherwise, and is read from its start.
    private var positions: [String: (inode: UInt64, offset: Int, head: Data)] = [:]
    private var limiter = RepeatedLineLimiter()

    init(directory: URL, node: String, logger: Logger) {
        self.directory = directory
        var logger = logger
        logger[metadataKey: "app.node"] = "\(node)"
        self.logger = logger
        // Lines written by earlier runs were collected then: start at the current ends.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] {
            let path = directory.appendingPathComponent(name).path
            if let (inode, size) = Self.fileInfo(path) { positions[name] = (inode, size, Self.head(of: path)) }
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
        var byInode: [UInt64: (offset: Int, head: Data)] = [:]
        for position in positions.values { byInode[position.inode] = (position.offset, position.head) }
        positions.removeAll(keepingCapacity: true)  // files that are gone are forgotten
        for name in names.sorted() {
            let path = directory.appendingPathComponent(name).path
            guard let (inode, size) = Self.fileInfo(path) else { continue }
            let head = Self.head(of: path)
            var offset = 0
            if let known = byInode[inode], known.offset <= size, head.starts(with: known.head) || known.head.isEmpty {
                offset = known.offset
            }
            guard size > offset, let handle = FileHandle(forReadingAtPath: path) else {
                positions[name] = (inode, offset, head)
                continue
            }
            defer { try? handle.close() }
            try? handle.seek(toOffset: UInt64(offset))
            let data = (try? handle.read(upToCount: min(size - offset, 1 << 20))) ?? Data()
            // Only complete lines; a partial last line waits for its newline.
            guard let lastNewline = data.lastIndex(of: UInt8(ascii: "\n")) else {
                positions[name] = (inode, offset, head)
                continue
            }
            let complete = data[data.startIndex...lastNewline]
            for line in complete.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
                let text = String(decoding: line, as: UTF8.self)
                guard limiter.admit(text, now: monotonicNanos()) else { continue }
                logger.info("\(text)", metadata: ["app.log": "\(name)"])
            }
            offset += complete.count
            positions[name] = (inode, offset, head)
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
