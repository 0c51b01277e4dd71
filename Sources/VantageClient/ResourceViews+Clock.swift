import Foundation
import VantageAPI

extension ResourceViews {
    /// Beyond this many seconds either way, a device's clock is flagged (`CLOCK_SKEW`).
    public static let clockSkewLimitSeconds: Double = 300

    /// The device's clock against the server's, from its last heartbeat's `clock.skew_seconds`: "in step", or how
    /// far ahead or behind it is, flagged `CLOCK_SKEW` with what to do beyond ``clockSkewLimitSeconds``.
    public static func clock(skewSeconds skew: Double) -> String {
        guard abs(skew) > clockSkewLimitSeconds else { return "in step with the server (\(Int(skew.rounded())) s)" }
        let seconds = Int(abs(skew).rounded())
        let amount =
            seconds >= 2 * 86_400
            ? "\(seconds / 86_400) days"
            : seconds >= 3600
                ? "\(seconds / 3600) h \(seconds % 3600 / 60) min" : "\(seconds / 60) min \(seconds % 60) s"
        return
            "CLOCK_SKEW: \(amount) \(skew > 0 ? "ahead of" : "behind") the server; check NTP on the device (timedatectl status): event times, media ages and TLS depend on it"
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
