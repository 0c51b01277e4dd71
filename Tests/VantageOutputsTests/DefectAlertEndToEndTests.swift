import Foundation
import Testing

/// examples/defect-alert end to end, as a user runs it: the real `vantage` binary on the sample video, real
/// inference, the no-code zone, and three real sinks — moto's S3-compatible server, a real mosquitto broker and the
/// webhook receiver that verifies signatures — each behind scripts/outage-proxy, which takes all three away for 30
/// seconds in the middle of the run. Every `zone.enter` the runtime recorded must reach every sink, in order,
/// exactly once, the messages naming the snapshot only once it is stored.
@Suite("Defect alert end to end", .serialized)
struct DefectAlertEndToEndTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var binary: URL { root.appendingPathComponent(".build/debug/vantage") }
    static var video: URL { root.appendingPathComponent(".deps/media/vtest.mp4") }

    @Test("Snapshot to S3, message to MQTT and to a webhook: all arrive, in order, once, through a 30 s outage")
    func defectAlert() async throws {
        for (path, fix) in [
            (Self.binary.path, "make build"), (Self.video.path, "scripts/setup"),
            (Self.root.appendingPathComponent(".deps/s3server").path, "scripts/setup"),
            ("/usr/sbin/mosquitto", "scripts/setup"),
        ] {
            try #require(FileManager.default.fileExists(atPath: path), "\(path) is missing: run \(fix)")
        }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("defect-alert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let down = work.appendingPathComponent("down")
        var services: [Service] = []
        defer { for s in services.reversed() { s.stop() } }

        // The three real services. moto checks every request's SigV4 signature (an IAM user made for the test).
        let s3 = try await S3TestServer.start(authentication: true)
        defer { s3.stop() }
        try await s3.createBucket("defects")
        let s3Port = s3.endpoint.port!
        let mqttPort = try freePort()
        let mosquittoConfig = work.appendingPathComponent("mosquitto.conf")
        try """
        listener \(mqttPort) 127.0.0.1
        allow_anonymous true
        persistence true
        persistence_location \(work.path)/
        """.write(to: mosquittoConfig, atomically: true, encoding: .utf8)
        services.append(
            try Service(
                "mosquitto", executable: "/usr/sbin/mosquitto", ["-c", mosquittoConfig.path],
                log: work.appendingPathComponent("mosquitto.log"), readyPort: mqttPort))
        let hookPort = try freePort()
        let hookLog = work.appendingPathComponent("webhook.jsonl")
        let secret = "whsec-\(UUID().uuidString)"
        services.append(
            try Service(
                "webhook receiver", executable: Self.root.appendingPathComponent("scripts/webhook-receiver").path,
                ["--port", "\(hookPort)", "--secret", secret, "--log", hookLog.path],
                log: work.appendingPathComponent("webhook.log"), readyPort: hookPort))

        // A subscriber that keeps its session, as the quality team's would.
        let received = work.appendingPathComponent("mqtt.txt")
        services.append(
            try Service(
                "mosquitto_sub", executable: "/usr/bin/mosquitto_sub",
                [
                    "-h", "127.0.0.1", "-p", "\(mqttPort)", "-t", "vantage/+/+/zone.enter", "-q", "2", "-c", "-i",
                    "quality-team", "-v",
                ],
                log: received, readyPort: nil))
        try await Task.sleep(for: .seconds(1))

        // Each sink behind an outage proxy.
        var proxied: [Int: Int] = [:]
        for port in [s3Port, mqttPort, hookPort] {
            let listen = try freePort()
            services.append(
                try Service(
                    "outage proxy", executable: Self.root.appendingPathComponent("scripts/outage-proxy").path,
                    ["--listen", "127.0.0.1:\(listen)", "--target", "127.0.0.1:\(port)", "--down-while", down.path],
                    log: work.appendingPathComponent("proxy-\(port).log"), readyPort: listen))
            proxied[port] = listen
        }

        let events = work.appendingPathComponent("events.jsonl")
        let run = try Service(
            "vantage run", executable: Self.binary.path,
            [
                "run", Self.root.appendingPathComponent("examples/defect-alert").path,
                "--camera", "camera_node=\(Self.video.path)", "--loop", "--no-http", "--device", "line-3",
                "--outputs", Self.root.appendingPathComponent("examples/defect-alert/sinks.json").path,
                "--events", events.path, "--state-dir", work.appendingPathComponent("state").path,
                "--snapshots", work.appendingPathComponent("snapshots").path, "--status-interval", "5",
            ],
            log: work.appendingPathComponent("vantage.log"), readyPort: nil,
            environment: [
                "DEFECT_S3_ENDPOINT": "http://127.0.0.1:\(proxied[s3Port]!)", "DEFECT_S3_BUCKET": "defects",
                "DEFECT_S3_ACCESS_KEY_ID": s3.accessKeyId, "DEFECT_S3_SECRET_ACCESS_KEY": s3.secretAccessKey,
                "DEFECT_MQTT_URL": "mqtt://127.0.0.1:\(proxied[mqttPort]!)",
                "DEFECT_WEBHOOK_URL": "http://127.0.0.1:\(proxied[hookPort]!)/quality", "DEFECT_WEBHOOK_SECRET": secret,
            ])
        services.append(run)

        func recorded() -> [[String: Any]] {
            let text = (try? String(contentsOf: events, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }.filter { $0["type"] as? String == "zone.enter" }
        }
        func mqttMessages() -> [[String: Any]] {
            let text = (try? String(contentsOf: received, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { line in
                guard let space = line.firstIndex(of: " ") else { return nil }
                return try? JSONSerialization.jsonObject(with: Data(line[line.index(after: space)...].utf8))
                    as? [String: Any]
            }
        }
        func hookMessages() -> [[String: Any]] {
            let text = (try? String(contentsOf: hookLog, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["body"] as? [String: Any]
            }
        }

        // The first alerts go through; then every sink goes away for 30 s while people keep walking in.
        try await until(seconds: 120, "the first alert reached all three sinks (\(run.tail))") {
            !recorded().isEmpty && !mqttMessages().isEmpty && !hookMessages().isEmpty
        }
        FileManager.default.createFile(atPath: down.path, contents: nil)
        let outageStart = Date()
        let before = recorded().count
        try await Task.sleep(for: .seconds(30))
        let duringOutage = recorded().count - before
        let deliveredDuringOutage = (mqtt: mqttMessages().count, hook: hookMessages().count)
        try FileManager.default.removeItem(at: down)
        let outageEnd = Date()
        #expect(duringOutage > 0, "no alert was raised during the outage, so it proved nothing")

        // After the outage everything recorded so far arrives.
        try await Task.sleep(for: .seconds(5))
        let target = recorded().count
        try await until(seconds: 90, "every alert reached every sink after the outage (\(run.tail))") {
            mqttMessages().count >= target && hookMessages().count >= target
        }
        #expect(run.interrupt() == 0, "vantage run did not stop cleanly: \(run.tail)")

        let ids = recorded().compactMap { $0["id"] as? String }
        let mqttIDs = mqttMessages().compactMap { $0["id"] as? String }
        let hookIDs = hookMessages().compactMap { $0["id"] as? String }
        // What each sink received is exactly the runtime's record, in order, each once (events recorded in the last
        // moments before Ctrl-C may still wait in the outbox for the next start).
        #expect(mqttIDs.count >= target && hookIDs.count >= target)
        #expect(mqttIDs == Array(ids.prefix(mqttIDs.count)), "MQTT: missing, duplicated or out of order")
        #expect(hookIDs == Array(ids.prefix(hookIDs.count)), "webhook: missing, duplicated or out of order")
        #expect(deliveredDuringOutage.mqtt < target && deliveredDuringOutage.hook < target)
        print(
            "defect alert: \(ids.count) alerts recorded, \(duringOutage) during the \(Int(outageEnd.timeIntervalSince(outageStart))) s "
                + "outage; MQTT \(mqttIDs.count), webhook \(hookIDs.count) delivered, none twice, in order")

        // Each message names its snapshot, which is in the bucket, byte for byte the one recorded on the box.
        let localSnapshots = Dictionary(
            recorded().compactMap { e in
                (e["id"] as? String).flatMap { id in
                    ((e["snapshot"] as? [String: Any])?["file"] as? String).map { (id, $0) }
                }
            }
        ) { a, _ in a }
        for message in mqttMessages() {
            let snapshot = try #require(message["snapshot"] as? [String: Any], "a message without its snapshot")
            let key = try #require(snapshot["key"] as? String)
            #expect(key.hasPrefix("defects/camera_node/"))
            let stored = try await s3.object(bucket: "defects", key: key)
            let local = try #require(localSnapshots[message["id"] as? String ?? ""])
            #expect(
                stored == [UInt8](try Data(contentsOf: URL(fileURLWithPath: local))), "\(key) differs from \(local)")
            // And its clip: an MP4 cut from the camera's packet ring around the alert.
            let clip = try #require(message["clip"] as? [String: Any], "a message without its clip")
            let clipKey = try #require(clip["key"] as? String, "the clip failed: \(clip["error"] ?? "")")
            #expect(clipKey.hasSuffix(".mp4"))
            let movie = try #require(try await s3.object(bucket: "defects", key: clipKey))
            #expect(
                movie.count > 10_000 && String(decoding: movie[4..<8], as: UTF8.self) == "ftyp", "\(clipKey) is no MP4")
            let payload = try #require(message["payload"] as? [String: Any])
            #expect(payload["zone"] as? String == "loading_bay")
            #expect(payload["box"] is [String: Any])
            #expect(message["time"] is String && message["type"] as? String == "zone.enter")
            #expect(message["device"] as? String == "line-3")
        }
    }

    // MARK: - Helpers

    /// A process the test started; stopped (SIGINT, then SIGKILL) at the end.
    final class Service: @unchecked Sendable {
        let name: String
        let process = Process()
        let log: URL

        init(
            _ name: String, executable: String, _ arguments: [String], log: URL, readyPort: Int?,
            environment: [String: String] = [:]
        ) throws {
            self.name = name
            self.log = log
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            if let readyPort {
                let deadline = Date().addingTimeInterval(30)
                while !portOpen(readyPort) {
                    guard Date() < deadline, process.isRunning else {
                        stop()
                        throw ServiceError("\(name) did not start listening on \(readyPort): \(tail)")
                    }
                    usleep(100_000)
                }
            }
        }

        var tail: String {
            String(String(decoding: (try? Data(contentsOf: log)) ?? Data(), as: UTF8.self).suffix(3000))
        }

        /// Ctrl-C; the exit status, or nil when it did not stop within `timeout`.
        func interrupt(timeout: Double = 30) -> Int32? {
            guard process.isRunning else { return process.terminationStatus }
            process.interrupt()
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(50_000) }
            return process.isRunning ? nil : process.terminationStatus
        }

        func stop() {
            guard process.isRunning else { return }
            if interrupt(timeout: 5) == nil { kill(process.processIdentifier, SIGKILL) }
        }
    }

    struct ServiceError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    func until(seconds: Double, _ what: @autoclosure () -> String, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            guard Date() < deadline else { throw ServiceError("timed out waiting until \(what())") }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}

/// Whether something listens on 127.0.0.1:`port`.
func portOpen(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}

/// A TCP port nothing listens on now.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else { throw DefectAlertEndToEndTests.ServiceError("no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}
