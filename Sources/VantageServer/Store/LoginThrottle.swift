import Foundation
import Synchronization

/// Slows password guessing on the console's sign-in: after a few failures for one user name, or many from one client
/// address, each further attempt must wait (1 s, 2 s, 4 s, … up to ``Policy/maxDelay``) and is answered 429 with
/// `Retry-After` without checking the password. A success clears both counts; an hour without failures forgets them.
///
/// Kept in memory, per server process: replicas each throttle on their own, and a restart forgets. Addresses are
/// the TCP peer's: behind a reverse proxy every client shares the proxy's address, which is why the per-address
/// allowance is larger than the per-user one.
final class LoginThrottle: Sendable {
    struct Policy: Sendable {
        /// Failures for one user name before attempts are delayed.
        var freeFailuresPerUser = 5
        /// Failures from one client address before attempts are delayed.
        var freeFailuresPerAddress = 20
        /// The first delay; each further failure doubles it.
        var firstDelay: Duration = .seconds(1)
        var maxDelay: Duration = .seconds(300)
        /// A count is forgotten this long after its last failure.
        var forgetAfter: Duration = .seconds(3600)
        /// The most names or addresses remembered (the oldest go first), so random names cannot exhaust memory.
        var maxEntries = 10_000
    }

    private struct Entry {
        var failures: Int
        var lastFailure: ContinuousClock.Instant
    }

    private struct State {
        var users: [String: Entry] = [:]
        var addresses: [String: Entry] = [:]
    }

    let policy: Policy
    private let state = Mutex(State())

    init(policy: Policy = Policy()) { self.policy = policy }

    /// Starts an attempt: how long the caller must wait before trying again (nothing is counted then), or nil when
    /// it may try now — and then the attempt already counts as a failure until ``succeeded(user:address:)`` clears
    /// it, so that a burst of concurrent guesses cannot all pass before the first is counted. A failure ends with
    /// ``failed(user:address:now:)``.
    func begin(user: String, address: String?, now: ContinuousClock.Instant = .now) -> Duration? {
        state.withLock { state in
            let waits = [
                delay(state.users[user], free: policy.freeFailuresPerUser, now: now),
                address.flatMap { delay(state.addresses[$0], free: policy.freeFailuresPerAddress, now: now) },
            ].compactMap { $0 }
            if let longest = waits.max() { return longest }
            record(&state.users, user, now: now)
            if let address { record(&state.addresses, address, now: now) }
            return nil
        }
    }

    /// Ends a failed attempt: the delay before the next one runs from now, not from when this one began.
    func failed(user: String, address: String?, now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            state.users[user]?.lastFailure = now
            if let address { state.addresses[address]?.lastFailure = now }
        }
    }

    /// Clears the counts after a successful sign-in.
    func succeeded(user: String, address: String?) {
        state.withLock { state in
            state.users[user] = nil
            if let address { state.addresses[address] = nil }
        }
    }

    private func delay(_ entry: Entry?, free: Int, now: ContinuousClock.Instant) -> Duration? {
        guard let entry, now - entry.lastFailure < policy.forgetAfter, entry.failures >= free else { return nil }
        let doublings = min(entry.failures - free, 30)
        let delay = min(policy.firstDelay * (1 << doublings), policy.maxDelay)
        let remaining = entry.lastFailure + delay - now
        return remaining > .zero ? remaining : nil
    }

    private func record(_ table: inout [String: Entry], _ key: String, now: ContinuousClock.Instant) {
        if var entry = table[key], now - entry.lastFailure < policy.forgetAfter {
            entry.failures += 1
            entry.lastFailure = now
            table[key] = entry
            return
        }
        if table.count >= policy.maxEntries {
            table = table.filter { now - $0.value.lastFailure < policy.forgetAfter }
            if table.count >= policy.maxEntries {
                // Still full of recent failures: forget the oldest tenth.
                let oldest = table.sorted { $0.value.lastFailure < $1.value.lastFailure }.prefix(policy.maxEntries / 10)
                for (key, _) in oldest { table[key] = nil }
            }
        }
        table[key] = Entry(failures: 1, lastFailure: now)
    }
}

/// Bounds how many password hashes (PBKDF2, about a tenth of a second of CPU each) run at once, so that a burst of
/// sign-ins cannot take every core: a few run, a bounded queue waits its turn, and the rest are turned away at once.
final class HashingLimit: Sendable {
    private struct State {
        var running = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// At most this many hashes at once.
    let concurrent: Int
    /// At most this many waiting; more are refused.
    let queued: Int
    private let state = Mutex(State())

    init(concurrent: Int = max(2, ProcessInfo.processInfo.activeProcessorCount / 2), queued: Int = 32) {
        self.concurrent = concurrent
        self.queued = queued
    }

    /// Runs `work` (on the blocking queue) when a slot is free; nil, without running it, when too many are waiting.
    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T? {
        guard await acquire() else { return nil }
        defer { release() }
        return await Blocking.run(work)
    }

    private func acquire() async -> Bool {
        enum Decision { case now, wait, refuse }
        let decision = state.withLock { state -> Decision in
            if state.running < concurrent {
                state.running += 1
                return .now
            }
            return state.waiters.count < queued ? .wait : .refuse
        }
        switch decision {
        case .now: return true
        case .refuse: return false
        case .wait:
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    // A slot may have been freed since the decision.
                    if state.running < concurrent {
                        state.running += 1
                        return true
                    }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            return true
        }
    }

    private func release() {
        // A waiter takes the slot over (running stays the same); with none, the slot is freed.
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.running -= 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
