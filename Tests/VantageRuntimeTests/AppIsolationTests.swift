import Foundation
import Logging
import Synchronization
import Testing

@testable import VantageRuntime

/// What the runtime's logger received, for tests that read an application's log lines.
final class CapturedLog: Sendable {
    let messages = Mutex<[String]>([])

    var logger: Logger {
        Logger(label: "test") { _ in CapturingLogHandler(log: self) }
    }

    func contains(_ text: String) -> Bool { messages.withLock { $0.contains { $0.contains(text) } } }

    /// Waits up to `seconds` for a message containing `text`.
    func wait(for text: String, seconds: Int = 15) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if contains(text) { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return contains(text)
    }
}

struct CapturingLogHandler: LogHandler {
    let log: CapturedLog
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        log.messages.withLock { $0.append("\(event.message)") }
    }
}

/// Where a code node's socket lives and who may reach it, and that one long line from an application does not stop
/// its log (issue 14, part 6).
@Suite("Code node isolation: private sockets, long log lines", .serialized)
struct AppIsolationTests {
    func mode(_ path: String) throws -> mode_t {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw MissingFile("no file at \(path)") }
        return info.st_mode & 0o7777
    }

    struct MissingFile: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    // Guards: sockets were `/tmp/vantage-<pid>-<n>-<node>.sock` with the umask's mode: any local user could guess the
    // name, connect and speak for the node (read its frames, publish its events), or plant a socket there first.
    @Test(
        "A node's socket is 0600 in a 0700 folder with a random name, gone at the end; a killed run's folder is removed"
    )
    func privateSocketFolder() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-sockets-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        // A folder a killed run left behind (its process is gone).
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        let state = work.appendingPathComponent("state")
        let stale = state.appendingPathComponent("vantage-\(dead.processIdentifier)-AbC123")
        try FileManager.default.createDirectory(at: stale, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: stale.appendingPathComponent("code_a.sock").path, contents: nil)

        let (runtime, task) = try await AppProtocolHardeningTests.startRuntime(in: work)
        let (second, secondTask) = try await AppProtocolHardeningTests.startRuntime(
            in: work.appendingPathComponent("second"))
        let channel = try await AppProtocolHardeningTests.connect(runtime, node: "code_a")
        let socket = runtime.socketPath(ofNode: "code_a")
        let folder = (socket as NSString).deletingLastPathComponent

        #expect(try mode(folder) == 0o700, "the socket folder is private")
        #expect(try mode(socket) == 0o600, "the socket is the user's only")
        #expect(!socket.hasPrefix("/tmp/vantage-") || folder != "/tmp", "not the old predictable name in /tmp")
        let name = (folder as NSString).lastPathComponent
        #expect(name.hasPrefix("vantage-\(getpid())-") && name.count == "vantage-\(getpid())-".count + 6)
        #expect(folder.hasPrefix(work.appendingPathComponent("state").standardizedFileURL.path), "in the state folder")
        let other = (second.socketPath(ofNode: "code_a") as NSString).deletingLastPathComponent
        #expect(other != folder, "each runtime has a folder of its own")
        #expect(!FileManager.default.fileExists(atPath: stale.path), "the killed run's folder was removed")
        channel.close()

        runtime.shutdown()
        second.shutdown()
        try await task.value
        try await secondTask.value
        #expect(!FileManager.default.fileExists(atPath: folder), "the folder goes with the run")
        #expect(!FileManager.default.fileExists(atPath: other))
    }

    // Guards: a state folder too deep for a socket path (107 bytes) still gets a private folder, elsewhere.
    @Test("With a state folder too deep for a socket path, the private folder is made elsewhere, still 0700")
    func deepStateFolder() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-deep-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: base) }
        let work = base.appendingPathComponent(String(repeating: "d", count: 100))
        let (runtime, task) = try await AppProtocolHardeningTests.startRuntime(in: work)
        let channel = try await AppProtocolHardeningTests.connect(runtime, node: "code_b")
        let socket = runtime.socketPath(ofNode: "code_b")
        #expect(socket.utf8.count <= 107)
        #expect(try mode((socket as NSString).deletingLastPathComponent) == 0o700)
        channel.close()
        runtime.shutdown()
        try await task.value
    }

    // Guards: a line over 1 MiB in the node's logs folder stopped the collector for good: nothing the application
    // logged afterwards reached the runtime's log.
    @Test("A 3 MiB line in the logs folder is passed on cut, and the lines after it still arrive")
    func longLogLine() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vantage-longline-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let log = CapturedLog()
        let script = """
            head -c 3145728 /dev/zero | tr '\\0' x >> "$VANTAGE_LOGS/app.log"
            echo >> "$VANTAGE_LOGS/app.log"
            echo "normal line after the long one" >> "$VANTAGE_LOGS/app.log"
            exec sleep 600
            """
        let (runtime, task) = try await AppProtocolHardeningTests.startRuntime(
            in: work, entry: ["/usr/bin/env", "sh", "-c", script], logger: log.logger)
        let arrived = try await log.wait(for: "normal line after the long one")
        #expect(arrived, "the line after the long one reached the log")
        #expect(log.contains("[line cut at 16384 bytes]"), "the long line is passed on cut, with a note")
        let longest = log.messages.withLock { $0.map(\.utf8.count).max() ?? 0 }
        #expect(longest < 17_000, "no message carries the whole line")
        runtime.shutdown()
        try await task.value
    }

    // Guards: the relay of a node's standard output and error passed a line of megabytes on whole (and kept it in
    // memory); it is cut like the logs folder's, and the output goes on.
    @Test("A 3 MiB line on a node's standard output is relayed cut, and the next line follows")
    func longOutputLine() async throws {
        let input = Pipe()
        let output = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "head -c 3145728 /dev/zero | tr '\\0' x; echo; echo 'normal line'; echo -n last"]
        process.standardOutput = input
        try process.run()
        try input.fileHandleForWriting.close()
        AppOutputRelay(pipe: input, output: output.fileHandleForWriting.fileDescriptor).start(name: "test relay")
        process.waitUntilExit()

        var received = Data()
        let deadline = ContinuousClock.now + .seconds(10)
        let fd = output.fileHandleForReading.fileDescriptor
        var chunk = [UInt8](repeating: 0, count: 65536)
        while ContinuousClock.now < deadline && !String(decoding: received, as: UTF8.self).contains("last\n") {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { received.append(contentsOf: chunk[0..<n]) }
        }
        let text = String(decoding: received, as: UTF8.self)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 3, "\(lines.map { $0.prefix(40) + "… (\($0.utf8.count) bytes)" })")
        // Compared by their ends and sizes: a failure must not print megabytes.
        #expect(lines.first?.hasSuffix("… [line cut at 16384 bytes]") == true)
        #expect(lines.first.map { $0.utf8.count < 17_000 } == true, "\(lines.first?.utf8.count ?? 0) bytes")
        #expect(lines.dropFirst().first.map { String($0.prefix(40)) } == "normal line")
        #expect(lines.last.map { String($0.suffix(40)) } == "last", "the last line is passed on without its newline")
    }
}
