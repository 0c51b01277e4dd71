import Foundation

/// Checks an uploaded release tarball before anything is stored: a gzip-compressed tar (what `make package`
/// writes) whose entries are relative paths without `..`, holding the `vantage` binary at `bin/vantage` or, in the
/// package's tree, `usr/lib/vantage/bin/vantage`; its version is read from `share/vantage/version` (or
/// `usr/share/vantage/version`) when the tarball has one. The system's `tar` reads it, as the agent's does.
enum ReleaseArchive {
    struct Contents: Sendable, Equatable {
        /// The version the tarball names, if it names one.
        var version: String?
        /// The entry of the binary, as `tar` lists it.
        var binary: String
    }

    /// Where the binary may be, relative to the tarball's root.
    static let binaryPaths = ["bin/vantage", "usr/lib/vantage/bin/vantage"]
    static let versionPaths = ["share/vantage/version", "usr/share/vantage/version"]

    static func inspect(_ file: URL) throws -> Contents {
        let head = (try? FileHandle(forReadingFrom: file)).flatMap { handle in
            defer { try? handle.close() }
            return try? handle.read(upToCount: 2)
        }
        guard let head, head == Data([0x1f, 0x8b]) else {
            throw APIError.invalid(
                "the upload is not a gzip-compressed tar archive: upload the vantage_VERSION_ARCH.tar.gz that make package builds"
            )
        }
        let listing = try tar(["-tzf", file.path])
        guard listing.status == 0 else {
            throw APIError.invalid(
                "the upload is not a readable gzip-compressed tar archive (\(listing.error.prefix(300))): upload the vantage_VERSION_ARCH.tar.gz that make package builds"
            )
        }
        var binary: String?
        var versionEntry: String?
        for entry in listing.output.split(separator: "\n").map(String.init) {
            let path = normalized(entry)
            guard !entry.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
                throw APIError.invalid(
                    "the tarball's entry \"\(entry.prefix(200))\" is not a relative path inside it: refused")
            }
            if binaryPaths.contains(path) { binary = binary ?? entry }
            if versionPaths.contains(path) { versionEntry = versionEntry ?? entry }
        }
        guard let binary else {
            throw APIError.invalid(
                "the tarball holds no bin/vantage (nor usr/lib/vantage/bin/vantage): it is not a Vantage release")
        }
        var version: String?
        if let versionEntry {
            let read = try tar(["-xzOf", file.path, versionEntry])
            if read.status == 0 {
                version = read.output.trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        return Contents(version: version?.isEmpty == true ? nil : version, binary: binary)
    }

    /// `./bin/vantage` → `bin/vantage`.
    static func normalized(_ entry: String) -> String {
        var path = Substring(entry)
        while path.hasPrefix("./") { path = path.dropFirst(2) }
        return String(path.hasSuffix("/") ? path.dropLast() : path)
    }

    private static func tar(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(filePath: "/usr/bin/tar")
        process.arguments = arguments
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw APIError(500, "cannot run /usr/bin/tar to read the release: \(error.localizedDescription)")
        }
        // Standard output (the listing) is read to its end before waiting, so a long listing never fills the pipe
        // while tar waits; standard error holds a line or two.
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: outputData, as: UTF8.self),
            String(decoding: errorData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        )
    }
}
