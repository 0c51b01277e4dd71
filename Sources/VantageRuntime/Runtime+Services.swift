// The runtime's parts as swift-service-lifecycle services of one `ServiceGroup` (`Runtime.run()`).
//
// The group starts the parts in the order of `Runtime.parts()`:
//
//     events → models → code nodes → analytics → ports → cameras → live view → supervisor
//
// and, when the run ends, stops them gracefully in the reverse order, each once the one after it has returned:
// the supervisor, the live view (viewers get the end of their streams), the cameras (no more frames), the port
// forwarders, the analytics and code nodes (their last events are recorded), the models, and last the event
// pipeline, which writes what was published to the events file before the run returns.
//
// The run ends when the supervisor returns: every code node and analytics node finished (the cameras' files ended),
// `shutdown()`, Ctrl-C or SIGTERM (through `vantage run`'s outer group), or a part failing (the live view's port
// taken: the group shuts down the same way, then `run()` throws that error).
//
// A part's service returns only when the group tells it to, even when its own work ended earlier (a code node that
// finished, a camera whose file ended): the group treats a service that returns by itself while it shuts down
// another one as a failure and cancels the rest, which would cut the event pipeline's last writes short.
import Logging
import ServiceLifecycle
import Synchronization
import VantageCore
import VantageOutputs

/// One part of a runtime, as a service of the runtime's group. `work` starts the part and returns when the part's own
/// work ended (at once for a part whose work runs on threads of its own, like cameras). `stop` asks the part to stop:
/// it is called once, when the group stops the part or the run is cancelled, whether `work` ended or not, and must
/// make `work` return soon. `then` runs last, after both.
struct RuntimePart: Service, CustomStringConvertible {
    let description: String
    let work: @Sendable () async -> Void
    let stop: @Sendable () -> Void
    let then: @Sendable () async -> Void

    init(
        _ name: String, work: @escaping @Sendable () async -> Void, stop: @escaping @Sendable () -> Void = {},
        then: @escaping @Sendable () async -> Void = {}
    ) {
        description = name
        self.work = work
        self.stop = stop
        self.then = then
    }

    func run() async {
        let stopAsked = AsyncLatch()
        await withTaskCancellationOrGracefulShutdownHandler {
            await work()
            // Wait for the group to stop this part (see the top of this file).
            await stopAsked.wait()
        } onCancelOrGracefulShutdown: {
            stop()
            stopAsked.set()
        }
        await then()
    }
}

/// The runtime's own event pipeline (`vantage run`): its sinks' workers run as child tasks; stopped last, once nothing
/// records events any more, it first writes what was published to the events file (up to 30 s).
struct EventPipelineService: Service, CustomStringConvertible {
    let pipeline: EventPipeline
    var description: String { "event pipeline" }

    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await pipeline.run() }
            // Until the group stops this part; a cancelled run (no graceful stop) does not wait for the events file.
            if (try? await gracefulShutdown()) != nil {
                await pipeline.drain(EventsFileSink.name, timeout: .seconds(30))
            }
            await pipeline.stop()
        }
    }
}

/// The live view's HTTP server: viewers' live streams end first, so that the server's graceful shutdown does not wait
/// for them.
struct LiveViewService: Service, CustomStringConvertible {
    let http: any Service
    let liveView: LiveView
    var description: String { "live view" }

    func run() async throws {
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await http.run()
        } onCancelOrGracefulShutdown: {
            liveView.shutdown()
        }
    }
}

/// What the runtime's supervisor waits for: the parts whose work must end for the run to end by itself, and the
/// end itself. `Runtime.shutdown()` and the group's graceful shutdown set `ended` too.
final class RunEnd: Sendable {
    let ended = AsyncLatch()
    private let remaining: Mutex<Int>

    /// `parts`: how many parts call `finished()` once their work ended.
    init(parts: Int) { remaining = Mutex(parts) }

    /// One part's work ended; the run ends with the last.
    func finished() {
        let last = remaining.withLock { n in
            n -= 1
            return n == 0
        }
        if last { ended.set() }
    }
}

/// A part started once and stopped once; stopped before it started, it never starts.
enum PartPhase {
    case idle, started, stopped

    /// Marks the start; false when it must not start (already started, or stopped).
    mutating func start() -> Bool {
        guard self == .idle else { return false }
        self = .started
        return true
    }

    /// Marks the stop; true when it was running (and now must be stopped).
    mutating func stop() -> Bool {
        defer { self = .stopped }
        return self == .started
    }
}

extension Runtime {
    /// The runtime's parts, in the order the group starts them (it stops them in the reverse order).
    func parts() -> [ServiceGroupConfiguration.ServiceConfiguration] {
        let warmedUp = AsyncLatch()
        let tensors = hosts.contains { $0.isPython }
        var parts: [RuntimePart] = []
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let pipeline {
            services.append(
                .init(
                    service: EventPipelineService(pipeline: pipeline),
                    failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        // Code nodes start while the models warm up (a Python application imports its packages meanwhile); their
        // first frames come when the cameras start, after the warm-up.
        parts.append(
            RuntimePart(
                "models",
                work: { [models] in
                    await models.warmUp(tensors: tensors)
                    warmedUp.set()
                }))
        parts.append(
            RuntimePart(
                "code nodes",
                work: { [hosts, runEnd] in
                    await withTaskGroup(of: Void.self) { group in
                        for host in hosts { group.addTask { await host.run() } }
                    }
                    runEnd.finished()
                },
                stop: { [hosts] in for host in hosts { host.stop() } },
                then: { [events] in
                    // The snapshots of their last events are written before the pipeline's final writes.
                    await onDedicatedThread(named: "vantage.snapshots") { events.finishSnapshots() }
                }))
        parts.append(
            RuntimePart(
                "analytics",
                work: { [analytics, runEnd] in
                    await withTaskGroup(of: Void.self) { group in
                        for runner in analytics { group.addTask { await runner.run() } }
                    }
                    runEnd.finished()
                },
                stop: { [analytics] in for runner in analytics { runner.stop() } }))
        parts.append(
            RuntimePart(
                "ports",
                work: { [self] in
                    await warmedUp.wait()
                    startForwarders()
                }, stop: { [self] in stopForwarders() }))
        parts.append(
            RuntimePart(
                "cameras",
                work: { [self] in
                    await warmedUp.wait()
                    startCameras()
                    runEnd.finished()
                }, stop: { [self] in stopCameras() }))
        services += parts.map { part in
            ServiceGroupConfiguration.ServiceConfiguration(
                service: part, failureTerminationBehavior: .gracefullyShutdownGroup)
        }
        if let liveView, let port = configuration.httpPort {
            let http = makeLiveViewApplication(
                liveView: liveView, host: configuration.httpHost, port: port,
                allowedHosts: configuration.httpAllowedHosts,
                statusProvider: { [self] in statusJSON() },
                signalHandler: { [self] node, signal in try self.signal(node: node, signal) },
                onServerRunning: { [self] port in
                    boundPort.withLock { $0 = port }
                    logger.notice("live view: http://\(configuration.httpHost):\(port)/")
                }, logger: logger)
            // A port that cannot be opened stops the run the way Ctrl-C does; the run then fails with its error.
            services.append(
                .init(
                    service: LiveViewService(http: http, liveView: liveView),
                    failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        services.append(
            .init(
                service: RuntimeSupervisor(runtime: self), successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup))
        return services
    }
}

/// Last in the group: reports status, samples rates, sweeps old media and stops code nodes that outlive their files;
/// returns when the run ends, which makes the group stop every part.
struct RuntimeSupervisor: Service, CustomStringConvertible {
    let runtime: Runtime
    var description: String { "supervisor" }

    func run() async {
        await withTaskCancellationOrGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                if let interval = runtime.configuration.statusInterval {
                    group.addTask { try? await runtime.reportStatus(every: interval) }
                }
                group.addTask { try? await runtime.sampleRates() }
                group.addTask { try? await runtime.sweepMedia() }
                group.addTask { await runtime.stopCodeAfterSourcesEnd() }
                await runtime.runEnd.ended.wait()
                group.cancelAll()
            }
        } onCancelOrGracefulShutdown: {
            runtime.logger.info("stopping")
            runtime.runEnd.ended.set()
        }
    }
}
