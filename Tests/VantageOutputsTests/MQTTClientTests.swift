import Foundation
import Logging
import Synchronization
import Testing

@testable import VantageOutputs

#if canImport(Glibc)
    import Glibc
#endif

/// Quiet unless VANTAGE_TEST_LOG is set (then libmosquitto's and the client's logs go to stderr).
private let testLogger: Logger = {
    var logger = Logger(label: "test.mqtt") { label -> any LogHandler in
        if ProcessInfo.processInfo.environment["VANTAGE_TEST_LOG"] == nil { return SwiftLogNoOpLogHandler() }
        return StreamLogHandler.standardError(label: label)
    }
    logger.logLevel = .trace
    return logger
}()

/// Starts a client, runs `body`, and always stops the client.
private func withClient<T>(
    _ configuration: MQTTConfiguration, name: String = "alerts", _ body: (MQTTClient) async throws -> T
) async throws -> T {
    let client = try MQTTClient(name: name, configuration: configuration, logger: testLogger)
    client.start()
    do {
        let result = try await body(client)
        await client.stop()
        return result
    } catch {
        await client.stop()
        throw error
    }
}

/// Publishes the way the outbox does: a retryable failure is retried (after 50 ms) until `timeout`.
private func publishRetrying(
    _ client: MQTTClient, topic: String, _ payload: [UInt8], qos: Int, retain: Bool = false,
    timeout: Duration = .seconds(30)
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        do throws(SinkError) {
            try await client.publish(topic: topic, payload: payload, qos: qos, retain: retain)
            return
        } catch {
            if !error.retryable || ContinuousClock.now > deadline { throw error }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// Publishes until the client throws an error that `matches` (while connecting, it first says "not connected yet").
private func firstError(
    _ client: MQTTClient, timeout: Duration = .seconds(30), where matches: (SinkError) -> Bool
) async throws -> SinkError {
    let deadline = ContinuousClock.now + timeout
    var last: SinkError?
    while ContinuousClock.now < deadline {
        do {
            try await client.publish(topic: "test/never", payload: Array("x".utf8), qos: 1)
            throw MosquittoTestError("the publish succeeded, but it should have failed")
        } catch let error as SinkError {
            if matches(error) { return error }
            last = error
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw MosquittoTestError("no matching error within \(timeout); the last was: \(last?.message ?? "none")")
}

private func configuration(
    _ broker: MosquittoBroker, clientID: String, tls: MQTTConfiguration.TLS? = nil, username: String? = nil,
    password: String? = nil, availability: MQTTConfiguration.Availability? = nil
) throws -> MQTTConfiguration {
    var configuration = try MQTTConfiguration(
        url: broker.url, clientID: clientID, tls: tls, username: username, password: password,
        availability: availability)
    // Tests restart brokers: reconnect quickly.
    configuration.reconnectDelay = .milliseconds(200)
    configuration.reconnectDelayMax = .seconds(1)
    return configuration
}

@Suite("MQTT configuration")
struct MQTTConfigurationTests {
    @Test func urlsGiveHostPortAndTLS() throws {
        let plain = try MQTTConfiguration(url: URL(string: "mqtt://broker.local")!, clientID: "c")
        #expect(plain.host == "broker.local" && plain.port == 1883 && plain.tls == nil)
        let secure = try MQTTConfiguration(url: URL(string: "mqtts://broker.local")!, clientID: "c")
        #expect(secure.port == 8883 && secure.tls == MQTTConfiguration.TLS())
        let explicit = try MQTTConfiguration(
            url: URL(string: "MQTT://user:p%40ss@10.0.0.5:1999")!, clientID: "c")
        #expect(explicit.port == 1999 && explicit.username == "user" && explicit.password == "p@ss")
        #expect(!explicit.description.contains("p@ss"))
    }

    @Test func badURLsAreRejectedWithTheFix() {
        #expect(throws: SinkError.self) { try MQTTConfiguration(url: URL(string: "http://b:1883")!, clientID: "c") }
        do {
            _ = try MQTTConfiguration(url: URL(string: "mqtt://b/vantage/topic")!, clientID: "c")
            Issue.record("a URL with a topic path was accepted")
        } catch {
            #expect(error.message.contains("topic") && !error.retryable)
        }
        do {
            _ = try MQTTConfiguration(
                url: URL(string: "mqtt://b")!, clientID: "c", tls: MQTTConfiguration.TLS(caFile: "/ca.pem"))
            Issue.record("TLS settings with mqtt:// were accepted")
        } catch {
            #expect(error.message.contains("mqtts://"))
        }
    }

    @Test func stableClientIDsAreStableAndBounded() {
        let id = MQTTConfiguration.stableClientID(device: "dev 1", instance: "counter", sink: "alerts")
        #expect(id == "vantage-dev_1-counter-alerts")
        let long = String(repeating: "x", count: 100)
        let a = MQTTConfiguration.stableClientID(device: long, instance: "a", sink: "s")
        let b = MQTTConfiguration.stableClientID(device: long, instance: "b", sink: "s")
        #expect(a.count <= 64 && b.count <= 64 && a != b)
        #expect(a == MQTTConfiguration.stableClientID(device: long, instance: "a", sink: "s"))
    }

    @Test func unreadableTLSFilesFailAtCreation() {
        var configuration = MQTTConfiguration(host: "localhost", port: 8883, clientID: "c")
        configuration.tls = MQTTConfiguration.TLS(caFile: "/nonexistent/ca.pem")
        do {
            _ = try MQTTClient(name: "alerts", configuration: configuration, logger: testLogger)
            Issue.record("a missing CA file was accepted")
        } catch {
            #expect(error.message.contains("/nonexistent/ca.pem") && !error.retryable)
        }
    }
}

@Suite("MQTT client against a real mosquitto")
struct MQTTClientTests {
    @Test func eachQoSArrivesWithTopicPayloadAndRetainFlag() async throws {
        try await withMosquittoBroker { broker in
            let live = try await broker.subscriber(topics: ["vantage/dev1/#"])
            let config = try configuration(broker, clientID: "vantage-test-qos")
            try await withClient(config) { client in
                for qos in 0...2 {
                    // Bytes no text format survives: NUL, 0xFF, newline.
                    let payload: [UInt8] = [UInt8(qos), 0, 0xFF, 0x0A] + Array("event \(qos)".utf8)
                    try await publishRetrying(client, topic: "vantage/dev1/cam/qos\(qos)", payload, qos: qos)
                }
                try await publishRetrying(
                    client, topic: "vantage/dev1/cam/state", Array("retained-1".utf8), qos: 1, retain: true)
            }
            // Sorted by topic: the subscriber releases a QoS 2 message only after one more exchange with the broker,
            // so a QoS 1 message sent after it can overtake it.
            let got = try await live.waitUntil("four messages") { $0.count >= 4 }.sorted { $0.topic < $1.topic }
            #expect(got.count == 4)
            #expect(
                got.map(\.topic) == [
                    "vantage/dev1/cam/qos0", "vantage/dev1/cam/qos1", "vantage/dev1/cam/qos2",
                    "vantage/dev1/cam/state",
                ])
            for qos in 0...2 where got.count == 4 {
                #expect(got[qos].payload == [UInt8(qos), 0, 0xFF, 0x0A] + Array("event \(qos)".utf8))
                #expect(got[qos].qos == qos)
            }
            // A live subscription gets no retained flag (MQTT 3.1.1 §3.3.1.3); a new one gets the retained copy.
            #expect(got.allSatisfy { !$0.retained })
            let late = try await broker.subscriber(topics: ["vantage/dev1/#"])
            #expect(
                late.messages == [
                    .init(topic: "vantage/dev1/cam/state", payload: Array("retained-1".utf8), qos: 1, retained: true)
                ])
        }
    }

    @Test func usernameAndPasswordDeliverAndAWrongPasswordIsNotRetryable() async throws {
        let password = "s3cret-Pw!"
        try await withMosquittoBroker(.init(users: ["alice": password])) { broker in
            let subscriber = try await broker.subscriber(topics: ["auth/#"], username: "alice", password: password)
            let good = try configuration(broker, clientID: "auth-good", username: "alice", password: password)
            try await withClient(good) { client in
                try await publishRetrying(client, topic: "auth/ok", Array("hello".utf8), qos: 1)
            }
            try await subscriber.waitUntil("the authenticated message") { $0.map(\.text) == ["hello"] }

            let wrongPassword = "wrong-Pw-42"
            let bad = try configuration(broker, clientID: "auth-bad", username: "alice", password: wrongPassword)
            try await withClient(bad) { client in
                let error = try await firstError(client) { !$0.retryable }
                #expect(error.message.contains("127.0.0.1:\(broker.port)"))
                #expect(error.message.contains("alice"))
                #expect(error.message.contains("not authorized") || error.message.contains("user name or password"))
                #expect(!error.description.contains(wrongPassword) && !error.description.contains(password))
                #expect(!client.isConnected)
            }
        }
    }

    @Test func tlsDeliversWithTheCAFileAndAWrongCAFailsClearly() async throws {
        try await withMosquittoBroker(.init(tls: true)) { broker in
            let caFile = try #require(broker.caFile)
            let otherCAFile = try #require(broker.otherCAFile)
            let subscriber = try await broker.subscriber(topics: ["tls/#"])
            let trusted = try configuration(
                broker, clientID: "tls-good", tls: MQTTConfiguration.TLS(caFile: caFile))
            #expect(trusted.port == broker.port && trusted.host == "localhost")
            try await withClient(trusted) { client in
                try await publishRetrying(client, topic: "tls/ok", Array("encrypted".utf8), qos: 2)
            }
            try await subscriber.waitUntil("the message sent over TLS") { $0.map(\.text) == ["encrypted"] }

            let untrusted = try configuration(
                broker, clientID: "tls-bad", tls: MQTTConfiguration.TLS(caFile: otherCAFile))
            try await withClient(untrusted) { client in
                let error = try await firstError(client) { $0.message.contains("TLS") }
                #expect(error.message.contains("certificate verify failed"))
                #expect(error.message.contains(otherCAFile))
                #expect(error.message.contains("\"localhost\""))
                #expect(error.message.contains("localhost:\(broker.port)"))
            }
        }
    }

    @Test func availabilityIsOnlineWhileConnectedAndOfflineAfterStopOrALostConnection() async throws {
        try await withMosquittoBroker { broker in
            let topic = "vantage/dev1/counter/status"
            let availability = MQTTConfiguration.Availability(topic: topic)
            let config = try configuration(broker, clientID: "avail-1", availability: availability)
            let client = try MQTTClient(name: "alerts", configuration: config, logger: testLogger)
            client.start()
            // Acknowledged after the online message, which the client sent first on connecting.
            try await publishRetrying(client, topic: "vantage/dev1/marker", [1], qos: 1)
            let watcher = try await broker.subscriber(topics: [topic])
            #expect(watcher.messages == [.init(topic: topic, payload: Array("online".utf8), qos: 1, retained: true)])

            await client.stop()
            try await watcher.waitUntil("offline after stop()") { $0.last?.text == "offline" }
            let afterStop = try await broker.subscriber(topics: [topic])
            #expect(afterStop.messages.map(\.text) == ["offline"] && afterStop.messages.first?.retained == true)

            // The will: the connection ends without DISCONNECT (its socket closed under it, as a network failure
            // would); the broker publishes offline, and the client reconnects and says online again.
            let second = try configuration(broker, clientID: "avail-2", availability: availability)
            try await withClient(second) { client in
                try await publishRetrying(client, topic: "vantage/dev1/marker", [2], qos: 1)
                try await watcher.waitUntil("online from the second client") { $0.last?.text == "online" }
                let before = watcher.messages.count
                client.severConnectionForTesting()
                let got = try await watcher.waitUntil("the will, then online again") { messages in
                    messages.dropFirst(before).map(\.text) == ["offline", "online"]
                }
                #expect(got.dropFirst(before).allSatisfy { $0.qos == 1 })
                // Reconnected by itself: publishing works again.
                try await publishRetrying(client, topic: "vantage/dev1/marker", [3], qos: 1)
            }
        }
    }

    @Test func publishingWhileDisconnectedFailsAtOnceAndLeavesNothingQueued() async throws {
        try await withMosquittoBroker { broker in
            await broker.stop()
            let config = try configuration(broker, clientID: "offline-pub")
            try await withClient(config) { client in
                let started = ContinuousClock.now
                do throws(SinkError) {
                    // Retained, so that it would still be visible later had it been queued and sent on connecting.
                    try await client.publish(
                        topic: "late/first", payload: Array("first".utf8), qos: 1, retain: true)
                    Issue.record("publishing without a broker succeeded")
                } catch {
                    #expect(error.retryable)
                    #expect(error.message.contains("127.0.0.1:\(broker.port) unreachable"))
                }
                // Far below the 60 s acknowledgement timeout: it did not wait for a connection.
                #expect(ContinuousClock.now - started < .seconds(10))
                _ = try await firstError(client) { $0.message.contains("refused") }

                try await broker.start()
                try await publishRetrying(client, topic: "late/second", Array("second".utf8), qos: 1)
            }
            // A new subscription gets the retained messages first: "first" never reached the broker.
            let subscriber = try await broker.subscriber(topics: ["late/#"])
            #expect(subscriber.messages.isEmpty)
        }
    }

    @Test func aPublishThatTimedOutIsNotDuplicatedByItsRetry() async throws {
        try await withMosquittoBroker { broker in
            let subscriber = try await broker.subscriber(topics: ["slow/#"], qos: 1)
            var config = try configuration(broker, clientID: "slow-pub")
            config.ackTimeout = .seconds(1)
            try await withClient(config) { client in
                try await publishRetrying(client, topic: "slow/warmup", [0], qos: 1)
                // Frozen, the broker keeps the connection open and answers nothing.
                broker.send(SIGSTOP)
                do throws(SinkError) {
                    try await client.publish(topic: "slow/once", payload: Array("once".utf8), qos: 1)
                    Issue.record("a frozen broker acknowledged")
                } catch {
                    #expect(error.retryable && error.message.contains("did not acknowledge the message within 1 s"))
                }
                #expect(client.deliveriesForTesting == (waiting: 0, orphans: 1))
                // The outbox's retry of the same message waits for the copy libmosquitto still holds.
                async let retry: Void = client.publish(topic: "slow/once", payload: Array("once".utf8), qos: 1)
                let deadline = ContinuousClock.now + .seconds(10)
                while client.deliveriesForTesting.waiting == 0 && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(client.deliveriesForTesting == (waiting: 1, orphans: 0), "the retry took over the orphan")
                broker.send(SIGCONT)
                try await retry
                try await publishRetrying(client, topic: "slow/end", [1], qos: 1)
            }
            let got = try await subscriber.waitUntil("the end marker") { $0.last?.topic == "slow/end" }
            #expect(got.map(\.topic) == ["slow/warmup", "slow/once", "slow/end"], "sent once, not twice")
        }
    }

    @Test func aBrokerThatNeverAnswersTimesOutTheConnectionAttempt() async throws {
        let silent = try SilentTCPServer()
        var config = MQTTConfiguration(host: "127.0.0.1", port: silent.port, clientID: "silent")
        config.connectTimeout = .seconds(1)
        config.reconnectDelay = .milliseconds(100)
        try await withClient(config) { client in
            let error = try await firstError(client) { $0.message.contains("no answer") }
            #expect(
                error.message
                    == "broker 127.0.0.1:\(silent.port) unreachable: no answer to the MQTT connection within 1 s")
            #expect(error.retryable)
        }
        withExtendedLifetime(silent) {}  // Listening until here.
    }

    /// One run of the broker-restart test.
    struct Outage: Sendable, CustomTestStringConvertible {
        var qos: Int
        var signal: Int32
        var testDescription: String { "QoS \(qos), broker stopped with \(signal == SIGKILL ? "SIGKILL" : "SIGTERM")" }
    }

    /// Counts shared between the publishing task and the outage task.
    final class Progress: Sendable {
        let acknowledged = Mutex(0)
        let failedAttempts = Mutex(0)
        let slowPublishes = Mutex(0)
    }

    @Test(arguments: [
        Outage(qos: 1, signal: SIGTERM), Outage(qos: 2, signal: SIGTERM), Outage(qos: 1, signal: SIGKILL),
    ])
    func aBrokerRestartMidStreamLosesNoMessage(_ outage: Outage) async throws {
        let count = 300
        let options = MosquittoBroker.Options(persistence: true, saveAfterEveryChange: outage.signal == SIGKILL)
        try await withMosquittoBroker(options) { broker in
            let topic = "restart/events"
            // A persistent QoS 2 subscriber: the broker queues for it while it reconnects.
            let subscriber = try await broker.subscriber(
                topics: [topic], clientID: "restart-sub", qos: 2, persistent: true)
            let config = try configuration(broker, clientID: "restart-pub")
            let progress = Progress()
            try await withClient(config) { client in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while progress.acknowledged.withLock({ $0 }) < count / 3 {
                            try await Task.sleep(for: .milliseconds(1))
                        }
                        await broker.stop(signal: outage.signal)
                        try await Task.sleep(for: .seconds(2))
                        try await broker.start()
                    }
                    group.addTask {
                        // The outbox's way: one message at a time, the same message again after a thrown error.
                        for id in 0..<count {
                            let payload = Array("{\"id\":\(id)}".utf8)
                            while true {
                                let started = ContinuousClock.now
                                do throws(SinkError) {
                                    try await client.publish(topic: topic, payload: payload, qos: outage.qos)
                                    if ContinuousClock.now - started > .seconds(1) {
                                        progress.slowPublishes.withLock { $0 += 1 }
                                    }
                                    break
                                } catch {
                                    progress.failedAttempts.withLock { $0 += 1 }
                                    if !error.retryable { throw error }
                                    try await Task.sleep(for: .milliseconds(100))
                                }
                            }
                            progress.acknowledged.withLock { $0 += 1 }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            let ids = { (messages: [MosquittoSubscriber.Message]) in
                messages.compactMap { Int($0.text.dropFirst(6).dropLast()) }
            }
            let received = ids(
                try await subscriber.waitUntil("all \(count) messages") { Set(ids($0)).count >= count })
            var seen = Set<Int>()
            let firstArrivals = received.filter { seen.insert($0).inserted }
            #expect(firstArrivals == Array(0..<count), "every message arrived, in order")
            let duplicates = received.count - count
            if outage.qos == 2 && outage.signal == SIGTERM {
                #expect(duplicates == 0, "QoS 2 delivered each message exactly once")
            }
            print(
                "MQTT restart (\(outage.testDescription)): \(count) delivered, \(duplicates) duplicates, "
                    + "\(progress.failedAttempts.withLock { $0 }) failed publish attempts retried, "
                    + "\(progress.slowPublishes.withLock { $0 }) publishes waited across the outage")
        }
    }
}
