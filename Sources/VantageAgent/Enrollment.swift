import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOSSL
import VantageAPI
import VantageCore

/// First contact with the server: make the device's key (kept, never sent), make sure the server is the one the
/// operator meant (its CA's fingerprint, or a CA file), and exchange the one-time provisioning token and a CSR
/// for the device's certificate.
public enum Enroller {
    /// How the agent decides to trust the server before it has a certificate of its own.
    public enum Trust: Sendable {
        /// The CA's `sha256:<hex>` fingerprint, printed when the device was created.
        case fingerprint(String)
        /// The CA certificate itself, PEM.
        case certificate(String)
    }

    /// Enrolls and saves the identity in `folder`. A key already in the folder (from an enrollment that failed
    /// half way) is reused.
    public static func enroll(
        server: URL, token: String, trust: Trust, folder: URL, logger: Logger
    ) async throws -> DeviceIdentity {
        guard server.scheme == "https", server.host != nil else {
            throw AgentError(
                "--server \(server.absoluteString) must be the server's device endpoint, https://HOST:PORT (vantage server prints it; port 8443 by default)"
            )
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let keyFile = folder.appending(path: "device.key")
        let keyPEM: String
        if let data = FileManager.default.contents(atPath: keyFile.path) {
            keyPEM = String(decoding: data, as: UTF8.self)
        } else {
            keyPEM = DeviceIdentity.makeKeyPEM()
            try AtomicFile.write(Data(keyPEM.utf8), to: keyFile, permissions: 0o600)
        }

        let caPEM: String
        switch trust {
        case .certificate(let pem):
            caPEM = pem
        case .fingerprint(let expected):
            let fetched = try await fetchCA(server: server)
            let actual = try DeviceIdentity.fingerprint(pem: fetched)
            guard actual.lowercased() == expected.lowercased() else {
                throw AgentError(
                    "the server at \(server.absoluteString) has CA \(actual), not \(expected): this is not the server the device was created on (or the hash is mistyped); nothing was sent to it"
                )
            }
            caPEM = fetched
        }

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        var request = HTTPClientRequest(url: server.absoluteString.trimmingSuffix("/") + "/api/v1/enroll")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        let body = EnrollmentRequest(token: token, csr: try DeviceIdentity.csrPEM(keyPEM: keyPEM))
        request.body = .bytes(Array(try APIJSON.encoder().encode(body)))
        let answer: DeviceLink.Answer
        do {
            answer = try await withClient(tls) { client in
                let response = try await client.execute(request, timeout: .seconds(30))
                let bytes = try await response.body.collect(upTo: 1 << 20)
                return .init(
                    status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView))
            }
        } catch {
            throw AgentError(
                "cannot reach the server at \(server.absoluteString) to enroll: \(error)\(tlsHint(error, server: server))"
            )
        }
        guard answer.status == 201 else {
            throw AgentError("the server refused the enrollment (\(answer.status)): \(answer.message)")
        }
        let enrollment = try APIJSON.decoder().decode(Enrollment.self, from: Data(answer.body))
        guard try DeviceIdentity.fingerprint(pem: enrollment.caCertificate) == DeviceIdentity.fingerprint(pem: caPEM)
        else {
            throw AgentError("the server answered with another CA than the one it serves with: refusing to enroll")
        }
        let identity = DeviceIdentity(
            deviceID: enrollment.deviceId, server: server, keyPEM: keyPEM, certificatePEM: enrollment.certificate,
            caPEM: caPEM)
        try identity.save(to: folder)
        logger.info(
            "enrolled", metadata: ["device.id": "\(enrollment.deviceId)", "server": "\(server.absoluteString)"])
        return identity
    }

    /// The CA certificate the server says it has, fetched without trusting anything yet (the caller compares its
    /// fingerprint before using it, and sends nothing secret on this connection).
    static func fetchCA(server: URL) async throws -> String {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        do {
            return try await withClient(tls) { client in
                let response = try await client.execute(
                    HTTPClientRequest(url: server.absoluteString.trimmingSuffix("/") + "/api/v1/ca"),
                    timeout: .seconds(30))
                let bytes = try await response.body.collect(upTo: 64 << 10)
                guard response.status == .ok else {
                    throw AgentError(
                        "the server at \(server.absoluteString) answered \(response.status.code) for its CA")
                }
                return String(buffer: bytes)
            }
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError("cannot reach the server at \(server.absoluteString): \(error)")
        }
    }

    /// Runs `body` with a one-off client, shut down afterwards whatever happens.
    static func withClient<T: Sendable>(
        _ tls: TLSConfiguration, _ body: (HTTPClient) async throws -> T
    ) async throws -> T {
        let client = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: .init(tlsConfiguration: tls, timeout: .init(connect: .seconds(10), read: .seconds(30))))
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
