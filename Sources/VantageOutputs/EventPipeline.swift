import Foundation
import Logging
import Synchronization
import VantageCore

/// Who raised events: put into every message and usable in topic and key templates as `{device}`, `{instance}`,
/// `{application}`.
public struct EventContext: Sendable, Equatable {
    public var device: String
    public var instance: String
    public var application: String
    public init(device: String, instance: String, application: String) {
        self.device = device
        self.instance = instance
        self.application = application
    }
}

/// One event on its way out: the one type an event has from the moment it is made (by a code node or an analytics
/// node) until its sinks took it; it crosses from a runtime worker to the agent as it is.
public struct OutgoingEvent: Sendable, Codable, Equatable {
    /// Unique (a UUID by default); the same for every phase of an object's event, so consumers dedupe and update on it.
    public var id: String
    /// E.g. `zone.enter`, `line.cross`, `object`, or the application's own (`defect`).
    public var type: String
    public var time: Date
    /// The camera node (or stream) it happened on.
    public var camera: String?
    /// What raised it: `node:<code node>` or `analytics:<analytics node>`.
    public var source: String
    /// For object events: `start`, `update` or `end`.
    public var phase: String?
    /// The application's (or the analytics') JSON object.
    public var payload: JSONValue
    /// The snapshot in the local event folder: already written (and flushed), or, while `snapshotPending`, the file
    /// it is being written to.
    public var snapshotFile: String?
    /// The snapshot is written after the event is recorded; ``EventRecorder/snapshotFinished(sequence:file:error:)``
    /// says when (sinks wait for it meanwhile).
    public var snapshotPending: Bool

    public init(
        id: String = UUID().uuidString.lowercased(), type: String, time: Date = Date(), camera: String?, source: String,
        phase: String? = nil, payload: JSONValue, snapshotFile: String? = nil, snapshotPending: Bool = false
    ) {
        self.id = id
        self.type = type
        self.time = time
        self.camera = camera
        self.source = source
        self.phase = phase
        self.payload = payload
        self.snapshotFile = snapshotFile
        self.snapshotPending = snapshotPending
    }

    /// The message sinks receive (before the uploaded objects are added).
    public func message(context: EventContext) -> JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(id), "type": .string(type), "time": .string(EventPipeline.format(time)),
            "device": .string(context.device), "instance": .string(context.instance),
            "application": .string(context.application), "source": .string(source), "payload": payload,
        ]
        if let camera { o["camera"] = .string(camera) }
        if let phase { o["phase"] = .string(phase) }
        return .object(o)
    }
}

/// A sink that takes messages (MQTT, webhooks).
public protocol MessageSink: Sendable {
    /// Delivers one message; returns when the receiver acknowledged it. `event` is the whole message, for templates.
    func send(_ body: [UInt8], event: JSONValue) async throws(SinkError)
    /// Stops (closing connections); pending deliveries stay in the outbox.
    func shutdown() async
}

/// A sink that stores files (S3-compatible object storage).
public protocol ObjectSink: Sendable {
    /// Stores the file; answers what a message says about it (at least `key` and `url`).
    func store(file: URL, event: JSONValue, part: PendingDelivery.Part) async throws(SinkError) -> JSONValue
    func shutdown() async
}

/// A sink that takes the stored event itself, with its local snapshot file: the control plane (which carries the
/// image inside the event) and the local events file.
public protocol StoredEventSink: Sendable {
    /// Delivers the event; `message` is its message with the objects stored for it. Returns when it was taken.
    func deliver(_ event: StoredEvent, message: JSONValue) async throws(SinkError)
    /// How many events one ``deliver(batch:)`` may carry; nil (the default): one event at a time.
    var batching: StoredEventBatching? { get }
    /// Delivers several events, in the outbox's order, as one: returns when every one was taken, and a failure
    /// means none of them counts as taken (the pipeline sends them all again; the receiver must store an event sent
    /// twice once). A ``SinkError/discard`` refuses the batch, not one event: the pipeline then sends those events
    /// one at a time, so that only the refused one is dropped.
    func deliver(batch: [(event: StoredEvent, message: JSONValue)]) async throws(SinkError)
    func shutdown() async
}

extension StoredEventSink {
    public var batching: StoredEventBatching? { nil }

    public func deliver(batch: [(event: StoredEvent, message: JSONValue)]) async throws(SinkError) {
        for item in batch { try await deliver(item.event, message: item.message) }
    }
}

/// A sink that takes only the clips of events whose messages another sink carries: the control plane's clip
/// uploads. A clip goes once it is cut; the event itself is not held back for it.
public protocol ClipSink: Sendable {
    /// Delivers the clip `file` of `event`; returns when it was taken.
    func deliver(clip file: URL, of event: StoredEvent) async throws(SinkError)
    func shutdown() async
}

/// How a ``StoredEventSink`` takes several events at once: while it has a backlog (after an outage), the pipeline
/// hands it up to `maxEvents` events per call, in order, but no more than about `maxBytes` (each event's message
/// and its snapshot as base64); one event larger than that still goes, alone.
public struct StoredEventBatching: Sendable, Equatable {
    public var maxEvents: Int
    public var maxBytes: Int64

    public init(maxEvents: Int, maxBytes: Int64) {
        precondition(maxEvents > 0 && maxBytes > 0, "a batch holds at least one event")
        self.maxEvents = maxEvents
        self.maxBytes = maxBytes
    }
}

/// A configured sink, ready to deliver.
public enum ConnectedSink: Sendable {
    case messages(any MessageSink)
    case objects(any ObjectSink)
    case stored(any StoredEventSink)
    case clips(any ClipSink)
}

/// Where a runtime records its events: an ``EventPipeline`` in the same process (`vantage run`, or the agent's
/// in-process runner), or the channel to the agent that holds the instance's pipeline (a runtime worker).
public protocol EventRecorder: Sendable {
    /// Routes and stores the event durably; throws (with a message for the application) when it cannot.
    func record(_ event: OutgoingEvent) throws -> EventPipeline.Recorded
    /// The clip a recorded event asked for was written (`file`) or could not be (`error`).
    func clipFinished(sequence: Int64, file: String?, error: String?) throws
    /// The snapshot of an event recorded with ``OutgoingEvent/snapshotPending`` was written (`file`, flushed) or could
    /// not be (`error`: the event goes without it).
    func snapshotFinished(sequence: Int64, file: String?, error: String?) throws
}

/// Events on their way out: routes each event by the rules, stores it in the ``SinkOutbox`` (durably, before
/// ``record(_:)`` returns), and delivers it with one worker per sink — in order per sink, retried with backoff until
/// the sink takes it. A message waits until its event's snapshot and clip are stored, and then names them; every
/// sink but an object store's clip waits while the event's snapshot is still being written.
public final class EventPipeline: EventRecorder {
    public let configuration: OutputsConfiguration
    public let context: EventContext
    public let outbox: SinkOutbox
    private let sinks: [String: ConnectedSink]
    /// Sinks that take every event whatever the rules say (the control plane, the local events file); their names
    /// start with `@`, which a configured sink's name cannot.
    private let builtIn: [String]
    /// The sinks that take only clips (``ClipSink``): messages do not wait for them.
    private let clipOnlySinks: Set<String>
    private let logger: Logger
    private let wakeups: [String: Wakeup]
    /// Marks each delivery attempt's outcome (done, refused, failed, waiting), for `drain`.
    private let progress = Progress()
    /// The workers `start()` started (the agent's pipelines, which come and go with instances).
    private let workers = Mutex<[Task<Void, Never>]>([])
    /// Set by `stop()`: the workers end (`run()` returns).
    private let stopping = Atomic<Bool>(false)
    /// Set when a `run()` in progress has returned; nil while none runs.
    private let running = Mutex<AsyncLatch?>(nil)
    /// Where the delivery workers' writes to the outbox run (each commits with an fsync): off the cooperative pool,
    /// whose few threads the runtime's other tasks need.
    private let io = BlockingQueue(label: "vantage.outbox")
    private let limits = Mutex<[String: Date]>([:])
    private let counters = Mutex<[String: SinkCounters]>([:])
    /// Backoff of retryable failures: doubles from `initialBackoff` up to `maxBackoff` (jittered down, never above it);
    /// not-retryable ones wait `maxBackoff`.
    public let initialBackoff: Double
    /// The longest pause, in seconds, between a sink's retries.
    public let maxBackoff: Double
    /// Seconds an event's pending snapshot may take before its sinks give up on it and deliver the event without.
    let snapshotTimeout: Double

    /// Deliveries per sink since start.
    public struct SinkCounters: Sendable, Equatable {
        public var delivered = 0
        public var failures = 0
        /// Events the sink refused for good (``SinkError/discard``), removed from the outbox.
        public var rejected = 0
    }

    /// Makes the pipeline; `sinks` are the connected sinks by name (``SinkFactory`` makes them from the configuration).
    public init(
        configuration: OutputsConfiguration, context: EventContext, outbox: SinkOutbox,
        sinks: [String: ConnectedSink], builtIn: [String: ConnectedSink] = [:], logger: Logger,
        initialBackoff: Double = 1, maxBackoff: Double = 30, snapshotTimeout: Double = 60
    ) {
        precondition(builtIn.keys.allSatisfy { $0.hasPrefix("@") }, "a built-in sink's name starts with @")
        self.configuration = configuration
        self.context = context
        self.outbox = outbox
        self.sinks = sinks.merging(builtIn) { $1 }
        self.builtIn = builtIn.keys.sorted()
        clipOnlySinks = Set(
            self.sinks.compactMap { name, sink in
                if case .clips = sink { name } else { nil }
            })
        self.logger = logger
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.snapshotTimeout = snapshotTimeout
        var wakeups: [String: Wakeup] = [:]
        for name in self.sinks.keys { wakeups[name] = Wakeup() }
        self.wakeups = wakeups
    }

    /// Opens the outbox at `outboxPath` and connects every configured sink: the pipeline of one application instance.
    /// Pending deliveries of sinks no longer configured stay in the outbox (with a warning) until they are again.
    /// `maxBackoff` is the longest pause, in seconds, between a sink's retries (the agent's `--max-backoff-seconds`).
    public static func open(
        configuration: OutputsConfiguration, context: EventContext, outboxPath: String, limitBytes: Int64?,
        builtIn: [String: ConnectedSink], logger: Logger, maxBackoff: Double = 30
    ) throws -> EventPipeline {
        let outbox = try SinkOutbox(path: outboxPath, limitBytes: limitBytes)
        var sinks: [String: ConnectedSink] = [:]
        for sink in configuration.sinks {
            do {
                sinks[sink.name] = try SinkFactory.connect(sink, context: context, logger: logger)
            } catch {
                throw OutputsError("outputs: \(error)")
            }
        }
        for backlog in (try? outbox.backlog()) ?? [] where sinks[backlog.sink] == nil && builtIn[backlog.sink] == nil {
            logger.warning(
                "the outbox holds events for a sink that is no longer configured; they wait until it is again",
                metadata: ["sink": "\(backlog.sink)", "pending": "\(backlog.pending)"])
        }
        return EventPipeline(
            configuration: configuration, context: context, outbox: outbox, sinks: sinks, builtIn: builtIn,
            logger: logger, initialBackoff: min(1, maxBackoff), maxBackoff: maxBackoff)
    }

    /// Waits until `sink` has nothing left to deliver (or `timeout` passed): the events file is complete before a run
    /// ends.
    public func drain(_ sink: String, timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let seen = progress.generation
            // A sink that keeps failing (an unwritable events file) is not waited for.
            guard let head = try? outbox.head(of: sink), head.attempts < 3 else { return }
            wakeups[sink]?.signal()
            // Woken by the next delivery attempt's outcome, not polled.
            await progress.wait(after: seen, upTo: deadline - ContinuousClock.now)
        }
    }

    /// Delivers: one worker per sink, as child tasks, until `stop()` (or cancellation). The structured way to run a
    /// pipeline, for a part of a service group (`vantage run`'s runtime); `start()` runs the same workers as tasks of
    /// their own.
    public func run() async {
        let finished = AsyncLatch()
        running.withLock { $0 = finished }
        defer { finished.set() }
        await withDiscardingTaskGroup { group in
            for name in sinks.keys.sorted() { group.addTask { await self.run(sink: name) } }
        }
    }

    /// Starts one delivery worker per sink, each a task of its own: for a pipeline whose life is not a task's (the
    /// agent's, opened and released with instances). `stop()` ends them.
    public func start() {
        workers.withLock { tasks in
            for name in sinks.keys.sorted() {
                tasks.append(Task { [self] in await run(sink: name) })
            }
        }
    }

    /// Stops the workers and closes the sinks; what is not delivered stays in the outbox for the next start.
    public func stop() async {
        let tasks = workers.withLock { t in
            defer { t = [] }
            return t
        }
        stopping.store(true, ordering: .relaxed)
        for t in tasks { t.cancel() }
        for w in wakeups.values { w.signal() }
        // Closing the sinks ends a delivery still waiting for its acknowledgement; it stays in the outbox.
        for sink in sinks.values {
            switch sink {
            case .messages(let s): await s.shutdown()
            case .objects(let s): await s.shutdown()
            case .stored(let s): await s.shutdown()
            case .clips(let s): await s.shutdown()
            }
        }
        for t in tasks { await t.value }
        await running.withLock { $0 }?.wait()
    }

    /// What one event turned into: its place in the outbox and whether a clip was asked for.
    public struct Recorded: Sendable, Codable, Equatable {
        public var sequence: Int64?
        public var wantsClip: Bool
        /// The sinks it goes to (empty: kept on local disk only).
        public var sinks: [String]

        public init(sequence: Int64?, wantsClip: Bool, sinks: [String]) {
            self.sequence = sequence
            self.wantsClip = wantsClip
            self.sinks = sinks
        }
    }

    /// Routes `event` and stores it in the outbox (durable when this returns). Throws when the outbox cannot be
    /// written: the caller tells the application its event was not accepted.
    @discardableResult
    public func record(_ event: OutgoingEvent) throws -> Recorded {
        try store(event)
    }

    /// ``record(_:)`` with its typed error.
    public func store(_ event: OutgoingEvent) throws(OutboxFileError) -> Recorded {
        let route = try self.route(event)
        guard !route.messageSinks.isEmpty || !route.objectSinks.isEmpty else {
            return Recorded(sequence: nil, wantsClip: false, sinks: [])
        }
        var deliveries: [(sink: String, part: PendingDelivery.Part)] = []
        let hasSnapshot = route.snapshot && event.snapshotFile != nil
        for sink in route.objectSinks {
            if hasSnapshot { deliveries.append((sink, .snapshot)) }
            if route.clip { deliveries.append((sink, .clip)) }
        }
        for sink in route.messageSinks { deliveries.append((sink, .message)) }
        if route.clip { for sink in route.clipSinks { deliveries.append((sink, .clip)) } }
        let sequence = try outbox.add(
            message: event.message(context: context), snapshotFile: hasSnapshot ? event.snapshotFile : nil,
            snapshotPending: hasSnapshot && event.snapshotPending, clipPending: route.clip,
            objectSinks: route.objectSinks, deliveries: deliveries)
        for d in deliveries { wakeups[d.sink]?.signal() }
        return Recorded(
            sequence: sequence, wantsClip: route.clip,
            sinks: route.messageSinks + route.objectSinks + (route.clip ? route.clipSinks : []))
    }

    /// The clip of a recorded event was written (`file`) or could not be (`error`).
    public func clipFinished(sequence: Int64, file: String?, error: String?) throws {
        try outbox.setClip(sequence: sequence, file: file, error: error)
        for w in wakeups.values { w.signal() }
    }

    /// The pending snapshot of a recorded event was written (`file`) or could not be (`error`).
    public func snapshotFinished(sequence: Int64, file: String?, error: String?) throws {
        try outbox.setSnapshot(sequence: sequence, file: file, error: error)
        for w in wakeups.values { w.signal() }
    }

    /// Deliveries per sink since start.
    public var deliveryCounters: [String: SinkCounters] { counters.withLock { $0 } }

    // MARK: - Routing

    struct Route {
        var messageSinks: [String] = []
        var objectSinks: [String] = []
        /// Sinks that take only clips (``ClipSink``): a clip is cut for them too.
        var clipSinks: [String] = []
        var snapshot = false
        var clip = false
    }

    /// Which sinks take `event`: those of every matching rule (unless rate-limited), plus every sink no rule names.
    func route(_ event: OutgoingEvent) throws(OutboxFileError) -> Route {
        var chosen: [String] = []
        var snapshot = false
        var clip = false
        let named = Set(configuration.rules.flatMap(\.send))
        for sink in configuration.sinks where !named.contains(sink.name) {
            chosen.append(sink.name)
            snapshot = true
        }
        for rule in configuration.rules where Self.matches(rule, event: event) {
            if let every = rule.atMostEvery, every > 0 {
                let key = "\(rule.name)|\(event.camera ?? "")"
                var last = limits.withLock { $0[key] }
                if last == nil { last = try outbox.lastSent(key) }
                // Within the period: held back. An event more than a period *before* the last one sent means the
                // clock was set back (a box that booted a year behind, then NTP, or the other way): the limit starts
                // again from it rather than holding everything back until the clock catches up.
                if let last {
                    let gap = event.time.timeIntervalSince(last)
                    if gap < every, gap >= -every { continue }
                }
                limits.withLock { $0[key] = event.time }
                try outbox.setLastSent(key, event.time)
            }
            for name in rule.send where !chosen.contains(name) { chosen.append(name) }
            snapshot = snapshot || rule.snapshot
            clip = clip || rule.clip
        }
        var route = Route(snapshot: snapshot, clip: false)
        for name in chosen + builtIn {
            switch sinks[name] {
            case .objects?: route.objectSinks.append(name)
            case .messages?, .stored?: route.messageSinks.append(name)
            case .clips?: route.clipSinks.append(name)
            case nil: break
            }
        }
        if !builtIn.isEmpty { route.snapshot = true }
        route.clip = clip && !(route.objectSinks.isEmpty && route.clipSinks.isEmpty)
        return route
    }

    /// Whether `rule` takes `event`.
    static func matches(_ rule: OutputsConfiguration.Rule, event: OutgoingEvent) -> Bool {
        if !rule.types.isEmpty {
            let ok = rule.types.contains { pattern in
                pattern.hasSuffix("*") ? event.type.hasPrefix(pattern.dropLast()) : pattern == event.type
            }
            if !ok { return false }
        }
        if !rule.cameras.isEmpty {
            guard let camera = event.camera, rule.cameras.contains(camera) else { return false }
        }
        for condition in rule.payload where !condition.holds(for: event.payload) { return false }
        return true
    }

    // MARK: - Delivery

    private func run(sink name: String) async {
        guard let sink = sinks[name], let wakeup = wakeups[name] else { return }
        var loggedError: String?
        // An outbox that cannot be written (a full disk) is said once until it can be again, not every 5 s.
        var loggedWriteError: String?
        // A sink that takes batches (the control plane) gets its backlog several events at a time.
        let batching: StoredEventBatching? =
            if case .stored(let stored) = sink, let b = stored.batching, b.maxEvents > 1 { b } else { nil }
        // Deliveries still to send one at a time after the receiver refused them as a batch.
        var oneByOne = 0
        while !Task.isCancelled && !stopping.load(ordering: .relaxed) {
            let next: PendingDelivery?
            do {
                next = try outbox.head(of: name)
            } catch {
                logger.error("the outbox cannot be read", metadata: ["error": "\(error)"])
                await wakeup.wait(seconds: 5)
                continue
            }
            guard let delivery = next else {
                oneByOne = 0
                await wakeup.wait(seconds: 5)
                continue
            }
            // A retry time further off than the longest backoff was set by a clock that has since been set back
            // (a box an hour ahead, corrected): it is due now, not in an hour (or a year).
            let wait = delivery.notBefore.timeIntervalSinceNow
            if wait > 0 && wait <= maxBackoff * 1.2 {
                await wakeup.wait(seconds: wait)
                continue
            }
            var batch: [(delivery: PendingDelivery, event: StoredEvent)] = []
            do {
                if let batching, oneByOne == 0, case .stored(let stored) = sink {
                    batch = try self.batch(from: delivery, of: name, batching)
                    if batch.count > 1 {
                        try await deliver(batch, to: stored)
                    }
                }
                let delivered: Int
                if batch.count > 1 {
                    delivered = batch.count
                } else {
                    batch = []
                    switch try await attempt(delivery, sink: sink) {
                    case .done:
                        delivered = 1
                        oneByOne = max(0, oneByOne - 1)
                    case .waiting:
                        delivered = 0
                        await wakeup.wait(seconds: 1)
                    }
                }
                if delivered > 0 {
                    counters.withLock { $0[name, default: SinkCounters()].delivered += delivered }
                    if loggedWriteError != nil {
                        logger.info("the outbox can be written again", metadata: ["sink": "\(name)"])
                        loggedWriteError = nil
                    }
                    if loggedError != nil {
                        logger.info("sink delivers again", metadata: ["sink": "\(name)"])
                        loggedError = nil
                    }
                }
            } catch let error as SinkError where error.discard && !batch.isEmpty {
                // The receiver refused the batch for one of its events (the control plane answers 4xx for the whole
                // request, naming the event): rather than drop them all, send these events one at a time, so that
                // only the refused one is dropped (and counted) and the others are delivered in their order.
                oneByOne = batch.count
                logger.warning(
                    "the sink refused a batch of events; they are sent one at a time so that only the refused one is dropped",
                    metadata: ["sink": "\(name)", "events": "\(batch.count)", "reason": "\(error.message)"])
            } catch let error as SinkError where error.discard {
                counters.withLock { $0[name, default: SinkCounters()].rejected += 1 }
                oneByOne = max(0, oneByOne - 1)
                logger.error(
                    "the sink refused an event for good; it is dropped",
                    metadata: ["sink": "\(name)", "event": "\(delivery.sequence)", "reason": "\(error.message)"])
                try? await completed(delivery)
            } catch let error as SinkError {
                counters.withLock { $0[name, default: SinkCounters()].failures += 1 }
                let jittered = retryDelay(attempts: delivery.attempts, retryable: error.retryable)
                if loggedError != error.message {
                    logger.warning(
                        "sink delivery failed; the event stays in the outbox and is retried",
                        metadata: [
                            "sink": "\(name)", "error": "\(error.message)", "retryable": "\(error.retryable)",
                            "retryIn": "\(String(format: "%.1f", jittered)) s",
                        ])
                    loggedError = error.message
                }
                // A failed batch counts as one failed attempt of its first delivery: the rest wait behind it.
                let outbox = self.outbox
                let retryAt = Date().addingTimeInterval(jittered)
                try? await io.run { () throws(OutboxFileError) in
                    try outbox.fail(delivery, error: error.message, retryAt: retryAt)
                }
            } catch {
                if loggedWriteError != "\(error)" {
                    logger.error("the outbox cannot be written", metadata: ["error": "\(error)"])
                    loggedWriteError = "\(error)"
                }
                await wakeup.wait(seconds: 5)
            }
            progress.advance()
        }
    }

    /// Seconds until the next try after a failed one (`attempts` failed before it): doubling from `initialBackoff`
    /// for a retryable failure, `maxBackoff` for another; jittered down by up to 20 %, so never above `maxBackoff`.
    func retryDelay(attempts: Int, retryable: Bool) -> Double {
        let delay = retryable ? min(maxBackoff, initialBackoff * pow(2, Double(min(attempts, 20)))) : maxBackoff
        return delay * Double.random(in: 0.8...1.0)
    }

    /// The deliveries of `sink` from `head` on that can go together in one batch now: in order, due, their events
    /// there and not waiting for a snapshot, within the batch's bounds. The first that cannot ends it (it goes on
    /// its own, in turn).
    private func batch(
        from head: PendingDelivery, of sink: String, _ batching: StoredEventBatching
    ) throws(OutboxFileError) -> [(delivery: PendingDelivery, event: StoredEvent)] {
        guard head.part == .message else { return [] }
        var batch: [(delivery: PendingDelivery, event: StoredEvent)] = []
        var bytes: Int64 = 0
        let now = Date()
        for next in try outbox.heads(of: sink, limit: batching.maxEvents) {
            let delivery = next.delivery
            guard delivery.part == .message, !batch.isEmpty || delivery.sequence == head.sequence else { break }
            let wait = delivery.notBefore.timeIntervalSince(now)
            if wait > 0 && wait <= maxBackoff * 1.2 { break }
            // The snapshot goes as base64: 4 bytes for every 3.
            let size = next.messageBytes + (next.snapshotBytes + 2) / 3 * 4
            if !batch.isEmpty && bytes + size > batching.maxBytes { break }
            guard let event = try outbox.event(delivery.sequence), event.snapshotPendingSince == nil else { break }
            batch.append((delivery, event))
            bytes += size
        }
        return batch
    }

    /// Sends `batch` as one and, once the sink took it, marks every delivery of it done (one write).
    private func deliver(
        _ batch: [(delivery: PendingDelivery, event: StoredEvent)], to sink: any StoredEventSink
    ) async throws {
        var items: [(event: StoredEvent, message: JSONValue)] = []
        items.reserveCapacity(batch.count)
        for item in batch { items.append((item.event, try assemble(item.event))) }
        try await sink.deliver(batch: items)
        let outbox = self.outbox
        let deliveries = batch.map(\.delivery)
        try await io.run { () throws(OutboxFileError) in
            try outbox.complete(deliveries)
        }
    }

    private enum Outcome { case done, waiting }

    /// Marks a delivery done on ``io`` (a committed write: an fsync), not on the cooperative pool.
    private func completed(_ delivery: PendingDelivery, storedObject: JSONValue? = nil) async throws(OutboxFileError) {
        let outbox = self.outbox
        try await io.run { () throws(OutboxFileError) in
            try outbox.complete(delivery, storedObject: storedObject)
        }
    }

    private func attempt(_ delivery: PendingDelivery, sink: ConnectedSink) async throws -> Outcome {
        guard let event = try outbox.event(delivery.sequence) else {
            try await completed(delivery)
            return .done
        }
        if let since = event.snapshotPendingSince, delivery.part != .clip {
            // Its snapshot is being written (in a moment): whatever carries or names it waits. One that never comes
            // (the runtime worker that wrote it ended) fails, rather than hold every later event of the sink.
            guard Date().timeIntervalSince(since) > snapshotTimeout else { return .waiting }
            let outbox = self.outbox
            let error = "the snapshot was not written within \(Int(snapshotTimeout)) s"
            try await io.run { () throws(OutboxFileError) in
                try outbox.setSnapshot(sequence: event.sequence, file: nil, error: error)
            }
            for w in wakeups.values { w.signal() }
            return .waiting
        }
        switch (sink, delivery.part) {
        case (.objects(let store), .snapshot), (.objects(let store), .clip):
            let file: String?
            if delivery.part == .snapshot {
                file = event.snapshotFile
            } else {
                if event.clipState == .pending { return .waiting }
                file = event.clipState == .ready ? event.clipFile : nil
            }
            guard let file else {
                try await completed(delivery)
                return .done
            }
            guard FileManager.default.fileExists(atPath: file) else {
                // Deleted by hand or by a full disk's cleanup: say so in the message rather than block the sink.
                try await completed(delivery, storedObject: .object(["error": .string("the file \(file) is gone")]))
                return .done
            }
            let stored = try await store.store(
                file: URL(fileURLWithPath: file), event: event.message, part: delivery.part)
            try await completed(delivery, storedObject: stored)
            return .done
        case (.clips(let clips), _):
            if event.clipState == .pending { return .waiting }
            guard event.clipState == .ready, let file = event.clipFile, FileManager.default.fileExists(atPath: file)
            else {
                // Not cut, or deleted since (a full disk's cleanup): the event's message says so; nothing to send.
                try await completed(delivery)
                return .done
            }
            try await clips.deliver(clip: URL(fileURLWithPath: file), of: event)
            try await completed(delivery)
            return .done
        case (.messages(let messages), _):
            if event.clipState == .pending { return .waiting }
            // Waits for the object stores' uploads, which its message names (not for a clip-only sink's).
            if try outbox.hasPendingObjects(delivery.sequence, ignoring: clipOnlySinks) { return .waiting }
            let message = try assemble(event)
            try await messages.send(Array(message.jsonText.utf8), event: message)
            try await completed(delivery)
            return .done
        case (.stored(let sink), _):
            // The local record and the control plane carry the event's own files: they do not wait for an object
            // store (which may be down for hours) nor for a clip.
            try await sink.deliver(event, message: try assemble(event))
            try await completed(delivery)
            return .done
        case (.objects, .message):
            try await completed(delivery)
            return .done
        }
    }

    /// The message with the objects stored for it: `snapshot` and `clip` from the first object sink that has them.
    private func assemble(_ event: StoredEvent) throws(OutboxFileError) -> JSONValue {
        guard case .object(var o) = event.message else { return event.message }
        let objects = try outbox.objects(event.sequence)
        for part in ["snapshot", "clip"] {
            for sink in event.objectSinks {
                if let found = objects.first(where: { $0.part == part && $0.sink == sink }) {
                    var value = found.object
                    if case .object(var fields) = value {
                        fields["sink"] = .string(sink)
                        value = .object(fields)
                    }
                    if part == "clip", case .object(let existing)? = o["clip"], existing["error"] != nil { break }
                    o[part] = value
                    break
                }
            }
        }
        return .object(o)
    }

    static func format(_ date: Date) -> String {
        date.iso8601Text
    }
}

/// A pipeline that cannot be made (a sink's settings are wrong), worded for the user.
public struct OutputsError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension OutputsConfiguration.PayloadCondition {
    /// Whether the payload satisfies this condition.
    func holds(for payload: JSONValue) -> Bool {
        let actual = payload[path]
        let expected = JSONValue(parsing: value) ?? .null
        switch op {
        case .exists: return (actual != nil) == (expected != .bool(false))
        case .equal: return actual == expected
        case .notEqual: return actual != expected
        case .oneOf:
            guard case .array(let options) = expected, let actual else { return false }
            return options.contains(actual)
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard let a = actual?.numberValue, let b = expected.numberValue else { return false }
            switch op {
            case .less: return a < b
            case .lessOrEqual: return a <= b
            case .greater: return a > b
            default: return a >= b
            }
        }
    }
}

/// A count of events (here: delivery attempts ended) that tasks wait on: `wait(after:upTo:)` returns once the count
/// passed what the waiter saw, or at its time limit.
final class Progress: Sendable {
    private let state = Mutex<(generation: Int, waiters: [AsyncLatch])>((0, []))

    var generation: Int { state.withLock { $0.generation } }

    func advance() {
        let waiters = state.withLock { s -> [AsyncLatch] in
            s.generation += 1
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.set() }
    }

    /// Waits until the count differs from `seen`, or `limit` passed.
    func wait(after seen: Int, upTo limit: Duration) async {
        guard limit > .zero else { return }
        let latch = AsyncLatch()
        let passed = state.withLock { s -> Bool in
            if s.generation != seen { return true }
            s.waiters.append(latch)
            return false
        }
        if !passed { _ = await latch.wait(upTo: limit) }
    }
}

/// Wakes a waiting worker early (new work, a clip finished, stop); otherwise it sleeps its timeout out.
final class Wakeup: Sendable {
    private let state = Mutex<(pending: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at the next signal, or after `seconds`, or at once when a signal came since the last wait.
    func wait(seconds: Double) async {
        let timer = Task { [self] in
            guard (try? await Task.sleep(for: .seconds(max(0.001, seconds)))) != nil else { return }
            signal()
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.pending || Task.isCancelled {
                    s.pending = false
                    return true
                }
                s.waiter = c
                return false
            }
            if resumeNow { c.resume() }
        }
        timer.cancel()
        state.withLock { $0.pending = false }
    }
}
