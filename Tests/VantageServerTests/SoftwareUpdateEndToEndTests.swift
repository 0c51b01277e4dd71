// Software updates end to end (issue 16, "Software updates"): a real `vantage server` and a real `vantage agent`
// (the debug build, as the unit's ExecStart would run the installed one) running the people counter on the sample
// video. Release B is the same build packed as a release tarball with another version; it is uploaded, rolled out,
// installed beside the running version and switched to, and the instance runs again under it. Broken releases C
// (its bin/vantage exits 1 at start) and D (it hangs) are rolled back by the agent itself; the rollout says why.
import Foundation
import Testing
import VantageAPI
import VantageAgent
import VantageClient
import VantageCore

@Suite("software updates end to end", .serialized)
struct SoftwareUpdateEndToEndTests {
    /// The processes running `agent-runtime` from a binary under `folder` (runtime workers of that release).
    static func runtimeWorkers(under folder: URL) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
                command.contains("agent-runtime"),
                let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
            else { return false }
            return exe.hasPrefix(folder.resolvingSymlinksInPath().path + "/")
        }
    }

    /// A release tarball in the shape `make package` writes (scripts/package: a gzip-compressed tar of a tree with
    /// the binary and share/vantage/version), holding `files` (path → source file) and the version file. gzip -1:
    /// the debug binary is 170 MB, and the test's time is what matters here.
    static func tarball(
        _ name: String, version: String, files: [String: URL], in folder: URL
    ) async throws -> URL {
        let tree = folder.appending(path: "tree-\(name)")
        try? FileManager.default.removeItem(at: tree)
        for (path, source) in files {
            let destination = tree.appending(path: path)
            try FileManager.default.createDirectory(
                at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
            // A hard link where the file system allows (the build folder and the temporary folder are often one),
            // else a copy.
            do {
                try FileManager.default.linkItem(at: source, to: destination)
            } catch {
                try FileManager.default.copyItem(at: source, to: destination)
            }
        }
        let versionFile = tree.appending(path: "share/vantage/version")
        try FileManager.default.createDirectory(
            at: versionFile.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("\(version)\n".utf8).write(to: versionFile)
        let tarball = folder.appending(path: "\(name).tar.gz")
        let result = try await TestProcess.run([
            "/bin/sh", "-c", "tar -C \"$1\" -cf - . | gzip -1 > \"$2\"", "sh", tree.path, tarball.path,
        ])
        guard result.status == 0 else { throw APITestError("tar failed: \(result.output)") }
        try? FileManager.default.removeItem(at: tree)
        return tarball
    }

    /// A script standing in for a broken release's binary.
    static func script(_ name: String, _ body: String, in folder: URL) throws -> URL {
        let file = folder.appending(path: name)
        try Data("#!/bin/sh\n\(body)\n".utf8).write(to: file)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file.path)
        return file
    }

    @Test(
        "an agent is updated from A to B (its instance runs again under B), and broken releases C (exits at start) and D (hangs) are rolled back to B by the agent, each rollout saying why"
    )
    func updateAndRollBack() async throws {
        let started = ContinuousClock.now
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        // The deadline is short for the test; it must still leave B (a debug build) time to start its instance.
        let (device, agent) = try await fleet.enrollAgent("edge-u", extra: ["--update-deadline-seconds", "45"])
        defer { agent.stop() }
        try await fleet.waitUntil("the device is online", timeout: .seconds(60)) {
            try await fleet.client.device(device).connectionStatus == .online
        }
        let versionA = try #require(try await fleet.client.device(device).softwareVersion)
        let instance = try await fleet.deployPeopleCounter(on: device, version: "1.0")
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)

        // Release B: the same build, version A-b. A package that does not carry its Swift code node's program (one
        // pushed from the source tree) finds it beside the running vantage binary, so the release carries it there
        // too, as a source build has it.
        let binary = try ServerProcess.binary()
        let versionB = "\(versionA)-b"
        let releaseB = try await Self.tarball(
            "b", version: versionB,
            files: [
                "bin/vantage": binary,
                "bin/people-counter": binary.deletingLastPathComponent().appending(path: "people-counter"),
            ], in: fleet.folder)
        let uploaded = try await fleet.client.uploadRelease(file: releaseB)
        #expect(uploaded.version == versionB, "the version is read from the tarball")
        let rolloutB = try await fleet.client.createRollout(NewRollout(releaseVersion: versionB, deviceIds: [device]))
        do {
            try await fleet.waitUntil("the device runs B and is healthy", timeout: .seconds(120)) {
                let rollout = try await fleet.client.rollout(rolloutB.id)
                let current = try await fleet.client.device(device)
                return rollout.state == .succeeded && current.softwareVersion == versionB
            }
        } catch {
            throw APITestError("\(error)\nagent output:\n\(agent.output.suffix(5000))")
        }
        let afterB = try await fleet.client.rollout(rolloutB.id)
        #expect(afterB.devices.map(\.state) == [.healthy], "\(afterB)")
        let shown = try await fleet.client.device(device)
        #expect(shown.softwareUpdate?.state == .healthy && shown.softwareUpdate?.releaseVersion == versionB)
        // The instance runs again, in a runtime worker of B's binary, installed beside A in DATA/software/B.
        let folderB = fleet.agentFolder("edge-u").appending(path: "software/\(versionB)")
        #expect(!Self.runtimeWorkers(under: folderB).isEmpty, "the instance runs under B's binary")
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)
        let underB = try await fleet.events(device: device).count
        try await fleet.waitUntil("events keep coming under B", timeout: .seconds(60)) {
            try await fleet.events(device: device).count > underB
        }
        // A release's version names it: B cannot be uploaded twice.
        await #expect(throws: ClientError.self) { _ = try await fleet.client.uploadRelease(file: releaseB) }

        // Release C exits 1 at start: started three times, then rolled back to B by the launcher.
        let crash = try Self.script("crash.sh", "echo 'release C fails at start' >&2\nexit 1", in: fleet.folder)
        let releaseC = try await Self.tarball(
            "c", version: "\(versionA)-c", files: ["bin/vantage": crash], in: fleet.folder)
        _ = try await fleet.client.uploadRelease(file: releaseC)
        let rolloutC = try await fleet.client.createRollout(
            NewRollout(releaseVersion: "\(versionA)-c", deviceIds: [device]))
        let rolledBackAt = ContinuousClock.now
        try await fleet.waitUntil("C is rolled back and the rollout failed", timeout: .seconds(90)) {
            try await fleet.client.rollout(rolloutC.id).state == .failed
        }
        let failedC = try await fleet.client.rollout(rolloutC.id)
        #expect(failedC.devices.first?.state == .rolledBack, "\(failedC)")
        #expect(
            failedC.reason?.contains("exited with status 1") == true && failedC.reason?.contains("edge-u") == true,
            "the rollout says which device and why: \(failedC.reason ?? "none")")
        try await fleet.waitUntil("the device reports B again", timeout: .seconds(60)) {
            try await fleet.client.device(device).softwareVersion == versionB
        }
        #expect(agent.isRunning, "the agent process (the launcher) never stopped")
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)
        let afterC = try await fleet.events(device: device).count
        try await fleet.waitUntil("the instance sends events again under B", timeout: .seconds(60)) {
            try await fleet.events(device: device).count > afterC
        }
        print("C rolled back and B running its instance again after \(ContinuousClock.now - rolledBackAt)")

        // Release D hangs at start (never connects): stopped at its deadline, rolled back to B.
        let hang = try Self.script("hang.sh", "exec sleep 600", in: fleet.folder)
        let releaseD = try await Self.tarball(
            "d", version: "\(versionA)-d", files: ["bin/vantage": hang], in: fleet.folder)
        _ = try await fleet.client.uploadRelease(file: releaseD)
        let rolloutD = try await fleet.client.createRollout(
            NewRollout(releaseVersion: "\(versionA)-d", deviceIds: [device]))
        try await fleet.waitUntil("D is rolled back at its deadline", timeout: .seconds(120)) {
            try await fleet.client.rollout(rolloutD.id).state == .failed
        }
        let failedD = try await fleet.client.rollout(rolloutD.id)
        #expect(
            failedD.devices.first?.state == .rolledBack
                && failedD.devices.first?.reason?.contains("deadline") == true, "\(failedD)")
        try await fleet.waitUntil("the device reports B again", timeout: .seconds(60)) {
            try await fleet.client.device(device).softwareVersion == versionB
        }
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)

        // A release a device runs cannot be deleted; one none runs can.
        await #expect(throws: ClientError.self) { try await fleet.client.deleteRelease(versionB) }
        try await fleet.client.deleteRelease("\(versionA)-c")
        print("software update end to end took \(ContinuousClock.now - started)")
    }
}
