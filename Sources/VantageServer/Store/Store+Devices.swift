import Foundation
import VantageAPI

extension Store {
    static let deviceColumns = """
        id, name, description, provisioning_status, last_heartbeat_at, software_version, created_at, updated_at,
        (SELECT MAX(c.not_after) FROM device_certificates c WHERE c.device_id = devices.id AND c.revoked_at IS NULL)
            AS certificate_not_after,
        clone_detected_at, clone_detail, last_metrics,
        """ + softwareUpdateColumn

    func device(from row: SQLRow, now: Int64 = Millis.now()) throws -> Device {
        let heartbeat = try row.optionalInteger("last_heartbeat_at")
        let connection: ConnectionStatus =
            heartbeat.map { now - $0 <= Self.onlineWindowMillis ? .online : .offline } ?? .notAvailable
        return Device(
            id: try row.text("id"), name: try row.text("name"), description: try row.text("description"),
            provisioningStatus: ProvisioningStatus(rawValue: try row.text("provisioning_status")) ?? .error,
            connectionStatus: connection, lastHeartbeat: Millis.date(heartbeat),
            softwareVersion: try row.optionalText("software_version"),
            certificateExpiresAt: Millis.date(try row.optionalInteger("certificate_not_after")),
            softwareUpdate: Self.softwareUpdate(try row.optionalText("software_update")),
            conditions: try conditions(from: row, now: now),
            createdAt: Millis.date(try row.integer("created_at")), updatedAt: Millis.date(try row.integer("updated_at"))
        )
    }

    public func listDevices() async throws -> [Device] {
        let now = Millis.now()
        return try await database.query("SELECT \(raw: Self.deviceColumns) FROM devices ORDER BY name").map {
            try device(from: $0, now: now)
        }
    }

    public func device(_ id: String) async throws -> Device {
        guard Identifiers.isValid(id, prefix: "dev"),
            let row = try await database.query("SELECT \(raw: Self.deviceColumns) FROM devices WHERE id = \(id)").first
        else { throw APIError.notFound("device", id) }
        return try device(from: row)
    }

    /// Registers a device; its provisioning token (shown once, valid for ``provisioningTokenLifetime``) is what
    /// `vantage agent` enrolls with.
    public func createDevice(_ new: NewDevice) async throws -> DeviceCreated {
        try Self.checkName(new.name, of: "device")
        let description = try Self.checkDescription(new.description)
        let id = Identifiers.make("dev")
        let token = Identifiers.secret("vd")
        let now = Millis.now()
        let expires = now + provisioningTokenLifetime
        try await Self.unique("a device named \"\(new.name)\"") {
            try await database.query(
                """
                INSERT INTO devices (id, name, description, provisioning_status, token_hash, token_expires_at,
                                     created_at, updated_at)
                VALUES (\(id), \(new.name), \(description), \(ProvisioningStatus.awaitingProvisioning.rawValue),
                        \(Identifiers.hash(token)), \(expires), \(now), \(now))
                """)
        }
        return DeviceCreated(
            device: try await device(id), provisioningToken: token, tokenExpiresAt: Millis.date(expires),
            caFingerprint: authority.fingerprint)
    }

    public func updateDevice(_ id: String, _ update: DeviceUpdate) async throws -> Device {
        // Everything is checked before anything is written, and written in one statement: a refused update
        // changes nothing.
        let current = try await device(id)
        if let name = update.name { try Self.checkName(name, of: "device") }
        let name = update.name ?? current.name
        let description =
            update.description == nil ? current.description : try Self.checkDescription(update.description)
        try await Self.unique("a device named \"\(name)\"") {
            try await database.query(
                "UPDATE devices SET name = \(name), description = \(description), updated_at = \(Millis.now()) WHERE id = \(id)"
            )
        }
        return try await device(id)
    }

    /// Deletes a device that runs no application instance any more.
    public func deleteDevice(_ id: String) async throws {
        _ = try await device(id)
        try await database.transaction { db in
            let running = try await db.query(
                "SELECT id FROM instances WHERE device_id = \(id) AND desired_state <> \(DesiredState.removed.rawValue)"
            )
            guard running.isEmpty else {
                throw APIError.conflict(
                    "device \(id) still has application instances (\(running.compactMap { try? $0.text("id") }.joined(separator: ", "))): remove them first"
                )
            }
            try await db.query("DELETE FROM instances WHERE device_id = \(id)")
            try await db.query("DELETE FROM device_certificates WHERE device_id = \(id)")
            try await db.query("DELETE FROM devices WHERE id = \(id)")
            callers.forgetAll()
        }
    }

    /// Records a heartbeat: the device is ONLINE and provisioned; its metrics join its health series. Most
    /// heartbeats are one UPDATE (plus reading the device back); one a minute also stores a sample.
    public func heartbeat(_ id: String, _ beat: Heartbeat, peer: String? = nil) async throws -> Device {
        guard Identifiers.isValid(id, prefix: "dev") else { throw APIError.notFound("device", id) }
        let now = Millis.now()
        if let version = beat.softwareVersion, version.count > 64 {
            throw APIError.invalid("softwareVersion is longer than 64 characters")
        }
        var metrics = beat.metrics ?? [:]
        guard metrics.count <= 64 else { throw APIError.invalid("a heartbeat carries at most 64 metrics") }
        // The device's wall clock becomes its skew against the server's (what an operator can act on; a heartbeat
        // is sent as soon as it is made, so the trip adds milliseconds at most).
        if let clock = metrics.removeValue(forKey: "clock.unix_seconds"), clock.isFinite {
            metrics["clock.skew_seconds"] = (clock - Double(now) / 1000).rounded()
        }
        for (name, value) in metrics {
            guard !name.isEmpty, name.count <= 64, value.isFinite else {
                throw APIError.invalid(
                    "metric \"\(name.prefix(70))\" must have a 1-64 character name and a finite value")
            }
        }
        // The series keeps one point per metric per minute (heartbeats come every few seconds) and a week of them:
        // the UPDATE claims this minute's sample, so of two heartbeats racing only one stores it. The last
        // heartbeat's figures are always kept (last_metrics) and end every series. A device's first heartbeat
        // places its sampling minute at random, so a fleet that comes up together (or reconnects after an outage)
        // does not write its samples in the same second, minute after minute.
        let firstSample = now - Int64.random(in: 0..<Self.metricsSpacingMillis)
        guard
            let row = try await database.query(
                """
                UPDATE devices SET last_heartbeat_at = \(now), provisioning_status = \(ProvisioningStatus.succeeded.rawValue),
                    software_version = COALESCE(\(beat.softwareVersion), software_version), updated_at = \(now),
                    last_metrics = \(metrics.isEmpty ? nil : Self.json(metrics)),
                    metrics_at = CASE WHEN metrics_at IS NULL THEN \(firstSample)
                        WHEN metrics_at <= \(now - Self.metricsSpacingMillis) THEN \(now) ELSE metrics_at END
                WHERE id = \(id) RETURNING metrics_at
                """
            ).first
        else { throw APIError.notFound("device", id) }
        if let update = beat.update { try await recordSoftwareUpdate(device: id, update) }
        if let session = beat.agentSession { try await recordAgentSession(device: id, session, peer: peer, now: now) }
        if try row.optionalInteger("metrics_at") == now, !metrics.isEmpty {
            // One statement for the whole sample; a week's worth kept.
            var insert: SQL = "INSERT INTO device_metrics (device_id, name, at, value) VALUES "
            for (index, (name, value)) in metrics.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { insert.append(", ") }
                insert.append("(\(id), \(name), \(now), \(value))")
            }
            try await database.query(insert)
            try await database.query(
                "DELETE FROM device_metrics WHERE device_id = \(id) AND at < \(now - Self.metricsRetentionMillis)")
        }
        return try await device(id)
    }

    /// The figures of the device's last heartbeat (the series keeps only one point a minute), as points at the
    /// heartbeat's time.
    public func latestMetrics(device id: String) async throws -> [MetricPoint] {
        guard
            let row = try await database.query(
                "SELECT last_heartbeat_at, last_metrics FROM devices WHERE id = \(id)"
            ).first, let text = try row.optionalText("last_metrics"),
            let at = try row.optionalInteger("last_heartbeat_at")
        else { return [] }
        return try Self.decodeJSON([String: Double].self, text).map {
            MetricPoint(name: $0.key, time: Millis.date(at), value: $0.value)
        }
    }

    /// One stored point per metric per this long.
    static let metricsSpacingMillis: Int64 = 60_000
    /// How long points are kept.
    static let metricsRetentionMillis: Int64 = 7 * 86_400_000

    /// A device's health series since `since`, oldest first (the newest 10,000 stored points at most, one a
    /// minute), ending with the last heartbeat's figures.
    public func metrics(device id: String, name: String?, since: Date) async throws -> [MetricPoint] {
        _ = try await device(id)
        var sql: SQL =
            "SELECT name, at, value FROM device_metrics WHERE device_id = \(id) AND at >= \(Millis.from(since))"
        if let name { sql.append(" AND name = \(name)") }
        sql.append(" ORDER BY at DESC LIMIT 10000")
        var points = try await database.query(sql).reversed().map {
            MetricPoint(name: try $0.text("name"), time: Millis.date(try $0.integer("at")), value: try $0.real("value"))
        }
        // The series has a point a minute; the last heartbeat's figures end it, so the latest values are there.
        let stored = Set(points.map { "\($0.name)@\($0.time.timeIntervalSince1970)" })
        for point in try await latestMetrics(device: id).sorted(by: { $0.name < $1.name })
        where (name == nil || point.name == name) && point.time >= since
            && !stored.contains("\(point.name)@\(point.time.timeIntervalSince1970)")
        {
            points.append(point)
        }
        return points
    }
}
