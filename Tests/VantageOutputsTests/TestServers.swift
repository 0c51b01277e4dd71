// Servers the sink tests start and stop: moto's S3-compatible server and scripts/webhook-receiver.
// Reusable by end-to-end tests: start in the test, `defer { server.stop() }`.
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

@testable import VantageOutputs

#if canImport(Glibc)
    import Glibc
#endif

/// Paths inside the repository, found from this file's location.
enum TestRepository {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static func path(_ relative: String) -> URL { root.appending(path: relative) }
}

/// A test server could not start; the message names the fix.
struct TestServerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A child process whose output goes to a temporary log file (a pipe nobody reads could fill and block it), killed
/// by `stop()` or when released.
/// `@unchecked Sendable`: `Process` is only touched by `start` (before sharing) and `stop`, which is idempotent
/// and guarded by the lock.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let log: URL
    private let lock = NSLock()
    private var stopped = false

    init(executable: String, arguments: [String], environment: [String: String] = [:], name: String) throws {
        log = FileManager.default.temporaryDirectory.appending(path: "\(name)-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw TestServerError("cannot run \(executable): \(error); run scripts/setup")
        }
        try? output.close()
    }

    var isRunning: Bool { process.isRunning }

    /// The last lines the process printed.
    var output: String {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(15).joined(separator: "\n")
    }

    /// Terminates the process and waits for it; safe to call more than once.
    func stop() {
        let first = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        if process.isRunning {
            // SIGKILL: a child started from a Swift Concurrency thread inherits its blocked signals, SIGTERM included.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: log)
    }

    deinit { stop() }
}

/// A TCP port nothing listens on right now (the kernel's choice for port 0).
func freeTCPPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestServerError("socket() failed: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw TestServerError("cannot find a free port: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// moto's S3-compatible server (`.deps/s3server`, installed by scripts/setup), started on a free port.
///
/// With `authentication: true`, moto checks every S3 request's SigV4 signature: the server creates an IAM user
/// with an access key allowed `s3:*`, then turns authentication on (moto's `/moto-api/reset-auth`). Without it,
/// moto accepts any credentials.
final class S3TestServer: Sendable {
    /// `http://127.0.0.1:PORT`.
    let endpoint: URL
    /// Credentials the server accepts (any when authentication is off).
    let accessKeyId: String
    let secretAccessKey: String
    let region = "us-east-1"
    let authentication: Bool
    private let child: ChildProcess
    private var http: HTTPClient { .shared }

    private init(
        endpoint: URL, accessKeyId: String, secretAccessKey: String, authentication: Bool, child: ChildProcess
    ) {
        self.endpoint = endpoint
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.authentication = authentication
        self.child = child
    }

    /// Starts moto and waits until it answers (a few seconds at most).
    static func start(authentication: Bool = false) async throws -> S3TestServer {
        let packages = TestRepository.path(".deps/s3server")
        guard FileManager.default.fileExists(atPath: packages.appending(path: "moto").path) else {
            throw TestServerError("moto's S3 server is not installed at \(packages.path): run scripts/setup")
        }
        var lastError = ""
        for _ in 0..<3 {  // another process may take the free port first
            let port = try freeTCPPort()
            let child = try ChildProcess(
                executable: "python3", arguments: ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)],
                environment: ["PYTHONPATH": packages.path], name: "moto")
            let endpoint = URL(string: "http://127.0.0.1:\(port)")!
            let http = HTTPClient.shared
            if try await waitUntilAnswering(endpoint.appending(path: "moto-api/"), child: child, http: http) {
                var server = S3TestServer(
                    endpoint: endpoint, accessKeyId: "test", secretAccessKey: "test", authentication: false,
                    child: child)
                if authentication {
                    do {
                        let (keyId, secret) = try await server.createIAMUserAllowedS3()
                        var reset = HTTPClientRequest(
                            url: endpoint.appending(path: "moto-api/reset-auth").absoluteString)
                        reset.method = .POST
                        reset.body = .bytes(ByteBuffer(string: "0"))
                        let answer = try await http.execute(reset, timeout: .seconds(10))
                        guard answer.status == .ok else {
                            throw TestServerError("moto refused reset-auth: \(answer.status)")
                        }
                        server = S3TestServer(
                            endpoint: endpoint, accessKeyId: keyId, secretAccessKey: secret, authentication: true,
                            child: child)
                    } catch {
                        server.stop()
                        throw error
                    }
                }
                return server
            }
            lastError = child.output
            child.stop()
        }
        throw TestServerError("moto's S3 server did not start (run scripts/setup); it printed:\n\(lastError)")
    }

    /// A configuration for the sink tests: path-style addressing, this server's credentials.
    func configuration(bucket: String, partSize: Int = 8 << 20, secretAccessKey: String? = nil) -> S3Configuration {
        S3Configuration(
            endpoint: endpoint, region: region, bucket: bucket, accessKeyId: accessKeyId,
            secretAccessKey: secretAccessKey ?? self.secretAccessKey, pathStyle: true, partSize: partSize)
    }

    /// Creates `bucket` with a signed `PUT /bucket`.
    func createBucket(_ bucket: String) async throws {
        let response = try await s3Request("PUT", path: "/\(bucket)")
        guard (200..<300).contains(response.status) else {
            throw TestServerError("creating bucket \(bucket) failed: \(response.status) \(response.text)")
        }
    }

    /// The bytes of `bucket/key`, or nil if there is no such object.
    func object(bucket: String, key: String) async throws -> [UInt8]? {
        try await objectResponse(bucket: bucket, key: key)?.body
    }

    /// The SHA-256 checksum (base64) the server recorded for `bucket/key`, if any.
    func objectChecksum(bucket: String, key: String) async throws -> String? {
        try await objectResponse(bucket: bucket, key: key, headers: [("x-amz-checksum-mode", "ENABLED")])?
            .headers.first(name: "x-amz-checksum-sha256")
    }

    private func objectResponse(bucket: String, key: String, headers: [(String, String)] = []) async throws
        -> RawResponse?
    {
        let response = try await s3Request(
            "GET", path: "/\(bucket)/\(SigV4Signer.uriEncode(key, keepSlash: true))", headers: headers)
        if response.status == 404 { return nil }
        guard response.status == 200 else {
            throw TestServerError("GET \(bucket)/\(key) failed: \(response.status) \(response.text)")
        }
        return response
    }

    /// Stops the server; safe to call more than once.
    func stop() {
        child.stop()
    }

    // MARK: - Requests

    struct RawResponse {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var text: String { String(decoding: body.prefix(500), as: UTF8.self) }
    }

    private func s3Request(_ method: String, path: String, headers extra: [(String, String)] = []) async throws
        -> RawResponse
    {
        try await signedRequest(
            method, path: path, query: "", service: "s3",
            headers: extra + [("x-amz-content-sha256", SigV4Signer.emptyPayloadHash)],
            body: [])
    }

    private func signedRequest(
        _ method: String, path: String, query: String, service: String, headers extra: [(String, String)],
        body: [UInt8]
    ) async throws -> RawResponse {
        let signer = SigV4Signer(
            accessKeyId: accessKeyId, secretAccessKey: secretAccessKey, region: region, service: service)
        let host = "127.0.0.1:\(endpoint.port!)"
        var headers = [("Host", host)] + extra
        headers += signer.sign(
            method: method, path: path, query: query, headers: headers,
            payloadHash: SigV4Signer.hex(SHA256.hash(data: body)), date: Date())
        var request = HTTPClientRequest(url: "\(endpoint.absoluteString)\(path)\(query.isEmpty ? "" : "?" + query)")
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if !body.isEmpty { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return RawResponse(
            status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView))
    }

    /// IAM user `vantage-test` with an inline policy allowing `s3:*`, and its new access key.
    private func createIAMUserAllowedS3() async throws -> (String, String) {
        func iam(_ parameters: [(String, String)]) async throws -> RawResponse {
            let form = (parameters + [("Version", "2010-05-08")]).map {
                "\($0.0)=\(SigV4Signer.uriEncode($0.1, keepSlash: false))"
            }.joined(separator: "&")
            let response = try await signedRequest(
                "POST", path: "/", query: "", service: "iam",
                headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], body: Array(form.utf8))
            guard response.status == 200 else {
                throw TestServerError("moto IAM \(parameters[0].1) failed: \(response.status) \(response.text)")
            }
            return response
        }
        let user = "vantage-test"
        _ = try await iam([("Action", "CreateUser"), ("UserName", user)])
        _ = try await iam([
            ("Action", "PutUserPolicy"), ("UserName", user), ("PolicyName", "s3-all"),
            (
                "PolicyDocument",
                #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
            ),
        ])
        let key = try await iam([("Action", "CreateAccessKey"), ("UserName", user)])
        guard let keyId = XMLFields.value(of: "AccessKeyId", in: key.body),
            let secret = XMLFields.value(of: "SecretAccessKey", in: key.body)
        else { throw TestServerError("moto's CreateAccessKey answer had no key: \(key.text)") }
        return (keyId, secret)
    }
}

/// Polls `url` until it answers (true), the process exits or 20 seconds pass (false).
private func waitUntilAnswering(_ url: URL, child: ChildProcess, http: HTTPClient) async throws -> Bool {
    let deadline = ContinuousClock.now + .seconds(20)
    while ContinuousClock.now < deadline, child.isRunning {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .GET
        if let response = try? await http.execute(request, timeout: .seconds(2)) {
            _ = try? await response.body.collect(upTo: 16 << 20)
            return true
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    return false
}

/// scripts/webhook-receiver on a free port: verifies signatures, logs verified deliveries, fails on purpose.
final class WebhookReceiver: Sendable {
    /// A delivery the receiver verified.
    struct Delivery: Sendable, Equatable {
        var eventId: String
        var timestamp: String
        var path: String
        /// The JSON body, as the receiver re-serialised it.
        var body: [UInt8]
        /// Whether this event ID had been delivered before.
        var duplicate: Bool
    }

    /// `http://127.0.0.1:PORT/hook`.
    let url: URL
    private let logFile: URL
    private let child: ChildProcess

    private init(url: URL, logFile: URL, child: ChildProcess) {
        self.url = url
        self.logFile = logFile
        self.child = child
    }

    /// Starts the receiver and waits until it listens.
    ///
    /// - Parameters:
    ///   - secret: deliveries must be signed with it (nil: signatures are not checked).
    ///   - failFirst: answer 503 to this many first deliveries.
    ///   - failWhile: answer 503 while this file exists.
    ///   - delayWhile: while this file exists, wait `delay` seconds before answering.
    ///   - statusWhile: answer this status while the file exists.
    static func start(
        secret: String?, failFirst: Int = 0, failWhile: URL? = nil, delayWhile: URL? = nil, delay: Double = 30,
        statusWhile: (file: URL, status: Int)? = nil
    ) async throws -> WebhookReceiver {
        let script = TestRepository.path("scripts/webhook-receiver")
        let scratch = FileManager.default.temporaryDirectory.appending(path: "webhook-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let portFile = scratch.appending(path: "port")
        let logFile = scratch.appending(path: "deliveries.jsonl")
        var arguments = [
            script.path, "--port", "0", "--port-file", portFile.path, "--log", logFile.path, "--fail-first",
            String(failFirst), "--delay", String(delay),
        ]
        if let secret { arguments += ["--secret", secret] }
        if let failWhile { arguments += ["--fail-while", failWhile.path] }
        if let delayWhile { arguments += ["--delay-while", delayWhile.path] }
        if let statusWhile { arguments += ["--status-while", "\(statusWhile.file.path):\(statusWhile.status)"] }
        let child = try ChildProcess(executable: "python3", arguments: arguments, name: "webhook-receiver")
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, child.isRunning {
            if let text = try? String(contentsOf: portFile, encoding: .utf8), let port = Int(text) {
                return WebhookReceiver(
                    url: URL(string: "http://127.0.0.1:\(port)/hook")!, logFile: logFile, child: child)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let output = child.output
        child.stop()
        throw TestServerError("scripts/webhook-receiver did not start (needs python3 3.10+); it printed:\n\(output)")
    }

    /// The verified deliveries so far, in the order received.
    func deliveries() throws -> [Delivery] {
        guard let text = try? String(contentsOf: logFile, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { line in
            guard let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw TestServerError("bad log line: \(line)")
            }
            let body = try JSONSerialization.data(
                withJSONObject: record["body"] ?? NSNull(), options: [.fragmentsAllowed, .sortedKeys])
            return Delivery(
                eventId: record["eventId"] as? String ?? "", timestamp: record["timestamp"] as? String ?? "",
                path: record["path"] as? String ?? "", body: Array(body),
                duplicate: record["duplicate"] as? Bool ?? false)
        }
    }

    /// What the receiver printed (refusals give their reason there).
    var output: String { child.output }

    /// Stops the receiver; safe to call more than once.
    func stop() {
        child.stop()
        try? FileManager.default.removeItem(at: logFile.deletingLastPathComponent())
    }
}
