import Foundation
import VantageAPI

// The parts a `Reconciler` is built from. The agent plugs in real ones (HTTP downloads, VantageRuntime, report
// posts); the tests plug in fakes.

/// Where artifacts come from (the real one: `GET /api/v1/devices/{id}/artifacts/{digest}` with a `Range` header).
public protocol ArtifactSource: Sendable {
    /// Appends the artifact's bytes from byte `offset` on to `file` (positioned at its end). Throws when
    /// interrupted; what was appended so far stays in the file and the next call goes on from there.
    func download(digest: String, offset: Int64, into file: FileHandle) async throws
}

/// Runs one version of one instance (the real one wraps VantageRuntime's `Runtime`, the same as `vantage run`).
public protocol InstanceRunner: Sendable {
    /// Starts the application in the unpacked project folder `project` with `instance`'s cameras and parameters.
    func start(_ instance: DesiredInstance, project: URL) async throws -> any RunningInstance
}

/// One started version of an instance.
public protocol RunningInstance: Sendable {
    /// Counters since start: frames inferred (the health signal), code-node crashes/restarts, the last error.
    /// Called from the reconciler's actor: it must answer at once.
    func health() -> InstanceHealthSample
    /// Stops the application and waits until it has stopped.
    func stop() async
    /// Heartbeat figures of the instance (`camera.<id>.fps`, `instance.<id>.inference_p99_ms`, `cameras.open`…).
    /// Called from the reconciler's actor: it must answer at once.
    func metrics() -> [String: Double]
    /// Gives the running application `instance`'s camera credentials, which alone differ from those it runs with
    /// (a rotated camera password), without restarting it: each camera uses them from its next connection. False
    /// when it cannot: the reconciler then deploys the instance again.
    func updateCameraCredentials(_ instance: DesiredInstance) async -> Bool
}

extension RunningInstance {
    public func metrics() -> [String: Double] { [:] }
    public func updateCameraCredentials(_ instance: DesiredInstance) async -> Bool { false }
}

/// A running instance's health counters since it started.
public struct InstanceHealthSample: Sendable, Equatable, Codable {
    /// Frames that went through inference: the health signal (cameras deliver and models infer).
    public var framesInferred: UInt64
    /// How many times the application's code crashed (and was restarted).
    public var crashes: Int
    /// The last error the application reported, e.g. "exit 1".
    public var lastError: String?

    /// Makes a sample.
    public init(framesInferred: UInt64 = 0, crashes: Int = 0, lastError: String? = nil) {
        self.framesInferred = framesInferred
        self.crashes = crashes
        self.lastError = lastError
    }
}

/// Where reports go (the real one posts to `/api/v1/instances/{id}/report` and retries; it must not block for long:
/// the reconciler awaits each report so that an instance's reports arrive in order).
public protocol DeploymentReporter: Sendable {
    /// Sends one report about one instance.
    func report(instanceId: String, _ report: InstanceReport) async
}

/// When a new version counts as healthy, and when the reconciler gives up on it and rolls back.
public struct HealthPolicy: Sendable {
    /// How long a new version has to infer its first frame.
    public var deadline: Duration
    /// A new version that crashes this many times during its health check is rolled back.
    public var maxCrashes: Int
    /// How often the health counters are read during the check.
    public var checkInterval: Duration
    /// The loop breaker: a new version whose start or health check was interrupted by this many agent restarts is
    /// rolled back instead of started again (Mender's "state looping detected").
    public var maxStartAttempts: Int

    /// A policy; the defaults: healthy once a frame is inferred within 60 s, rolled back after 3 crashes or 3
    /// restarts of the agent during the check.
    public init(
        deadline: Duration = .seconds(60), maxCrashes: Int = 3, checkInterval: Duration = .seconds(1),
        maxStartAttempts: Int = 3
    ) {
        self.deadline = deadline
        self.maxCrashes = maxCrashes
        self.checkInterval = checkInterval
        self.maxStartAttempts = maxStartAttempts
    }
}

/// How an interrupted download is retried. Each retry goes on from the bytes already on disk. After `attempts`
/// tries the deployment is reported as DEPLOYMENT_ERROR and left pending (the running version is untouched): it is
/// taken up again after `pendingRetry`, or sooner by the next `apply` or `resume`.
public struct DownloadPolicy: Sendable {
    /// Tries in a row, the first included.
    public var attempts: Int
    /// The wait before the first retry; it doubles after each.
    public var firstDelay: Duration
    /// The longest wait between tries.
    public var maxDelay: Duration
    /// The wait before a pending deployment is tried again.
    public var pendingRetry: Duration
    /// The wait before a deployment refused for want of room on the disk is tried again (the agent also takes it up
    /// as soon as it sees space return).
    public var roomRetry: Duration = .seconds(15)

    /// A policy; the defaults: 5 tries, 1 s apart at first, at most 30 s apart; then again every 5 minutes.
    public init(
        attempts: Int = 5, firstDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(30),
        pendingRetry: Duration = .seconds(300)
    ) {
        self.attempts = attempts
        self.firstDelay = firstDelay
        self.maxDelay = maxDelay
        self.pendingRetry = pendingRetry
    }
}
