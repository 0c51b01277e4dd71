import Foundation
import Logging
import Synchronization
import VantageAPI
import VantageCore
import VantageOutputs

/// The agent's event pipelines, one per application instance: the instance's one durable outbox
/// (`<data>/outbox/<instance id>.sqlite`, bounded by `--outbox-mb`), its configured sinks (MQTT, S3, webhooks) and the
/// built-in control-plane sink. A runtime records each event here once (in process, or over a runtime worker's
/// channel); every sink delivers it from here. The pipelines live in the agent, not in the runtime, so that a
/// crashed worker loses nothing and a removed instance's last events still go out: a released pipeline keeps
/// delivering until its outbox is empty, then its file is deleted. The agent also deletes old snapshots and clips
/// here (by the instance's `outputs.events` retention), sparing those its outbox still has to deliver.
public final class InstanceEvents: Sendable {
    /// `<data>/outbox`.
    public let folder: URL
    /// Each instance's outbox bound.
    public let limitBytes: Int64
    /// Sends events to the control plane (the device link), answering once they are stored there.
    let send: @Sendable ([NewEvent]) async throws -> Void
    /// Uploads an event's clip to the control plane (the device link): the device's event id and the MP4 file. Nil:
    /// no clips go there (nor are cut for it).
    let uploadClip: (@Sendable (String, URL) async throws -> Void)?
    /// The device's id: names it in messages when an instance does not say its name.
    let device: String
    /// The longest pause, in seconds, between a sink's retries (`--max-backoff-seconds`).
    let maxBackoff: Double
    let logger: Logger

    private struct Entry {
        var pipeline: EventPipeline
        /// The instance stopped: deliver what is left, then close and delete the outbox.
        var released: Bool
        var media: [URL]
        var retention: OutputsConfiguration.LocalEvents
        /// Opened at start by ``resumeLeftovers(installedIn:)``, not by its instance: while the instance's folder is
        /// still installed (its worker may be starting), its outbox is kept even when empty, so that the instance
        /// goes on with it and its event sequence goes on from where it was (the server orders by it).
        var installedFolder: URL?
    }

    private let entries = Mutex<[String: Entry]>([:])
    /// The counters of outboxes closed and deleted (their instances removed and drained), and the events no outbox
    /// could store because the disk was full, kept in `<folder>/retired.json` so that the device's totals never go
    /// down, not even at a restart.
    private let retired = Mutex(RetiredOutboxes())
    /// When `retired.json` was last written, whether `retired` changed since, and whether the last write failed
    /// (said once): a disk filling up counts unstored events at the runtime's pace, but the file is written at most
    /// once a second (each write is an fsync).
    private let saved = Mutex<(at: ContinuousClock.Instant?, dirty: Bool, failing: Bool)>((nil, false, false))
    /// Held while `retired.json` is written: one write at a time, of the latest counts.
    private let writing = Mutex(())

    public init(
        folder: URL, limitBytes: Int64, device: String, logger: Logger, maxBackoff: Double = 60,
        send: @escaping @Sendable ([NewEvent]) async throws -> Void,
        uploadClip: (@Sendable (String, URL) async throws -> Void)? = nil
    ) {
        self.folder = folder
        self.uploadClip = uploadClip
        self.limitBytes = limitBytes
        self.device = device
        self.maxBackoff = maxBackoff
        self.logger = logger
        self.send = send
        retired.withLock { $0 = RetiredOutboxes.read(in: folder) }
    }

    /// The device's totals as the files in `folder` hold them (for tests and tools, while an agent runs or not):
    /// every instance's outbox and the retired ones. Reads only: the outboxes are opened read-only (opening one as
    /// an outbox would recover it under the runtime still writing it), and one deleted meanwhile is skipped.
    public static func totals(in folder: URL) throws -> OutboxCounters {
        var sum = RetiredOutboxes.read(in: folder).outbox
        for file in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        where file.hasSuffix(".sqlite") {
            let path = folder.appending(path: file).path
            do {
                sum = sum + (try SinkOutbox.counters(ofFileAt: path))
            } catch {
                // Deleted since it was listed: its instance retired meanwhile.
                if !FileManager.default.fileExists(atPath: path) { continue }
                throw error
            }
        }
        return sum
    }

    /// The outbox file of an instance.
    public func outboxFile(of instance: String) -> URL { folder.appending(path: "\(instance).sqlite") }

    /// What the control-plane sink needs to name an instance's events, kept beside its outbox so that a released
    /// instance's leftovers can still be sent after a restart.
    struct Sidecar: Codable {
        var instanceId: String
        var device: String
        var name: String
        var application: String
        /// Camera node -> camera id.
        var cameraIds: [String: String]
    }

    /// Opens (or reopens, with new outputs) the pipeline of `instance` and starts its sinks. `outputs` are the
    /// instance's merged outputs (the manifest's and the desired state's); `media` its snapshot and clip folders.
    public func open(
        _ instance: DesiredInstance, application: String, outputs: OutputsConfiguration, media: [URL]
    ) async throws -> EventPipeline {
        await close(instance.id)
        let sidecar = Sidecar(
            instanceId: instance.id, device: instance.deviceName ?? device, name: instance.name,
            application: application,
            cameraIds: instance.cameras.mapValues(\.cameraId))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try AtomicFile.write(
            try JSONEncoder().encode(sidecar), to: folder.appending(path: "\(instance.id).json"), permissions: 0o600)
        let pipeline = try EventPipeline.open(
            configuration: outputs,
            context: EventContext(device: sidecar.device, instance: instance.name, application: application),
            outboxPath: outboxFile(of: instance.id).path, limitBytes: limitBytes,
            builtIn: builtInSinks(sidecar), logger: logger,
            maxBackoff: maxBackoff)
        pipeline.start()
        entries.withLock {
            $0[instance.id] = Entry(pipeline: pipeline, released: false, media: media, retention: outputs.events)
        }
        return pipeline
    }

    /// The control plane's sinks of an instance: its events, and (when the agent uploads them) their clips.
    func builtInSinks(_ sidecar: Sidecar) -> [String: ConnectedSink] {
        var sinks: [String: ConnectedSink] = [ControlPlaneSink.name: .stored(ControlPlaneSink(sidecar, send: send))]
        if let uploadClip { sinks[ControlPlaneClipSink.name] = .clips(ControlPlaneClipSink(upload: uploadClip)) }
        return sinks
    }

    /// The instance stopped: its pipeline delivers what is left and then goes (see ``sweep()``).
    public func release(_ instanceID: String) {
        entries.withLock { $0[instanceID]?.released = true }
    }

    /// Opens the outboxes left by instances that are not running (removed before a restart, or still starting) so
    /// that their events still reach the control plane. Their own sinks' settings are gone with the instance: those
    /// deliveries wait. One whose instance is still installed in `instances` (`<folder>/<id>`: its worker may be
    /// starting) is not retired when empty, so the instance goes on with the same outbox and sequence.
    public func resumeLeftovers(installedIn instances: URL? = nil) async {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for file in files where file.hasSuffix(".json") {
            let id = String(file.dropLast(5))
            guard entries.withLock({ $0[id] == nil }),
                let data = try? Data(contentsOf: folder.appending(path: file)),
                let sidecar = try? JSONDecoder().decode(Sidecar.self, from: data)
            else { continue }
            do {
                let pipeline = try EventPipeline.open(
                    configuration: OutputsConfiguration(),
                    context: EventContext(
                        device: sidecar.device, instance: sidecar.name, application: sidecar.application),
                    outboxPath: outboxFile(of: id).path, limitBytes: limitBytes,
                    builtIn: builtInSinks(sidecar), logger: logger,
                    maxBackoff: maxBackoff)
                pipeline.start()
                entries.withLock {
                    $0[id] = Entry(
                        pipeline: pipeline, released: true, media: [], retention: .init(),
                        installedFolder: instances?.appending(path: id))
                }
            } catch {
                logger.error(
                    "the outbox of a removed instance cannot be opened: \(error)", metadata: ["instance.id": "\(id)"])
            }
        }
    }

    /// Every minute: deletes old media (sparing what the outboxes still need), and closes and deletes the outboxes
    /// of released instances once the control plane took everything.
    public func run() async {
        var pass = 0
        let clock = WallClockWatch()
        while !Task.isCancelledOrShuttingDown {
            // A jump of the wall clock moves the media's times with it (their ages stay right), and they are swept
            // at once, by the clock as it is now (the same look `vantage run`'s retention loop takes).
            let media = entries.withLock { $0.values.flatMap(\.media) }
            let jump = MediaRetention(directories: media, maxAge: nil, maxBytes: nil).followWallClock(clock)
            if let jump {
                logger.warning(
                    "\(jump)",
                    metadata: [
                        "clock.jump_seconds": "\(Int(jump.seconds.rounded()))", "media.files": "\(jump.movedFiles)",
                    ])
            }
            // Drained outboxes go within 5 s; media is swept every minute (it lists the snapshot folders).
            await sweep(media: pass % 12 == 0 || jump != nil)
            pass += 1
            try? await Task.sleep(for: .seconds(5))
        }
    }

    /// One pass of ``run()``.
    func sweep(media: Bool = true) async {
        // Unstored events counted since the last write (within its second) are saved now.
        if saved.withLock({ $0.dirty }) { saveRetired() }
        for (id, entry) in entries.withLock({ $0 }) {
            let installed = entry.installedFolder.map { FileManager.default.fileExists(atPath: $0.path) } ?? false
            if entry.released, !installed, entry.pipeline.outbox.counters.pendingEvents == 0 {
                // Removed, counted and its files deleted in one step under the lock, and only if it is still this
                // pipeline: the instance may have started again meanwhile, with a new one on the same file.
                let retiredNow = entries.withLock { entries -> Bool in
                    guard let current = entries[id], current.pipeline === entry.pipeline else { return false }
                    entries[id] = nil
                    for suffix in [".sqlite", ".sqlite-wal", ".sqlite-shm", ".json"] {
                        try? FileManager.default.removeItem(at: folder.appending(path: "\(id)\(suffix)"))
                    }
                    retired.withLock { retired in
                        retired.outbox = retired.outbox + entry.pipeline.outbox.counters
                        retired.outbox.pendingEvents = 0
                        retired.outbox.pendingBytes = 0
                        retired.rejectedEvents += entry.pipeline.deliveryCounters[ControlPlaneSink.name]?.rejected ?? 0
                    }
                    saved.withLock { $0.dirty = true }
                    return true
                }
                guard retiredNow else { continue }
                saveRetired()
                await entry.pipeline.stop()
                continue
            }
            guard media, !entry.media.isEmpty else { continue }
            let retention = MediaRetention(
                directories: entry.media, maxAge: entry.retention.maxAge, maxBytes: entry.retention.maxBytes)
            let inUse = (try? entry.pipeline.outbox.filesInUse()) ?? []
            _ = retention.sweep(inUse: inUse)
        }
    }

    /// On a full disk, images go first: deletes the oldest snapshots and clips no outbox needs any more (oldest
    /// first, as retention does), then takes the snapshots off the oldest pending events (each counted in
    /// `outbox.dropped_snapshots`, their messages say so) and deletes them, until `needed` bytes are freed. Answers
    /// the bytes freed.
    func makeRoom(_ needed: Int64) -> Int64 {
        var freed: Int64 = 0
        let live = entries.withLock { Array($0.values) }
        for entry in live where freed < needed && !entry.media.isEmpty {
            let inUse = (try? entry.pipeline.outbox.filesInUse()) ?? []
            // Files only: a sweep without limits deletes nothing and says what there is.
            let held = MediaRetention(directories: entry.media, maxAge: nil, maxBytes: nil).sweep(inUse: inUse)
            let keep = max(0, held.keptBytes - (needed - freed))
            freed +=
                MediaRetention(directories: entry.media, maxAge: nil, maxBytes: keep).sweep(inUse: inUse).deletedBytes
        }
        for entry in live where freed < needed {
            do {
                for file in try entry.pipeline.outbox.dropSnapshots(freeing: needed - freed) {
                    freed += DataVolume.size(of: file)
                    try? FileManager.default.removeItem(atPath: file)
                }
            } catch {
                logger.debug("no snapshot could be dropped from an outbox: \(error)")
            }
        }
        return freed
    }

    private func close(_ id: String) async {
        guard let entry = entries.withLock({ $0.removeValue(forKey: id) }) else { return }
        await entry.pipeline.stop()
    }

    /// Stops every pipeline; what is not delivered stays in the outboxes for the next start.
    public func stopAll() async {
        for id in entries.withLock({ Array($0.keys) }) { await close(id) }
        if saved.withLock({ $0.dirty }) { saveRetired() }
    }

    /// Events the outboxes could not store because the disk was full: a running total, kept across restarts.
    public var unstoredEvents: Int64 { retired.withLock { $0.unstoredEvents } }

    /// `pipeline` as its runtime records into it: an event refused for a full disk is counted
    /// (``unstoredEvents``) before the application is told.
    func counting(_ pipeline: EventPipeline) -> any EventRecorder {
        DiskFullCounting(pipeline: pipeline, unstored: { self.countUnstored() })
    }

    /// One more event a full disk kept out: counted at once, saved at once unless the file was written within the
    /// last second (then by the next count after it, or by ``sweep(media:)`` or ``stopAll()``).
    func countUnstored() {
        retired.withLock { $0.unstoredEvents += 1 }
        let now = ContinuousClock.now
        let due = saved.withLock { saved -> Bool in
            saved.dirty = true
            guard let at = saved.at else { return true }
            return now - at >= .seconds(1)
        }
        if due { saveRetired() }
    }

    /// Writes `retired.json` with the counts as they are now. A failed write (the disk is full, after all) is tried
    /// again by the next count or sweep.
    private func saveRetired() {
        writing.withLock { _ in
            let counts = saved.withLock { saved in
                saved.dirty = false
                saved.at = ContinuousClock.now
                return retired.withLock { $0 }
            }
            do {
                try counts.write(in: folder)
                saved.withLock { $0.failing = false }
            } catch {
                let first = saved.withLock { saved in
                    saved.dirty = true
                    defer { saved.failing = true }
                    return !saved.failing
                }
                if first {
                    logger.error(
                        "the outbox counts cannot be saved (tried again every few seconds): \(error)",
                        metadata: ["file": "\(folder.appending(path: RetiredOutboxes.fileName).path)"])
                }
            }
        }
    }

    /// Every outbox's counters, summed, and the events the control plane refused for good.
    public func counters() -> (outbox: OutboxCounters, rejected: Int) {
        // Under the entries' lock, as a retiring outbox moves from them to `retired`: counted once, never twice.
        let (past, live) = entries.withLock { entries in (retired.withLock { $0 }, Array(entries.values)) }
        var sum = past.outbox
        var rejected = past.rejectedEvents
        for entry in live {
            sum = sum + entry.pipeline.outbox.counters
            rejected += entry.pipeline.deliveryCounters[ControlPlaneSink.name]?.rejected ?? 0
        }
        return (sum, rejected)
    }
}

/// The built-in sink of the control plane: the event as the API takes it (`NewEvent`, the snapshot inside as base64),
/// sent over the device link. The server stores an event once per id, so one sent again after a lost answer is not
/// duplicated. An event the server refuses (4xx, say about a camera moved to another device meanwhile) is dropped
/// and counted rather than retried for ever. A backlog (after an outage) goes in batches of up to
/// ``batching``'s events per request, which the server stores all or none of; a refused batch is sent again one
/// event at a time by the pipeline, so that only the refused event is dropped.
struct ControlPlaneSink: StoredEventSink {
    static let name = "@control-plane"
    /// Up to 100 events per request, and about 2 MiB (the snapshots are inside, as base64): the server takes 1,000
    /// and 64 MiB, but a request must go through within the link's 30 s timeout on a slow uplink (2 MiB: 17 s at
    /// 1 Mbit/s), and a smaller one is quicker to send again when the link drops mid-way.
    static let batchLimit = StoredEventBatching(maxEvents: 100, maxBytes: 2 << 20)
    let instanceID: String
    let cameraIDs: [String: String]
    let send: @Sendable ([NewEvent]) async throws -> Void

    init(_ sidecar: InstanceEvents.Sidecar, send: @escaping @Sendable ([NewEvent]) async throws -> Void) {
        instanceID = sidecar.instanceId
        cameraIDs = sidecar.cameraIds
        self.send = send
    }

    func deliver(_ event: StoredEvent, message: JSONValue) async throws(SinkError) {
        let new = newEvent(event, message: message)
        try await post([new], what: "the event")
    }

    var batching: StoredEventBatching? { Self.batchLimit }

    func deliver(batch: [(event: StoredEvent, message: JSONValue)]) async throws(SinkError) {
        let events = batch.map { newEvent($0.event, message: $0.message) }
        try await post(events, what: "a batch of \(events.count) events")
    }

    /// Sends `events` in one request. A 4xx refuses them for good (`discard`), except 408 and 429, which say to
    /// try again later.
    private func post(_ events: [NewEvent], what: String) async throws(SinkError) {
        do {
            try await send(events)
        } catch LinkError.rejected(let status, let reason) where status != 408 && status != 429 {
            throw SinkError(sink: Self.name, "the server rejected \(what) (\(status)): \(reason)", discard: true)
        } catch {
            throw SinkError(sink: Self.name, "\(error)")
        }
    }

    /// The event named for the control plane: the camera id of its stream (or the instance's only camera), and its
    /// type (an application's event without a `"type"` is named after its code node).
    func newEvent(_ event: StoredEvent, message: JSONValue) -> NewEvent {
        var type = message["type"]?.stringValue ?? "app"
        let source = message["source"]?.stringValue ?? ""
        if type == "app", source.hasPrefix("node:") { type = String(source.dropFirst(5)) }
        // A stream is named after its camera node, with `[i]` for the i-th stream of a multi-stream node.
        let node = message["camera"]?.stringValue.map { String($0.prefix { $0 != "[" }) }
        let cameraId = node.flatMap { cameraIDs[$0] } ?? (cameraIDs.count == 1 ? cameraIDs.values.first : nil)
        let snapshot = event.snapshotFile.flatMap { FileManager.default.contents(atPath: $0) }
        return NewEvent(
            id: Self.deviceEventID(message), type: type, time: message["time"]?.stringValue.flatMap(APIJSON.parseTime),
            sequence: event.sequence, cameraId: cameraId, instanceId: instanceID, data: message["payload"],
            snapshot: snapshot.map { $0.base64EncodedString() })
    }

    /// The id the control plane keeps an event under (its `deviceEventId`): unique for each event the device
    /// recorded, and the same on every retry, so a resent event is stored once. The phases of one object's event
    /// share their `id` (consumers of MQTT update on it); here each phase is an event of its own, told apart by its
    /// phase and instant: `ID/PHASE/TIME`.
    static func deviceEventID(_ message: JSONValue) -> String? {
        guard let id = message["id"]?.stringValue else { return nil }
        guard let phase = message["phase"]?.stringValue else { return id }
        return "\(id)/\(phase)/\(message["time"]?.stringValue ?? "")"
    }

    func shutdown() async {}
}

/// The control plane's clip uploads: a rule that asks for a clip (`"clip": true`) gets one cut, and once it is, this
/// sink uploads it (MP4, `PUT /api/v1/devices/ID/events/EVENT/clip`), keyed by the device's event id, so an upload
/// sent again is stored once. The event itself went before, by ``ControlPlaneSink``, without waiting for the clip;
/// a clip that reaches the server before its event is answered 409 and retried, like any failed delivery.
struct ControlPlaneClipSink: ClipSink {
    static let name = "@control-plane-clips"
    let upload: @Sendable (String, URL) async throws -> Void

    func deliver(clip file: URL, of event: StoredEvent) async throws(SinkError) {
        // An event without an id cannot be named to the server: there is nothing to attach its clip to.
        guard let id = ControlPlaneSink.deviceEventID(event.message) else { return }
        do {
            try await upload(id, file)
        } catch LinkError.rejected(let status, let reason) where status != 408 && status != 409 && status != 429 {
            throw SinkError(sink: Self.name, "the server rejected the clip (\(status)): \(reason)", discard: true)
        } catch {
            throw SinkError(sink: Self.name, "\(error)")
        }
    }

    func shutdown() async {}
}

/// An instance's pipeline as its runtime records into it, counting the events a full disk kept out.
struct DiskFullCounting: EventRecorder {
    let pipeline: EventPipeline
    let unstored: @Sendable () -> Void

    func record(_ event: OutgoingEvent) throws -> EventPipeline.Recorded {
        do {
            return try pipeline.record(event)
        } catch {
            if isOutOfSpace(error) { unstored() }
            throw error
        }
    }

    func clipFinished(sequence: Int64, file: String?, error: String?) throws {
        try pipeline.clipFinished(sequence: sequence, file: file, error: error)
    }

    func snapshotFinished(sequence: Int64, file: String?, error: String?) throws {
        try pipeline.snapshotFinished(sequence: sequence, file: file, error: error)
    }
}
