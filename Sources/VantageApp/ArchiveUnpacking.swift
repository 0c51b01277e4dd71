import Foundation
import ZIPFoundation

/// Unpacks an application archive (a ZIP of a project folder) safely: what the server does with an upload and what
/// the agent does with a downloaded package version.
///
/// The archive is untrusted: every entry path is checked before anything is written (no absolute paths, no `..`,
/// no links), and the bytes written are counted against limits rather than trusting the sizes the archive claims,
/// so a ZIP bomb stops at the limit.
///
/// ```swift
/// try ApplicationArchive.unpack(zip, into: folder)
/// let project = try ApplicationProject.load(try ApplicationArchive.projectRoot(in: folder))
/// ```
public enum ApplicationArchive {
    /// The most entries an archive may have.
    public static let maxEntries = 10_000
    /// The most bytes an archive may unpack to, counted as they are written.
    public static let maxUnpackedBytes: UInt64 = 4 << 30

    /// Unpacks `archiveFile` into `folder` (created as needed). On error, what was written so far stays in `folder`:
    /// unpack into a scratch folder and delete it.
    public static func unpack(_ archiveFile: URL, into folder: URL) throws(ApplicationArchiveError) {
        do {
            try unpackEntries(archiveFile, into: folder)
        } catch let error as ApplicationArchiveError {
            throw error
        } catch {
            // E.g. a file entry "a" followed by "a/b": the archive does not describe a folder tree.
            throw ApplicationArchiveError(
                .notAFolderTree, "the archive cannot be unpacked as a folder: \(error.localizedDescription)")
        }
    }

    /// The bytes the archive's files say they unpack to (their claimed sizes, summed), or nil when it is no ZIP
    /// archive. For a check of free space before unpacking; ``unpack(_:into:)`` does not trust the claim.
    public static func claimedUnpackedBytes(_ archiveFile: URL) -> UInt64? {
        guard let archive = try? Archive(url: archiveFile, accessMode: .read) else { return nil }
        return archive.reduce(UInt64(0)) { $0 + ($1.type == .file ? $1.uncompressedSize : 0) }
    }

    /// The ZIP archive in `archiveFile`, opened for reading; `notZIP` says what to do when it is none.
    static func openZIP(_ archiveFile: URL, notZIP message: String) throws(ApplicationArchiveError) -> Archive {
        do {
            return try Archive(url: archiveFile, accessMode: .read)
        } catch {
            throw ApplicationArchiveError(.notZIP, message)
        }
    }

    private static func unpackEntries(_ archiveFile: URL, into folder: URL) throws {
        let archive = try openZIP(
            archiveFile,
            notZIP: "the upload is not a ZIP archive: make one of the project folder (vantage packages push does this)")
        var written: UInt64 = 0
        var count = 0
        for entry in archive {
            count += 1
            guard count <= maxEntries else {
                throw ApplicationArchiveError(.tooManyEntries, "the archive has more than \(maxEntries) entries")
            }
            let path = entry.path
            guard let relative = safeRelativePath(path) else {
                throw ApplicationArchiveError(
                    .unsafePath,
                    "the archive entry \"\(path.prefix(200))\" points outside the project folder: archives may only hold relative paths without '..'"
                )
            }
            let destination = folder.appending(path: relative)
            switch entry.type {
            case .directory:
                try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
            case .symlink:
                throw ApplicationArchiveError(
                    .symbolicLink,
                    "the archive entry \"\(path.prefix(200))\" is a symbolic link: archive the files themselves")
            case .file:
                // A manifest or descriptor is refused as soon as it is known to be too large: from the size the
                // archive claims, and again from the bytes as they are unpacked (the claim may lie).
                let limit: UInt64? = isManifest(relative) ? UInt64(ApplicationProject.maxManifestBytes) : nil
                if let limit, entry.uncompressedSize > limit { throw manifestTooLarge(path) }
                try FileManager.default.createDirectory(
                    at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
                guard FileManager.default.createFile(atPath: destination.path, contents: nil) else {
                    throw ApplicationArchiveError(
                        .diskFull, "cannot unpack the archive into \(folder.path): is the disk full?")
                }
                let handle = try FileHandle(forWritingTo: destination)
                defer { try? handle.close() }
                var entryBytes: UInt64 = 0
                do {
                    _ = try archive.extract(entry, skipCRC32: false) { chunk in
                        written += UInt64(chunk.count)
                        entryBytes += UInt64(chunk.count)
                        guard written <= maxUnpackedBytes else { throw UnpackLimit() }
                        if let limit, entryBytes > limit { throw ManifestLimit() }
                        try handle.write(contentsOf: chunk)
                    }
                } catch is UnpackLimit {
                    throw ApplicationArchiveError(
                        .tooLarge, "the archive unpacks to more than \(maxUnpackedBytes >> 30) GiB")
                } catch is ManifestLimit {
                    throw manifestTooLarge(path)
                } catch let error as CocoaError where error.code == .fileWriteOutOfSpace {
                    throw ApplicationArchiveError(
                        .diskFull, "cannot unpack the archive into \(folder.path): the disk is full; free disk space")
                } catch let error as POSIXError where error.code == .ENOSPC || error.code == .EDQUOT {
                    throw ApplicationArchiveError(
                        .diskFull, "cannot unpack the archive into \(folder.path): the disk is full; free disk space")
                } catch {
                    throw ApplicationArchiveError(
                        .corruptEntry, "the archive entry \"\(path.prefix(200))\" is corrupt: \(error)")
                }
                // A program in the archive (a code node `vantage app build` compiled) stays executable; no other
                // mode bit of the archive is kept.
                if let mode = (entry.fileAttributes[.posixPermissions] as? NSNumber)?.uint16Value, mode & 0o100 != 0 {
                    chmod(destination.path, 0o755)
                }
            }
        }
        guard count > 0 else { throw ApplicationArchiveError(.empty, "the archive is empty") }
    }

    private struct UnpackLimit: Error {}
    private struct ManifestLimit: Error {}

    private static func manifestTooLarge(_ path: String) -> ApplicationArchiveError {
        ApplicationArchiveError(
            .manifestTooLarge,
            "the archive entry \"\(ManifestError.excerpt(path, limit: 200))\" unpacks to more than "
                + "\(ApplicationProject.maxManifestBytes >> 20) MiB, the most a manifest or descriptor may be: a "
                + "manifest only describes the application (keep data in the package's assets)")
    }

    /// Whether the loader reads an entry as a manifest or descriptor (graph.json, package.json, descriptor.json,
    /// an overrides file under graphs/, an asset descriptor `<sha256>.json`): those are capped at
    /// ``ApplicationProject/maxManifestBytes`` while unpacking. Other files (data, models) only count toward
    /// ``maxUnpackedBytes``.
    public static func isManifest(_ relativePath: String) -> Bool {
        let parts = relativePath.split(separator: "/")
        guard let name = parts.last?.lowercased(), name.hasSuffix(".json") else { return false }
        if ["graph.json", "package.json", "descriptor.json"].contains(name) { return true }
        // graphs/ of the project, at the archive's root or in its one top-level folder.
        if let graphs = parts.firstIndex(of: "graphs"), graphs <= 1 { return true }
        let stem = name.dropLast(5)
        return stem.count == 64 && stem.allSatisfy(\.isHexDigit)
    }

    /// The entry path as a relative path inside the folder, or nil when it would escape it.
    public static func safeRelativePath(_ path: String) -> String? {
        guard !path.isEmpty, !path.hasPrefix("/"), !path.hasPrefix("\\"), !path.contains("\0") else { return nil }
        let parts = path.split(whereSeparator: { $0 == "/" || $0 == "\\" })
        guard !parts.isEmpty, !parts.contains(where: { $0 == ".." }), !(parts.first?.contains(":") ?? false) else {
            return nil
        }
        return parts.filter { $0 != "." }.joined(separator: "/")
    }

    /// The folder holding `graphs/`: the unpacked archive's root, or its single top-level folder.
    public static func projectRoot(in folder: URL) throws(ApplicationArchiveError) -> URL {
        let manager = FileManager.default
        if manager.fileExists(atPath: folder.appending(path: "graphs").path) { return folder }
        let top =
            (try? manager.contentsOfDirectory(atPath: folder.path))?.filter { !$0.hasPrefix(".") && $0 != "__MACOSX" }
            ?? []
        if top.count == 1, manager.fileExists(atPath: folder.appending(path: "\(top[0])/graphs").path) {
            return folder.appending(path: top[0])
        }
        throw ApplicationArchiveError(
            .noProject,
            "the archive holds no application project: its root (or its one top-level folder) must contain graphs/<app>/graph.json"
        )
    }
}

/// What is wrong with an application archive; `description` says what to do about it.
public struct ApplicationArchiveError: Error, CustomStringConvertible, Sendable {
    /// The kind of problem, for code that reacts to some of them. New codes may be added in any release.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name.
        public let name: String

        /// Makes a code with the given name.
        public init(_ name: String) { self.name = name }

        /// The code's name.
        public var description: String { name }

        /// The file is not a ZIP archive.
        public static let notZIP = Code("notZIP")
        /// The archive has more than `ApplicationArchive.maxEntries` entries.
        public static let tooManyEntries = Code("tooManyEntries")
        /// An entry's path is absolute or climbs out of the folder with `..`.
        public static let unsafePath = Code("unsafePath")
        /// An entry is a symbolic link.
        public static let symbolicLink = Code("symbolicLink")
        /// The archive unpacks to more than `ApplicationArchive.maxUnpackedBytes`.
        public static let tooLarge = Code("tooLarge")
        /// A manifest or descriptor in the archive is larger than ``ApplicationProject/maxManifestBytes``.
        public static let manifestTooLarge = Code("manifestTooLarge")
        /// An entry's data is damaged (e.g. its CRC-32 does not match).
        public static let corruptEntry = Code("corruptEntry")
        /// The archive has no entries.
        public static let empty = Code("empty")
        /// The entries do not form a folder tree (e.g. a file and a folder of the same name).
        public static let notAFolderTree = Code("notAFolderTree")
        /// A file could not be created where the archive is unpacked: the disk is likely full.
        public static let diskFull = Code("diskFull")
        /// Neither the archive's root nor its one top-level folder holds `graphs/`.
        public static let noProject = Code("noProject")
    }

    /// The kind of problem.
    public let code: Code
    /// What is wrong and what to do.
    public let message: String

    /// Makes an error with a code and a message that says what to do.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
