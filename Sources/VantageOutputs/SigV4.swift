// AWS Signature Version 4, header form (the `Authorization` header), as specified in
// https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html and checked against AWS's test suite.
import Crypto
import Foundation

/// Signs HTTP requests with AWS Signature Version 4 (the `Authorization` header form).
///
/// Give it every header you want signed (at least `Host`; for S3 also `x-amz-content-sha256`); it returns the headers
/// to add to the request: `X-Amz-Date`, `X-Amz-Security-Token` when a session token is set (always signed), and
/// `Authorization`. Query-string (presigned URL) signing, chunked (`STREAMING-…`) payloads and SigV4a are not
/// supported. The secret key never appears in `description`.
public struct SigV4Signer: Sendable, CustomStringConvertible, CustomReflectable {
    /// How the path is made canonical.
    public enum PathCanonicalization: Sendable {
        /// Amazon S3: the path is used as sent (each byte URI-encoded once), never normalised, because `a//b` and
        /// `a/./b` are distinct keys.
        case s3
        /// Every other service: `.`/`..` segments and repeated slashes are removed and the path as sent is
        /// URI-encoded again (so a space sent as `%20` is signed as `%2520`).
        case generic
    }

    /// The `x-amz-content-sha256` of an empty body.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// The access key ID (not secret; it names the key in the credential scope).
    public var accessKeyId: String
    private var secretAccessKey: String
    /// A temporary session token from AWS STS, sent (and signed) as `X-Amz-Security-Token`.
    public var sessionToken: String?
    /// The region in the credential scope, e.g. `us-east-1`.
    public var region: String
    /// The service in the credential scope, e.g. `s3`.
    public var service: String
    /// How the path is made canonical; `.s3` for the service `s3`, `.generic` otherwise unless given.
    public var pathCanonicalization: PathCanonicalization

    /// Creates a signer for one set of credentials, region and service.
    public init(
        accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil, region: String, service: String,
        pathCanonicalization: PathCanonicalization? = nil
    ) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.region = region
        self.service = service
        self.pathCanonicalization = pathCanonicalization ?? (service == "s3" ? .s3 : .generic)
    }

    public var description: String {
        "SigV4Signer(accessKeyId: \(accessKeyId), region: \(region), service: \(service))"
    }

    /// What `dump` shows: everything but the secret key and the session token.
    public var customMirror: Mirror {
        Mirror(self, children: ["accessKeyId": accessKeyId, "region": region, "service": service])
    }

    /// Signs a request to `url`; a `Host` header is derived from `url` when `headers` has none.
    ///
    /// - Parameters:
    ///   - headers: the headers to sign, as they will be sent.
    ///   - payloadHash: the hex SHA-256 of the body (`emptyPayloadHash` for none), or `UNSIGNED-PAYLOAD`.
    /// - Returns: the headers to add to the request.
    public func sign(
        method: String, url: URL, headers: [(String, String)], payloadHash: String, date: Date
    ) -> [(String, String)] {
        var headers = headers
        if !headers.contains(where: { $0.0.lowercased() == "host" }) {
            headers.append(("Host", Self.hostHeader(for: url)))
        }
        let path = url.path(percentEncoded: true)
        return sign(
            method: method, path: path.isEmpty ? "/" : path, query: url.query(percentEncoded: true) ?? "",
            headers: headers, payloadHash: payloadHash, date: date)
    }

    /// Signs a request given its path and query string exactly as they appear in the request line.
    ///
    /// - Parameters:
    ///   - path: the path as sent (percent-encoded), starting with `/`.
    ///   - query: the query string as sent, without `?`; empty for none.
    ///   - headers: the headers to sign, `Host` included, as they will be sent.
    ///   - payloadHash: the hex SHA-256 of the body (`emptyPayloadHash` for none), or `UNSIGNED-PAYLOAD`.
    /// - Returns: the headers to add to the request.
    public func sign(
        method: String, path: String, query: String, headers: [(String, String)], payloadHash: String, date: Date
    ) -> [(String, String)] {
        let amzDate = Self.amzDate(date)
        var added: [(String, String)] = [("X-Amz-Date", amzDate)]
        if let sessionToken { added.append(("X-Amz-Security-Token", sessionToken)) }
        let replaced = Set(added.map { $0.0.lowercased() } + ["authorization"])
        let signed = headers.filter { !replaced.contains($0.0.lowercased()) } + added
        let canonical = canonicalRequest(
            method: method, path: path, query: query, headers: signed, payloadHash: payloadHash)
        let toSign = stringToSign(canonicalRequest: canonical.request, date: date)
        let authorization =
            "AWS4-HMAC-SHA256 Credential=\(accessKeyId)/\(scope(date: date)), "
            + "SignedHeaders=\(canonical.signedHeaders), Signature=\(signature(stringToSign: toSign, date: date))"
        return added + [("Authorization", authorization)]
    }

    /// The canonical request (task 1 of the signing process) and its `SignedHeaders` list.
    func canonicalRequest(
        method: String, path: String, query: String, headers: [(String, String)], payloadHash: String
    ) -> (request: String, signedHeaders: String) {
        // Repeated headers keep their order and are joined with commas; names sort bytewise.
        var values: [String: [String]] = [:]
        for (name, value) in headers {
            values[name.trimmingCharacters(in: .whitespaces).lowercased(), default: []].append(Self.trimAll(value))
        }
        let names = values.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let canonicalHeaders = names.map { "\($0):\(values[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let request = [
            method.uppercased(), canonicalPath(path), Self.canonicalQuery(query), canonicalHeaders, signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        return (request, signedHeaders)
    }

    /// The string to sign (task 2): algorithm, time, credential scope and the hash of the canonical request.
    func stringToSign(canonicalRequest: String, date: Date) -> String {
        [
            "AWS4-HMAC-SHA256", Self.amzDate(date), scope(date: date),
            Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8))),
        ].joined(separator: "\n")
    }

    /// The hex signature of `stringToSign` with the key derived for the date, region and service (tasks 3 and 4).
    func signature(stringToSign: String, date: Date) -> String {
        var key = SymmetricKey(data: Array("AWS4\(secretAccessKey)".utf8))
        for part in [String(Self.amzDate(date).prefix(8)), region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
    }

    private func scope(date: Date) -> String {
        "\(Self.amzDate(date).prefix(8))/\(region)/\(service)/aws4_request"
    }

    func canonicalPath(_ path: String) -> String {
        switch pathCanonicalization {
        case .s3:
            // Already encoded once by the sender; encode only what was left raw, keep valid escapes (upper-cased).
            var out = ""
            let bytes = Array(path.utf8)
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "%"), index + 2 < bytes.count, let high = Self.hexValue(bytes[index + 1]),
                    let low = Self.hexValue(bytes[index + 2])
                {
                    out += Self.percent(high << 4 | low)
                    index += 3
                    continue
                }
                out +=
                    Self.isUnreserved(byte) || byte == UInt8(ascii: "/")
                    ? String(UnicodeScalar(byte)) : Self.percent(byte)
                index += 1
            }
            return out.isEmpty ? "/" : out
        case .generic:
            return Self.uriEncode(Self.removeDotSegments(path), keepSlash: true)
        }
    }

    /// Removes empty, `.` and `..` segments, as botocore does: a trailing slash is kept only when the path had one.
    static func removeDotSegments(_ path: String) -> String {
        var segments: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": if !segments.isEmpty { segments.removeLast() }
            default: segments.append(segment)
            }
        }
        let trailing = path.hasSuffix("/") && !segments.isEmpty ? "/" : ""
        return "/" + segments.joined(separator: "/") + trailing
    }

    /// The canonical query string: each name and value decoded, re-encoded strictly, pairs sorted by name then value.
    static func canonicalQuery(_ query: String) -> String {
        let pairs = query.split(separator: "&", omittingEmptySubsequences: true).map { pair -> (String, String) in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = uriEncode(percentDecode(parts[0]), keepSlash: false)
            let value = parts.count > 1 ? uriEncode(percentDecode(parts[1]), keepSlash: false) : ""
            return (name, value)
        }
        return pairs.sorted { lhs, rhs in
            lhs.0 == rhs.0
                ? Array(lhs.1.utf8).lexicographicallyPrecedes(Array(rhs.1.utf8))
                : Array(lhs.0.utf8).lexicographicallyPrecedes(Array(rhs.0.utf8))
        }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// URI-encodes as SigV4 requires: every byte but `A-Z a-z 0-9 - . _ ~` (and `/` when `keepSlash`) becomes `%XX`.
    static func uriEncode(_ string: some StringProtocol, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            if isUnreserved(byte) || (keepSlash && byte == UInt8(ascii: "/")) {
                out.unicodeScalars.append(UnicodeScalar(byte))
            } else {
                out += percent(byte)
            }
        }
        return out
    }

    /// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is.
    static func percentDecode(_ string: some StringProtocol) -> String {
        let bytes = Array(string.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hexValue(bytes[index + 1]),
                let low = hexValue(bytes[index + 2])
            {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Trims a header value and turns each run of whitespace inside it into one space.
    static func trimAll(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    }

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC, computed directly so no formatter is shared between threads.
    static func amzDate(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return pad(year, 4) + pad(month, 2) + pad(day, 2) + "T" + pad(secondOfDay / 3600, 2)
            + pad(secondOfDay / 60 % 60, 2) + pad(secondOfDay % 60, 2) + "Z"
    }

    /// The `Host` header for `url`: the host, with the port when it is not the scheme's default.
    static func hostHeader(for url: URL) -> String {
        let host = url.host(percentEncoded: false) ?? ""
        let bracketed = host.contains(":") ? "[\(host)]" : host
        guard let port = url.port else { return bracketed }
        let defaultPort = url.scheme?.lowercased() == "https" ? 443 : 80
        return port == defaultPort ? bracketed : "\(bracketed):\(port)"
    }

    /// Lower-case hex of a digest or MAC.
    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            true
        default: false
        }
    }

    private static func percent(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return String(decoding: [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]], as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension SigV4Signer {
    /// Hex SHA-256 of `bytes`, the form `x-amz-content-sha256` and the canonical request use.
    static func payloadHash(_ bytes: some Sequence<UInt8>) -> String {
        hex(SHA256.hash(data: Array(bytes)))
    }
}
