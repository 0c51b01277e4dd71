import Foundation
import Logging
import Synchronization
import VantageAPI
import VantageApp
import VantageCore
import VantageRuntime

/// Runs an instance with the same runtime `vantage run` uses: the unpacked project with the desired cameras,
/// parameters, models, outputs document and AWS credentials (as the code nodes' `AWS_*` environment), events into the
/// agent's outbox (snapshots inside them), no live view.
/// File cameras loop in real time, so a demo or test camera behaves like a live one.
public struct RuntimeRunner: InstanceRunner {
    /// Where each instance keeps its state (`storage/`, `logs/`, compiled models): `stateRoot/<instance id>`.
    public var stateRoot: URL
    /// The reconciler's verified artifacts (`<hex of the SHA-256>`), where model files are found.
    public var artifactsFolder: URL
    /// Where an instance's events go: the agent's outbox in process, or the channel to the agent in a runtime
    /// worker (``RuntimeWorker``).
    public var eventDestination: @Sendable (_ instance: DesiredInstance) -> any EventDestination
    /// Folders searched for code-node executables (the `vantage` binary's own folder).
    public var executableSearchPath: [URL]
    public var pythonCacheDirectory: URL?
    /// Shared by every instance: a camera two instances read is decoded once.
    public var cameraHub: CameraHub
    public var logger: Logger

    /// A runner whose instances put their events into `outbox`.
    public init(
        stateRoot: URL, artifactsFolder: URL, outbox: Outbox, executableSearchPath: [URL],
        pythonCacheDirectory: URL? = nil, cameraHub: CameraHub = CameraHub(), logger: Logger
    ) {
        self.init(
            stateRoot: stateRoot, artifactsFolder: artifactsFolder,
            eventDestination: { instance in
                OutboxDestination(
                    outbox: outbox, instanceID: instance.id, cameraIDs: instance.cameras.mapValues(\.cameraId))
            },
            executableSearchPath: executableSearchPath, pythonCacheDirectory: pythonCacheDirectory,
            cameraHub: cameraHub, logger: logger)
    }

    /// A runner whose instances' events go where `eventDestination` says.
    public init(
        stateRoot: URL, artifactsFolder: URL,
        eventDestination: @escaping @Sendable (_ instance: DesiredInstance) -> any EventDestination,
        executableSearchPath: [URL], pythonCacheDirectory: URL? = nil, cameraHub: CameraHub = CameraHub(),
        logger: Logger
    ) {
        self.cameraHub = cameraHub
        self.stateRoot = stateRoot
        self.artifactsFolder = artifactsFolder
        self.eventDestination = eventDestination
        self.executableSearchPath = executableSearchPath
        self.pythonCacheDirectory = pythonCacheDirectory
        self.logger = logger
    }

    public func start(_ instance: DesiredInstance, project: URL) async throws -> any RunningInstance {
        var overrides = RunOverrides(overridesFile: nil)
        for (node, camera) in instance.cameras.sorted(by: { $0.key < $1.key }) {
            try overrides.addCamera(argument: "\(node)=\(camera.url)")
        }
        for (name, value) in instance.parameters.sorted(by: { $0.key < $1.key }) {
            try overrides.addParameter(argument: "\(name)=\(Self.text(value))")
        }
        for (node, model) in instance.models.sorted(by: { $0.key < $1.key }) {
            try overrides.addModel(argument: "\(node)=\(try modelFile(model, instance: instance.id).path)")
        }
        let root = try ApplicationArchive.projectRoot(in: project)
        let application = try ApplicationProject.load(root).resolve(overrides)
        let configuration = try runtimeConfiguration(for: instance)
        var instanceLogger = logger
        instanceLogger[metadataKey: "instance.id"] = "\(instance.id)"
        instanceLogger[metadataKey: "package.version"] = "\(instance.packageVersion)"
        let runtimeLogger = instanceLogger
        // Making a runtime loads and compiles models: off the caller's thread.
        let runtime = try await Task.detached {
            try Runtime(application: application, configuration: configuration, logger: runtimeLogger)
        }.value
        RuntimeRegistry.shared.add(
            .init(instanceID: instance.id, cameraIDs: instance.cameras.mapValues(\.cameraId), runtime: runtime))
        return RuntimeInstance(runtime: runtime)
    }

    /// The file an instance's `outputs` document is written to for its runtime: `stateRoot/<id>/outputs.json`.
    public func outputsFile(of instance: String) -> URL {
        stateRoot.appending(path: "\(instance)/outputs.json")
    }

    /// How `instance` runs: its state folder, looping real-time file cameras, no live view, events into the outbox,
    /// and, when it has an `outputs` document, that document written (atomically) to ``outputsFile(of:)`` for the
    /// runtime to read as `vantage run --outputs FILE` does. Its `${NAME}` references are resolved from the agent's
    /// environment when the runtime starts; a missing variable fails the deployment with a message naming it.
    public func runtimeConfiguration(for instance: DesiredInstance) throws -> RuntimeConfiguration {
        let folder = stateRoot.appending(path: instance.id)
        var configuration = RuntimeConfiguration(stateDirectory: folder)
        configuration.realtime = true
        configuration.loop = true
        configuration.httpPort = nil
        configuration.statusInterval = nil
        configuration.executableSearchPath = executableSearchPath
        configuration.pythonCacheDirectory = pythonCacheDirectory
        configuration.cameraHub = cameraHub
        configuration.eventDestination = eventDestination(instance)
        configuration.deviceName = instance.deviceName
        configuration.instanceName = instance.name
        // The instance's own AWS credentials, and nothing else AWS: the runtime drops the agent's own AWS_* from
        // what code nodes inherit, so an instance without credentials gets boto3's NoCredentialsError.
        configuration.applicationEnvironment = instance.awsCredentials?.environment ?? [:]
        let file = outputsFile(of: instance.id)
        if let outputs = instance.outputs {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            // Readable by the agent's user only, as the journal is: it names the sinks' hosts and users.
            try AtomicFile.write(Data(APIJSON.string(outputs).utf8), to: file, permissions: 0o600)
            configuration.outputsFile = file
        } else if FileManager.default.fileExists(atPath: file.path) {
            // A document removed on the server: do not leave the old one where someone might take it for current.
            try FileManager.default.removeItem(at: file)
        }
        return configuration
    }

    /// The model file under its own name (its extension tells the format), linked from the verified artifact.
    func modelFile(_ model: DesiredModel, instance: String) throws -> URL {
        guard let key = DesiredInstance.key(of: model.digest) else {
            throw AgentError("model \(model.modelId): \(model.digest) is not a sha256 digest")
        }
        let name = URL(fileURLWithPath: model.filename).lastPathComponent
        let folder = stateRoot.appending(path: "\(instance)/models/\(key)")
        let file = folder.appending(path: name.isEmpty ? "model" : name)
        let manager = FileManager.default
        if manager.fileExists(atPath: file.path) { return file }
        try manager.createDirectory(at: folder, withIntermediateDirectories: true)
        let artifact = artifactsFolder.appending(path: key)
        if link(artifact.path, file.path) != 0 {
            // Another file system: copy instead.
            try manager.copyItem(at: artifact, to: file)
        }
        return file
    }

    /// A parameter value as `--param NAME=VALUE` takes it.
    static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): text
        case .number(let number): number == number.rounded() && abs(number) < 1e15 ? "\(Int64(number))" : "\(number)"
        case .bool(let flag): flag ? "true" : "false"
        default: APIJSON.string(value)
        }
    }
}

/// A started runtime.
final class RuntimeInstance: RunningInstance {
    let runtime: Runtime
    private let task: Task<Void, Never>
    /// Set when `run()` returned.
    private let finished: Finished

    final class Finished: Sendable {
        let value = Mutex(false)
    }

    init(runtime: Runtime) {
        self.runtime = runtime
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

    func stop() async {
        runtime.shutdown()
        await task.value
        RuntimeRegistry.shared.remove(runtime)
    }
}

/// Puts a runtime's events into the outbox, with the camera each came from.
struct OutboxDestination: EventDestination {
    let outbox: Outbox
    let instanceID: String
    /// Camera node → camera id.
    let cameraIDs: [String: String]

    func store(_ event: RuntimeEvent) throws {
        try AgentEvent(event, instanceID: instanceID, cameraIDs: cameraIDs).store(in: outbox)
    }
}

/// An event as the agent's outbox keeps it: what crosses from a runtime worker to the agent.
struct AgentEvent: Codable, Sendable {
    var type: String
    var time: Date
    var cameraId: String?
    var instanceId: String
    /// The application's JSON object, as text.
    var data: String
    /// JPEG bytes.
    var snapshot: Data?

    /// The runtime's event, named for the control plane: the camera id of its stream (or the instance's only
    /// camera), and its type.
    init(_ event: RuntimeEvent, instanceID: String, cameraIDs: [String: String]) {
        // A stream is named after its camera node, with `[i]` for the i-th stream of a multi-stream node.
        let node = event.stream.map { String($0.prefix { $0 != "[" }) }
        // The payload's "type" or an analytics type; an app's event without one is named after its code node.
        type = event.type == "app" ? event.node : event.type
        time = event.time
        cameraId = node.flatMap { cameraIDs[$0] } ?? (cameraIDs.count == 1 ? cameraIDs.values.first : nil)
        instanceId = instanceID
        data = event.payload
        snapshot = event.snapshotJPEG.map { Data($0) }
    }

    /// Stores it durably in `outbox`, or throws a message for the application.
    func store(in outbox: Outbox) throws {
        do {
            try outbox.append(
                type: type, time: time, cameraId: cameraId, instanceId: instanceId, data: data,
                snapshot: snapshot.map { [UInt8]($0) })
        } catch {
            throw RuntimeError("the event could not be stored on the device: \(error)")
        }
    }
}
