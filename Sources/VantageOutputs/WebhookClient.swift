// The webhook sink's client: one signed POST per event, and the verdict on the answer.
import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Where and how the webhook sink delivers. `description` shows neither the secret nor the URL's path and query
/// (webhook URLs often carry a token there).
public struct WebhookConfiguration: Sendable, CustomStringConvertible, CustomReflectable {
    /// The receiver's address (`http://` or `https://`). Redirects are not followed: give the final address.
    public var url: URL
    /// The HMAC-SHA256 key for `X-Vantage-Signature`; nil sends unsigned requests. Secret: never logged.
    public var secret: String?
    /// How long the receiver has to answer before the delivery counts as failed (and is retried).
    public var timeout: Duration
    /// Extra headers sent with every delivery (e.g. `Authorization`); they cannot replace the `X-Vantage-*` ones.
    public var headers: [String: String]

    /// Creates a configuration; see the properties for what each value means.
    public init(url: URL, secret: String? = nil, timeout: Duration = .seconds(10), headers: [String: String] = [:]) {
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.headers = headers
    }

    public var description: String {
        "WebhookConfiguration(url: \(WebhookClient.origin(of: url)), signed: \(secret != nil), timeout: \(timeout))"
    }

    /// What `dump` shows: the description's fields, no secrets.
    public var customMirror: Mirror {
        Mirror(self, children: ["url": WebhookClient.origin(of: url), "signed": secret != nil, "timeout": timeout])
    }
}

/// Delivers events to a webhook: `POST` of the event's JSON, signed with HMAC-SHA256 over the timestamp and body.
///
/// Headers sent:
/// - `Content-Type: application/json`
/// - `X-Vantage-Event-Id: <id>`: the same on every retry of an event, so receivers can drop duplicates;
/// - `X-Vantage-Timestamp: <unix seconds>`: when this attempt was signed;
/// - `X-Vantage-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` when a secret is set.
///
/// The client only classifies the answer: 2xx is delivered; 408, 429, 5xx, timeouts and connection failures throw a
/// retryable ``SinkError``; a redirect or any other 4xx a non-retryable one. Retrying with backoff and keeping each
/// endpoint's events in order is the outbox's job. Redirects are never followed when `httpClient` is configured with
/// `redirectConfiguration: .disallow` (as the sinks' clients are); with a client that follows them, a redirected
/// delivery is still reported as a configuration error.
public final class WebhookClient: Sendable {
    /// The header carrying the event's ID.
    public static let eventIdHeader = "X-Vantage-Event-Id"
    /// The header carrying the signing time, in Unix seconds.
    public static let timestampHeader = "X-Vantage-Timestamp"
    /// The header carrying the signature, `v1=<hex>`.
    public static let signatureHeader = "X-Vantage-Signature"

    /// The sink's name, as configured (used in errors and logs).
    public let name: String
    /// Where events go.
    public let configuration: WebhookConfiguration
    private let httpClient: HTTPClient
    private let logger: Logger

    /// Creates a client for the sink `name`. The caller owns `httpClient` and shuts it down.
    public init(name: String, configuration: WebhookConfiguration, httpClient: HTTPClient, logger: Logger) {
        self.name = name
        self.configuration = configuration
        self.httpClient = httpClient
        var logger = logger
        logger[metadataKey: "sink.name"] = "\(name)"
        self.logger = logger
    }

    /// POSTs `body` (the event's JSON) once; returns when the receiver answered 2xx.
    ///
    /// - Parameters:
    ///   - eventId: the event's ID, sent as `X-Vantage-Event-Id`.
    ///   - time: the signing time sent as `X-Vantage-Timestamp`.
    public func deliver(body: [UInt8], eventId: String, time: Date = Date()) async throws(SinkError) {
        let timestamp = Int(time.timeIntervalSince1970.rounded(.down))
        var request = HTTPClientRequest(url: configuration.url.absoluteString)
        request.method = .POST
        for (name, value) in configuration.headers { request.headers.replaceOrAdd(name: name, value: value) }
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.headers.replaceOrAdd(name: Self.eventIdHeader, value: eventId)
        request.headers.replaceOrAdd(name: Self.timestampHeader, value: String(timestamp))
        if let secret = configuration.secret {
            request.headers.replaceOrAdd(
                name: Self.signatureHeader, value: Self.signature(secret: secret, timestamp: timestamp, body: body))
        }
        request.body = .bytes(ByteBuffer(bytes: body))

        let origin = Self.origin(of: configuration.url)
        let response: HTTPClientResponse
        let answer: ByteBuffer
        do {
            response = try await httpClient.execute(request, timeout: SinkHTTP.timeAmount(configuration.timeout))
            answer = try await response.body.collect(upTo: 64 << 10)
        } catch {
            throw SinkHTTP.transportError(
                sink: name, doing: "delivering event \(eventId)", endpoint: origin, error: error,
                timeout: configuration.timeout)
        }
        let status = Int(response.status.code)
        let excerpt = String(decoding: answer.readableBytesView.prefix(200), as: UTF8.self)
        let said = excerpt.isEmpty ? "" : ": \(excerpt)"
        if response.history.count > 1 {
            throw SinkError(
                sink: name,
                "\(origin) redirected the delivery of event \(eventId); set `url` to the address it redirects to",
                retryable: false)
        }
        switch status {
        case 200..<300:
            logger.debug("delivered", metadata: ["event.id": "\(eventId)", "http.status": "\(status)"])
        case 300..<400:
            let location = response.headers.first(name: "Location").map { " to \($0)" } ?? ""
            throw SinkError(
                sink: name,
                "\(origin) answered \(status) (a redirect\(location)) for event \(eventId); redirects are not "
                    + "followed: set `url` to the final address", retryable: false)
        case 408, 429, 500..<600:
            throw SinkError(sink: name, "\(origin) answered \(status) for event \(eventId)\(said); will try again")
        case 401, 403:
            let hint =
                configuration.secret == nil
                ? "the receiver wants authentication: set `secret` or an Authorization header in `headers`"
                : "check that `secret` is the receiver's webhook secret"
            throw SinkError(
                sink: name, "\(origin) answered \(status) for event \(eventId)\(said); \(hint)", retryable: false)
        default:
            throw SinkError(
                sink: name, "\(origin) answered \(status) for event \(eventId)\(said); fix the receiver or `url`",
                retryable: false)
        }
    }

    /// The `X-Vantage-Signature` value: `v1=` and the hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed by `secret`.
    public static func signature(secret: String, timestamp: Int, body: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("\(timestamp).".utf8) + body, using: SymmetricKey(data: Array(secret.utf8)))
        return "v1=" + SigV4Signer.hex(mac)
    }

    /// Checks a delivery as a receiver written in Swift should: the signature matches (any of several
    /// comma-separated `v1=` values, for secret rotation) and the timestamp is within `tolerance` of `now`, so a
    /// recorded delivery cannot be replayed later. Compares in constant time.
    ///
    /// - Parameters:
    ///   - signature: the `X-Vantage-Signature` header.
    ///   - timestamp: the `X-Vantage-Timestamp` header.
    public static func verify(
        secret: String, signature: String, timestamp: String, body: [UInt8], now: Date = Date(),
        tolerance: Duration = .seconds(300)
    ) -> Bool {
        guard let seconds = Int(timestamp.trimmingCharacters(in: .whitespaces)),
            abs(now.timeIntervalSince1970 - Double(seconds)) <= Double(tolerance.components.seconds)
        else { return false }
        let expected = Array(Self.signature(secret: secret, timestamp: seconds, body: body).utf8)
        var matched = false
        for candidate in signature.split(separator: ",") {
            let given = Array(candidate.trimmingCharacters(in: .whitespaces).utf8)
            guard given.count == expected.count else { continue }
            var difference: UInt8 = 0
            for (a, b) in zip(given, expected) { difference |= a ^ b }
            matched = matched || difference == 0
        }
        return matched
    }

    /// `scheme://host[:port]` of `url`: what errors and logs name, since a webhook's path or query may be a secret.
    static func origin(of url: URL) -> String {
        let port = url.port.map { ":\($0)" } ?? ""
        return "\(url.scheme ?? "http")://\(url.host(percentEncoded: true) ?? "")\(port)"
    }
}
