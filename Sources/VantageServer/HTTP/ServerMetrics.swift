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
        heartbeats = registry.makeCounter(
            descriptor: Self.name("heartbeats", unit: "total", help: "Heartbeats received from devices"))
        events = registry.makeCounter(
            descriptor: Self.name(
                "events_ingested", unit: "total",
                help: "Events accepted from devices (a resent batch counts again; it is stored once)"))
        enrollments = registry.makeCounter(
            descriptor: Self.name("enrollments", unit: "total", help: "Devices enrolled"))
    }

    /// `vantage_<name>[_<unit>]`.
    static func name(_ name: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "vantage", metricName: name, unitName: unit, helpText: help)
    }

    /// The exposition text, with the fleet gauges read now.
    func scrape(_ store: Store) async throws -> [UInt8] {
        let devices = try await store.listDevices()
        for status in ConnectionStatus.allCases {
            registry.makeGauge(
                descriptor: Self.name("devices", help: "Devices by connection status"),
                labels: [("connection", status.rawValue.lowercased())]
            ).set(to: Double(devices.filter { $0.connectionStatus == status }.count))
        }
        let instances = try await store.listInstances()
        for status in InstanceStatus.allCases {
            registry.makeGauge(
                descriptor: Self.name("instances", help: "Application instances by status"),
                labels: [("status", status.rawValue.lowercased())]
            ).set(to: Double(instances.filter { $0.status == status }.count))
        }
        for health in HealthStatus.allCases {
            registry.makeGauge(
                descriptor: Self.name("instances_health", help: "Application instances by health"),
                labels: [("health", health.rawValue.lowercased())]
            ).set(to: Double(instances.filter { $0.healthStatus == health }.count))
        }
        return registry.emitToBuffer()
    }
}
