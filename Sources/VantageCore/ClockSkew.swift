import Foundation

/// A device's clock against the server's (issue 17, fault 5): how far is too far, and how it is said, in one place for
/// the server's `CLOCK_SKEW` device condition and `vantage devices show`.
public enum ClockSkew {
    /// Beyond this many seconds either way, a device's clock is flagged (`CLOCK_SKEW`): further than NTP ever leaves
    /// a clock, closer than any wrong RTC or time zone mistake.
    public static let limitSeconds: Double = 300

    /// Whether a skew of `seconds` (positive: the device is ahead) is flagged.
    public static func isFlagged(_ seconds: Double) -> Bool { abs(seconds) > limitSeconds }

    /// "1 h 0 min ahead of", "365 days behind", "7 min 30 s ahead of": the amount, rounded as an operator reads it,
    /// and the direction, to be followed by "the server".
    public static func describe(_ seconds: Double) -> String {
        let whole = Int(abs(seconds).rounded())
        let amount =
            whole >= 2 * 86_400
            ? "\(whole / 86_400) days"
            : whole >= 3600 ? "\(whole / 3600) h \(whole % 3600 / 60) min" : "\(whole / 60) min \(whole % 60) s"
        return "\(amount) \(seconds > 0 ? "ahead of" : "behind")"
    }

    /// What the `CLOCK_SKEW` condition says: the amount and what to do.
    public static func message(_ seconds: Double) -> String {
        "the device's clock is \(describe(seconds)) the server's (\(Int(seconds.rounded())) s at its last heartbeat); "
            + "check NTP on the device (timedatectl status): event times, media ages and TLS depend on it"
    }
}
