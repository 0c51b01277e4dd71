import Foundation
import Testing
import VantageAPI
import VantageClient

/// Uploading release tarballs to a real `vantage server`: what is not a Vantage release is refused with a message
/// that says what to upload, and nothing of it is stored.
@Suite("release uploads")
struct ReleaseUploadTests {
    /// A gzip-compressed tar of `files` (path → content), as `make package` writes one.
    static func tarball(_ files: [String: String], in folder: URL) async throws -> URL {
        let tree = folder.appending(path: "tree-\(UUID().uuidString)")
        for (path, content) in files {
            let file = tree.appending(path: path)
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content.utf8).write(to: file)
        }
        let tarball = folder.appending(path: "\(UUID().uuidString).tar.gz")
        let result = try await TestProcess.run(["tar", "-C", tree.path, "-czf", tarball.path, "."])
        guard result.status == 0 else { throw APITestError("tar: \(result.output)") }
        return tarball
    }

    @Test("a file that is not a gzip tar, and a tarball without bin/vantage, are refused and nothing is stored")
    func invalidUploadsAreRefused() async throws {
        let server = try await RunningServer.start()
        let client = ServerClient(baseURL: server.base, token: server.token)
        let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-releases-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        let text = folder.appending(path: "release.tar.gz")
        try Data("not a tarball\n".utf8).write(to: text)
        do {
            _ = try await client.uploadRelease(file: text, version: "0.2.0")
            Issue.record("a text file was accepted as a release")
        } catch let error as ClientError {
            #expect(error.status == 400)
            #expect("\(error)".contains("not a gzip-compressed tar archive"), "\(error)")
        }

        let withoutBinary = try await Self.tarball(["share/vantage/version": "0.2.0\n", "README": "hi"], in: folder)
        do {
            _ = try await client.uploadRelease(file: withoutBinary)
            Issue.record("a tarball without bin/vantage was accepted")
        } catch let error as ClientError {
            #expect(error.status == 400)
            #expect("\(error)".contains("holds no bin/vantage"), "\(error)")
        }

        let unnamed = try await Self.tarball(["bin/vantage": "#!/bin/sh\n"], in: folder)
        do {
            _ = try await client.uploadRelease(file: unnamed)
            Issue.record("a tarball naming no version was accepted without --version")
        } catch let error as ClientError {
            #expect("\(error)".contains("--version"), "\(error)")
        }
        #expect(try await client.listReleases().isEmpty)
        let stored =
            FileManager.default.enumerator(atPath: server.data.appending(path: "artifacts/sha256").path)?
            .allObjects.compactMap { $0 as? String }.filter { $0.count > 3 } ?? []
        #expect(stored.isEmpty, "nothing stored: \(stored)")

        // The same tarball with a version is a release.
        let release = try await client.uploadRelease(file: unnamed, version: "0.2.0+debug")
        #expect(release.version == "0.2.0+debug" && release.digest.hasPrefix("sha256:"))
        #expect(try await client.release("0.2.0+debug") == release)
        try await client.deleteRelease("0.2.0+debug")
        #expect(try await client.listReleases().isEmpty)
    }
}
