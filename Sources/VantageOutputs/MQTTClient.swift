import CMosquitto
import Dispatch
import Foundation
import Logging
import Synchronization

// The MQTT sink's connection: one libmosquitto client per sink, driven by a dedicated thread.
//
// Delivery guarantees (what the outbox above relies on; docs/outputs.md says the same for users):
//
// - `publish` returns only when the broker acknowledged the message (QoS 1: PUBACK, QoS 2: PUBCOMP; QoS 0: when it
//   was written to the socket). The outbox deletes an event only after that.
// - Not connected: `publish` throws at once and hands nothing to libmosquitto. (libmosquitto would keep a QoS 1/2
//   message published while disconnected and send it after reconnecting, although `mosquitto_publish` returns
//   MOSQ_ERR_NO_CONN; the outbox's retry would then send it a second time.)
// - Connected, sent, and the connection drops before the acknowledgement: libmosquitto keeps the message and, after
//   reconnecting, sends it again with the DUP flag (QoS 1) or resumes the QoS 2 exchange where it stopped (PUBLISH
//   again while waiting for PUBREC, PUBREL while waiting for PUBCOMP): `message__reconnect_reset` and
//   `message__retry_check` in libmosquitto 2.0's messages_mosq.c. `publish` keeps waiting meanwhile, up to
//   `ackTimeout`. The session is not clean (`clean_session` false, stable client ID), so the broker keeps its half of
//   a QoS 2 exchange across the reconnect, and across its own restart when it persists sessions.
// - `publish` gave up waiting (timeout) while libmosquitto still holds the message: the message stays an "orphan"
//   here, and when the outbox retries the same topic and payload it waits for that orphan's acknowledgement instead of
//   publishing a second copy (event messages carry a unique `id`: the same topic and payload are the same event).
//
// A duplicate can still reach subscribers when:
// - QoS 1 (by design, at least once): the broker forwarded the message but its PUBACK was lost with the connection;
//   the resend is forwarded again.
// - QoS 1 and 2: the process ends (crash, kill, `stop()`) after the message was sent and before its acknowledgement;
//   libmosquitto's copy is gone, the outbox still has the event and sends it with a new packet ID next time.
// - QoS 2: the broker lost its session state (it does not persist sessions, or it crashed and restarted from an older
//   save): a resent PUBLISH looks new to it.
// Consumers that must not act twice dedupe on the event's `id` in the payload.
//
// Loss is the broker's business once it acknowledged: a Mosquitto that crashes (SIGKILL) can restart from a save that
// misses a QoS 2 message it had acknowledged (seen in the restart tests); at QoS 1 it forwards to connected
// subscribers before acknowledging.

/// libmosquitto's process-wide set-up, run once before the first client (a global's initializer runs once,
/// thread-safely).
private let mosquittoLibraryInitialized: Bool = {
    mosquitto_lib_init()
    return true
}()

/// Where an MQTT sink connects and how: broker address, TLS, credentials, session and availability topic.
public struct MQTTConfiguration: Sendable, CustomStringConvertible {
    /// The broker's host name or address.
    public var host: String
    /// The broker's port: 1883 for `mqtt://`, 8883 for `mqtts://` unless the URL names one.
    public var port: Int
    /// TLS settings; nil connects without TLS.
    public var tls: TLS?
    /// The user name sent to the broker, if it asks for one.
    public var username: String?
    /// The password sent with `username`. A secret: never logged or shown in errors or ``description``.
    public var password: String?
    /// The client identifier. Keep it stable per device, application instance and sink (see
    /// ``stableClientID(device:instance:sink:)``): the broker keeps the session (QoS 2 state) under it, and two
    /// clients with the same identifier push each other off the broker.
    public var clientID: String
    /// Seconds between keep-alive pings when idle (0 disables them; otherwise 5 to 65535).
    public var keepAlive: Int = 30
    /// The retained availability message; nil publishes none.
    public var availability: Availability?
    /// How long ``MQTTClient/publish(topic:payload:qos:retain:)`` waits for the broker's acknowledgement of a message
    /// it sent, reconnections included, before it throws a retryable error.
    public var ackTimeout: Duration = .seconds(60)
    /// The first delay before reconnecting; it doubles after each failed attempt up to ``reconnectDelayMax``.
    public var reconnectDelay: Duration = .seconds(1)
    /// The longest delay between reconnection attempts.
    public var reconnectDelayMax: Duration = .seconds(30)
    /// How long a connection attempt may take, from TCP connect to the broker's CONNACK, before it is abandoned and
    /// tried again.
    public var connectTimeout: Duration = .seconds(10)

    /// TLS settings of an `mqtts://` connection.
    public struct TLS: Sendable, Equatable {
        /// PEM file of the certificate authorities to trust; nil trusts the system's CA certificates.
        public var caFile: String?
        /// PEM client certificate, for brokers that ask for one (with ``keyFile``).
        public var certFile: String?
        /// PEM private key of ``certFile`` (unencrypted).
        public var keyFile: String?
        /// Skips the check that the broker's certificate names ``MQTTConfiguration/host``. Only for testing: anyone
        /// with a certificate from a trusted CA can then pose as the broker.
        public var insecure: Bool

        public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, insecure: Bool = false) {
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
            self.insecure = insecure
        }
    }

    /// The availability topic: `online` is published (retained, QoS 1) after every connection, `offline` is the
    /// connection's will (retained, QoS 1: the broker publishes it when the connection ends without a clean
    /// disconnect) and is also published by ``MQTTClient/stop()``.
    public struct Availability: Sendable, Equatable {
        public var topic: String
        public var online: String
        public var offline: String

        public init(topic: String, online: String = "online", offline: String = "offline") {
            self.topic = topic
            self.online = online
            self.offline = offline
        }
    }

    /// A configuration for the broker at `host`:`port`.
    public init(
        host: String, port: Int = 1883, clientID: String, tls: TLS? = nil, username: String? = nil,
        password: String? = nil, availability: Availability? = nil
    ) {
        self.host = host
        self.port = port
        self.clientID = clientID
        self.tls = tls
        self.username = username
        self.password = password
        self.availability = availability
    }

    /// A configuration from a broker URL: `mqtt://host[:port]` (plain, port 1883) or `mqtts://host[:port]` (TLS,
    /// port 8883; `tls` nil means TLS trusting the system's CA certificates). A user name and password in the URL
    /// (`mqtt://user:password@host`) are used when `username` and `password` are nil. `sink` names the sink in
    /// errors.
    public init(
        url: URL, clientID: String, tls: TLS? = nil, username: String? = nil, password: String? = nil,
        availability: Availability? = nil, sink: String = "mqtt"
    ) throws(SinkError) {
        func invalid(_ message: String) -> SinkError { SinkError(sink: sink, message, retryable: false) }
        let scheme = url.scheme?.lowercased() ?? ""
        guard scheme == "mqtt" || scheme == "mqtts" else {
            throw invalid(
                "the broker URL must start with mqtt:// (plain) or mqtts:// (TLS), not \"\(scheme.isEmpty ? "(none)" : scheme)\""
            )
        }
        guard let host = url.host, !host.isEmpty else {
            throw invalid("the broker URL has no host name: write mqtt://HOST[:PORT]")
        }
        guard url.path.isEmpty || url.path == "/", url.query == nil, url.fragment == nil else {
            throw invalid("the broker URL is mqtt(s)://HOST[:PORT] only; the topic is the sink's `topic` setting")
        }
        let port = url.port ?? (scheme == "mqtts" ? 8883 : 1883)
        guard (1...65535).contains(port) else { throw invalid("port \(port) is not a TCP port (1 to 65535)") }
        if scheme == "mqtt", tls != nil {
            throw invalid("TLS settings (caFile, certFile, keyFile, insecure) need an mqtts:// URL")
        }
        self.init(
            host: host, port: port, clientID: clientID, tls: scheme == "mqtts" ? (tls ?? TLS()) : nil,
            username: username ?? url.user(percentEncoded: false),
            password: password ?? url.password(percentEncoded: false), availability: availability)
    }

    /// `host:port`, as messages name the broker.
    public var broker: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The configuration without its password.
    public var description: String {
        var parts = ["\(tls == nil ? "mqtt" : "mqtts")://\(broker)", "client \(clientID)"]
        if let username { parts.append("user \(username)\(password == nil ? "" : " (password set)")") }
        if let caFile = tls?.caFile { parts.append("CA file \(caFile)") }
        if let availability { parts.append("availability \(availability.topic)") }
        return parts.joined(separator: ", ")
    }

    /// A client identifier that stays the same for a device, application instance and sink:
    /// `vantage-DEVICE-INSTANCE-SINK`, with characters other than letters, digits, `-` and `_` replaced by `_`. Longer
    /// than 64 characters, its tail becomes a hash so that it stays unique and fits every broker's limit.
    public static func stableClientID(device: String, instance: String, sink: String) -> String {
        let raw = "vantage-\(device)-\(instance)-\(sink)"
        let clean = String(
            raw.unicodeScalars.map { scalar -> Character in
                scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "-" || scalar == "_")
                    ? Character(scalar) : "_"
            })
        guard clean.count > 64 else { return clean }
        // FNV-1a over the full identifier keeps truncated identifiers distinct.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in raw.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        let digest = String(hash, radix: 16)
        return String(clean.prefix(63 - digest.count)) + "-" + digest
    }
}

/// An MQTT connection to one broker for one sink, on libmosquitto (MQTT 3.1.1, persistent session).
///
/// ``start()`` connects in the background and keeps reconnecting, with growing delays, for as long as the client
/// runs. ``publish(topic:payload:qos:retain:)`` hands one message over and returns once the broker acknowledged it;
/// see the file's header for exactly when a message can be duplicated. ``stop()`` publishes the offline availability
/// message and disconnects cleanly.
public final class MQTTClient: Sendable {
    /// The sink's name, as errors and logs name it.
    public let name: String
    public let configuration: MQTTConfiguration
    private let session: MosquittoSession

    /// Prepares a client; nothing connects before ``start()``. Throws (not retryable) when the configuration cannot
    /// work: unreadable TLS files, an invalid availability topic, a keep-alive out of range.
    public init(name: String, configuration: MQTTConfiguration, logger: Logger) throws(SinkError) {
        _ = mosquittoLibraryInitialized
        self.name = name
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "sink.name"] = .string(name)
        logger[metadataKey: "mqtt.broker"] = .string(configuration.broker)
        logger[metadataKey: "mqtt.client_id"] = .string(configuration.clientID)
        session = try MosquittoSession(sink: name, configuration: configuration, logger: logger)
    }

    deinit {
        // A client dropped without stop(): end the loop thread, which then frees libmosquitto's handle.
        session.abandon()
    }

    /// Starts connecting on a background thread; reconnects after every failure or lost connection, with delays
    /// from ``MQTTConfiguration/reconnectDelay`` doubling up to ``MQTTConfiguration/reconnectDelayMax``. Calling
    /// it again does nothing; a stopped client cannot be started again (make a new one).
    public func start() {
        session.start()
    }

    /// Whether the broker accepted the connection and it has not been lost since.
    public var isConnected: Bool { session.isConnected }

    /// Publishes one message and returns when the broker acknowledged it: QoS 1 on PUBACK, QoS 2 on PUBCOMP, QoS 0
    /// when it was written to the socket.
    ///
    /// Throws a retryable ``SinkError`` at once when not connected (nothing is left queued, so a retry cannot
    /// duplicate it), and after ``MQTTConfiguration/ackTimeout`` without an acknowledgement (libmosquitto keeps the
    /// message and resends it after reconnecting; publishing the same topic and payload again waits for that copy
    /// instead of sending another). Throws a non-retryable error when the broker refuses the credentials, or the
    /// topic, QoS or payload is invalid.
    public func publish(topic: String, payload: [UInt8], qos: Int, retain: Bool = false) async throws(SinkError) {
        guard (0...2).contains(qos) else {
            throw SinkError(sink: name, "QoS \(qos) is not an MQTT QoS: use 0, 1 or 2", retryable: false)
        }
        guard !topic.isEmpty, mosquitto_pub_topic_check(topic) == MOSQ_ERR_SUCCESS.rawValue,
            mosquitto_validate_utf8(topic, Int32(topic.utf8.count)) == MOSQ_ERR_SUCCESS.rawValue
        else {
            throw SinkError(
                sink: name,
                "\"\(topic)\" is not a topic one can publish to: it must be non-empty UTF-8 without + or # wildcards",
                retryable: false)
        }
        // MQTT's largest payload (mqtt_protocol.h's MQTT_MAX_PAYLOAD, a header the module does not import).
        let maximumPayload = 268_435_455
        guard payload.count <= maximumPayload else {
            throw SinkError(
                sink: name, "the message has \(payload.count) bytes; MQTT allows at most \(maximumPayload)",
                retryable: false)
        }
        let message = OutgoingMessage(topic: topic, payload: payload, qos: Int32(qos), retain: retain)
        let result = await withCheckedContinuation { continuation in
            session.send(message, timeout: configuration.ackTimeout, whileStopping: false, continuation)
        }
        try result.get()
    }

    /// Publishes the offline availability message (when connected; waits up to 5 s for its acknowledgement),
    /// disconnects cleanly and ends the background thread. Publishes still waiting fail with a retryable error: the
    /// outbox keeps their events.
    public func stop() async {
        guard session.beginStop() else {
            await session.waitForLoopExit()
            return
        }
        if let availability = configuration.availability, session.isConnected {
            let offline = OutgoingMessage(
                topic: availability.topic, payload: Array(availability.offline.utf8), qos: 1, retain: true)
            let result = await withCheckedContinuation { continuation in
                session.send(offline, timeout: .seconds(5), whileStopping: true, continuation)
            }
            if case .failure(let error) = result {
                session.logger.warning(
                    "could not publish the offline availability message", metadata: ["error": "\(error.message)"])
            }
        }
        session.disconnect()
        await session.waitForLoopExit()
    }

    /// Closes the connection's socket under libmosquitto without an MQTT DISCONNECT, as a network failure would: the
    /// broker publishes the will, and the client reconnects. For tests.
    func severConnectionForTesting() {
        session.severConnection()
    }

    /// Messages handed to libmosquitto and not acknowledged yet: with a waiting `publish`, and orphans. For tests.
    var deliveriesForTesting: (waiting: Int, orphans: Int) { session.deliveryCounts }
}

/// A message on its way to the broker.
struct OutgoingMessage: Sendable, Equatable {
    var topic: String
    var payload: [UInt8]
    var qos: Int32
    var retain: Bool
}

/// Why the client is not connected: what `publish` tells the caller.
enum ConnectionProblem: Sendable, Equatable {
    /// The broker answered CONNACK with this refusal code (MQTT 3.1.1: 1 to 5).
    case refused(code: Int32)
    /// The TLS handshake failed; OpenSSL's reason.
    case tls(String)
    /// Anything else on the way: refused TCP connection, lost connection, unresolvable host.
    case network(String)

    /// Bad user name or password, or not authorized: retrying with the same settings cannot help.
    var isAuthentication: Bool {
        if case .refused(let code) = self { return code == 4 || code == 5 }
        return false
    }
}

/// libmosquitto's client handle and everything the callbacks share with callers.
///
/// `@unchecked Sendable`: `handle` is only passed to libmosquitto functions that are thread-safe in threaded mode
/// (`mosquitto_threaded_set`: publish, disconnect, socket; the loop functions run on the one loop thread), and is
/// destroyed in `deinit`, after the loop thread (which holds a strong reference) ended. Mutable state is in Mutexes.
/// Lock order: libmosquitto's callback mutex → `state` → libmosquitto's message mutexes (callbacks take `state`;
/// `send` calls `mosquitto_publish` holding `state`). `lastLibraryError` is taken alone (the log callback can run
/// inside `mosquitto_publish`, under `state`).
final class MosquittoSession: @unchecked Sendable {
    let sink: String
    let configuration: MQTTConfiguration
    let logger: Logger
    private let handle: OpaquePointer
    private let state = Mutex(State())
    /// The last error line libmosquitto logged (OpenSSL's reasons arrive only this way).
    private let lastLibraryError = Mutex<String?>(nil)
    /// Wakes the loop thread from a reconnection delay when stopping.
    private let wakeup = DispatchSemaphore(value: 0)

    struct State {
        enum Phase { case idle, running, stopping, stopped }
        var phase = Phase.idle
        var connected = false
        /// Why not connected, while not connected.
        var problem: ConnectionProblem?
        /// Messages handed to libmosquitto and not yet acknowledged, by packet ID. An entry without a waiter is an
        /// orphan: its publisher gave up waiting, libmosquitto still delivers it.
        var deliveries: [Int32: Delivery] = [:]
        /// Successful connections so far; the loop resets its backoff when this changes.
        var connections = 0
        var stopRequested: ContinuousClock.Instant?
        /// Whether the loop thread runs; `stop()` waits in `loopExitWaiters` for its end.
        var loopRunning = false
        var loopExitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    struct Delivery {
        var message: OutgoingMessage
        var waiter: CheckedContinuation<Result<Void, SinkError>, Never>?
        var deadline: ContinuousClock.Instant
    }

    init(sink: String, configuration: MQTTConfiguration, logger: Logger) throws(SinkError) {
        self.sink = sink
        self.configuration = configuration
        self.logger = logger
        func invalid(_ message: String) -> SinkError { SinkError(sink: sink, message, retryable: false) }
        guard !configuration.clientID.isEmpty, configuration.clientID.utf8.count <= 65535 else {
            throw invalid("the MQTT client ID must be 1 to 65535 bytes long")
        }
        guard configuration.keepAlive == 0 || (5...65535).contains(configuration.keepAlive) else {
            throw invalid("keepAlive \(configuration.keepAlive) is out of range: use 0 (off) or 5 to 65535 seconds")
        }
        guard (1...65535).contains(configuration.port) else {
            throw invalid("port \(configuration.port) is not a TCP port (1 to 65535)")
        }
        if let availability = configuration.availability {
            guard !availability.topic.isEmpty,
                mosquitto_pub_topic_check(availability.topic) == MOSQ_ERR_SUCCESS.rawValue
            else {
                throw invalid("availability topic \"\(availability.topic)\" must be a topic without + or # wildcards")
            }
        }
        // clean_session false: the broker keeps the session (QoS 2 exchanges in progress) while disconnected.
        guard let handle = mosquitto_new(configuration.clientID, false, nil) else {
            throw SinkError(sink: sink, "libmosquitto could not create a client (out of memory?)")
        }
        self.handle = handle
        // Every stored property is set: if this throws, `deinit` runs and destroys the handle (destroying it here
        // too would free it twice, and close libmosquitto's descriptors twice: other threads' files).
        try configure()
        // The callbacks find this object through libmosquitto's user data pointer, unretained: they run only on the
        // loop thread, which keeps this object alive.
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_connect_callback_set(handle, mosquittoConnected)
        mosquitto_disconnect_callback_set(handle, mosquittoDisconnected)
        mosquitto_publish_callback_set(handle, mosquittoPublished)
        mosquitto_log_callback_set(handle, mosquittoLogged)
    }

    /// Applies the options that must be set before connecting.
    private func configure() throws(SinkError) {
        func check(_ rc: Int32, _ what: String) throws(SinkError) {
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                throw SinkError(
                    sink: sink, "\(what): \(String(cString: mosquitto_strerror(rc)))", retryable: false)
            }
        }
        try check(mosquitto_threaded_set(handle, true), "libmosquitto refused threaded mode")
        try check(
            mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311), "setting MQTT 3.1.1")
        // One message at a time waits for its acknowledgement: Nagle's delay would only add latency.
        try check(mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1), "setting TCP_NODELAY")
        if let username = configuration.username {
            try check(
                mosquitto_username_pw_set(handle, username, configuration.password),
                "setting the user name and password")
        }
        if let availability = configuration.availability {
            let offline = Array(availability.offline.utf8)
            try check(
                mosquitto_will_set(handle, availability.topic, Int32(offline.count), offline, 1, true),
                "setting the offline availability message as the will")
        }
        if let tls = configuration.tls {
            for (setting, path) in [("caFile", tls.caFile), ("certFile", tls.certFile), ("keyFile", tls.keyFile)] {
                if let path, !FileManager.default.isReadableFile(atPath: path) {
                    throw SinkError(
                        sink: sink, "\(setting) \(path) does not exist or cannot be read", retryable: false)
                }
            }
            guard (tls.certFile == nil) == (tls.keyFile == nil) else {
                throw SinkError(
                    sink: sink, "a client certificate needs both certFile and keyFile", retryable: false)
            }
            if tls.caFile == nil {
                try check(mosquitto_int_option(handle, MOSQ_OPT_TLS_USE_OS_CERTS, 1), "trusting the system's CAs")
            }
            if tls.caFile != nil || tls.certFile != nil {
                // libmosquitto wants a CA file or folder beside a client certificate: the system's folder then.
                let caPath = tls.caFile == nil ? "/etc/ssl/certs" : nil
                try check(
                    mosquitto_tls_set(handle, tls.caFile, caPath, tls.certFile, tls.keyFile, nil),
                    "loading the TLS files (\(tls.caFile ?? "system CAs"), \(tls.certFile ?? "no client certificate"))"
                )
            }
            try check(mosquitto_tls_insecure_set(handle, tls.insecure), "setting the TLS host name check")
        }
    }

    deinit {
        mosquitto_destroy(handle)
    }

    var isConnected: Bool { state.withLock { $0.connected } }

    // MARK: Caller side

    func start() {
        let starting = state.withLock { state in
            guard state.phase == .idle else { return false }
            state.phase = .running
            state.loopRunning = true
            return true
        }
        guard starting else { return }
        logger.info("connecting to the MQTT broker")
        let thread = Thread { [self] in runLoop() }
        thread.name = "mqtt \(sink)"
        thread.start()
    }

    /// Hands `message` to libmosquitto (or, for a retry, finds the copy it still holds) and arranges for
    /// `continuation` to be resumed with the broker's acknowledgement, an error, or a timeout.
    func send(
        _ message: OutgoingMessage, timeout: Duration, whileStopping: Bool,
        _ continuation: CheckedContinuation<Result<Void, SinkError>, Never>
    ) {
        let failure: SinkError? = state.withLock { state in
            switch state.phase {
            case .running: break
            case .stopping where whileStopping: break
            case .idle: return SinkError(sink: sink, "the MQTT client was not started")
            case .stopping, .stopped: return SinkError(sink: sink, "the MQTT client is stopping")
            }
            guard state.connected else { return unreachableError(state.problem) }
            let deadline = ContinuousClock.now + timeout
            if message.qos > 0,
                let orphan = state.deliveries.first(where: { $0.value.waiter == nil && $0.value.message == message })
            {
                // A retry of a message libmosquitto still holds: wait for that copy rather than send another.
                state.deliveries[orphan.key]?.waiter = continuation
                state.deliveries[orphan.key]?.deadline = deadline
                return nil
            }
            // Publish and register under the same lock: the acknowledgement callback takes this lock too, so it
            // cannot look for the packet ID before it is registered.
            var mid: Int32 = 0
            let rc = message.payload.withUnsafeBytes { bytes in
                mosquitto_publish(
                    handle, &mid, message.topic, Int32(bytes.count), bytes.baseAddress, message.qos, message.retain)
            }
            switch rc {
            case MOSQ_ERR_SUCCESS.rawValue:
                state.deliveries[mid] = Delivery(message: message, waiter: continuation, deadline: deadline)
                return nil
            case MOSQ_ERR_NO_CONN.rawValue where message.qos > 0:
                // The connection dropped just now: libmosquitto queued the message anyway and sends it after
                // reconnecting, so wait for it like any message in flight.
                state.deliveries[mid] = Delivery(message: message, waiter: continuation, deadline: deadline)
                return nil
            case MOSQ_ERR_NO_CONN.rawValue:
                return unreachableError(state.problem)
            case MOSQ_ERR_NOMEM.rawValue:
                if message.qos > 0 {
                    state.deliveries[mid] = Delivery(message: message, waiter: nil, deadline: deadline)
                }
                return SinkError(sink: sink, "libmosquitto ran out of memory publishing to \(configuration.broker)")
            default:
                return SinkError(
                    sink: sink,
                    "libmosquitto refused the message for \(message.topic): \(String(cString: mosquitto_strerror(rc)))",
                    retryable: false)
            }
        }
        if let failure { continuation.resume(returning: .failure(failure)) }
    }

    /// Moves to stopping; false when the client was not running (never started, or already stopping).
    func beginStop() -> Bool {
        state.withLock { state in
            switch state.phase {
            case .running:
                state.phase = .stopping
                return true
            case .idle:
                state.phase = .stopped
                return false
            case .stopping, .stopped:
                return false
            }
        }
    }

    /// Fails what still waits, sends DISCONNECT, and lets the loop thread end.
    func disconnect() {
        let waiters = state.withLock { state in
            state.stopRequested = .now
            return takeWaiters(&state, keepOrphans: false)
        }
        let error = SinkError(
            sink: sink,
            "the MQTT client stopped before \(configuration.broker) acknowledged the message; it is sent again later")
        for waiter in waiters { waiter.resume(returning: .failure(error)) }
        mosquitto_disconnect(handle)
        wakeup.signal()
    }

    /// The client was dropped without `stop()`.
    func abandon() {
        let wasRunning = state.withLock { state in
            defer { state.phase = .stopped }
            return state.phase == .running || state.phase == .stopping
        }
        if wasRunning { disconnect() }
    }

    /// Returns once the loop thread ended (at once when it never started).
    func waitForLoopExit() async {
        await withCheckedContinuation { continuation in
            let running = state.withLock { state in
                if state.loopRunning { state.loopExitWaiters.append(continuation) }
                return state.loopRunning
            }
            if !running { continuation.resume() }
        }
    }

    var deliveryCounts: (waiting: Int, orphans: Int) {
        state.withLock { state in
            let waiting = state.deliveries.values.filter { $0.waiter != nil }.count
            return (waiting, state.deliveries.count - waiting)
        }
    }

    func severConnection() {
        let socket = mosquitto_socket(handle)
        if socket >= 0 { _ = shutdown(socket, Int32(SHUT_RDWR)) }
    }

    // MARK: Loop thread

    /// The loop thread: connects, runs libmosquitto's network loop, and reconnects with backoff after failures.
    /// (Not `mosquitto_loop_start`: its thread ends for good on a TLS or protocol error, and this one must not.)
    private func runLoop() {
        var failures = 0
        var connectionsSeen = 0
        var needsConnect = true
        // When the current connection attempt began; nil once connected.
        var attemptStarted: ContinuousClock.Instant?
        while true {
            let (stopping, graceOver, connections, connected) = state.withLock { state in
                (
                    state.stopRequested != nil, state.stopRequested.map { .now - $0 > .seconds(5) } ?? false,
                    state.connections, state.connected
                )
            }
            if connections != connectionsSeen {
                connectionsSeen = connections
                failures = 0
                attemptStarted = nil
            }
            if stopping && (needsConnect || mosquitto_socket(handle) < 0 || graceOver) { break }
            if needsConnect {
                lastLibraryError.withLock { $0 = nil }
                // connect_async sets the address again and connects without blocking on TCP (DNS still blocks);
                // libmosquitto keeps unacknowledged QoS 1/2 messages across it.
                let rc = mosquitto_connect_async(
                    handle, configuration.host, Int32(configuration.port), Int32(configuration.keepAlive))
                if rc != MOSQ_ERR_SUCCESS.rawValue {
                    let code = errno
                    connectionFailed(rc: rc, errno: code)
                    pause(after: &failures)
                    continue
                }
                needsConnect = false
                attemptStarted = .now
            }
            if let started = attemptStarted, !connected, ContinuousClock.now - started > configuration.connectTimeout {
                // No CONNACK in time (a TCP connection or TLS handshake that hangs, a port that is not MQTT):
                // connecting again closes the socket (mosquitto_connect_async does), after the usual pause.
                recordProblem(
                    .network("no answer to the MQTT connection within \(seconds(configuration.connectTimeout))"))
                attemptStarted = nil
                needsConnect = true
                if !stopping { pause(after: &failures) }
                continue
            }
            let rc = mosquitto_loop(handle, 1000, 1)
            let code = errno
            expireOverdueDeliveries()
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                needsConnect = true
                if stopping { continue }
                // Usually the disconnect callback has said why already; not after a failed TLS handshake, which
                // libmosquitto reports only here (and in its log).
                connectionFailed(rc: rc, errno: code)
                pause(after: &failures)
            }
        }
        let (waiters, exitWaiters) = state.withLock { state in
            state.phase = .stopped
            state.connected = false
            state.loopRunning = false
            let exitWaiters = state.loopExitWaiters
            state.loopExitWaiters = []
            return (takeWaiters(&state, keepOrphans: false), exitWaiters)
        }
        let error = SinkError(sink: sink, "the MQTT client stopped before \(configuration.broker) acknowledged")
        for waiter in waiters { waiter.resume(returning: .failure(error)) }
        for waiter in exitWaiters { waiter.resume() }
        logger.info("MQTT client stopped")
    }

    /// Sleeps before the next connection attempt: `reconnectDelay` doubled per failure, at most `reconnectDelayMax`;
    /// `stop()` cuts it short.
    private func pause(after failures: inout Int) {
        let first = configuration.reconnectDelay
        let delay = min(first * (1 << min(failures, 20)), max(configuration.reconnectDelayMax, first))
        failures += 1
        let end = ContinuousClock.now + delay
        // In steps of at most a second, so that overdue acknowledgements still time out on time.
        while ContinuousClock.now < end, state.withLock({ $0.stopRequested == nil }) {
            let step = min(end - .now, .seconds(1))
            let milliseconds = step.milliseconds
            _ = wakeup.wait(timeout: .now() + .milliseconds(Int(max(milliseconds, 1))))
            expireOverdueDeliveries()
        }
    }

    /// Fails, with a retryable timeout, the waiters whose acknowledgement is overdue; libmosquitto keeps their
    /// messages (orphans), which a retry then waits for.
    private func expireOverdueDeliveries() {
        let now = ContinuousClock.now
        let expired: [CheckedContinuation<Result<Void, SinkError>, Never>] = state.withLock { state in
            var expired: [CheckedContinuation<Result<Void, SinkError>, Never>] = []
            for (mid, delivery) in state.deliveries where delivery.waiter != nil && delivery.deadline < now {
                expired.append(delivery.waiter!)
                if delivery.message.qos == 0 {
                    state.deliveries[mid] = nil
                } else {
                    state.deliveries[mid]?.waiter = nil
                }
            }
            return expired
        }
        guard !expired.isEmpty else { return }
        let error = SinkError(
            sink: sink,
            "\(configuration.broker) did not acknowledge the message within \(seconds(configuration.ackTimeout))"
                + (isConnected ? "" : " (\(unreachableError(state.withLock { $0.problem }).message))")
                + "; libmosquitto keeps it and sends it again when connected, and a retry waits for that copy")
        for waiter in expired { waiter.resume(returning: .failure(error)) }
    }

    /// Records why a connection attempt or the connection failed (from the loop thread, or the disconnect callback).
    fileprivate func connectionFailed(rc: Int32, errno code: Int32) {
        // A CONNACK refusal is more precise than the lost connection that follows it.
        if rc == MOSQ_ERR_CONN_REFUSED.rawValue, case .refused = state.withLock({ $0.problem }) {
            state.withLock { $0.connected = false }
            return
        }
        recordProblem(describe(rc: rc, errno: code))
    }

    private func recordProblem(_ problem: ConnectionProblem) {
        let changed = state.withLock { state in
            state.connected = false
            defer { state.problem = problem }
            return state.problem != problem
        }
        let message = unreachableError(problem).message
        if changed && !problem.isAuthentication {
            logger.warning("MQTT broker unreachable", metadata: ["reason": "\(message)"])
        } else {
            logger.debug("MQTT connection attempt failed", metadata: ["reason": "\(message)"])
        }
    }

    private func describe(rc: Int32, errno code: Int32) -> ConnectionProblem {
        let logged = lastLibraryError.withLock { $0 }
        if configuration.tls != nil,
            rc == MOSQ_ERR_TLS.rawValue || rc == MOSQ_ERR_TLS_HANDSHAKE.rawValue || code == EPROTO
                || logged?.contains("SSL") == true || logged?.contains("TLS") == true
        {
            return .tls(Self.openSSLReason(logged) ?? String(cString: mosquitto_strerror(rc)))
        }
        switch rc {
        case MOSQ_ERR_ERRNO.rawValue where code != 0:
            return .network(String(cString: strerror(code)).lowercased())
        case MOSQ_ERR_EAI.rawValue:
            return .network("the host name \"\(configuration.host)\" cannot be resolved")
        case MOSQ_ERR_CONN_LOST.rawValue:
            return .network("the connection was lost")
        case MOSQ_ERR_KEEPALIVE.rawValue:
            return .network("the broker stopped answering keep-alive pings")
        case MOSQ_ERR_NO_CONN.rawValue:
            return .network("not connected")
        default:
            return .network(String(cString: mosquitto_strerror(rc)).lowercased().trimmingCharacters(in: ["."]))
        }
    }

    /// "OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed" → "certificate verify failed".
    static func openSSLReason(_ line: String?) -> String? {
        guard let line, !line.isEmpty else { return nil }
        if let range = line.range(of: "::", options: .backwards) { return String(line[range.upperBound...]) }
        if let range = line.range(of: ":", options: .backwards) {
            return String(line[range.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        return line
    }

    /// What `publish` throws while not connected.
    func unreachableError(_ problem: ConnectionProblem?) -> SinkError {
        let broker = configuration.broker
        switch problem {
        case nil:
            return SinkError(sink: sink, "broker \(broker) unreachable: not connected yet (connecting)")
        case .network(let reason):
            return SinkError(sink: sink, "broker \(broker) unreachable: \(reason)")
        case .tls(let reason):
            let trust = configuration.tls?.caFile.map { "CA file \($0)" } ?? "the system's CA certificates"
            let hostCheck =
                configuration.tls?.insecure == true
                ? "host name check off" : "the certificate must name host \"\(configuration.host)\""
            return SinkError(
                sink: sink,
                "broker \(broker) unreachable: TLS handshake failed: \(reason) (trusting \(trust); \(hostCheck))")
        case .refused(let code):
            let user = configuration.username.map { "user \"\($0)\"" } ?? "no user name"
            switch code {
            case 4, 5:
                let reason = code == 4 ? "bad user name or password" : "not authorized"
                return SinkError(
                    sink: sink,
                    "broker \(broker) refused the connection: \(reason) (\(user)); check the sink's username and password",
                    retryable: false)
            case 1:
                return SinkError(sink: sink, "broker \(broker) refused the connection: it does not speak MQTT 3.1.1")
            case 2:
                return SinkError(
                    sink: sink,
                    "broker \(broker) refused client ID \"\(configuration.clientID)\"; set another clientId")
            case 3:
                return SinkError(sink: sink, "broker \(broker) refused the connection: server unavailable")
            default:
                return SinkError(sink: sink, "broker \(broker) refused the connection (CONNACK code \(code))")
            }
        }
    }

    /// Removes the waiting continuations; orphans stay (libmosquitto still delivers them) unless `keepOrphans` is
    /// false, when the whole table goes.
    private func takeWaiters(_ state: inout State, keepOrphans: Bool) -> [CheckedContinuation<
        Result<Void, SinkError>, Never
    >] {
        let waiters = state.deliveries.values.compactMap(\.waiter)
        if keepOrphans {
            for mid in state.deliveries.keys { state.deliveries[mid]?.waiter = nil }
        } else {
            state.deliveries = [:]
        }
        return waiters
    }

    // MARK: Callbacks (libmosquitto's loop thread)

    fileprivate func connected(code: Int32) {
        if code == 0 {
            let reconnected = state.withLock { state in
                state.connected = true
                state.problem = nil
                state.connections += 1
                return state.connections > 1
            }
            logger.info(reconnected ? "reconnected to the MQTT broker" : "connected to the MQTT broker")
            if let availability = configuration.availability {
                let online = Array(availability.online.utf8)
                let rc = mosquitto_publish(handle, nil, availability.topic, Int32(online.count), online, 1, true)
                if rc != MOSQ_ERR_SUCCESS.rawValue {
                    logger.warning(
                        "could not publish the online availability message",
                        metadata: ["error": "\(String(cString: mosquitto_strerror(rc)))"])
                }
            }
            return
        }
        let problem = ConnectionProblem.refused(code: code)
        let error = unreachableError(problem)
        let (changed, waiters) = state.withLock { state in
            state.connected = false
            let changed = state.problem != problem
            state.problem = problem
            // Refused credentials will not get better by waiting: fail the waiters now (their messages stay with
            // libmosquitto as orphans, delivered if the broker later accepts the connection).
            return (changed, problem.isAuthentication ? takeWaiters(&state, keepOrphans: true) : [])
        }
        if changed { logger.error("MQTT broker refused the connection", metadata: ["reason": "\(error.message)"]) }
        for waiter in waiters { waiter.resume(returning: .failure(error)) }
    }

    fileprivate func disconnected(rc: Int32, errno code: Int32) {
        // QoS 0 messages not yet written are dropped by libmosquitto when it reconnects: fail their waiters now.
        let waiters = state.withLock { state in
            state.connected = false
            var waiters: [CheckedContinuation<Result<Void, SinkError>, Never>] = []
            for (mid, delivery) in state.deliveries where delivery.message.qos == 0 {
                if let waiter = delivery.waiter { waiters.append(waiter) }
                state.deliveries[mid] = nil
            }
            return waiters
        }
        if rc == 0 {
            logger.info("disconnected from the MQTT broker")
        } else {
            connectionFailed(rc: rc, errno: code)
        }
        let error = SinkError(
            sink: sink, "the connection to \(configuration.broker) was lost before the QoS 0 message was written")
        for waiter in waiters { waiter.resume(returning: .failure(error)) }
    }

    fileprivate func published(mid: Int32) {
        let waiter = state.withLock { state in state.deliveries.removeValue(forKey: mid)?.waiter }
        waiter?.resume(returning: .success(()))
    }

    fileprivate func logged(level: Int32, _ line: String) {
        if level == MOSQ_LOG_ERR {
            lastLibraryError.withLock { $0 = line }
            logger.debug("libmosquitto: \(line)")
        } else if level == MOSQ_LOG_WARNING {
            logger.debug("libmosquitto: \(line)")
        } else {
            logger.trace("libmosquitto: \(line)")
        }
    }
}

/// "60 s", "0.5 s".
private func seconds(_ duration: Duration) -> String {
    let value = duration.seconds
    return value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
}

// libmosquitto's callbacks: plain C functions; the session travels as the unretained user data pointer.

private func session(_ userData: UnsafeMutableRawPointer?) -> MosquittoSession? {
    userData.map { Unmanaged<MosquittoSession>.fromOpaque($0).takeUnretainedValue() }
}

private func mosquittoConnected(_: OpaquePointer?, _ userData: UnsafeMutableRawPointer?, _ code: Int32) {
    session(userData)?.connected(code: code)
}

private func mosquittoDisconnected(_: OpaquePointer?, _ userData: UnsafeMutableRawPointer?, _ rc: Int32) {
    let code = errno
    session(userData)?.disconnected(rc: rc, errno: code)
}

private func mosquittoPublished(_: OpaquePointer?, _ userData: UnsafeMutableRawPointer?, _ mid: Int32) {
    session(userData)?.published(mid: mid)
}

private func mosquittoLogged(
    _: OpaquePointer?, _ userData: UnsafeMutableRawPointer?, _ level: Int32, _ line: UnsafePointer<CChar>?
) {
    guard let line, let session = session(userData) else { return }
    // Debug lines come with every packet: skip them unless someone reads them.
    if level == MOSQ_LOG_DEBUG && session.logger.logLevel > .trace { return }
    session.logged(level: level, String(cString: line))
}
