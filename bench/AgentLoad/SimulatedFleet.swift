import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import VantageAPI
import VantageAgent
import VantageClient
import VantageCore

/// What the load generator is asked to do.
struct FleetConfiguration: Sendable {
    /// The server's API, `http://HOST:PORT` (operator token).
    var api: URL
    /// An operator or admin token, `vt_…`.
    var token: String
    /// The server's device endpoint, `https://HOST:PORT` (mutual TLS).
    var deviceEndpoint: URL
    var devices: Int
    /// Between two heartbeats of one device.
    var interval: Duration
    /// Between two desired-state polls of one device (three intervals, as the brief's agents do).
    var pollInterval: Duration
    /// How long the steady state is measured.
    var duration: Duration
    /// Requests in flight at once while creating, enrolling and connecting devices.
    var concurrency: Int
    /// Prefix of the created devices' names, so several runs against one server never collide.
    var namePrefix: String
}

/// How one setup phase (create, enroll, connect) went.
struct PhaseFigures: Codable, Sendable {
    var seconds: Double
    /// Successful operations per second over the whole phase.
    var perSecond: Double
    var latency: LatencySummary
}

/// How the steady state went for one kind of request.
struct SteadyFigures: Codable, Sendable {
    /// Requests due in the measured window, answered or failed (a late one may start after the window's end).
    var sent: Int
    /// Requests answered per second within the window (answers after its end do not count: a server that falls
    /// behind shows a lower rate here, not just a higher latency).
    var achievedPerSecond: Double
    /// What the simulated devices should send per second: devices ÷ period.
    var targetPerSecond: Double
    var latency: LatencySummary
}

/// A device created in the server and not yet enrolled.
struct ProvisionedDevice: Sendable {
    var id: String
    var provisioningToken: String
}

/// N simulated agents in one process: each is created through the API, enrolls with its own key and CSR, and then
/// talks to the device endpoint over its own mutual-TLS connection (a ``DeviceLink``, as the real agent), sending
/// heartbeats and polling its desired state on the agent's schedule.
struct SimulatedFleet: Sendable {
    let configuration: FleetConfiguration
    let progress: @Sendable (String) -> Void

    // MARK: Setup

    /// Creates the devices through the API (operator token), `concurrency` at a time. Failed creations are counted
    /// and left out.
    func createDevices() async -> (devices: [ProvisionedDevice], caFingerprint: String?, figures: PhaseFigures) {
        let client = ServerClient(baseURL: configuration.api, token: configuration.token)
        let recorder = LatencyRecorder()
        let prefix = configuration.namePrefix
        let started = ContinuousClock.now
        let results = await boundedForEach(count: configuration.devices, width: configuration.concurrency) {
            index -> DeviceCreated? in
            let begin = ContinuousClock.now
            do {
                let created = try await client.createDevice(NewDevice(name: "\(prefix)-\(index)"))
                recorder.record(.now - begin)
                return created
            } catch {
                recorder.recordError(error)
                return nil
            }
        } onProgress: { done in
            progress("created \(done) devices")
        }
        let created = results.compactMap { $0 }
        return (
            created.map { ProvisionedDevice(id: $0.device.id, provisioningToken: $0.provisioningToken) },
            created.first?.caFingerprint, figures(recorder, since: started)
        )
    }

    /// The device endpoint's CA certificate, checked against the fingerprint the server gave at device creation
    /// (what `vantage agent --ca-hash` does), so the enrollments below trust only that CA.
    func fetchCA(fingerprint: String) async throws -> String {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        let pem: String = try await withClient(tls, width: 1) { client in
            let url = configuration.deviceEndpoint.absoluteString.trimmingSlash + "/api/v1/ca"
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 64 << 10)
            guard response.status == .ok else {
                throw LoadError("GET \(url) answered \(response.status.code): is --device-endpoint the server's?")
            }
            return String(buffer: body)
        }
        let actual = try DeviceIdentity.fingerprint(pem: pem)
        guard actual.lowercased() == fingerprint.lowercased() else {
            throw LoadError(
                "the device endpoint's CA is \(actual), but the API said \(fingerprint): --device-endpoint is another server's"
            )
        }
        return pem
    }

    /// Enrolls every device for real: a new P-256 key and a CSR each, exchanged with the provisioning token for a
    /// certificate (POST /api/v1/enroll on the device endpoint, the CA pinned). The identities stay in memory.
    ///
    /// Unlike a real agent, the enrollments share a pool of `concurrency` kept-alive TLS connections (no client
    /// certificate yet): this phase measures the server's enrollment work, not TLS handshakes (the connect phase
    /// measures those).
    func enroll(_ devices: [ProvisionedDevice], caPEM: String) async throws -> (
        identities: [DeviceIdentity], figures: PhaseFigures
    ) {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        let endpoint = configuration.deviceEndpoint
        let url = endpoint.absoluteString.trimmingSlash + "/api/v1/enroll"
        let recorder = LatencyRecorder()
        let started = ContinuousClock.now
        let results = try await withClient(tls, width: configuration.concurrency) { client in
            await boundedForEach(count: devices.count, width: configuration.concurrency) { index -> DeviceIdentity? in
                let device = devices[index]
                do {
                    let keyPEM = DeviceIdentity.makeKeyPEM()
                    let csr = try DeviceIdentity.csrPEM(keyPEM: keyPEM, name: "agent-load")
                    var request = HTTPClientRequest(url: url)
                    request.method = .POST
                    request.headers.add(name: "content-type", value: "application/json")
                    request.body = .bytes(
                        Array(
                            try APIJSON.encoder().encode(
                                EnrollmentRequest(token: device.provisioningToken, csr: csr))))
                    let begin = ContinuousClock.now
                    let response = try await client.execute(request, timeout: .seconds(60))
                    let body = try await response.body.collect(upTo: 1 << 20)
                    guard response.status == .created else {
                        throw LoadError(
                            "enrolling \(device.id): \(response.status.code) \(String(buffer: body).prefix(200))")
                    }
                    recorder.record(.now - begin)
                    let enrollment = try APIJSON.decoder().decode(Enrollment.self, from: Data(body.readableBytesView))
                    return DeviceIdentity(
                        deviceID: enrollment.deviceId, server: endpoint, keyPEM: keyPEM,
                        certificatePEM: enrollment.certificate, caPEM: caPEM)
                } catch {
                    recorder.recordError(error)
                    return nil
                }
            } onProgress: { done in
                progress("enrolled \(done) devices")
            }
        }
        return (results.compactMap { $0 }, figures(recorder, since: started))
    }

    /// Opens each device's link (its own HTTP client and client certificate) and fetches its desired state once:
    /// the TLS handshake with the device certificate, and the ETag the polls then send.
    func connect(_ identities: [DeviceIdentity]) async -> (devices: [ConnectedDevice], figures: PhaseFigures) {
        let recorder = LatencyRecorder()
        let started = ContinuousClock.now
        let results = await boundedForEach(count: identities.count, width: configuration.concurrency) {
            index -> ConnectedDevice? in
            let link: DeviceLink
            do {
                link = try DeviceLink(identity: identities[index])
            } catch {
                recorder.recordError(error)
                return nil
            }
            let begin = ContinuousClock.now
            do {
                let answer = try await link.desiredState(etag: nil)
                recorder.record(.now - begin)
                return ConnectedDevice(index: index, link: link, etag: answer?.etag)
            } catch {
                recorder.recordError(error)
                await link.shutdown()
                return nil
            }
        } onProgress: { done in
            progress("connected \(done) devices")
        }
        return (results.compactMap { $0 }, figures(recorder, since: started))
    }

    // MARK: Steady state

    /// Every device sends a heartbeat each interval and polls its desired state (If-None-Match) each poll
    /// interval, for `duration`. First heartbeats are spread evenly over the first interval and first polls over
    /// the first poll interval (no thundering herd); a device does one request at a time, on its one connection.
    func run(_ devices: [ConnectedDevice]) async -> (
        heartbeats: SteadyFigures, polls: SteadyFigures, lag: LatencySummary, stateChanges: Int
    ) {
        // The timeline has one slice per heartbeat interval (each device's heartbeat falls once in each).
        let slices = Int((configuration.duration / configuration.interval).rounded(.up))
        let heartbeats = LatencyRecorder(slices: slices, sliceLength: configuration.interval)
        let polls = LatencyRecorder(slices: slices, sliceLength: configuration.interval)
        let lag = LatencyRecorder()
        let changes = LatencyRecorder()
        let interval = configuration.interval
        let pollInterval = configuration.pollInterval
        let count = devices.count
        // A second to let every task reach its first sleep before the first one is due.
        let start = ContinuousClock.now + .seconds(1)
        let end = start + configuration.duration
        await withTaskGroup(of: Void.self) { group in
            for device in devices {
                group.addTask {
                    let share = Double(device.index) / Double(max(count, 1))
                    var nextBeat = start + interval * share
                    // Its poll slot falls on its heartbeat slot only where 2 × share is a whole number (share 0
                    // or 1/2); a request due while the other runs waits for it.
                    var nextPoll = start + pollInterval * share
                    var etag = device.etag
                    var sequence = 0
                    while true {
                        let due = min(nextBeat, nextPoll)
                        guard due < end else { break }
                        try? await Task.sleep(until: due, clock: .continuous)
                        let begin = ContinuousClock.now
                        lag.record(begin - due)
                        if nextBeat <= nextPoll {
                            nextBeat += interval
                            sequence += 1
                            do {
                                try await device.link.heartbeat(Self.heartbeat(device: device.index, sequence))
                                let answered = ContinuousClock.now
                                heartbeats.record(answered - begin, inWindow: answered <= end, due: due - start)
                            } catch {
                                heartbeats.recordError(error)
                            }
                        } else {
                            nextPoll += pollInterval
                            do {
                                let answer = try await device.link.desiredState(etag: etag)
                                let answered = ContinuousClock.now
                                polls.record(answered - begin, inWindow: answered <= end, due: due - start)
                                if let answer {
                                    // Not expected: nothing is deployed during the run.
                                    etag = answer.etag
                                    changes.record(.zero)
                                }
                            } catch {
                                polls.recordError(error)
                            }
                        }
                    }
                }
            }
        }
        let seconds = configuration.duration.seconds
        func steady(_ recorder: LatencyRecorder, period: Duration) -> SteadyFigures {
            let summary = recorder.summary()
            return SteadyFigures(
                sent: summary.count + summary.errors,
                achievedPerSecond: Double(summary.answeredInWindow) / seconds,
                targetPerSecond: Double(count) / period.seconds, latency: summary)
        }
        return (
            steady(heartbeats, period: interval), steady(polls, period: pollInterval), lag.summary(),
            changes.summary().count
        )
    }

    /// Closes every device's connections.
    func disconnect(_ devices: [ConnectedDevice]) async {
        await boundedForEach(count: devices.count, width: 256) { index -> Void? in
            await devices[index].link.shutdown()
            return nil
        } onProgress: { _ in
        }
    }

    /// A heartbeat like the real agent's (`SystemSampler` plus the agent's own figures): about ten metrics, varying
    /// a little between devices and beats.
    static func heartbeat(device: Int, _ sequence: Int) -> Heartbeat {
        let wobble = Double((device &* 31 &+ sequence &* 17) % 100)
        return Heartbeat(
            softwareVersion: "agent-load",
            metrics: [
                "cpu.percent": 20 + wobble / 4,
                "memory.rss_bytes": 180_000_000 + wobble * 100_000,
                "disk.free_bytes": 40_000_000_000 - Double(sequence) * 1_000_000,
                "disk.total_bytes": 64_000_000_000,
                "uptime.seconds": Double(sequence) * 10,
                "outbox.pending": Double(sequence % 5),
                "outbox.dropped_events": 0,
                "instances.running": 1,
                "camera.camera_node.fps": 9.5 + wobble / 200,
                "camera.camera_node.dropped": 0,
                "camera.camera_node.reconnects": 0,
                "frames.inferred": Double(sequence) * 95,
            ])
    }

    // MARK: Helpers

    private func figures(_ recorder: LatencyRecorder, since started: ContinuousClock.Instant) -> PhaseFigures {
        let seconds = (ContinuousClock.now - started).seconds
        let summary = recorder.summary()
        return PhaseFigures(
            seconds: seconds, perSecond: seconds > 0 ? Double(summary.count) / seconds : 0, latency: summary)
    }

    /// Runs `body` with a client of its own (at most `width` connections), shut down afterwards.
    private func withClient<T: Sendable>(
        _ tls: TLSConfiguration, width: Int, _ body: (HTTPClient) async throws -> T
    ) async throws -> T {
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, timeout: .init(connect: .seconds(10), read: .seconds(60)))
        configuration.httpVersion = .http1Only
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(width, 1))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        do {
            let result = try await body(client)
            try? await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}

/// A simulated device with its open link to the device endpoint.
struct ConnectedDevice: Sendable {
    /// Its place in the fleet, which sets its slot in the schedule.
    var index: Int
    var link: DeviceLink
    /// The desired state's ETag from the connect phase.
    var etag: String?
}

/// Runs `work(i)` for every i in `0..<count` with at most `width` running at once; answers the results in order.
/// `onProgress` is called every 1,000 completions.
@discardableResult
func boundedForEach<T: Sendable>(
    count: Int, width: Int, _ work: @escaping @Sendable (Int) async -> T?,
    onProgress: (Int) -> Void
) async -> [T?] {
    await withTaskGroup(of: (Int, T?).self) { group in
        var results = [T?](repeating: nil, count: count)
        var next = 0
        while next < min(max(width, 1), count) {
            let index = next
            group.addTask { (index, await work(index)) }
            next += 1
        }
        var done = 0
        while let (index, result) = await group.next() {
            results[index] = result
            done += 1
            if done % 1000 == 0 { onProgress(done) }
            if next < count {
                let index = next
                group.addTask { (index, await work(index)) }
                next += 1
            }
        }
        return results
    }
}

/// A failure of the load generator's setup; the message says what is wrong.
struct LoadError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Duration {
    /// In seconds, as a floating-point number.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

extension String {
    var trimmingSlash: String { hasSuffix("/") ? String(dropLast()) : self }
}
