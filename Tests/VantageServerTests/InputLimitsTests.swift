import Foundation
import Testing
import VantageAPI
import VantageApp
import VantageServer
import ZIPFoundation

/// What an operator uploads or sends must not freeze or exhaust the control plane (issue 14, parts 2 and 3):
/// constraint patterns that backtrack, padded manifests and huge keys are refused quickly, with short errors, while
/// the server keeps answering. Each test runs a real `vantage server` process and talks to it over HTTP.
@Suite("Input limits", .serialized)
struct InputLimitsTests {
    /// The people-counter example with its `model_name` parameter made overridable under `pattern`.
    static func archive(constraintRegex pattern: String) throws -> Data {
        var entries = try TestArchive.peopleCounterEntries()
        let escaped = pattern.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        for (index, entry) in entries.enumerated() {
            guard case .file(let path, let bytes) = entry, path.hasSuffix("graph.json") else { continue }
            let graph = String(decoding: bytes, as: UTF8.self)
            let node = "\"name\": \"model_name\",\n                \"interface\": \"string\","
            #expect(graph.contains(node), "the example's graph.json changed")
            let changed = graph.replacingOccurrences(
                of: node,
                with: node + " \"overridable\": true, \"decorator\": {\"constraintRegex\": \"\(escaped)\"},")
            entries[index] = .file(path, Array(changed.utf8))
        }
        return Data(try TestArchive.make(entries))
    }

    // Guards: the issue's ReDoS. Patterns that backtrack exponentially are refused at upload, quickly, naming the
    // parameter (before, the upload was stored and the first instance check froze the server for minutes).
    @Test("hazardous constraint patterns are refused at upload, naming the parameter")
    func hazardousPatternsRefused() async throws {
        let server = try await RunningServer.start()
        let package = try await server.package("patterns")
        for (index, pattern) in ["(a+)+", "(a|a)*", "(a*)*b", "(.*a){20}", "^((a+)+|model_node)$"].enumerated() {
            let answer = try await server.upload(
                try Self.archive(constraintRegex: pattern), package: package, version: "0.\(index)", timeout: 20)
            #expect(answer.status == 422, "\(pattern): \(answer)")
            #expect(answer.message.contains("constraintRegex of node \"model_name\""), "\(pattern): \(answer)")
            #expect(answer.elapsed < .seconds(5), "\(pattern): \(answer)")
        }
        let ordinary = try await server.upload(
            try Self.archive(constraintRegex: "^(model_node|[a-z_]{1,64})$"), package: package, version: "1.0")
        #expect(ordinary.status == 201, "\(ordinary)")
    }

    // Guards: a pattern stored before uploads were checked (by an older release) is still evaluated in bounded
    // time: the issue's exact attack — `^((a+)+|model_node)$` against 32 `a`s and `!` — is refused at once, several
    // at a time, while /healthz keeps answering.
    @Test("a stored hazardous pattern cannot freeze the server")
    func storedPatternBounded() async throws {
        let server = try await RunningServer.start()
        let package = try await server.package("legacy")
        let safe = "^(model_node|[a-z_]{1,64})$"
        let uploaded = try await server.upload(
            try Self.archive(constraintRegex: safe), package: package, version: "1.0")
        try #require(uploaded.status == 201, "\(uploaded)")
        // As an older release stored it: the pattern in the version's inputs, unchecked.
        let database = try SQLiteDatabase(path: server.data.appending(path: "vantage.sqlite").path)
        try await database.query(
            "UPDATE package_versions SET inputs = replace(inputs, \(safe), \("^((a+)+|model_node)$"))")
        let (device, camera) = try await server.deviceWithCamera("edge")
        let attack = String(repeating: "a", count: 32) + "!"
        let body = """
            {"name": "NAME", "packageId": "\(package)", "packageVersion": "1.0", "deviceId": "\(device)",
             "cameras": {"camera_node": "\(camera)"}, "parameters": {"model_name": "\(attack)"}}
            """
        try await withThrowingTaskGroup(of: RunningServer.Answer.self) { group in
            for index in 0..<4 {
                group.addTask {
                    try await server.send(
                        "POST", "api/v1/instances", json: body.replacingOccurrences(of: "NAME", with: "i\(index)"),
                        timeout: 30)
                }
            }
            // Meanwhile the server answers: every health check within a few seconds (even on a loaded test
            // machine; before, none was answered for minutes).
            for _ in 0..<10 {
                let health = try await server.send("GET", "healthz", as: .anonymous, timeout: 10)
                #expect(health.status == 200 && health.elapsed < .seconds(3), "\(health)")
                try await Task.sleep(for: .milliseconds(100))
            }
            for try await answer in group {
                #expect(answer.status == 422, "\(answer)")
                #expect(answer.message.contains("does not match"), "\(answer)")
                #expect(answer.elapsed < .seconds(5), "\(answer)")
            }
        }
        #expect(server.process.isRunning)
    }

    // Guards: the issue's memory attack — a 1 GiB whitespace-padded graph.json in a ZIP of about a megabyte — is
    // refused quickly with a short error, and the server's memory stays low (before: 2.2 GB for 2.5 minutes).
    @Test("a padded 1 GiB graph.json is refused quickly without the memory")
    func paddedGraphRefused() async throws {
        let server = try await RunningServer.start()
        let package = try await server.package("padded")
        // Written directly as a deflate stream of back-references: the test never holds or compresses the gigabyte.
        var files: [(String, [UInt8])] = []
        var graph: (String, [UInt8])?
        for entry in try TestArchive.peopleCounterEntries() {
            let path: String
            let bytes: [UInt8]
            switch entry {
            case .file(let name, let content), .program(let name, let content): (path, bytes) = (name, content)
            default: continue
            }
            if path.hasSuffix("graph.json") { graph = (path, bytes) } else { files.append((path, bytes)) }
        }
        let (graphPath, graphBytes) = try #require(graph)
        let upload = BombArchive.make(files: files, bombPath: graphPath, prefix: graphBytes, size: 1 << 30)
        #expect(upload.count < 8 << 20, "the attack archive is \(upload.count) bytes")
        let answer = try await server.upload(upload, package: package, version: "1.0", timeout: 60)
        #expect(answer.status == 422, "\(answer)")
        #expect(answer.message.contains("graph.json"), "\(answer)")
        #expect(answer.message.contains("4 MiB"), "\(answer)")
        #expect(answer.body.count < 2048, "the error is \(answer.body.count) bytes")
        #expect(answer.elapsed < .seconds(10), "\(answer)")
        #expect(server.peakResidentBytes < 400 << 20, "peak RSS \(server.peakResidentBytes >> 20) MiB")
        #expect(server.process.isRunning)
    }

    // Guards: the attack archive the test above sends is a valid ZIP whose entry unpacks, CRC and all, to the file
    // followed by spaces (so the server refuses a real attack, not a broken archive).
    @Test("the padded test archive is a valid ZIP")
    func bombArchiveIsValid() throws {
        let prefix = Array("{\"nodeGraph\": {}}".utf8)
        let size = 3 << 20 + 77
        let zip = FileManager.default.temporaryDirectory.appending(path: "vantage-bomb-\(UUID().uuidString).zip")
        defer { try? FileManager.default.removeItem(at: zip) }
        try BombArchive.make(
            files: [("app/a.txt", Array("hello".utf8))], bombPath: "app/g.json", prefix: prefix, size: size
        )
        .write(to: zip)
        let archive = try Archive(url: zip, accessMode: .read)
        var contents: [String: Data] = [:]
        for entry in archive {
            var data = Data()
            _ = try archive.extract(entry, skipCRC32: false) { data.append($0) }
            contents[entry.path] = data
        }
        #expect(contents["app/a.txt"] == Data("hello".utf8))
        let unpacked = try #require(contents["app/g.json"])
        #expect(unpacked.count == size)
        #expect(unpacked.prefix(prefix.count) == Data(prefix))
        #expect(unpacked.dropFirst(prefix.count).allSatisfy { $0 == UInt8(ascii: " ") })
    }

    // Guards: unknown keys of 1 MiB (under the manifest limit: no spelling suggestion is searched) and 5 MiB (over
    // it: refused from its size) come back quickly as short errors (before: 9–87 s and a 10 MB error body).
    @Test("huge unknown keys are refused quickly with short errors", arguments: [1 << 20, 5 << 20])
    func hugeKeyRefused(length: Int) async throws {
        let server = try await RunningServer.start()
        let package = try await server.package("keys")
        var entries = try TestArchive.peopleCounterEntries()
        for (index, entry) in entries.enumerated() {
            guard case .file(let path, let bytes) = entry, path.hasSuffix("graph.json") else { continue }
            let graph = String(decoding: bytes, as: UTF8.self)
            let key = String(repeating: "k", count: length)
            entries[index] = .file(
                path, Array(graph.replacingOccurrences(of: "\"launch\":", with: "\"\(key)\": 1, \"launch\":").utf8))
        }
        let answer = try await server.upload(
            Data(try TestArchive.make(entries)), package: package, version: "1.0", timeout: 30)
        #expect(answer.status == 422, "\(answer)")
        #expect(answer.body.count < 2048, "the error is \(answer.body.count) bytes: \(answer.text.prefix(300))")
        #expect(answer.elapsed < .seconds(5), "\(answer)")
        #expect(answer.message.contains(length > ApplicationProject.maxManifestBytes ? "4 MiB" : "unknown key"))
    }
}
