import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import Testing

@testable import VantageOutputs

/// The S3 sink's client against moto's S3 server, started per test with SigV4 signature checking on (except where
/// noted), so every upload also proves the signing.
@Suite("S3 client")
struct S3ClientTests {
    static let logger = Logger(label: "test.s3")

    /// Runs `body` with a started server with a bucket `media`, stopping the server afterwards.
    static func withServer(
        authentication: Bool = true,
        _ body: (S3TestServer, HTTPClient) async throws -> Void
    ) async throws {
        let server = try await S3TestServer.start(authentication: authentication)
        defer { server.stop() }
        try await server.createBucket("media")
        try await body(server, HTTPClient.shared)
    }

    /// Random bytes (so a part stored in the wrong place or order shows), 8 at a time to be quick in debug builds.
    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let words = (0..<(count + 7) / 8).map { _ in generator.next() }
        return Array(words.withUnsafeBytes { $0.prefix(count) })
    }

    @Test("a small object is uploaded in one signed PUT with its checksum, and reads back identical")
    func singlePart() async throws {
        try await Self.withServer { server, http in
            let client = S3Client(
                name: "images", configuration: server.configuration(bucket: "media"), httpClient: http,
                logger: Self.logger)
            let bytes = Self.randomBytes(300_000)
            // Signature checking is on: the space in the key must be signed exactly as sent.
            let key = "front door/2026-01-01/e1.jpg"
            let stored = try await client.put(key: key, bytes: bytes, contentType: "image/jpeg")
            #expect(try await server.object(bucket: "media", key: key) == bytes)
            #expect(stored.size == bytes.count)
            #expect(stored.sha256 == SigV4Signer.hex(SHA256.hash(data: bytes)))
            #expect(stored.url == "\(server.endpoint.absoluteString)/media/front%20door/2026-01-01/e1.jpg")
            // The server recorded the SHA-256 the client sent.
            #expect(
                try await server.objectChecksum(bucket: "media", key: key)
                    == Data(SHA256.hash(data: bytes)).base64EncodedString())
        }
    }

    @Test("a 20 MiB file is uploaded in parts and reads back identical")
    func multipart() async throws {
        try await Self.withServer { server, http in
            let client = S3Client(
                name: "clips", configuration: server.configuration(bucket: "media"), httpClient: http,
                logger: Self.logger)
            let bytes = Self.randomBytes(20 << 20)
            let file = FileManager.default.temporaryDirectory.appending(path: "clip-\(UUID().uuidString).mp4")
            try Data(bytes).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let stored = try await client.put(key: "clips/e2.mp4", file: file, contentType: "video/mp4")
            #expect(stored.size == 20 << 20)
            #expect(stored.sha256 == SigV4Signer.hex(SHA256.hash(data: bytes)))
            let read = try #require(try await server.object(bucket: "media", key: "clips/e2.mp4"))
            #expect(read.count == bytes.count)
            #expect(read == bytes)
        }
    }

    @Test("a small file goes in one PUT too")
    func smallFile() async throws {
        try await Self.withServer { server, http in
            let client = S3Client(
                name: "images", configuration: server.configuration(bucket: "media"), httpClient: http,
                logger: Self.logger)
            let bytes = Array("not really a JPEG".utf8)
            let file = FileManager.default.temporaryDirectory.appending(path: "snap-\(UUID().uuidString).jpg")
            try Data(bytes).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            _ = try await client.put(key: "s.jpg", file: file, contentType: "image/jpeg")
            #expect(try await server.object(bucket: "media", key: "s.jpg") == bytes)
        }
    }

    /// Signature checking is off here: moto checks signatures against the path as an IRI (non-ASCII and `+()`
    /// left unencoded), which is not how S3 canonicalises it; the encoding itself is checked by AWS's `get-utf8` and
    /// `get-space` vectors and by the URL test below.
    @Test("a key with spaces, `+` and non-ASCII characters is stored under exactly that key")
    func unusualKey() async throws {
        try await Self.withServer(authentication: false) { server, http in
            let client = S3Client(
                name: "images", configuration: server.configuration(bucket: "media"), httpClient: http,
                logger: Self.logger)
            let key = "front door/Café ሴ/snap+1.jpg"
            let stored = try await client.put(key: key, bytes: [1, 2, 3], contentType: "image/jpeg")
            #expect(stored.key == key)
            #expect(stored.url.hasSuffix("/media/front%20door/Caf%C3%A9%20%E1%88%B4/snap%2B1.jpg"))
            #expect(try await server.object(bucket: "media", key: key) == [1, 2, 3])
        }
    }

    @Test("a bucket that does not exist gives a clear error that retrying cannot fix")
    func missingBucket() async throws {
        try await Self.withServer { server, http in
            let client = S3Client(
                name: "images", configuration: server.configuration(bucket: "no-such-bucket"), httpClient: http,
                logger: Self.logger)
            let error = try await #require(throws: SinkError.self) {
                _ = try await client.put(key: "a.jpg", bytes: [1], contentType: "image/jpeg")
            }
            #expect(!error.retryable)
            #expect(error.sink == "images")
            #expect(error.message.contains("NoSuchBucket"))
            #expect(error.message.contains("create the bucket or fix `bucket`"))
            #expect(error.message.contains("no-such-bucket"))
        }
    }

    @Test("a wrong secret key is refused by the server, and the error names the setting but not the secret")
    func wrongSecret() async throws {
        try await Self.withServer { server, http in
            let client = S3Client(
                name: "images",
                configuration: server.configuration(bucket: "media", secretAccessKey: "not-the-secret-0123456789"),
                httpClient: http, logger: Self.logger)
            let error = try await #require(throws: SinkError.self) {
                _ = try await client.put(key: "a.jpg", bytes: [1], contentType: "image/jpeg")
            }
            #expect(!error.retryable)
            #expect(error.message.contains("SignatureDoesNotMatch"))
            #expect(error.message.contains("check accessKeyId/secretAccessKey"))
            #expect(!error.description.contains("not-the-secret"))
            #expect(try await server.object(bucket: "media", key: "a.jpg") == nil)
        }
    }

    @Test("an endpoint nothing listens on gives a retryable error asking whether it is reachable")
    func unreachable() async throws {
        let port = try freeTCPPort()
        let http = HTTPClient.shared
        let client = S3Client(
            name: "images",
            configuration: S3Configuration(
                endpoint: URL(string: "http://127.0.0.1:\(port)")!, bucket: "media", accessKeyId: "a",
                secretAccessKey: "b", pathStyle: true, requestTimeout: .seconds(2)),
            httpClient: http, logger: Self.logger)
        let error = try await #require(throws: SinkError.self) {
            _ = try await client.put(key: "a.jpg", bytes: [1], contentType: "image/jpeg")
        }
        #expect(error.retryable)
        #expect(error.message.contains("is the endpoint reachable?"))
        #expect(error.message.contains("127.0.0.1:\(port)"))
    }

    @Test("virtual-hosted uploads put the bucket in the host name, and the server files them in that bucket")
    func virtualHosted() async throws {
        try await Self.withServer { server, http in
            var configuration = server.configuration(bucket: "media")
            configuration.endpoint = URL(string: "http://localhost:\(server.endpoint.port!)")!
            configuration.pathStyle = false
            // moto takes `media.localhost:PORT` as the bucket `media`; connect to 127.0.0.1 since that name has no DNS.
            let client = S3Client(
                name: "images", configuration: configuration, httpClient: http, logger: Self.logger,
                connectHost: "127.0.0.1")
            let stored = try await client.put(key: "v/e3.jpg", bytes: [7, 8, 9], contentType: "image/jpeg")
            #expect(stored.url == "http://media.localhost:\(server.endpoint.port!)/v/e3.jpg")
            #expect(try await server.object(bucket: "media", key: "v/e3.jpg") == [7, 8, 9])
        }
    }

    @Test("object URLs: path-style, virtual-hosted, AWS's regional endpoint, endpoint path prefixes")
    func urls() {
        func url(_ endpoint: String?, pathStyle: Bool, region: String = "eu-west-1", key: String = "a b/ü+c.jpg")
            -> String
        {
            S3Client.objectURL(
                configuration: S3Configuration(
                    endpoint: endpoint.map { URL(string: $0)! }, region: region, bucket: "media", accessKeyId: "a",
                    secretAccessKey: "b", pathStyle: pathStyle), key: key)
        }
        #expect(url(nil, pathStyle: false) == "https://media.s3.eu-west-1.amazonaws.com/a%20b/%C3%BC%2Bc.jpg")
        #expect(url(nil, pathStyle: true) == "https://s3.eu-west-1.amazonaws.com/media/a%20b/%C3%BC%2Bc.jpg")
        #expect(url("http://localhost:9000", pathStyle: true) == "http://localhost:9000/media/a%20b/%C3%BC%2Bc.jpg")
        #expect(url("http://localhost:9000", pathStyle: false) == "http://media.localhost:9000/a%20b/%C3%BC%2Bc.jpg")
        #expect(
            url("https://storage.example/s3/", pathStyle: true)
                == "https://storage.example/s3/media/a%20b/%C3%BC%2Bc.jpg")
        // A key's own `//` and `./` are kept: they are part of the key in S3.
        #expect(url(nil, pathStyle: false, key: "a//./b") == "https://media.s3.eu-west-1.amazonaws.com/a//./b")
    }

    @Test("S3's error answers become errors that say what to do, retryable only where retrying can help")
    func errorClassification() {
        let http = HTTPClient.shared
        let client = S3Client(
            name: "images",
            configuration: S3Configuration(
                bucket: "media", accessKeyId: "AKIAEXAMPLE", secretAccessKey: "s3cret-value"),
            httpClient: http, logger: Self.logger)
        func error(_ status: Int, _ code: String) -> SinkError {
            client.s3Error(
                status: status, body: Array("<Error><Code>\(code)</Code><Message>m &amp; n</Message></Error>".utf8),
                key: "k.jpg")
        }
        #expect(!error(403, "AccessDenied").retryable)
        #expect(error(403, "AccessDenied").message.contains("s3:PutObject"))
        #expect(!error(403, "InvalidAccessKeyId").retryable)
        #expect(error(403, "InvalidAccessKeyId").message.contains("AKIAEXAMPLE"))
        #expect(!error(400, "AuthorizationHeaderMalformed").message.contains("s3cret-value"))
        #expect(error(400, "AuthorizationHeaderMalformed").message.contains("set `region`"))
        #expect(error(503, "SlowDown").retryable)
        #expect(error(500, "InternalError").retryable)
        #expect(error(400, "BadDigest").retryable)
        #expect(!error(400, "InvalidArgument").retryable)
        #expect(error(400, "InvalidArgument").message.contains("(m & n)"))
        #expect(!"\(client.configuration)".contains("s3cret-value"))
    }
}
