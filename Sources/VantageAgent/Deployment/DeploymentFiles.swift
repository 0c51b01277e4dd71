import Foundation
import VantageApp
import VantageCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Blocking file work (hashing, unpacking, fsync, deleting folders) on a queue of its own, so that it never holds a
/// thread of the cooperative pool nor the reconciler's actor (heartbeats read its snapshot meanwhile).
enum DeploymentIO {
    private static let queue = BlockingQueue(label: "vantage.agent.deployment-io", concurrent: true)
    private static let serial = BlockingQueue(label: "vantage.agent.deployment-io.ordered")

    /// Runs `work` on the blocking queue and returns its result.
    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await queue.run(work)
    }

    /// Runs `work` on a serial queue: works submitted in order (e.g. saves of the desired state) finish in order.
    static func runInOrder<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await serial.run(work)
    }

    /// Renames `source` to `destination`, replacing it in one step (POSIX `rename`), then syncs the folder.
    static func rename(_ source: URL, over destination: URL) throws {
        guard Foundation.rename(source.path, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            throw DeploymentFailure("cannot rename \(source.path) to \(destination.path): \(reason)")
        }
        syncFolder(destination.deletingLastPathComponent())
    }

    /// Flushes a folder's entries (a rename in it) to disk.
    static func syncFolder(_ folder: URL) {
        let descriptor = open(folder.path, O_RDONLY)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        _ = close(descriptor)
    }

    /// Flushes every file and folder under `folder` to disk, so that renaming it into place publishes whole files.
    static func syncTree(_ folder: URL) {
        if let paths = FileManager.default.enumerator(atPath: folder.path) {
            for case let path as String in paths {
                let descriptor = open(folder.appending(path: path).path, O_RDONLY)
                guard descriptor >= 0 else { continue }
                _ = fsync(descriptor)
                _ = close(descriptor)
            }
        }
        syncFolder(folder)
    }

    /// Creates a folder (and its parents) readable by its owner only.
    static func makeFolder(_ folder: URL) throws {
        try FileManager.default.createDirectory(
            at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// Deletes a file or folder; one that is not there is fine.
    static func delete(_ url: URL) {
        try? FileManager.default.removeItem(at: url)
    }
}

/// A deployment that cannot go on, and why (the reason goes to the server as the status description).
struct DeploymentFailure: Error, CustomStringConvertible {
    /// What went wrong and what to do.
    var reason: String
    /// Whether trying again later may work (an interrupted download) rather than needing a new desired state.
    var retryable = false
    /// Whether the data volume had no room for it: tried again as soon as space returns.
    var diskFull = false

    init(_ reason: String, retryable: Bool = false, diskFull: Bool = false) {
        self.reason = reason
        self.retryable = retryable || diskFull
        self.diskFull = diskFull
    }

    var description: String { reason }
}

/// One instance's folder, `instances/<id>/`: its journal, its version folders and `current`, the link to the one
/// that runs.
struct InstanceFolder: Sendable {
    let root: URL

    var journal: URL { root.appending(path: "journal.json") }
    var versions: URL { root.appending(path: "versions") }
    var current: URL { root.appending(path: "current") }
    private var currentNext: URL { root.appending(path: "current.next") }

    func version(_ key: String) -> URL { versions.appending(path: key) }
    private func unpacking(_ key: String) -> URL { root.appending(path: ".unpack-\(key)") }

    /// Whether an instance id can name a folder: letters, digits, `.`, `_`, `-`, not starting with a dot.
    static func isValidId(_ id: String) -> Bool {
        guard let first = id.first, first != ".", id.count <= 128 else { return false }
        return id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
    }

    /// The journal on disk, or nil when there is none. A journal that cannot be read is set aside (renamed to
    /// `journal.json.damaged`) and nil is returned: the instance is then deployed afresh.
    func loadJournal() -> InstanceJournal? {
        guard let data = FileManager.default.contents(atPath: journal.path) else { return nil }
        do {
            return try JSONDecoder().decode(InstanceJournal.self, from: data)
        } catch {
            try? DeploymentIO.rename(journal, over: root.appending(path: "journal.json.damaged"))
            return nil
        }
    }

    func saveJournal(_ value: InstanceJournal) throws {
        try DeploymentIO.makeFolder(root)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // It holds camera credentials: readable by the agent's user only.
        try AtomicFile.write(try encoder.encode(value), to: journal, permissions: 0o600)
    }

    /// The key of the version folder `current` names, or nil when there is no `current` or it names no folder.
    func currentKey() -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: current.path) else {
            return nil
        }
        let key = URL(filePath: target).lastPathComponent
        return FileManager.default.fileExists(atPath: version(key).path) ? key : nil
    }

    /// Points `current` at `versions/<key>` in one step: a new link `current.next` renamed over `current`.
    func switchCurrent(to key: String) throws {
        DeploymentIO.delete(currentNext)
        do {
            try FileManager.default.createSymbolicLink(atPath: currentNext.path, withDestinationPath: "versions/\(key)")
        } catch {
            throw DeploymentFailure("cannot create \(currentNext.path): \(error.localizedDescription)")
        }
        try DeploymentIO.rename(currentNext, over: current)
    }

    /// Removes `current` (the instance has no version to run).
    func clearCurrent() {
        DeploymentIO.delete(current)
        DeploymentIO.syncFolder(root)
    }

    /// Unpacks `archive` into `versions/<key>` unless that folder exists: into `.unpack-<key>` first, synced, then
    /// renamed into place, so that a version folder is always whole.
    func unpack(_ archive: URL, key: String) throws {
        let destination = version(key)
        if FileManager.default.fileExists(atPath: destination.path) { return }
        let scratch = unpacking(key)
        DeploymentIO.delete(scratch)
        // Refused before writing when the unpacked files cannot fit (the archive says what its files take).
        try DataVolume.requireSpace(Self.unpackedSize(of: archive), in: root, for: "unpacking the version")
        do {
            try DeploymentIO.makeFolder(scratch)
            try ApplicationArchive.unpack(archive, into: scratch)
            _ = try ApplicationArchive.projectRoot(in: scratch)
        } catch {
            DeploymentIO.delete(scratch)  // never a half-unpacked version left behind
            if isOutOfSpace(error) {
                throw DeploymentFailure(
                    "the disk holding \(root.path) filled up while unpacking the version (\(error)); free disk "
                        + "space there (the running version is unchanged, and the deployment is tried again once "
                        + "there is room)", diskFull: true)
            }
            throw DeploymentFailure("the archive cannot be unpacked: \(error)")
        }
        DeploymentIO.syncTree(scratch)
        try DeploymentIO.makeFolder(versions)
        try DeploymentIO.rename(scratch, over: destination)
    }

    /// The bytes `archive` takes unpacked, as its entries claim (at least the archive's own size).
    static func unpackedSize(of archive: URL) -> Int64 {
        let own = (try? FileManager.default.attributesOfItem(atPath: archive.path)[.size] as? NSNumber)?.int64Value ?? 0
        let claimed = ApplicationArchive.claimedUnpackedBytes(archive).map { Int64(clamping: $0) } ?? 0
        return max(own, claimed)
    }

    /// The project folder inside `versions/<key>` (the archive's root or its one top-level folder).
    func project(_ key: String) throws -> URL {
        do {
            return try ApplicationArchive.projectRoot(in: version(key))
        } catch {
            throw DeploymentFailure("the version folder \(version(key).path) holds no project: \(error)")
        }
    }

    /// Deletes version folders other than `keep`, and leftovers of an interrupted unpack, delete or switch.
    ///
    /// A version folder is first renamed out of `versions/` (one step, synced) and only then deleted file by file:
    /// a crash or power cut in the middle of a delete must never leave a half-deleted `versions/<key>`, which a later
    /// deployment of the same version would take for a whole one (found by the power-cut harness, scripts/power-cut).
    func prune(keeping keep: Set<String>) {
        let manager = FileManager.default
        var doomed: [URL] = []
        for name in (try? manager.contentsOfDirectory(atPath: versions.path)) ?? [] where !keep.contains(name) {
            let trash = root.appending(path: ".delete-\(name)")
            DeploymentIO.delete(trash)
            if (try? DeploymentIO.rename(version(name), over: trash)) != nil { doomed.append(trash) }
        }
        for name in (try? manager.contentsOfDirectory(atPath: root.path)) ?? []
        where name.hasPrefix(".unpack-") || name.hasPrefix(".delete-") {
            doomed.append(root.appending(path: name))
        }
        for url in Set(doomed) { DeploymentIO.delete(url) }
        DeploymentIO.delete(currentNext)
    }

    /// The version folders there are.
    func versionKeys() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: versions.path)) ?? []).filter { !$0.hasPrefix(".") }
    }
}
