import Crypto
import Foundation
public import Prometheus
import Synchronization
import VantageAPI

/// The server's Prometheus metrics, served at `/metrics`: counters of what devices send, and gauges of the fleet
/// counted by the database at most every few seconds. `vantage server` also bootstraps swift-metrics with this registry, so
/// Hummingbird's per-route request metrics (`hb_requests`, `hb_request_duration`, …) appear beside them.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let heartbeats: Counter
    let events: Counter
    let enrollments: Counter

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        heartbeats = registry.makeCounter(
            descriptor: Self.name("heartbeats", unit: "total", help: "Heartbeats received from devices"))
        events = registry.makeCounter(
            descriptor: Self.name(
                "events_ingested", unit: "total",
                help: "Events accepted from devices (a resent batch counts again; it is stored once)"))
        enrollments = registry.makeCounter(
            descriptor: Self.name("enrollments", unit: "total", help: "Devices enrolled"))
    }

    /// The shortest metrics token accepted: shorter ones can be guessed.
    public static let minimumTokenLength = 16

    /// Reads the metrics token from the first line of `file` (`vantage server --metrics-token-file`).
    public static func token(fromFile file: URL) throws -> String {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw ServerError(
                "cannot read the metrics token file \(file.path): check that it exists and that this user can read it")
        }
        let line = String(decoding: data.prefix(4096), as: UTF8.self).split(whereSeparator: \.isNewline).first ?? ""
        return try checkedToken(String(line), from: "the metrics token file \(file.path)")
    }

    /// Checks a metrics token: one word of at least ``minimumTokenLength`` printable ASCII characters.
    public static func checkedToken(_ value: String, from source: String) throws -> String {
        let token = value.trimmingCharacters(in: .whitespaces)
        guard token.count >= minimumTokenLength, token.count <= 1024,
            token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f })
        else {
            throw ServerError(
                "\(source) must hold one token of \(minimumTokenLength) to 1024 printable characters without spaces "
                    + "(e.g. from: openssl rand -hex 32)")
        }
        return token
    }

    /// Whether an `Authorization` header carries `token` as a bearer token (compared in constant time).
    static func authorizes(_ header: String?, token: String) -> Bool {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return false }
        let sent = SHA256.hash(data: Data(header.dropFirst(7).trimmingCharacters(in: .whitespaces).utf8))
        let expected = SHA256.hash(data: Data(token.utf8))
        return zip(sent, expected).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// `vantage_<name>[_<unit>]`.
    static func name(_ name: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "vantage", metricName: name, unitName: unit, helpText: help)
    }

    /// The fleet gauges are read from the database at most this often, whatever the scrape rate.
    static let gaugeRefreshInterval: Duration = .seconds(5)
    private let lastRefresh = Mutex<ContinuousClock.Instant?>(nil)

    /// The exposition text. The fleet gauges come from two counting queries (no rows are read), run at most once
    /// per ``gaugeRefreshInterval``: scrapes in between answer the gauges as last read.
    func scrape(_ store: Store) async throws -> [UInt8] {
        let now = ContinuousClock.now
        let due = lastRefresh.withLock { last -> Bool in
            guard last.map({ now - $0 >= Self.gaugeRefreshInterval }) ?? true else { return false }
            last = now
            return true
        }
        if due {
            do {
                try await refreshGauges(store)
            } catch {
                // Try again at the next scrape rather than after the interval.
                lastRefresh.withLock { $0 = nil }
                throw error
            }
        }
        return registry.emitToBuffer()
    }

    private func refreshGauges(_ store: Store) async throws {
        let devices = try await store.deviceCounts()
        for status in ConnectionStatus.allCases {
            registry.makeGauge(
                descriptor: Self.name("devices", help: "Devices by connection status"),
                labels: [("connection", status.rawValue.lowercased())]
            ).set(to: Double(devices[status] ?? 0))
        }
        let instances = try await store.instanceCounts()
        for status in InstanceStatus.allCases {
            registry.makeGauge(
                descriptor: Self.name("instances", help: "Application instances by status"),
                labels: [("status", status.rawValue.lowercased())]
            ).set(to: Double(instances.filter { $0.status == status }.map(\.count).reduce(0, +)))
        }
        for health in HealthStatus.allCases {
            registry.makeGauge(
                descriptor: Self.name("instances_health", help: "Application instances by health"),
                labels: [("health", health.rawValue.lowercased())]
            ).set(to: Double(instances.filter { $0.health == health }.map(\.count).reduce(0, +)))
        }
    }
}

extension Store {
    /// How many devices are in each connection status, counted by the database.
    func deviceCounts() async throws -> [ConnectionStatus: Int] {
        let cutoff = Millis.now() - Self.onlineWindowMillis
        guard
            let row = try await database.query(
                """
                SELECT COUNT(*) AS total,
                    COUNT(last_heartbeat_at) AS reporting,
                    COUNT(CASE WHEN last_heartbeat_at >= \(cutoff) THEN 1 END) AS online
                FROM devices
                """
            ).first
        else { return [:] }
        let total = Int(try row.integer("total"))
        let reporting = Int(try row.integer("reporting"))
        let online = Int(try row.integer("online"))
        return [.online: online, .offline: reporting - online, .notAvailable: total - reporting]
    }

    /// How many instances are in each (status, health), counted by the database.
    func instanceCounts() async throws -> [(status: InstanceStatus, health: HealthStatus, count: Int)] {
        try await database.query(
            "SELECT status, health_status, COUNT(*) AS n FROM instances GROUP BY status, health_status"
        ).map { row in
            (
                InstanceStatus(rawValue: try row.text("status")) ?? .deploymentError,
                HealthStatus(rawValue: try row.text("health_status")) ?? .notAvailable,
                Int(try row.integer("n"))
            )
        }
    }
}
