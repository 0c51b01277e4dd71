import Foundation
import Synchronization

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

    /// Moves every file's modification time by `seconds`: after the wall clock jumped by that much (``WallClockWatch``),
    /// so that each file keeps its age (a box a year behind set right does not find its fresh snapshots a year old;
    /// one an hour ahead set back does not keep its files an hour longer). Answers how many files it moved.
    @discardableResult
    public func shiftModificationTimes(by seconds: Double) -> Int {
        var moved = 0
        for (path, modified, _) in files(now: Date()) {
            let shifted = modified.addingTimeInterval(seconds)
            if (try? FileManager.default.setAttributes([.modificationDate: shifted], ofItemAtPath: path)) != nil {
                moved += 1
            }
        }
        return moved
    }

    /// A wall-clock jump that a retention loop followed: how far, and how many files' times moved with it.
    public struct ClockJump: Sendable, Equatable, CustomStringConvertible {
        /// Seconds, positive when the clock jumped forward.
        public var seconds: Double
        public var movedFiles: Int

        /// What the loop logs (a warning: a box whose clock jumps has a wrong clock or none set at boot).
        public var description: String {
            "the wall clock jumped \(Int(seconds.rounded())) s \(seconds > 0 ? "forward" : "back") (the monotonic clock did not): snapshot and clip times moved with it, so retention keeps them by their real age"
        }
    }

    /// One look of a retention loop (the agent's, `vantage run`'s), every few seconds: when `watch` saw the wall
    /// clock jump since its last look, every file's time moves with it (``shiftModificationTimes(by:)``) and the
    /// answer says so, for the loop to log it and sweep at once, by the clock as it is now; nil when it did not jump.
    public func followWallClock(
        _ watch: WallClockWatch, wall: Date = Date(), monotonic: ContinuousClock.Instant = .now
    ) -> ClockJump? {
        let jump = watch.jump(wall: wall, monotonic: monotonic)
        guard jump != 0 else { return nil }
        return ClockJump(seconds: jump, movedFiles: shiftModificationTimes(by: jump))
    }

    /// Every file with its modification time and size.
    private func files(now: Date) -> [(path: String, modified: Date, size: Int64)] {
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
        return files
    }

    /// Deletes files older than `maxAge`, then the oldest until the total is under `maxBytes`, sparing `inUse`.
    ///
    /// A file modified more than a minute in the future was written under a clock that was ahead, or the clock is
    /// behind now (a box that boots with its clock a year back): its age is unknown, so it counts as new and its
    /// modification time is set to `now`. It is then kept for at most `maxAge` more, rather than for as long as the
    /// clock is wrong.
    public func sweep(now: Date = Date(), inUse: Set<String>) -> Sweep {
        let fm = FileManager.default
        var files = files(now: now)
        for index in files.indices where files[index].modified.timeIntervalSince(now) > 60 {
            try? fm.setAttributes([.modificationDate: now], ofItemAtPath: files[index].path)
            files[index].modified = now
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

/// Notices jumps of the wall clock — NTP setting right a box that booted a year behind, an operator's `date -s` —
/// as the difference between how far the wall clock and the monotonic clock moved between two looks. Retention
/// (``MediaRetention/shiftModificationTimes(by:)``) uses it to keep the media's ages by the monotonic clock.
public final class WallClockWatch: Sendable {
    /// A smaller difference is drift or a slow look, not a jump.
    public let tolerance: Double
    private let last = Mutex<(wall: Date, monotonic: ContinuousClock.Instant)?>(nil)

    public init(tolerance: Double = 30) { self.tolerance = tolerance }

    /// How far the wall clock jumped since the last look, in seconds (positive: forward), or 0 when it moved with
    /// the monotonic clock (within ``tolerance``). The first look answers 0.
    public func jump(wall: Date = Date(), monotonic: ContinuousClock.Instant = .now) -> Double {
        last.withLock { last in
            defer { last = (wall, monotonic) }
            guard let (lastWall, lastMonotonic) = last else { return 0 }
            let elapsed = monotonic - lastMonotonic
            let difference =
                wall.timeIntervalSince(lastWall)
                - (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            return abs(difference) > tolerance ? difference : 0
        }
    }
}
