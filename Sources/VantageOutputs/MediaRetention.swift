import Foundation

/// Keeps the local event folder (snapshots and clips) within its age and size limits: deletes the oldest files first,
/// never one the outbox still has to deliver.
public struct MediaRetention: Sendable {
    public var directories: [URL]
    public var maxAge: Double?
    public var maxBytes: Int64?

    public init(directories: [URL], maxAge: Double?, maxBytes: Int64?) {
        self.directories = directories
        self.maxAge = maxAge
        self.maxBytes = maxBytes
    }

    /// What one sweep did.
    public struct Sweep: Sendable, Equatable {
        public var deletedFiles = 0
        public var deletedBytes: Int64 = 0
        /// What is left.
        public var keptFiles = 0
        public var keptBytes: Int64 = 0
    }

    /// Deletes files older than `maxAge`, then the oldest until the total is under `maxBytes`, sparing `inUse`.
    public func sweep(now: Date = Date(), inUse: Set<String>) -> Sweep {
        let fm = FileManager.default
        var files: [(path: String, modified: Date, size: Int64)] = []
        for directory in directories {
            guard
                let walker = fm.enumerator(
                    at: directory,
                    includingPropertiesForKeys: [.contentModificationDateKey, .fileSizeKey, .isRegularFileKey])
            else { continue }
            for case let url as URL in walker {
                guard
                    let values = try? url.resourceValues(forKeys: [
                        .contentModificationDateKey, .fileSizeKey, .isRegularFileKey,
                    ]),
                    values.isRegularFile == true
                else { continue }
                files.append((url.path, values.contentModificationDate ?? now, Int64(values.fileSize ?? 0)))
            }
        }
        files.sort { $0.modified < $1.modified }
        var total = files.reduce(Int64(0)) { $0 + $1.size }
        var result = Sweep()
        for file in files {
            let tooOld = maxAge.map { now.timeIntervalSince(file.modified) > $0 } ?? false
            let tooBig = maxBytes.map { total > $0 } ?? false
            if (tooOld || tooBig) && !inUse.contains(file.path) && (try? fm.removeItem(atPath: file.path)) != nil {
                total -= file.size
                result.deletedFiles += 1
                result.deletedBytes += file.size
            } else {
                result.keptFiles += 1
                result.keptBytes += file.size
            }
        }
        return result
    }
}
