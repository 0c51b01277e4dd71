import Foundation
import VantageAPI
import VantageCore

/// What an operator must look at on a device: its certificate ended (renewable within the grace window, or past
/// it), its certificate is used from two places at once (a cloned box), its disk is full, or its clock is wrong.
///
/// Clones are told apart from restarts by the agent's session id (``Heartbeat/agentSession``, random per agent
/// process): a restart changes it once and the old one is never heard again, while two agents with one identity
/// take turns. A session heard again after another one spoke in between is a *return*; ``cloneReturns`` of them
/// within ``cloneWindowMillis`` flag the device.
extension Store {
    /// How long sessions and returns are remembered.
    static let cloneWindowMillis: Int64 = 600_000
    /// How many returns flag a device: a stopped agent's last heartbeat arriving late, after its successor's first,
    /// makes two at most (old, new, old, new).
    static let cloneReturns = 3
    /// A session's last-seen time is written at most this often while it is the only one speaking.
    static let sessionRefreshMillis: Int64 = 30_000

    /// The agent sessions recently heard from for one device (`devices.agent_sessions`).
    struct AgentSessions: Codable {
        struct Seen: Codable {
            var at: Int64
            var peer: String?
        }
        var current: String
        var seen: [String: Seen]
        /// When a session spoke again after another one had.
        var returns: [Int64]
    }

    /// Records which agent process sent a heartbeat, and flags the device (condition, audit record) the first time
    /// two of them are seen taking turns.
    func recordAgentSession(device id: String, _ session: String, peer: String?, now: Int64) async throws {
        var query: SQL = "SELECT agent_sessions, clone_detected_at FROM devices WHERE id = \(id)"
        if database.kind == .postgres { query.append(" FOR UPDATE") }
        let select = query
        let detected = try await database.transaction { db -> String? in
            guard let row = try await db.query(select).first else { return nil }
            let stored = try row.optionalText("agent_sessions").flatMap {
                try? Self.decodeJSON(AgentSessions.self, $0)
            }
            let seen = AgentSessions.Seen(at: now, peer: peer)
            guard var state = stored else {
                let fresh = AgentSessions(current: session, seen: [session: seen], returns: [])
                try await db.query("UPDATE devices SET agent_sessions = \(Self.json(fresh)) WHERE id = \(id)")
                return nil
            }
            let horizon = now - Self.cloneWindowMillis
            if session == state.current {
                // The usual case: the one agent speaking again. Written only now and then.
                if let last = state.seen[session], now - last.at < Self.sessionRefreshMillis, last.peer == peer {
                    return nil
                }
            } else if let earlier = state.seen[session], earlier.at >= horizon {
                state.returns.append(now)
            }
            state.current = session
            state.seen[session] = seen
            state.seen = state.seen.filter { $0.value.at >= horizon }
            if state.seen.count > 16 {
                let newest = state.seen.sorted { $0.value.at > $1.value.at }.prefix(16)
                state.seen = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
            }
            state.returns = state.returns.filter { $0 >= horizon }
            guard state.returns.count >= Self.cloneReturns, try row.optionalInteger("clone_detected_at") == nil else {
                try await db.query("UPDATE devices SET agent_sessions = \(Self.json(state)) WHERE id = \(id)")
                return nil
            }
            let peers = Set(state.seen.values.compactMap(\.peer)).sorted()
            let detail =
                "its certificate is used by \(state.seen.count) agents at once (agent sessions \(state.seen.keys.sorted().joined(separator: ", ")); from \(peers.isEmpty ? "unknown addresses" : peers.joined(separator: ", ")))"
            try await db.query(
                """
                UPDATE devices SET agent_sessions = \(Self.json(state)), clone_detected_at = \(now),
                    clone_detail = \(detail) WHERE id = \(id)
                """)
            return detail
        }
        if let detected {
            try await audit(
                actor: "device:\(id)", action: "deviceCertificateCloned", target: "/api/v1/devices/\(id)",
                detail: "cloned device certificate: \(detected)")
        }
    }

    /// The device's conditions, from a row read with ``deviceColumns``; nil when there are none.
    func conditions(from row: SQLRow, now: Int64) throws -> [DeviceCondition]? {
        var conditions: [DeviceCondition] = []
        let id = try row.text("id")
        if let ended = try row.optionalInteger("certificate_not_after"), ended <= now {
            let until = ended + expiredRenewalMillis
            let message =
                now < until
                ? "certificate expired on \(APIJSON.formatTime(Millis.date(ended))); the agent renews it by itself when it next reaches the server, until \(APIJSON.formatTime(Millis.date(until)))"
                : "certificate expired on \(APIJSON.formatTime(Millis.date(ended))), past the renewal window; run `vantage devices token \(id)` and `vantage agent enroll --force …` on the box"
            conditions.append(DeviceCondition(kind: .certificateExpired, message: message, since: Millis.date(ended)))
        }
        if let detected = try row.optionalInteger("clone_detected_at") {
            let detail = try row.optionalText("clone_detail") ?? "its certificate is used by two agents at once"
            conditions.append(
                DeviceCondition(
                    kind: .certificateCloned,
                    message:
                        "cloned certificate: \(detail). Cut them off with `vantage devices revoke \(id)`, then enroll the box to keep again (`vantage devices token \(id)`, and `vantage agent enroll --force …` on it)",
                    since: Millis.date(detected)))
        }
        // The figures of the last heartbeat.
        let metrics = try row.optionalText("last_metrics").flatMap { try? Self.decodeJSON([String: Double].self, $0) }
        let heartbeat = Millis.date(try row.optionalInteger("last_heartbeat_at"))
        if let metrics, metrics["disk.full"] == 1 {
            // As the agent's last heartbeat said (`disk.full`, `disk.free_bytes`, `disk.full_since`).
            let free = metrics["disk.free_bytes"].map { " (\(Int64($0) >> 20) MiB free)" } ?? ""
            let since = metrics["disk.full_since"].map { Date(timeIntervalSince1970: $0) }
            conditions.append(
                DeviceCondition(
                    kind: .diskFull,
                    message:
                        "the disk holding the agent's data is full\(free): applications keep running, new deployments wait and events that cannot be stored are counted (outbox.unstored_events); free disk space on the device",
                    since: since ?? heartbeat ?? Date()))
        }
        if let skew = metrics?["clock.skew_seconds"], ClockSkew.isFlagged(skew) {
            // The skew the last heartbeat showed (``heartbeat(_:_:peer:)`` turns the device's clock into it): the
            // server knows it since then.
            conditions.append(
                DeviceCondition(kind: .clockSkew, message: ClockSkew.message(skew), since: heartbeat ?? Date()))
        }
        return conditions.isEmpty ? nil : conditions
    }
}
