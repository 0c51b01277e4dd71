// The S3 sink's client: signed single-part and multipart uploads to Amazon S3 or any S3-compatible store.
import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Where and how the S3 sink stores objects. `description` never shows the secret key or the session token.
public struct S3Configuration: Sendable, CustomStringConvertible, CustomReflectable {
    /// The service's address, e.g. `http://127.0.0.1:9000` for a local server; nil means AWS
    /// (`https://s3.<region>.amazonaws.com`).
    public var endpoint: URL?
    /// The bucket's region (part of the signature even for most local servers, which accept any region).
    public var region: String
    /// The bucket objects are written to; it must exist.
    public var bucket: String
    /// The access key ID.
    public var accessKeyId: String
    /// The secret access key. Secret: never logged.
    public var secretAccessKey: String
    /// A temporary session token from AWS STS, if the credentials are temporary. Secret: never logged.
    public var sessionToken: String?
    /// Address objects as `endpoint/bucket/key` (path-style) instead of `bucket.endpoint-host/key` (virtual-hosted).
    /// AWS prefers virtual-hosted; most local servers (MinIO, moto, Ceph without wildcard DNS) need path-style.
    public var pathStyle: Bool
    /// Bodies larger than this are uploaded in parts of this size (multipart upload). S3's minimum part is 5 MiB;
    /// it is raised where an object would need more than 10,000 parts.
    public var partSize: Int
    /// The longest one HTTP request (one part, for multipart uploads) may take before it counts as failed.
    public var requestTimeout: Duration

    /// S3's smallest part size, except for an upload's last part.
    public static let minimumPartSize = 5 << 20

    /// Creates a configuration; see the properties for what each value means.
    public init(
        endpoint: URL? = nil, region: String = "us-east-1", bucket: String, accessKeyId: String,
        secretAccessKey: String, sessionToken: String? = nil, pathStyle: Bool = false, partSize: Int = 8 << 20,
        requestTimeout: Duration = .seconds(60)
    ) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.pathStyle = pathStyle
        self.partSize = partSize
        self.requestTimeout = requestTimeout
    }

    public var description: String {
        "S3Configuration(endpoint: \(endpoint?.absoluteString ?? "AWS"), region: \(region), bucket: \(bucket), "
            + "accessKeyId: \(accessKeyId), pathStyle: \(pathStyle), partSize: \(partSize))"
    }

    /// What `dump` shows: the description's fields, no secrets.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "endpoint": endpoint?.absoluteString ?? "AWS", "region": region, "bucket": bucket,
                "accessKeyId": accessKeyId, "pathStyle": pathStyle, "partSize": partSize,
            ])
    }

    /// The endpoint actually used: the configured one, or AWS's regional endpoint.
    var resolvedEndpoint: URL {
        endpoint ?? URL(string: "https://s3.\(region).amazonaws.com")!
    }
}

/// An object the S3 sink stored: what an event's message carries once the upload succeeded.
public struct StoredObject: Sendable, Codable, Equatable {
    /// The object's key in the bucket.
    public var key: String
    /// The object's URL (readable only with credentials unless the bucket is public).
    public var url: String
    /// The object's size in bytes.
    public var size: Int
    /// The hex SHA-256 of the object's bytes.
    public var sha256: String

    /// Creates a record of a stored object.
    public init(key: String, url: String, size: Int, sha256: String) {
        self.key = key
        self.url = url
        self.size = size
        self.sha256 = sha256
    }
}

/// Uploads objects to one S3 bucket with SigV4-signed requests.
///
/// Bodies up to `partSize` go in one `PUT`; larger ones as a multipart upload (aborted if any part fails). Every
/// request carries the body's SHA-256 (`x-amz-content-sha256`, signed) and every object or part its base64
/// SHA-256 (`x-amz-checksum-sha256`), so S3 refuses bytes changed on the way; a single-part upload's `ETag` is also
/// checked against the body's MD5 where S3 returns one. Failures are `SinkError`s naming the bucket and key and saying
/// what to do; `retryable` is false where trying again cannot help (unknown bucket, bad credentials, access denied).
public final class S3Client: Sendable {
    /// The sink's name, as configured (used in errors and logs).
    public let name: String
    /// Where objects go.
    public let configuration: S3Configuration
    private let httpClient: HTTPClient
    private let logger: Logger
    private let signer: SigV4Signer
    /// Tests only: connect to this host instead of the URL's, keeping the URL's `Host` header, so a local server can be
    /// reached virtual-hosted (`bucket.localhost:PORT`) without DNS for the bucket's name.
    private let connectHost: String?

    /// Creates a client for the sink `name`. The caller owns `httpClient` and shuts it down.
    public convenience init(name: String, configuration: S3Configuration, httpClient: HTTPClient, logger: Logger) {
        self.init(name: name, configuration: configuration, httpClient: httpClient, logger: logger, connectHost: nil)
    }

    init(name: String, configuration: S3Configuration, httpClient: HTTPClient, logger: Logger, connectHost: String?) {
        self.connectHost = connectHost
        self.name = name
        self.configuration = configuration
        self.httpClient = httpClient
        var logger = logger
        logger[metadataKey: "sink.name"] = "\(name)"
        logger[metadataKey: "s3.bucket"] = "\(configuration.bucket)"
        self.logger = logger
        self.signer = SigV4Signer(
            accessKeyId: configuration.accessKeyId, secretAccessKey: configuration.secretAccessKey,
            sessionToken: configuration.sessionToken, region: configuration.region, service: "s3",
            pathCanonicalization: .s3)
    }

    /// The URL of the object `key`: `endpoint/bucket/key` (path-style) or `bucket.host/key` (virtual-hosted), the
    /// key URI-encoded (spaces, `+`, non-ASCII) with its `/` kept.
    public func url(for key: String) -> URL {
        URL(string: Self.objectURL(configuration: configuration, key: key))!
    }

    /// Stores `bytes` as the object `key`.
    public func put(key: String, bytes: [UInt8], contentType: String) async throws(SinkError) -> StoredObject {
        let sha256 = SigV4Signer.hex(SHA256.hash(data: bytes))
        let partSize = Self.effectivePartSize(configuration.partSize, total: bytes.count)
        if bytes.count <= partSize {
            try await putSingle(key: key, body: bytes[...], contentType: contentType)
        } else {
            var offset = 0
            try await putMultipart(key: key, contentType: contentType, total: bytes.count) {
                () throws(SinkError) -> ArraySlice<UInt8>? in
                guard offset < bytes.count else { return nil }
                let end = min(offset + partSize, bytes.count)
                defer { offset = end }
                return bytes[offset..<end]
            }
        }
        return StoredObject(key: key, url: url(for: key).absoluteString, size: bytes.count, sha256: sha256)
    }

    /// Stores the file at `file` as the object `key`, reading at most one part into memory at a time.
    public func put(key: String, file: URL, contentType: String) async throws(SinkError) -> StoredObject {
        let handle: FileHandle
        let size: Int
        do {
            handle = try FileHandle(forReadingFrom: file)
            size = Int(try handle.seekToEnd())
            try handle.seek(toOffset: 0)
        } catch {
            throw SinkError(
                sink: name, "cannot read \(file.path) to upload it as s3://\(configuration.bucket)/\(key): \(error)",
                retryable: false)
        }
        defer { try? handle.close() }
        let partSize = Self.effectivePartSize(configuration.partSize, total: size)
        var hasher = SHA256()
        let readPart = { [name] () throws(SinkError) -> ArraySlice<UInt8>? in
            do {
                guard let data = try handle.read(upToCount: partSize), !data.isEmpty else { return nil }
                let bytes = [UInt8](data)
                hasher.update(data: bytes)
                return bytes[...]
            } catch {
                throw SinkError(sink: name, "cannot read \(file.path): \(error)", retryable: false)
            }
        }
        if size <= partSize {
            let body = try readPart() ?? []
            guard body.count == size else {
                throw SinkError(sink: name, "\(file.path) changed size while it was read; will try again")
            }
            try await putSingle(key: key, body: body, contentType: contentType)
        } else {
            try await putMultipart(key: key, contentType: contentType, total: size, nextPart: readPart)
        }
        let sha256 = SigV4Signer.hex(hasher.finalize())
        return StoredObject(key: key, url: url(for: key).absoluteString, size: size, sha256: sha256)
    }

    // MARK: - Uploads

    private func putSingle(key: String, body: ArraySlice<UInt8>, contentType: String) async throws(SinkError) {
        let checksum = Data(SHA256.hash(data: body)).base64EncodedString()
        let response = try await send(
            "PUT", key: key, query: "",
            headers: [
                ("Content-Type", contentType), ("x-amz-checksum-sha256", checksum),
                ("x-amz-sdk-checksum-algorithm", "SHA256"),
            ], body: body)
        try verifyETag(response.headers, body: body, key: key)
        logger.debug("stored object", metadata: ["s3.key": "\(key)", "s3.size": "\(body.count)"])
    }

    /// A multipart upload: create, upload each part `nextPart` returns (nil ends), complete; abort on any failure.
    private func putMultipart(
        key: String, contentType: String, total: Int,
        nextPart: () throws(SinkError) -> ArraySlice<UInt8>?
    ) async throws(SinkError) {
        let created = try await send(
            "POST", key: key, query: "uploads",
            headers: [
                ("Content-Type", contentType), ("x-amz-checksum-algorithm", "SHA256"),
                ("x-amz-sdk-checksum-algorithm", "SHA256"),
            ], body: nil)
        guard let uploadId = XMLFields.value(of: "UploadId", in: created.body) else {
            throw SinkError(
                sink: name,
                "\(describe(key)): the server accepted CreateMultipartUpload but sent no UploadId; "
                    + "check that `endpoint` is an S3-compatible service")
        }
        let uploadQuery = "uploadId=\(SigV4Signer.uriEncode(uploadId, keepSlash: false))"
        do throws(SinkError) {
            var parts: [(number: Int, etag: String, checksum: String)] = []
            var uploaded = 0
            while let part = try nextPart() {
                let number = parts.count + 1
                let checksum = Data(SHA256.hash(data: part)).base64EncodedString()
                let response = try await send(
                    "PUT", key: key, query: "partNumber=\(number)&\(uploadQuery)",
                    headers: [("x-amz-checksum-sha256", checksum), ("x-amz-sdk-checksum-algorithm", "SHA256")],
                    body: part)
                guard let etag = response.headers.first(name: "ETag") else {
                    throw SinkError(
                        sink: name, "\(describe(key)): part \(number) was stored but the answer had no ETag")
                }
                parts.append((number, etag, checksum))
                uploaded += part.count
            }
            guard uploaded == total else {
                throw SinkError(
                    sink: name,
                    "\(describe(key)): read \(uploaded) bytes of \(total); the file changed while it was read")
            }
            let completion =
                "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                + parts.map {
                    "<Part><ChecksumSHA256>\($0.checksum)</ChecksumSHA256><ETag>\(XMLFields.escape($0.etag))</ETag>"
                        + "<PartNumber>\($0.number)</PartNumber></Part>"
                }.joined() + "</CompleteMultipartUpload>"
            let completed = try await send(
                "POST", key: key, query: uploadQuery, headers: [("Content-Type", "application/xml")],
                body: Array(completion.utf8)[...])
            // CompleteMultipartUpload can answer 200 with an error in the body.
            if XMLFields.value(of: "Code", in: completed.body) != nil {
                throw s3Error(status: 200, body: completed.body, key: key)
            }
            logger.debug(
                "stored object in parts",
                metadata: ["s3.key": "\(key)", "s3.size": "\(total)", "s3.parts": "\(parts.count)"])
        } catch {
            do {
                _ = try await send("DELETE", key: key, query: uploadQuery, headers: [], body: nil)
            } catch let abortError {
                logger.warning(
                    "could not abort the failed multipart upload; the bucket may keep its parts until a lifecycle rule removes them",
                    metadata: ["s3.key": "\(key)", "error": "\(abortError)"])
            }
            throw error
        }
    }

    /// Where S3 returns a plain MD5 ETag (not multipart, not SSE-KMS/SSE-C), it must be the body's MD5.
    private func verifyETag(_ headers: HTTPHeaders, body: ArraySlice<UInt8>, key: String) throws(SinkError) {
        guard let etag = headers.first(name: "ETag")?.trimmingCharacters(in: CharacterSet(charactersIn: "\"")),
            etag.count == 32, headers.first(name: "x-amz-server-side-encryption") != "aws:kms",
            headers.first(name: "x-amz-server-side-encryption-customer-algorithm") == nil
        else { return }
        let md5 = SigV4Signer.hex(Insecure.MD5.hash(data: body))
        if etag.lowercased() != md5 {
            throw SinkError(
                sink: name,
                "\(describe(key)): the stored object's ETag \(etag) is not the MD5 of the bytes sent (\(md5)); "
                    + "the body was changed on the way; will upload again")
        }
    }

    // MARK: - HTTP

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// Sends one signed request for the object `key`; a status other than 2xx becomes a `SinkError`.
    private func send(
        _ method: String, key: String, query: String, headers extra: [(String, String)], body: ArraySlice<UInt8>?
    ) async throws(SinkError) -> Response {
        let base = Self.objectURL(configuration: configuration, key: key)
        let url = URL(string: query.isEmpty ? base : "\(base)?\(query)")!
        let payloadHash = body.map { SigV4Signer.hex(SHA256.hash(data: $0)) } ?? SigV4Signer.emptyPayloadHash
        var headers = [("Host", SigV4Signer.hostHeader(for: url)), ("x-amz-content-sha256", payloadHash)] + extra
        headers += signer.sign(
            method: method, path: url.path(percentEncoded: true), query: query, headers: headers,
            payloadHash: payloadHash, date: Date())

        var target = URLComponents(url: url, resolvingAgainstBaseURL: false)!
        if let connectHost { target.host = connectHost }
        var request = HTTPClientRequest(url: target.url!.absoluteString)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let endpoint = configuration.resolvedEndpoint.absoluteString
        let response: HTTPClientResponse
        let answer: ByteBuffer
        do {
            response = try await httpClient.execute(request, timeout: SinkHTTP.timeAmount(configuration.requestTimeout))
            answer = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw SinkHTTP.transportError(
                sink: name, doing: "\(method) \(describe(key))", endpoint: endpoint, error: error,
                timeout: configuration.requestTimeout)
        }
        let bytes = Array(answer.readableBytesView)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw s3Error(status: Int(response.status.code), body: bytes, key: key)
        }
        return Response(status: Int(response.status.code), headers: response.headers, body: bytes)
    }

    /// Turns S3's XML error answer into a `SinkError` saying what to do.
    func s3Error(status: Int, body: [UInt8], key: String) -> SinkError {
        let code = XMLFields.value(of: "Code", in: body) ?? "HTTP \(status)"
        let message = XMLFields.value(of: "Message", in: body).map { " (\($0))" } ?? ""
        let bucket = configuration.bucket
        let endpoint = configuration.resolvedEndpoint.absoluteString
        let what = "\(describe(key)) failed: \(code)\(message)"
        switch code {
        case "NoSuchBucket":
            return SinkError(
                sink: name,
                "\(what): bucket \(bucket) does not exist at \(endpoint); create the bucket or fix `bucket`",
                retryable: false)
        case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidSecurity":
            return SinkError(
                sink: name,
                "\(what): \(endpoint) refused the credentials of access key \(configuration.accessKeyId); "
                    + "check accessKeyId/secretAccessKey (and sessionToken)", retryable: false)
        case "AccessDenied", "AllAccessDisabled":
            return SinkError(
                sink: name,
                "\(what): access key \(configuration.accessKeyId) may not write to bucket \(bucket); allow it "
                    + "s3:PutObject and s3:AbortMultipartUpload on arn:aws:s3:::\(bucket)/*", retryable: false)
        case "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException":
            return SinkError(
                sink: name,
                "\(what): bucket \(bucket) is not in region \(configuration.region); set `region` to the bucket's",
                retryable: false)
        case "InvalidBucketName":
            return SinkError(sink: name, "\(what): fix `bucket`", retryable: false)
        case "RequestTimeTooSkewed":
            return SinkError(
                sink: name, "\(what): this device's clock is off by more than 15 minutes; synchronise it (NTP)")
        case "BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest":
            return SinkError(sink: name, "\(what): the bytes were changed on the way; will upload again")
        default:
            let retryable =
                status >= 500 || status == 408 || status == 429 || code == "SlowDown"
                || code == "RequestTimeout" || code == "InternalError"
            return SinkError(
                sink: name, "\(what)\(retryable ? "; will try again" : ""): HTTP \(status) from \(endpoint)",
                retryable: retryable)
        }
    }

    private func describe(_ key: String) -> String { "s3://\(configuration.bucket)/\(key)" }

    // MARK: - Addressing

    /// The object URL as a string, built with the key already encoded for S3.
    static func objectURL(configuration: S3Configuration, key: String) -> String {
        let endpoint = configuration.resolvedEndpoint
        let scheme = endpoint.scheme ?? "https"
        let host = endpoint.host(percentEncoded: true) ?? ""
        let port = endpoint.port.map { ":\($0)" } ?? ""
        var prefix = endpoint.path(percentEncoded: true)
        while prefix.hasSuffix("/") { prefix.removeLast() }
        let encodedKey = SigV4Signer.uriEncode(key, keepSlash: true)
        if configuration.pathStyle {
            return "\(scheme)://\(host)\(port)\(prefix)/\(configuration.bucket)/\(encodedKey)"
        }
        return "\(scheme)://\(configuration.bucket).\(host)\(port)\(prefix)/\(encodedKey)"
    }

    /// `partSize`, raised to S3's minimum and so that `total` bytes fit in 10,000 parts.
    static func effectivePartSize(_ partSize: Int, total: Int) -> Int {
        max(partSize, S3Configuration.minimumPartSize, (total + 9_999) / 10_000)
    }
}

/// Reads single values out of S3's small XML answers (errors, CreateMultipartUpload); no general XML parser needed.
enum XMLFields {
    /// The text of the first `<name>…</name>`, entities decoded, or nil.
    static func value(of name: String, in body: [UInt8]) -> String? {
        let text = String(decoding: body, as: UTF8.self)
        guard let open = text.range(of: "<\(name)>"),
            let close = text.range(of: "</\(name)>", range: open.upperBound..<text.endIndex)
        else { return nil }
        var value = String(text[open.upperBound..<close.lowerBound])
        if value.hasPrefix("<![CDATA["), value.hasSuffix("]]>") {
            return String(value.dropFirst(9).dropLast(3))
        }
        for (entity, character) in [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&apos;", "'"), ("&#34;", "\"")] {
            value = value.replacingOccurrences(of: entity, with: character)
        }
        return value.replacingOccurrences(of: "&amp;", with: "&")
    }

    /// `text` with XML's special characters escaped.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
