import Foundation

// Durations and times as the project writes them: one definition each, so that every log, event and API response
// agrees.

extension Duration {
    /// The duration in seconds, as a Double.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// The duration in whole milliseconds, rounded towards zero.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

extension Date {
    /// ISO 8601 in UTC with milliseconds, the time format of the API, events and logs: `2026-05-31T12:00:00.000Z`.
    public var iso8601Text: String { formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)) }
}
