import Foundation
import VantageAPI

/// Software releases and their rollouts (issue 16, "Software updates"). A release is a `make package` tarball
/// stored once by digest; a rollout sends it to devices, the first (the canary) alone until it reports healthy,
/// then the rest. Devices report how it goes in their heartbeats; a canary that rolls back fails the rollout.
extension Store {
    /// A release's version: what `vantage --version` prints, with a suffix such as `+debug`.
    static let releaseVersionPattern = "^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$"

    static func checkReleaseVersion(_ version: String) throws {
        guard version.wholeMatch(of: try! Regex(releaseVersionPattern)) != nil else {
            throw APIError.invalid(
                "release version \"\(version.prefix(70))\" must be 1-64 letters, digits, '.', '_', '+', '~' or '-', starting with a letter or digit (e.g. 0.2.0)"
            )
        }
    }

    // MARK: Releases

    func release(from row: SQLRow) throws -> Release {
        Release(
            version: try row.text("version"), digest: try row.text("digest"), size: try row.integer("size"),
            createdAt: Millis.date(try row.integer("created_at")))
    }

    public func listReleases() async throws -> [Release] {
        try await database.query("SELECT version, digest, size, created_at FROM releases ORDER BY created_at, version")
            .map(release(from:))
    }

    public func release(_ version: String) async throws -> Release {
        guard
            let row = try await database.query(
                "SELECT version, digest, size, created_at FROM releases WHERE version = \(version)"
            ).first
        else { throw APIError.notFound("release", version) }
        return try release(from: row)
    }

    /// Stores an uploaded release tarball after checking it (``ReleaseArchive``): its version is the one the
    /// tarball names, else `version`; when both are given they must agree. A refused upload stores nothing.
    public func addRelease(upload: Upload, version given: String?) async throws -> Release {
        if let given { try Self.checkReleaseVersion(given) }
        let contents = try await Blocking.run { try ReleaseArchive.inspect(upload.file) }
        if let named = contents.version, let given, named != given {
            throw APIError.invalid(
                "the tarball says it is version \(named) (share/vantage/version), not \(given): leave out --version or give \(named)"
            )
        }
        guard let version = contents.version ?? given else {
            throw APIError.invalid(
                "the tarball names no version (no share/vantage/version in it): give one with --version (query parameter version)"
            )
        }
        try Self.checkReleaseVersion(version)
        if let existing = try? await release(version) {
            throw APIError.conflict(
                "release \(version) already exists (\(existing.digest)): delete it first or upload another version")
        }
        try await artifacts.put(file: upload.file, digest: upload.digest)
        try await signArtifact(upload.digest, .release)
        try await Self.unique("release \(version)") {
            try await database.query(
                "INSERT INTO releases (version, digest, size, created_at) VALUES (\(version), \(upload.digest), \(upload.size), \(Millis.now()))"
            )
        }
        return try await release(version)
    }

    /// Deletes a release no device runs and no unfinished rollout sends (finished rollouts of it go with it).
    public func deleteRelease(_ version: String) async throws {
        _ = try await release(version)
        let running = try await database.query("SELECT name FROM devices WHERE software_version = \(version)")
        guard running.isEmpty else {
            throw APIError.conflict(
                "devices run release \(version) (\(running.compactMap { try? $0.text("name") }.joined(separator: ", "))): roll out another release to them first"
            )
        }
        let active = try await database.query(
            "SELECT id FROM rollouts WHERE release_version = \(version) AND state = \(RolloutState.inProgress.rawValue)"
        )
        guard active.isEmpty else {
            throw APIError.conflict(
                "rollout \(active.compactMap { try? $0.text("id") }.joined(separator: ", ")) of release \(version) is in progress: wait until it ends"
            )
        }
        try await database.transaction { db in
            try await db.query("DELETE FROM rollouts WHERE release_version = \(version)")
            try await db.query("DELETE FROM releases WHERE version = \(version)")
        }
    }

    // MARK: Rollouts

    public func listRollouts() async throws -> [Rollout] {
        var rollouts: [Rollout] = []
        for row in try await database.query("SELECT id FROM rollouts ORDER BY created_at DESC, id DESC") {
            rollouts.append(try await rollout(try row.text("id")))
        }
        return rollouts
    }

    public func rollout(_ id: String) async throws -> Rollout {
        guard Identifiers.isValid(id, prefix: "rol"),
            let row = try await database.query(
                "SELECT id, release_version, state, reason, created_at, updated_at FROM rollouts WHERE id = \(id)"
            ).first
        else { throw APIError.notFound("rollout", id) }
        let devices = try await database.query(
            "SELECT device_id, position, state, reason, updated_at FROM rollout_devices WHERE rollout_id = \(id) ORDER BY position"
        ).map { device in
            RolloutDevice(
                deviceId: try device.text("device_id"), position: Int(try device.integer("position")),
                state: RolloutDeviceState(rawValue: try device.text("state")) ?? .failed,
                reason: try device.optionalText("reason"), updatedAt: Millis.date(try device.integer("updated_at")))
        }
        return Rollout(
            id: id, releaseVersion: try row.text("release_version"),
            state: RolloutState(rawValue: try row.text("state")) ?? .failed, reason: try row.optionalText("reason"),
            devices: devices, createdAt: Millis.date(try row.integer("created_at")),
            updatedAt: Millis.date(try row.integer("updated_at")))
    }

    /// Starts a rollout of a stored release to `deviceIds` in order (the first is the canary), or to every device
    /// (by name) with `all`.
    public func createRollout(_ new: NewRollout) async throws -> Rollout {
        guard (new.all ?? false) != (new.deviceIds?.isEmpty == false) else {
            throw APIError.invalid("give deviceIds (the first is the canary) or all: true, not both")
        }
        guard (try? await release(new.releaseVersion)) != nil else {
            throw APIError.unprocessable(
                "no release \(new.releaseVersion.prefix(70)): upload it first (vantage releases upload FILE.tar.gz)")
        }
        var devices: [String] = []
        if new.all == true {
            devices = try await listDevices().map(\.id)
            guard !devices.isEmpty else { throw APIError.unprocessable("there are no devices to roll out to") }
        } else {
            for id in new.deviceIds ?? [] {
                guard Identifiers.isValid(id, prefix: "dev"),
                    try await !database.query("SELECT id FROM devices WHERE id = \(id)").isEmpty
                else { throw APIError.unprocessable("no device \(id.prefix(70))") }
                guard !devices.contains(id) else { throw APIError.invalid("device \(id) is named twice") }
                devices.append(id)
            }
        }
        guard devices.count <= 10_000 else { throw APIError.invalid("a rollout has at most 10000 devices") }
        let id = Identifiers.make("rol")
        let now = Millis.now()
        let members = devices
        try await database.transaction { db in
            try await db.query(
                """
                INSERT INTO rollouts (id, release_version, state, created_at, updated_at)
                VALUES (\(id), \(new.releaseVersion), \(RolloutState.inProgress.rawValue), \(now), \(now))
                """)
            for (position, device) in members.enumerated() {
                try await db.query(
                    """
                    INSERT INTO rollout_devices (rollout_id, device_id, position, state, updated_at)
                    VALUES (\(id), \(device), \(position), \(RolloutDeviceState.pending.rawValue), \(now))
                    """)
            }
        }
        return try await rollout(id)
    }

    // MARK: What devices get and say

    /// The release `device` must run: that of its newest rollout which still sends it one, i.e. not failed for
    /// it, and for a device after the canary, only once the canary is healthy. Nil when none does: the device
    /// keeps what it runs.
    public func desiredSoftware(device: String) async throws -> DesiredSoftware? {
        let rows = try await database.query(
            """
            SELECT r.id, r.release_version, r.state AS rollout_state, d.position, d.state, rel.digest, rel.size
            FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id JOIN releases rel ON rel.version = r.release_version
            WHERE d.device_id = \(device) ORDER BY r.created_at DESC, r.id DESC
            """)
        for row in rows {
            let state = RolloutDeviceState(rawValue: try row.text("state")) ?? .failed
            let rolloutState = RolloutState(rawValue: try row.text("rollout_state")) ?? .failed
            let rollout = try row.text("id")
            if state == .rolledBack || state == .failed || state == .superseded { continue }
            if rolloutState == .failed && state != .healthy { continue }
            if try row.integer("position") > 0 && state == .pending {
                let canary = try await database.query(
                    "SELECT state FROM rollout_devices WHERE rollout_id = \(rollout) AND position = 0"
                ).first?.text("state")
                guard canary == RolloutDeviceState.healthy.rawValue else { continue }
            }
            let digest = try row.text("digest")
            var software = DesiredSoftware(
                rolloutId: rollout, version: try row.text("release_version"), digest: digest,
                size: try row.integer("size"), url: "/api/v1/devices/\(device)/artifacts/\(digest)")
            software.signature = try await artifactSignature(digest, .release)
            return software
        }
        return nil
    }

    /// Records what a device says of a rollout's release (from its heartbeat) and moves the rollout on: a healthy
    /// canary lets the others have the release; a device that rolled back or failed fails the rollout.
    func recordSoftwareUpdate(device: String, _ report: SoftwareUpdateReport) async throws {
        guard let rollout = report.rolloutId, Identifiers.isValid(rollout, prefix: "rol") else { return }
        guard report.version.count <= 64, (report.reason?.count ?? 0) <= 2048 else {
            throw APIError.invalid("update.version is at most 64 characters and update.reason at most 2048")
        }
        guard report.state != .superseded else {
            throw APIError.invalid("update.state superseded is the server's to set, not a device's")
        }
        let now = Millis.now()
        // A device's word is final once it says healthy, rolled back or failed: a late report of an earlier step
        // never undoes it.
        var sql: SQL = """
            UPDATE rollout_devices SET state = \(report.state.rawValue), reason = \(report.reason), updated_at = \(now)
            WHERE rollout_id = \(rollout) AND device_id = \(device) AND state <> \(report.state.rawValue)
              AND EXISTS (SELECT 1 FROM rollouts r WHERE r.id = \(rollout) AND r.release_version = \(report.version))
            """
        sql.append(Self.notFinal())
        sql.append(" RETURNING position")
        let changed = try await database.query(sql)
        guard !changed.isEmpty else { return }
        try await settleRollout(rollout, now: now)
        if report.state == .healthy {
            // Older rollouts this device never took part in (it was offline while they were made, and the newest
            // one's release came to it alone): it is done with them too, so they can finish.
            let older = try await database.query(
                Self.notFinal(
                    """
                    SELECT d.rollout_id FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id
                    WHERE d.device_id = \(device) AND r.id <> \(rollout)
                      AND r.created_at <= (SELECT created_at FROM rollouts WHERE id = \(rollout))
                    """, column: "d.state"))
            for row in older {
                let id = try row.text("rollout_id")
                try await database.query(
                    """
                    UPDATE rollout_devices SET state = \(RolloutDeviceState.superseded.rawValue),
                        reason = \("went straight to release \(report.version) (rollout \(rollout))"), updated_at = \(now)
                    WHERE rollout_id = \(id) AND device_id = \(device)
                    """)
                try await settleRollout(id, now: now)
            }
        }
        // The canary's word changes what the other devices (and this one, after a rollback) must run: wake them.
        if report.state.isFinal { changes.signal() }
    }

    /// ` AND column NOT IN (…the final states…)` appended to `sql`.
    static func notFinal(_ sql: SQL = "", column: String = "state") -> SQL {
        var sql = sql
        sql.append(" AND \(raw: column) NOT IN (")
        for (index, state) in RolloutDeviceState.allCases.filter(\.isFinal).enumerated() {
            if index > 0 { sql.append(", ") }
            sql.append("\(state.rawValue)")
        }
        sql.append(")")
        return sql
    }

    /// Finishes a rollout once its devices' words decide it: failed when one rolled back or failed, succeeded when
    /// every one is healthy (or went straight to a later release); otherwise only its time moves.
    func settleRollout(_ rollout: String, now: Int64) async throws {
        let states = try await database.query(
            "SELECT device_id, state, reason FROM rollout_devices WHERE rollout_id = \(rollout) ORDER BY position")
        var outcome: (RolloutState, String?)?
        if let broken = try states.first(where: {
            [RolloutDeviceState.rolledBack.rawValue, RolloutDeviceState.failed.rawValue].contains(try $0.text("state"))
        }) {
            let name =
                try await database.query("SELECT name FROM devices WHERE id = \(try broken.text("device_id"))").first?
                .text("name") ?? (try broken.text("device_id"))
            outcome = (
                .failed,
                "device \(name) (\(try broken.text("device_id"))) \(try broken.text("state")): \(try broken.optionalText("reason") ?? "no reason given")"
            )
        } else if try states.allSatisfy({
            [RolloutDeviceState.healthy.rawValue, RolloutDeviceState.superseded.rawValue].contains(try $0.text("state"))
        }) {
            outcome = (.succeeded, nil)
        }
        if let (state, reason) = outcome {
            try await database.query(
                """
                UPDATE rollouts SET state = \(state.rawValue), reason = \(reason), updated_at = \(now)
                WHERE id = \(rollout) AND state = \(RolloutState.inProgress.rawValue)
                """)
        } else {
            try await database.query("UPDATE rollouts SET updated_at = \(now) WHERE id = \(rollout)")
        }
    }

    /// `rollout state version reason` of the device's newest rollout, as ``deviceColumns`` reads it.
    static let softwareUpdateColumn = """
        (SELECT d.rollout_id || ' ' || d.state || ' ' || r.release_version || ' ' || COALESCE(d.reason, '')
            FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id WHERE d.device_id = devices.id
            ORDER BY r.created_at DESC, r.id DESC LIMIT 1) AS software_update
        """

    static func softwareUpdate(_ text: String?) -> DeviceSoftwareUpdate? {
        guard let parts = text?.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false),
            parts.count == 4, let state = RolloutDeviceState(rawValue: String(parts[1]))
        else { return nil }
        return DeviceSoftwareUpdate(
            rolloutId: String(parts[0]), releaseVersion: String(parts[2]), state: state,
            reason: parts[3].isEmpty ? nil : String(parts[3]))
    }
}
