import Foundation
import VantageAPI

extension ResourceViews {
    // MARK: Software releases and rollouts

    public static func releases(_ releases: [Release], now: Date = Date()) -> TextTable {
        TextTable(
            columns: ["VERSION", "SIZE", "DIGEST", "UPLOADED"],
            rows: releases.map {
                [$0.version, byteCount($0.size), $0.digest, RelativeTime.describe($0.createdAt, now: now)]
            })
    }

    public static func release(_ release: Release, now: Date = Date()) -> DetailList {
        DetailList([
            ("Version", release.version), ("Size", byteCount(release.size)), ("Digest", release.digest),
            ("Uploaded", RelativeTime.full(release.createdAt, now: now)),
        ])
    }

    public static func rollouts(_ rollouts: [Rollout], now: Date = Date()) -> TextTable {
        TextTable(
            columns: ["ID", "RELEASE", "STATE", "DEVICES", "CREATED"],
            rows: rollouts.map { rollout in
                let healthy = rollout.devices.filter { $0.state == .healthy }.count
                return [
                    rollout.id, rollout.releaseVersion, rollout.state.rawValue,
                    "\(healthy)/\(rollout.devices.count) healthy", RelativeTime.describe(rollout.createdAt, now: now),
                ]
            })
    }

    /// A rollout and each device's state; `names` maps device ids to names.
    public static func rollout(_ rollout: Rollout, names: [String: String] = [:], now: Date = Date()) -> String {
        let details = DetailList(
            [
                ("ID", rollout.id), ("Release", rollout.releaseVersion), ("State", rollout.state.rawValue),
            ] + (rollout.reason.map { [("Reason", $0)] } ?? []) + [
                ("Created", RelativeTime.full(rollout.createdAt, now: now)),
                ("Updated", RelativeTime.full(rollout.updatedAt, now: now)),
            ])
        let devices = TextTable(
            columns: ["#", "DEVICE", "NAME", "STATE", "UPDATED", "REASON"],
            rows: rollout.devices.map {
                [
                    $0.position == 0 ? "canary" : "\($0.position)", $0.deviceId, names[$0.deviceId] ?? "-",
                    $0.state.rawValue, RelativeTime.describe($0.updatedAt, now: now), $0.reason ?? "",
                ]
            })
        return details.render() + "\n\n" + devices.render()
    }

    /// `0.2.0: healthy (rollout rol_…)`, or `-`.
    public static func softwareUpdate(_ update: DeviceSoftwareUpdate?) -> String {
        guard let update else { return "-" }
        return "\(update.releaseVersion): \(update.state.rawValue)\(update.reason.map { " (\($0))" } ?? "")"
            + " (rollout \(update.rolloutId))"
    }
}
