import Foundation
import Synchronization

/// Wakes long-polling devices when the fleet changes. Every change made through this server process bumps a
/// generation and wakes every waiter, which then looks again at its own desired state (most find it unchanged
/// and wait again). Changes made on another replica reach a waiting device when its wait times out.
public final class ChangeSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
        /// Waits that ended (timed out) before their continuation was registered.
        var finished: Set<UUID> = []
    }

    private let state = Mutex(State())

    public init() {}

    /// The current generation: read it before looking at the state, then `wait(after:)` it.
    public var generation: UInt64 { state.withLock { $0.generation } }

    /// Something changed: wake every waiter.
    public func signal() {
        let waiters = state.withLock { state in
            state.generation &+= 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when the generation passes `generation` (at once if it already has) or after `timeout`.
    public func wait(after generation: UInt64, timeout: Duration) async {
        let id = UUID()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let resumeNow = self.state.withLock { state -> Bool in
                        if state.generation != generation || state.finished.remove(id) != nil { return true }
                        state.waiters[id] = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                // Not registered yet (or already resumed by a signal): make sure a late registration returns.
                state.finished.insert(id)
                return nil
            }
            waiter?.resume()
            await group.waitForAll()
            _ = state.withLock { $0.finished.remove(id) }
        }
    }
}

/// The devices recent client certificates belong to, kept for a few seconds so that a device's steady requests
/// (heartbeats, polls) cost no database query to authenticate. Only found devices are kept; revoking, deleting or
/// enrolling a device through this server forgets everything at once.
public final class CallerCache: Sendable {
    private struct Entry {
        var caller: Caller
        var until: ContinuousClock.Instant
    }

    private let entries = Mutex<[String: Entry]>([:])
    let lifetime: Duration
    static let maxEntries = 200_000

    public init(lifetime: Duration = .seconds(10)) { self.lifetime = lifetime }

    func caller(_ fingerprint: String) -> Caller? {
        let now = ContinuousClock.now
        return entries.withLock { entries in
            guard let entry = entries[fingerprint] else { return nil }
            guard entry.until > now else {
                entries[fingerprint] = nil
                return nil
            }
            return entry.caller
        }
    }

    /// Remembers `caller` for ``lifetime``, and never past `end` (the certificate's end: an expired certificate
    /// must be looked up again, so that it may only renew itself).
    func remember(_ caller: Caller, for fingerprint: String, until end: Date = .distantFuture) {
        let left = end.timeIntervalSinceNow
        guard left > 0 else { return }
        let until = ContinuousClock.now + min(lifetime, .milliseconds(Int64(min(left, 86_400) * 1000)))
        entries.withLock { entries in
            if entries.count >= Self.maxEntries { entries.removeAll(keepingCapacity: true) }
            entries[fingerprint] = Entry(caller: caller, until: until)
        }
    }

    func forgetAll() { entries.withLock { $0.removeAll(keepingCapacity: true) } }
}
