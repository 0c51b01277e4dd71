import AsyncHTTPClient
import Foundation
import Logging
import Testing

@testable import VantageOutputs

/// The webhook sink's client against scripts/webhook-receiver (started per test).
@Suite("Webhook client")
struct WebhookClientTests {
    static let logger = Logger(label: "test.webhook")
    static let secret = "whsec-test-5f2b9c"
    static let body = Array(#"{"id":"e1","type":"zone.enter","zone":"dock"}"#.utf8)

    /// Runs `body` with a started receiver and an HTTP client that follows no redirects, stopping both afterwards.
    static func withReceiver(
        secret: String? = WebhookClientTests.secret, failFirst: Int = 0, delayWhile: URL? = nil,
        statusWhile: (file: URL, status: Int)? = nil,
        _ body: (WebhookReceiver, HTTPClient) async throws -> Void
    ) async throws {
        let receiver = try await WebhookReceiver.start(
            secret: secret, failFirst: failFirst, delayWhile: delayWhile, statusWhile: statusWhile)
        defer { receiver.stop() }
        let http = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))
        do {
            try await body(receiver, http)
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    static func client(
        _ url: URL, secret: String? = WebhookClientTests.secret, timeout: Duration = .seconds(10), http: HTTPClient
    )
        -> WebhookClient
    {
        WebhookClient(
            name: "alerts", configuration: WebhookConfiguration(url: url, secret: secret, timeout: timeout),
            httpClient: http, logger: logger)
    }

    static func sortedJSON(_ bytes: [UInt8]) throws -> [UInt8] {
        let object = try JSONSerialization.jsonObject(with: Data(bytes))
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.fragmentsAllowed, .sortedKeys]))
    }

    @Test("a signed delivery is verified by the receiver and arrives with its event ID and timestamp")
    func signedDelivery() async throws {
        try await Self.withReceiver { receiver, http in
            let time = Date()
            try await Self.client(receiver.url, http: http).deliver(body: Self.body, eventId: "e1", time: time)
            let deliveries = try receiver.deliveries()
            #expect(deliveries.count == 1)
            #expect(deliveries.first?.eventId == "e1")
            #expect(deliveries.first?.timestamp == String(Int(time.timeIntervalSince1970)))
            #expect(deliveries.first?.path == "/hook")
            #expect(deliveries.first?.body == (try Self.sortedJSON(Self.body)))
        }
    }

    @Test("a wrong secret is refused with 401 and reported as not retryable, without the secret")
    func wrongSecret() async throws {
        try await Self.withReceiver { receiver, http in
            let client = Self.client(receiver.url, secret: "not-the-secret-77", http: http)
            let error = try await #require(throws: SinkError.self) {
                try await client.deliver(body: Self.body, eventId: "e2")
            }
            #expect(!error.retryable)
            #expect(error.message.contains("401"))
            #expect(error.message.contains("check that `secret` is the receiver's webhook secret"))
            #expect(error.message.contains("does not match"))  // the first bytes of the receiver's answer
            #expect(!error.description.contains("not-the-secret-77"))
            #expect(try receiver.deliveries().isEmpty)
        }
    }

    @Test("a 503 is retryable, and the retry is delivered")
    func serviceUnavailable() async throws {
        try await Self.withReceiver(failFirst: 1) { receiver, http in
            let client = Self.client(receiver.url, http: http)
            let error = try await #require(throws: SinkError.self) {
                try await client.deliver(body: Self.body, eventId: "e3")
            }
            #expect(error.retryable)
            #expect(error.message.contains("503"))
            try await client.deliver(body: Self.body, eventId: "e3")
            #expect(try receiver.deliveries().map(\.eventId) == ["e3"])
        }
    }

    @Test(
        "answers are classified: 408 and 429 retryable; 400, 404 and redirects not",
        arguments: [(408, true), (429, true), (400, false), (404, false), (302, false)])
    func classification(status: Int, retryable: Bool) async throws {
        let flag = FileManager.default.temporaryDirectory.appending(path: "status-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: flag.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: flag) }
        try await Self.withReceiver(statusWhile: (flag, status)) { receiver, http in
            let error = try await #require(throws: SinkError.self) {
                try await Self.client(receiver.url, http: http).deliver(body: Self.body, eventId: "e4")
            }
            #expect(error.retryable == retryable)
            #expect(error.message.contains("answered \(status)"))
            if status == 302 { #expect(error.message.contains("redirects are not followed")) }
            #expect(try receiver.deliveries().isEmpty)
        }
    }

    @Test("a receiver slower than the timeout gives a retryable timeout error, about when the timeout ends")
    func timeout() async throws {
        let flag = FileManager.default.temporaryDirectory.appending(path: "slow-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: flag.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: flag) }
        try await Self.withReceiver(delayWhile: flag) { receiver, http in
            let client = Self.client(receiver.url, timeout: .seconds(1), http: http)
            let started = ContinuousClock.now
            let error = try await #require(throws: SinkError.self) {
                try await client.deliver(body: Self.body, eventId: "e5")
            }
            // The receiver waits 30 s; the client must give up long before (generous bound: no flaky timing).
            #expect(ContinuousClock.now - started < .seconds(15))
            #expect(error.retryable)
            #expect(error.message.contains("no answer from"))
        }
    }

    @Test("nothing listening is a retryable error naming the receiver's origin, never its path")
    func unreachable() async throws {
        let port = try freeTCPPort()
        let http = HTTPClient.shared
        let url = URL(string: "http://127.0.0.1:\(port)/hooks/T000/secret-token-path")!
        let error = try await #require(throws: SinkError.self) {
            // AsyncHTTPClient retries a refused connection until the timeout, then reports the refusal.
            try await Self.client(url, timeout: .seconds(2), http: http).deliver(body: Self.body, eventId: "e6")
        }
        #expect(error.retryable)
        #expect(error.message.contains("http://127.0.0.1:\(port)"))
        #expect(!error.message.contains("secret-token-path"))
    }

    @Test("signatures match openssl's HMAC and verify() accepts only genuine, fresh deliveries")
    func signatures() {
        let body = Array("{}".utf8)
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac s3cr3t
        let expected = "v1=dd8508e44d9a9f82f2690fb7dff1da8a6ae99700d98a23a4e7e1c307af3cb6cb"
        #expect(WebhookClient.signature(secret: "s3cr3t", timestamp: 1_700_000_000, body: body) == expected)
        let now = Date(timeIntervalSince1970: 1_700_000_060)
        #expect(
            WebhookClient.verify(secret: "s3cr3t", signature: expected, timestamp: "1700000000", body: body, now: now))
        // Several signatures (secret rotation): any one matching is enough.
        #expect(
            WebhookClient.verify(
                secret: "s3cr3t", signature: "v1=00, \(expected)", timestamp: "1700000000", body: body, now: now))
        #expect(
            !WebhookClient.verify(
                secret: "s3cr3t", signature: expected, timestamp: "1700000000", body: Array("{ }".utf8), now: now))
        #expect(
            !WebhookClient.verify(secret: "other", signature: expected, timestamp: "1700000000", body: body, now: now))
        // A recorded delivery replayed an hour later is refused.
        #expect(
            !WebhookClient.verify(
                secret: "s3cr3t", signature: expected, timestamp: "1700000000", body: body,
                now: now.addingTimeInterval(3600)))
        let configuration = WebhookConfiguration(url: URL(string: "https://h.example/p/token")!, secret: "s3cr3t")
        #expect(!"\(configuration)".contains("s3cr3t"))
        #expect(!"\(configuration)".contains("token"))
    }
}
