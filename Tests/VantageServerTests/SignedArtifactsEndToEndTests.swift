import Foundation
import Testing
import VantageAPI
import VantageClient

/// Signed artifacts (issue 17, fault 8; docs/security.md "Signed artifacts"), with a real server and a real agent:
/// the agent pins the control plane's artifact key and installs only archives the server signed at upload. An
/// attacker who can write the artifact store and the database — but not the server's secret key — points a package
/// version at an archive of their own: the agent refuses it before unpacking, reports it, keeps the running version,
/// does not try it again, and installs the version once it points at a signed archive again.
@Suite(.serialized)
struct SignedArtifactsEndToEndTests {
    @Test func agentRefusesAnArchiveTheServerNeverSigned() async throws {
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        let (device, agent) = try await fleet.enrollAgent("signed")
        let instance = try await fleet.deployPeopleCounter(on: device, version: "1.0")
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)
        let pinned = fleet.agentFolder("signed").appending(path: "deployments/artifact-key")
        #expect(FileManager.default.fileExists(atPath: pinned.path), "the agent pinned no artifact key")

        // Version 2.0, pushed (and signed) as usual; then its row is pointed at an archive the server never signed.
        try await fleet.push(version: "2.0")
        let package = try await fleet.client.package(fleet.packageID!)
        let signed = try #require(package.versions.first { $0.version == "2.0" }?.digest)
        let store = fleet.folder.appending(path: "server/artifacts")
        func stored(_ digest: String) -> URL {
            let hex = String(digest.dropFirst("sha256:".count))
            return store.appending(path: "sha256/\(hex.prefix(2))/\(hex)")
        }
        let forged = fleet.folder.appending(path: "forged.zip")
        try FileManager.default.copyItem(at: stored(signed), to: forged)
        try python(
            "import zipfile, sys; z = zipfile.ZipFile(sys.argv[1], 'a'); z.writestr('evil.sh', 'echo owned'); z.close()",
            forged.path)
        let forgedDigest =
            "sha256:"
            + (try python(
                "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())", forged.path))
        try FileManager.default.createDirectory(
            at: stored(forgedDigest).deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: forged, to: stored(forgedDigest))
        let database = fleet.folder.appending(path: "server/vantage.sqlite")
        func point(_ version: String, at digest: String) throws {
            try python(
                "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=30); "
                    + "c.execute('UPDATE package_versions SET digest = ? WHERE version = ?', (sys.argv[2], sys.argv[3])); "
                    + "c.commit()", database.path, digest, version)
        }
        try point("2.0", at: forgedDigest)

        _ = try await fleet.client.updateInstance(instance, InstanceUpdate(packageVersion: "2.0"))
        try await fleet.waitUntil("the forged version is refused", timeout: .seconds(120)) {
            let state = try await fleet.client.instance(instance)
            return state.status == .deploymentError
        }
        let refused = try await fleet.client.instance(instance)
        #expect(refused.statusDescription.contains("signature"), "\(refused.statusDescription)")
        #expect(refused.statusDescription.contains(forgedDigest), "\(refused.statusDescription)")
        #expect(try fleet.currentVersion(of: instance, agent: "signed") == "1.0")
        // Refused before unpacking, and the downloaded file is gone from the device.
        let versions = fleet.agentFolder("signed").appending(path: "deployments/instances/\(instance)/versions")
        #expect(try FileManager.default.contentsOfDirectory(atPath: versions.path).count == 1)
        let cached = fleet.agentFolder("signed").appending(
            path: "deployments/artifacts/sha256/\(forgedDigest.dropFirst("sha256:".count))")
        #expect(!FileManager.default.fileExists(atPath: cached.path), "the refused archive stayed on the device")
        // Not tried again while nothing changes (the agent polls every 5 s here).
        try await Task.sleep(for: .seconds(12))
        let refusals = agent.output.components(separatedBy: "comes without the control plane's signature").count - 1
        #expect(refusals >= 1 && refusals <= 2, "refused \(refusals) times:\n\(agent.output.suffix(3000))")
        let still = try await fleet.client.instance(instance)
        #expect(still.status == .deploymentError && still.healthStatus == .running)

        // Pointed back at the signed archive (a change): installed.
        try point("2.0", at: signed)
        _ = try await fleet.client.updateInstance(instance, InstanceUpdate(parameters: ["max_people": .number(3)]))
        try await fleet.waitForDeployment(instance, version: "2.0", agent: agent)
        #expect(try fleet.currentVersion(of: instance, agent: "signed") == "2.0")
        Soak.record(fault: "signed artifacts", runs: 1, faults: 1, invariants: 7, failures: 0)
    }

    /// Runs a Python snippet with arguments; answers its standard output, trimmed.
    @discardableResult
    func python(_ code: String, _ arguments: String...) throws -> String {
        let process = Process()
        process.executableURL = URL(filePath: "/usr/bin/env")
        process.arguments = ["python3", "-c", code] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw APITestError("python3 -c \(code) failed") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
