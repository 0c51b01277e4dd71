import AsyncHTTPClient
import Foundation
import Logging
import VantageCore

/// Makes the configured sinks: reads each one's settings (``SinkConfiguration``) into its client's configuration,
/// with clear errors for missing or wrong settings, and wraps the client as a ``MessageSink`` or ``ObjectSink``.
public enum SinkFactory {
    /// Connects one sink (MQTT clients start connecting in the background; HTTP sinks connect per delivery).
    public static func connect(_ sink: SinkConfiguration, context: EventContext, logger: Logger) throws(SinkError)
        -> ConnectedSink
    {
        switch sink.kind {
        case .mqtt: return .messages(try MQTTMessageSink(sink, context: context, logger: logger))
        case .webhook: return .messages(try WebhookMessageSink(sink, logger: logger))
        case .s3: return .objects(try S3ObjectSink(sink, context: context, logger: logger))
        }
    }

    /// Fills `{device}`, `{instance}`, `{application}`, `{camera}`, `{type}`, `{id}`, `{phase}` and `{date}`
    /// (YYYY-MM-DD of the event) from the event's message. Characters MQTT topics and S3 keys treat specially
    /// (`/`, `+`, `#`) inside a value become `_`.
    public static func expand(_ template: String, event: JSONValue) -> String {
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            out += rest[..<open]
            let name = String(rest[rest.index(after: open)..<close])
            let value: String
            switch name {
            case "date": value = String((event["time"]?.stringValue ?? "").prefix(10))
            default: value = event[name]?.stringValue ?? (name == "camera" ? "none" : "")
            }
            out += value.map { "/+#".contains($0) ? "_" : String($0) }.joined()
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    /// An HTTP client for one sink: redirects are not followed (a webhook that moved is a configuration error).
    static func http() -> HTTPClient {
        HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))
    }
}

/// MQTT: each event's message is published to the sink's topic template.
final class MQTTMessageSink: MessageSink {
    let client: MQTTClient
    let topic: String
    let qos: Int
    let retain: Bool

    init(_ sink: SinkConfiguration, context: EventContext, logger: Logger) throws(SinkError) {
        guard let urlText = sink.string("url"), let url = URL(string: urlText) else {
            throw SinkError(
                sink: sink.name, "\"url\" must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT]", retryable: false)
        }
        let tlsSettings = ["caFile", "certFile", "keyFile", "insecure"].contains { sink.settings[$0] != nil }
        var availability: MQTTConfiguration.Availability?
        if let template = sink.string("availabilityTopic") {
            let topic = SinkFactory.expand(
                template,
                event: .object([
                    "device": .string(context.device), "instance": .string(context.instance),
                    "application": .string(context.application),
                ]))
            availability = MQTTConfiguration.Availability(topic: topic)
        }
        var configuration = try MQTTConfiguration(
            url: url,
            clientID: sink.string("clientId")
                ?? MQTTConfiguration.stableClientID(device: context.device, instance: context.instance, sink: sink.name),
            tls: tlsSettings
                ? MQTTConfiguration.TLS(
                    caFile: sink.string("caFile"), certFile: sink.string("certFile"), keyFile: sink.string("keyFile"),
                    insecure: sink.bool("insecure") ?? false) : nil,
            username: sink.string("username"), password: sink.string("password"), availability: availability,
            sink: sink.name)
        if let keepAlive = sink.number("keepAlive") { configuration.keepAlive = Int(keepAlive) }
        client = try MQTTClient(name: sink.name, configuration: configuration, logger: logger)
        topic = sink.string("topic") ?? "vantage/{device}/{camera}/{type}"
        qos = Int(sink.number("qos") ?? 1)
        retain = sink.bool("retain") ?? false
        client.start()
    }

    func send(_ body: [UInt8], event: JSONValue) async throws(SinkError) {
        try await client.publish(
            topic: SinkFactory.expand(topic, event: event), payload: body, qos: qos, retain: retain)
    }

    func shutdown() async { await client.stop() }
}

/// Webhooks: each event's message is POSTed, signed.
final class WebhookMessageSink: MessageSink {
    let client: WebhookClient
    let http: HTTPClient

    init(_ sink: SinkConfiguration, logger: Logger) throws(SinkError) {
        guard let urlText = sink.string("url"), let url = URL(string: urlText),
            url.scheme == "http" || url.scheme == "https"
        else {
            throw SinkError(sink: sink.name, "\"url\" must be an http:// or https:// URL", retryable: false)
        }
        var headers: [String: String] = [:]
        if case .strings(let lines)? = sink.settings["headers"] {
            for line in lines {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2 { headers[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
            }
        }
        let timeout = Duration.milliseconds(Int((sink.number("timeout") ?? 10) * 1000))
        http = SinkFactory.http()
        client = WebhookClient(
            name: sink.name,
            configuration: WebhookConfiguration(
                url: url, secret: sink.string("secret"), timeout: timeout, headers: headers),
            httpClient: http, logger: logger)
    }

    func send(_ body: [UInt8], event: JSONValue) async throws(SinkError) {
        try await client.deliver(body: body, eventId: event["id"]?.stringValue ?? "", time: Date())
    }

    func shutdown() async { try? await http.shutdown() }
}

/// S3-compatible object storage: snapshots and clips, under `prefix` (a template; default
/// `{application}/{camera}/{date}/`), named after the event's ID (and phase).
final class S3ObjectSink: ObjectSink {
    let client: S3Client
    let http: HTTPClient
    let prefix: String

    init(_ sink: SinkConfiguration, context: EventContext, logger: Logger) throws(SinkError) {
        var endpoint: URL?
        if let text = sink.string("endpoint") {
            guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw SinkError(sink: sink.name, "\"endpoint\" must be an http:// or https:// URL", retryable: false)
            }
            endpoint = url
        }
        let partSize = Int(sink.number("partSize") ?? Double(8 << 20))
        guard partSize >= S3Configuration.minimumPartSize else {
            throw SinkError(
                sink: sink.name, "\"partSize\" must be at least 5 MiB (S3's smallest part)", retryable: false)
        }
        let configuration = S3Configuration(
            endpoint: endpoint, region: sink.string("region") ?? "us-east-1", bucket: sink.string("bucket") ?? "",
            accessKeyId: sink.string("accessKeyId") ?? "", secretAccessKey: sink.string("secretAccessKey") ?? "",
            sessionToken: sink.string("sessionToken"), pathStyle: sink.bool("pathStyle") ?? (endpoint != nil),
            partSize: partSize)
        http = SinkFactory.http()
        client = S3Client(name: sink.name, configuration: configuration, httpClient: http, logger: logger)
        prefix = sink.string("prefix") ?? "{application}/{camera}/{date}/"
    }

    func store(file: URL, event: JSONValue, part: PendingDelivery.Part) async throws(SinkError) -> JSONValue {
        var name = event["id"]?.stringValue ?? UUID().uuidString.lowercased()
        if let phase = event["phase"]?.stringValue { name += "-\(phase)" }
        let isClip = part == .clip
        let key = SinkFactory.expand(prefix, event: event) + name + (isClip ? ".mp4" : ".jpg")
        let stored = try await client.put(key: key, file: file, contentType: isClip ? "video/mp4" : "image/jpeg")
        return .object([
            "key": .string(stored.key), "url": .string(stored.url), "size": .number(Double(stored.size)),
            "sha256": .string(stored.sha256), "bucket": .string(client.configuration.bucket),
        ])
    }

    func shutdown() async { try? await http.shutdown() }
}
