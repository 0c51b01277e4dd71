// Updates superseded while a device is offline (issue 17, fault 7): a real `vantage server` and a real `vantage agent`
// running the people counter; the agent is stopped, the instance is updated to three new package versions one after
// the other, and the agent is started again. It must install only the newest, once: the versions in between are never
// downloaded, unpacked or reported on.
import Foundation
import Testing
import VantageAPI
import VantageClient
import VantageCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite("updates superseded while the device is offline", .serialized)
struct OfflineUpdatesEndToEndTests {
    @Test("three versions pushed while the agent is down: it downloads and installs only the newest, once")
    func onlyTheNewestIsInstalled() async throws {
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        let (device, first) = try await fleet.enrollAgent("edge-offline")
        var agent = first
        defer { agent.stop() }
        try await fleet.waitUntil("the device is online", timeout: .seconds(60)) {
            try await fleet.client.device(device).connectionStatus == .online
        }
        let instance = try await fleet.deployPeopleCounter(on: device, version: "1.0")
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)

        // The soak repeats the offline round with three new versions each time.
        let rounds = Soak.isOn ? max(1, Int((Soak.seconds ?? 0) / 120)) : 1
        var invariants = 0
        var failures = 0
        var faults = 0
        var next = 2
        var running = "1.0"
        for _ in 0..<rounds {
            agent.stop()
            faults += 1
            let offline = (next..<next + 3).map { "\($0).0" }
            next += 3
            for version in offline {
                try await fleet.push(version: version)
                _ = try await fleet.client.updateInstance(instance, InstanceUpdate(packageVersion: version))
            }
            let package = try await fleet.client.package(try #require(fleet.packageID))
            let digests = Dictionary(
                uniqueKeysWithValues: package.versions.map {
                    ($0.version, String($0.digest.dropFirst("sha256:".count)))
                })
            let newest = offline.last!
            let skipped = offline.dropLast()

            agent = try fleet.startAgent("edge-offline")
            try await fleet.waitForDeployment(instance, version: newest, agent: agent)
            #expect(try fleet.currentVersion(of: instance, agent: "edge-offline") == newest)

            // On the device: the skipped versions were never downloaded nor unpacked.
            let deployments = fleet.agentFolder("edge-offline").appending(path: "deployments")
            let archives = Set(
                (try? FileManager.default.contentsOfDirectory(
                    atPath: deployments.appending(path: "artifacts/sha256").path)) ?? [])
            let versions = Set(
                (try? FileManager.default.contentsOfDirectory(
                    atPath: deployments.appending(path: "instances/\(instance)/versions").path)) ?? [])
            #expect(archives.contains(digests[newest]!), "the newest archive is kept: \(archives)")
            #expect(versions.contains(digests[newest]!), "the newest version is unpacked: \(versions)")
            for version in skipped {
                let hex = digests[version]!
                let untouched = !archives.contains { $0.hasPrefix(hex) } && !versions.contains { $0.hasPrefix(hex) }
                #expect(untouched, "version \(version) was downloaded or unpacked: \(archives) \(versions)")
                if !untouched { failures += 1 }
                invariants += 1
            }

            // In the agent's log: one download, of the newest only; nothing about the versions in between.
            let log = agent.output
            // (Each report is logged as the reconciler's "Instance report" line; count those.)
            let reports = log.split(separator: "\n").filter {
                $0.contains("statusDescription=downloading version \(newest)") && $0.contains("Instance report")
            }
            let downloads = reports.count
            #expect(downloads == 1, "downloaded \(newest) \(downloads) times:\n\(reports.joined(separator: "\n"))")
            for version in skipped {
                #expect(!log.contains("version \(version)"), "the agent acted on \(version):\n\(log.suffix(3000))")
            }
            invariants += 2
            if downloads != 1 || skipped.contains(where: { log.contains("version \($0)") }) { failures += 1 }

            // On the server: the newest deployment succeeded once; the superseded ones are not left in progress.
            let history = try await fleet.client.deployments(instance: instance)
            let succeeded = history.filter { $0.packageVersion == newest && $0.status == .deploymentSucceeded }
            #expect(succeeded.count == 1, "\(history.map { ($0.packageVersion, $0.status, $0.message) })")
            for version in skipped {
                let records = history.filter { $0.packageVersion == version }
                #expect(
                    !records.isEmpty
                        && records.allSatisfy {
                            $0.status == .deploymentPending && $0.message.contains("superseded by a later deployment")
                        },
                    "superseded \(version): \(records.map { ($0.status, $0.message) })")
            }
            invariants += 2
            running = newest
        }
        #expect(try await fleet.client.instance(instance).packageVersion == running)
        Soak.record(
            fault: "updates superseded offline", runs: rounds, faults: faults, invariants: invariants,
            failures: failures, note: "3 versions per round while the agent is stopped")
    }
}
