import Foundation
public import Prometheus
import VantageAPI

/// The server's Prometheus metrics, served at `/metrics`: counters of what devices send, and gauges of the fleet
/// read from the database at each scrape. `vantage server` also bootstraps swift-metrics with this registry, so
/// Hummingbird's per-route request metrics (`hb_requests`, `hb_request_duration`, …) appear beside them.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let heartbeats: Counter
    let events: Counter
    let enrollments: Counter

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        heartbeats = registry.makeCounter(name: "vantage_heartbeats_total", help: "Heartbeats received from devices")
        events = registry.makeCounter(
            name: "vantage_events_ingested_total",
            help: "Events accepted from devices (a resent batch counts again; it is stored once)")
        enrollments = registry.makeCounter(name: "vantage_enrollments_total", help: "Devices enrolled")
    }

    /// The exposition text, with the fleet gauges read now.
    func scrape(_ store: Store) async throws -> [UInt8] {
        let devices = try await store.listDevices()
        for status in ConnectionStatus.allCases {
            registry.makeGauge(
                name: "vantage_devices", labels: [("connection", status.rawValue.lowercased())],
                help: "Devices by connection status"
            ).set(to: Double(devices.filter { $0.connectionStatus == status }.count))
        }
        let instances = try await store.listInstances()
        for status in InstanceStatus.allCases {
            registry.makeGauge(
                name: "vantage_instances", labels: [("status", status.rawValue.lowercased())],
                help: "Application instances by status"
            ).set(to: Double(instances.filter { $0.status == status }.count))
        }
        for health in HealthStatus.allCases {
            registry.makeGauge(
                name: "vantage_instances_health", labels: [("health", health.rawValue.lowercased())],
                help: "Application instances by health"
            ).set(to: Double(instances.filter { $0.healthStatus == health }.count))
        }
        return registry.emitToBuffer()
    }
}
