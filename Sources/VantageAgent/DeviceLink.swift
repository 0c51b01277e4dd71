import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization
import VantageAPI
import VantageCore

/// The agent's connection to the server's device endpoint: HTTPS with the device's certificate (mutual TLS),
/// trusting only the pinned CA. Every call the agent makes goes through here.
public final class DeviceLink: ArtifactSource, Sendable {
    /// The identity and the client presenting it; both replaced together when the certificate is renewed.
    private let current: Mutex<(identity: DeviceIdentity, client: HTTPClient)>
    /// How long one call may take before it counts as a failure (downloads: per read, not in total).
    let timeout: TimeAmount

    public init(identity: DeviceIdentity, timeout: TimeAmount = .seconds(30)) throws {
        self.timeout = timeout
        current = Mutex((identity, try Self.makeClient(identity, timeout: timeout)))
    }

    private static func makeClient(_ identity: DeviceIdentity, timeout: TimeAmount) throws -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: try identity.tlsConfiguration(),
            timeout: .init(connect: .seconds(10), read: timeout))
        configuration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// The identity calls are made with now.
    public var identity: DeviceIdentity { current.withLock { $0.identity } }
    private var client: HTTPClient { current.withLock { $0.client } }

    /// Closes the connections; call once, when done.
    public func shutdown() async {
        try? await client.shutdown()
    }

    /// Renews the device's certificate with a new key (made here; the old key's certificate keeps working on the
    /// server for a day), saves the new identity in `folder` (swapped in whole), and makes the following calls with
    /// it.
    @discardableResult
    public func renewCertificate(savingTo folder: URL) async throws -> DeviceIdentity {
        let old = identity
        let key = DeviceIdentity.makeKeyPEM()
        let enrollment = try await call(
            .POST, "\(devicePath)/certificate",
            json: CertificateRenewal(csr: try DeviceIdentity.csrPEM(keyPEM: key)), as: Enrollment.self)
        let renewed = DeviceIdentity(
            deviceID: old.deviceID, server: old.server, keyPEM: key, certificatePEM: enrollment.certificate,
            caPEM: old.caPEM)
        try renewed.replace(in: folder)
        let client = try Self.makeClient(renewed, timeout: timeout)
        let previous = current.withLock { state -> HTTPClient in
            defer { state = (renewed, client) }
            return state.client
        }
        // Calls in flight finish on the old connections; they close a minute later.
        Task.detached {
            try? await Task.sleep(for: .seconds(60))
            try? await previous.shutdown()
        }
        return renewed
    }

    /// An answer of the server.
    public struct Answer: Sendable {
        public var status: Int
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        init(status: Int, headers: HTTPHeaders, body: [UInt8]) {
            self.status = status
            self.headers = headers.map { (name: $0.name, value: $0.value) }
            self.body = body
        }

        /// The first header named `name` (case-insensitive).
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        /// The server's error message, or the body's start.
        public var message: String {
            (try? APIJSON.decoder().decode(ErrorBody.self, from: Data(body)))?.error.message
                ?? String(decoding: body.prefix(300), as: UTF8.self)
        }
    }

    /// Sends one request to the device endpoint (`path` starts with `/`). Network failures throw
    /// ``LinkError/unreachable(_:)``; any HTTP answer is returned.
    public func send(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        maxBytes: Int = 64 << 20
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: identity.server.absoluteString.trimmingSuffix("/") + path)
        request.method = HTTPMethod(rawValue: method)
        request.headers = HTTPHeaders(headers)
        if let body {
            request.body = .bytes(body)
            if request.headers["content-type"].isEmpty {
                request.headers.add(name: "content-type", value: "application/json")
            }
        }
        do {
            let response = try await client.execute(request, timeout: timeout)
            let bytes = try await response.body.collect(upTo: maxBytes)
            return Answer(
                status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw LinkError.unreachable("the server did not answer within \(timeout.nanoseconds / 1_000_000_000) s")
        } catch let error as NIOSSLError {
            // A wrong clock makes every certificate look not yet valid or expired: say so rather than blame the
            // server (and keep retrying: the clock may be set any time).
            if let clock = identity.clockOutsideValidity() {
                throw LinkError.unreachable("\(clock) (TLS with the server failed: \(error))")
            }
            throw LinkError.refused(
                "TLS with the server failed (\(error)): is this the server the device enrolled with?")
        } catch let error as NIOSSLExtraError {
            throw LinkError.refused("TLS with the server failed (\(error))\(tlsHint(error, server: identity.server))")
        } catch let error as HTTPClientError {
            throw LinkError.unreachable("\(error)")
        } catch let error as LinkError {
            throw error
        } catch {
            throw LinkError.unreachable("\(error)")
        }
    }

    /// Sends `value` as JSON and decodes a 2xx answer as `T`; other answers throw ``LinkError``.
    func call<T: Decodable>(
        _ method: HTTPMethod, _ path: String, json value: (any Encodable)? = nil, as type: T.Type
    ) async throws -> T {
        let body = try value.map { Array(try APIJSON.encoder().encode($0)) }
        let answer = try await send(method.rawValue, path, body: body)
        try Self.check(answer, method, path)
        return try APIJSON.decoder().decode(T.self, from: Data(answer.body))
    }

    static func check(_ answer: Answer, _ method: HTTPMethod, _ path: String) throws {
        switch answer.status {
        case 200..<300, 304: return
        case 401, 403: throw LinkError.refused("\(method) \(path): \(answer.status) \(answer.message)")
        case 500...: throw LinkError.unreachable("\(method) \(path): \(answer.status) \(answer.message)")
        default: throw LinkError.rejected(answer.status, "\(method) \(path): \(answer.message)")
        }
    }

    var devicePath: String { "/api/v1/devices/\(identity.deviceID)" }

    // MARK: The device API

    /// The desired state, or nil when it is unchanged since `etag` (304). With `wait`, the server holds the answer
    /// until the state changes or `wait` passes (long poll), so a deployment reaches the device at once.
    public func desiredState(etag: String?, wait: Duration? = nil) async throws -> (
        state: DeviceDesiredState, etag: String?
    )? {
        var path = "\(devicePath)/desired-state"
        if let wait, etag != nil { path += "?wait=\(wait.components.seconds)" }
        let answer = try await send("GET", path, headers: etag.map { [("if-none-match", $0)] } ?? [])
        if answer.status == 304 { return nil }
        try Self.check(answer, .GET, path)
        return (
            try APIJSON.decoder().decode(DeviceDesiredState.self, from: Data(answer.body)),
            answer.header("etag")
        )
    }

    public func heartbeat(_ beat: Heartbeat) async throws {
        _ = try await call(.POST, "\(devicePath)/heartbeat", json: beat, as: JSONValue.self)
    }

    public func report(instanceId: String, _ report: InstanceReport) async throws {
        _ = try await call(.POST, "/api/v1/instances/\(instanceId)/report", json: report, as: JSONValue.self)
    }

    /// Sends events; answers the server's ids, one per event (the same ids again for a resent batch).
    public func send(events: [NewEvent]) async throws -> [String] {
        struct IDs: Decodable { let ids: [String] }
        return try await call(.POST, "\(devicePath)/events", json: EventBatch(events: events), as: IDs.self).ids
    }

    /// Uploads the MP4 clip of the event the device named `eventID` (its `NewEvent.id`); the server keeps one clip per
    /// event, so an upload sent again is harmless.
    public func upload(clip file: URL, eventID: String) async throws {
        let path = "\(devicePath)/events/\(eventID)/clip"
        let bytes = try Data(contentsOf: file)
        let answer = try await send("PUT", path, headers: [("content-type", "video/mp4")], body: Array(bytes))
        try Self.check(answer, .PUT, path)
    }

    /// Says how the camera signal `id` of the desired state went.
    public func finishSignal(_ id: String, _ result: CameraSignalResult) async throws {
        let path = "\(devicePath)/signals/\(id)"
        let answer = try await send("POST", path, body: Array(try APIJSON.encoder().encode(result)))
        try Self.check(answer, .POST, path)
    }

    /// Sends one live frame of `instance`'s `stream`; answers the HTTP status (204 sent, 410 nobody watches).
    public func sendLiveFrame(instance: String, stream: String, jpeg: Data, time: Double) async throws -> Int {
        let query = stream.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? stream
        return try await send(
            "POST", "\(devicePath)/live/\(instance)?stream=\(query)",
            headers: [("content-type", "image/jpeg"), ("x-frame-time", String(format: "%.3f", time))],
            body: Array(jpeg), maxBytes: 64 << 10
        ).status
    }

    public func send(logs: [LogLine]) async throws {
        let path = "\(devicePath)/logs"
        let answer = try await send("POST", path, body: Array(try APIJSON.encoder().encode(LogBatch(lines: logs))))
        try Self.check(answer, .POST, path)
    }

    /// Appends the artifact's bytes from `offset` to `file` (a Range request, so an interrupted download resumes).
    public func download(digest: String, offset: Int64, into file: FileHandle) async throws {
        var request = HTTPClientRequest(
            url: identity.server.absoluteString.trimmingSuffix("/") + "\(devicePath)/artifacts/\(digest)")
        if offset > 0 { request.headers.add(name: "range", value: "bytes=\(offset)-") }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .hours(2))
        } catch {
            throw LinkError.unreachable("downloading \(digest): \(error)")
        }
        guard response.status == .ok || response.status == .partialContent else {
            let bytes = try await response.body.collect(upTo: 1 << 20)
            let answer = Answer(
                status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView))
            try Self.check(answer, .GET, "artifact \(digest)")
            throw LinkError.rejected(answer.status, "artifact \(digest): \(answer.message)")
        }
        if offset > 0, response.status == .ok {
            // The server ignored the range: start again from the beginning.
            try file.truncate(atOffset: 0)
        }
        // Refused before a byte is written when the rest of the file cannot fit (with the volume's reserve).
        let remaining = response.headers.first(name: "content-length").flatMap { Int64($0) } ?? 0
        let what = "downloading \(digest)"
        if remaining > 0, let (free, total) = DataVolume.space(descriptor: file.fileDescriptor),
            free < remaining + DataVolume.reserve(total: total)
        {
            throw DiskSpaceShortage(
                folder: nil, free: free, needed: remaining, reserve: DataVolume.reserve(total: total), what: what)
        }
        do {
            for try await chunk in response.body {
                do {
                    try chunk.withUnsafeReadableBytes { try file.write(contentsOf: $0) }
                } catch let error where isOutOfSpace(error) {
                    let (free, total) = DataVolume.space(descriptor: file.fileDescriptor) ?? (0, 0)
                    let reserve = DataVolume.reserve(total: total)
                    throw DiskSpaceShortage(folder: nil, free: free, needed: remaining, reserve: reserve, what: what)
                }
            }
        } catch let error as LinkError {
            throw error
        } catch let error as DiskSpaceShortage {
            throw error
        } catch {
            throw LinkError.unreachable("downloading \(digest) was interrupted: \(error)")
        }
    }
}

/// Why a call to the server failed, by what the agent should do about it.
public enum LinkError: Error, CustomStringConvertible, Sendable {
    /// The network or the server is down (or answered 5xx): keep going, retry with backoff.
    case unreachable(String)
    /// The server refuses this device (401/403): revoked, or not who it says; a person must act.
    case refused(String)
    /// The request itself was wrong (4xx): retrying the same thing will not help.
    case rejected(Int, String)

    public var description: String {
        switch self {
        case .unreachable(let message): "server unreachable: \(message)"
        case .refused(let message): "the server refuses this device: \(message)"
        case .rejected(let status, let message): "the server rejected the request (\(status)): \(message)"
        }
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}

/// What to do about a TLS failure that comes from the server's certificate not naming the address the agent uses.
func tlsHint(_ error: any Error, server: URL) -> String {
    guard "\(error)".lowercased().contains("hostname") else { return "" }
    return
        ": the server's certificate does not name \(server.host ?? "this address"); start vantage server with --device-hostname \(server.host ?? "NAME") (repeatable) and use the same name here"
}
