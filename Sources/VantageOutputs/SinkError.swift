import AsyncHTTPClient
import NIOCore

/// Why a delivery to a sink failed.
///
/// `retryable` false means trying again cannot help (bad credentials, a bucket that does not exist, a 4xx other than
/// 408/429); the outbox still keeps the event but waits longer and reports it. `message` says what happened and what
/// to do, and never contains a secret.
public struct SinkError: Error, CustomStringConvertible, Sendable {
    /// The sink's name, as configured.
    public var sink: String
    /// What happened and what to do; never a secret.
    public var message: String
    /// Whether trying the same delivery again later may succeed.
    public var retryable: Bool
    /// The receiver refused this event for good (say the control plane answered 4xx about it): the delivery is
    /// removed from the outbox and counted as rejected, so that one bad event cannot hold up the rest.
    public var discard: Bool

    /// Creates an error for the sink named `sink`.
    public init(sink: String, _ message: String, retryable: Bool = true, discard: Bool = false) {
        self.sink = sink
        self.message = message
        self.retryable = retryable
        self.discard = discard
    }

    public var description: String { "sink \(sink): \(message)" }
}

/// What the HTTP sinks (S3, webhooks) share: turning a failed request into a `SinkError`.
enum SinkHTTP {
    /// A request that got no answer (refused, reset, timed out, TLS failure): always retryable.
    static func transportError(
        sink: String, doing what: String, endpoint: String, error: any Error, timeout: Duration
    ) -> SinkError {
        if let error = error as? HTTPClientError,
            [.deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout].contains(error)
        {
            return SinkError(sink: sink, "\(what): no answer from \(endpoint) within \(timeout); will try again")
        }
        return SinkError(
            sink: sink, "\(what): could not reach \(endpoint) (\(error)); is the endpoint reachable? will try again")
    }

    /// `duration` as NIO's `TimeAmount`.
    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
