import Foundation
import Logging

/// Collects what a code node writes into its logs folder (Panorama's `/opt/aws/panorama/logs`, which Panorama
/// shipped to CloudWatch): new lines of every file there go to the runtime's log, tagged with the node and the file.
/// Rotated files (renamed, truncated) are followed: a file whose inode changed or that shrank is read from its start.
final class AppLogCollector: @unchecked Sendable {
    // Unchecked: `positions` is touched only by the one task running `collect`.
    private let directory: URL
    private let logger: Logger
    private var positions: [String: (inode: UInt64, offset: Int)] = [:]

    init(directory: URL, node: String, logger: Logger) {
        self.directory = directory
        var logger = logger
        logger[metadataKey: "app.node"] = "\(node)"
        self.logger = logger
        // Lines written by earlier runs were collected then: start at the current ends.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] {
            if let (inode, size) = Self.fileInfo(directory.appendingPathComponent(name).path) {
                positions[name] = (inode, size)
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
        for name in names.sorted() {
            let path = directory.appendingPathComponent(name).path
            guard let (inode, size) = Self.fileInfo(path) else { continue }
            var offset = positions[name].map { $0.inode == inode && $0.offset <= size ? $0.offset : 0 } ?? 0
            guard size > offset, let handle = FileHandle(forReadingAtPath: path) else {
                positions[name] = (inode, offset)
                continue
            }
            defer { try? handle.close() }
            try? handle.seek(toOffset: UInt64(offset))
            let data = (try? handle.read(upToCount: min(size - offset, 1 << 20))) ?? Data()
            // Only complete lines; a partial last line waits for its newline.
            guard let lastNewline = data.lastIndex(of: UInt8(ascii: "\n")) else {
                positions[name] = (inode, offset)
                continue
            }
            let complete = data[data.startIndex...lastNewline]
            for line in complete.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
                logger.info("\(String(decoding: line, as: UTF8.self))", metadata: ["app.log": "\(name)"])
            }
            offset += complete.count
            positions[name] = (inode, offset)
        }
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
