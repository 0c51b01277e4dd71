import Crypto
import Foundation

/// Where model files, package archives and snapshots live, addressed by their SHA-256 (`sha256:<hex>`).
/// ``LocalArtifactStore`` (a folder) is the default; S3-compatible storage comes with the integrations work and
/// plugs in here.
public protocol ArtifactStore: Sendable {
    /// Stores the file at `file` (moved or copied in) whose digest the caller computed while receiving it.
    func put(file: URL, digest: String) async throws
    /// Stores bytes; returns their digest.
    func put(bytes: [UInt8]) async throws -> String
    /// A readable local file holding the artifact, or nil when it is missing.
    func file(for digest: String) async throws -> URL?
    /// A folder for temporary files on the same file system (uploads land there first).
    var scratchFolder: URL { get }
}

/// Artifacts in a folder: `sha256/ab/abcdef…`. Writes go to a temporary file renamed into place, so a crash or a
/// full disk never leaves a partial artifact under its digest.
public struct LocalArtifactStore: ArtifactStore {
    public let root: URL

    public init(root: URL) throws {
        self.root = root
        do {
            // Only this user may read what is kept (camera snapshots, uploaded applications), whatever the umask.
            let existed = FileManager.default.fileExists(atPath: root.path)
            try FileManager.default.createDirectory(
                at: root.appending(path: "tmp"), withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            if !existed { try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: root.path) }
        } catch {
            throw ServerError("cannot create the artifact folder \(root.path): \(error.localizedDescription)")
        }
        removeAbandonedUploads()
    }

    /// Uploads a crash interrupted stay in `tmp/`; a day later they are surely abandoned (replicas sharing the
    /// folder may be receiving younger ones right now).
    private func removeAbandonedUploads() {
        let manager = FileManager.default
        let cutoff = Date().addingTimeInterval(-86_400)
        for name in (try? manager.contentsOfDirectory(atPath: scratchFolder.path)) ?? [] {
            let file = scratchFolder.appending(path: name)
            if let modified = (try? manager.attributesOfItem(atPath: file.path))?[.modificationDate] as? Date,
                modified < cutoff
            {
                try? manager.removeItem(at: file)
            }
        }
    }

    public var scratchFolder: URL { root.appending(path: "tmp") }

    func path(_ digest: String) throws -> URL {
        let hex = digest.hasPrefix("sha256:") ? String(digest.dropFirst(7)) : digest
        guard hex.count == 64, hex.allSatisfy(\.isHexDigit) else {
            throw APIError.invalid("\(digest) is not a sha256 digest")
        }
        return root.appending(path: "sha256/\(hex.prefix(2))/\(hex)")
    }

    public func put(file: URL, digest: String) async throws {
        let destination = try path(digest)
        let manager = FileManager.default
        try manager.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        if manager.fileExists(atPath: destination.path) {
            try? manager.removeItem(at: file)
            return
        }
        try manager.moveItem(at: file, to: destination)
    }

    public func put(bytes: [UInt8]) async throws -> String {
        let digest = "sha256:" + SHA256.hash(data: bytes).hexString
        let temporary = scratchFolder.appending(path: UUID().uuidString)
        do {
            try Data(bytes).write(to: temporary)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw APIError(
                507, "cannot store an artifact in \(root.path): \(error.localizedDescription) (is the disk full?)")
        }
        try await put(file: temporary, digest: digest)
        return digest
    }

    public func file(for digest: String) async throws -> URL? {
        let url = try path(digest)
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }
}
