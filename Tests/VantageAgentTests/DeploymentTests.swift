import Foundation
import Testing
import VantageAPI
import VantageAgent
import VantageCore

/// The agent's deployment engine with fake parts: what a device's owner sees of deployments, rollbacks, restarts
/// and removals (reports, what runs, what stays on disk).
@Suite("Deployments")
struct DeploymentTests {
    typealias Fixture = DeploymentFixture

    @Test("a first deployment downloads, unpacks, starts and commits the version, and reports it in order")
    func firstDeployment() async throws {
        let fixture = try Fixture()
        let v1 = try fixture.package("1.0")
        let reconciler = fixture.reconciler()
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1)))

        #expect(fixture.reports.statuses() == [.deploymentInProgress, .deploymentSucceeded])
        #expect(fixture.reports.on().last?.healthStatus == .running)
        #expect(fixture.current() == "versions/\(v1.key)")
        let running = fixture.runner.running
        try #require(running.count == 1)
        #expect(running[0].version == "1.0")
        #expect(Fixture.tree(running[0].project) == Fixture.tree(v1.project))
        #expect(
            running[0].project.resolvingSymlinksInPath().path.hasPrefix(
                fixture.instanceFolder().appending(path: "versions/\(v1.key)").resolvingSymlinksInPath().path))
        #expect(fixture.artifactFiles() == [v1.key])
        let snapshot = await reconciler.snapshot()
        #expect(snapshot.map(\.phase) == [.running])
        #expect(snapshot.first?.archiveDigest == v1.digest)
        #expect(snapshot.first?.packageVersion == "1.0")
        #expect(snapshot.first?.health?.framesInferred == 42)
    }

    @Test("a second version replaces the first: the old one is stopped before the new one starts")
    func secondVersion() async throws {
        let fixture = try Fixture()
        let (v1, v2) = (try fixture.package("1.0"), try fixture.package("2.0"))
        let reconciler = fixture.reconciler()
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1)))
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v2, deployment: "dep_2")))

        #expect(fixture.runner.events.map(\.description) == ["start ins_a 1.0", "stop ins_a 1.0", "start ins_a 2.0"])
        #expect(fixture.runner.running.map(\.version) == ["2.0"])
        #expect(Fixture.tree(fixture.runner.running[0].project) == Fixture.tree(v2.project))
        #expect(
            fixture.reports.statuses()
                == [.deploymentInProgress, .deploymentSucceeded, .deploymentInProgress, .deploymentSucceeded])
        #expect(fixture.current() == "versions/\(v2.key)")
        // The previous version stays for one more rollback.
        #expect(fixture.versionFolders() == [v1.key, v2.key])
        #expect(fixture.artifactFiles() == [v1.key, v2.key])
    }

    @Test("new parameters for the same archive are a deployment that reuses the version folder")
    func newParameters() async throws {
        let fixture = try Fixture()
        let v1 = try fixture.package("1.0")
        let reconciler = fixture.reconciler()
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1)))
        let tuned = Fixture.instance(v1, deployment: "dep_2", parameters: ["threshold": .number(0.8)])
        await fixture.converge(reconciler, to: Fixture.state(tuned))

        #expect(fixture.runner.running.map(\.parameters) == [["threshold": .number(0.8)]])
        #expect(fixture.reports.statuses().suffix(2) == [.deploymentInProgress, .deploymentSucceeded])
        #expect(fixture.versionFolders() == [v1.key])
        #expect(fixture.source.requests.count == 1, "the archive was downloaded once")
    }

    @Test("a change of the outputs document alone is a deployment that restarts the instance with the new one")
    func newOutputs() async throws {
        let fixture = try Fixture()
        let v1 = try fixture.package("1.0")
        let reconciler = fixture.reconciler()
        func mqtt(qos: Double) -> JSONValue {
            .object([
                "sinks": .object([
                    "alerts": .object([
                        "type": .string("mqtt"), "url": .string("mqtt://broker:1883"), "qos": .number(qos),
                    ])
                ])
            ])
        }
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1, outputs: mqtt(qos: 1))))
        #expect(fixture.runner.running.map(\.outputs) == [mqtt(qos: 1)])

        let changed = mqtt(qos: 2)
        await fixture.converge(
            reconciler, to: Fixture.state(Fixture.instance(v1, deployment: "dep_2", outputs: changed)))
        #expect(fixture.runner.running.map(\.outputs) == [changed], "the instance runs with the new document")
        #expect(fixture.runner.events.map(\.description) == ["start ins_a 1.0", "stop ins_a 1.0", "start ins_a 1.0"])
        #expect(fixture.reports.statuses().suffix(2) == [.deploymentInProgress, .deploymentSucceeded])

        // Removing it is a change too; the same document under a new deployment id restarts nothing.
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1, deployment: "dep_3")))
        #expect(fixture.runner.running.map(\.outputs) == [nil])
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1, deployment: "dep_4")))
        #expect(fixture.runner.events.count == 5, "\(fixture.runner.events)")
        #expect(fixture.source.requests.count == 1, "the archive was downloaded once")
    }

    @Test("the runtime gets the instance's outputs document as a value (no file to read back), with its names")
    func outputsDocumentForTheRuntime() async throws {
        let fixture = try Fixture()
        let v1 = try fixture.package("1.0")
        let stateRoot = fixture.root.appending(path: "state")
        let runner = RuntimeRunner(
            stateRoot: stateRoot, artifactsFolder: fixture.root.appending(path: "artifacts"),
            events: InstanceEvents(
                folder: fixture.root.appending(path: "outbox"), limitBytes: 1 << 20, device: "dev_1",
                logger: Fixture.logger, send: { _ in }),
            executableSearchPath: [], logger: Fixture.logger)
        let outputs: JSONValue = .object([
            "sinks": .object([
                "quality": .object([
                    "type": .string("webhook"), "url": .string("https://hooks.example.com/v"),
                    "secret": .string("${HOOK_SECRET}"),
                ])
            ]),
            "rules": .array([.object(["when": .object(["type": .string("zone.enter")]), "send": .string("quality")])]),
        ])
        var instance = Fixture.instance(v1, outputs: outputs)
        instance.deviceName = "line-3"
        let configuration = try runner.runtimeConfiguration(for: instance)
        #expect(configuration.outputsDocument == outputs)
        #expect(configuration.outputsFile == nil, "no file holding the sinks' hosts and users is written")
        #expect(configuration.deviceName == "line-3" && configuration.instanceName == "counter ins_a")
        #expect(configuration.stateDirectory == stateRoot.appending(path: "ins_a"))
        let files = FileManager.default.enumerator(atPath: stateRoot.path)?.allObjects as? [String] ?? []
        #expect(!files.contains { $0.hasSuffix("outputs.json") }, "\(files)")

        // Without a document the runtime gets none.
        let plain = try runner.runtimeConfiguration(for: Fixture.instance(v1))
        #expect(plain.outputsDocument == nil)
    }

    @Test(
        "a broken version rolls back to the committed one, says why, and is not tried again",
        arguments: [
            (FakeBehaviour.crashing, "version 2.0 crashed 3 times (last: exit 1); rolled back to 1.0"),
            (
                .silent,
                "version 2.0 inferred no frame within 50 ms of starting; check its cameras and models; rolled back to 1.0"
            ),
            (.failingStart, "version 2.0 failed to start: the model cannot be loaded; rolled back to 1.0"),
        ])
    func rollback(behaviour: FakeBehaviour, reason: String) async throws {
        let fixture = try Fixture()
        let (v1, v2) = (try fixture.package("1.0"), try fixture.package("2.0", behaviour))
        let reconciler = fixture.reconciler(
            policy: .init(deadline: .milliseconds(50), maxCrashes: 3, checkInterval: .milliseconds(2)))
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1)))
        let broken = Fixture.state(Fixture.instance(v2, deployment: "dep_2"))
        await fixture.converge(reconciler, to: broken)

        let last = try #require(fixture.reports.on().last)
        #expect(last.status == .deploymentFailed)
        #expect(last.statusDescription == reason)
        #expect(last.healthStatus == .running)
        #expect(fixture.runner.running.map(\.version) == ["1.0"])
        #expect(Fixture.tree(fixture.runner.running[0].project) == Fixture.tree(v1.project))
        #expect(fixture.current() == "versions/\(v1.key)")
        #expect(fixture.versionFolders() == [v1.key], "the failed version's folder is deleted")

        // The same desired state again (e.g. a poll) does not retry the failed deployment.
        let (reports, events) = (fixture.reports.count, fixture.runner.events)
        await fixture.converge(reconciler, to: broken)
        #expect(fixture.reports.count == reports)
        #expect(fixture.runner.events == events)

        // A new deployment of it is tried again.
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v2, deployment: "dep_3")))
        #expect(fixture.reports.statuses().suffix(2) == [.deploymentInProgress, .deploymentFailed])
        #expect(fixture.runner.running.map(\.version) == ["1.0"])
    }

    @Test("a broken first version has nothing to roll back to: it is reported failed and left stopped")
    func brokenFirstVersion() async throws {
        let fixture = try Fixture()
        let v1 = try fixture.package("1.0", .crashing)
        let reconciler = fixture.reconciler()
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1)))

        let last = try #require(fixture.reports.on().last)
        #expect(last.status == .deploymentFailed)
        #expect(last.healthStatus == .error)
        #expect(
            last.statusDescription
                == "version 1.0 crashed 3 times (last: exit 1); there is no earlier version to roll back to, so the instance is stopped"
        )
        #expect(fixture.runner.running.isEmpty)
        #expect(fixture.current() == nil)
        #expect(await reconciler.snapshot().map(\.phase) == [.notRunning])
    }

    @Test("an interrupted download goes on from the bytes on disk, after a retry and after a restart")
    func resumedDownload() async throws {
        let fixture = try Fixture()
        let (v1, v2) = (try fixture.package("1.0"), try fixture.package("2.0"))
        #expect(v1.archive.count > 3000)

        // Within one run: the retry asks for the rest only.
        fixture.source.failNextDownload(of: v1.digest, after: 1000)
        let first = fixture.reconciler()
        await fixture.converge(first, to: Fixture.state(Fixture.instance(v1)))
        #expect(fixture.source.requests.map(\.offset) == [0, 1000])
        #expect(fixture.reports.statuses() == [.deploymentInProgress, .deploymentSucceeded])

        // Across a restart: every try fails, the deployment stays pending with the old version running.
        fixture.source.failNextDownload(of: v2.digest, after: 3000)
        let flaky = fixture.reconciler(download: .init(attempts: 1, pendingRetry: .seconds(3600)))
        await first.stopAll()
        await flaky.resume()
        await fixture.converge(flaky, to: Fixture.state(Fixture.instance(v2, deployment: "dep_2")))
        let partial = fixture.directory.appending(path: "artifacts/sha256/\(v2.key).partial")
        let size = try FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? Int
        #expect(size == 3000)
        #expect(fixture.reports.on().last?.status == .deploymentError)
        #expect(fixture.reports.on().last?.statusDescription?.contains("connection reset after 3000 bytes") == true)
        #expect(fixture.runner.running.map(\.version) == ["1.0"])

        await flaky.stopAll()  // the agent shuts down (and stops retrying)
        let restarted = fixture.reconciler()
        await restarted.resume()  // no apply: the desired state is on disk
        await restarted.waitUntilSettled()
        #expect(fixture.source.requests.filter { $0.digest == v2.digest }.map(\.offset) == [0, 3000])
        #expect(fixture.runner.running.map(\.version) == ["2.0"])
        #expect(fixture.reports.statuses().last == .deploymentSucceeded)
    }

    @Test("a pending download is taken up again by itself")
    func pendingRetry() async throws {
        let fixture = try Fixture()
        let v1 = try fixture.package("1.0")
        fixture.source.failNextDownload(of: v1.digest, after: 500)
        let reconciler = fixture.reconciler(download: .init(attempts: 1, pendingRetry: .milliseconds(10)))
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1)))
        // It comes back after 10 ms; the loop only bounds the wait should it never come.
        var waits = 0
        while fixture.reports.statuses().last != .deploymentSucceeded && waits < 1000 {
            waits += 1
            try await Task.sleep(for: .milliseconds(10))
            await reconciler.waitUntilSettled()
        }
        #expect(
            fixture.reports.statuses() == [
                .deploymentInProgress, .deploymentError, .deploymentInProgress, .deploymentSucceeded,
            ])
        #expect(fixture.source.requests.map(\.offset) == [0, 500])
        await reconciler.stopAll()
    }

    @Test("an archive that does not match its digest is deleted and the old version keeps running")
    func corruptArchive() async throws {
        let fixture = try Fixture()
        let (v1, v2, other) = (try fixture.package("1.0"), try fixture.package("2.0"), try fixture.package("3.0"))
        fixture.source.publish(other.archive, as: v2.digest)
        let reconciler = fixture.reconciler()
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1)))
        let corrupt = Fixture.state(Fixture.instance(v2, deployment: "dep_2"))
        await fixture.converge(reconciler, to: corrupt)

        let last = try #require(fixture.reports.on().last)
        #expect(last.status == .deploymentError)
        #expect(
            last.statusDescription?.hasPrefix(
                "the downloaded archive's digest is \(other.digest) but the server said \(v2.digest)") == true)
        #expect(fixture.artifactFiles() == [v1.key], "neither the archive nor a partial file is kept")
        #expect(fixture.versionFolders() == [v1.key])
        #expect(fixture.runner.events.map(\.description) == ["start ins_a 1.0"], "the old version was never stopped")
        #expect(fixture.current() == "versions/\(v1.key)")

        let requests = fixture.source.requests.count
        await fixture.converge(reconciler, to: corrupt)
        #expect(fixture.source.requests.count == requests, "not downloaded again until the desired state changes")
    }

    /// What the desired state is when the kill happens at `step`, and which version should run in the end.
    static func killScenario(_ step: DeploymentStep) -> (v2: FakeBehaviour, desired: DesiredState, ends: String?) {
        switch step {
        case .download, .unpack, .stopOld, .switchVersion, .start, .verify, .commit: (.healthy, .running, "2.0")
        case .rollback: (.crashing, .running, "1.0")
        case .stop: (.healthy, .stopped, nil)
        case .remove: (.healthy, .removed, nil)
        }
    }

    @Test(
        "killed at any step, a restarted agent runs the old version or the new one, never a mix, and finishes the job",
        arguments: DeploymentStep.allCases)
    func killMatrix(step: DeploymentStep) async throws {
        let fixture = try Fixture()
        let scenario = Self.killScenario(step)
        let (v1, v2) = (try fixture.package("1.0"), try fixture.package("2.0", scenario.v2))
        let setup = fixture.reconciler()
        await fixture.converge(setup, to: Fixture.state(Fixture.instance(v1)))
        fixture.runner.processDied()

        let target: DeviceDesiredState =
            switch scenario.desired {
            case .running: Fixture.state(Fixture.instance(v2, deployment: "dep_2"))
            case .stopped, .removed: Fixture.state(Fixture.instance(v1, scenario.desired))
            }
        let kill = KillSwitch(at: step, reports: fixture.reports)
        let killed = fixture.reconciler(beforeStep: kill.hook)
        await killed.resume()
        await fixture.converge(killed, to: target)
        let reportsAtKill = try #require(kill.reportsAtKill, "the deployment never reached \(step)")
        #expect(fixture.reports.count == reportsAtKill, "no report after the kill")
        fixture.runner.processDied()

        let restarted = fixture.reconciler()
        await restarted.resume()
        await fixture.converge(restarted, to: target)

        #expect(fixture.runner.afterDeath.isEmpty, "the killed reconciler acted after the kill")
        let running = fixture.runner.running
        if let version = scenario.ends {
            try #require(running.count == 1, "\(running.map(\.version))")
            #expect(running[0].version == version)
            let expected = version == "2.0" ? v2 : v1
            #expect(Fixture.tree(running[0].project) == Fixture.tree(expected.project))
            #expect(fixture.current() == "versions/\(expected.key)")
            let committed = try #require(await restarted.snapshot().first)
            #expect(committed.packageVersion == version)
            #expect(fixture.reports.statuses().last == (version == "2.0" ? .deploymentSucceeded : .deploymentFailed))
        } else {
            #expect(running.isEmpty)
        }
        switch step {
        case .stop:
            #expect(fixture.versionFolders() == [v1.key], "a stopped instance keeps its files")
        case .remove:
            #expect(!FileManager.default.fileExists(atPath: fixture.instanceFolder().path))
            #expect(fixture.artifactFiles().isEmpty)
            #expect(fixture.reports.statuses().last == .removalSucceeded)
        default:
            #expect(fixture.versionFolders().count <= 2)
        }
    }

    @Test("the loop breaker rolls back a version whose health check was interrupted by 3 restarts")
    func loopBreaker() async throws {
        let fixture = try Fixture()
        let (v1, v2) = (try fixture.package("1.0"), try fixture.package("2.0"))
        await fixture.converge(fixture.reconciler(), to: Fixture.state(Fixture.instance(v1)))
        let target = Fixture.state(Fixture.instance(v2, deployment: "dep_2"))
        for _ in 0..<3 {
            fixture.runner.processDied()
            let killed = fixture.reconciler(beforeStep: KillSwitch(at: .verify, reports: fixture.reports).hook)
            await killed.resume()
            await fixture.converge(killed, to: target)
        }
        fixture.runner.processDied()
        let restarted = fixture.reconciler()
        await restarted.resume()
        await fixture.converge(restarted, to: target)

        #expect(fixture.runner.running.map(\.version) == ["1.0"])
        let last = try #require(fixture.reports.on().last)
        #expect(last.status == .deploymentFailed)
        #expect(
            last.statusDescription
                == "version 2.0 was interrupted 3 times while starting or being checked (the agent restarted each time); rolled back to 1.0"
        )
    }

    @Test("after a restart with the server unreachable, the committed version runs again from disk")
    func offlineRestart() async throws {
        let fixture = try Fixture()
        let (v1, v2) = (try fixture.package("1.0"), try fixture.package("2.0"))
        let first = fixture.reconciler()
        await fixture.converge(first, to: Fixture.state(Fixture.instance(v1)))
        await fixture.converge(first, to: Fixture.state(Fixture.instance(v2, deployment: "dep_2")))
        fixture.runner.processDied()

        let offline = FakeArtifactSource()
        offline.setOffline(true)
        let restarted = fixture.reconciler(source: offline)
        await restarted.resume()
        await restarted.waitUntilSettled()
        #expect(offline.requests.isEmpty)
        #expect(fixture.runner.running.map(\.version) == ["2.0"])
        #expect(Fixture.tree(fixture.runner.running[0].project) == Fixture.tree(v2.project))
        #expect(await restarted.snapshot().map(\.phase) == [.running])
    }

    @Test("STOPPED stops the instance and keeps its files; RUNNING starts it again; REMOVED deletes everything")
    func stopStartRemove() async throws {
        let fixture = try Fixture()
        let v1 = try fixture.package("1.0")
        let reconciler = fixture.reconciler()
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1)))

        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1, .stopped)))
        #expect(fixture.runner.running.isEmpty)
        #expect(fixture.versionFolders() == [v1.key])
        #expect(fixture.reports.on().last?.healthStatus == .notAvailable)
        #expect(await reconciler.snapshot().map(\.phase) == [.stopped])

        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1, .running)))
        #expect(fixture.runner.running.map(\.version) == ["1.0"])
        #expect(fixture.source.requests.count == 1, "nothing downloaded again")

        let reports = fixture.reports.count
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1, .removed)))
        #expect(fixture.runner.running.isEmpty)
        #expect(fixture.reports.statuses().suffix(2) == [.removalInProgress, .removalSucceeded])
        #expect(!FileManager.default.fileExists(atPath: fixture.instanceFolder().path))
        #expect(fixture.artifactFiles().isEmpty)
        #expect(await reconciler.snapshot().isEmpty)
        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(v1, .removed)))
        #expect(fixture.reports.count == reports + 2, "the removal is reported once")
    }

    @Test("an instance no longer in the desired state at all is stopped and deleted")
    func undesiredInstance() async throws {
        let fixture = try Fixture()
        let v1 = try fixture.package("1.0")
        let reconciler = fixture.reconciler()
        await fixture.converge(
            reconciler, to: Fixture.state(Fixture.instance("ins_a", v1), Fixture.instance("ins_b", v1)))
        #expect(fixture.runner.running.map(\.instanceId) == ["ins_a", "ins_b"])

        await fixture.converge(reconciler, to: Fixture.state(Fixture.instance("ins_b", v1)))
        #expect(fixture.runner.running.map(\.instanceId) == ["ins_b"])
        #expect(!FileManager.default.fileExists(atPath: fixture.instanceFolder("ins_a").path))
        #expect(fixture.artifactFiles() == [v1.key], "ins_b still uses the archive")
    }

    @Test("two instances are independent: one failing never stops the other, and a shared archive downloads once")
    func independentInstances() async throws {
        let fixture = try Fixture()
        let (v1, broken) = (try fixture.package("1.0"), try fixture.package("2.0", .crashing))
        let reconciler = fixture.reconciler()
        await fixture.converge(
            reconciler, to: Fixture.state(Fixture.instance("ins_a", v1), Fixture.instance("ins_b", v1)))
        #expect(fixture.source.requests.count == 1)

        await fixture.converge(
            reconciler,
            to: Fixture.state(Fixture.instance("ins_a", v1), Fixture.instance("ins_b", broken, deployment: "dep_2")))
        #expect(fixture.reports.statuses("ins_b").last == .deploymentFailed)
        #expect(fixture.reports.statuses("ins_a") == [.deploymentInProgress, .deploymentSucceeded])
        #expect(fixture.runner.events.filter { $0.instanceId == "ins_a" }.map(\.action) == ["start"])
        #expect(fixture.runner.running.map(\.version) == ["1.0", "1.0"])
        let phases = await reconciler.snapshot().map(\.phase)
        #expect(phases == [.running, .running])
    }

    @Test("after each commit an instance keeps only the committed and the previous version")
    func pruning() async throws {
        let fixture = try Fixture()
        let versions = try ["1.0", "2.0", "3.0", "4.0"].map { try fixture.package($0) }
        let reconciler = fixture.reconciler()
        for (index, version) in versions.enumerated() {
            await fixture.converge(reconciler, to: Fixture.state(Fixture.instance(version, deployment: "dep_\(index)")))
            let kept = Set(versions[max(0, index - 1)...index].map(\.key))
            #expect(fixture.versionFolders() == kept)
            #expect(fixture.artifactFiles() == kept)
        }
    }
}
