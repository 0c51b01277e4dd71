import Foundation
import Testing

@testable import VantageAgent

/// A software release is checked against the data volume's free space before it is downloaded (its size, from the
/// desired state) and before it is unpacked (the size read from the tarball's gzip trailer), so a full disk refuses
/// it with a message instead of failing half-way (issue 17, "a really full data volume").
@Suite("Software releases and disk space")
struct SoftwareReleaseSpaceTests {
    /// A release-shaped tarball made by the real `tar -czf` (as `make package` makes the release tarball).
    static func tarball(in folder: URL) throws -> URL {
        let tree = folder.appending(path: "release/bin")
        try FileManager.default.createDirectory(at: tree, withIntermediateDirectories: true)
        var bytes = [UInt8](repeating: 0, count: 300_000)
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 2_654_435_761 >> 13) }
        try Data(bytes).write(to: tree.appending(path: "vantage"))
        let file = folder.appending(path: "release.tar.gz")
        let tar = Process()
        tar.executableURL = URL(filePath: "/usr/bin/tar")
        tar.arguments = ["-czf", file.path, "-C", folder.appending(path: "release").path, "."]
        try tar.run()
        tar.waitUntilExit()
        #expect(tar.terminationStatus == 0)
        return file
    }

    @Test("the unpacked size is read from the tarball, as gzip -l reads it")
    func unpackedSize() throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "release-space-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = try Self.tarball(in: folder)
        let size = SoftwareUpdater.unpackedSize(of: file)
        // The tar stream holds the 300,000-byte file, its headers and padding to 10 KiB records.
        #expect(size >= 300_000 && size % 10_240 == 0, "read \(size)")
        #expect(size > DataVolume.size(of: file.path), "compressed \(DataVolume.size(of: file.path)), unpacked \(size)")
        #expect(SoftwareUpdater.unpackedSize(of: folder.appending(path: "missing.tar.gz")) == 0)
    }

    @Test("a release larger than the free space is refused before it is written, naming the space and what to do")
    func refusedWhenItCannotFit() throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "release-space-\(UUID().uuidString)")
        let free = try #require(DataVolume.space(at: FileManager.default.temporaryDirectory.path)).free
        do {
            try DataVolume.requireSpace(free + (1 << 30), in: folder, for: "unpacking software release 9.9")
            Issue.record("a release 1 GiB larger than the free space was not refused")
        } catch let failure as DeploymentFailure {
            let message = "\(failure)"
            #expect(failure.retryable && failure.diskFull)
            #expect(
                message.contains("unpacking software release 9.9") && message.contains("free disk space"), "\(message)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.path), "nothing was written")
    }
}
