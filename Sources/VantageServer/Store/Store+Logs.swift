import Foundation
import VantageAPI

/// Log lines devices ship: the agent's own and each application instance's, kept bounded (the newest
/// ``maxLogLinesPerDevice`` per device) and read newest-last.
extension Store {
    static let maxLogLinesPerBatch = 1000
    static let maxLogLineBytes = 8192
    static let maxLogLinesPerDevice = 20_000
    /// Log levels from least to most severe (swift-log's).
    static let logLevelOrder = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
    static let logLevels = Set(logLevelOrder)
    static let maxLogSearchLength = 200

    /// Stores a device's log lines. A line too long is cut (and says so); an unknown level reads as `info`.
    public func appendLogs(device: String, _ batch: LogBatch) async throws {
        _ = try await self.device(device)
        guard batch.lines.count <= Self.maxLogLinesPerBatch else {
            throw APIError.invalid(
                "send at most \(Self.maxLogLinesPerBatch) log lines at once (got \(batch.lines.count))")
        }
        guard !batch.lines.isEmpty else { return }
        let own = Set(
            try await database.query("SELECT id FROM instances WHERE device_id = \(device)").map { try $0.text("id") })
        for (index, line) in batch.lines.enumerated() {
            if let instance = line.instanceId, !own.contains(instance) {
                throw APIError.unprocessable(
                    "lines[\(index)].instanceId \"\(instance.prefix(40))\" is not an application instance of this device"
                )
            }
        }
        let lines = batch.lines
        try await database.transaction { db in
            for line in lines {
                var message = line.message
                if message.utf8.count > Self.maxLogLineBytes {
                    message = String(decoding: message.utf8.prefix(Self.maxLogLineBytes), as: UTF8.self) + " …(cut)"
                }
                let level = Self.logLevels.contains(line.level) ? line.level : "info"
                try await db.query(
                    """
                    INSERT INTO device_logs (device_id, instance_id, at, level, message)
                    VALUES (\(device), \(line.instanceId), \(Millis.from(line.time)), \(level), \(message))
                    """)
            }
            try await db.query(
                """
                DELETE FROM device_logs WHERE device_id = \(device) AND id <= (
                    SELECT id FROM device_logs WHERE device_id = \(device) ORDER BY id DESC
                    LIMIT 1 OFFSET \(Self.maxLogLinesPerDevice))
                """)
        }
    }

    /// The newest `limit` lines of an instance (or, with `instance` nil, of the device's agent), oldest first,
    /// from `since` on; with `level`, only lines of that level or above; with `contains`, only lines whose
    /// message holds that text (case-insensitive).
    public func logs(
        device: String, instance: String?, since: Date?, limit: Int, level: String? = nil, contains: String? = nil
    ) async throws -> [LogLine] {
        guard (1...5000).contains(limit) else { throw APIError.invalid("limit must be 1 to 5000, not \(limit)") }
        var sql: SQL = "SELECT instance_id, at, level, message FROM device_logs WHERE device_id = \(device)"
        if let instance {
            sql.append(" AND instance_id = \(instance)")
        } else {
            sql.append(" AND instance_id IS NULL")
        }
        if let since { sql.append(" AND at >= \(Millis.from(since))") }
        if let level {
            guard let lowest = Self.logLevelOrder.firstIndex(of: level.lowercased()) else {
                throw APIError.invalid(
                    "level must be one of \(Self.logLevelOrder.joined(separator: ", ")), not \"\(level.prefix(40))\"")
            }
            let levels = Self.logLevelOrder[lowest...]
            sql.append(" AND level IN (")
            for (index, name) in levels.enumerated() { sql.append(index == 0 ? "\(name)" : ", \(name)") }
            sql.append(")")
        }
        if let contains, !contains.isEmpty {
            guard contains.count <= Self.maxLogSearchLength, !contains.contains("\u{0}") else {
                throw APIError.invalid(
                    "contains must be at most \(Self.maxLogSearchLength) characters of text (got \(contains.count))")
            }
            // LIKE with its wildcards escaped; lower() on both sides makes it case-insensitive on both engines.
            let escaped = contains.lowercased().replacingOccurrences(of: "!", with: "!!")
                .replacingOccurrences(of: "%", with: "!%").replacingOccurrences(of: "_", with: "!_")
            sql.append(" AND lower(message) LIKE \("%" + escaped + "%") ESCAPE '!'")
        }
        sql.append(" ORDER BY id DESC LIMIT \(limit)")
        return try await database.query(sql).reversed().map {
            LogLine(
                time: Millis.date(try $0.integer("at")), instanceId: try $0.optionalText("instance_id"),
                level: try $0.text("level"), message: try $0.text("message"))
        }
    }
}
