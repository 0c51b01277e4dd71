import Foundation
import Synchronization
import VantageApp

#if canImport(Glibc)
    import Glibc
#endif

/// The file system holding the agent's data folder: how much room it has, and whether it counts as full
/// (`DISK_FULL`). The agent checks it every heartbeat: a full volume is reported (`disk.full` 1) and logged once,
/// the agent makes room where it can (its rotated logs, then the oldest snapshots and clips), and deployments are
/// refused before they write; once space returns, it says so once and takes up the deployments it refused.
public struct DataVolume: Sendable {
    /// The agent's data folder.
    public let folder: URL
    /// Below this many free bytes the volume counts as full (at most 1 % of the volume, at most 16 MiB).
    public static let reserveCap: Int64 = 16 << 20

    public init(folder: URL) { self.folder = folder }

    /// Free and total bytes (as an unprivileged user may use them: `f_bavail`), or nil when they cannot be read.
    public static func space(at path: String) -> (free: Int64, total: Int64)? {
        var fs = statvfs()
        guard statvfs(path, &fs) == 0 else { return nil }
        return (Int64(fs.f_bavail) * Int64(fs.f_frsize), Int64(fs.f_blocks) * Int64(fs.f_frsize))
    }

    /// Free and total bytes of the file system holding the open file `descriptor`, or nil.
    static func space(descriptor: Int32) -> (free: Int64, total: Int64)? {
        var fs = statvfs()
        guard fstatvfs(descriptor, &fs) == 0 else { return nil }
        return (Int64(fs.f_bavail) * Int64(fs.f_frsize), Int64(fs.f_blocks) * Int64(fs.f_frsize))
    }

    /// The free bytes under which a volume of `total` bytes counts as full.
    static func reserve(total: Int64) -> Int64 { min(reserveCap, max(total / 100, 1 << 20)) }

    /// Free and total bytes of the volume, and whether it counts as full.
    public func sample() -> (free: Int64, total: Int64, full: Bool)? {
        guard let (free, total) = Self.space(at: folder.path) else { return nil }
        return (free, total, free < Self.reserve(total: total))
    }

    /// A file's size in bytes; 0 when it cannot be read.
    static func size(of path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    /// "12.3 MiB", "512 KiB".
    static func mebibytes(_ bytes: Int64) -> String {
        if bytes > 0, bytes < 1 << 20 { return "\(max(1, bytes >> 10)) KiB" }
        let value = Double(bytes) / 1_048_576
        return value >= 10 || value == 0 ? "\(Int(value.rounded())) MiB" : String(format: "%.1f MiB", value)
    }

    /// Throws a ``DeploymentFailure`` (retryable: tried again when space returns) unless the volume holding `folder`
    /// has `needed` bytes free beyond its reserve. `what` says what the bytes are for ("the version's archive").
    static func requireSpace(_ needed: Int64, in folder: URL, for what: String) throws {
        var probe = folder
        while !FileManager.default.fileExists(atPath: probe.path), probe.pathComponents.count > 1 {
            probe.deleteLastPathComponent()
        }
        guard let (free, total) = space(at: probe.path) else { return }
        let reserve = reserve(total: total)
        guard free < needed + reserve else { return }
        throw DiskSpaceShortage(folder: folder, free: free, needed: needed, reserve: reserve, what: what).failure
    }
}

/// Too little room on the data volume for a deployment's next step.
struct DiskSpaceShortage: Error, CustomStringConvertible {
    /// The folder to write in; nil where only the open file is known (the caller then names it).
    var folder: URL?
    var free: Int64
    /// What the work itself needs (0: unknown yet).
    var needed: Int64
    /// What the agent keeps free besides (``DataVolume/reserve(total:)``).
    var reserve: Int64
    /// The work, e.g. "deploying version 1.1".
    var what: String

    var description: String {
        let need =
            needed > 0
            ? "\(what) needs \(DataVolume.mebibytes(needed)) and the agent keeps \(DataVolume.mebibytes(reserve)) free"
            : "the agent keeps \(DataVolume.mebibytes(reserve)) free, so \(what) waits"
        return "not enough space on the disk holding \(folder?.path ?? "the agent's data"): "
            + "\(DataVolume.mebibytes(free)) free, \(need); free disk space there (the running version is unchanged, "
            + "and the deployment is tried again once there is room)"
    }

    /// The deployment failure it makes: retryable, tried again when space returns.
    var failure: DeploymentFailure { DeploymentFailure(description, retryable: true, diskFull: true) }
}

/// Whether an error is the file system's "no space left on device" (or "quota exceeded").
func isOutOfSpace(_ error: any Error) -> Bool {
    if error is DiskSpaceShortage { return true }
    if let failure = error as? DeploymentFailure { return failure.diskFull }
    if let archive = error as? ApplicationArchiveError { return archive.code == .diskFull }
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain, ns.code == Int(ENOSPC) || ns.code == Int(EDQUOT) { return true }
    if ns.domain == NSCocoaErrorDomain, ns.code == NSFileWriteOutOfSpaceError { return true }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError { return isOutOfSpace(underlying) }
    let text = "\(error)"
    return text.contains("No space left on device") || text.contains("database or disk is full")
}

/// The agent's DISK_FULL state, changed once per transition (so it is logged once, not once per heartbeat).
final class DiskFullState: Sendable {
    /// Since when the volume is full; nil while it is not.
    private let since = Mutex<Date?>(nil)

    /// Records whether the volume is full now; answers whether that changed.
    func set(_ full: Bool) -> Bool {
        since.withLock { since in
            guard full != (since != nil) else { return false }
            since = full ? Date() : nil
            return true
        }
    }

    /// Since when the volume is full; nil while it is not.
    var fullSince: Date? { since.withLock { $0 } }
}
