import Foundation
import Synchronization
import VantageMedia
import VantageProtocol

/// Runs one model on one camera's frames as they are decoded, before the application asks for them.
///
/// An application that runs a model on the frames of a camera (the Swift SDK's `detect(model, on: frame)`, a frame
/// call from Python) does it one frame after the other: it takes a frame, asks for the inference, waits, handles the
/// answer, and only then takes the next frame. Decoding, inference and the application take turns, and the cores
/// wait between them (a third of one camera's time on two cores, `bench/run`). Once the application has called the
/// model on two frames of the camera in a row, the lookahead runs the model on each frame of that camera as soon as
/// it is decoded (at most `ahead` at once) and keeps the answer; the application's call for that frame takes the
/// answer, or waits for the inference already running, instead of starting one. Inference becomes a stage of the
/// stream, as in DeepStream, for applications that do not change.
///
/// The answer is the one the call would have got: the same model, the same frame, the same preprocessing, written
/// with the `wants` of the previous call (a call with other `wants` runs as before). When a frame run ahead is never
/// asked for (the application skips frames, calls another model on them, or stopped), the lookahead stops until the
/// next two calls in a row: work ahead is never wasted for long. A live camera keeps only its newest frame, so an
/// application slower than the camera turns it off at once.
final class FrameLookahead: Sendable {
    /// Runs the model on a frame the lookahead holds and writes the `inferResult` payload.
    typealias Infer = @Sendable (_ frame: FrameInfo, _ wants: InferWants, _ into: inout WireWriter) async throws -> Void

    private struct Entry {
        /// The frame this entry is for (0: free).
        var sequence: UInt64 = 0
        var done = false
        var failed = false
        /// Its frame was passed over by the application: freed when its inference ends.
        var abandoned = false
        /// What the answer holds (the `wants` of the call before it started).
        var wants: InferWants = .decoded
        var answer = WireWriter(capacity: 4096)
        var waiter: CheckedContinuation<Void, Never>?
    }

    private struct State {
        var lastCall: UInt64 = 0
        /// Calls on consecutive frames, up to the last.
        var streak = 0
        var active = false
        var wants: InferWants = .decoded
        /// The newest frame taken for inference ahead.
        var taken: UInt64 = 0
        var entries: [Entry]
        /// Frames answered from the lookahead, and frames run ahead that nobody asked for.
        var answered: UInt64 = 0
        var wasted: UInt64 = 0
    }

    private let camera: CameraStream
    private let infer: Infer
    private let state: Mutex<State>

    /// A lookahead for one model on `camera`, at most `ahead` frames in flight; `infer` runs the model.
    init(camera: CameraStream, ahead: Int, infer: @escaping Infer) {
        self.camera = camera
        self.infer = infer
        state = Mutex(State(entries: (0..<max(1, ahead)).map { _ in Entry() }))
    }

    /// Frames whose call was answered from the lookahead, and frames it ran that were never asked for.
    var counts: (answered: UInt64, wasted: UInt64) { state.withLock { ($0.answered, $0.wasted) } }

    /// Called on each new frame of the camera (on its thread): starts the model on the frames waiting for the
    /// application, as far as free entries allow. Never blocks.
    func frameDecoded() {
        while let (index, frame) = nextFrame() {
            Task { await run(index, frame) }
        }
    }

    /// A free entry and the next frame to run ahead, taken (its slot held), or nil.
    private func nextFrame() -> (Int, FrameInfo)? {
        state.withLock { s -> (Int, FrameInfo)? in
            guard s.active, let index = s.entries.firstIndex(where: { $0.sequence == 0 }),
                let frame = camera.peekWaiting(after: s.taken)
            else { return nil }
            s.taken = frame.sequence
            s.entries[index].sequence = frame.sequence
            s.entries[index].done = false
            s.entries[index].failed = false
            s.entries[index].abandoned = false
            s.entries[index].wants = s.wants
            return (index, frame)
        }
    }

    private func run(_ index: Int, _ frame: FrameInfo) async {
        var (answer, wants) = state.withLock { s in
            var taken = WireWriter(capacity: 0)
            swap(&taken, &s.entries[index].answer)
            return (taken, s.entries[index].wants)
        }
        answer.reset()
        var failed = false
        do {
            try await infer(frame, wants, &answer)
        } catch {
            failed = true  // the application's own call runs the model again and gets the error
        }
        camera.release(slot: frame.slot)
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            swap(&answer, &s.entries[index].answer)
            s.entries[index].done = true
            s.entries[index].failed = failed
            if s.entries[index].abandoned { s.entries[index].sequence = 0 }
            defer { s.entries[index].waiter = nil }
            return s.entries[index].waiter
        }
        waiter?.resume()
        frameDecoded()  // an entry is free: frames may be waiting
    }

    /// The application calls the model on `frame` with `wants`: writes the answer run ahead into `writer` (waiting
    /// for it when it is still running) and returns true, or returns false when the caller must run the model.
    func answer(_ frame: FrameInfo, wants: InferWants, into writer: inout WireWriter) async -> Bool {
        let sequence = frame.sequence
        let found = state.withLock { s -> Int? in
            s.streak = sequence == s.lastCall + 1 ? s.streak + 1 : 1
            s.lastCall = max(s.lastCall, sequence)
            var passedOver = false
            for i in s.entries.indices
            where s.entries[i].sequence != 0 && s.entries[i].sequence < sequence && !s.entries[i].abandoned {
                passedOver = true
                s.wasted += 1
                if s.entries[i].done { s.entries[i].sequence = 0 } else { s.entries[i].abandoned = true }
            }
            if passedOver || s.wants != wants {
                // Work ahead was wasted, or the calls changed: stop until two calls in a row again.
                s.active = false
                s.streak = 1
                s.wants = wants
            }
            if let index = s.entries.firstIndex(where: { $0.sequence == sequence && $0.wants == wants }) {
                return index
            }
            if !s.active && s.streak >= 2 {
                s.active = true
                s.taken = max(s.taken, sequence)
            }
            return nil
        }
        guard let index = found else {
            frameDecoded()
            return false
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s -> Bool in
                if s.entries[index].done { return true }
                s.entries[index].waiter = continuation
                return false
            }
            if ready { continuation.resume() }
        }
        let used = state.withLock { s -> Bool in
            defer { s.entries[index].sequence = 0 }
            guard !s.entries[index].failed else { return false }
            writer.raw(s.entries[index].answer.bytes)
            s.answered += 1
            return true
        }
        frameDecoded()
        return used
    }
}
