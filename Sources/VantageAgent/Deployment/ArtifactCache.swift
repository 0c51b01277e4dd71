import Crypto
import Foundation
import Logging

/// Package archives on disk, named by content: `artifacts/sha256/<hex>` is complete and verified; a download in
/// progress is `<hex>.partial` and goes on from its size after an interruption or a restart.
struct ArtifactCache: Sendable {
    let folder: URL

    func file(_ key: String) -> URL { folder.appending(path: key) }
    func partial(_ key: String) -> URL { folder.appending(path: "\(key).partial") }

    /// The verified archive whose SHA-256 is `key`: the one on disk, or one downloaded from `source` now (resuming a
    /// partial download, retrying per `policy`). Throws a `DeploymentFailure`: retryable when the download was
    /// interrupted too often, not when the bytes do not match the digest (the partial file is then deleted).
    func fetch(
        key: String, source: any ArtifactSource, policy: DownloadPolicy, logger: Logger
    ) async throws -> URL {
        let final = file(key)
        if FileManager.default.fileExists(atPath: final.path) { return final }
        try DeploymentIO.makeFolder(folder)
        let partial = partial(key)
        let digest = "sha256:\(key)"
        var failures = 0
        var delay = policy.firstDelay
        var startedOver = false
        while true {
            try Task.checkCancellation()
            let offset: Int64
            do {
                try DataVolume.requireSpace(0, in: folder, for: "downloading \(digest)")
                offset = try await append(from: source, digest: digest, to: partial)
            } catch var shortage as DiskSpaceShortage {
                // No room: tried again once there is. A part written so far goes, to give the room back.
                DeploymentIO.delete(partial)
                shortage.folder = folder
                throw shortage.failure
            } catch let failure as DeploymentFailure where failure.diskFull {
                throw failure
            } catch {
                if error is CancellationError || Task.isCancelled { throw CancellationError() }
                failures += 1
                let reason = "downloading the archive \(digest) failed \(failures) time(s) (last: \(error))"
                guard failures < policy.attempts else {
                    throw DeploymentFailure(
                        "\(reason); the running version is unchanged and the agent tries again later",
                        retryable: true)
                }
                logger.warning(
                    "Download interrupted; retrying from the bytes already on disk",
                    metadata: ["artifact.digest": "\(digest)", "error": "\(error)", "retry.in": "\(delay)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, policy.maxDelay)
                continue
            }
            let actual = try await DeploymentIO.run { try Self.sha256(of: partial) }
            if actual == key {
                try await DeploymentIO.run { try DeploymentIO.rename(partial, over: final) }
                return final
            }
            DeploymentIO.delete(partial)
            if offset > 0 && !startedOver {
                // The bytes kept from before may be stale (e.g. an interrupted download of other content): once,
                // download the whole archive again before calling the server's archive wrong.
                startedOver = true
                logger.warning(
                    "The resumed download does not match its digest; downloading it again from the start",
                    metadata: ["artifact.digest": "\(digest)"])
                continue
            }
            throw DeploymentFailure(
                "the downloaded archive's digest is sha256:\(actual) but the server said \(digest); the file was deleted and the running version is unchanged"
            )
        }
    }

    /// Opens (or creates) the partial file, asks `source` for the bytes after what it holds, and syncs it. Returns
    /// the offset asked from.
    private func append(from source: any ArtifactSource, digest: String, to partial: URL) async throws -> Int64 {
        if !FileManager.default.fileExists(atPath: partial.path) {
            guard
                FileManager.default.createFile(
                    atPath: partial.path, contents: nil, attributes: [.posixPermissions: 0o600])
            else {
                try DataVolume.requireSpace(1 << 20, in: folder, for: "downloading \(digest)")
                throw DeploymentFailure("cannot create \(partial.path): check that the agent's user may write there")
            }
        }
        let handle = try FileHandle(forWritingTo: partial)
        defer { try? handle.close() }
        let offset = Int64(try handle.seekToEnd())
        do {
            try await source.download(digest: digest, offset: offset, into: handle)
        } catch {
            try? handle.synchronize()
            throw error
        }
        try handle.synchronize()
        return offset
    }

    /// The SHA-256 of a file, read 1 MiB at a time, in lowercase hexadecimal.
    static func sha256(of file: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        var hash = Crypto.SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hash.update(data: chunk) }
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Deletes archives (and partial downloads) whose key is not in `keep`.
    func prune(keeping keep: Set<String>) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
            let key = name.hasSuffix(".partial") ? String(name.dropLast(".partial".count)) : name
            if !keep.contains(key) { DeploymentIO.delete(folder.appending(path: name)) }
        }
    }
}
