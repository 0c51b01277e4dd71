import Foundation
import VantageAPI
import VantageCore

/// Which events to list. Every filter is optional; pages go newest first.
public struct EventQuery: Sendable {
    /// The order of a page: by time (the default), or by the instance's own sequence (needs `instance`).
    public enum Order: String, Sendable, CaseIterable {
        case time, sequence
    }

    public var device: String?
    public var camera: String?
    public var instance: String?
    public var type: String?
    public var since: Date?
    public var until: Date?
    public var limit = 50
    public var cursor: String?
    public var order = Order.time

    public init() {}
}

extension Store {
    static let maxEventsPerBatch = 1000
    static let maxEventDataBytes = 64 * 1024
    static let maxSnapshotBytes = 8 << 20
    /// How far ahead of the server's clock an event's time may be.
    static let maxClockSkewMillis: Int64 = 5 * 60_000

    /// The columns ``event(from:)`` reads.
    static let eventColumns =
        "id, device_id, device_event_id, camera_id, instance_id, type, at, received_at, device_time, sequence, data, snapshot_digest, clip_digest"

    func event(from row: SQLRow) throws -> Event {
        Event(
            id: try row.text("id"), deviceId: try row.text("device_id"),
            deviceEventId: try row.optionalText("device_event_id"), cameraId: try row.optionalText("camera_id"),
            instanceId: try row.optionalText("instance_id"), type: try row.text("type"),
            time: Millis.date(try row.integer("at")), receivedAt: Millis.date(try row.integer("received_at")),
            deviceTime: try row.optionalInteger("device_time").map(Millis.date),
            sequence: try row.optionalInteger("sequence"),
            data: try Self.decodeJSON(JSONValue.self, try row.text("data")),
            hasSnapshot: try row.optionalText("snapshot_digest") != nil,
            hasClip: try row.optionalText("clip_digest") != nil)
    }

    /// 1-64 letters, digits, `_`, `.`, `:` or `-`: event types and devices' event ids.
    static func isPlainToken(_ type: String) -> Bool {
        !type.isEmpty && type.count <= 64
            && type.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.:-".contains($0)) }
    }

    /// Stores events a device sent, with their snapshots. All or nothing: one bad event refuses the batch, and
    /// the message says which.
    public func ingestEvents(device: String, _ batch: EventBatch) async throws -> [String] {
        _ = try await self.device(device)
        guard !batch.events.isEmpty, batch.events.count <= Self.maxEventsPerBatch else {
            throw APIError.invalid("send 1 to \(Self.maxEventsPerBatch) events at once (got \(batch.events.count))")
        }
        struct Checked: Sendable {
            var id: String
            var event: NewEvent
            var at: Int64
            /// The device's time when it was not taken as `at` (too far ahead).
            var deviceTime: Int64?
            var data: String
            var snapshot: [UInt8]?
        }
        let now = Millis.now()
        // The cameras and instances a device may report about: its own.
        let ownCameras = Set(
            try await database.query("SELECT id FROM cameras WHERE device_id = \(device)").map { try $0.text("id") })
        let ownInstances = Set(
            try await database.query("SELECT id FROM instances WHERE device_id = \(device)").map { try $0.text("id") })
        var checked: [Checked] = []
        for (index, event) in batch.events.enumerated() {
            let label = "events[\(index)]"
            if let id = event.id, !Self.isPlainToken(id) {
                throw APIError.invalid("\(label).id must be 1-64 letters, digits, '_', '.', ':' or '-'")
            }
            guard Self.isPlainToken(event.type) else {
                throw APIError.invalid("\(label).type must be 1-64 letters, digits, '_', '.', ':' or '-'")
            }
            if let camera = event.cameraId, !ownCameras.contains(camera) {
                throw APIError.unprocessable(
                    "\(label).cameraId \"\(camera.prefix(40))\" is not a camera assigned to this device (assign it with PATCH /api/v1/cameras/ID {\"deviceId\": …})"
                )
            }
            if let instance = event.instanceId, !ownInstances.contains(instance) {
                throw APIError.unprocessable(
                    "\(label).instanceId \"\(instance.prefix(40))\" is not an application instance of this device")
            }
            if let sequence = event.sequence {
                guard sequence >= 1 else { throw APIError.invalid("\(label).sequence must be 1 or more") }
                guard event.instanceId != nil else {
                    throw APIError.invalid("\(label).sequence needs instanceId: sequences are per instance")
                }
            }
            // A device whose clock runs ahead keeps its events: stored at the time received, its own time kept
            // beside (refusing them would lose them; trusting them would list them above everything for as long
            // as the clock is ahead). Its order stays in `sequence`; its skew shows as CLOCK_SKEW.
            var at = now
            var deviceTime: Int64?
            if let time = event.time {
                at = Millis.from(time)
                if at > now + Self.maxClockSkewMillis {
                    deviceTime = at
                    at = now
                }
            }
            let data = Self.json(event.data ?? .object([:]))
            guard data.utf8.count <= Self.maxEventDataBytes else {
                throw APIError.invalid("\(label).data is larger than \(Self.maxEventDataBytes / 1024) KiB")
            }
            var snapshot: [UInt8]?
            if let base64 = event.snapshot {
                guard base64.count <= Self.maxSnapshotBytes * 4 / 3 + 4, let bytes = Data(base64Encoded: base64) else {
                    throw APIError.invalid(
                        "\(label).snapshot must be a base64 JPEG of at most \(Self.maxSnapshotBytes >> 20) MiB")
                }
                guard bytes.starts(with: [0xFF, 0xD8, 0xFF]) else {
                    throw APIError.invalid("\(label).snapshot is not a JPEG image")
                }
                snapshot = [UInt8](bytes)
            }
            checked.append(
                Checked(
                    id: Identifiers.make("evt"), event: event, at: at, deviceTime: deviceTime, data: data,
                    snapshot: snapshot))
        }
        var stored: [String: String] = [:]
        for item in checked {
            if let bytes = item.snapshot { stored[item.id] = try await artifacts.put(bytes: bytes) }
        }
        let digests = stored
        let rows = checked
        // Multi-row INSERTs, 100 events (1200 parameters) each: one round trip per hundred on PostgreSQL. An event
        // whose device id was stored before (a batch sent again after a lost answer) is skipped, and answered with
        // the id it got the first time: delivery may repeat, storage does not.
        let deviceIDs = rows.compactMap(\.event.id)
        let existing = try await database.transaction { db -> [String: String] in
            for chunk in stride(from: 0, to: rows.count, by: 100).map({ rows[$0..<min($0 + 100, rows.count)] }) {
                var sql: SQL = """
                    INSERT INTO events (id, device_id, device_event_id, camera_id, instance_id, type, at, received_at,
                        device_time, sequence, data, snapshot_digest) VALUES
                    """
                for (offset, item) in chunk.enumerated() {
                    if offset > 0 { sql.append(", ") }
                    sql.append(
                        """
                        (\(item.id), \(device), \(item.event.id), \(item.event.cameraId), \(item.event.instanceId),
                         \(item.event.type), \(item.at), \(now), \(item.deviceTime), \(item.event.sequence), \(item.data),
                         \(digests[item.id]))
                        """)
                }
                sql.append(" ON CONFLICT (device_id, device_event_id) DO NOTHING")
                try await db.query(sql)
            }
            guard !deviceIDs.isEmpty else { return [:] }
            var stored: [String: String] = [:]
            for chunk in stride(from: 0, to: deviceIDs.count, by: 500).map({
                deviceIDs[$0..<min($0 + 500, deviceIDs.count)]
            }) {
                var sql: SQL =
                    "SELECT id, device_event_id FROM events WHERE device_id = \(device) AND device_event_id IN ("
                for (offset, id) in chunk.enumerated() {
                    if offset > 0 { sql.append(", ") }
                    sql.append("\(id)")
                }
                sql.append(")")
                for row in try await db.query(sql) {
                    stored[try row.text("device_event_id")] = try row.text("id")
                }
            }
            return stored
        }
        let answered = checked.map { item in item.event.id.flatMap { existing[$0] } ?? item.id }
        for (item, id) in zip(checked, answered) where id == item.id {
            if let camera = item.event.cameraId, let digest = digests[item.id] {
                try await setSnapshot(camera: camera, digest: digest, at: item.at)
            }
        }
        return answered
    }

    /// A page of events, newest first, by keyset pagination on (time, id) — or on (sequence, id) for one instance's
    /// events in the order it made them: each page is an index range scan, so a page costs the same at event 1 and
    /// event 1,000,000. Events sent without a sequence (by API clients) come last in sequence order.
    public func events(_ query: EventQuery) async throws -> Page<Event> {
        guard (1...500).contains(query.limit) else { throw APIError.invalid("limit must be 1-500") }
        let bySequence = query.order == .sequence
        if bySequence, query.instance == nil {
            throw APIError.invalid(
                "order=sequence needs instanceId: each instance numbers its own events (list one instance's events)")
        }
        // The sort key: sequences of events sent without one count as 0.
        let key = bySequence ? "COALESCE(sequence, 0)" : "at"
        var sql: SQL =
            "SELECT \(raw: Self.eventColumns) FROM events WHERE 1 = 1"
        sql.append(Self.eventFilters(query))
        if let cursor = query.cursor {
            guard let (at, id) = Self.decodeCursor(cursor) else {
                throw APIError.invalid(
                    "cursor is not one this server gave: pass nextCursor from the previous page as is")
            }
            sql.append(" AND (\(raw: key), id) < (\(at), \(id))")
        }
        sql.append(" ORDER BY \(raw: key) DESC, id DESC LIMIT \(query.limit + 1)")
        let rows = try await database.query(sql)
        let events = try rows.prefix(query.limit).map { try event(from: $0) }
        let next =
            rows.count > query.limit
            ? events.last.map {
                Self.encodeCursor(at: bySequence ? ($0.sequence ?? 0) : Millis.from($0.time), id: $0.id)
            } : nil
        return Page(items: events, nextCursor: next)
    }

    static func encodeCursor(at: Int64, id: String) -> String {
        Data("\(at):\(id)".utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    /// Reads a cursor made by ``encodeCursor(at:id:)`` whose id has `prefix` (`evt`, `aud`).
    static func decodeCursor(_ cursor: String, prefix: String = "evt") -> (Int64, String)? {
        var text = cursor
        while text.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text), let string = String(data: data, encoding: .utf8),
            let colon = string.firstIndex(of: ":"), let at = Int64(string[..<colon])
        else { return nil }
        let id = String(string[string.index(after: colon)...])
        guard Identifiers.isValid(id, prefix: prefix) else { return nil }
        return (at, id)
    }

    public func event(_ id: String) async throws -> Event {
        guard Identifiers.isValid(id, prefix: "evt"),
            let row = try await database.query(
                "SELECT \(raw: Self.eventColumns) FROM events WHERE id = \(id)"
            ).first
        else { throw APIError.notFound("event", id) }
        return try event(from: row)
    }

    public func eventSnapshot(_ id: String) async throws -> URL {
        _ = try await event(id)
        guard
            let digest = try await database.query("SELECT snapshot_digest FROM events WHERE id = \(id)").first?
                .optionalText("snapshot_digest"), let url = try await artifacts.file(for: digest)
        else { throw APIError.notFound("snapshot for event", id) }
        return url
    }

    /// How many events arrived since `since` (the console's overview).
    public func eventCount(since: Date) async throws -> Int {
        Int(
            try await database.query("SELECT COUNT(*) AS n FROM events WHERE at >= \(Millis.from(since))").first?
                .integer("n") ?? 0)
    }
}

// MARK: Review: clips, types, counts

extension Store {
    /// The largest clip a device may upload (a 60 s pre-roll and post-roll at a high bit rate fits).
    static let maxClipBytes: Int64 = 64 << 20

    /// The `AND …` conditions of `query`'s filters (not its cursor or order).
    static func eventFilters(_ query: EventQuery) -> SQL {
        var sql: SQL = ""
        if let device = query.device { sql.append(" AND device_id = \(device)") }
        if let camera = query.camera { sql.append(" AND camera_id = \(camera)") }
        if let instance = query.instance { sql.append(" AND instance_id = \(instance)") }
        if let type = query.type { sql.append(" AND type = \(type)") }
        if let since = query.since { sql.append(" AND at >= \(Millis.from(since))") }
        if let until = query.until { sql.append(" AND at < \(Millis.from(until))") }
        return sql
    }

    /// Keeps `upload` (an MP4 the device sent) as the clip of the event it named `deviceEventID`. Sent again, the
    /// same clip is kept once (the first one stays). The event must be on the server first: a clip that overtook
    /// its event is refused with 409, and the device sends it again later.
    public func attachClip(device: String, deviceEventID: String, upload: Upload) async throws -> Event {
        _ = try await self.device(device)
        guard Self.isPlainToken(deviceEventID) else {
            throw APIError.invalid("the event id must be 1-64 letters, digits, '_', '.', ':' or '-'")
        }
        guard
            let row = try await database.query(
                """
                SELECT \(raw: Self.eventColumns) FROM events WHERE device_id = \(device)
                    AND device_event_id = \(deviceEventID)
                """
            ).first
        else {
            throw APIError(
                409,
                "event \(deviceEventID.prefix(64)) of this device has not reached the server yet: send the event first, then its clip"
            )
        }
        let event = try event(from: row)
        if event.hasClip { return event }
        let header = try FileHandle(forReadingFrom: upload.file).read(upToCount: 12) ?? Data()
        guard header.count == 12, header[4..<8] == Data("ftyp".utf8) else {
            throw APIError.invalid("the clip is not an MP4 file (no ftyp box at its start): send the clip's MP4 file")
        }
        try await artifacts.put(file: upload.file, digest: upload.digest)
        try await database.query(
            "UPDATE events SET clip_digest = \(upload.digest) WHERE id = \(event.id) AND clip_digest IS NULL")
        var stored = event
        stored.hasClip = true
        return stored
    }

    /// The file of an event's clip (MP4).
    public func eventClip(_ id: String) async throws -> URL {
        _ = try await event(id)
        guard
            let digest = try await database.query("SELECT clip_digest FROM events WHERE id = \(id)").first?
                .optionalText("clip_digest"), let url = try await artifacts.file(for: digest)
        else { throw APIError.notFound("clip for event", id) }
        return url
    }

    /// How many events of each type match `query`'s filters (its cursor and limit aside), most first.
    public func eventTypeCounts(_ query: EventQuery) async throws -> [(type: String, count: Int)] {
        var sql: SQL = "SELECT type, COUNT(*) AS n FROM events WHERE 1 = 1"
        sql.append(Self.eventFilters(query))
        sql.append(" GROUP BY type ORDER BY n DESC, type LIMIT 200")
        return try await database.query(sql).map { (try $0.text("type"), Int(try $0.integer("n"))) }
    }

    /// The distinct event types the server has (at most 200, by name).
    public func eventTypes() async throws -> [String] {
        try await database.query("SELECT DISTINCT type FROM events ORDER BY type LIMIT 200").map { try $0.text("type") }
    }
}
