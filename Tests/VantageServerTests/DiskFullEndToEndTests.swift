// Issue 17, fault 2: a really full data volume. The agent's `--data` is a small real file system (a size-limited
// tmpfs mounted for the test), filled to 100 % by a filler file written until ENOSPC, with a real server, a real
// agent and the real people counter inferring on the sample video. What the operator sees is checked: the agent
// stays up and keeps inferring, reports DISK_FULL (a device condition and `disk.full`), refuses a new deployment with
// a reason naming the full disk while the running version stays, counts what it could not store, does not flood its
// log; and once the filler goes, it recovers by itself: DISK_FULL clears, the refused deployment goes through, events
// flow again.
import Foundation
import Testing
import VantageAPI
import VantageAgent
import VantageClient
import VantageCore

@Suite("A full data volume on the device", .serialized)
struct DiskFullEndToEndTests {
    /// The tmpfs's size: the people counter's two versions (program and model inside, unpacked and archived) fit
    /// with room to spare.
    static let volumeMiB = 384

    /// Mounts a tmpfs of `mebibytes` at `folder`; nil with the reason when it cannot (not root, no mount).
    static func mountVolume(at folder: URL, mebibytes: Int) -> String? {
        guard getuid() == 0 else { return "mounting a small file system for the agent's data needs root" }
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let (status, output) = try run(
                "/bin/mount", ["-t", "tmpfs", "-o", "size=\(mebibytes)m", "tmpfs", folder.path])
            return status == 0 ? nil : "mount -t tmpfs failed (\(status)): \(output)"
        } catch {
            return "cannot run mount: \(error)"
        }
    }

    static func unmount(_ folder: URL) {
        _ = try? run("/bin/umount", ["-l", folder.path])
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Writes `file` until the file system has only `leaving` bytes free, or none at all (ENOSPC): 1 MiB, then
    /// 4 KiB, then 512 bytes at a time.
    static func fill(_ file: URL, leaving: Int64 = 0) throws {
        let descriptor = open(file.path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard descriptor >= 0 else {
            throw APITestError("cannot create \(file.path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        func free() -> Int64 {
            var fs = statvfs()
            return fstatvfs(descriptor, &fs) == 0 ? Int64(fs.f_bavail) * Int64(fs.f_frsize) : 0
        }
        for size in [1 << 20, 4096, 512] {
            let chunk = [UInt8](repeating: 0x5a, count: size)
            while free() - Int64(size) >= leaving {
                guard chunk.withUnsafeBytes({ write(descriptor, $0.baseAddress, size) }) > 0 else {
                    guard errno == ENOSPC || errno == EDQUOT else {
                        throw APITestError("filling \(file.path) failed: \(String(cString: strerror(errno)))")
                    }
                    break
                }
            }
        }
        _ = fsync(descriptor)
    }

    /// The newest value of a device metric the server has (its last heartbeat's figures end the series).
    static func latest(_ name: String, of device: String, _ client: ServerClient) async throws -> Double? {
        try await client.deviceMetrics(device, name: name).max { $0.time < $1.time }?.value
    }

    @Test(
        "a full data volume: the agent stays up and infers, reports DISK_FULL, refuses a deployment naming the full disk and keeps the running version, counts what it could not store; when space returns it recovers by itself"
    )
    func fullDataVolume() async throws {
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        let name = "edge-full"
        let data = fleet.agentFolder(name)
        if let reason = Self.mountVolume(at: data, mebibytes: Self.volumeMiB) {
            print("skipped: a full data volume: \(reason)")
            Soak.record(fault: "disk full", runs: 0, faults: 0, invariants: 0, failures: 0, note: "skipped: \(reason)")
            return
        }
        defer { Self.unmount(data) }
        let (device, agent) = try await fleet.enrollAgent(name)
        defer { agent.stop() }
        /// Waits for `condition`; a timeout says what the agent logged last and how the instance stands.
        func waitFor(_ what: String, timeout: Duration, _ condition: @Sendable () async throws -> Bool) async throws {
            do {
                try await fleet.waitUntil(what, timeout: timeout, condition)
            } catch {
                let free = DataVolume.space(at: data.path).map { "\($0.free) of \($0.total) bytes free" } ?? "?"
                throw APITestError("\(error); the data volume has \(free); agent output:\n\(agent.output.suffix(6000))")
            }
        }
        let instance = try await fleet.deployPeopleCounter(on: device, version: "1.0")
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)
        try await fleet.waitUntil("events reach the server", timeout: .seconds(90)) {
            try await fleet.events(device: device).count >= 1
        }

        var invariants = 0
        var failures = 0
        /// One invariant checked (recorded as a test issue when it does not hold).
        func check(_ holds: Bool, _ what: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation)
        {
            invariants += 1
            if !holds {
                failures += 1
                Issue.record(Comment(rawValue: what()), sourceLocation: sourceLocation)
            }
        }

        let filler = data.appending(path: "filler")
        let deadline = ContinuousClock.now + .seconds(Soak.seconds ?? 0)
        var cycles = 0
        var running = "1.0"
        var refusedUnpacks = 0
        repeat {
            cycles += 1
            // A version never unpacked on the device (the one before stays unpacked, to go back to).
            let next = "1.\(cycles)"
            try await fleet.push(version: next)
            let previous = running

            // Room for the new version's archive but not for its unpacked files: the disk is not full, yet the
            // version is refused before it unpacks a byte, and goes through by itself once there is room.
            let package = try await fleet.client.package(try #require(fleet.packageID))
            let archive = try #require(package.versions.first { $0.version == next }?.size)
            let instanceFolder = data.appending(path: "deployments/instances/\(instance)")
            let versionsBefore = try FileManager.default.contentsOfDirectory(
                atPath: instanceFolder.appending(path: "versions").path)
            try Self.fill(filler, leaving: archive + 12 << 20)
            _ = try await fleet.client.updateInstance(instance, InstanceUpdate(packageVersion: next))
            try await waitFor("the version is refused before it unpacks", timeout: .seconds(60)) {
                let state = try await fleet.client.instance(instance)
                return state.status == .deploymentError && state.statusDescription.contains("unpacking the version")
            }
            let tight = try await fleet.client.instance(instance)
            check(
                tight.statusDescription.contains("not enough space") && tight.healthStatus == .running,
                "the reason names the missing space and the running version still runs: \(tight)")
            check(try fleet.currentVersion(of: instance, agent: name) == running, "current still names \(running)")
            let unpacked = try FileManager.default.contentsOfDirectory(atPath: instanceFolder.path)
            check(!unpacked.contains { $0.hasPrefix(".unpack-") }, "nothing half unpacked is left: \(unpacked)")
            check(
                try FileManager.default.contentsOfDirectory(atPath: instanceFolder.appending(path: "versions").path)
                    .sorted() == versionsBefore.sorted(), "no new version folder")
            refusedUnpacks += 1
            try FileManager.default.removeItem(at: filler)
            try await fleet.waitForDeployment(instance, version: next, agent: agent)
            running = next
            // Back to the version before: unpacked already, so only the full disk stands in its way.
            let again = previous
            let linesBefore = agent.output.split(separator: "\n").count

            // Fill the volume to 100 %.
            try Self.fill(filler)
            try await waitFor("the agent reports DISK_FULL", timeout: .seconds(60)) {
                let full = try await Self.latest("disk.full", of: device, fleet.client) == 1
                let shown = try await fleet.client.device(device).conditions?.contains { $0.kind == .diskFull }
                return full && shown == true
            }
            let condition = try #require(
                try await fleet.client.device(device).conditions?.first { $0.kind == .diskFull })
            check(
                condition.message.contains("MiB free") && condition.message.contains("free disk space"),
                "the device's DISK_FULL condition says how much is free and what to do: \(condition.message)")
            check(
                abs(condition.since.timeIntervalSinceNow) < 300, "the condition says since when: \(condition.since)")

            // Inference goes on: the frames inferred keep growing.
            let frames = try await Self.latest("frames.inferred", of: device, fleet.client) ?? 0
            try await waitFor("the instance keeps inferring on the full disk", timeout: .seconds(60)) {
                try await Self.latest("frames.inferred", of: device, fleet.client) ?? 0 > frames + 10
            }

            // A new version is refused before it writes, naming the full disk; the running one stays.
            _ = try await fleet.client.updateInstance(instance, InstanceUpdate(packageVersion: again))
            try await waitFor("the deployment is refused for the full disk", timeout: .seconds(60)) {
                let state = try await fleet.client.instance(instance)
                return state.status == .deploymentError && state.statusDescription.contains("not enough space")
            }
            let refused = try await fleet.client.instance(instance)
            check(
                refused.statusDescription.contains(data.path) && refused.statusDescription.contains("MiB free"),
                "the reason names the disk and its free space: \(refused.statusDescription)")
            check(refused.healthStatus == .running, "the running version still runs: \(refused)")
            check(
                try fleet.currentVersion(of: instance, agent: name) == running,
                "current still names \(running)")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: instanceFolder.path).filter {
                $0.hasPrefix(".unpack-")
            }
            check(leftovers.isEmpty, "no half-unpacked version is left: \(leftovers)")
            check(agent.isRunning, "the agent is up")

            // The agent stays up for a while on the full disk, still inferring, and says DISK_FULL once.
            try await Task.sleep(for: .seconds(5))
            check(agent.isRunning, "the agent is still up")
            check(
                try await fleet.client.instance(instance).healthStatus == .running, "the instance still runs")
            let said = agent.output.components(separatedBy: "DISK_FULL:").count - 1
            check(said == cycles, "DISK_FULL logged once per filling, not per frame: \(said) times in \(cycles)")
            let lines = agent.output.split(separator: "\n").count - linesBefore
            check(lines < 400, "the agent's log does not grow per frame on the full disk: \(lines) lines")

            // Space returns: the agent recovers by itself.
            let eventsBefore = try await fleet.events(device: device).count
            try FileManager.default.removeItem(at: filler)
            try await waitFor("DISK_FULL clears", timeout: .seconds(60)) {
                let full = try await Self.latest("disk.full", of: device, fleet.client) == 0
                let shown = try await fleet.client.device(device).conditions?.contains { $0.kind == .diskFull }
                return full && shown != true
            }
            try await fleet.waitForDeployment(instance, version: again, agent: agent)
            running = again
            check(try fleet.currentVersion(of: instance, agent: name) == again, "current names \(again)")
            try await waitFor("events flow to the server again", timeout: .seconds(90)) {
                try await fleet.events(device: device).count > eventsBefore
            }
            // The people counter publishes every few seconds on the sample video: some of it met the full disk.
            let unstored = try await Self.latest("outbox.unstored_events", of: device, fleet.client) ?? 0
            check(unstored > 0, "the events the full disk kept out are counted (outbox.unstored_events)")
        } while Soak.isOn && ContinuousClock.now < deadline

        #expect(agent.isRunning, "the agent never stopped: \(agent.output.suffix(3000))")
        let unstored = try await Self.latest("outbox.unstored_events", of: device, fleet.client) ?? 0
        Soak.record(
            fault: "disk full", runs: cycles, faults: cycles + refusedUnpacks, invariants: invariants,
            failures: failures,
            note:
                "tmpfs \(Self.volumeMiB) MiB: filled to ENOSPC, and to too little for an unpack; \(Int(unstored)) events unstored"
        )
    }
}
