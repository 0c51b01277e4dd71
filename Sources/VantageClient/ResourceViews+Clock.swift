import Foundation
import VantageAPI
import VantageCore

extension ResourceViews {
    /// The device's clock against the server's, from its last heartbeat's `clock.skew_seconds`: "in step", or how
    /// far ahead or behind it is. The flag and what to do are the server's `CLOCK_SKEW` condition (an `Alert` line),
    /// so they are not said twice.
    public static func clock(skewSeconds skew: Double) -> String {
        guard ClockSkew.isFlagged(skew) else { return "in step with the server (\(Int(skew.rounded())) s)" }
        return "\(ClockSkew.describe(skew)) the server (\(Int(skew.rounded())) s)"
    }

    /// ``device(_:now:)`` with a `Clock` line after the last heartbeat when the device reported its clock.
    public static func device(_ device: Device, clockSkewSeconds: Double?, now: Date = Date()) -> DetailList {
        var list = Self.device(device, now: now)
        if let skew = clockSkewSeconds {
            let index = (list.fields.firstIndex { $0.0 == "Last heartbeat" }).map { $0 + 1 } ?? list.fields.count
            list.fields.insert(("Clock", clock(skewSeconds: skew)), at: index)
        }
        return list
    }
}
