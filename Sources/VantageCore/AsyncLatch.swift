import Synchronization

/// A one-shot event that any number of tasks await, each with an optional time limit: a child process's exit, a
/// code node's stop request. Nothing polls: `set()` resumes every waiter at once.
///
/// A wait is not cut short by task cancellation: a supervisor waiting for its child to exit still gives it its grace
/// period while the run is being cancelled. The time limit is a `Task.sleep` in a timer task of its own (which the
/// event cancels), so it runs on the clock whatever the waiting task's state.
package final class AsyncLatch: Sendable {
    private struct State {
        var isSet = false
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
    }

    private let state = Mutex(State())

    package init() {}

    /// Whether the event happened.
    package var isSet: Bool { state.withLock { $0.isSet } }

    /// Marks the event and resumes every waiter; later calls do nothing.
    package func set() {
        let waiters = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            guard !s.isSet else { return [] }
            s.isSet = true
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Waits until the event.
    package func wait() async { _ = await wait(upTo: nil) }

    /// Waits until the event or until `limit` passed. Returns whether the event happened.
    package func wait(upTo limit: Duration?) async -> Bool {
        let timer = Mutex<Task<Void, Never>?>(nil)
        let happened = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let id = state.withLock { s -> Int? in
                if s.isSet { return nil }
                s.nextWaiter += 1
                s.waiters[s.nextWaiter] = continuation
                return s.nextWaiter
            }
            guard let id else { return continuation.resume(returning: true) }
            guard let limit else { return }
            timer.withLock {
                $0 = Task { [self] in
                    try? await Task.sleep(for: limit)  // cancelled when the event comes first: then finds no waiter
                    state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: false)
                }
            }
        }
        timer.withLock { $0?.cancel() }
        return happened
    }
}
