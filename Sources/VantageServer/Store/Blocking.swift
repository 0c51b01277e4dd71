import VantageCore

/// Runs slow synchronous work (password hashing, unpacking an archive) on a Dispatch queue rather than on Swift's
/// cooperative threads, which every request shares: a few logins or uploads at once must not stall the rest.
enum Blocking {
    private static let queue = BlockingQueue(label: "vantage.server.blocking", concurrent: true)

    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await queue.run(work)
    }

    static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await queue.run(work)
    }
}
