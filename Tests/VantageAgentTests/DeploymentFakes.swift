import Foundation
import Logging
import Synchronization
import VantageAPI
import VantageAgent
import VantageApp
import VantageCore
import ZIPFoundation

/// How a fake instance of a test package behaves, written into the package (`behaviour.txt`) so that the fake
/// runner reads it from the folder it is asked to start: what runs is what was unpacked.
enum FakeBehaviour: String, Sendable {
    /// Infers frames at once.
    case healthy
    /// Crashes 3 times ("exit 1") and infers nothing.
    case crashing
    /// Runs but never infers a frame.
    case silent
    /// Cannot start at all.
    case failingStart
}

/// A package version made for a test: a copy of examples/people-counter with a marker of its version and behaviour,
/// zipped in its top-level folder as `vantage packages push` does.
struct TestPackage: Sendable {
    var version: String
    var behaviour: FakeBehaviour
    /// The project folder that was zipped.
    var project: URL
    var archive: Data
    var digest: String
    var key: String { String(digest.dropFirst("sha256:".count)) }
}

/// A temporary agent folder with fake parts: a source of archives, a runner and a report log.
final class DeploymentFixture: Sendable {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    let root: URL
    let directory: URL
    let source = FakeArtifactSource()
    let runner = FakeInstanceRunner()
    let reports = ReportLog()
    let policy = HealthPolicy(deadline: .seconds(30), maxCrashes: 3, checkInterval: .milliseconds(2))
    let download = DownloadPolicy(attempts: 3, firstDelay: .milliseconds(1), maxDelay: .milliseconds(4))
    static let logger = Logger(label: "vantage.agent.test") { _ in SwiftLogNoOpLogHandler() }

    init() throws {
        root = FileManager.default.temporaryDirectory.appending(path: "vantage-deploy-\(UUID().uuidString)")
        directory = root.appending(path: "agent")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// A new reconciler on the fixture's folder: what a (re)started agent makes.
    func reconciler(
        policy: HealthPolicy? = nil, download: DownloadPolicy? = nil, source: (any ArtifactSource)? = nil,
        beforeStep: (@Sendable (DeploymentStep, String) throws -> Void)? = nil
    ) -> Reconciler {
        Reconciler(
            directory: directory, source: source ?? self.source, runner: runner, reporter: reports,
            policy: policy ?? self.policy, download: download ?? self.download, logger: Self.logger,
            beforeStep: beforeStep)
    }

    /// Makes a package version and puts its archive on the fake server.
    func package(_ version: String, _ behaviour: FakeBehaviour = .healthy) throws -> TestPackage {
        let parent = root.appending(path: "packages/\(version)-\(UUID().uuidString)")
        let project = parent.appending(path: "people-counter")
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: Self.repositoryRoot.appending(path: "examples/people-counter"), to: project)
        try Data(behaviour.rawValue.utf8).write(to: project.appending(path: "behaviour.txt"))
        try Data(version.utf8).write(to: project.appending(path: "version.txt"))
        let zip = parent.appending(path: "archive.zip")
        try FileManager.default.zipItem(at: project, to: zip, shouldKeepParent: true)
        let archive = try Data(contentsOf: zip)
        let package = TestPackage(
            version: version, behaviour: behaviour, project: project, archive: archive,
            digest: "sha256:" + SHA256.hex(archive))
        source.publish(package.archive, as: package.digest)
        return package
    }

    /// The desired instance `ins_a` running (or stopped, removed) `package`.
    static func instance(
        _ package: TestPackage, _ state: DesiredState = .running, deployment: String = "dep_1",
        parameters: [String: JSONValue] = [:], outputs: JSONValue? = nil
    ) -> DesiredInstance {
        instance("ins_a", package, state, deployment: deployment, parameters: parameters, outputs: outputs)
    }

    /// The desired instance `id` running (or stopped, removed) `package`.
    static func instance(
        _ id: String, _ package: TestPackage, _ state: DesiredState = .running, deployment: String = "dep_1",
        parameters: [String: JSONValue] = [:], outputs: JSONValue? = nil
    ) -> DesiredInstance {
        DesiredInstance(
            id: id, name: "counter \(id)", packageId: "pkg_people", packageName: "people-counter",
            packageVersion: package.version, archiveDigest: package.digest, desiredState: state,
            deploymentId: deployment,
            cameras: ["camera_node": DesiredCamera(cameraId: "cam_1", url: "rtsp://user:secret@camera/stream")],
            parameters: parameters, outputs: outputs)
    }

    static func state(_ instances: DesiredInstance...) -> DeviceDesiredState {
        DeviceDesiredState(deviceId: "dev_test", instances: instances)
    }

    /// Applies `state` and waits until the reconciler has converged.
    func converge(_ reconciler: Reconciler, to state: DeviceDesiredState) async {
        await reconciler.apply(state)
        await reconciler.waitUntilSettled()
    }

    func instanceFolder(_ id: String = "ins_a") -> URL { directory.appending(path: "instances/\(id)") }

    /// The version folders of an instance.
    func versionFolders(_ id: String = "ins_a") -> Set<String> {
        let names = try? FileManager.default.contentsOfDirectory(
            atPath: instanceFolder(id).appending(path: "versions").path)
        return Set(names ?? [])
    }

    /// The version folder `current` links to, e.g. "versions/<hex>"; nil without a link.
    func current(_ id: String = "ins_a") -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: instanceFolder(id).appending(path: "current").path)
    }

    /// The archives kept, by file name.
    func artifactFiles() -> Set<String> {
        let names = try? FileManager.default.contentsOfDirectory(
            atPath: directory.appending(path: "artifacts/sha256").path)
        return Set(names ?? [])
    }

    /// Every file under `folder`, by relative path, with its bytes.
    static func tree(_ folder: URL) -> [String: Data] {
        var files: [String: Data] = [:]
        let base = folder.resolvingSymlinksInPath().path
        guard let paths = FileManager.default.enumerator(atPath: base) else { return [:] }
        for case let path as String in paths {
            var isFolder: ObjCBool = false
            let full = base + "/" + path
            if FileManager.default.fileExists(atPath: full, isDirectory: &isFolder), !isFolder.boolValue {
                files[path] = FileManager.default.contents(atPath: full)
            }
        }
        return files
    }
}

/// An in-memory artifact server that can be told to fail a download after some bytes, or to serve the wrong bytes;
/// it records every request.
final class FakeArtifactSource: ArtifactSource {
    struct Request: Equatable, Sendable {
        var digest: String
        var offset: Int64
    }

    private struct State {
        var archives: [String: Data] = [:]
        var failAfter: [String: [Int]] = [:]
        var requests: [Request] = []
        var offline = false
    }

    private let state = Mutex(State())

    /// What `download` serves for `digest` (the right bytes, or wrong ones for a corruption test).
    func publish(_ data: Data, as digest: String) { state.withLock { $0.archives[digest] = data } }

    /// The next download of `digest` writes `bytes` bytes and then fails as a dropped connection does.
    func failNextDownload(of digest: String, after bytes: Int) {
        state.withLock { $0.failAfter[digest, default: []].append(bytes) }
    }

    /// Whether every download fails at once, as with the server unreachable.
    func setOffline(_ offline: Bool) { state.withLock { $0.offline = offline } }

    var requests: [Request] { state.withLock { $0.requests } }

    func download(digest: String, offset: Int64, into file: FileHandle) async throws {
        let (data, failAfter, offline) = state.withLock { state in
            state.requests.append(Request(digest: digest, offset: offset))
            let failAfter = state.failAfter[digest]?.isEmpty == false ? state.failAfter[digest]?.removeFirst() : nil
            return (state.archives[digest], failAfter, state.offline)
        }
        if offline { throw FakeNetworkError(message: "the server cannot be reached") }
        guard let data else { throw FakeNetworkError(message: "404: no artifact \(digest)") }
        let rest = data.subdata(in: min(Int(offset), data.count)..<data.count)
        let sent = rest.prefix(failAfter ?? rest.count)
        var index = sent.startIndex
        while index < sent.endIndex {
            let end = min(index + 1024, sent.endIndex)
            try file.write(contentsOf: sent[index..<end])
            index = end
        }
        if let failAfter { throw FakeNetworkError(message: "connection reset after \(failAfter) bytes") }
    }
}

struct FakeNetworkError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A runner whose instances behave as their package's `behaviour.txt` says. It records starts and stops, and can
/// simulate the agent's process dying (its instances die with it, without being stopped).
final class FakeInstanceRunner: InstanceRunner {
    /// A start or stop, by instance id and package version.
    struct Event: Equatable, Sendable, CustomStringConvertible {
        var action: String
        var instanceId: String
        var version: String
        var description: String { "\(action) \(instanceId) \(version)" }
    }

    /// One running instance.
    struct Running: Sendable {
        var instanceId: String
        var version: String
        var project: URL
        var parameters: [String: JSONValue]
        var outputs: JSONValue?
    }

    private struct State {
        var life = 0
        var nextSerial = 0
        var running: [Int: Running] = [:]
        var events: [Event] = []
        /// Things done by a reconciler of a process that died: there must be none.
        var afterDeath: [String] = []
    }

    private let state = Mutex(State())

    var events: [Event] { state.withLock { $0.events } }
    var running: [Running] { state.withLock { $0.running.values.sorted { $0.instanceId < $1.instanceId } } }
    var afterDeath: [String] { state.withLock { $0.afterDeath } }

    /// The agent's process died: everything it ran is gone, and what its reconciler still does is recorded.
    func processDied() {
        state.withLock { state in
            state.life += 1
            state.running = [:]
        }
    }

    func start(_ instance: DesiredInstance, project: URL) async throws -> any RunningInstance {
        let behaviour = (try? String(contentsOf: project.appending(path: "behaviour.txt"), encoding: .utf8))
            .flatMap(FakeBehaviour.init(rawValue:))
        let version = (try? String(contentsOf: project.appending(path: "version.txt"), encoding: .utf8)) ?? "?"
        guard let behaviour, behaviour != .failingStart else {
            state.withLock {
                $0.events.append(Event(action: "failed-start", instanceId: instance.id, version: version))
            }
            throw FakeNetworkError(message: "the model cannot be loaded")
        }
        let sample: InstanceHealthSample =
            switch behaviour {
            case .healthy: InstanceHealthSample(framesInferred: 42)
            case .crashing: InstanceHealthSample(crashes: 3, lastError: "exit 1")
            case .silent, .failingStart: InstanceHealthSample()
            }
        return state.withLock { state in
            state.nextSerial += 1
            state.running[state.nextSerial] = Running(
                instanceId: instance.id, version: version, project: project, parameters: instance.parameters,
                outputs: instance.outputs)
            state.events.append(Event(action: "start", instanceId: instance.id, version: version))
            return FakeRunningInstance(runner: self, serial: state.nextSerial, life: state.life, sample: sample)
        }
    }

    fileprivate func stop(serial: Int, life: Int) {
        state.withLock { state in
            guard life == state.life else {
                state.afterDeath.append("stop of instance \(serial)")
                return
            }
            guard let running = state.running.removeValue(forKey: serial) else { return }
            state.events.append(Event(action: "stop", instanceId: running.instanceId, version: running.version))
        }
    }
}

/// An instance the fake runner started.
final class FakeRunningInstance: RunningInstance {
    let runner: FakeInstanceRunner
    let serial: Int
    let life: Int
    let sample: InstanceHealthSample

    init(runner: FakeInstanceRunner, serial: Int, life: Int, sample: InstanceHealthSample) {
        self.runner = runner
        self.serial = serial
        self.life = life
        self.sample = sample
    }

    func health() -> InstanceHealthSample { sample }
    func stop() async { runner.stop(serial: serial, life: life) }
}

/// Every report, in order.
final class ReportLog: DeploymentReporter {
    private let reports = Mutex<[(String, InstanceReport)]>([])

    func report(instanceId: String, _ report: InstanceReport) async {
        reports.withLock { $0.append((instanceId, report)) }
    }

    var count: Int { reports.withLock { $0.count } }

    /// The reports on one instance.
    func on(_ id: String = "ins_a") -> [InstanceReport] {
        reports.withLock { $0.filter { $0.0 == id }.map(\.1) }
    }

    /// The statuses reported on one instance, reports without one left out.
    func statuses(_ id: String = "ins_a") -> [InstanceStatus] { on(id).compactMap(\.status) }
}

/// A `beforeStep` hook that kills the reconciler at one step, remembering how many reports had been sent then.
final class KillSwitch: Sendable {
    struct Kill: Error {}

    let step: DeploymentStep
    private let fired = Mutex<Int?>(nil)
    private let reports: ReportLog

    init(at step: DeploymentStep, reports: ReportLog) {
        self.step = step
        self.reports = reports
    }

    /// The number of reports sent when it fired; nil when it has not fired.
    var reportsAtKill: Int? { fired.withLock { $0 } }

    var hook: @Sendable (DeploymentStep, String) throws -> Void {
        { [self] step, _ in
            guard step == self.step else { return }
            let count = reports.count
            fired.withLock { $0 = $0 ?? count }
            throw Kill()
        }
    }
}
