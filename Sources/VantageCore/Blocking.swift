import Dispatch
import Foundation

// The one place blocking work leaves Swift's cooperative pool: a few threads shared by every task, which a blocking
// call (compiling a model, hashing a password, fsync, a SQLite statement) would take from every other task while it
// waits. Long, rare work gets a thread of its own; short, frequent work goes to a Dispatch queue.

/// Runs blocking work (reading and compiling a model, constructing a runtime) on a thread of its own, so that no
/// cooperative-pool thread waits on it. For long, rare work: each call starts a thread.
public func onDedicatedThread<T: Sendable, E: Error>(
    named name: String = "vantage.blocking", _ body: @escaping @Sendable () throws(E) -> T
) async throws(E) -> T {
    let result: Result<T, E> = await withCheckedContinuation { continuation in
        let thread = Thread {
            continuation.resume(returning: Result { () throws(E) -> T in try body() })
        }
        thread.name = name
        thread.start()
    }
    return try result.get()
}

/// A Dispatch queue for short blocking calls (file system work, hashing, SQLite statements), awaited from async code
/// without holding a cooperative-pool thread. A serial queue also runs its work in the order it was submitted.
public struct BlockingQueue: Sendable {
    /// The queue the work runs on.
    public let queue: DispatchQueue

    /// Makes a queue named `label`; `concurrent` lets several works run at once.
    public init(label: String, concurrent: Bool = false) {
        queue = DispatchQueue(label: label, attributes: concurrent ? [.concurrent] : [])
    }

    /// Runs `work` on the queue and returns its result.
    public func run<T: Sendable, E: Error>(_ work: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: Result { () throws(E) -> T in try work() }) }
        }
        return try result.get()
    }
}
