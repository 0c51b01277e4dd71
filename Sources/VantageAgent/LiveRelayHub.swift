import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import VantageAPI

/// The agent's side of the live relay: the desired state names the instances someone watches in the console
/// (``DeviceDesiredState/live``); their runtime workers are asked for frames (``SupervisorMessage/live(framesPerSecond:)``)
/// and each frame they send is POSTed to the control plane over the device's mutual-TLS link. The device opens no
/// port: it only calls out, as it does for everything else.
///
/// Bounded: one frame per camera stream waits here (a newer one replaces it), one request is in flight at a time,
/// so a slow link lowers the frame rate and never builds a queue. Nothing is encoded or sent for an instance nobody
/// watches.
public final class LiveRelayHub: Sendable {
    /// The most frames a second a worker encodes per stream for the relay (the server asks for at most this).
    public static let maxFramesPerSecond: Double = 5

    private struct State {
        var watched: Set<String> = []
        var framesPerSecond: Double = LiveRelayHub.maxFramesPerSecond
        /// Running workers' channels, by instance.
        var workers: [String: LineWriter] = [:]
        /// The newest frame of each watched stream not sent yet, by instance and stream.
        var pending: [String: [String: (jpeg: Data, time: Double)]] = [:]
        /// The sender, waiting for a frame.
        var waiter: CheckedContinuation<Void, Never>?
        var sent = 0
        var refused = 0
        /// Camera signals already passed on (by id), until they leave the desired state.
        var handledSignals: Set<String> = []
        var link: DeviceLink?
    }

    private let state = Mutex(State())
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// Frames sent and refused since the agent started (heartbeat figures `live.frames_sent`, `live.frames_refused`).
    public var counts: (sent: Int, refused: Int) { state.withLock { ($0.sent, $0.refused) } }

    /// The instances watched now, sorted.
    public var watched: [String] { state.withLock { $0.watched.sorted() } }

    /// The desired state's request (nil: nobody watches anything).
    public func update(_ request: LiveRequest?) {
        let wanted = Set(request?.instances ?? [])
        let fps = min(Self.maxFramesPerSecond, max(0.2, request?.framesPerSecond ?? Self.maxFramesPerSecond))
        let messages = state.withLock { state -> [(LineWriter, Double?)] in
            let rateChanged = fps != state.framesPerSecond
            var messages: [(LineWriter, Double?)] = []
            for (instance, writer) in state.workers {
                let was = state.watched.contains(instance)
                let now = wanted.contains(instance)
                if now && (!was || rateChanged) { messages.append((writer, fps)) }
                if was && !now { messages.append((writer, nil)) }
            }
            for instance in state.watched.subtracting(wanted) { state.pending[instance] = nil }
            state.watched = wanted
            state.framesPerSecond = fps
            return messages
        }
        if !wanted.isEmpty || !messages.isEmpty {
            logger.info(
                "live view relay", metadata: ["live.instances": "\(wanted.sorted())", "live.fps": "\(fps)"])
        }
        for (writer, rate) in messages { try? writer.send(SupervisorMessage.live(framesPerSecond: rate)) }
    }

    /// The desired state's camera signals: each new one goes to its instance's worker, whose answer goes back to the
    /// server (``signalDone(_:_:)``); one whose instance has no worker here is answered at once.
    public func apply(signals: [CameraSignal]) {
        let (send, absent) = state.withLock { state -> ([(LineWriter, CameraSignal)], [CameraSignal]) in
            var send: [(LineWriter, CameraSignal)] = []
            var absent: [CameraSignal] = []
            for signal in signals where !state.handledSignals.contains(signal.id) {
                state.handledSignals.insert(signal.id)
                if let writer = state.workers[signal.instanceId] {
                    send.append((writer, signal))
                } else {
                    absent.append(signal)
                }
            }
            state.handledSignals.formIntersection(signals.map(\.id))
            return (send, absent)
        }
        for (writer, signal) in send {
            logger.info(
                "camera signal",
                metadata: [
                    "instance.id": "\(signal.instanceId)", "node": "\(signal.node)",
                    "signal": "\(signal.signal)",
                ])
            try? writer.send(SupervisorMessage.signal(id: signal.id, node: signal.node, signal: signal.signal))
        }
        for signal in absent {
            signalDone(
                signal.id,
                CameraSignalResult(
                    ok: false, message: "instance \(signal.instanceId) is not running on the device now"))
        }
    }

    /// A worker carried out signal `id`: the server hears how it went.
    func signalDone(_ id: String, _ result: CameraSignalResult) {
        guard let link = state.withLock({ $0.link }) else { return }
        let logger = logger
        Task {
            do {
                try await link.finishSignal(id, result)
            } catch {
                logger.warning("could not tell the server how a camera signal went", metadata: ["error": "\(error)"])
            }
        }
    }

    /// A worker runs `instance` (it started, or started again after a crash): it relays if someone watches.
    func workerReady(_ instance: String, writer: LineWriter) {
        let rate = state.withLock { state -> Double? in
            state.workers[instance] = writer
            return state.watched.contains(instance) ? state.framesPerSecond : nil
        }
        if let rate { try? writer.send(SupervisorMessage.live(framesPerSecond: rate)) }
    }

    /// `instance`'s worker ended.
    func workerGone(_ instance: String, writer: LineWriter) {
        state.withLock { state in
            if state.workers[instance] === writer { state.workers[instance] = nil }
            state.pending[instance] = nil
        }
    }

    /// A frame from `instance`'s worker: it replaces the stream's frame not sent yet.
    func offer(_ instance: String, stream: String, jpeg: Data, time: Double) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.watched.contains(instance) else { return nil }
            state.pending[instance, default: [:]][stream] = (jpeg, time)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Sends frames as they come until the task is cancelled: the oldest-waiting stream first, one request at a time.
    public func run(link: DeviceLink) async {
        state.withLock { $0.link = link }
        var order: [String] = []  // "instance/stream" keys, least recently sent first
        while !Task.isCancelledOrShuttingDown {
            let next = state.withLock { state -> (String, String, (jpeg: Data, time: Double))? in
                let keys = state.pending.flatMap { instance, streams in streams.keys.map { "\(instance)/\($0)" } }
                guard !keys.isEmpty else { return nil }
                let key = order.first(where: keys.contains) ?? keys.min()!
                let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
                guard let frame = state.pending[parts[0]]?.removeValue(forKey: parts[1]) else { return nil }
                return (parts[0], parts[1], frame)
            }
            guard let (instance, stream, frame) = next else {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let ready = state.withLock { state -> Bool in
                            if Task.isCancelled || state.pending.values.contains(where: { !$0.isEmpty }) { return true }
                            state.waiter = continuation
                            return false
                        }
                        if ready { continuation.resume() }
                    }
                } onCancel: {
                    state.withLock { state in
                        defer { state.waiter = nil }
                        return state.waiter
                    }?.resume()
                }
                continue
            }
            let key = "\(instance)/\(stream)"
            order.removeAll { $0 == key }
            order.append(key)
            do {
                let status = try await link.sendLiveFrame(
                    instance: instance, stream: stream, jpeg: frame.jpeg, time: frame.time)
                state.withLock { state in
                    if status == 204 {
                        state.sent += 1
                    } else {
                        state.refused += 1
                    }
                }
                if status != 204 && status != 410 {
                    logger.debug(
                        "live frame refused", metadata: ["http.status": "\(status)", "instance.id": "\(instance)"])
                }
            } catch {
                // The link is down: the frame is stale by the time it is back; the next one goes then.
                state.withLock { $0.refused += 1 }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
