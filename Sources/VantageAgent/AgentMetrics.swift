import Foundation
import Hummingbird
import Logging
import Prometheus
public import VantageListeners

/// The agent's Prometheus metrics, served at `/metrics` (`vantage agent --metrics-listen`): the same figures as
/// its heartbeats, as gauges. `camera.<id>.<name>` becomes `vantage_agent_camera_<name>{camera="<id>"}`,
/// `instance.<id>.<name>` becomes `vantage_agent_instance_<name>{instance="<id>"}`, anything else
/// `vantage_agent_<name>` (dots as underscores).
public final class AgentMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// Sets every gauge from one heartbeat's figures.
    func update(_ metrics: [String: Double], serverReachable: Bool) {
        for (name, value) in metrics {
            let (metric, labels) = Self.prometheusName(name)
            registry.makeGauge(descriptor: .init(metricName: metric, unitName: "", helpText: ""), labels: labels)
                .set(to: value)
        }
        registry.makeGauge(
            descriptor: .init(
                metricName: "vantage_agent_server_reachable", unitName: "",
                helpText: "1 while the agent's last call to the server got an answer"),
            labels: []
        ).set(to: serverReachable ? 1 : 0)
    }

    /// The Prometheus name and labels of a heartbeat metric.
    static func prometheusName(_ name: String) -> (String, [(String, String)]) {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if parts.count >= 3, parts[0] == "camera" || parts[0] == "instance" {
            let rest = parts[2...].joined(separator: "_")
            return ("vantage_agent_\(parts[0])_\(sanitize(rest))", [(parts[0], parts[1])])
        }
        return ("vantage_agent_" + sanitize(name), [])
    }

    private static func sanitize(_ text: String) -> String {
        String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
    }

    /// The metrics endpoint's bounds: a few scrapers at a time, idle ones closed after 30 s.
    public static let listenerLimits = ListenerLimits(idleTimeout: .seconds(30), maxConnections: 64)

    /// A small HTTP server answering `/metrics` (and `/healthz`) on `host:port`; `limits` bound its connections
    /// (an idle timeout and a cap, so that stalled clients cannot take the agent's file descriptors).
    public func application(
        host: String, port: Int, limits: ListenerLimits = AgentMetrics.listenerLimits, logger: Logger,
        onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let connections = ConnectionLimiter(limits, name: "agent metrics", logger: logger)
        let router = Router()
        let registry = registry
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("/healthz") { _, _ in "ok\n" }
        return Application(
            router: router,
            server: connections.http1(),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "Vantage agent"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                logger.info("metrics: http://\(host):\(bound)/metrics")
                await onServerRunning(bound)
            },
            logger: logger)
    }
}
