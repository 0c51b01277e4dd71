import Dispatch

/// Runs slow synchronous work (password hashing, unpacking an archive) on a Dispatch queue rather than on Swift's
/// cooperative threads, which every request shares: a few logins or uploads at once must not stall the rest.
enum Blocking {
    private static let queue = DispatchQueue(label: "vantage.server.blocking", attributes: .concurrent)

    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: work()) }
        }
    }
}
