import Foundation
import Logging
import Synchronization
import VantageAPI
import VantageApp
import VantageCore
import VantageOutputs
import VantageRuntime

/// Runs an instance with the same runtime `vantage run` uses: the unpacked project with the desired cameras,
/// parameters, models, outputs document and AWS credentials (as the code nodes' `AWS_*` environment), no live view;
/// its events are recorded in the instance's pipeline, which the agent holds (``InstanceEvents``).
/// File cameras loop in real time, so a demo or test camera behaves like a live one.
public struct RuntimeRunner: InstanceRunner {
    /// Where each instance keeps its state (`storage/`, `logs/`, compiled models): `stateRoot/<instance id>`.
    public var stateRoot: URL
    /// The reconciler's verified artifacts (`<hex of the SHA-256>`), where model files are found.
    public var artifactsFolder: URL
    /// Where an instance's events are recorded: its pipeline in the agent (in process), or the channel to the agent
    /// in a runtime worker (``RuntimeWorker``).
    public var recorder: @Sendable (_ instance: DesiredInstance, _ spec: RuntimeSpec) async throws -> any EventRecorder
    /// Called when an instance stopped (its pipeline then delivers what is left and goes).
    public var stopped: @Sendable (_ instance: String) -> Void
    /// Folders searched for code-node executables (the `vantage` binary's own folder).
    public var executableSearchPath: [URL]
    public var pythonCacheDirectory: URL?
    /// Shared by every instance: a camera two instances read is decoded once.
    public var cameraHub: CameraHub
    public var logger: Logger

    /// A runner in the agent's process whose instances record their events in `events`.
    public init(
        stateRoot: URL, artifactsFolder: URL, events: InstanceEvents, executableSearchPath: [URL],
        pythonCacheDirectory: URL? = nil, cameraHub: CameraHub = CameraHub(), logger: Logger
    ) {
        let layout = StateLayout(stateRoot: stateRoot)
        self.init(
            stateRoot: stateRoot, artifactsFolder: artifactsFolder,
            recorder: { instance, spec in
                events.counting(
                    try await events.open(
                        instance, application: spec.application.name, outputs: spec.outputs,
                        media: layout.media(of: instance.id)))
            },
            stopped: { events.release($0) },
            executableSearchPath: executableSearchPath, pythonCacheDirectory: pythonCacheDirectory,
            cameraHub: cameraHub, logger: logger)
    }

    /// A runner whose instances' events go where `recorder` says.
    public init(
        stateRoot: URL, artifactsFolder: URL,
        recorder: @escaping @Sendable (DesiredInstance, RuntimeSpec) async throws -> any EventRecorder,
        stopped: @escaping @Sendable (String) -> Void = { _ in },
        executableSearchPath: [URL], pythonCacheDirectory: URL? = nil, cameraHub: CameraHub = CameraHub(),
        logger: Logger
    ) {
        self.cameraHub = cameraHub
        self.stateRoot = stateRoot
        self.artifactsFolder = artifactsFolder
        self.recorder = recorder
        self.stopped = stopped
        self.executableSearchPath = executableSearchPath
        self.pythonCacheDirectory = pythonCacheDirectory
        self.logger = logger
    }

    public func start(_ instance: DesiredInstance, project: URL) async throws -> any RunningInstance {
        let spec = try self.spec(for: instance, project: project)
        let recorder = try await self.recorder(instance, spec)
        var instanceLogger = logger
        instanceLogger[metadataKey: "instance.id"] = "\(instance.id)"
        instanceLogger[metadataKey: "package.version"] = "\(instance.packageVersion)"
        let runtimeLogger = instanceLogger
        let runtime: Runtime
        do {
            // Making a runtime loads and compiles models: on a thread of its own, never on the cooperative pool.
            runtime = try await Runtime.make(
                spec: spec, recorder: recorder, cameraHub: cameraHub, logger: runtimeLogger)
        } catch {
            stopped(instance.id)
            throw error
        }
        return RuntimeInstance(
            runtime: runtime, instanceID: instance.id, cameraIDs: instance.cameras.mapValues(\.cameraId),
            stopped: { [stopped] in stopped(instance.id) })
    }

    /// What the instance runs, as one typed value: its application, settings and merged outputs. Made here, in the
    /// agent; a runtime worker receives it as it is.
    public func spec(for instance: DesiredInstance, project: URL) throws -> RuntimeSpec {
        try RuntimeSpec(
            application: resolve(instance, project: project), configuration: runtimeConfiguration(for: instance))
    }

    /// The application as the instance runs it: the project with the instance's cameras, parameters and model files.
    public func resolve(_ instance: DesiredInstance, project: URL) throws -> ResolvedApplication {
        // Typed, as the desired state has them: no `--camera NODE=URL` text to build and parse again.
        let cameras = instance.cameras.sorted(by: { $0.key < $1.key })
        var overrides = RunOverrides(
            cameras: cameras.map { CameraOverride(node: $0.key, url: $0.value.url) },
            parameters: instance.parameters.mapValues(Self.text))
        // A camera's sub-stream (decoded for detection; its main stream read for clips), as `--detect-stream`.
        overrides.detectStreams = cameras.compactMap { node, camera in
            camera.detectUrl.map { CameraOverride(node: node, url: $0) }
        }
        for (node, model) in instance.models {
            overrides.models[node] = try modelFile(model, instance: instance.id).path
        }
        let root = try ApplicationArchive.projectRoot(in: project)
        return try ApplicationProject.load(root).resolve(overrides)
    }

    /// How `instance` runs: its state folder, looping real-time file cameras, no live view, its `outputs` document
    /// (its `${NAME}` references resolved from the agent's environment when the runtime starts; a missing variable
    /// fails the deployment with a message naming it), its AWS credentials.
    public func runtimeConfiguration(for instance: DesiredInstance) throws -> RuntimeConfiguration {
        var configuration = StateLayout(stateRoot: stateRoot).configuration(for: instance)
        configuration.executableSearchPath = executableSearchPath
        configuration.pythonCacheDirectory = pythonCacheDirectory
        return configuration
    }

    /// The model file under its own name (its extension tells the format), linked from the verified artifact; for a
    /// model version that is a ZIP (an OpenVINO IR with its weights, ``ModelArchive``), the model file in it, unpacked
    /// once into `unpacked/` beside it.
    func modelFile(_ model: DesiredModel, instance: String) throws -> URL {
        guard let key = DesiredInstance.key(of: model.digest) else {
            throw AgentError("model \(model.modelId): \(model.digest) is not a sha256 digest")
        }
        let name = URL(fileURLWithPath: model.filename).lastPathComponent
        let folder = stateRoot.appending(path: "\(instance)/models/\(key)")
        let file = folder.appending(path: name.isEmpty ? "model" : name)
        let manager = FileManager.default
        if !manager.fileExists(atPath: file.path) {
            try manager.createDirectory(at: folder, withIntermediateDirectories: true)
            let artifact = artifactsFolder.appending(path: key)
            if link(artifact.path, file.path) != 0 {
                // Another file system: copy instead.
                try manager.copyItem(at: artifact, to: file)
            }
        }
        guard ModelArchive.isArchive(name) else { return file }
        let unpacked = folder.appending(path: "unpacked")
        do {
            let entry = try ModelArchive.check(file)
            if !manager.fileExists(atPath: unpacked.path) {
                // Unpacked beside, then moved into place: a half-unpacked folder (a full disk, a restart) is never
                // used.
                let scratch = folder.appending(path: "unpacking")
                try? manager.removeItem(at: scratch)
                defer { try? manager.removeItem(at: scratch) }
                _ = try ModelArchive.unpack(file, into: scratch)
                try manager.moveItem(at: scratch, to: unpacked)
            }
            return unpacked.appending(path: entry)
        } catch let error as ApplicationArchiveError {
            throw AgentError("model \(model.modelId) (\(name)): \(error.message)")
        }
    }

    /// A parameter value as the manifest's parameter nodes read it (by their type).
    static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): text
        case .number(let number): number == number.rounded() && abs(number) < 1e15 ? "\(Int64(number))" : "\(number)"
        case .bool(let flag): flag ? "true" : "false"
        default: APIJSON.string(value)
        }
    }
}

/// Where an instance's things are under the agent's state folder, and the runtime configuration they give.
struct StateLayout: Sendable {
    let stateRoot: URL

    /// The instance's snapshot and clip folders, which retention sweeps.
    func media(of instance: String) -> [URL] {
        let folder = stateRoot.appending(path: instance)
        return [folder.appending(path: "snapshots"), folder.appending(path: "clips")]
    }

    func configuration(for instance: DesiredInstance) -> RuntimeConfiguration {
        var configuration = RuntimeConfiguration(stateDirectory: stateRoot.appending(path: instance.id))
        configuration.realtime = true
        configuration.loop = true
        configuration.httpPort = nil
        // No HTTP on the device: the live view is relayed to the control plane while someone watches (LiveRelayHub).
        configuration.liveRelay = true
        configuration.liveFramesPerSecond = LiveRelayHub.maxFramesPerSecond
        configuration.statusInterval = nil
        configuration.deviceName = instance.deviceName
        configuration.instanceName = instance.name
        configuration.outputsDocument = instance.outputs
        // The instance's own AWS credentials, and nothing else AWS: the runtime drops the agent's own AWS_* from
        // what code nodes inherit, so an instance without credentials gets boto3's NoCredentialsError.
        configuration.applicationEnvironment = instance.awsCredentials?.environment ?? [:]
        return configuration
    }
}

/// A started runtime.
final class RuntimeInstance: RunningInstance {
    let runtime: Runtime
    private let task: Task<Void, Never>
    /// Set when `run()` returned.
    private let finished: Finished
    private let stopped: @Sendable () -> Void
    let instanceID: String
    /// Camera node -> camera id.
    let cameraIDs: [String: String]

    final class Finished: Sendable {
        let value = Mutex(false)
    }

    init(
        runtime: Runtime, instanceID: String, cameraIDs: [String: String], stopped: @escaping @Sendable () -> Void
    ) {
        self.runtime = runtime
        self.instanceID = instanceID
        self.cameraIDs = cameraIDs
        self.stopped = stopped
        let finished = Finished()
        self.finished = finished
        task = Task.detached {
            try? await runtime.run()
            finished.value.withLock { $0 = true }
        }
    }

    func health() -> InstanceHealthSample {
        let status = runtime.status()
        var sample = InstanceHealthSample(
            framesInferred: status.models.reduce(0) { $0 + $1.inferences },
            crashes: status.applications.reduce(0) { $0 + $1.restarts },
            lastError: runtime.failures.last ?? status.applications.compactMap(\.lastExit).last)
        if finished.value.withLock({ $0 }) {
            // A runtime that ended by itself (its code nodes gave up) counts as crashing for good.
            sample.crashes = max(sample.crashes, Int.max / 2)
            sample.lastError = sample.lastError ?? "the application stopped by itself"
        }
        return sample
    }

    /// Heartbeat figures of the instance: per camera (`camera.<id>.fps`…) and per instance.
    func metrics() -> [String: Double] {
        RuntimeFigures.of(runtime.status(), instanceID: instanceID, cameraIDs: cameraIDs)
    }

    func stop() async {
        runtime.shutdown()
        await task.value
        stopped()
    }
}
