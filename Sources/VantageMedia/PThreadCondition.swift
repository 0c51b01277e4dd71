import Foundation

/// A mutex and condition variable for threads that block (decoder threads, the app host), with a timed wait.
/// Foundation's `NSCondition`, kept behind a small API so the waits are uniform.
final class PThreadCondition: Sendable {
    private let condition = NSCondition()

    func lock() { condition.lock() }
    func unlock() { condition.unlock() }
    func broadcast() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }
    /// Waits (the lock held by the caller) until signalled or the timeout passes.
    func wait(timeoutMillis: Int) {
        _ = condition.wait(until: Date(timeIntervalSinceNow: Double(timeoutMillis) / 1000))
    }
    /// Waits (the lock held by the caller) until signalled or `nanoseconds` pass (at most a minute: callers wait in
    /// a loop that checks their condition).
    func wait(nanoseconds: UInt64) {
        _ = condition.wait(until: Date(timeIntervalSinceNow: Double(min(nanoseconds, 60_000_000_000)) / 1e9))
    }
}
