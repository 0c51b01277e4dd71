import Foundation
import VantageApp
import ZIPFoundation

/// Unpacks an uploaded application archive into a scratch folder and loads it with the runtime's parser.
///
/// The archive is untrusted: every entry path is checked before anything is written (no absolute paths, no `..`,
/// no links), and the bytes written are counted against limits rather than trusting the sizes the archive
/// claims, so a ZIP bomb stops at the limit.
enum PackageArchive {
    static let maxEntries = 10_000
    static let maxUnpackedBytes: UInt64 = 4 << 30

    /// Returns the loaded project; throws a 422 naming what is wrong with the archive or the manifest.
    static func validate(_ archiveFile: URL, scratch: URL) throws -> ApplicationProject {
        let folder = scratch.appending(path: "unpack-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try unpack(archiveFile, into: folder)
        let root = try projectRoot(in: folder)
        do {
            return try ApplicationProject.load(root)
        } catch {
            throw APIError.unprocessable("the application in the archive is not valid: \(error)")
        }
    }

    static func unpack(_ archiveFile: URL, into folder: URL) throws {
        do {
            try unpackEntries(archiveFile, into: folder)
        } catch let error as APIError {
            throw error
        } catch {
            // E.g. a file entry "a" followed by "a/b": the archive does not describe a folder tree.
            throw APIError.unprocessable("the archive cannot be unpacked as a folder: \(error.localizedDescription)")
        }
    }

    private static func unpackEntries(_ archiveFile: URL, into folder: URL) throws {
        let archive: Archive
        do {
            archive = try Archive(url: archiveFile, accessMode: .read)
        } catch {
            throw APIError.unprocessable(
                "the upload is not a ZIP archive: make one of the project folder (vantage packages push does this)")
        }
        var written: UInt64 = 0
        var count = 0
        for entry in archive {
            count += 1
            guard count <= maxEntries else {
                throw APIError.unprocessable("the archive has more than \(maxEntries) entries")
            }
            let path = entry.path
            guard let relative = safeRelativePath(path) else {
                throw APIError.unprocessable(
                    "the archive entry \"\(path.prefix(200))\" points outside the project folder: archives may only hold relative paths without '..'"
                )
            }
            let destination = folder.appending(path: relative)
            switch entry.type {
            case .directory:
                try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
            case .symlink:
                throw APIError.unprocessable(
                    "the archive entry \"\(path.prefix(200))\" is a symbolic link: archive the files themselves")
            case .file:
                try FileManager.default.createDirectory(
                    at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
                guard FileManager.default.createFile(atPath: destination.path, contents: nil) else {
                    throw APIError(507, "cannot unpack the archive into \(folder.path): is the disk full?")
                }
                let handle = try FileHandle(forWritingTo: destination)
                defer { try? handle.close() }
                do {
                    _ = try archive.extract(entry, skipCRC32: false) { chunk in
                        written += UInt64(chunk.count)
                        guard written <= maxUnpackedBytes else { throw UnpackLimit() }
                        try handle.write(contentsOf: chunk)
                    }
                } catch is UnpackLimit {
                    throw APIError.unprocessable("the archive unpacks to more than \(maxUnpackedBytes >> 30) GiB")
                } catch {
                    throw APIError.unprocessable("the archive entry \"\(path.prefix(200))\" is corrupt: \(error)")
                }
            }
        }
        guard count > 0 else { throw APIError.unprocessable("the archive is empty") }
    }

    private struct UnpackLimit: Error {}

    /// The entry path as a relative path inside the folder, or nil when it would escape it.
    static func safeRelativePath(_ path: String) -> String? {
        guard !path.isEmpty, !path.hasPrefix("/"), !path.hasPrefix("\\"), !path.contains("\0") else { return nil }
        let parts = path.split(whereSeparator: { $0 == "/" || $0 == "\\" })
        guard !parts.isEmpty, !parts.contains(where: { $0 == ".." }), !(parts.first?.contains(":") ?? false) else {
            return nil
        }
        return parts.filter { $0 != "." }.joined(separator: "/")
    }

    /// The folder holding `graphs/`: the archive's root, or its single top-level folder.
    static func projectRoot(in folder: URL) throws -> URL {
        let manager = FileManager.default
        if manager.fileExists(atPath: folder.appending(path: "graphs").path) { return folder }
        let top =
            (try? manager.contentsOfDirectory(atPath: folder.path))?.filter { !$0.hasPrefix(".") && $0 != "__MACOSX" }
            ?? []
        if top.count == 1, manager.fileExists(atPath: folder.appending(path: "\(top[0])/graphs").path) {
            return folder.appending(path: top[0])
        }
        throw APIError.unprocessable(
            "the archive holds no application project: its root (or its one top-level folder) must contain graphs/<app>/graph.json"
        )
    }
}
