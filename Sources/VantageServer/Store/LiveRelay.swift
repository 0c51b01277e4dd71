import Foundation
import NIOCore
import Synchronization
import VantageAPI

/// The live view of running instances, relayed through the control plane: devices have no inbound port, so a
/// watcher here asks the instance's device (through its desired state, ``DeviceDesiredState/live``) to send its
/// annotated frames over the device's own mutual-TLS link; this relay keeps the latest frame of each stream and
/// hands it to every watcher.
///
/// Nothing is encoded, sent or kept for an instance nobody watches: the first watcher of an instance puts it in its
/// device's desired state (a long-polling device hears at once), ``linger`` after the last one left it is taken
/// out again, and frames of an instance nobody watches are refused (the device stops at its next desired state). Each watcher gets the
/// newest frame there is when it is ready for one, so a slow watcher skips frames and never slows the device or the
/// other watchers. State is in memory, per server process: behind several replicas, a device's frames and its
/// watchers must reach the same one (docs/console.md).
public final class LiveRelay: Sendable {
    /// One relayed frame of one stream.
    public struct Frame: Sendable {
        public var stream: String
        /// Counts up from 1 per instance, over all its streams.
        public var sequence: UInt64
        public var jpeg: ByteBuffer
        /// When the device encoded it (its clock, Unix seconds), if it said; for measuring the relay's delay.
        public var encodedAt: Double?
        public var receivedAt: ContinuousClock.Instant
    }

    /// The frame rate devices relay at, per stream, and the most a watcher gets.
    public let framesPerSecond: Double
    /// How long an instance stays watched after its last watcher left: a page reloaded, or the grid's next
    /// request, does not make the device stop and start again.
    public let linger: Duration

    private struct Instance {
        /// The device the instance runs on: only it may send the instance's frames.
        var device: String
        var watchers = 0
        var sequence: UInt64 = 0
        var latest: [String: Frame] = [:]
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Set when the last watcher left: the instance is forgotten `linger` later unless watched again.
        var idleSince: ContinuousClock.Instant?
    }

    private let state = Mutex<(instances: [String: Instance], nextWaiter: UInt64)>(([:], 0))

    public init(framesPerSecond: Double = 5, linger: Duration = .seconds(10)) {
        self.framesPerSecond = framesPerSecond
        self.linger = linger
    }

    /// Starts watching `instance`; `end()` on the answer stops. The first watcher of an instance signals
    /// `changes`, so its device's long poll answers with the instance in ``DeviceDesiredState/live``.
    public func watch(_ instance: String, device: String, changes: ChangeSignal) -> Watch {
        let first = state.withLock { state in
            let known = state.instances[instance] != nil
            state.instances[instance, default: Instance(device: device)].watchers += 1
            state.instances[instance]?.device = device
            state.instances[instance]?.idleSince = nil
            return !known
        }
        if first { changes.signal() }
        return Watch(relay: self, instance: instance, changes: changes)
    }

    /// A watcher's hold on an instance's frames.
    public final class Watch: Sendable {
        let relay: LiveRelay
        public let instance: String
        let changes: ChangeSignal
        private let ended = Atomic(false)

        init(relay: LiveRelay, instance: String, changes: ChangeSignal) {
            self.relay = relay
            self.instance = instance
            self.changes = changes
        }

        /// The first frame of `stream` (any stream when nil) newer than `sequence`, waiting up to `timeout`; nil
        /// when none came in time or the task was cancelled.
        public func next(stream: String?, after sequence: UInt64, timeout: Duration) async -> Frame? {
            await relay.next(instance, stream: stream, after: sequence, timeout: timeout)
        }

        /// Stops watching (once; later calls do nothing). The last watcher's end takes the instance out of its
        /// device's desired state and drops its frames.
        public func end() {
            guard !ended.exchange(true, ordering: .relaxed) else { return }
            let (relay, instance, changes) = (self.relay, self.instance, self.changes)
            let idle = relay.state.withLock { state -> ContinuousClock.Instant? in
                guard var entry = state.instances[instance] else { return nil }
                entry.watchers -= 1
                if entry.watchers <= 0 { entry.idleSince = .now }
                state.instances[instance] = entry
                return entry.idleSince
            }
            guard let idle else { return }
            Task {
                try? await Task.sleep(for: relay.linger)
                relay.forget(instance, idleSince: idle, changes: changes)
            }
        }

        deinit { end() }
    }

    /// The last watcher of `instance` left at `idleSince` and nobody came since: forget it (its device stops).
    func forget(_ instance: String, idleSince: ContinuousClock.Instant, changes: ChangeSignal) {
        let forgotten = state.withLock { state -> Bool in
            guard let entry = state.instances[instance], entry.watchers <= 0, entry.idleSince == idleSince else {
                return false
            }
            state.instances[instance] = nil
            for waiter in entry.waiters.values { waiter.resume() }
            return true
        }
        if forgotten { changes.signal() }
    }

    /// The instances among `ids` that someone watches (or did a moment ago), sorted: what a device's desired
    /// state lists.
    public func watched(among ids: [String]) -> [String] {
        state.withLock { state in ids.filter { state.instances[$0] != nil }.sorted() }
    }

    /// The streams of `instance` that sent a frame since someone started watching it, sorted.
    public func streams(of instance: String) -> [String] {
        state.withLock { $0.instances[instance]?.latest.keys.sorted() ?? [] }
    }

    /// What became of a device's frame.
    public enum Published: Sendable, Equatable {
        case published
        /// Nobody watches the instance: the device should stop sending.
        case notWatched
        /// The instance runs on another device.
        case wrongDevice
    }

    /// `device`'s frame of `instance`'s `stream`: kept as the latest and handed to the waiting watchers. Nothing is
    /// kept when nobody watches the instance, or when the instance is another device's.
    public func publish(
        _ instance: String, device: String, stream: String, jpeg: ByteBuffer, encodedAt: Double? = nil
    ) -> Published {
        var outcome = Published.published
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>]? in
            guard var entry = state.instances[instance] else {
                outcome = .notWatched
                return nil
            }
            guard entry.device == device else {
                outcome = .wrongDevice
                return nil
            }
            entry.sequence += 1
            entry.latest[stream] = Frame(
                stream: stream, sequence: entry.sequence, jpeg: jpeg, encodedAt: encodedAt, receivedAt: .now)
            let waiters = Array(entry.waiters.values)
            entry.waiters.removeAll(keepingCapacity: true)
            state.instances[instance] = entry
            return waiters
        }
        for waiter in waiters ?? [] { waiter.resume() }
        return outcome
    }

    private func newest(_ instance: String, stream: String?, after sequence: UInt64) -> Frame? {
        state.withLock { state in state.instances[instance].flatMap { Self.newest(in: $0, stream, after: sequence) } }
    }

    private static func newest(in entry: Instance, _ stream: String?, after sequence: UInt64) -> Frame? {
        let candidates = stream.map { entry.latest[$0].map { [$0] } ?? [] } ?? Array(entry.latest.values)
        return candidates.filter { $0.sequence > sequence }.max { $0.sequence < $1.sequence }
    }

    func next(_ instance: String, stream: String?, after sequence: UInt64, timeout: Duration) async -> Frame? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let frame = newest(instance, stream: stream, after: sequence) { return frame }
            if state.withLock({ $0.instances[instance] == nil }) { return nil }  // the last watcher left
            let remaining = deadline - .now
            guard remaining > .zero, !Task.isCancelled else { return nil }
            await wait(instance, stream: stream, after: sequence, upTo: remaining)
        }
    }

    /// Returns at the instance's next frame, after `timeout`, at cancellation, or when its last watcher leaves.
    private func wait(_ instance: String, stream: String?, after sequence: UInt64, upTo timeout: Duration) async {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let registered = self.state.withLock { state -> Bool in
                            // A frame that came since the caller looked ends the wait at once.
                            guard !Task.isCancelled, let entry = state.instances[instance],
                                Self.newest(in: entry, stream, after: sequence) == nil
                            else { return false }
                            state.instances[instance]?.waiters[id] = continuation
                            return true
                        }
                        if !registered { continuation.resume() }
                    }
                } onCancel: {
                    self.wake(instance, id)
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
            wake(instance, id)
            await group.waitForAll()
        }
    }

    private func wake(_ instance: String, _ id: UInt64) {
        state.withLock { $0.instances[instance]?.waiters.removeValue(forKey: id) }?.resume()
    }

    // MARK: Camera signals

    private struct PendingSignal {
        var signal: CameraSignal
        var device: String
        var result: CameraSignalResult?
        var waiter: CheckedContinuation<CameraSignalResult?, Never>?
    }

    private let signals = Mutex<[String: PendingSignal]>([:])

    /// Asks `device` to pause or resume a camera node of one of its instances (through its desired state) and waits
    /// up to `timeout` for it to say how it went; nil when it did not answer in time (the request is then dropped:
    /// a device that comes back later does not act on it).
    public func send(
        _ signal: CameraSignal, device: String, changes: ChangeSignal, timeout: Duration
    ) async -> CameraSignalResult? {
        signals.withLock { $0[signal.id] = PendingSignal(signal: signal, device: device) }
        changes.signal()
        defer {
            signals.withLock { _ = $0.removeValue(forKey: signal.id) }
            changes.signal()
        }
        return await withTaskGroup(of: CameraSignalResult?.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<CameraSignalResult?, Never>) in
                        let done = self.signals.withLock { pending -> CameraSignalResult?? in
                            guard !Task.isCancelled, pending[signal.id] != nil else { return .some(nil) }
                            if let result = pending[signal.id]?.result { return .some(result) }
                            pending[signal.id]?.waiter = continuation
                            return .none
                        }
                        if let done { continuation.resume(returning: done) }
                    }
                } onCancel: {
                    self.signals.withLock { pending -> CheckedContinuation<CameraSignalResult?, Never>? in
                        defer { pending[signal.id]?.waiter = nil }
                        return pending[signal.id]?.waiter
                    }?.resume(returning: nil)
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// The signals waiting for `device`, oldest first by id.
    public func pendingSignals(device: String) -> [CameraSignal] {
        signals.withLock { pending in
            pending.values.filter { $0.device == device && $0.result == nil }.map(\.signal).sorted { $0.id < $1.id }
        }
    }

    /// `device` carried out signal `id`; false when no such signal waits for it (answered late, or another device's).
    public func finish(_ id: String, device: String, result: CameraSignalResult) -> Bool {
        let (known, waiter) = signals.withLock { pending -> (Bool, CheckedContinuation<CameraSignalResult?, Never>?) in
            guard pending[id]?.device == device else { return (false, nil) }
            pending[id]?.result = result
            defer { pending[id]?.waiter = nil }
            return (true, pending[id]?.waiter)
        }
        waiter?.resume(returning: result)
        return known
    }
}
