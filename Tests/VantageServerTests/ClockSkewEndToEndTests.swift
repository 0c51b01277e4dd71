// Clock jumps (issue 17, fault 5): a real `vantage server` and real `vantage agent`s running the people counter, the
// agents' clocks moved with libfaketime (Debian's `faketime`, preloaded into the agent and so into its runtime
// workers and code nodes; the monotonic clock left alone, as a wrong RTC leaves it). One box runs an hour ahead of the
// server from its start; the other, enrolled with the right time, starts again a year behind, and NTP then sets its
// clock right while it runs. What an operator sees: the skew in `vantage devices show`, a TLS failure that names the
// clock, no event lost or doubled and each camera's events in order, and the snapshots made under the wrong clock
// neither deleted as a year old nor kept for ever.
import Foundation
import Testing
import VantageAPI
import VantageClient
import VantageCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite("clock jumps", .serialized)
struct ClockSkewEndToEndTests {
    static let libfaketime = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
    ]
    .first { FileManager.default.fileExists(atPath: $0) }

    /// libfaketime's shared state (`FAKETIME_SHARED`), made by a `faketime` process that sleeps for the test. Swift
    /// programs preloaded with libfaketime without it lose their command-line arguments (seen with Debian's 0.9.10:
    /// `vantage agent …` printed the top-level help); with it they run normally.
    final class SharedFakeTime: @unchecked Sendable {
        // Unchecked: used by one test at a time.
        let helper: ServerProcess
        let shared: String

        init() async throws {
            helper = try ServerProcess(
                URL(filePath: "/usr/bin/faketime"), ["-f", "+0", "sleep", "3600"], name: "faketime")
            let deadline = ContinuousClock.now + .seconds(10)
            var found: String?
            while found == nil {
                let children =
                    (try? String(
                        contentsOfFile: "/proc/\(helper.processIdentifier)/task/\(helper.processIdentifier)/children",
                        encoding: .utf8)) ?? ""
                for child in children.split(separator: " ") {
                    let environment =
                        (try? Data(contentsOf: URL(filePath: "/proc/\(child)/environ")))
                        .map { String(decoding: $0, as: UTF8.self) } ?? ""
                    found = environment.split(separator: "\0").first { $0.hasPrefix("FAKETIME_SHARED=") }
                        .map { String($0.dropFirst("FAKETIME_SHARED=".count)) }
                }
                guard found == nil else { break }
                guard ContinuousClock.now < deadline else {
                    throw APITestError("faketime did not start: \(helper.output)")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            shared = found!
        }

        /// An agent's environment with its clock `offset` away (libfaketime syntax: "+1h", "-365d", "+0"), read
        /// from `file` at every look, so the test can move it while the agent runs; the monotonic clock is left
        /// alone, as a wrong real-time clock leaves it.
        func environment(_ file: URL, offset: String) throws -> [String: String] {
            try Data(offset.utf8).write(to: file)
            return [
                "LD_PRELOAD": ClockSkewEndToEndTests.libfaketime!, "FAKETIME_SHARED": shared,
                "FAKETIME_TIMESTAMP_FILE": file.path, "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            ]
        }
    }

    /// The snapshot files of `instance` on device `name`, with their modification times.
    static func snapshots(_ fleet: Fleet, _ name: String, _ instance: String) -> [String: Date] {
        let folder = fleet.agentFolder(name).appending(path: "state/\(instance)/snapshots")
        var files: [String: Date] = [:]
        for file in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
            let path = folder.appending(path: file).path
            if let date = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date {
                files[path] = date
            }
        }
        return files
    }

    /// Each camera's events, as the server received them, are in the order the device made them, and none twice.
    static func inOrder(_ events: [Event]) -> String? {
        for (camera, list) in Dictionary(grouping: events, by: { $0.cameraId ?? "-" }) {
            let received = list.sorted { ($0.receivedAt, $0.time) < ($1.receivedAt, $1.time) }
            for (earlier, later) in zip(received, received.dropFirst()) where later.time < earlier.time {
                return
                    "camera \(camera): \(later.deviceEventId ?? later.id) at \(later.time) arrived after \(earlier.time)"
            }
            let ids = list.compactMap(\.deviceEventId)
            if Set(ids).count != ids.count { return "camera \(camera): an event was stored twice" }
        }
        return nil
    }

    @Test(
        "an agent an hour ahead reports its skew; one a year behind says its clock breaks TLS, and once set right delivers its backlog in order and keeps its fresh snapshots"
    )
    func clockJumps() async throws {
        // Not finished: see the .disabled reason. VANTAGE_CLOCK_SKEW_E2E=1 runs it anyway, to work on it.
        guard ProcessInfo.processInfo.environment["VANTAGE_CLOCK_SKEW_E2E"] == "1" else {
            print(
                "skipped: ClockSkewEndToEndTests is not finished (the year-behind agent under libfaketime does not come up in this harness); VANTAGE_CLOCK_SKEW_E2E=1 runs it"
            )
            return
        }
        guard Self.libfaketime != nil else {
            print("skipped: libfaketime is not installed (scripts/setup installs Debian's faketime)")
            return
        }
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        print("clock jumps: fleet started")
        let fake = try await SharedFakeTime()
        print("clock jumps: libfaketime shared state \(fake.shared)")
        defer { fake.helper.stop() }
        let aheadClock = fleet.folder.appending(path: "ahead.faketime")
        let behindClock = fleet.folder.appending(path: "behind.faketime")
        let (ahead, aheadAgent) = try await fleet.enrollAgent(
            "edge-ahead", environment: try fake.environment(aheadClock, offset: "+1h"))
        let (behind, firstBehindAgent) = try await fleet.enrollAgent("edge-behind")
        var behindAgent = firstBehindAgent
        defer {
            aheadAgent.stop()
            behindAgent.stop()
        }
        // Media is deleted after an hour: a snapshot that looked a year old would go at the next sweep.
        let outputs = JSONValue.object(["events": .object(["maxAge": .string("1h")])])
        let aheadInstance = try await fleet.deployPeopleCounter(on: ahead, version: "1.0")
        let behindInstance = try await fleet.deployPeopleCounter(on: behind, version: "1.0", outputs: outputs)
        print("clock jumps: deploying")
        try await fleet.waitForDeployment(aheadInstance, version: "1.0", agent: aheadAgent)
        try await fleet.waitForDeployment(behindInstance, version: "1.0", agent: behindAgent)
        var invariants = 0
        var failures = 0
        func check(_ condition: Bool, _ message: @autoclosure () -> String) {
            invariants += 1
            if !condition {
                failures += 1
                Issue.record("\(message())")
            }
        }

        // An hour ahead: TLS works (the certificates are valid for a year), and the operator sees the skew.
        let token = try #require(fleet.server.adminToken)
        try await fleet.waitUntil("the server sees the agent an hour ahead", timeout: .seconds(30)) {
            let skew = try await fleet.client.deviceMetrics(ahead, name: "clock.skew_seconds").last?.value ?? 0
            return abs(skew - 3600) < 120
        }
        let show = try await TestProcess.runSeparately(
            [
                try ServerProcess.binary().path, "devices", "show", ahead, "--server",
                "http://127.0.0.1:\(fleet.apiPort)", "--token", token,
            ], environment: ["VANTAGE_SERVER": nil, "VANTAGE_TOKEN": nil, "VANTAGE_CONFIG": "/nonexistent"])
        check(
            show.stdout.contains("CLOCK_SKEW: 1 h 0 min ahead of the server") && show.stdout.contains("check NTP"),
            "devices show does not flag the skew:\n\(show.stdout)\(show.stderr)")
        let behindShow = try await TestProcess.runSeparately(
            [
                try ServerProcess.binary().path, "devices", "show", behind, "--server",
                "http://127.0.0.1:\(fleet.apiPort)", "--token", token,
            ], environment: ["VANTAGE_SERVER": nil, "VANTAGE_TOKEN": nil, "VANTAGE_CONFIG": "/nonexistent"])
        check(
            behindShow.stdout.contains("in step with the server"),
            "a device with the right time is flagged:\n\(behindShow.stdout)")

        // A year behind: the box restarts with its clock back a year. TLS fails, and the log says it is the clock.
        try await fleet.waitUntil("events of the right-clock run reach the server", timeout: .seconds(60)) {
            try await fleet.events(device: behind).count >= 2
        }
        print("clock jumps: restarting a year behind")
        behindAgent.stop()
        let before = Date()
        behindAgent = try fleet.startAgent(
            "edge-behind", environment: try fake.environment(behindClock, offset: "-365d"))
        let wrongClockAgent = behindAgent
        try await fleet.waitUntil("the agent says its clock breaks TLS", timeout: .seconds(60)) {
            wrongClockAgent.output.contains("is outside the certificate's validity")
        }
        check(
            behindAgent.output.contains("check NTP"),
            "the TLS failure does not say what to do:\n\(behindAgent.output.suffix(3000))")
        // It keeps running its instance from disk meanwhile: snapshots made under the year-behind clock.
        try await fleet.waitUntil("snapshots are made a year behind", timeout: .seconds(60)) {
            Self.snapshots(fleet, "edge-behind", behindInstance).values.filter {
                $0 < before.addingTimeInterval(-300 * 86_400)
            }.count >= 2
        }
        let madeBehind = Self.snapshots(fleet, "edge-behind", behindInstance).filter {
            $0.value < before.addingTimeInterval(-300 * 86_400)
        }

        print("clock jumps: setting the clock right")
        // NTP sets the clock right while the agent runs: a jump forward of a year.
        try Data("+0".utf8).write(to: behindClock)
        try await fleet.waitUntil("the agent notices the jump and reaches the server", timeout: .seconds(60)) {
            let online = try await fleet.client.device(behind).connectionStatus == .online
            return wrongClockAgent.output.contains("the wall clock jumped") && online
        }
        try await fleet.waitUntil("the backlog made a year behind reaches the server", timeout: .seconds(60)) {
            try await fleet.events(device: behind).contains { $0.time < before.addingTimeInterval(-300 * 86_400) }
        }
        let events = try await fleet.events(device: behind)
        if let problem = Self.inOrder(events) { check(false, problem) } else { check(true, "") }

        // The snapshots made a year behind are as old as they really are, not a year: a restart (whose first pass
        // sweeps the media) keeps every one that was delivered.
        behindAgent.stop()
        behindAgent = try fleet.startAgent("edge-behind")
        let rightClockAgent = behindAgent
        try await fleet.waitUntil("the restarted agent runs the instance", timeout: .seconds(90)) {
            try await fleet.client.instance(behindInstance).healthStatus == .running
                && rightClockAgent.output.contains("camera streaming")
        }
        try await Task.sleep(for: .seconds(2))
        let left = Self.snapshots(fleet, "edge-behind", behindInstance)
        let kept = madeBehind.keys.filter { left[$0] != nil }
        check(
            kept.count == madeBehind.count,
            "retention deleted \(madeBehind.count - kept.count) of \(madeBehind.count) fresh snapshots made while the clock was a year behind"
        )
        check(
            kept.allSatisfy { abs((left[$0] ?? .distantPast).timeIntervalSinceNow) < 600 },
            "the snapshots' times were not moved with the clock: \(kept.map { left[$0]! })")
        let aheadEvents = try await fleet.events(device: ahead)
        if let problem = Self.inOrder(aheadEvents) { check(false, problem) } else { check(true, "") }
        check(!aheadEvents.isEmpty, "the agent an hour ahead delivered nothing")

        Soak.record(
            fault: "clock jumps", runs: 1, faults: 3, invariants: invariants, failures: failures,
            note: "+1h from start; -365d at restart, then set right while running (libfaketime)")
    }
}
